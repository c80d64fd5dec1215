//! The scoring job's tables and reads: `job_leases` (mutual exclusion between overlapping runs),
//! `rescore_runs` (one pass per org, with its durable keyset cursor and progress), and the batch
//! reads of leads needing a new score, of their touches and of the snapshots trends are computed
//! from. The job's writes of heat, flags, snapshots and trends are `crate::store::heat`'s.
//!
//! D1 limits shape every query here: at most 100 bound parameters per statement, so lists of ids
//! travel as ONE JSON parameter expanded with `json_each`, and reads are keyset ranges over the
//! indexes of migrations/tenant/0001_initial.sql, never offsets.

use leadheat_domain::rescoring::RescoreRunStatus;
use leadheat_domain::scoring::ScoringConfig;
use leadheat_domain::types::HeatLevel;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::D1PreparedStatement;

use crate::args;
use crate::db;
use crate::db::StoreError;
use crate::store::heat::{LeadHeatRow, LEAD_HEAT_COLUMNS};
use crate::store::{heat, scoring_configs};
use crate::tenant::{Shard, Tenant};

// ------------------------------------------------------------------------------------------------
// Orgs with work

#[derive(Debug, Deserialize)]
struct OrgWorkRow {
    org_id: String,
    weights: String,
    warm_threshold: f64,
    hot_threshold: f64,
    decay_half_life_days: Option<f64>,
    config_version: i64,
    run_status: Option<RescoreRunStatus>,
    run_config_version: Option<i64>,
    cursor_lead_id: Option<String>,
    failures: Option<i64>,
}

/// An org the job has something to do for, with its config and the state of its pass.
#[derive(Debug, Clone)]
pub struct OrgWork {
    pub org_id: String,
    /// `Err` when the stored weights do not parse (the org is skipped and the error logged).
    pub config: Result<ScoringConfig, String>,
    pub config_version: i64,
    /// `None` when the org never had a pass.
    pub run_status: Option<RescoreRunStatus>,
    /// The config version the org's pass scores with.
    pub run_config_version: Option<i64>,
    pub cursor_lead_id: Option<String>,
    /// Failed runs in a row before this one (0 when the org's last run went well).
    pub failures: u32,
}

impl OrgWork {
    pub fn pass_active(&self) -> bool {
        self.run_status.is_some_and(RescoreRunStatus::is_active)
    }
}

/// Orgs that need the job: an unfinished pass, flagged leads, leads scored under an older config,
/// or decay on. Unfinished passes come first (oldest request first), then the orgs whose last pass
/// finished longest ago, so a large decaying org cannot starve the others. An org backing off
/// after failures (`scoring_backoff`, retry time after `now`) is left out.
pub async fn orgs_with_work(
    shard: &Shard,
    limit: usize,
    now: &str,
) -> Result<Vec<OrgWork>, StoreError> {
    let db = shard.db();
    let rows: Vec<OrgWorkRow> = db::all(
        db,
        "SELECT c.org_id, c.weights, c.warm_threshold, c.hot_threshold, c.decay_half_life_days, \
                c.config_version, r.status AS run_status, r.config_version AS run_config_version, r.cursor_lead_id, \
                b.failures \
         FROM scoring_configs c LEFT JOIN rescore_runs r ON r.org_id = c.org_id \
         LEFT JOIN scoring_backoff b ON b.org_id = c.org_id \
         WHERE (b.retry_at IS NULL OR b.retry_at <= ?2) AND ( \
            c.decay_half_life_days IS NOT NULL \
            OR r.status IN ('queued', 'running') \
            OR EXISTS (SELECT 1 FROM leads l WHERE l.org_id = c.org_id AND l.needs_rescore = 1) \
            OR EXISTS (SELECT 1 FROM leads l WHERE l.org_id = c.org_id AND l.scored_config_version < c.config_version)) \
         ORDER BY (COALESCE(r.status, 'done') = 'done'), \
                  CASE WHEN r.status IN ('queued', 'running') THEN r.requested_at END, \
                  r.finished_at IS NOT NULL, r.finished_at, c.org_id \
         LIMIT ?1",
        &args![limit, now],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let config = scoring_configs::from_columns(
                &row.weights,
                row.warm_threshold,
                row.hot_threshold,
                row.decay_half_life_days,
            )
            .map_err(|e| e.to_string());
            OrgWork {
                org_id: row.org_id,
                config,
                config_version: row.config_version,
                run_status: row.run_status,
                run_config_version: row.run_config_version,
                cursor_lead_id: row.cursor_lead_id,
                failures: row
                    .failures
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(0),
            }
        })
        .collect())
}

