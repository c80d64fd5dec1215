//! The heat columns of `leads` (score, level, stamp, trend, `needs_rescore`, `scored_*`, and the
//! `last_interaction_at` a heat write refreshes), `heat_snapshots` and `heat_level_changes`: every
//! write of a computed heat goes through here, whether it comes from a new touchpoint or from the
//! scoring job, and so does every flag for the scoring job.

use leadheat_domain::scoring::Heat;
use leadheat_domain::types::HeatLevel;
use serde::Serialize;
use serde_json::Value;
use worker::D1PreparedStatement;

use crate::args;
use crate::clock;
use crate::db::StoreError;
use crate::db::{self, Arg};
use crate::tenant::{Shard, Tenant};

/// The lead's latest touchpoint time (stage changes do not count), for the lead id bound at
/// `lead_param` (e.g. `?5`).
fn last_interaction_at(lead_param: &str) -> String {
    format!(
        "(SELECT MAX(occurred_at) FROM interactions WHERE lead_id = {lead_param} AND type <> 'stage_change')"
    )
}

/// A computed heat to store on a lead.
pub struct HeatWrite<'a> {
    pub lead_id: &'a str,
    pub heat: &'a Heat,
    /// The org's `scoring_configs.config_version` the heat was computed with.
    pub config_version: i64,
    pub scored_at: &'a str,
    /// The lead's `heat_stamp` when its touchpoints were read: the write only applies if no other
    /// write came in between (optimistic concurrency), and bumps the stamp.
    pub expected_stamp: i64,
    /// The write only applies if this interaction exists: a touchpoint's insert-time write, so a
    /// duplicate external id (the insert did nothing) changes nothing.
    pub requires_interaction: Option<&'a str>,
    /// The write also refreshes the lead's `last_interaction_at` from its touchpoints.
    pub refresh_last_interaction: bool,
}

/// The guarded UPDATE for one heat write; check `db::changes() == 1` to know it applied.
pub fn write_statement(
    tenant: &Tenant,
    write: &HeatWrite<'_>,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let mut sql = String::from(
        "UPDATE leads SET heat_score = ?1, heat_level = ?2, heat_stamp = heat_stamp + 1, scored_at = ?3, \
         scored_config_version = ?4, needs_rescore = 0",
    );
    if write.refresh_last_interaction {
        sql.push_str(", last_interaction_at = ");
        sql.push_str(&last_interaction_at("?5"));
    }
    sql.push_str(" WHERE id = ?5 AND org_id = ?6 AND heat_stamp = ?7");
    let mut args = args![
        write.heat.score,
        write.heat.level.as_str(),
        write.scored_at,
        write.config_version,
        write.lead_id,
        org_id,
        write.expected_stamp
    ];
    if let Some(interaction_id) = write.requires_interaction {
        sql.push_str(" AND EXISTS (SELECT 1 FROM interactions WHERE id = ?8)");
        args.push(Arg::from(interaction_id));
    }
    db::statement(db, &sql, &args)
}

/// A heat_level_changes row that only lands when the heat write right before it in the same
/// batch applied: SQLite's `changes()` is the row count of the previous statement on the
/// connection (a batch runs its statements in order, in one transaction), and the lead must carry
/// the new stamp and level; for an insert, the new interaction must exist.
#[allow(clippy::too_many_arguments)]
pub fn guarded_level_change_statement(
    tenant: &Tenant,
    lead_id: &str,
    old: HeatLevel,
    heat: &Heat,
    new_stamp: i64,
    changed_at: &str,
    interaction_id: Option<&str>,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "INSERT INTO heat_level_changes (id, org_id, lead_id, old_level, new_level, changed_at) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE changes() = 1 \
         AND EXISTS (SELECT 1 FROM leads WHERE id = ?3 AND org_id = ?2 AND heat_stamp = ?7 AND heat_level = ?5) \
         AND (?8 IS NULL OR EXISTS (SELECT 1 FROM interactions WHERE id = ?8))",
        &args![
            clock::new_id("hlc"),
            org_id,
            lead_id,
            old.as_str(),
            heat.level.as_str(),
            changed_at,
            new_stamp,
            interaction_id.map(str::to_string)
        ],
    )
}

