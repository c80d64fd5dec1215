//! `integration_accounts`: which org a platform account belongs to. A webhook delivery names an
//! account, never an org, so receipt routes by this table; its primary key makes an account
//! belong to one org at a time, across every shard.

use std::collections::HashMap;

use leadheat_domain::d1_limits::{in_list_capacity, runs_within, MAX_STATEMENT_BYTES};
use serde::Deserialize;

use super::{Directory, OrgEntry, ORG_COLUMNS};
use crate::args;
use crate::db::Constraint;
use crate::db::{self, Arg, StoreError};
use crate::tenant::Tenant;

#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub platform: String,
    pub account_id: String,
    pub kind: String,
}

/// The org's accounts on every platform.
pub async fn of_org(directory: &Directory, tenant: &Tenant) -> Result<Vec<Account>, StoreError> {
    db::all(
        directory.db(),
        "SELECT platform, account_id, kind FROM integration_accounts WHERE org_id = ?1 \
         ORDER BY platform, kind, account_id",
        &args![tenant.org_id()],
    )
    .await
}

/// Accounts among `account_ids` that another org has connected.
pub async fn taken_by_others(
    directory: &Directory,
    tenant: &Tenant,
    platform: &str,
    account_ids: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut taken = Vec::new();
    for chunk in account_ids.chunks(50) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", i + 3)).collect();
        let mut values: Vec<Arg> = args![tenant.org_id(), platform];
        values.extend(chunk.iter().map(Arg::from));
        let rows: Vec<Account> = db::all(
            directory.db(),
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

/// Replaces the org's accounts on `platform` with `accounts` (id, kind), atomically. Fails with
/// [`StoreError::Conflict`], changing nothing, when another org holds one of them.
pub async fn replace(
    directory: &Directory,
    tenant: &Tenant,
    platform: &str,
    accounts: &[(String, &str)],
    now: &str,
) -> Result<(), StoreError> {
    let db = directory.db();
    let org_id = tenant.org_id();
    let mut statements = vec![db::statement(
        db,
        "DELETE FROM integration_accounts WHERE org_id = ?1 AND platform = ?2",
        &args![org_id, platform],
    )?];
    for (account_id, kind) in accounts {
        statements.push(db::statement(
            db,
            // No ON CONFLICT: an account another org holds fails the insert, which rolls the
            // whole batch back, so a connect never half-succeeds.
            "INSERT INTO integration_accounts (platform, account_id, org_id, kind, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            &args![platform, account_id, org_id, *kind, now],
        )?);
    }
    match db::try_batch(db, statements).await? {
        Ok(_) => Ok(()),
        Err(Constraint::Unique) => Err(StoreError::Conflict(
            "another organisation has connected one of these accounts".to_string(),
        )),
        Err(other) => Err(StoreError::backend(
            "integration accounts",
            format!("{other:?}"),
        )),
    }
}

/// Forgets the org's accounts on `platform` (their events are then unrouted).
pub async fn release(
    directory: &Directory,
    tenant: &Tenant,
    platform: &str,
) -> Result<(), StoreError> {
    db::run(
        directory.db(),
        "DELETE FROM integration_accounts WHERE org_id = ?1 AND platform = ?2",
        &args![tenant.org_id(), platform],
    )
    .await?;
    Ok(())
}

/// The org that connected `account_id` on `platform`.
pub async fn org_for_account(
    directory: &Directory,
    platform: &str,
    account_id: &str,
) -> Result<Option<String>, StoreError> {
    let accounts = [account_id.to_string()];
    Ok(routes(directory, platform, &accounts)
        .await?
        .remove(account_id)
        .map(|entry| entry.id))
}

/// The directory entries of the orgs that connected any of `account_ids` on `platform`, by
/// account (accounts no org has connected are absent): what a delivery needs to reach each org's
/// shard, in one query per chunk. The `IN (...)` lists are cut by `d1_limits::runs_within`, so
/// that no statement binds more parameters, or more bytes, than D1 allows, whatever the number of
/// accounts (a Meta delivery may batch hundreds of pages).
pub async fn routes(
    directory: &Directory,
    platform: &str,
    account_ids: &[String],
) -> Result<HashMap<String, OrgEntry>, StoreError> {
    // The entry's columns spelled out: a flattened struct would read D1's numbers as floats.
    #[derive(Deserialize)]
    struct Row {
        account_id: String,
        id: String,
        shard: u32,
        site_key: String,
        ready: i64,
        moving_to: Option<u32>,
        created_at: String,
    }
    let sql_template = format!(
        "SELECT a.account_id, {} FROM integration_accounts a JOIN orgs o ON o.id = a.org_id \
         WHERE a.platform = ?1 AND a.account_id IN ()",
        ORG_COLUMNS
            .split(", ")
            .map(|column| format!("o.{column}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Each id adds its bytes and a placeholder of at most ", ?100".
    let sizes: Vec<usize> = account_ids.iter().map(|id| id.len() + 6).collect();
    let room = MAX_STATEMENT_BYTES - sql_template.len() - platform.len();
    let mut orgs = HashMap::new();
    for run in runs_within(&sizes, in_list_capacity(1), room) {
        let chunk = &account_ids[run];
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", i + 2)).collect();
        let mut values: Vec<Arg> = args![platform];
        values.extend(chunk.iter().map(Arg::from));
        let sql = sql_template.replace("IN ()", &format!("IN ({})", placeholders.join(", ")));
        let rows: Vec<Row> = db::all(directory.db(), &sql, &values).await?;
        orgs.extend(rows.into_iter().map(|r| {
            let org = OrgEntry {
                id: r.id,
                shard: r.shard,
                site_key: r.site_key,
                ready: r.ready,
                moving_to: r.moving_to,
                created_at: r.created_at,
            };
            (r.account_id, org)
        }));
    }
    Ok(orgs)
}
