//! Website tracking: `POST /track/<site_key>` (public, CORS) and the admins' site key settings.
//!
//! An event with an identity matches or creates the lead (source `website`), links the visitor to
//! it and attributes the visitor's earlier anonymous page views as `website_visit` touchpoints, one
//! per 30-minute session. Identified page views become `website_visit` touchpoints under the same
//! session rule; info-request and price-quote forms become touchpoints of their own type. Without
//! an identity (and without an earlier one for the visitor) an event is only stored: no lead is
//! ever created for an anonymous visitor.
//!
//! Anyone can post here (the site key is in the page source, the visitor id is the browser's), so
//! an event may only fill or create, never overwrite: a matched lead gets its EMPTY fields filled
//! and nothing else of it changes (its source detail included). A form type earns points once per
//! lead and UTC day, a site key creates at most `NEW_LEADS_PER_SITE_PER_WINDOW` leads a minute
//! (beyond: 429 with `Retry-After`, nothing stored), and an event dated before the erasure of the
//! person it names identifies nobody. A visitor's anonymous history is attributed in a bounded
//! number of D1 queries, logged as `{"job":"tracking-attribution", ...}`.

use chrono::{DateTime, Duration, Utc};
use leadheat_domain::ids::prefix;
use leadheat_domain::leads::LeadInput;
use leadheat_domain::live::ChangeSource;
use leadheat_domain::scoring::points_for;
use leadheat_domain::tracking::{self as rules, EventKind, Identity, TrackEvent};
use leadheat_domain::types::{CapturedBy, InteractionType, Platform, Source};
use leadheat_edge::directory::{rate_limits, Directory};
use leadheat_edge::http::{self, Problem};
use leadheat_edge::store::heat;
use leadheat_edge::store::interactions::{self, NewInteractionRow};
use leadheat_edge::store::tracking as store;
use leadheat_edge::tenant::Tenant;
use leadheat_edge::{clock, db};
use leadheat_usecases::{lead_matching, touchpoints};
use serde_json::{json, Map, Value};
use worker::{Context, Env, Response};

use crate::context::Ctx;
use crate::live;
use crate::request::ApiRequest;

/// Prefix of tracking event ids.
const EVENT_PREFIX: &str = "te";

fn snippet_url(req: &ApiRequest, site_key: &str) -> String {
    let host = req
        .header("Host")
        .unwrap_or_else(|| "api.leadheat.example".to_string());
    let local = host.starts_with("127.0.0.1") || host.starts_with("localhost");
    let scheme = if local { "http" } else { "https" };
    format!("{scheme}://{host}/track/{site_key}")
}

/// `GET /v1/tracking`: the org's site key and the URL the website posts its events to.
pub async fn settings(req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    let org = ctx
        .directory
        .org(ctx.org())
        .await?
        .ok_or_else(|| Problem::not_found("the org does not exist"))?;
    http::json(
        200,
        &json!({"site_key": org.site_key, "snippet_url_example": snippet_url(req, &org.site_key)}),
    )
}

/// `POST /v1/tracking/rotate` (admins): a new site key; the old one stops working at once.
pub async fn rotate(req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    ctx.require_admin()?;
    let key = ctx.directory.rotate_site_key(&ctx.tenant, ctx.now).await?;
    http::json(
        200,
        &json!({"site_key": key, "snippet_url_example": snippet_url(req, &key)}),
    )
}

