//! `job_runs`: one row per scheduled run, for observability.

use worker::D1Database;

use crate::args;
use crate::db;
use crate::http::Problem;

/// Records that `job` ran for `cron` between the two instants, with its JSON summary.
pub async fn record_run(
    db: &D1Database,
    id: &str,
    job: &str,
    cron: &str,
    started_at: &str,
    finished_at: &str,
    summary: &serde_json::Value,
) -> Result<(), Problem> {
    db::run(
        db,
        "INSERT INTO job_runs (id, job, cron, started_at, finished_at, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &args![id, job, cron, started_at, finished_at, summary.to_string()],
    )
    .await?;
    Ok(())
}
