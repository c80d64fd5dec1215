//! `integrations` (one row per org and platform: the sealed access token, status, last event and
//! error, aggregate metrics) and `integration_accounts` (which org a platform account belongs to).

use serde::Deserialize;
use serde_json::{Map, Value};
use worker::D1Database;

use crate::args;
use crate::db::{self, Arg};
use crate::http::Problem;

#[derive(Debug, Clone, Deserialize)]
pub struct Integration {
    pub org_id: String,
    pub platform: String,
    pub token_ciphertext: Option<String>,
    pub token_key_id: Option<String>,
    pub status: String,
    pub last_event_at: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub metrics: String,
    pub created_at: String,
    pub updated_at: String,
}

const COLUMNS: &str = "org_id, platform, token_ciphertext, token_key_id, status, last_event_at, \
     last_error, last_error_at, metrics, created_at, updated_at";

#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub platform: String,
    pub account_id: String,
    pub kind: String,
}

pub async fn get(
    db: &D1Database,
    org_id: &str,
    platform: &str,
) -> Result<Option<Integration>, Problem> {
    db::first(
        db,
        &format!("SELECT {COLUMNS} FROM integrations WHERE org_id = ?1 AND platform = ?2"),
        &args![org_id, platform],
    )
    .await
}

pub async fn list(db: &D1Database, org_id: &str) -> Result<Vec<Integration>, Problem> {
    db::all(
        db,
        &format!("SELECT {COLUMNS} FROM integrations WHERE org_id = ?1 ORDER BY platform"),
        &args![org_id],
    )
    .await
}

pub async fn accounts(db: &D1Database, org_id: &str) -> Result<Vec<Account>, Problem> {
    db::all(
        db,
        "SELECT platform, account_id, kind FROM integration_accounts WHERE org_id = ?1 ORDER BY platform, kind, account_id",
        &args![org_id],
    )
    .await
}

/// The org that connected `account_id` on `platform`.
pub async fn org_for_account(
    db: &D1Database,
    platform: &str,
    account_id: &str,
) -> Result<Option<String>, Problem> {
    #[derive(Deserialize)]
    struct Row {
        org_id: String,
    }
    let row: Option<Row> = db::first(
        db,
        "SELECT org_id FROM integration_accounts WHERE platform = ?1 AND account_id = ?2",
        &args![platform, account_id],
    )
    .await?;
    Ok(row.map(|r| r.org_id))
}

/// Accounts among `account_ids` that another org has connected.
pub async fn taken_by_others(
    db: &D1Database,
    org_id: &str,
    platform: &str,
    account_ids: &[String],
) -> Result<Vec<String>, Problem> {
    let mut taken = Vec::new();
    for chunk in account_ids.chunks(50) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", i + 3)).collect();
        let mut values: Vec<Arg> = args![org_id, platform];
        values.extend(chunk.iter().map(Arg::from));
        let rows: Vec<Account> = db::all(
            db,
            &format!(
                "SELECT platform, account_id, kind FROM integration_accounts \
                 WHERE org_id <> ?1 AND platform = ?2 AND account_id IN ({})",
                placeholders.join(", ")
            ),
            &values,
        )
        .await?;
        taken.extend(rows.into_iter().map(|r| r.account_id));
    }
    Ok(taken)
}

/// Connects (or reconnects, rotating the token) an org's platform with its accounts, atomically:
/// the sealed token and status, and the account list replacing the previous one. Fails, storing
/// nothing, when another org holds one of the accounts.
pub async fn connect(
    db: &D1Database,
    org_id: &str,
    platform: &str,
    token_ciphertext: &str,
    token_key_id: &str,
    accounts: &[(String, &str)],
    now: &str,
) -> Result<(), Problem> {
    let mut statements = vec![
        db::statement(
            db,
            "INSERT INTO integrations (org_id, platform, token_ciphertext, token_key_id, status, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, 'connected', ?5, ?5) \
             ON CONFLICT (org_id, platform) DO UPDATE SET token_ciphertext = excluded.token_ciphertext, \
             token_key_id = excluded.token_key_id, status = 'connected', last_error = NULL, \
             last_error_at = NULL, updated_at = excluded.updated_at",
            &args![org_id, platform, token_ciphertext, token_key_id, now],
        )?,
        db::statement(
            db,
            "DELETE FROM integration_accounts WHERE org_id = ?1 AND platform = ?2",
            &args![org_id, platform],
        )?,
    ];
    for (account_id, kind) in accounts {
        statements.push(db::statement(
            db,
            // No ON CONFLICT: an account another org holds fails the insert, which rolls the
            // whole batch back, so a connect never half-succeeds (the caller answers 409).
            "INSERT INTO integration_accounts (platform, account_id, org_id, kind, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            &args![platform, account_id, org_id, *kind, now],
        )?);
    }
    db::batch(db, statements).await?;
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
    db: &D1Database,
    current_key_id: &str,
    limit: u32,
) -> Result<Vec<SealedByOldKey>, Problem> {
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
    db: &D1Database,
    org_id: &str,
    platform: &str,
    old_ciphertext: &str,
    new_ciphertext: &str,
    new_key_id: &str,
) -> Result<bool, Problem> {
    let changed = db::run(
        db,
        "UPDATE integrations SET token_ciphertext = ?4, token_key_id = ?5 \
         WHERE org_id = ?1 AND platform = ?2 AND token_ciphertext = ?3",
        &args![org_id, platform, old_ciphertext, new_ciphertext, new_key_id],
    )
    .await?;
    Ok(changed > 0)
}

