//! `integrations`: one row per org and platform: the sealed access token, status, last event and
//! error, aggregate metrics. Which org an account belongs to is the directory's.

use leadheat_domain::sync::IntegrationStatus;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::args;
use crate::db::StoreError;
use crate::db::{self};
use crate::tenant::{Shard, Tenant};

#[derive(Debug, Clone, Deserialize)]
pub struct Integration {
    pub org_id: String,
    pub platform: String,
    pub token_ciphertext: Option<String>,
    pub token_key_id: Option<String>,
    pub status: IntegrationStatus,
    pub last_event_at: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub metrics: String,
    pub created_at: String,
    pub updated_at: String,
}

const COLUMNS: &str = "org_id, platform, token_ciphertext, token_key_id, status, last_event_at, \
     last_error, last_error_at, metrics, created_at, updated_at";

pub async fn get(tenant: &Tenant, platform: &str) -> Result<Option<Integration>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::first(
        db,
        &format!("SELECT {COLUMNS} FROM integrations WHERE org_id = ?1 AND platform = ?2"),
        &args![org_id, platform],
    )
    .await
}

pub async fn list(tenant: &Tenant) -> Result<Vec<Integration>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::all(
        db,
        &format!("SELECT {COLUMNS} FROM integrations WHERE org_id = ?1 ORDER BY platform"),
        &args![org_id],
    )
    .await
}

/// Connects (or reconnects, rotating the token) an org's platform: the sealed token and status.
/// Its accounts are the directory's (`crate::directory::accounts`), claimed before this.
pub async fn connect(
    tenant: &Tenant,
    platform: &str,
    token_ciphertext: &str,
    token_key_id: &str,
    now: &str,
) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::run(
        db,
        "INSERT INTO integrations (org_id, platform, token_ciphertext, token_key_id, status, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, 'connected', ?5, ?5) \
         ON CONFLICT (org_id, platform) DO UPDATE SET token_ciphertext = excluded.token_ciphertext, \
         token_key_id = excluded.token_key_id, status = 'connected', last_error = NULL, \
         last_error_at = NULL, updated_at = excluded.updated_at",
        &args![org_id, platform, token_ciphertext, token_key_id, now],
    )
    .await?;
    Ok(())
}

/// A token sealed by a key other than the current one (after a key rotation).
#[derive(Debug, Clone, Deserialize)]
pub struct SealedByOldKey {
    pub org_id: String,
    pub platform: String,
    pub token_ciphertext: String,
}

/// Up to `limit` tokens of connected integrations not sealed by `current_key_id`: the rotation
/// sweep's work.
pub async fn sealed_by_other_keys(
    shard: &Shard,
    current_key_id: &str,
    limit: u32,
) -> Result<Vec<SealedByOldKey>, StoreError> {
    let db = shard.db();
    db::all(
        db,
        "SELECT org_id, platform, token_ciphertext FROM integrations \
         WHERE token_ciphertext IS NOT NULL AND token_key_id IS NOT ?1 AND status = 'connected' \
         LIMIT ?2",
        &args![current_key_id, limit],
    )
    .await
}

/// Replaces a token by the same token sealed under the current key, only if the row still holds
/// `old_ciphertext` (a reconnect in between wins). Returns whether it was replaced.
pub async fn reseal_token(
    tenant: &Tenant,
    platform: &str,
    old_ciphertext: &str,
    new_ciphertext: &str,
    new_key_id: &str,
) -> Result<bool, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let changed = db::run(
        db,
        "UPDATE integrations SET token_ciphertext = ?4, token_key_id = ?5 \
         WHERE org_id = ?1 AND platform = ?2 AND token_ciphertext = ?3",
        &args![org_id, platform, old_ciphertext, new_ciphertext, new_key_id],
    )
    .await?;
    Ok(changed > 0)
}

/// Disconnects: forgets the token (the directory forgets the accounts). Returns whether the org
/// had the integration.
pub async fn disconnect(tenant: &Tenant, platform: &str, now: &str) -> Result<bool, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let changed = db::run(
        db,
        "UPDATE integrations SET status = 'disconnected', token_ciphertext = NULL, token_key_id = NULL, \
         updated_at = ?3 WHERE org_id = ?1 AND platform = ?2",
        &args![org_id, platform, now],
    )
    .await?;
    Ok(changed > 0)
}

/// The platform rejected the token: the integration needs a new one.
pub async fn mark_needs_token(
    tenant: &Tenant,
    platform: &str,
    error: &str,
    now: &str,
) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::run(
        db,
        "UPDATE integrations SET status = 'needs_token', last_error = ?3, last_error_at = ?4, updated_at = ?4 \
         WHERE org_id = ?1 AND platform = ?2 AND status = 'connected'",
        &args![org_id, platform, error, now],
    )
    .await?;
    Ok(())
}

pub async fn record_error(
    tenant: &Tenant,
    platform: &str,
    error: &str,
    now: &str,
) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::run(
        db,
        "UPDATE integrations SET last_error = ?3, last_error_at = ?4 WHERE org_id = ?1 AND platform = ?2",
        &args![org_id, platform, error, now],
    )
    .await?;
    Ok(())
}

/// An event of the platform was received and applied at `at`.
pub async fn touch_last_event(tenant: &Tenant, platform: &str, at: &str) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::run(
        db,
        "UPDATE integrations SET last_event_at = ?3 WHERE org_id = ?1 AND platform = ?2 \
         AND (last_event_at IS NULL OR last_event_at < ?3)",
        &args![org_id, platform, at],
    )
    .await?;
    Ok(())
}

/// Stores aggregate metrics under `metrics[section][key]` (e.g. story insights per media).
pub async fn put_metrics(
    tenant: &Tenant,
    platform: &str,
    section: &str,
    key: &str,
    value: Value,
    now: &str,
) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let Some(integration) = get(tenant, platform).await? else {
        return Ok(());
    };
    let mut metrics: Map<String, Value> =
        serde_json::from_str(&integration.metrics).unwrap_or_default();
    let entry = metrics
        .entry(section.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    if let Some(map) = entry.as_object_mut() {
        map.insert(key.to_string(), value);
    }
    db::run(
        db,
        "UPDATE integrations SET metrics = ?3, updated_at = ?4 WHERE org_id = ?1 AND platform = ?2",
        &args![org_id, platform, Value::Object(metrics).to_string(), now],
    )
    .await?;
    Ok(())
}
