//! Website tracking: validating the events the company website sends to `POST /track/<site_key>`,
//! the 30-minute session rule for `website_visit` touchpoints, which events become touchpoints, and
//! the limits that protect the endpoint (anyone can post to it: the site key is in the page source
//! and the visitor id is the browser's choice):
//!
//! - fixed-window rate limits per visitor and per site key;
//! - at most [`NEW_LEADS_PER_SITE_PER_WINDOW`] new leads per site key and window;
//! - a form's points at most once per type, lead and UTC day ([`form_external_id`]);
//! - raw events and visitors are kept for a bounded time ([`retention_cutoffs`]).
//!
//! Time comes in as an argument; nothing here reads a clock.

use std::ops::Range;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::body;
use crate::types::{FieldError, InteractionType};

/// Largest accepted tracking body.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// A visitor earns at most one `website_visit` per session of this length, counted from the
/// session's first identified page view.
pub const SESSION_MINUTES: i64 = 30;

/// Rate limits (fixed windows of [`RATE_WINDOW_SECONDS`]).
pub const RATE_WINDOW_SECONDS: i64 = 60;
/// Events per window from one visitor of one site.
pub const VISITOR_EVENTS_PER_WINDOW: i64 = 120;
/// Events per window for one site key, all visitors together.
pub const SITE_EVENTS_PER_WINDOW: i64 = 2000;
/// Leads one site key may create per window; beyond it an identified event that matches no lead
/// is refused (429 with `Retry-After`) and nothing is stored.
pub const NEW_LEADS_PER_SITE_PER_WINDOW: i64 = 20;

/// Raw tracking events are kept this long after they occurred, then pruned by the nightly sweep.
pub const EVENT_RETENTION_DAYS: i64 = 90;
/// A visitor not seen for this long is forgotten by the nightly sweep.
pub const VISITOR_IDLE_DAYS: i64 = 400;

/// When a visitor's history is attributed, its visits are written as JSON arrays of rows, one
/// INSERT each, of at most this many visits and [`VISIT_STATEMENT_BYTES`] of JSON (D1 refuses a
/// statement over 100,000 bytes of SQL and bound values; the rest is for the SQL).
pub const VISITS_PER_STATEMENT: usize = 100;
pub const VISIT_STATEMENT_BYTES: usize = 90_000;

/// How far in the future an event's `occurred_at` may be (clock skew of the visitor's browser).
pub const MAX_FUTURE_SKEW_MINUTES: i64 = 5;
/// How far back an event may be dated.
pub const MAX_AGE_DAYS: i64 = 30;

/// Earlier anonymous page views considered when a visitor identifies (newest first).
pub const MAX_ATTRIBUTED_VIEWS: usize = 500;

pub const MAX_VISITOR_ID_LEN: usize = 128;
pub const MAX_URL_LEN: usize = 2048;
pub const MAX_NAME_LEN: usize = 200;
pub const MAX_EMAIL_LEN: usize = 254;
pub const MAX_PHONE_LEN: usize = 40;

/// What the website reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    PageView,
    InfoRequest,
    PriceQuote,
}

impl EventKind {
    pub const WIRE_NAMES: &'static [&'static str] = &["page_view", "info_request", "price_quote"];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PageView => "page_view",
            EventKind::InfoRequest => "info_request",
            EventKind::PriceQuote => "price_quote",
        }
    }

    pub fn parse(value: &str) -> Option<EventKind> {
        match value {
            "page_view" => Some(EventKind::PageView),
            "info_request" => Some(EventKind::InfoRequest),
            "price_quote" => Some(EventKind::PriceQuote),
            _ => None,
        }
    }

    /// The touchpoint type an identified event of this kind becomes.
    pub fn interaction_type(self) -> InteractionType {
        match self {
            EventKind::PageView => InteractionType::WebsiteVisit,
            EventKind::InfoRequest => InteractionType::InfoRequest,
            EventKind::PriceQuote => InteractionType::PriceQuote,
        }
    }

    /// Form submissions become a touchpoint each; page views go through the session rule.
    pub fn is_form(self) -> bool {
        !matches!(self, EventKind::PageView)
    }
}

