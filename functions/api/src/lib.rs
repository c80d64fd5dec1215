//! The lead API worker: `/v1/*` for the sales UI and `/track/*` for the company website.

use worker::{event, Context, Env, Request, Response, Result, Router};

#[event(fetch)]
pub async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    Router::new()
        .get("/v1/health", |_, _| leadheat_edge::http::health())
        .get("/health", |_, _| leadheat_edge::http::health())
        .run(req, env)
        .await
}
