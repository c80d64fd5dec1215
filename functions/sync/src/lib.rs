//! The social sync worker: consumes the webhook queue and reconciles the inbox on a cron.

use worker::{event, Context, Env, MessageBatch, Request, Response, Result, Router, ScheduleContext, ScheduledEvent};

#[event(fetch)]
pub async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    Router::new()
        .get("/health", |_, _| leadheat_edge::http::health())
        .run(req, env)
        .await
}

#[event(queue)]
pub async fn queue(batch: MessageBatch<serde_json::Value>, _env: Env, _ctx: Context) -> Result<()> {
    batch.ack_all();
    Ok(())
}

#[event(scheduled)]
pub async fn scheduled(_event: ScheduledEvent, _env: Env, _ctx: ScheduleContext) {}