/// The identity a form (or a signed-in page) reveals. At least an email or a phone is required,
/// since those are what leads are matched by.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
}

/// A validated tracking event.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackEvent {
    pub visitor_id: String,
    pub kind: EventKind,
    pub url: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub identity: Option<Identity>,
}

/// Validates a parsed body, reporting every offending field (dotted paths such as
/// `identity.email`). `occurred_at` defaults to `now`.
pub fn validate_event(body: &Value, now: DateTime<Utc>) -> Result<TrackEvent, Vec<FieldError>> {
    // Unknown fields are not refused here, unlike the API's bodies: events come from snippets
    // already deployed on websites, and one that sends an extra field must not lose its events.
    let object = body::object(body).map_err(|error| vec![error])?;
    let mut errors = Vec::new();

    let visitor_id = match object.get("visitor_id") {
        Some(Value::String(id)) if is_valid_visitor_id(id) => Some(id.clone()),
        Some(Value::String(_)) => {
            errors.push(FieldError::new(
                "visitor_id",
                format!("must be 1 to {MAX_VISITOR_ID_LEN} characters of A-Z, a-z, 0-9, '-', '_', '.', ':'"),
            ));
            None
        }
        None | Some(Value::Null) => {
            errors.push(FieldError::new("visitor_id", "is required"));
            None
        }
        Some(_) => {
            errors.push(FieldError::new("visitor_id", "must be a string"));
            None
        }
    };

    let kind = match object.get("type") {
        Some(Value::String(kind)) => {
            let parsed = EventKind::parse(kind);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "type",
                    format!(
                        "unknown event type \"{kind}\"; expected one of: {}",
                        EventKind::WIRE_NAMES.join(", ")
                    ),
                ));
            }
            parsed
        }
        None | Some(Value::Null) => {
            errors.push(FieldError::new("type", "is required"));
            None
        }
        Some(_) => {
            errors.push(FieldError::new("type", "must be a string"));
            None
        }
    };

    let url = optional_string(object, "url", "url", MAX_URL_LEN, &mut errors);

    let occurred_at = match object.get("occurred_at") {
        None | Some(Value::Null) => Some(now),
        Some(Value::String(text)) => match DateTime::parse_from_rfc3339(text) {
            Ok(at) => {
                let at = at.with_timezone(&Utc);
                if at > now + Duration::minutes(MAX_FUTURE_SKEW_MINUTES) {
                    errors.push(FieldError::new("occurred_at", "must not be in the future"));
                    None
                } else if at < now - Duration::days(MAX_AGE_DAYS) {
                    errors.push(FieldError::new(
                        "occurred_at",
                        format!("must be within the last {MAX_AGE_DAYS} days"),
                    ));
                    None
                } else {
                    Some(at)
                }
            }
            Err(_) => {
                errors.push(FieldError::new(
                    "occurred_at",
                    "must be an RFC 3339 timestamp",
                ));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new(
                "occurred_at",
                "must be an RFC 3339 timestamp",
            ));
            None
        }
    };

    let identity = match object.get("identity") {
        None | Some(Value::Null) => None,
        Some(Value::Object(fields)) => validate_identity(fields, &mut errors),
        Some(_) => {
            errors.push(FieldError::new("identity", "must be an object"));
            None
        }
    };

    match (visitor_id, kind, occurred_at) {
        (Some(visitor_id), Some(kind), Some(occurred_at)) if errors.is_empty() => Ok(TrackEvent {
            visitor_id,
            kind,
            url,
            occurred_at,
            identity,
        }),
        _ => Err(errors),
    }
}

