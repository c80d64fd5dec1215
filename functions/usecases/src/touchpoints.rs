//! Recording a touchpoint: the interaction insert and the lead's new heat score, level and last
//! interaction time in ONE D1 batch, computed by the domain's `score()` over all the lead's
//! touches with the org's scoring config. Used by the API (manual entry), the social sync
//! consumer, the pipeline (stage changes) and website tracking. A touchpoint reporting a write of
//! its own (a move's stage change) goes into that write's batch: [`record_after`].
//!
//! Concurrency: the heat UPDATE is guarded by the lead's `heat_stamp` (read before the touches)
//! and by the new interaction's existence (so a duplicate external id changes nothing). When the
//! insert applied but a concurrent write moved the stamp, the score is recomputed and written
//! again (bounded), so the stored score always reflects every touchpoint; should every retry
//! lose, the lead is flagged `needs_rescore` for the scoring job.

use chrono::{DateTime, Utc};
use leadheat_domain::ids::prefix;
use leadheat_domain::scoring::{self, points_for, Heat, ScoringConfig, Touch};
use leadheat_domain::types::{CapturedBy, InteractionType, Platform};
use serde_json::{json, Map, Value};
use worker::D1PreparedStatement;

use leadheat_edge::clock;
use leadheat_edge::db;
use leadheat_edge::db::StoreError;
use leadheat_edge::store::heat::{self, HeatWrite};
use leadheat_edge::store::interactions::{self, InteractionRecord, NewInteractionRow};
use leadheat_edge::store::leads::{self, LeadRecord};
use leadheat_edge::store::scoring_configs;
use leadheat_edge::tenant::Tenant;

/// Largest accepted metadata object (serialized).
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Rewrites of the score after losing a race before flagging the lead for the job.
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
    let metadata = match touch.metadata {
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
    let external_id = touch
        .external_id
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty());
    if external_id.as_ref().is_some_and(|e| e.len() > 512) {
        return Err(StoreError::invalid(
            "external_id",
            "must be at most 512 characters",
        ));
    }

    // The stamp is read BEFORE the touches: any write after this read moves it.
    let lead = leads::require(tenant, &touch.lead_id).await?;
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
    let now_text = clock::rfc3339(now);
    let points = points_for(touch.kind, &config);

    let mut touches = interactions::touches(tenant, &lead.id).await?;
    touches.push(Touch::new(touch.kind, touch.occurred_at));
    let heat = scoring::score(&touches, &config, now);
    let old_level = lead.heat_level;

    let row = NewInteractionRow {
        id: &id,
        lead_id: &lead.id,
        kind: touch.kind,
        platform: touch.platform,
        occurred_at: &occurred_at,
        captured_by: touch.captured_by,
        points: points as f64,
        external_id: &external_id,
        metadata: &metadata_text,
        created_at: &now_text,
    };
    // The order matters: the guarded insert checks `changes()` of the guard right before it; the
    // heat write needs the new interaction; the level change checks `changes()` of the heat write.
    let guarded = guard.is_some();
    let mut statements: Vec<D1PreparedStatement> = guard.into_iter().collect();
    statements.push(if guarded {
        interactions::guarded_insert_statement(tenant, &row)?
    } else {
        interactions::insert_statement(tenant, &row)?
    });
    statements.push(heat::write_statement(
        tenant,
        &HeatWrite {
            lead_id: &lead.id,
            heat: &heat,
            config_version,
            scored_at: &now_text,
            expected_stamp: lead.heat_stamp,
            requires_interaction: Some(&id),
            refresh_last_interaction: true,
        },
    )?);
    if heat.level != old_level {
        statements.push(heat::guarded_level_change_statement(
            tenant,
            &lead.id,
            old_level,
            &heat,
            lead.heat_stamp + 1,
            &now_text,
            Some(&id),
        )?);
    }
    let results = tenant.batch(statements).await?;
    let changed = |i: usize| results.get(i).map(db::changes).unwrap_or(0);
    let first = usize::from(guarded);
    if guarded && changed(0) == 0 {
        // The guarded write did not apply: the insert, and so the heat write and the level
        // change, did nothing either. (It writes one row when it applies, but D1 also counts
        // the rows triggers write, such as the dashboard's rollups: "applied" is "changed any".)
        return Ok(None);
    }
    let inserted = changed(first) > 0;
    let scored = changed(first + 1) > 0;

    if !inserted {
        // A concurrent delivery of the same external id won between our check and our batch.
        let existing = interactions::by_external_id(tenant, touch.platform, &external_id)
            .await?
            .ok_or_else(|| {
                StoreError::backend("touchpoint", "insert ignored without a conflicting row")
            })?;
        return duplicate(tenant, existing).await.map(Some);
    }
    if !scored {
        rescore(tenant, &lead.id, now).await?;
    }
    let interaction = interactions::get(tenant, &id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no lead {}", touch.lead_id)))?;
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

/// Recomputes a lead's heat from all its touches and stores it (guarded by the heat stamp,
/// retried when a concurrent write wins), with its last interaction time and a level change row.
/// Returns the heat stored, or `None` when the lead is gone.
pub async fn rescore(
    tenant: &Tenant,
    lead_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Heat>, StoreError> {
    let (config, config_version) = scoring_config(tenant).await?;
    let now_text = clock::rfc3339(now);
    for _ in 0..MAX_SCORE_RETRIES {
        let Some(lead) = leads::get(tenant, lead_id).await? else {
            return Ok(None);
        };
        let touches = interactions::touches(tenant, lead_id).await?;
        let heat = scoring::score(&touches, &config, now);
        let old_level = lead.heat_level;
        let write = HeatWrite {
            lead_id,
            heat: &heat,
            config_version,
            scored_at: &now_text,
            expected_stamp: lead.heat_stamp,
            requires_interaction: None,
            refresh_last_interaction: true,
        };
        // The level change must directly follow the heat write (it checks `changes()`).
        let mut statements = vec![heat::write_statement(tenant, &write)?];
        if heat.level != old_level {
            statements.push(heat::guarded_level_change_statement(
                tenant,
                lead_id,
                old_level,
                &heat,
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
