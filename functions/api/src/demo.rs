//! The demo workspace of development: `GET /v1/demo-data` says whether the org can load it, and
//! `POST /v1/demo-data` (admins) loads it into an empty org.
//!
//! Only a deployment whose `DEMO_DATA` variable is `on` offers it. The development defaults
//! (`.dev.vars.example`) turn it on; `wrangler.toml` does not, so a deployed worker answers 404.

use leadheat_edge::config;
use leadheat_edge::http::{self, Problem};
use leadheat_edge::store::leads as leads_store;
use leadheat_usecases::demo;
use serde_json::json;
use worker::Response;

use crate::context::{refused, Ctx};
use crate::request::ApiRequest;

/// The variable, and the value, that turn the demo on.
const ENABLED_BY: (&str, &str) = ("DEMO_DATA", "on");

fn enabled(ctx: &Ctx) -> bool {
    config::optional(&ctx.env, ENABLED_BY.0).as_deref() == Some(ENABLED_BY.1)
}

/// 200 `{"enabled", "available"}`: available when enabled and the org has no lead yet.
pub async fn status(_req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    let enabled = enabled(ctx);
    let available = enabled && !leads_store::any(&ctx.tenant).await?;
    http::json(200, &json!({ "enabled": enabled, "available": available }))
}

/// 201 `{"leads", "touchpoints", "hot"}`; 404 where the demo is off, 409 when the org has leads.
pub async fn load(_req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    ctx.require_admin()?;
    if !enabled(ctx) {
        return Err(Problem::not_found(
            "demo data is a development feature and is off in this deployment",
        ));
    }
    let loaded = demo::load(&ctx.tenant, &ctx.claims.sub, ctx.now)
        .await
        .map_err(refused)?;
    http::json(
        201,
        &json!({ "leads": loaded.leads, "touchpoints": loaded.touchpoints, "hot": loaded.hot }),
    )
}