/// The org's latest heat level change time as one row `at` (NULL without any). See
/// [`crate::store::latest_write_at`].
pub fn latest_level_change_statement(tenant: &Tenant) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "SELECT MAX(changed_at) AS at FROM heat_level_changes WHERE org_id = ?1",
        &args![org_id],
    )
}

/// One level change the scoring job wants recorded if, and only if, its guarded heat write
/// applied (see [`level_changes_after_writes_statement`]).
#[derive(Debug, Clone, Serialize)]
pub struct PendingLevelChange {
    pub id: String,
    pub lead_id: String,
    pub old_level: &'static str,
    pub new_level: &'static str,
    /// The `heat_stamp` the guarded write expected; after it applied the stamp is one more.
    pub expected_stamp: i64,
}

/// Records a batch's level changes as ONE set-based statement, to be placed in the same
/// `db::batch` after the guarded heat writes: a change is inserted only for leads whose write
/// applied (stamp bumped to `expected_stamp + 1` and the new level stored), so a write that lost
/// to a concurrent touchpoint, or a second overlapping run, never records a change.
pub fn level_changes_after_writes_statement(
    tenant: &Tenant,
    changes: &[PendingLevelChange],
    changed_at: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let rows =
        serde_json::to_string(changes).map_err(|e| StoreError::backend("level changes", e))?;
    db::statement(
        db,
        "INSERT INTO heat_level_changes (id, org_id, lead_id, old_level, new_level, changed_at) \
         SELECT json_extract(c.value, '$.id'), ?3, json_extract(c.value, '$.lead_id'), \
                json_extract(c.value, '$.old_level'), json_extract(c.value, '$.new_level'), ?2 \
         FROM json_each(?1) AS c \
         WHERE EXISTS (SELECT 1 FROM leads l WHERE l.id = json_extract(c.value, '$.lead_id') \
                       AND l.org_id = ?3 \
                       AND l.heat_stamp = json_extract(c.value, '$.expected_stamp') + 1 \
                       AND l.heat_level = json_extract(c.value, '$.new_level'))",
        &args![rows, changed_at, org_id],
    )
}

// ------------------------------------------------------------------------------------------------
// Flags for the scoring job

/// Flags one lead for the scoring job (every rescore attempt lost a race), refreshing its
/// `last_interaction_at` as the lost attempts would have.
pub async fn flag_for_rescore(tenant: &Tenant, lead_id: &str) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::run(
        db,
        &format!(
            "UPDATE leads SET needs_rescore = 1, last_interaction_at = {} WHERE id = ?1 AND org_id = ?2",
            last_interaction_at("?1")
        ),
        &args![lead_id, org_id],
    )
    .await?;
    Ok(())
}

/// Flags a merge's target for the scoring job: its heat stamp moves (so no score computed from
/// its touchpoints before the merge is written over) and its `last_interaction_at` is refreshed
/// from the touchpoints it now holds. Place it after the statements moving the touchpoints.
pub fn flag_after_merge_statement(
    tenant: &Tenant,
    lead_id: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        &format!(
            "UPDATE leads SET heat_stamp = heat_stamp + 1, needs_rescore = 1, last_interaction_at = {} \
             WHERE id = ?1 AND org_id = ?2",
            last_interaction_at("?1")
        ),
        &args![lead_id, org_id],
    )
}

/// Flags every lead of the org that is not flagged yet (a new config, a requested recalculation).
pub fn flag_org_for_rescore_statement(tenant: &Tenant) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "UPDATE leads SET needs_rescore = 1 WHERE org_id = ?1 AND needs_rescore = 0",
        &args![org_id],
    )
}

/// Flags (at most `limit`) leads of the org scored under an older config that are not flagged
/// yet, so the pass's flagged stream includes them. Usually a no-op: a config change flags every
/// lead itself; this catches leads a touchpoint wrote with a config read just before the change.
pub async fn flag_stale_versions(
    tenant: &Tenant,
    config_version: i64,
    limit: usize,
) -> Result<u64, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::run(
        db,
        "UPDATE leads SET needs_rescore = 1 WHERE id IN ( \
           SELECT id FROM leads WHERE org_id = ?1 AND scored_config_version < ?2 AND needs_rescore = 0 LIMIT ?3)",
        &args![org_id, config_version, limit],
    )
    .await
}

