//! Website tracking: `POST /track/<site_key>` (public, CORS) and the admins' site key settings.
//!
//! An event with an identity matches or creates the lead (source `website`), links the visitor to
//! it and attributes the visitor's earlier anonymous page views as `website_visit` touchpoints, one
//! per 30-minute session. Identified page views become `website_visit` touchpoints under the same
//! session rule; info-request and price-quote forms become touchpoints of their own type. Without
//! an identity (and without an earlier one for the visitor) an event is only stored: no lead is
//! ever created for an anonymous visitor.

use chrono::{DateTime, Duration, Utc};
use leadheat_domain::leads::LeadInput;
use leadheat_domain::live::ChangeSource;
use leadheat_domain::tracking::{self as rules, EventKind, TrackEvent};
use leadheat_domain::types::{CapturedBy, Platform, Source};
use leadheat_edge::http::{self, Problem};
use leadheat_edge::store::{orgs, rate_limits, tracking as store};
use leadheat_edge::{clock, db, lead_matching, touchpoints};
use serde_json::{json, Map, Value};
use worker::{Context, D1Database, Env, Response};

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
    let org = orgs::get(&ctx.db, ctx.org())
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
    let key = orgs::rotate_site_key(&ctx.db, ctx.org(), ctx.now).await?;
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
    let now = clock::now();
    let db = db::database(env)?;
    let org = orgs::by_site_key(&db, site_key)
        .await?
        .ok_or_else(|| Problem::not_found("unknown site key"))?;
    let event = rules::validate_event(&value, now).map_err(Problem::validation)?;

    let window = clock::rfc3339(rules::rate_window_start(now));
    if rate_limits::hit(
        &db,
        &rules::rate_buckets(site_key, &event.visitor_id),
        &window,
    )
    .await?
    .is_some()
    {
        return Err(Problem::too_many_requests(format!(
            "too many tracking events; at most {} per visitor and {} per site each {} seconds",
            rules::VISITOR_EVENTS_PER_WINDOW,
            rules::SITE_EVENTS_PER_WINDOW,
            rules::RATE_WINDOW_SECONDS
        )));
    }
    if clock::random_bytes::<1>()[0] < 4 {
        // Now and then, drop counters of windows long gone.
        let old = clock::rfc3339(now - Duration::minutes(10));
        rate_limits::prune(&db, &old).await?;
    }

    let outcome = Tracker {
        db: &db,
        org_id: &org.id,
        now,
    }
    .handle(&event)
    .await?;
    if outcome.identified {
        // The lead may have a new touchpoint (or was just created): open pages refresh.
        live::notify_later(worker_ctx, env, &org.id, ChangeSource::Tracking);
    }
    http::json(
        202,
        &json!({"status": "accepted", "event_id": outcome.event_id, "identified": outcome.identified}),
    )
}

struct Tracker<'a> {
    db: &'a D1Database,
    org_id: &'a str,
    now: DateTime<Utc>,
}

struct Handled {
    event_id: String,
    identified: bool,
}

impl Tracker<'_> {
    async fn handle(&self, event: &TrackEvent) -> Result<Handled, Problem> {
        let occurred_at = clock::rfc3339(event.occurred_at);
        let visitor =
            store::touch_visitor(self.db, self.org_id, &event.visitor_id, &occurred_at).await?;
        let event_id = clock::new_id(EVENT_PREFIX);

        let lead_id = match &event.identity {
            Some(identity) => {
                let mut input = LeadInput::new(Source::Website);
                input.email = identity.email.clone();
                input.phone = identity.phone.clone();
                input.first_name = identity.first_name.clone();
                input.last_name = identity.last_name.clone();
                input.company = identity.company.clone();
                let mut detail = Map::new();
                detail.insert("form".into(), json!(event.kind.as_str()));
                if let Some(url) = &event.url {
                    detail.insert("page".into(), json!(url));
                }
                input.source_detail = detail;
                let (lead, _) =
                    lead_matching::match_or_create(self.db, self.org_id, input, self.now).await?;
                store::link_visitor(self.db, self.org_id, &event.visitor_id, &lead.id).await?;
                Some(lead.id)
            }
            None => visitor.lead_id.clone(),
        };

        store::insert_event(
            self.db,
            &store::NewEvent {
                id: &event_id,
                org_id: self.org_id,
                visitor_id: &event.visitor_id,
                kind: event.kind.as_str(),
                url: event.url.as_deref(),
                occurred_at: &occurred_at,
                attributed: lead_id.is_some(),
            },
        )
        .await?;
        let Some(lead_id) = lead_id else {
            return Ok(Handled {
                event_id,
                identified: false,
            });
        };

        let last_session = visitor
            .last_visit_touch_at
            .as_deref()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.with_timezone(&Utc));
        if event.identity.is_some() {
            self.attribute(event, &lead_id, last_session).await?;
        } else if event.kind == EventKind::PageView
            && rules::starts_new_session(last_session, event.occurred_at)
        {
            let older_than =
                clock::rfc3339(event.occurred_at - Duration::minutes(rules::SESSION_MINUTES));
            if store::open_session(
                self.db,
                self.org_id,
                &event.visitor_id,
                &occurred_at,
                &older_than,
            )
            .await?
            {
                self.record_visit(event, &lead_id, event.occurred_at, event.url.as_deref())
                    .await?;
            }
        }
        if event.kind.is_form() {
            self.record(
                &lead_id,
                event,
                event.occurred_at,
                rules::form_external_id(&event_id),
                json!({"visitor_id": event.visitor_id, "url": event.url, "tracking_event_id": event_id}),
            )
            .await?;
        }
        Ok(Handled {
            event_id,
            identified: true,
        })
    }

    /// The visitor just identified: its anonymous page views (and this event, if a page view)
    /// become visits of the lead, one per session.
    async fn attribute(
        &self,
        event: &TrackEvent,
        lead_id: &str,
        last_session: Option<DateTime<Utc>>,
    ) -> Result<(), Problem> {
        let views = store::anonymous_views(
            self.db,
            self.org_id,
            &event.visitor_id,
            rules::MAX_ATTRIBUTED_VIEWS,
        )
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
        let times: Vec<DateTime<Utc>> = timed.iter().map(|(at, _)| *at).collect();
        let starts = rules::session_starts(last_session, &times);
        for start in &starts {
            let url = timed
                .iter()
                .find(|(at, _)| at == start)
                .and_then(|(_, url)| url.as_deref());
            self.record_visit(event, lead_id, *start, url).await?;
        }
        if let Some(latest) = starts.last() {
            store::advance_session(
                self.db,
                self.org_id,
                &event.visitor_id,
                &clock::rfc3339(*latest),
            )
            .await?;
        }
        if let Some(newest) = views.first() {
            store::mark_attributed(self.db, self.org_id, &event.visitor_id, &newest.occurred_at)
                .await?;
        }
        Ok(())
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
            self.db,
            self.org_id,
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
