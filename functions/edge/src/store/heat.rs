//! The heat columns of `leads` (score, level, stamp, trend, `needs_rescore`, `scored_*`, the heat
//! state `heat_ref_at`/`heat_settled`/`heat_pending`/`heat_next_pending_at`, and the
//! `last_interaction_at` a heat write refreshes), `heat_snapshots` and `heat_level_changes`: every
//! write of a computed heat goes through here, whether it comes from a new touchpoint or from the
//! scoring job, and so does every flag for the scoring job.

use chrono::{DateTime, Utc};
use leadheat_domain::heat_state::HeatState;
use leadheat_domain::rescoring::StoredHeat;
use leadheat_domain::scoring::HeatValue;
use leadheat_domain::types::HeatLevel;
use serde::{Deserialize, Serialize};
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

/// A lead's heat columns, as the touchpoint path and the scoring job read them.
#[derive(Debug, Clone, Deserialize)]
pub struct LeadHeatRow {
    pub id: String,
    pub heat_score: f64,
    pub heat_level: HeatLevel,
    pub heat_stamp: i64,
    pub needs_rescore: i64,
    pub scored_config_version: i64,
    pub heat_ref_at: Option<String>,
    pub heat_settled: f64,
    pub heat_pending: i64,
    pub heat_next_pending_at: Option<String>,
}

/// The columns of a [`LeadHeatRow`].
pub const LEAD_HEAT_COLUMNS: &str = "id, heat_score, heat_level, heat_stamp, needs_rescore, \
     scored_config_version, heat_ref_at, heat_settled, heat_pending, heat_next_pending_at";

impl LeadHeatRow {
    /// The stored heat and state, as the domain plans with them. A state whose times do not
    /// parse counts as none (the lead is rebuilt from its history).
    pub fn stored(&self) -> StoredHeat {
        StoredHeat {
            score: self.heat_score,
            level: self.heat_level,
            needs_rescore: self.needs_rescore != 0,
            scored_config_version: self.scored_config_version,
            state: self.state(),
        }
    }

    fn state(&self) -> Option<HeatState> {
        let reference = parse_time(self.heat_ref_at.as_deref()?)?;
        let next_pending_at = match self.heat_next_pending_at.as_deref() {
            Some(text) => Some(parse_time(text)?),
            None => None,
        };
        Some(HeatState {
            reference,
            settled: self.heat_settled,
            pending_points: self.heat_pending,
            next_pending_at,
        })
    }
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// One lead's heat columns (`None` when the org has no such lead).
pub async fn lead_heat(tenant: &Tenant, lead_id: &str) -> Result<Option<LeadHeatRow>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::first(
        db,
        &format!("SELECT {LEAD_HEAT_COLUMNS} FROM leads WHERE id = ?1 AND org_id = ?2"),
        &args![lead_id, org_id],
    )
    .await
}

/// How a heat write sets the lead's `last_interaction_at`.
#[derive(Debug, Clone, Copy)]
pub enum LastInteraction<'a> {
    /// Left as it is.
    Keep,
    /// The latest of its touchpoints (stage changes do not count): a read of its history.
    FromHistory,
    /// One new touchpoint of this type at this time (RFC 3339, as stored): the later of it and
    /// the stored value, unless it is a stage change.
    Touch(&'a str, &'a str),
}

/// What a heat write does when the lead's stamp moved since it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStampMoved {
    /// The write changes nothing (check `db::changes() == 1`).
    Skip,
    /// The write fails a CHECK, which rolls its whole batch back (a touchpoint's insert with
    /// it): the caller reads the lead again and retries. A new touchpoint must never be stored
    /// without being folded into the state, or the state would silently miss it.
    AbortBatch,
}

/// A computed heat to store on a lead.
pub struct HeatWrite<'a> {
    pub lead_id: &'a str,
    pub heat: HeatValue,
    /// The lead's new heat state.
    pub state: &'a HeatState,
    /// The org's `scoring_configs.config_version` the heat was computed with.
    pub config_version: i64,
    pub scored_at: &'a str,
    /// The lead's `heat_stamp` when its state (or touchpoints) was read: the write only applies
    /// if no other write came in between (optimistic concurrency), and bumps the stamp.
    pub expected_stamp: i64,
    pub on_stamp_moved: OnStampMoved,
    /// The write only applies if this interaction exists: a touchpoint's insert-time write, so a
    /// duplicate external id (the insert did nothing) changes nothing.
    pub requires_interaction: Option<&'a str>,
    pub last_interaction: LastInteraction<'a>,
}

/// The guarded UPDATE for one heat write; check `db::changes() == 1` to know it applied.
pub fn write_statement(
    tenant: &Tenant,
    write: &HeatWrite<'_>,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let state = write.state;
    let stamp = match write.on_stamp_moved {
        OnStampMoved::Skip => "heat_stamp + 1",
        // -1 breaks `CHECK (heat_stamp >= 0)`.
        OnStampMoved::AbortBatch => "CASE WHEN heat_stamp = ?7 THEN heat_stamp + 1 ELSE -1 END",
    };
    let mut sql = format!(
        "UPDATE leads SET heat_score = ?1, heat_level = ?2, heat_stamp = {stamp}, scored_at = ?3, \
         scored_config_version = ?4, needs_rescore = 0, heat_ref_at = ?8, heat_settled = ?9, \
         heat_pending = ?10, heat_next_pending_at = ?11"
    );
    let mut args = args![
        write.heat.score,
        write.heat.level.as_str(),
        write.scored_at,
        write.config_version,
        write.lead_id,
        org_id,
        write.expected_stamp,
        clock::rfc3339(state.reference),
        state.settled,
        state.pending_points,
        state.next_pending_at.map(clock::rfc3339)
    ];
    match write.last_interaction {
        LastInteraction::Keep => {}
        LastInteraction::FromHistory => {
            sql.push_str(", last_interaction_at = ");
            sql.push_str(&last_interaction_at("?5"));
        }
        LastInteraction::Touch(kind, occurred_at) => {
            sql.push_str(
                ", last_interaction_at = CASE WHEN ?12 <> 'stage_change' \
                   AND (last_interaction_at IS NULL OR last_interaction_at < ?13) THEN ?13 \
                   ELSE last_interaction_at END",
            );
            args.push(Arg::from(kind));
            args.push(Arg::from(occurred_at));
        }
    }
    sql.push_str(" WHERE id = ?5 AND org_id = ?6");
    if write.on_stamp_moved == OnStampMoved::Skip {
        sql.push_str(" AND heat_stamp = ?7");
    }
    if let Some(interaction_id) = write.requires_interaction {
        args.push(Arg::from(interaction_id));
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM interactions WHERE id = ?{})",
            args.len()
        ));
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
    new: HeatLevel,
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
            new.as_str(),
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
/// `last_interaction_at` as the lost attempts would have. Its stored state stays as it is, and
/// is rebuilt from its history (the flag says it cannot be trusted).
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

/// Flags a lead whose touchpoints were added or moved outside its heat state (a merge's target,
/// a touchpoint every retry of which lost a race) for a rebuild from its history: its heat stamp
/// moves (so no score or state computed before is written over), it is flagged (so the next
/// touchpoint or the scoring job rebuilds it rather than trusting its state) and its
/// `last_interaction_at` is refreshed from the touchpoints it now holds. Place it after the
/// statements writing the touchpoints.
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