// ------------------------------------------------------------------------------------------------
// Backoff of failing orgs (scoring_backoff)

/// Records the org's failed run: `failures` in a row now (this one included), tried again at
/// `retry_at`.
pub async fn record_failure(
    tenant: &Tenant,
    failures: u32,
    error: &str,
    failed_at: &str,
    retry_at: &str,
) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::run(
        db,
        "INSERT INTO scoring_backoff (org_id, failures, last_error, failed_at, retry_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (org_id) DO UPDATE SET failures = excluded.failures, \
           last_error = excluded.last_error, failed_at = excluded.failed_at, retry_at = excluded.retry_at",
        &args![org_id, failures, error, failed_at, retry_at],
    )
    .await?;
    Ok(())
}

/// Forgets the org's failures after a run that went well.
pub async fn clear_failures(tenant: &Tenant) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::run(
        db,
        "DELETE FROM scoring_backoff WHERE org_id = ?1",
        &args![org_id],
    )
    .await?;
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Passes (rescore_runs)

/// Starts (or restarts) the org's pass: a new pass when none is active, or a queued one (from
/// `POST /v1/scoring/recalculate`) switching to running. `leads_total` of a new pass counts its
/// candidates; a queued pass keeps the total its request counted.
pub async fn start_pass(
    tenant: &Tenant,
    config_version: i64,
    decay_on: bool,
    now: &str,
) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::run(
        db,
        "INSERT INTO rescore_runs (org_id, status, cursor_lead_id, leads_done, leads_total, config_version, requested_at, started_at, finished_at) \
         VALUES (?1, 'running', NULL, 0, \
                 (SELECT COUNT(*) FROM leads WHERE org_id = ?1 AND (needs_rescore = 1 OR (?3 AND scored_config_version = ?2))), \
                 ?2, ?4, ?4, NULL) \
         ON CONFLICT (org_id) DO UPDATE SET \
           status = 'running', cursor_lead_id = NULL, leads_done = 0, config_version = excluded.config_version, \
           leads_total = CASE WHEN rescore_runs.status = 'queued' THEN rescore_runs.leads_total ELSE excluded.leads_total END, \
           requested_at = CASE WHEN rescore_runs.status = 'queued' THEN rescore_runs.requested_at ELSE excluded.requested_at END, \
           started_at = excluded.started_at, finished_at = NULL",
        &args![org_id, config_version, decay_on, now],
    )
    .await?;
    Ok(())
}

/// Advances the org's pass after a batch; written in the batch's own `db::batch`, so the cursor
/// moves exactly when the batch's scores are stored. Guarded by the previous cursor, so two runs
/// that somehow overlapped could not both advance it.
pub fn progress_statement(
    tenant: &Tenant,
    previous_cursor: Option<&str>,
    new_cursor: Option<&str>,
    examined: usize,
    finished: bool,
    now: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "UPDATE rescore_runs SET cursor_lead_id = ?3, leads_done = leads_done + ?4, \
           leads_total = MAX(leads_total, leads_done + ?4), \
           status = CASE WHEN ?5 THEN 'done' ELSE 'running' END, \
           finished_at = CASE WHEN ?5 THEN ?6 ELSE NULL END \
         WHERE org_id = ?1 AND status = 'running' AND cursor_lead_id IS ?2",
        &args![org_id, previous_cursor, new_cursor, examined, finished, now],
    )
}

/// The state of an org's latest pass, as `GET /v1/scoring/recalculate` shows it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct RescoreStatus {
    pub status: RescoreRunStatus,
    pub leads_done: i64,
    pub leads_total: i64,
    pub config_version: i64,
    pub requested_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

pub async fn status(tenant: &Tenant) -> Result<Option<RescoreStatus>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::first(
        db,
        "SELECT status, leads_done, leads_total, config_version, requested_at, started_at, finished_at \
         FROM rescore_runs WHERE org_id = ?1",
        &args![org_id],
    )
    .await
}

