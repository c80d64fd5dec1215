//! Recording a touchpoint: the interaction insert and the lead's new heat score, level, heat
//! state and last interaction time in ONE D1 batch. The heat comes from the lead's stored heat
//! state (`leadheat_domain::heat_state`), moved to `now` and with the new touch folded in, so the
//! lead's touchpoints are not read: the cost of a touchpoint does not grow with the lead's
//! history. Only a lead without a state for the org's current config (new, flagged, or scored
//! under an older config) is rebuilt from its whole history, once. Used by the API (manual entry),
//! the social sync consumer, the pipeline (stage changes), forms and website tracking. A
//! touchpoint reporting a write of its own (a move's stage change) goes into that write's batch:
//! [`record_after`].
//!
//! Concurrency: the heat write expects the lead's `heat_stamp` as read with its state; if another
//! write moved it, the write fails a CHECK and the WHOLE batch (the insert included) rolls back,
//! and the touchpoint is retried from a fresh read (bounded). So a touchpoint is never stored
//! without being folded into the state. Should every retry lose, the touchpoint is stored with the
//! lead flagged `needs_rescore` and the lead is rebuilt from its history at once; should that
//! rebuild lose its races too, the lead's next touchpoint or the scoring job does it. A duplicate external id changes nothing (the heat write requires the new row).

use chrono::{DateTime, Utc};
use leadheat_domain::heat_state::{Crossed, HeatState};
use leadheat_domain::ids::prefix;
use leadheat_domain::scoring::{self, points_for, HeatValue, ScoringConfig, Touch};
use leadheat_domain::types::{CapturedBy, InteractionType, Platform};
use serde_json::{json, Map, Value};
use worker::{D1PreparedStatement, D1Result};

use leadheat_edge::clock;
use leadheat_edge::db;
use leadheat_edge::db::{Constraint, StoreError};
use leadheat_edge::store::heat::{self, HeatWrite, LastInteraction, LeadHeatRow, OnStampMoved};
use leadheat_edge::store::interactions::{self, InteractionRecord, NewInteractionRow};
use leadheat_edge::store::leads::{self, LeadRecord};
use leadheat_edge::store::scoring_configs;
use leadheat_edge::tenant::Tenant;

/// Largest accepted metadata object (serialized).
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Attempts of a heat write (a touchpoint's, or a rebuild's) that lose a race before the lead is
/// flagged for the scoring job.
const MAX_SCORE_RETRIES: usize = 6;

/// A touchpoint to record.
#[derive(Debug, Clone)]
pub struct NewTouchpoint {
    pub lead_id: String,
    pub kind: InteractionType,
    pub platform: Platform,
    pub occurred_at: DateTime<Utc>,
    pub captured_by: CapturedBy,
    /// The dedupe key, unique per org and platform; `None` makes one up (never a duplicate).
    pub external_id: Option<String>,
    /// A JSON object (`null` is stored as `{}`).
    pub metadata: Value,
}

impl NewTouchpoint {
    /// The pipeline's convention: a manual stage change (`from` → `to`, by the user `by`) is a
    /// 0-point interaction of the lead.
    pub fn stage_change(
        lead_id: &str,
        from: Option<&str>,
        to: Option<&str>,
        by: &str,
        at: DateTime<Utc>,
    ) -> NewTouchpoint {
        NewTouchpoint {
            lead_id: lead_id.to_string(),
            kind: InteractionType::StageChange,
            platform: Platform::Other,
            occurred_at: at,
            captured_by: CapturedBy::Manual,
            external_id: None,
            metadata: json!({"from_stage_id": from, "to_stage_id": to, "by": by}),
        }
    }
}

/// What `record` did.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub interaction: InteractionRecord,
    /// The lead as stored after the write (its new heat included).
    pub lead: LeadRecord,
    /// The external id was already recorded: nothing changed, `interaction` is the existing one.
    pub duplicate: bool,
}

/// The org's scoring config and its version (the domain's defaults, version 1, without a row).
pub async fn scoring_config(tenant: &Tenant) -> Result<(ScoringConfig, i64), StoreError> {
    let stored = scoring_configs::get(tenant).await?;
    Ok((stored.config, stored.config_version))
}

