//! The scheduled heat recalculation worker.

use worker::{event, Context, Env, Request, Response, Result, Router, ScheduleContext, ScheduledEvent};

#[event(fetch)]
pub async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    Router::new()
        .get("/health", |_, _| leadheat_edge::http::health())
        .run(req, env)
        .await
}

#[event(scheduled)]
pub async fn scheduled(_event: ScheduledEvent, _env: Env, _ctx: ScheduleContext) {}
