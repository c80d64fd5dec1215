//! The nightly retention sweep (the `5 0 * * *` run, after the scoring work), on every shard and
//! on the directory.
//!
//! On each shard: finished inbox rows past their retention, raw website events and idle visitors
//! past theirs, idempotency keys past their 24 hours, and the inbox rows an erasure left to scrub
//! once processed. On the directory: tracking rate-limit counters of windows long gone, and
//! unrouted deliveries past the inbox retention.
//!
//! Each part is bounded per shard ([`SHARD_QUERIES`] D1 queries at most), and the whole sweep by
//! [`MAX_QUERIES`]: shards are swept whole, in an order that rotates from night to night, while the
//! cap allows; the others wait for a later night (`shards_deferred`), as does any backlog. A shard
//! that fails is logged on its own line and skipped; the sweep goes on with the next one.

use chrono::{DateTime, Datelike, Duration, Utc};
use leadheat_domain::d1_limits::MAX_QUERIES_PER_INVOCATION;
use leadheat_domain::sync::INBOX_RETENTION_DAYS;
use leadheat_domain::{idempotency, suppression, tracking};
use leadheat_edge::clock;
use leadheat_edge::db::{self, QueryMeter, StoreError};
use leadheat_edge::directory::{moves, rate_limits, unrouted, Directory};
use leadheat_edge::store::{idempotency as keys, inbox, suppressions, tracking as visits};
use leadheat_edge::tenant::Shard;
use serde::Serialize;

/// Rows deleted per statement.
pub const PRUNE_LIMIT: usize = 5000;
/// Statements per shard: tracking events, visitors (a batch of 2 statements each), idempotency
/// keys. (Finished inbox rows are the sync worker's minute prune.)
pub const EVENT_ROUNDS: usize = 4;
pub const VISITOR_ROUNDS: usize = 2;
pub const KEY_ROUNDS: usize = 2;
/// Statements on the directory for unrouted deliveries (rate-limit counters take one).
pub const UNROUTED_ROUNDS: usize = 2;
/// Rate-limit counters of windows that started this long before the sweep are dropped (windows
/// last `leadheat_domain::tracking::RATE_WINDOW_SECONDS`).
pub const RATE_LIMIT_KEEP_MINUTES: i64 = 10;
/// The most queries one shard's sweep sends: the rounds above plus the scrub (one read, one batch
/// of 2).
pub const SHARD_QUERIES: usize = EVENT_ROUNDS + 2 * VISITOR_ROUNDS + KEY_ROUNDS + 3;
/// The most queries the directory's sweep sends.
pub const DIRECTORY_QUERIES: usize = 1 + UNROUTED_ROUNDS;
/// Shards swept per night at most; more are swept on later nights, in turn.
pub const SHARDS_PER_RUN: usize = 4;
/// The most queries one sweep sends in all, whatever the number of shards.
pub const MAX_QUERIES: usize = DIRECTORY_QUERIES + SHARDS_PER_RUN * SHARD_QUERIES;
/// Queries the run still sends after the sweep (its `job_runs` record), kept out of the
/// invocation's reach.
const AFTER_SWEEP: usize = 1;

// The scoring work plans within its budget; releasing the lease, the sweep and the run's record
// fit in what it leaves of the invocation's queries.
const _: () = assert!(
    crate::job::QUERY_BUDGET + 1 + MAX_QUERIES + AFTER_SWEEP <= MAX_QUERIES_PER_INVOCATION as usize
);

/// What one sweep deleted (logged as `{"job":"retention", ...}`), summed over the shards.
#[derive(Debug, Default, Serialize)]
pub struct Swept {
    pub tracking_events: u64,
    pub tracking_visitors: u64,
    pub idempotency_keys: u64,
    pub inbox_scrubbed: u64,
    pub rate_limits: u64,
    pub unrouted: u64,
    /// Shards swept (including those that failed part-way), and shards left to a later night.
    pub shards_swept: u64,
    pub shards_deferred: u64,
    /// Of the deferred shards, those skipped because a shard move works on them.
    pub shards_moving: u64,
    /// Parts that failed (a shard, or a directory table); each is logged on its own line.
    pub errors: u64,
    /// False when a part hit its bound, a shard waits for a later night or something failed (the
    /// next night continues).
    pub finished: bool,
}

/// The shard the sweep starts with on `now`'s night: [`SHARDS_PER_RUN`] further each night, so
/// that with more shards than that, every shard is swept in turn.
fn first_shard(now: DateTime<Utc>, shard_count: u32) -> u32 {
    if shard_count == 0 {
        return 0;
    }
    let night = i64::from(now.date_naive().num_days_from_ce());
    (night * SHARDS_PER_RUN as i64).rem_euclid(i64::from(shard_count)) as u32
}

