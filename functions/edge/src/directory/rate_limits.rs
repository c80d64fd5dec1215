//! `rate_limits`: fixed-window counters. Each hit increments its buckets' counters for the current
//! window in one batch and reports whether any went over its limit.

use serde::Deserialize;

use super::Directory;

use crate::args;
use crate::db;
use crate::db::StoreError;

#[derive(Debug, Deserialize)]
struct CountRow {
    count: i64,
}

/// Counts one hit against every `(bucket, limit)` for the window starting at `window_start`.
/// Returns the first bucket that is now over its limit, if any.
pub async fn hit(
    directory: &Directory,
    buckets: &[(String, i64)],
    window_start: &str,
) -> Result<Option<String>, StoreError> {
    let db = directory.db();
    let sql = "INSERT INTO rate_limits (bucket, window_start, count) VALUES (?1, ?2, 1) \
               ON CONFLICT (bucket, window_start) DO UPDATE SET count = count + 1 RETURNING count";
    let statements = buckets
        .iter()
        .map(|(bucket, _)| db::statement(db, sql, &args![bucket.as_str(), window_start]))
        .collect::<Result<Vec<_>, _>>()?;
    let results = db::batch(db, statements).await?;
    for ((bucket, limit), result) in buckets.iter().zip(&results) {
        let rows: Vec<CountRow> = db::rows(result, sql)?;
        if rows.first().is_some_and(|row| row.count > *limit) {
            return Ok(Some(bucket.clone()));
        }
    }
    Ok(None)
}

/// Drops counters of windows that ended before `before`.
pub async fn prune(directory: &Directory, before: &str) -> Result<u64, StoreError> {
    let db = directory.db();
    db::run(
        db,
        "DELETE FROM rate_limits WHERE window_start < ?1",
        &args![before],
    )
    .await
}

/// Counts one hit against `bucket` for the window starting at `window_start` and returns the
/// window's count with this hit (the caller's rule decides what it allows).
pub async fn count_hit(
    directory: &Directory,
    bucket: &str,
    window_start: &str,
) -> Result<i64, StoreError> {
    let db = directory.db();
    let rows: Vec<CountRow> = db::all(
        db,
        "INSERT INTO rate_limits (bucket, window_start, count) VALUES (?1, ?2, 1) \
         ON CONFLICT (bucket, window_start) DO UPDATE SET count = count + 1 RETURNING count",
        &args![bucket, window_start],
    )
    .await?;
    Ok(rows.first().map_or(1, |row| row.count))
}
