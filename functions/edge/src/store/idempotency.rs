//! `idempotency_keys`: the first response to an `Idempotency-Key`, replayed for the same request.
//!
//! A key is claimed before the request runs (so two concurrent requests with one key cannot both
//! run), completed with the response afterwards, and released when the response is not kept.
//! Keys are per user: every statement names the org and the user (`sub`) along with the key.

use serde::Deserialize;
use worker::D1PreparedStatement;

use crate::args;
use crate::db;
use crate::db::StoreError;
use crate::tenant::{Shard, Tenant};

/// A stored key; `status_code` is `None` while its first request is still running.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyRow {
    pub request_hash: String,
    pub status_code: Option<i64>,
    pub response_body: Option<String>,
}

pub struct Claim<'a> {
    /// The token's `sub`: whose key it is.
    pub user_id: &'a str,
    pub key: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub request_hash: &'a str,
    pub now: &'a str,
    /// Rows created before this have expired and may be taken over.
    pub cutoff: &'a str,
}

/// Claims the key for this request. `true`: it is ours (new, or the old row had expired).
pub async fn claim(tenant: &Tenant, claim: &Claim<'_>) -> Result<bool, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let changed = db::run(
        db,
        "INSERT INTO idempotency_keys (org_id, idem_key, method, path, request_hash, status_code, response_body, created_at, user_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL, ?6, ?8) \
         ON CONFLICT (org_id, user_id, idem_key) DO UPDATE SET method = excluded.method, path = excluded.path, \
         request_hash = excluded.request_hash, status_code = NULL, response_body = NULL, created_at = excluded.created_at \
         WHERE idempotency_keys.created_at < ?7",
        &args![
            org_id,
            claim.key,
            claim.method,
            claim.path,
            claim.request_hash,
            claim.now,
            claim.cutoff,
            claim.user_id
        ],
    )
    .await?;
    Ok(changed == 1)
}

/// The unexpired row of a user's key (an expired one is never served, swept or not).
pub async fn get(
    tenant: &Tenant,
    user_id: &str,
    key: &str,
    cutoff: &str,
) -> Result<Option<KeyRow>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::first(
        db,
        "SELECT request_hash, status_code, response_body FROM idempotency_keys \
         WHERE org_id = ?1 AND user_id = ?4 AND idem_key = ?2 AND created_at >= ?3",
        &args![org_id, key, cutoff, user_id],
    )
    .await
}

/// Stores the response of the claimed request.
pub async fn complete(
    tenant: &Tenant,
    claim: &Claim<'_>,
    status: u16,
    body: &str,
) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::run(
        db,
        "UPDATE idempotency_keys SET status_code = ?4, response_body = ?5 \
         WHERE org_id = ?1 AND user_id = ?6 AND idem_key = ?2 AND request_hash = ?3 AND status_code IS NULL",
        &args![
            org_id,
            claim.key,
            claim.request_hash,
            status as i64,
            body,
            claim.user_id
        ],
    )
    .await?;
    Ok(())
}

/// Forgets a claimed key whose response is not kept (a server error), so a retry runs again.
pub async fn release(tenant: &Tenant, claim: &Claim<'_>) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::run(
        db,
        "DELETE FROM idempotency_keys WHERE org_id = ?1 AND user_id = ?4 AND idem_key = ?2 AND request_hash = ?3 \
         AND status_code IS NULL",
        &args![org_id, claim.key, claim.request_hash, claim.user_id],
    )
    .await?;
    Ok(())
}

/// Erasure: forgets every stored response of the org that names one of `lead_ids` (the erased
/// lead and the leads once merged into it), whoever stored it.
pub fn erase_naming_statement(
    tenant: &Tenant,
    lead_ids: &[String],
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let ids = serde_json::to_string(lead_ids).map_err(|e| StoreError::backend("lead ids", e))?;
    db::statement(
        db,
        "DELETE FROM idempotency_keys WHERE org_id = ?1 AND response_body IS NOT NULL \
         AND EXISTS (SELECT 1 FROM json_each(?2) WHERE instr(idempotency_keys.response_body, value) > 0)",
        &args![org_id, ids],
    )
}

/// Retention: deletes up to `limit` keys created before `cutoff` (expired). Returns how many.
pub async fn prune(shard: &Shard, cutoff: &str, limit: usize) -> Result<u64, StoreError> {
    let db = shard.db();
    db::run(
        db,
        "DELETE FROM idempotency_keys WHERE rowid IN \
         (SELECT rowid FROM idempotency_keys WHERE created_at < ?1 LIMIT ?2)",
        &args![cutoff, limit],
    )
    .await
}
