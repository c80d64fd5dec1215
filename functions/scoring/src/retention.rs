//! The nightly retention sweep (the `5 0 * * *` run, after the scoring work): raw website events
//! and idle visitors past their retention, idempotency keys past their 24 hours, and the inbox
//! rows an erasure left to scrub once processed. Each part is bounded per run (at most
//! [`MAX_QUERIES`] D1 queries in all); a backlog drains night after night.

use chrono::{DateTime, Utc};
use leadheat_domain::{idempotency, suppression, tracking};
use leadheat_edge::http::Problem;
use leadheat_edge::store::{idempotency as keys, inbox, suppressions, tracking as visits};
use leadheat_edge::{clock, db};
use serde::Serialize;
use worker::D1Database;

/// Rows deleted per statement.
pub const PRUNE_LIMIT: usize = 5000;
/// Statements per run: tracking events, visitors (a batch of 2 statements each), idempotency keys.
pub const EVENT_ROUNDS: usize = 4;
pub const VISITOR_ROUNDS: usize = 2;
pub const KEY_ROUNDS: usize = 2;
/// The most queries one sweep sends: the rounds above plus the scrub (one read, one batch of 2).
pub const MAX_QUERIES: usize = EVENT_ROUNDS + 2 * VISITOR_ROUNDS + KEY_ROUNDS + 3;

/// What one sweep deleted (logged as `{"job":"retention", ...}`).
#[derive(Debug, Default, Serialize)]
pub struct Swept {
    pub tracking_events: u64,
    pub tracking_visitors: u64,
    pub idempotency_keys: u64,
    pub inbox_scrubbed: u64,
    /// False when a part hit its bound (the next night continues).
    pub finished: bool,
}

/// Sweeps as of the run's scheduled time `now`.
pub async fn sweep(db: &D1Database, now: DateTime<Utc>) -> Result<Swept, Problem> {
    let (events_before, visitors_before) = tracking::retention_cutoffs(now);
    let (events_before, visitors_before) = (
        clock::rfc3339(events_before),
        clock::rfc3339(visitors_before),
    );
    let mut swept = Swept::default();
    let (count, events_done) = rounds(EVENT_ROUNDS, || {
        visits::prune_events(db, &events_before, PRUNE_LIMIT)
    })
    .await?;
    swept.tracking_events = count;
    let (count, visitors_done) = rounds(VISITOR_ROUNDS, || {
        visits::prune_visitors(db, &visitors_before, PRUNE_LIMIT)
    })
    .await?;
    swept.tracking_visitors = count;
    let key_cutoff = clock::rfc3339(idempotency::expiry_cutoff(now));
    let (count, keys_done) =
        rounds(KEY_ROUNDS, || keys::prune(db, &key_cutoff, PRUNE_LIMIT)).await?;
    swept.idempotency_keys = count;

    let scrubs = suppressions::finished_scrubs(db, suppression::SCRUB_SWEEP_BATCH).await?;
    if !scrubs.is_empty() {
        let results = db::batch(
            db,
            vec![
                inbox::tombstone_statement(db, &scrubs, suppression::INBOX_TOMBSTONE)?,
                suppressions::forget_scrubs_statement(db, &scrubs)?,
            ],
        )
        .await?;
        swept.inbox_scrubbed = results.first().map(db::changes).unwrap_or(0);
    }
    swept.finished =
        events_done && visitors_done && keys_done && scrubs.len() < suppression::SCRUB_SWEEP_BATCH;
    Ok(swept)
}

/// Runs a pruning statement up to `max` times while it deletes a full batch; returns the rows
/// deleted and whether it ran out of rows (rather than rounds).
async fn rounds<F, Fut>(max: usize, mut prune: F) -> Result<(u64, bool), Problem>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, Problem>>,
{
    let mut total = 0;
    for _ in 0..max {
        let deleted = prune().await?;
        total += deleted;
        if deleted < PRUNE_LIMIT as u64 {
            return Ok((total, true));
        }
    }
    Ok((total, false))
}
