//! One module per tenant table (or per tightly bound group of tables) of a shard: all their SQL
//! lives here, and every function over an org's rows takes the org's [`crate::tenant::Tenant`].
//! The directory's tables are `crate::directory`'s. What reads or
//! writes several tables at once composes those modules' statements into one batch.

use serde::Deserialize;

use crate::db;
use crate::db::StoreError;
use crate::tenant::Tenant;

pub mod custom_fields;
pub mod dashboard;
pub mod heat;
pub mod idempotency;
pub mod inbox;
pub mod integrations;
pub mod interactions;
pub mod leads;
pub mod members;
pub mod orgs;
pub mod pending_connections;
pub mod rescoring;
pub mod scoring_configs;
pub mod social_profiles;
pub mod stages;
pub mod suppressions;
pub mod throttles;
pub mod tracking;

/// The org's latest write time, as `GET /v1/changes` defines it: the newest of its touchpoint
/// inserts, lead writes and heat level changes (RFC 3339 storage strings, which compare as text),
/// read in one batch (one round trip, one snapshot). `None` for an org without any.
pub async fn latest_write_at(tenant: &Tenant) -> Result<Option<String>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        at: Option<String>,
    }
    let statements = vec![
        interactions::latest_created_statement(tenant)?,
        leads::latest_updated_statement(tenant)?,
        heat::latest_level_change_statement(tenant)?,
    ];
    let mut latest: Option<String> = None;
    for result in tenant.batch(statements).await? {
        let rows: Vec<Row> = db::rows(&result, "latest write time")?;
        latest = latest.max(rows.into_iter().filter_map(|row| row.at).max());
    }
    Ok(latest)
}