fn validate_identity(
    fields: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<Identity> {
    let before = errors.len();
    let mut identity = Identity {
        email: optional_string(fields, "email", "identity.email", MAX_EMAIL_LEN, errors),
        first_name: optional_string(
            fields,
            "first_name",
            "identity.first_name",
            MAX_NAME_LEN,
            errors,
        ),
        last_name: optional_string(
            fields,
            "last_name",
            "identity.last_name",
            MAX_NAME_LEN,
            errors,
        ),
        phone: optional_string(fields, "phone", "identity.phone", MAX_PHONE_LEN, errors),
        company: optional_string(fields, "company", "identity.company", MAX_NAME_LEN, errors),
    };
    if let Some(email) = identity.email.take() {
        match crate::leads::normalize_email(&email) {
            Ok(email) => identity.email = Some(email),
            Err(message) => errors.push(FieldError::new("identity.email", message)),
        }
    }
    if let Some(phone) = &identity.phone {
        if let Err(message) = crate::leads::normalize_phone(phone) {
            errors.push(FieldError::new("identity.phone", message));
        }
    }
    if errors.len() > before {
        return None;
    }
    if identity.email.is_none() && identity.phone.is_none() {
        errors.push(FieldError::new(
            "identity.email",
            "an identity needs an email or a phone to match the lead",
        ));
        return None;
    }
    Some(identity)
}

/// A trimmed, non-empty string field of at most `max` characters (`None` when absent, null or
/// blank).
fn optional_string(
    object: &Map<String, Value>,
    key: &str,
    field: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match object.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => {
            let text = text.trim();
            if text.is_empty() {
                None
            } else if text.chars().count() > max {
                errors.push(FieldError::new(
                    field,
                    format!("must be at most {max} characters"),
                ));
                None
            } else if text.chars().any(char::is_control) {
                errors.push(FieldError::new(
                    field,
                    "must not contain control characters",
                ));
                None
            } else {
                Some(text.to_string())
            }
        }
        Some(_) => {
            errors.push(FieldError::new(field, "must be a string"));
            None
        }
    }
}

pub fn is_valid_visitor_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_VISITOR_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Whether an identified page view at `at` opens a new session (and so earns a `website_visit`),
/// given the start of the visitor's last touched session. Views dated before that start belong to
/// sessions already accounted for.
pub fn starts_new_session(last_session_start: Option<DateTime<Utc>>, at: DateTime<Utc>) -> bool {
    match last_session_start {
        None => true,
        Some(start) => at >= start + Duration::minutes(SESSION_MINUTES),
    }
}

/// Groups page-view times into sessions and returns each new session's start (ascending): a
/// session starts at a view at least 30 minutes after the previous session's start. Sessions at
/// or before `last_session_start` (already touched) are skipped.
pub fn session_starts(
    last_session_start: Option<DateTime<Utc>>,
    views: &[DateTime<Utc>],
) -> Vec<DateTime<Utc>> {
    let mut sorted = views.to_vec();
    sorted.sort();
    let mut current = last_session_start;
    let mut starts = Vec::new();
    for at in sorted {
        if starts_new_session(current, at) {
            starts.push(at);
            current = Some(at);
        }
    }
    starts
}

/// The deterministic external id of a visit touchpoint: one per visitor and session start, so a
/// replayed or concurrent request cannot record the same session twice.
pub fn visit_external_id(visitor_id: &str, session_start: &str) -> String {
    format!("visit:{visitor_id}:{session_start}")
}

/// The external id of a form touchpoint: one per form type, lead and UTC day of receipt, so a
/// second `info_request` (or `price_quote`) of the same lead the same day is a duplicate that
/// earns nothing (it stays a raw tracking event). The day is the server's, not the event's
/// `occurred_at`, which the poster chooses.
pub fn form_external_id(kind: EventKind, lead_id: &str, received_at: DateTime<Utc>) -> String {
    format!(
        "form:{}:{lead_id}:{}",
        kind.as_str(),
        received_at.format("%Y-%m-%d")
    )
}

/// A `website_visit` to record: the start of a session and the URL of its first view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    pub start: DateTime<Utc>,
    pub url: Option<String>,
}

/// The visits a visitor's page views earn (ascending), given the start of its last touched
/// session: one per session, carrying the URL of the view that opened it.
pub fn plan_visits(
    last_session_start: Option<DateTime<Utc>>,
    views: &[(DateTime<Utc>, Option<String>)],
) -> Vec<Visit> {
    let times: Vec<DateTime<Utc>> = views.iter().map(|(at, _)| *at).collect();
    session_starts(last_session_start, &times)
        .into_iter()
        .map(|start| Visit {
            start,
            url: views
                .iter()
                .find(|(at, _)| *at == start)
                .and_then(|(_, url)| url.clone()),
        })
        .collect()
}