/// `POST /track/<site_key>`.
pub async fn track(
    req: &ApiRequest,
    env: &Env,
    worker_ctx: &Context,
    site_key: &str,
) -> Result<Response, Problem> {
    if req.body.len() > rules::MAX_BODY_BYTES {
        return Err(Problem::payload_too_large(rules::MAX_BODY_BYTES));
    }
    // Browsers' sendBeacon posts text/plain (no preflight); accept it as well as JSON.
    if let Some(content_type) = req.header("Content-Type") {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !(media.is_empty()
            || media == "application/json"
            || media == "text/plain"
            || media.ends_with("+json"))
        {
            return Err(Problem::unsupported_media_type(
                "send the event as application/json (or text/plain)",
            ));
        }
    }
    let value: Value = serde_json::from_slice(&req.body)
        .map_err(|e| Problem::malformed_json(format!("the body is not valid JSON: {e}")))?;
    let meter = db::QueryMeter::start();
    let now = clock::now();
    let directory = Directory::open(env)?;
    let org = directory
        .org_by_site_key(site_key)
        .await?
        .ok_or_else(|| Problem::not_found("unknown site key"))?;
    let event = rules::validate_event(&value, now).map_err(Problem::validation)?;

    let window = clock::rfc3339(rules::rate_window_start(now));
    if rate_limits::hit(
        &directory,
        &rules::rate_buckets(site_key, &event.visitor_id),
        &window,
    )
    .await?
    .is_some()
    {
        return rate_limited(
            format!(
                "too many tracking events; at most {} per visitor and {} per site each {} seconds",
                rules::VISITOR_EVENTS_PER_WINDOW,
                rules::SITE_EVENTS_PER_WINDOW,
                rules::RATE_WINDOW_SECONDS
            ),
            now,
        );
    }
    if clock::random_bytes::<1>()[0] < 4 {
        // Now and then, drop counters of windows long gone.
        let old = clock::rfc3339(now - Duration::minutes(10));
        rate_limits::prune(&directory, &old).await?;
    }

    let tenant = directory.tenant_of(&org)?;
    let tracker = Tracker {
        directory: &directory,
        tenant: &tenant,
        site_key,
        window: &window,
        now,
    };
    let Some(outcome) = tracker.handle(&event).await? else {
        return rate_limited(
            format!(
                "too many new leads from this site; at most {} each {} seconds",
                rules::NEW_LEADS_PER_SITE_PER_WINDOW,
                rules::RATE_WINDOW_SECONDS
            ),
            now,
        );
    };
    if let Some(attributed) = outcome.attributed.as_ref().filter(|a| a.views > 0) {
        worker::console_log!(
            "{{\"job\":\"tracking-attribution\",\"event_id\":{:?},\"views\":{},\"visits\":{},\"queries\":{}}}",
            outcome.event_id,
            attributed.views,
            attributed.visits,
            meter.used()
        );
    }
    if outcome.identified {
        // The lead may have a new touchpoint (or was just created): open pages refresh.
        live::notify_later(worker_ctx, env, &org.id, ChangeSource::Tracking);
    }
    http::json(
        202,
        &json!({"status": "accepted", "event_id": outcome.event_id, "identified": outcome.identified}),
    )
}

/// 429 problem+json with `Retry-After`: the rest of the current window.
fn rate_limited(detail: String, now: DateTime<Utc>) -> Result<Response, Problem> {
    let mut response = Problem::too_many_requests(detail).into_response()?;
    response
        .headers_mut()
        .set("Retry-After", &rules::retry_after_seconds(now).to_string())?;
    Ok(response)
}

struct Tracker<'a> {
    directory: &'a Directory,
    tenant: &'a Tenant,
    site_key: &'a str,
    /// The current rate-limit window's start.
    window: &'a str,
    now: DateTime<Utc>,
}

struct Handled {
    event_id: String,
    identified: bool,
    /// Set when the event identified the visitor: what its history became.
    attributed: Option<Attributed>,
}

struct Attributed {
    views: usize,
    visits: usize,
}

