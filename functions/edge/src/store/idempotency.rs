//! `idempotency_keys`: the first response to an `Idempotency-Key`, replayed for the same request.
//!
//! A key is claimed before the request runs (so two concurrent requests with one key cannot both
//! run), completed with the response afterwards, and released when the response is not kept.

use serde::Deserialize;
use worker::D1Database;

use crate::args;
use crate::db;
use crate::http::Problem;

/// A stored key; `status_code` is `None` while its first request is still running.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyRow {
    pub request_hash: String,
    pub status_code: Option<i64>,
    pub response_body: Option<String>,
}

pub struct Claim<'a> {
    pub org_id: &'a str,
    pub key: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub request_hash: &'a str,
    pub now: &'a str,
    /// Rows created before this have expired and may be taken over.
    pub cutoff: &'a str,
}

/// Claims the key for this request. `true`: it is ours (new, or the old row had expired).
pub async fn claim(db: &D1Database, claim: &Claim<'_>) -> Result<bool, Problem> {
    let changed = db::run(
        db,
        "INSERT INTO idempotency_keys (org_id, idem_key, method, path, request_hash, status_code, response_body, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL, ?6) \
         ON CONFLICT (org_id, idem_key) DO UPDATE SET method = excluded.method, path = excluded.path, \
         request_hash = excluded.request_hash, status_code = NULL, response_body = NULL, created_at = excluded.created_at \
         WHERE idempotency_keys.created_at < ?7",
        &args![
            claim.org_id,
            claim.key,
            claim.method,
            claim.path,
            claim.request_hash,
            claim.now,
            claim.cutoff
        ],
    )
    .await?;
    Ok(changed == 1)
}

/// The unexpired row of a key.
pub async fn get(
    db: &D1Database,
    org_id: &str,
    key: &str,
    cutoff: &str,
) -> Result<Option<KeyRow>, Problem> {
    db::first(
        db,
        "SELECT request_hash, status_code, response_body FROM idempotency_keys \
         WHERE org_id = ?1 AND idem_key = ?2 AND created_at >= ?3",
        &args![org_id, key, cutoff],
    )
    .await
}

/// Stores the response of the claimed request.
pub async fn complete(
    db: &D1Database,
    org_id: &str,
    key: &str,
    request_hash: &str,
    status: u16,
    body: &str,
) -> Result<(), Problem> {
    db::run(
        db,
        "UPDATE idempotency_keys SET status_code = ?4, response_body = ?5 \
         WHERE org_id = ?1 AND idem_key = ?2 AND request_hash = ?3 AND status_code IS NULL",
        &args![org_id, key, request_hash, status as i64, body],
    )
    .await?;
    Ok(())
}

/// Forgets a claimed key whose response is not kept (a server error), so a retry runs again.
pub async fn release(
    db: &D1Database,
    org_id: &str,
    key: &str,
    request_hash: &str,
) -> Result<(), Problem> {
    db::run(
        db,
        "DELETE FROM idempotency_keys WHERE org_id = ?1 AND idem_key = ?2 AND request_hash = ?3 AND status_code IS NULL",
        &args![org_id, key, request_hash],
    )
    .await?;
    Ok(())
}