// ------------------------------------------------------------------------------------------------
// Snapshots and trends

/// One lead's snapshot and trend for the day.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotWrite {
    pub lead_id: String,
    pub org_id: String,
    pub score: f64,
    pub level: HeatLevel,
    pub trend: f64,
}

/// Upserts the day's snapshot of every lead in `writes` (a rerun the same day overwrites), as one
/// set-based statement.
pub fn snapshot_upsert_statement(
    shard: &Shard,
    day: &str,
    writes: &[SnapshotWrite],
) -> Result<D1PreparedStatement, StoreError> {
    let db = shard.db();
    let rows = serde_json::to_string(writes).map_err(|e| StoreError::backend("snapshots", e))?;
    db::statement(
        db,
        "INSERT INTO heat_snapshots (lead_id, day, org_id, score, level) \
         SELECT json_extract(value, '$.lead_id'), ?2, json_extract(value, '$.org_id'), \
                json_extract(value, '$.score'), json_extract(value, '$.level') \
         FROM json_each(?1) WHERE true \
         ON CONFLICT (lead_id, day) DO UPDATE SET score = excluded.score, level = excluded.level, org_id = excluded.org_id",
        &args![rows, day],
    )
}

/// Stores each lead's trend, as one set-based statement.
pub fn trend_update_statement(
    shard: &Shard,
    writes: &[SnapshotWrite],
) -> Result<D1PreparedStatement, StoreError> {
    let db = shard.db();
    let rows = serde_json::to_string(writes).map_err(|e| StoreError::backend("trends", e))?;
    db::statement(
        db,
        "UPDATE leads SET heat_trend = ( \
           SELECT json_extract(value, '$.trend') FROM json_each(?1) WHERE json_extract(value, '$.lead_id') = leads.id) \
         WHERE id IN (SELECT json_extract(value, '$.lead_id') FROM json_each(?1))",
        &args![rows],
    )
}

/// A lead's daily snapshots (`day`, `score`, `level`), oldest first, as stored (export).
pub async fn snapshots_of_lead(tenant: &Tenant, lead_id: &str) -> Result<Vec<Value>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::all(
        db,
        "SELECT day, score, level FROM heat_snapshots WHERE lead_id = ?1 AND org_id = ?2 ORDER BY day",
        &args![lead_id, org_id],
    )
    .await
}

/// A lead's level changes (`old_level`, `new_level`, `changed_at`), oldest first, as stored
/// (export).
pub async fn level_changes_of_lead(
    tenant: &Tenant,
    lead_id: &str,
) -> Result<Vec<Value>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::all(
        db,
        "SELECT old_level, new_level, changed_at FROM heat_level_changes WHERE lead_id = ?1 AND org_id = ?2 \
         ORDER BY changed_at, id",
        &args![lead_id, org_id],
    )
    .await
}

/// Deletes a lead's heat history: its snapshots, then its level changes (the lead is erased, or
/// merged into another one whose history is its own).
pub fn erase_lead_history_statements(
    tenant: &Tenant,
    lead_id: &str,
) -> Result<Vec<D1PreparedStatement>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    [
        "DELETE FROM heat_snapshots WHERE lead_id = ?1 AND org_id = ?2",
        "DELETE FROM heat_level_changes WHERE lead_id = ?1 AND org_id = ?2",
    ]
    .into_iter()
    .map(|sql| db::statement(db, sql, &args![lead_id, org_id]))
    .collect()
}

/// Deletes up to `limit` snapshots of days before `cutoff` (index `heat_snapshots_org_day`, org by
/// org). Returns how many went; call again while it returns `limit`.
pub async fn prune_snapshots(shard: &Shard, cutoff: &str, limit: usize) -> Result<u64, StoreError> {
    let db = shard.db();
    db::run(
        db,
        "DELETE FROM heat_snapshots WHERE (lead_id, day) IN ( \
           SELECT s.lead_id, s.day FROM orgs o JOIN heat_snapshots s ON s.org_id = o.id AND s.day < ?1 LIMIT ?2)",
        &args![cutoff, limit],
    )
    .await
}