impl Tracker<'_> {
    /// `None`: the event would have created a lead beyond the site's cap; nothing was stored.
    async fn handle(&self, event: &TrackEvent) -> Result<Option<Handled>, Problem> {
        // The identity first: a refused new lead must leave no trace of the event.
        let identified = match &event.identity {
            Some(identity) => match self.identify(event, identity).await? {
                Identified::Lead(id) => Some(id),
                Identified::Erased => None,
                Identified::OverCap => return Ok(None),
            },
            None => None,
        };
        let occurred_at = clock::rfc3339(event.occurred_at);
        let visitor = store::touch_visitor(self.tenant, &event.visitor_id, &occurred_at).await?;
        if let Some(lead_id) = &identified {
            store::link_visitor(self.tenant, &event.visitor_id, lead_id).await?;
        }
        let event_id = clock::new_id(EVENT_PREFIX);
        let lead_id = identified.clone().or(visitor.lead_id.clone());

        store::insert_event(
            self.tenant,
            &store::NewEvent {
                id: &event_id,
                visitor_id: &event.visitor_id,
                kind: event.kind.as_str(),
                url: event.url.as_deref(),
                occurred_at: &occurred_at,
                attributed: lead_id.is_some(),
            },
        )
        .await?;
        let Some(lead_id) = lead_id else {
            return Ok(Some(Handled {
                event_id,
                identified: false,
                attributed: None,
            }));
        };

        let last_session = visitor
            .last_visit_touch_at
            .as_deref()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.with_timezone(&Utc));
        let attributed = self
            .touch_lead(
                event,
                &event_id,
                &lead_id,
                last_session,
                identified.is_some(),
            )
            .await?;
        Ok(Some(Handled {
            event_id,
            identified: true,
            attributed,
        }))
    }

    /// The touchpoints the event earns its (known) lead: the visitor's anonymous history when it
    /// just identified, else a visit when a page view opens a session; and a form's own.
    async fn touch_lead(
        &self,
        event: &TrackEvent,
        event_id: &str,
        lead_id: &str,
        last_session: Option<DateTime<Utc>>,
        just_identified: bool,
    ) -> Result<Option<Attributed>, Problem> {
        let mut attributed = None;
        if just_identified {
            attributed = Some(self.attribute(event, lead_id, last_session).await?);
        } else if event.kind == EventKind::PageView
            && rules::starts_new_session(last_session, event.occurred_at)
        {
            let occurred_at = clock::rfc3339(event.occurred_at);
            let older_than =
                clock::rfc3339(event.occurred_at - Duration::minutes(rules::SESSION_MINUTES));
            if store::open_session(self.tenant, &event.visitor_id, &occurred_at, &older_than)
                .await?
            {
                self.record_visit(event, lead_id, event.occurred_at, event.url.as_deref())
                    .await?;
            }
        }
        if event.kind.is_form() {
            // Once per form type, lead and UTC day: a later one the same day is a duplicate.
            self.record(
                lead_id,
                event,
                event.occurred_at,
                rules::form_external_id(event.kind, lead_id, self.now),
                json!({"visitor_id": event.visitor_id, "url": event.url, "tracking_event_id": event_id}),
            )
            .await?;
        }
        Ok(attributed)
    }

    /// The lead an identity names: an existing one (its empty fields filled), or a new one within
    /// the site's cap of new leads.
    async fn identify(
        &self,
        event: &TrackEvent,
        identity: &Identity,
    ) -> Result<Identified, Problem> {
        let mut input = LeadInput::new(Source::Website);
        input.email = identity.email.clone();
        input.phone = identity.phone.clone();
        input.first_name = identity.first_name.clone();
        input.last_name = identity.last_name.clone();
        input.company = identity.company.clone();
        if lead_matching::erased_after(self.tenant, &input, event.occurred_at).await? {
            return Ok(Identified::Erased);
        }
        if let Some((id, _)) = lead_matching::find_match(self.tenant, &input).await? {
            // Only empty fields are filled; the lead's source detail tells where IT came from.
            let lead = lead_matching::fill_existing(self.tenant, &id, &input, self.now).await?;
            return Ok(Identified::Lead(lead.id));
        }
        let (bucket, _) = rules::new_lead_bucket(self.site_key);
        let count = rate_limits::count_hit(self.directory, &bucket, self.window).await?;
        if !rules::new_lead_allowed(count) {
            return Ok(Identified::OverCap);
        }
        let mut detail = Map::new();
        detail.insert("form".into(), json!(event.kind.as_str()));
        if let Some(url) = &event.url {
            detail.insert("page".into(), json!(url));
        }
        input.source_detail = detail;
        let (lead, _) = lead_matching::match_or_create(self.tenant, input, self.now).await?;
        Ok(Identified::Lead(lead.id))
    }

    /// The visitor just identified: its anonymous page views (and this event, if a page view)
    /// become visits of the lead, one per session, written in one batch (a few statements
    /// whatever the history's length), then the lead is rescored once.
    async fn attribute(
        &self,
        event: &TrackEvent,
        lead_id: &str,
        last_session: Option<DateTime<Utc>>,
    ) -> Result<Attributed, Problem> {
        let views =
            store::anonymous_views(self.tenant, &event.visitor_id, rules::MAX_ATTRIBUTED_VIEWS)
                .await?;
        let mut timed: Vec<(DateTime<Utc>, Option<String>)> = views
            .iter()
            .filter_map(|view| {
                DateTime::parse_from_rfc3339(&view.occurred_at)
                    .ok()
                    .map(|at| (at.with_timezone(&Utc), view.url.clone()))
            })
            .collect();
        if event.kind == EventKind::PageView {
            timed.push((event.occurred_at, event.url.clone()));
        }
        let visits = rules::plan_visits(last_session, &timed);
        let mut statements = Vec::new();
        if !visits.is_empty() {
            statements.extend(self.visit_statements(event, lead_id, &visits).await?);
            // The visits are written outside the lead's heat state: it is rebuilt just below,
            // and until then no touchpoint may trust it.
            statements.push(heat::flag_after_merge_statement(self.tenant, lead_id)?);
        }
        if let Some(newest) = views.first() {
            statements.push(store::mark_attributed_statement(
                self.tenant,
                &event.visitor_id,
                &newest.occurred_at,
            )?);
        }
        self.tenant.batch(statements).await?;
        if !visits.is_empty() {
            touchpoints::rescore(self.tenant, lead_id, self.now).await?;
        }
        Ok(Attributed {
            views: views.len(),
            visits: visits.len(),
        })
    }

    /// The set-based INSERTs of `visits` (cut by `visit_runs` to fit D1's statement size) and
    /// the visitor's new last session start.
    async fn visit_statements(
        &self,
        event: &TrackEvent,
        lead_id: &str,
        visits: &[rules::Visit],
    ) -> Result<Vec<worker::D1PreparedStatement>, Problem> {
        let (config, _) = touchpoints::scoring_config(self.tenant).await?;
        let points = points_for(InteractionType::WebsiteVisit, &config) as f64;
        let created_at = clock::rfc3339(self.now);
        let values: Vec<(String, String, String, String)> = visits
            .iter()
            .map(|visit| {
                let start = clock::rfc3339(visit.start);
                let metadata = json!({"visitor_id": event.visitor_id, "url": visit.url, "session_start": start});
                (
                    clock::new_id(prefix::INTERACTION),
                    rules::visit_external_id(&event.visitor_id, &start),
                    metadata.to_string(),
                    start,
                )
            })
            .collect();
        let rows: Vec<NewInteractionRow> = values
            .iter()
            .map(|(id, external_id, metadata, start)| NewInteractionRow {
                id,
                lead_id,
                kind: InteractionType::WebsiteVisit,
                platform: Platform::Website,
                occurred_at: start,
                captured_by: CapturedBy::Tracking,
                points,
                external_id,
                metadata,
                created_at: &created_at,
            })
            .collect();
        // What each row adds to its statement's bound JSON (metadata is escaped once more).
        let sizes: Vec<usize> = values
            .iter()
            .map(|(id, external_id, metadata, start)| {
                2 * metadata.len() + id.len() + external_id.len() + 2 * start.len() + 200
            })
            .collect();
        let mut statements = Vec::new();
        for run in rules::visit_runs(&sizes) {
            statements.push(interactions::insert_many_statement(
                self.tenant,
                &rows[run],
            )?);
        }
        if let Some((_, _, _, latest)) = values.last() {
            statements.push(store::advance_session_statement(
                self.tenant,
                &event.visitor_id,
                latest,
            )?);
        }
        Ok(statements)
    }

    async fn record_visit(
        &self,
        event: &TrackEvent,
        lead_id: &str,
        session_start: DateTime<Utc>,
        url: Option<&str>,
    ) -> Result<(), Problem> {
        let start = clock::rfc3339(session_start);
        let mut visit = event.clone();
        visit.kind = EventKind::PageView;
        self.record(
            lead_id,
            &visit,
            session_start,
            rules::visit_external_id(&event.visitor_id, &start),
            json!({"visitor_id": event.visitor_id, "url": url, "session_start": start}),
        )
        .await
    }

    async fn record(
        &self,
        lead_id: &str,
        event: &TrackEvent,
        occurred_at: DateTime<Utc>,
        external_id: String,
        metadata: Value,
    ) -> Result<(), Problem> {
        touchpoints::record(
            self.tenant,
            touchpoints::NewTouchpoint {
                lead_id: lead_id.to_string(),
                kind: event.kind.interaction_type(),
                platform: Platform::Website,
                occurred_at,
                captured_by: CapturedBy::Tracking,
                external_id: Some(external_id),
                metadata,
            },
            self.now,
        )
        .await?;
        Ok(())
    }
}

/// What an identity named.
enum Identified {
    Lead(String),
    /// The person was erased after this event occurred: it identifies nobody.
    Erased,
    /// No lead matched and the site has created its share of new leads this minute.
    OverCap,
}