/// Records a touchpoint for a lead of the org and updates the lead's heat atomically with it.
/// A lead of another org (or none) is a 404; a duplicate external id returns the existing
/// interaction with `duplicate: true` and changes nothing.
pub async fn record(
    tenant: &Tenant,
    touch: NewTouchpoint,
    now: DateTime<Utc>,
) -> Result<Recorded, StoreError> {
    record_in_batch(tenant, None, touch, now)
        .await?
        .ok_or_else(|| StoreError::backend("touchpoint", "refused without a guarding statement"))
}

/// Records a touchpoint that reports a write, in ONE batch with it: `guard` (an INSERT, UPDATE
/// or DELETE of at most one row, such as the guarded UPDATE of a move) runs first, and the
/// touchpoint's interaction, heat and level change are written only if `guard` changed exactly
/// one row. `Ok(None)` when it changed none: then nothing at all was written. Either both land
/// or neither does, whatever fails.
///
/// The touchpoint must not carry an external id: a duplicate of one could not be refused
/// without also refusing (or silently committing) the guarded write.
pub async fn record_after(
    tenant: &Tenant,
    guard: D1PreparedStatement,
    touch: NewTouchpoint,
    now: DateTime<Utc>,
) -> Result<Option<Recorded>, StoreError> {
    if touch.external_id.is_some() {
        return Err(StoreError::backend(
            "touchpoint",
            "a touchpoint recorded after a guarding statement has no external id",
        ));
    }
    record_in_batch(tenant, Some(guard), touch, now).await
}

/// [`record`] and [`record_after`]: `None` only when `guard` changed no row.
async fn record_in_batch(
    tenant: &Tenant,
    guard: Option<D1PreparedStatement>,
    touch: NewTouchpoint,
    now: DateTime<Utc>,
) -> Result<Option<Recorded>, StoreError> {
    let (metadata_text, external_id) = checked_fields(touch.metadata, touch.external_id)?;
    // The stamp is read with the state: any write after this read moves it.
    let mut lead = lead_heat(tenant, &touch.lead_id).await?;
    if let Some(external_id) = &external_id {
        if let Some(existing) =
            interactions::by_external_id(tenant, touch.platform, external_id).await?
        {
            return duplicate(tenant, existing).await.map(Some);
        }
    }
    let (config, config_version) = scoring_config(tenant).await?;
    let id = clock::new_id(prefix::INTERACTION);
    let external_id = external_id.unwrap_or_else(|| id.clone());
    let occurred_at = clock::rfc3339(touch.occurred_at);
    // The instants as stored (whole milliseconds), so the state and the rows agree on which
    // touches come before which instant.
    let now = stored_instant(now);
    let now_text = clock::rfc3339(now);
    let new_touch = Touch::new(touch.kind, stored_instant(touch.occurred_at));
    let lead_id = lead.id.clone();
    let row = NewInteractionRow {
        id: &id,
        lead_id: &lead_id,
        kind: touch.kind,
        platform: touch.platform,
        occurred_at: &occurred_at,
        captured_by: touch.captured_by,
        points: points_for(touch.kind, &config) as f64,
        external_id: &external_id,
        metadata: &metadata_text,
        created_at: &now_text,
    };
    let written = Written {
        lead_id: &lead_id,
        guarded: guard.is_some(),
        platform: touch.platform,
        external_id: &external_id,
        id: &id,
    };
    for attempt in 0..MAX_SCORE_RETRIES {
        if attempt > 0 {
            lead = lead_heat(tenant, &touch.lead_id).await?;
        }
        let (state, heat) = fold(tenant, &lead, new_touch, &config, config_version, now).await?;
        // The order matters: the guarded insert checks `changes()` of the guard right before it;
        // the heat write needs the new interaction; the level change checks `changes()` of the
        // heat write.
        let mut statements: Vec<D1PreparedStatement> = guard.iter().cloned().collect();
        statements.push(insert_statement(tenant, &row, written.guarded)?);
        statements.extend(heat_statements(
            tenant,
            &row,
            &lead,
            heat,
            &state,
            config_version,
        )?);
        match tenant.try_batch(statements).await? {
            Ok(results) => return finish(tenant, &written, &results, now).await,
            // The lead's stamp moved since it was read: nothing was written; read it again.
            Err(Constraint::Check) => continue,
            Err(other) => {
                return Err(StoreError::backend(
                    "touchpoint",
                    format!("the batch failed a {other:?} constraint"),
                ))
            }
        }
    }
    // Every attempt lost a race: store the touchpoint with its lead flagged, then rebuild the lead
    // from its history at once, so the answer (and the lead) counts it. Should the rebuild lose
    // its races too, the flag leaves the lead to its next touchpoint or the scoring job.
    let mut statements: Vec<D1PreparedStatement> = guard.into_iter().collect();
    statements.push(insert_statement(tenant, &row, written.guarded)?);
    statements.push(heat::flag_for_rebuild_statement(tenant, &lead.id)?);
    let results = tenant.batch(statements).await?;
    let inserted = results
        .get(usize::from(written.guarded))
        .map(db::changes)
        .unwrap_or(0)
        > 0;
    if inserted {
        rescore(tenant, &lead_id, now).await?;
    }
    finish(tenant, &written, &results, now).await
}

