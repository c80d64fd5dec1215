//! `erasure_suppressions` and `erasure_inbox_scrubs`: what an erased lead leaves behind.
//!
//! A suppression is the hash of one identity of an erased lead with the latest erasure time
//! (`leadheat_domain::suppression`); older events naming it are dropped. A scrub is an inbox row
//! that named the person but was not processed yet when the lead was erased: it is kept (it may
//! hold other people's events) and its body is replaced by the nightly sweep once it is processed.

use serde::Deserialize;
use worker::D1PreparedStatement;

use crate::args;
use crate::db;
use crate::db::StoreError;
use crate::store::inbox;
use crate::tenant::{Shard, Tenant};

/// Records that the identities behind `hashes` were erased at `erased_at` (a later erasure of the
/// same identity moves the time forward, never back).
pub fn record_statement(
    tenant: &Tenant,
    hashes: &[String],
    erased_at: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let hashes = serde_json::to_string(hashes).map_err(|e| StoreError::backend("hashes", e))?;
    db::statement(
        db,
        "INSERT INTO erasure_suppressions (org_id, identity_hash, erased_at) \
         SELECT ?1, value, ?3 FROM json_each(?2) WHERE true \
         ON CONFLICT (org_id, identity_hash) DO UPDATE SET erased_at = MAX(erased_at, excluded.erased_at)",
        &args![org_id, hashes, erased_at],
    )
}

/// The latest erasure of any of `hashes` in the org, if one was erased.
pub async fn latest_erasure(
    tenant: &Tenant,
    hashes: &[String],
) -> Result<Option<String>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    #[derive(Deserialize)]
    struct Row {
        erased_at: Option<String>,
    }
    if hashes.is_empty() {
        return Ok(None);
    }
    let hashes = serde_json::to_string(hashes).map_err(|e| StoreError::backend("hashes", e))?;
    let row: Option<Row> = db::first(
        db,
        "SELECT MAX(erased_at) AS erased_at FROM erasure_suppressions \
         WHERE org_id = ?1 AND identity_hash IN (SELECT value FROM json_each(?2))",
        &args![org_id, hashes],
    )
    .await?;
    Ok(row.and_then(|r| r.erased_at))
}

/// Remembers the org's inbox rows that name the person (`needles`, see
/// [`inbox::NAMES_ANY_NEEDLE`]) and are not processed yet, to scrub them once they are.
pub fn record_unfinished_scrubs_statement(
    tenant: &Tenant,
    needles: &[String],
    requested_at: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let needles = serde_json::to_string(needles).map_err(|e| StoreError::backend("needles", e))?;
    db::statement(
        db,
        &format!(
            "INSERT INTO erasure_inbox_scrubs (inbox_id, org_id, requested_at) \
             SELECT id, org_id, ?3 FROM webhook_inbox \
             WHERE org_id = ?1 AND status IN ('pending', 'processing', 'dead') AND {} \
             ON CONFLICT (inbox_id) DO NOTHING",
            inbox::NAMES_ANY_NEEDLE
        ),
        &args![org_id, needles, requested_at],
    )
}

/// Up to `limit` scrubs whose inbox row is finished (processed or ignored) or gone: ready for
/// [`inbox::tombstone_statement`] and [`forget_scrubs_statement`].
pub async fn finished_scrubs(shard: &Shard, limit: usize) -> Result<Vec<String>, StoreError> {
    let db = shard.db();
    #[derive(Deserialize)]
    struct Row {
        inbox_id: String,
    }
    let rows: Vec<Row> = db::all(
        db,
        "SELECT s.inbox_id FROM erasure_inbox_scrubs AS s LEFT JOIN webhook_inbox AS w ON w.id = s.inbox_id \
         WHERE w.id IS NULL OR w.status IN ('processed', 'ignored') ORDER BY s.inbox_id LIMIT ?1",
        &args![limit],
    )
    .await?;
    Ok(rows.into_iter().map(|row| row.inbox_id).collect())
}

/// Forgets the scrubs of these inbox rows (done).
pub fn forget_scrubs_statement(
    shard: &Shard,
    inbox_ids: &[String],
) -> Result<D1PreparedStatement, StoreError> {
    let db = shard.db();
    let ids = serde_json::to_string(inbox_ids).map_err(|e| StoreError::backend("ids", e))?;
    db::statement(
        db,
        "DELETE FROM erasure_inbox_scrubs WHERE inbox_id IN (SELECT value FROM json_each(?1))",
        &args![ids],
    )
}
