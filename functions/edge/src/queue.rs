//! The social events queue: what flows from the webhook worker (and replays) to the sync consumer.

use serde::{Deserialize, Serialize};
use worker::Env;

use crate::http::Problem;

pub const SOCIAL_EVENTS_BINDING: &str = "SOCIAL_EVENTS";

/// A queue message names an inbox row and its org (whose shard holds the row); the event itself
/// stays in D1, the durable copy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SocialEventMessage {
    pub org_id: String,
    pub inbox_id: String,
    /// Set by the sync worker's reconciliation to its scheduled time: the consumer never judges
    /// an event due earlier than the run that found it due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
}

/// Enqueues an inbox event of the org for the sync consumer.
pub async fn enqueue(env: &Env, org_id: &str, inbox_id: &str) -> Result<(), Problem> {
    enqueue_as_of(env, org_id, inbox_id, None).await
}

/// Messages one `sendBatch` call may carry (Cloudflare Queues' limit).
const MAX_BATCH_MESSAGES: usize = 100;

/// Enqueues several inbox events (org id, inbox id) with as few calls as the queue allows (one
/// per 100).
pub async fn enqueue_all(env: &Env, events: &[(String, String)]) -> Result<(), Problem> {
    let queue = env
        .queue(SOCIAL_EVENTS_BINDING)
        .map_err(|e| Problem::internal("binding SOCIAL_EVENTS", e))?;
    for chunk in events.chunks(MAX_BATCH_MESSAGES) {
        let messages: Vec<SocialEventMessage> = chunk
            .iter()
            .map(|(org_id, inbox_id)| SocialEventMessage {
                org_id: org_id.clone(),
                inbox_id: inbox_id.clone(),
                as_of: None,
            })
            .collect();
        queue
            .send_batch(messages)
            .await
            .map_err(|e| Problem::internal("enqueue social events", e))?;
    }
    Ok(())
}

/// Enqueues an inbox event found due at `as_of` (the reconciliation's scheduled time).
pub async fn enqueue_as_of(
    env: &Env,
    org_id: &str,
    inbox_id: &str,
    as_of: Option<&str>,
) -> Result<(), Problem> {
    let queue = env
        .queue(SOCIAL_EVENTS_BINDING)
        .map_err(|e| Problem::internal("binding SOCIAL_EVENTS", e))?;
    queue
        .send(SocialEventMessage {
            org_id: org_id.to_string(),
            inbox_id: inbox_id.to_string(),
            as_of: as_of.map(str::to_string),
        })
        .await
        .map_err(|e| Problem::internal("enqueue social event", e))
}