/// A touchpoint's metadata (serialized) and external id (trimmed; `None` when empty), checked.
fn checked_fields(
    metadata: Value,
    external_id: Option<String>,
) -> Result<(String, Option<String>), StoreError> {
    let metadata = match metadata {
        Value::Null => Value::Object(Map::new()),
        Value::Object(map) => Value::Object(map),
        _ => return Err(StoreError::invalid("metadata", "must be a JSON object")),
    };
    let metadata_text = metadata.to_string();
    if metadata_text.len() > MAX_METADATA_BYTES {
        return Err(StoreError::invalid(
            "metadata",
            "must be at most 16 KiB of JSON",
        ));
    }
    let external_id = external_id
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty());
    if external_id.as_ref().is_some_and(|e| e.len() > 512) {
        return Err(StoreError::invalid(
            "external_id",
            "must be at most 512 characters",
        ));
    }
    Ok((metadata_text, external_id))
}

/// The heat write of a new interaction `row` (which aborts its batch if the lead's stamp moved
/// since `lead` was read) and, when the level moves, the level change after it.
fn heat_statements(
    tenant: &Tenant,
    row: &NewInteractionRow<'_>,
    lead: &LeadHeatRow,
    heat: HeatValue,
    state: &HeatState,
    config_version: i64,
) -> Result<Vec<D1PreparedStatement>, StoreError> {
    let mut statements = vec![heat::write_statement(
        tenant,
        &HeatWrite {
            lead_id: &lead.id,
            heat,
            state,
            config_version,
            scored_at: row.created_at,
            expected_stamp: lead.heat_stamp,
            on_stamp_moved: OnStampMoved::AbortBatch,
            requires_interaction: Some(row.id),
            last_interaction: LastInteraction::Touch(row.kind.as_str(), row.occurred_at),
        },
    )?];
    if heat.level != lead.heat_level {
        statements.push(heat::guarded_level_change_statement(
            tenant,
            &lead.id,
            lead.heat_level,
            heat.level,
            lead.heat_stamp + 1,
            row.created_at,
            Some(row.id),
        )?);
    }
    Ok(statements)
}

/// What a touchpoint's batch wrote, to read its results.
struct Written<'a> {
    lead_id: &'a str,
    /// A guarding statement came first.
    guarded: bool,
    platform: Platform,
    external_id: &'a str,
    id: &'a str,
}

/// The interaction INSERT, after a guard or alone.
fn insert_statement(
    tenant: &Tenant,
    row: &NewInteractionRow<'_>,
    guarded: bool,
) -> Result<D1PreparedStatement, StoreError> {
    if guarded {
        interactions::guarded_insert_statement(tenant, row)
    } else {
        interactions::insert_statement(tenant, row)
    }
}