/// Disconnects: forgets the token and the accounts (events for them are then ignored).
pub async fn disconnect(
    db: &D1Database,
    org_id: &str,
    platform: &str,
    now: &str,
) -> Result<bool, Problem> {
    let results = db::batch(
        db,
        vec![
            db::statement(
                db,
                "UPDATE integrations SET status = 'disconnected', token_ciphertext = NULL, token_key_id = NULL, \
                 updated_at = ?3 WHERE org_id = ?1 AND platform = ?2",
                &args![org_id, platform, now],
            )?,
            db::statement(
                db,
                "DELETE FROM integration_accounts WHERE org_id = ?1 AND platform = ?2",
                &args![org_id, platform],
            )?,
        ],
    )
    .await?;
    Ok(results.first().map(db::changes).unwrap_or(0) > 0)
}

/// The platform rejected the token: the integration needs a new one.
pub async fn mark_needs_token(
    db: &D1Database,
    org_id: &str,
    platform: &str,
    error: &str,
    now: &str,
) -> Result<(), Problem> {
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
    db: &D1Database,
    org_id: &str,
    platform: &str,
    error: &str,
    now: &str,
) -> Result<(), Problem> {
    db::run(
        db,
        "UPDATE integrations SET last_error = ?3, last_error_at = ?4 WHERE org_id = ?1 AND platform = ?2",
        &args![org_id, platform, error, now],
    )
    .await?;
    Ok(())
}

/// An event of the platform was received and applied at `at`.
pub async fn touch_last_event(
    db: &D1Database,
    org_id: &str,
    platform: &str,
    at: &str,
) -> Result<(), Problem> {
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
    db: &D1Database,
    org_id: &str,
    platform: &str,
    section: &str,
    key: &str,
    value: Value,
    now: &str,
) -> Result<(), Problem> {
    let Some(integration) = get(db, org_id, platform).await? else {
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

/// The orgs that connected any of `account_ids` on `platform`, by account (accounts no org has
/// connected are absent). Looked up with `IN (...)` lists cut by `d1_limits::runs_within`, so that
/// no statement binds more parameters, or more bytes, than D1 allows, whatever the number of
/// accounts (a Meta delivery may batch hundreds of pages).
pub async fn orgs_for_accounts(
    db: &D1Database,
    platform: &str,
    account_ids: &[String],
) -> Result<std::collections::HashMap<String, String>, Problem> {
    use leadheat_domain::d1_limits::{in_list_capacity, runs_within, MAX_STATEMENT_BYTES};
    #[derive(Deserialize)]
    struct Row {
        account_id: String,
        org_id: String,
    }
    const SQL: &str = "SELECT account_id, org_id FROM integration_accounts \
                       WHERE platform = ?1 AND account_id IN ()";
    // Each id adds its bytes and a placeholder of at most ", ?100".
    let sizes: Vec<usize> = account_ids.iter().map(|id| id.len() + 6).collect();
    let room = MAX_STATEMENT_BYTES - SQL.len() - platform.len();
    let mut orgs = std::collections::HashMap::new();
    for run in runs_within(&sizes, in_list_capacity(1), room) {
        let chunk = &account_ids[run];
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", i + 2)).collect();
        let mut values: Vec<Arg> = args![platform];
        values.extend(chunk.iter().map(Arg::from));
        let sql = SQL.replace("IN ()", &format!("IN ({})", placeholders.join(", ")));
        let rows: Vec<Row> = db::all(db, &sql, &values).await?;
        orgs.extend(rows.into_iter().map(|r| (r.account_id, r.org_id)));
    }
    Ok(orgs)
}