/// Cuts rows of the given JSON sizes, in order, into runs of at most [`VISITS_PER_STATEMENT`]
/// rows whose sizes (plus a separator each) add up to at most [`VISIT_STATEMENT_BYTES`]; a row
/// larger than that gets a run of its own.
pub fn visit_runs(sizes: &[usize]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, size) in sizes.iter().enumerate() {
        let size = size + 1;
        if i > start && (i - start == VISITS_PER_STATEMENT || bytes + size > VISIT_STATEMENT_BYTES)
        {
            runs.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        runs.push(start..sizes.len());
    }
    runs
}

/// The start of the fixed rate-limit window containing `now`.
pub fn rate_window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let seconds = now.timestamp().div_euclid(RATE_WINDOW_SECONDS) * RATE_WINDOW_SECONDS;
    DateTime::from_timestamp(seconds, 0).unwrap_or(now)
}

/// Whole seconds until the window containing `now` ends (at least 1): a refused client's
/// `Retry-After`.
pub fn retry_after_seconds(now: DateTime<Utc>) -> i64 {
    let end = rate_window_start(now) + Duration::seconds(RATE_WINDOW_SECONDS);
    let millis = (end - now).num_milliseconds().max(0);
    ((millis + 999) / 1000).max(1)
}

/// The rate-limit buckets an event counts against, with their limits.
pub fn rate_buckets(site_key: &str, visitor_id: &str) -> [(String, i64); 2] {
    [
        (format!("track:site:{site_key}"), SITE_EVENTS_PER_WINDOW),
        (
            format!("track:visitor:{site_key}:{visitor_id}"),
            VISITOR_EVENTS_PER_WINDOW,
        ),
    ]
}

/// The bucket a new lead counts against, with its limit.
pub fn new_lead_bucket(site_key: &str) -> (String, i64) {
    (
        format!("track:new-lead:{site_key}"),
        NEW_LEADS_PER_SITE_PER_WINDOW,
    )
}

/// Whether a new lead may be created, given the site key's count of new leads in the window
/// with this one included.
pub fn new_lead_allowed(count_with_this_one: i64) -> bool {
    count_with_this_one <= NEW_LEADS_PER_SITE_PER_WINDOW
}

