//! `pending_connections`: the accounts an OAuth callback listed, waiting for the admin's pick
//! (docs/connect.md). Rows belong to the org and the user who started the connection.

use serde::Deserialize;

use crate::args;
use crate::db::{self, StoreError};
use crate::tenant::Tenant;

#[derive(Debug, Clone, Deserialize)]
pub struct PendingConnection {
    pub id: String,
    pub user_id: String,
    pub platform: String,
    /// JSON array of `leadheat_domain::oauth::Candidate`.
    pub candidates: String,
    pub secrets_ciphertext: String,
    pub expires_at: String,
    pub created_at: String,
}

/// What a new pending connection stores.
pub struct NewPending<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub platform: &'a str,
    pub candidates: &'a str,
    pub secrets_ciphertext: &'a str,
    pub token_key_id: &'a str,
    pub expires_at: &'a str,
    pub now: &'a str,
}

pub async fn insert(tenant: &Tenant, row: &NewPending<'_>) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::run(
        db,
        "INSERT INTO pending_connections (id, org_id, user_id, platform, candidates, \
         secrets_ciphertext, token_key_id, expires_at, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        &args![
            row.id,
            org_id,
            row.user_id,
            row.platform,
            row.candidates,
            row.secrets_ciphertext,
            row.token_key_id,
            row.expires_at,
            row.now
        ],
    )
    .await?;
    Ok(())
}

/// The org's pending connection `id` for `platform`, whatever its expiry (the caller tells an
/// expired one apart).
pub async fn get(
    tenant: &Tenant,
    platform: &str,
    id: &str,
) -> Result<Option<PendingConnection>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::first(
        db,
        "SELECT id, user_id, platform, candidates, secrets_ciphertext, expires_at, created_at \
         FROM pending_connections WHERE org_id = ?1 AND id = ?2 AND platform = ?3",
        &args![org_id, id, platform],
    )
    .await
}

/// Deletes a pending connection; returns whether it was still there (two completions of one
/// pick: only the first deletes it).
pub async fn delete(tenant: &Tenant, id: &str) -> Result<bool, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let changed = db::run(
        db,
        "DELETE FROM pending_connections WHERE org_id = ?1 AND id = ?2",
        &args![org_id, id],
    )
    .await?;
    Ok(changed > 0)
}

/// Deletes the org's pending connections that expired before `now`.
pub async fn prune_expired(tenant: &Tenant, now: &str) -> Result<u64, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let changed = db::run(
        db,
        "DELETE FROM pending_connections WHERE org_id = ?1 AND expires_at < ?2",
        &args![org_id, now],
    )
    .await?;
    Ok(changed)
}
