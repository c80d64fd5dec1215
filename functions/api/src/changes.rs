//! `GET /v1/changes?since=<cursor>`: a cheap "did anything change?" probe that the sales UI polls
//! every couple of seconds, refetching what is on screen only when the answer is yes.
//!
//! The cursor is the org's latest write time: the newest `interactions.created_at` (every
//! touchpoint, whichever way it arrived: manual, webhook, sync, tracking), `leads.updated_at`
//! (creates, edits, moves) or `heat_level_changes.changed_at` (a badge changing colour, the
//! scoring job's rescoring included), whichever is latest. All are RFC 3339 storage-format
//! strings, so they compare as text. Each is one `MAX()` per table restricted to the org; with an
//! index led by `(org_id, <time>)` SQLite answers each with a single index seek.
//!
//! `{"cursor": "<RFC 3339>", "changed": bool}`: `changed` is true when the cursor is later than
//! `since`; without `since` it is false (the caller has just loaded and keeps the cursor). An org
//! with no data yet has the epoch as its cursor, so the cursor is always a string.
//!
//! Pages are told to ask here by the live WebSocket (`live.rs`) as soon as a change is committed,
//! and poll it as the fallback. Not covered: a rescoring that moves scores without changing a
//! level, and deletions (neither bumps these columns); the live notice still refreshes the page.

use chrono::{DateTime, Utc};
use leadheat_edge::http::{self, Problem};
use leadheat_edge::{clock, store};
use serde_json::json;
use worker::Response;

use crate::context::Ctx;
use crate::request::ApiRequest;

/// The cursor of an org without any lead or touchpoint.
const EPOCH: &str = "1970-01-01T00:00:00.000Z";

pub async fn get(req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    let since = match req.query("since") {
        None => None,
        Some(raw) => Some(
            DateTime::parse_from_rfc3339(raw.trim())
                .map(|at| clock::rfc3339(at.with_timezone(&Utc)))
                .map_err(|_| {
                    Problem::field(
                        "since",
                        "must be a cursor from a previous answer (an RFC 3339 time)",
                    )
                })?,
        ),
    };
    let cursor = store::latest_write_at(&ctx.tenant)
        .await?
        .unwrap_or_else(|| EPOCH.to_string());
    let changed = since.is_some_and(|since| cursor > since);
    let mut response = http::json(200, &json!({"cursor": cursor, "changed": changed}))?;
    response.headers_mut().set("Cache-Control", "no-store")?;
    Ok(response)
}