/// Schedules a full rescore of the org: its pass restarts as `queued` over every lead, and every
/// lead is flagged. One atomic batch.
pub async fn request_recalculation(tenant: &Tenant, now: &str) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let statements = vec![
        heat::flag_org_for_rescore_statement(tenant)?,
        db::statement(
            db,
            "INSERT INTO rescore_runs (org_id, status, cursor_lead_id, leads_done, leads_total, config_version, requested_at, started_at, finished_at) \
             VALUES (?1, 'queued', NULL, 0, (SELECT COUNT(*) FROM leads WHERE org_id = ?1), \
                     COALESCE((SELECT config_version FROM scoring_configs WHERE org_id = ?1), 1), ?2, NULL, NULL) \
             ON CONFLICT (org_id) DO UPDATE SET status = 'queued', cursor_lead_id = NULL, leads_done = 0, \
               leads_total = excluded.leads_total, config_version = excluded.config_version, \
               requested_at = excluded.requested_at, started_at = NULL, finished_at = NULL",
            &args![org_id, now],
        )?,
    ];
    db::batch(db, statements).await?;
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Batch reads

/// The next flagged leads of the org after `cursor` (index `leads_needs_rescore`).
pub async fn flagged_after(
    tenant: &Tenant,
    cursor: &str,
    limit: usize,
) -> Result<Vec<LeadHeatRow>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::all(
        db,
        &format!(
            "SELECT {LEAD_HEAT_COLUMNS} FROM leads \
             WHERE org_id = ?1 AND needs_rescore = 1 AND id > ?2 ORDER BY id LIMIT ?3"
        ),
        &args![org_id, cursor, limit],
    )
    .await
}

/// The next leads of the org scored under `config_version` after `cursor` (index
/// `leads_org_scored_version`): with decay on, every lead is checked for a moved score.
pub async fn current_after(
    tenant: &Tenant,
    config_version: i64,
    cursor: &str,
    limit: usize,
) -> Result<Vec<LeadHeatRow>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::all(
        db,
        &format!(
            "SELECT {LEAD_HEAT_COLUMNS} FROM leads \
             WHERE org_id = ?1 AND scored_config_version = ?2 AND id > ?3 ORDER BY id LIMIT ?4"
        ),
        &args![org_id, config_version, cursor, limit],
    )
    .await
}

/// One touch of a batch's leads.
#[derive(Debug, Clone, Deserialize)]
pub struct TouchRow {
    pub lead_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at: String,
}

/// The touches of the given leads their heat states need to move to `until`: for each
/// `(lead id, after)`, its touches with `after < occurred_at <= until`, and a row with a NULL
/// `type` whose `occurred_at` is its first touch after `until` (NULL without one). ONE query,
/// range reads of index `interactions_lead_org_occurred`: the rows read are those touches.
pub async fn crossings_of(
    tenant: &Tenant,
    ranges: &[(String, String)],
    until: &str,
) -> Result<Vec<CrossingRow>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    if ranges.is_empty() {
        return Ok(Vec::new());
    }
    let ranges: Vec<Value> = ranges
        .iter()
        .map(|(id, after)| json!({"id": id, "after": after}))
        .collect();
    let ranges = Value::from(ranges).to_string();
    db::all(
        db,
        "SELECT i.lead_id, i.type, i.occurred_at FROM json_each(?1) r \
           JOIN interactions i ON i.lead_id = json_extract(r.value, '$.id') AND i.org_id = ?2 \
            AND i.occurred_at > json_extract(r.value, '$.after') AND i.occurred_at <= ?3 \
         UNION ALL \
         SELECT json_extract(r.value, '$.id'), NULL, \
                (SELECT MIN(n.occurred_at) FROM interactions n WHERE n.lead_id = json_extract(r.value, '$.id') \
                   AND n.org_id = ?2 AND n.occurred_at > ?3) \
         FROM json_each(?1) r",
        &args![ranges, org_id, until],
    )
    .await
}

/// One row of [`crossings_of`].
#[derive(Debug, Clone, Deserialize)]
pub struct CrossingRow {
    pub lead_id: String,
    /// `None` on the row that carries the next touch time after the range.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub occurred_at: Option<String>,
}