/// Sweeps as of the run's scheduled time `now`. Never fails as a whole: each failing part is
/// logged and counted in [`Swept::errors`].
pub async fn sweep(directory: &Directory, now: DateTime<Utc>) -> Swept {
    let meter = QueryMeter::start();
    let mut swept = Swept {
        finished: true,
        ..Swept::default()
    };

    if let Err(error) = sweep_directory(directory, now, &mut swept).await {
        failed(&mut swept, None, &error);
    }

    let shard_count = directory.shard_count();
    let first = first_shard(now, shard_count);
    for offset in 0..shard_count {
        let index = (first + offset) % shard_count;
        // One more query: the orgs a shard move is working on there.
        let fits = meter.used() as usize + SHARD_QUERIES < MAX_QUERIES
            && db::invocation_queries() as usize + SHARD_QUERIES + 1 + AFTER_SWEEP
                <= MAX_QUERIES_PER_INVOCATION as usize;
        if !fits {
            swept.shards_deferred += 1;
            swept.finished = false;
            continue;
        }
        // A shard an org is being moved from or to waits for a night without a move: its sweep
        // deletes rows of every org, which would change the counts the move verifies.
        match moves::moving_on_shard(directory, index).await {
            Ok(moving) if moving.is_empty() => {}
            Ok(_) => {
                swept.shards_moving += 1;
                swept.shards_deferred += 1;
                swept.finished = false;
                continue;
            }
            Err(error) => {
                failed(&mut swept, Some(index), &error);
                continue;
            }
        }
        swept.shards_swept += 1;
        let outcome = match directory.shard(index) {
            Ok(shard) => sweep_shard(&shard, now, &mut swept).await,
            Err(error) => Err(error),
        };
        if let Err(error) = outcome {
            failed(&mut swept, Some(index), &error);
        }
    }
    swept
}

/// Logs and counts a failed part (`shard` None: the directory's).
fn failed(swept: &mut Swept, shard: Option<u32>, error: &StoreError) {
    swept.errors += 1;
    swept.finished = false;
    let mut line = serde_json::json!({
        "job": "retention",
        "level": "error",
        "error": error.to_string(),
    });
    match shard {
        Some(index) => line["shard"] = serde_json::json!(index),
        None => line["part"] = serde_json::json!("directory"),
    }
    worker::console_error!("{}", line);
}

/// The directory's tables: rate-limit counters and unrouted deliveries.
async fn sweep_directory(
    directory: &Directory,
    now: DateTime<Utc>,
    swept: &mut Swept,
) -> Result<(), StoreError> {
    // Rate windows follow the wall clock (the tracking endpoint's), which may be behind a
    // scheduled time given to the cron: never drop a window that may still be counting.
    let as_of = now.min(clock::now());
    let windows_before = clock::rfc3339(as_of - Duration::minutes(RATE_LIMIT_KEEP_MINUTES));
    swept.rate_limits += rate_limits::prune(directory, &windows_before).await?;

    let received_before = clock::rfc3339(now - Duration::days(INBOX_RETENTION_DAYS));
    let (count, done) = rounds(UNROUTED_ROUNDS, || {
        unrouted::prune(directory, &received_before, PRUNE_LIMIT as u32)
    })
    .await?;
    swept.unrouted += count;
    swept.finished &= done;
    Ok(())
}

/// One shard's tables (at most [`SHARD_QUERIES`] queries). The counts of the parts done before a
/// failure are kept.
async fn sweep_shard(
    shard: &Shard,
    now: DateTime<Utc>,
    swept: &mut Swept,
) -> Result<(), StoreError> {
    let (events_before, visitors_before) = tracking::retention_cutoffs(now);
    let (events_before, visitors_before) = (
        clock::rfc3339(events_before),
        clock::rfc3339(visitors_before),
    );
    let (count, events_done) = rounds(EVENT_ROUNDS, || {
        visits::prune_events(shard, &events_before, PRUNE_LIMIT)
    })
    .await?;
    swept.tracking_events += count;
    swept.finished &= events_done;

    let (count, visitors_done) = rounds(VISITOR_ROUNDS, || {
        visits::prune_visitors(shard, &visitors_before, PRUNE_LIMIT)
    })
    .await?;
    swept.tracking_visitors += count;
    swept.finished &= visitors_done;

    let key_cutoff = clock::rfc3339(idempotency::expiry_cutoff(now));
    let (count, keys_done) =
        rounds(KEY_ROUNDS, || keys::prune(shard, &key_cutoff, PRUNE_LIMIT)).await?;
    swept.idempotency_keys += count;
    swept.finished &= keys_done;

    let scrubs = suppressions::finished_scrubs(shard, suppression::SCRUB_SWEEP_BATCH).await?;
    if !scrubs.is_empty() {
        let results = shard
            .batch(vec![
                inbox::tombstone_statement(shard, &scrubs, suppression::INBOX_TOMBSTONE)?,
                suppressions::forget_scrubs_statement(shard, &scrubs)?,
            ])
            .await?;
        swept.inbox_scrubbed += results.first().map(db::changes).unwrap_or(0);
    }
    swept.finished &= scrubs.len() < suppression::SCRUB_SWEEP_BATCH;
    Ok(())
}

/// Runs a pruning statement up to `max` times while it deletes a full batch; returns the rows
/// deleted and whether it ran out of rows (rather than rounds).
async fn rounds<F, Fut>(max: usize, mut prune: F) -> Result<(u64, bool), StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, StoreError>>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn every_shard_is_swept_in_turn() {
        let night = |d: u32| Utc.with_ymd_and_hms(2026, 3, d, 0, 5, 0).unwrap();
        // Up to SHARDS_PER_RUN shards: all of them every night (from a rotating first one).
        for d in 1..=4 {
            assert!(first_shard(night(d), 2) < 2);
        }
        // Ten shards, four a night: over three nights every shard comes up.
        let mut seen = std::collections::BTreeSet::new();
        for d in 1..=3 {
            let first = first_shard(night(d), 10);
            for offset in 0..SHARDS_PER_RUN as u32 {
                seen.insert((first + offset) % 10);
            }
        }
        assert_eq!(seen.len(), 10);
        assert_eq!(first_shard(night(1), 0), 0);
    }
}
