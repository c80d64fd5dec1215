//! `job_runs` (one row per scheduled run, for observability and for resuming a pass a budget cut
//! short) and `job_leases` (mutual exclusion between overlapping runs of a job).

use serde::Deserialize;

use super::Directory;

use crate::args;
use crate::db;
use crate::db::StoreError;

/// Records that `job` ran for `cron` between the two instants, with its JSON summary.
pub async fn record_run(
    directory: &Directory,
    id: &str,
    job: &str,
    cron: &str,
    started_at: &str,
    finished_at: &str,
    summary: &serde_json::Value,
) -> Result<(), StoreError> {
    db::run(
        directory.db(),
        "INSERT INTO job_runs (id, job, cron, started_at, finished_at, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &args![id, job, cron, started_at, finished_at, summary.to_string()],
    )
    .await?;
    Ok(())
}

/// Takes the lease `name` for `holder` until `until`, unless another holder's lease is still
/// valid at `now`. Returns whether this holder now owns it.
pub async fn acquire_lease(
    directory: &Directory,
    name: &str,
    holder: &str,
    now: &str,
    until: &str,
) -> Result<bool, StoreError> {
    let db = directory.db();
    db::run(
        db,
        "INSERT INTO job_leases (name, holder, lease_until) VALUES (?1, ?2, ?3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until \
         WHERE job_leases.lease_until <= ?4 OR job_leases.holder = excluded.holder",
        &args![name, holder, until, now],
    )
    .await?;
    #[derive(Deserialize)]
    struct LeaseRow {
        holder: String,
    }
    let owner: Option<LeaseRow> = db::first(
        db,
        "SELECT holder FROM job_leases WHERE name = ?1",
        &args![name],
    )
    .await?;
    Ok(owner.is_some_and(|row| row.holder == holder))
}

/// Releases the lease if this holder still owns it.
pub async fn release_lease(
    directory: &Directory,
    name: &str,
    holder: &str,
) -> Result<(), StoreError> {
    db::run(
        directory.db(),
        "DELETE FROM job_leases WHERE name = ?1 AND holder = ?2",
        &args![name, holder],
    )
    .await?;
    Ok(())
}

/// Where the latest scoring run that worked on snapshots left them: the day, the shard and lead
/// cursor it stopped at, and whether the day's pass finished.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotProgress {
    pub day: String,
    pub shard: u32,
    pub cursor: String,
    pub finished: bool,
}

pub async fn latest_snapshot_progress(
    directory: &Directory,
) -> Result<Option<SnapshotProgress>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        day: String,
        shard: Option<u32>,
        cursor: Option<String>,
        finished: i64,
    }
    let row: Option<Row> = db::first(
        directory.db(),
        "SELECT json_extract(summary, '$.snapshot_day') AS day, \
                json_extract(summary, '$.snapshot_shard') AS shard, \
                json_extract(summary, '$.snapshot_cursor') AS cursor, \
                COALESCE(json_extract(summary, '$.snapshots_finished'), 1) AS finished \
         FROM job_runs WHERE job = 'scoring' AND json_extract(summary, '$.snapshot_day') IS NOT NULL \
         ORDER BY id DESC LIMIT 1",
        &args![],
    )
    .await?;
    Ok(row.map(|r| SnapshotProgress {
        day: r.day,
        shard: r.shard.unwrap_or(0),
        cursor: r.cursor.unwrap_or_default(),
        finished: r.finished != 0,
    }))
}