/// Every touch of the given leads, in ONE query (index `interactions_lead_org_occurred`).
pub async fn touches_of(tenant: &Tenant, lead_ids: &[String]) -> Result<Vec<TouchRow>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    if lead_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = serde_json::to_string(lead_ids).map_err(|e| StoreError::backend("lead ids", e))?;
    db::all(
        db,
        "SELECT lead_id, type, occurred_at FROM interactions \
         WHERE lead_id IN (SELECT value FROM json_each(?1)) AND org_id = ?2",
        &args![ids, org_id],
    )
    .await
}

// ------------------------------------------------------------------------------------------------
// Snapshot reads

/// A lead as the nightly snapshot reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct SnapshotLeadRow {
    pub id: String,
    pub org_id: String,
    pub heat_score: f64,
    pub heat_level: HeatLevel,
}

/// The next leads of every org after `cursor`, in primary-key order (the snapshot pass covers
/// all orgs in one walk).
pub async fn all_leads_after(
    shard: &Shard,
    cursor: &str,
    limit: usize,
) -> Result<Vec<SnapshotLeadRow>, StoreError> {
    let db = shard.db();
    db::all(
        db,
        "SELECT id, org_id, heat_score, heat_level FROM leads WHERE id > ?1 ORDER BY id LIMIT ?2",
        &args![cursor, limit],
    )
    .await
}

#[derive(Debug, Clone, Deserialize)]
pub struct SnapshotRow {
    pub lead_id: String,
    pub day: String,
    pub score: f64,
}

/// The snapshots of the given leads on the given days (the trend inputs), in ONE query.
pub async fn snapshots_on(
    shard: &Shard,
    lead_ids: &[String],
    days: &[String],
) -> Result<Vec<SnapshotRow>, StoreError> {
    let db = shard.db();
    if lead_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = serde_json::to_string(lead_ids).map_err(|e| StoreError::backend("lead ids", e))?;
    let days = serde_json::to_string(days).map_err(|e| StoreError::backend("days", e))?;
    db::all(
        db,
        "SELECT lead_id, day, score FROM heat_snapshots \
         WHERE lead_id IN (SELECT value FROM json_each(?1)) AND day IN (SELECT value FROM json_each(?2))",
        &args![ids, days],
    )
    .await
}

// ------------------------------------------------------------------------------------------------
// Scoring preview reads

/// A lead as the scoring preview shows it, with the list it was picked from.
#[derive(Debug, Clone, Deserialize)]
pub struct PreviewLeadRow {
    /// `hottest` or `recent`.
    pub sample: String,
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    pub heat_score: f64,
    pub heat_level: HeatLevel,
    pub last_interaction_at: Option<String>,
}

const PREVIEW_COLUMNS: &str =
    "id, first_name, last_name, email, company, heat_score, heat_level, last_interaction_at";

/// The org's `per_list` hottest leads and its `per_list` most recently active ones, in ONE query
/// (two index range reads: `leads_org_heat` and `leads_org_last_interaction`). Each list comes
/// back in its own order, hottest (or latest) first; a lead may be in both.
pub async fn preview_candidates(
    tenant: &Tenant,
    per_list: usize,
) -> Result<(Vec<PreviewLeadRow>, Vec<PreviewLeadRow>), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let rows: Vec<PreviewLeadRow> = db::all(
        db,
        &format!(
            "SELECT * FROM (SELECT 'hottest' AS sample, {PREVIEW_COLUMNS} FROM leads WHERE org_id = ?1 \
               ORDER BY heat_score DESC, id DESC LIMIT ?2) \
             UNION ALL \
             SELECT * FROM (SELECT 'recent' AS sample, {PREVIEW_COLUMNS} FROM leads WHERE org_id = ?1 \
               ORDER BY COALESCE(last_interaction_at, '') DESC, id DESC LIMIT ?2)"
        ),
        &args![org_id, per_list],
    )
    .await?;
    // A compound SELECT does not promise its parts' order: restore it here.
    let (mut hottest, mut recent): (Vec<_>, Vec<_>) =
        rows.into_iter().partition(|row| row.sample == "hottest");
    hottest.sort_by(|a, b| {
        b.heat_score
            .total_cmp(&a.heat_score)
            .then_with(|| b.id.cmp(&a.id))
    });
    recent.sort_by(|a, b| {
        b.last_interaction_at
            .cmp(&a.last_interaction_at)
            .then_with(|| b.id.cmp(&a.id))
    });
    Ok((hottest, recent))
}
