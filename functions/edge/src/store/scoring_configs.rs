//! `scoring_configs`: an org's weights, thresholds and decay, with the version that tells the
//! scoring job which leads were scored under an older config.

use std::collections::BTreeMap;

use leadheat_domain::scoring::{ScoringConfig, Thresholds};
use leadheat_domain::types::InteractionType;
use serde::Deserialize;
use worker::D1PreparedStatement;

use crate::args;
use crate::db;
use crate::db::StoreError;
use crate::store::heat;
use crate::tenant::Tenant;

#[derive(Debug, Deserialize)]
struct ConfigRow {
    weights: String,
    warm_threshold: f64,
    hot_threshold: f64,
    decay_half_life_days: Option<f64>,
    config_version: i64,
    updated_at: String,
}

/// An org's stored config.
#[derive(Debug, Clone)]
pub struct StoredConfig {
    pub config: ScoringConfig,
    pub config_version: i64,
    /// `None` when the org has no row (the domain's defaults apply).
    pub updated_at: Option<String>,
}

/// The org's config, or the domain defaults (version 1) when it has none.
pub async fn get(tenant: &Tenant) -> Result<StoredConfig, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let row: Option<ConfigRow> = db::first(
        db,
        "SELECT weights, warm_threshold, hot_threshold, decay_half_life_days, config_version, updated_at \
         FROM scoring_configs WHERE org_id = ?1",
        &args![org_id],
    )
    .await?;
    let Some(row) = row else {
        return Ok(StoredConfig {
            config: ScoringConfig::default(),
            config_version: 1,
            updated_at: None,
        });
    };
    let config = from_columns(
        &row.weights,
        row.warm_threshold,
        row.hot_threshold,
        row.decay_half_life_days,
    )
    .map_err(|e| StoreError::backend("scoring_configs.weights", e))?;
    Ok(StoredConfig {
        config,
        config_version: row.config_version,
        updated_at: Some(row.updated_at),
    })
}

/// A config from its stored columns; fails when the stored weights do not parse.
pub fn from_columns(
    weights: &str,
    warm_threshold: f64,
    hot_threshold: f64,
    decay_half_life_days: Option<f64>,
) -> Result<ScoringConfig, serde_json::Error> {
    let weights: BTreeMap<InteractionType, i64> = serde_json::from_str(weights)?;
    Ok(ScoringConfig {
        weights,
        thresholds: Thresholds {
            warm: warm_threshold,
            hot: hot_threshold,
        },
        decay_half_life_days,
    })
}

/// Stores the domain's default config as a new org's version 1, unless the org has a config.
pub fn insert_default_statement(
    tenant: &Tenant,
    now: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let config = ScoringConfig::default();
    let weights =
        serde_json::to_string(&config.weights).map_err(|e| StoreError::backend("weights", e))?;
    db::statement(
        db,
        "INSERT INTO scoring_configs (org_id, weights, warm_threshold, hot_threshold, decay_half_life_days, config_version, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6) ON CONFLICT (org_id) DO NOTHING",
        &args![
            org_id,
            weights,
            config.thresholds.warm,
            config.thresholds.hot,
            config.decay_half_life_days,
            now
        ],
    )
}

/// Replaces the org's config and bumps its version; in the same batch every lead of the org is
/// flagged for the scoring job. `config` must already be validated.
pub async fn put(tenant: &Tenant, config: &ScoringConfig, now: &str) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let weights =
        serde_json::to_string(&config.weights).map_err(|e| StoreError::backend("weights", e))?;
    let statements = vec![
        db::statement(
            db,
            "INSERT INTO scoring_configs (org_id, weights, warm_threshold, hot_threshold, decay_half_life_days, config_version, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 2, ?6) \
             ON CONFLICT (org_id) DO UPDATE SET weights = excluded.weights, warm_threshold = excluded.warm_threshold, \
             hot_threshold = excluded.hot_threshold, decay_half_life_days = excluded.decay_half_life_days, \
             config_version = scoring_configs.config_version + 1, updated_at = excluded.updated_at",
            &args![
                org_id,
                weights,
                config.thresholds.warm,
                config.thresholds.hot,
                config.decay_half_life_days,
                now
            ],
        )?,
        heat::flag_org_for_rescore_statement(tenant)?,
    ];
    db::batch(db, statements).await?;
    Ok(())
}