/// Retention as of `now`: events that occurred before the first instant, and visitors last seen
/// before the second, are pruned.
pub fn retention_cutoffs(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        now - Duration::days(EVENT_RETENTION_DAYS),
        now - Duration::days(VISITOR_IDLE_DAYS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap()
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_minimal_page_view_is_valid_and_dated_now() {
        let event =
            validate_event(&json!({"visitor_id": "v-1", "type": "page_view"}), now()).unwrap();
        assert_eq!(event.visitor_id, "v-1");
        assert_eq!(event.kind, EventKind::PageView);
        assert_eq!(event.occurred_at, now());
        assert_eq!(event.identity, None);
        assert_eq!(event.url, None);
    }

    #[test]
    fn a_form_with_identity_is_normalised() {
        let event = validate_event(
            &json!({
                "visitor_id": "v1", "type": "price_quote", "url": "https://x.test/pricing",
                "occurred_at": "2026-03-02T11:00:00+01:00",
                "identity": {"email": " Ann@Example.COM ", "first_name": "Ann", "phone": "", "company": "Acme"}
            }),
            now(),
        )
        .unwrap();
        assert_eq!(event.kind, EventKind::PriceQuote);
        assert_eq!(
            event.occurred_at,
            Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
        );
        let identity = event.identity.unwrap();
        assert_eq!(identity.email.as_deref(), Some("ann@example.com"));
        assert_eq!(identity.phone, None);
        assert_eq!(identity.company.as_deref(), Some("Acme"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let errors = validate_event(
            &json!({"visitor_id": "has space", "type": "click", "url": 3, "occurred_at": "yesterday",
                    "identity": {"email": "nope", "phone": "abc"}}),
            now(),
        )
        .unwrap_err();
        assert_eq!(
            fields(&errors),
            [
                "visitor_id",
                "type",
                "url",
                "occurred_at",
                "identity.email",
                "identity.phone"
            ]
        );
    }

    #[test]
    fn required_fields_and_shapes() {
        let errors = validate_event(&json!({}), now()).unwrap_err();
        assert_eq!(fields(&errors), ["visitor_id", "type"]);
        let errors = validate_event(&json!([1]), now()).unwrap_err();
        assert_eq!(fields(&errors), ["body"]);
        let errors = validate_event(
            &json!({"visitor_id": "v", "type": "page_view", "identity": "x"}),
            now(),
        )
        .unwrap_err();
        assert_eq!(fields(&errors), ["identity"]);
    }

    #[test]
    fn identity_needs_a_matching_key() {
        let errors = validate_event(
            &json!({"visitor_id": "v", "type": "info_request", "identity": {"first_name": "Ann"}}),
            now(),
        )
        .unwrap_err();
        assert_eq!(fields(&errors), ["identity.email"]);
        let event = validate_event(
            &json!({"visitor_id": "v", "type": "info_request", "identity": {"phone": "+44 20 7946 0000"}}),
            now(),
        )
        .unwrap();
        assert!(event.identity.is_some());
    }

    #[test]
    fn event_times_are_bounded() {
        let future =
            json!({"visitor_id": "v", "type": "page_view", "occurred_at": "2026-03-02T12:06:00Z"});
        assert_eq!(
            fields(&validate_event(&future, now()).unwrap_err()),
            ["occurred_at"]
        );
        let skew =
            json!({"visitor_id": "v", "type": "page_view", "occurred_at": "2026-03-02T12:04:00Z"});
        assert!(validate_event(&skew, now()).is_ok());
        let old =
            json!({"visitor_id": "v", "type": "page_view", "occurred_at": "2026-01-01T00:00:00Z"});
        assert_eq!(
            fields(&validate_event(&old, now()).unwrap_err()),
            ["occurred_at"]
        );
    }

    #[test]
    fn oversized_strings_are_refused() {
        let long = "x".repeat(MAX_VISITOR_ID_LEN + 1);
        let errors =
            validate_event(&json!({"visitor_id": long, "type": "page_view"}), now()).unwrap_err();
        assert_eq!(fields(&errors), ["visitor_id"]);
    }

    #[test]
    fn event_kinds_map_to_touchpoint_types() {
        assert_eq!(
            EventKind::PageView.interaction_type(),
            InteractionType::WebsiteVisit
        );
        assert_eq!(
            EventKind::InfoRequest.interaction_type(),
            InteractionType::InfoRequest
        );
        assert_eq!(
            EventKind::PriceQuote.interaction_type(),
            InteractionType::PriceQuote
        );
        assert!(!EventKind::PageView.is_form());
        assert!(EventKind::PriceQuote.is_form());
    }

    #[test]
    fn one_visit_per_thirty_minute_session() {
        let t = |m: i64| now() + Duration::minutes(m);
        assert!(starts_new_session(None, t(0)));
        assert!(!starts_new_session(Some(t(0)), t(29)));
        assert!(starts_new_session(Some(t(0)), t(30)));
        assert!(!starts_new_session(Some(t(0)), t(-40)));
        assert_eq!(
            session_starts(None, &[t(50), t(0), t(10), t(29), t(31), t(60), t(200)]),
            vec![t(0), t(31), t(200)]
        );
        assert_eq!(
            session_starts(Some(t(20)), &[t(0), t(10), t(45), t(50)]),
            vec![t(50)]
        );
        assert!(session_starts(None, &[]).is_empty());
    }

    #[test]
    fn external_ids_are_deterministic() {
        assert_eq!(
            visit_external_id("v1", "2026-03-02T12:00:00.000Z"),
            "visit:v1:2026-03-02T12:00:00.000Z"
        );
    }

    #[test]
    fn a_form_type_counts_once_per_lead_and_utc_day() {
        let morning = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 1).unwrap();
        let evening = Utc.with_ymd_and_hms(2026, 3, 2, 23, 59, 59).unwrap();
        let next_day = Utc.with_ymd_and_hms(2026, 3, 3, 0, 0, 0).unwrap();
        let first = form_external_id(EventKind::InfoRequest, "lead_1", morning);
        assert_eq!(first, "form:info_request:lead_1:2026-03-02");
        assert_eq!(
            first,
            form_external_id(EventKind::InfoRequest, "lead_1", evening)
        );
        assert_ne!(
            first,
            form_external_id(EventKind::InfoRequest, "lead_1", next_day)
        );
        assert_ne!(
            first,
            form_external_id(EventKind::PriceQuote, "lead_1", morning)
        );
        assert_ne!(
            first,
            form_external_id(EventKind::InfoRequest, "lead_2", morning)
        );
    }

    #[test]
    fn visits_carry_their_session_start_and_first_url() {
        let t = |m: i64| now() + Duration::minutes(m);
        let url = |s: &str| Some(s.to_string());
        let views = [
            (t(40), url("/b")),
            (t(0), url("/a")),
            (t(10), None),
            (t(75), None),
        ];
        assert_eq!(
            plan_visits(None, &views),
            vec![
                Visit {
                    start: t(0),
                    url: url("/a")
                },
                Visit {
                    start: t(40),
                    url: url("/b")
                },
                Visit {
                    start: t(75),
                    url: None
                }
            ]
        );
        assert_eq!(plan_visits(Some(t(60)), &views).len(), 0);
        // 500 views an hour apart are 500 sessions.
        let spaced: Vec<_> = (0..500).map(|i| (t(-i * 60), None)).collect();
        assert_eq!(plan_visits(None, &spaced).len(), 500);
    }

    #[test]
    fn visits_are_cut_into_statements_by_count_and_bytes() {
        assert!(visit_runs(&[]).is_empty());
        assert_eq!(visit_runs(&[100; 250]), vec![0..100, 100..200, 200..250]);
        // Large rows: as many as fit in the bytes.
        assert_eq!(visit_runs(&[40_000, 40_000, 40_000, 10]), vec![0..2, 2..4]);
        // A row over the bytes on its own.
        assert_eq!(visit_runs(&[10, 200_000, 10]), vec![0..1, 1..2, 2..3]);
        for run in visit_runs(&[2_500; 500]) {
            assert!(run.len() <= VISITS_PER_STATEMENT);
            assert!(run.len() * 2_501 <= VISIT_STATEMENT_BYTES);
        }
    }

    #[test]
    fn new_leads_per_site_are_capped_per_window() {
        let (bucket, limit) = new_lead_bucket("site_a");
        assert_eq!(bucket, "track:new-lead:site_a");
        assert_eq!(limit, NEW_LEADS_PER_SITE_PER_WINDOW);
        assert!(new_lead_allowed(1));
        assert!(new_lead_allowed(NEW_LEADS_PER_SITE_PER_WINDOW));
        assert!(!new_lead_allowed(NEW_LEADS_PER_SITE_PER_WINDOW + 1));
    }

    #[test]
    fn retry_after_is_the_rest_of_the_window() {
        assert_eq!(retry_after_seconds(now()), 60);
        let late = Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 59).unwrap();
        assert_eq!(retry_after_seconds(late), 1);
        let mid = now() + Duration::milliseconds(20_500);
        assert_eq!(retry_after_seconds(mid), 40);
    }

    #[test]
    fn retention_cutoffs_are_ninety_and_four_hundred_days() {
        let (events, visitors) = retention_cutoffs(now());
        assert_eq!(events, Utc.with_ymd_and_hms(2025, 12, 2, 12, 0, 0).unwrap());
        assert_eq!(
            visitors,
            Utc.with_ymd_and_hms(2025, 1, 26, 12, 0, 0).unwrap()
        );
    }

    #[test]
    fn rate_windows_are_fixed_minutes() {
        let at = Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 59).unwrap();
        assert_eq!(rate_window_start(at), now());
        let [site, visitor] = rate_buckets("site_a", "v1");
        assert_eq!(
            site,
            ("track:site:site_a".to_string(), SITE_EVENTS_PER_WINDOW)
        );
        assert_eq!(
            visitor,
            (
                "track:visitor:site_a:v1".to_string(),
                VISITOR_EVENTS_PER_WINDOW
            )
        );
    }
}