/// The lead's heat columns; a missing lead is a 404.
async fn lead_heat(tenant: &Tenant, lead_id: &str) -> Result<LeadHeatRow, StoreError> {
    heat::lead_heat(tenant, lead_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no lead {lead_id}")))
}

/// An instant at the precision it is stored with (whole milliseconds).
fn stored_instant(at: DateTime<Utc>) -> DateTime<Utc> {
    clock::from_ms(at.timestamp_millis())
}

/// The lead's new heat state and heat with `touch` folded in at `now`: from its stored state
/// (reading at most the touches a pending one crossed), or, when it has none for the current
/// config, rebuilt from its whole history.
async fn fold(
    tenant: &Tenant,
    lead: &LeadHeatRow,
    touch: Touch,
    config: &ScoringConfig,
    config_version: i64,
    now: DateTime<Utc>,
) -> Result<(HeatState, HeatValue), StoreError> {
    let stored = lead.stored();
    match stored.state {
        Some(state) if !stored.needs_rebuild(config_version) => {
            let read = match state.crossing(now) {
                Some(range) => Some(
                    interactions::crossing(
                        tenant,
                        &lead.id,
                        &clock::rfc3339(range.after),
                        &clock::rfc3339(range.until),
                    )
                    .await?,
                ),
                None => None,
            };
            let crossed = read.as_ref().map(|(touches, next)| Crossed {
                touches,
                next_pending_at: *next,
            });
            state
                .record(touch, config, now, crossed)
                .map_err(|e| StoreError::backend("heat state", e))
        }
        _ => {
            let mut touches = interactions::touches(tenant, &lead.id).await?;
            touches.push(touch);
            let heat = scoring::score(&touches, config, now).value();
            Ok((HeatState::from_touches(&touches, config, now), heat))
        }
    }
}

/// The outcome of a touchpoint's batch that ran: nothing (its guard did not apply), the existing
/// interaction (a duplicate external id), or the new one with its lead.
async fn finish(
    tenant: &Tenant,
    written: &Written<'_>,
    results: &[D1Result],
    now: DateTime<Utc>,
) -> Result<Option<Recorded>, StoreError> {
    let changed = |i: usize| results.get(i).map(db::changes).unwrap_or(0);
    let first = usize::from(written.guarded);
    if written.guarded && changed(0) == 0 {
        // The guarded write did not apply: the insert, and so the heat write and the level
        // change, did nothing either. (It writes one row when it applies, but D1 also counts
        // the rows triggers write, such as the dashboard's rollups: "applied" is "changed any".)
        return Ok(None);
    }
    if changed(first) == 0 {
        // A concurrent delivery of the same external id won between our check and our batch.
        let existing = interactions::by_external_id(tenant, written.platform, written.external_id)
            .await?
            .ok_or_else(|| {
                StoreError::backend("touchpoint", "insert ignored without a conflicting row")
            })?;
        return duplicate(tenant, existing).await.map(Some);
    }
    if changed(first + 1) == 0 {
        // Stored, but no heat write applied: settle the lead from its history.
        rescore(tenant, written.lead_id, now).await?;
    }
    let interaction = interactions::get(tenant, written.id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no interaction {}", written.id)))?;
    let lead = leads::require(tenant, &interaction.lead_id).await?;
    Ok(Some(Recorded {
        interaction,
        lead,
        duplicate: false,
    }))
}

async fn duplicate(tenant: &Tenant, existing: InteractionRecord) -> Result<Recorded, StoreError> {
    let lead = leads::require(tenant, &existing.lead_id).await?;
    Ok(Recorded {
        interaction: existing,
        lead,
        duplicate: true,
    })
}

/// Rebuilds a lead's heat and heat state from all its touches and stores them (guarded by the
/// heat stamp, retried when a concurrent write wins), with its last interaction time and a level
/// change row: after touchpoints were added or moved outside the state (a merge, attributed
/// website visits). Returns the heat stored, or `None` when the lead is gone.
pub async fn rescore(
    tenant: &Tenant,
    lead_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<HeatValue>, StoreError> {
    let (config, config_version) = scoring_config(tenant).await?;
    let now = stored_instant(now);
    let now_text = clock::rfc3339(now);
    for _ in 0..MAX_SCORE_RETRIES {
        let Some(lead) = heat::lead_heat(tenant, lead_id).await? else {
            return Ok(None);
        };
        let touches = interactions::touches(tenant, lead_id).await?;
        let state = HeatState::from_touches(&touches, &config, now);
        let heat = scoring::score(&touches, &config, now).value();
        let write = HeatWrite {
            lead_id,
            heat,
            state: &state,
            config_version,
            scored_at: &now_text,
            expected_stamp: lead.heat_stamp,
            on_stamp_moved: OnStampMoved::Skip,
            requires_interaction: None,
            last_interaction: LastInteraction::FromHistory,
        };
        // The level change must directly follow the heat write (it checks `changes()`).
        let mut statements = vec![heat::write_statement(tenant, &write)?];
        if heat.level != lead.heat_level {
            statements.push(heat::guarded_level_change_statement(
                tenant,
                lead_id,
                lead.heat_level,
                heat.level,
                lead.heat_stamp + 1,
                &now_text,
                None,
            )?);
        }
        let results = tenant.batch(statements).await?;
        if results.first().map(db::changes).unwrap_or(0) > 0 {
            return Ok(Some(heat));
        }
    }
    // Every attempt lost a race: let the scoring job settle it.
    heat::flag_for_rescore(tenant, lead_id).await?;
    Ok(None)
}
