//! `webhook_unrouted`: signed deliveries for accounts no org has connected. Only what dedupes them
//! and shows that they arrive is kept, never the body: the data is nobody's here.

use leadheat_domain::d1_limits::{runs_within, MAX_STATEMENT_BYTES};
use serde::{Deserialize, Serialize};

use super::Directory;
use crate::args;
use crate::db::{self, StoreError};

#[derive(Debug, Serialize)]
pub struct Unrouted<'a> {
    pub platform: &'a str,
    pub dedupe_key: &'a str,
    pub account_id: Option<&'a str>,
    pub received_at: &'a str,
}

const INSERT_ROWS: &str =
    "INSERT INTO webhook_unrouted (platform, dedupe_key, account_id, received_at) \
     SELECT json_extract(value, '$.platform'), json_extract(value, '$.dedupe_key'), \
            json_extract(value, '$.account_id'), json_extract(value, '$.received_at') \
     FROM json_each(?1) WHERE true \
     ON CONFLICT (platform, dedupe_key) DO NOTHING RETURNING dedupe_key";

/// Records the parts; returns, per part, whether it was new (false for a redelivery).
pub async fn record_all(
    directory: &Directory,
    parts: &[Unrouted<'_>],
) -> Result<Vec<bool>, StoreError> {
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<String> = parts
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<_, _>>()?;
    let sizes: Vec<usize> = rows.iter().map(|row| row.len() + 1).collect();
    let room = MAX_STATEMENT_BYTES - INSERT_ROWS.len() - 2;
    let statements = runs_within(&sizes, usize::MAX, room)
        .into_iter()
        .map(|run| {
            let array = format!("[{}]", rows[run].join(","));
            db::statement(directory.db(), INSERT_ROWS, &args![array])
        })
        .collect::<Result<Vec<_>, _>>()?;
    #[derive(Deserialize)]
    struct Row {
        dedupe_key: String,
    }
    let mut new = std::collections::HashSet::new();
    for result in db::batch(directory.db(), statements).await? {
        let rows: Vec<Row> = db::rows(&result, INSERT_ROWS)?;
        new.extend(rows.into_iter().map(|r| r.dedupe_key));
    }
    Ok(parts.iter().map(|p| new.contains(p.dedupe_key)).collect())
}

/// Forgets unrouted deliveries received before `before`, at most `limit`.
pub async fn prune(directory: &Directory, before: &str, limit: u32) -> Result<u64, StoreError> {
    db::run(
        directory.db(),
        "DELETE FROM webhook_unrouted WHERE (platform, dedupe_key) IN \
         (SELECT platform, dedupe_key FROM webhook_unrouted WHERE received_at < ?1 LIMIT ?2)",
        &args![before, limit],
    )
    .await
}
