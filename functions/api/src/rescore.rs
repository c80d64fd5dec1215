//! `POST /v1/scoring/recalculate` (admins) schedules a full rescore of the caller's org;
//! `GET /v1/scoring/recalculate` shows how far the scoring job has got with it.
//!
//! The request flags every lead of the org and (re)queues the org's pass in `rescore_runs`; the
//! scoring worker's next run picks it up, works through it in batches and marks it done.

use leadheat_edge::http::{self, Problem};
use leadheat_edge::store::rescoring::{self, RescoreStatus};
use serde_json::{json, Value};
use worker::Response;

use crate::context::Ctx;
use crate::request::ApiRequest;

/// 202 with the queued status.
pub async fn request(_req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    ctx.require_admin()?;
    rescoring::request_recalculation(&ctx.tenant, &ctx.now_rfc3339()).await?;
    let status = rescoring::status(&ctx.tenant).await?;
    let response = http::json(202, &body(status.as_ref()))?;
    response
        .headers()
        .set("Location", "/v1/scoring/recalculate")?;
    Ok(response)
}

/// 200 with `{status, leads_done, leads_total, requested_at, started_at, finished_at,
/// config_version}`; `status` is `queued`, `running`, `done`, or `idle` when the org never had a
/// recalculation.
pub async fn status(_req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    let status = rescoring::status(&ctx.tenant).await?;
    http::json(200, &body(status.as_ref()))
}

fn body(status: Option<&RescoreStatus>) -> Value {
    match status {
        Some(s) => json!({
            "status": s.status,
            "leads_done": s.leads_done,
            "leads_total": s.leads_total,
            "config_version": s.config_version,
            "requested_at": s.requested_at,
            "started_at": s.started_at,
            "finished_at": s.finished_at,
        }),
        None => json!({
            "status": "idle",
            "leads_done": 0,
            "leads_total": 0,
            "config_version": null,
            "requested_at": null,
            "started_at": null,
            "finished_at": null,
        }),
    }
}
