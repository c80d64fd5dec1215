//! The webhook worker: `/webhooks/facebook`, `/webhooks/instagram`, `/webhooks/linkedin`.

use worker::{event, Context, Env, Request, Response, Result, Router};

#[event(fetch)]
pub async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    Router::new()
        .get("/webhooks/health", |_, _| leadheat_edge::http::health())
        .get("/health", |_, _| leadheat_edge::http::health())
        .run(req, env)
        .await
}
