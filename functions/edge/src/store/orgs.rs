//! The shard's `orgs` row (which the org's tables reference), with the defaults every org has
//! from its first request: a scoring config and the
//! default pipeline stages (their statements are `scoring_configs`' and `stages`').

use chrono::{DateTime, Utc};
use leadheat_domain::ids::prefix;
use leadheat_domain::ranking;

use crate::args;
use crate::clock;
use crate::db;
use crate::db::StoreError;
use crate::store::scoring_configs;
use crate::store::stages::{self, NewStage};
use crate::tenant::Tenant;

/// The default pipeline: (name, closed, won). Won and Lost close a deal.
pub const DEFAULT_STAGES: [(&str, bool, bool); 7] = [
    ("New", false, false),
    ("Contacted", false, false),
    ("Qualified", false, false),
    ("Proposal", false, false),
    ("Negotiation", false, false),
    ("Won", true, true),
    ("Lost", true, false),
];

/// Creates the org's row on its shard with its defaults, unless they exist. Safe to race and to
/// repeat: every insert ignores a conflict. Only the directory calls it, when it places the org.
pub(crate) async fn create_with_defaults(
    tenant: &Tenant,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let now = clock::rfc3339(now);
    let mut statements = vec![
        db::statement(
            db,
            "INSERT INTO orgs (id, created_at, updated_at) VALUES (?1, ?2, ?2) ON CONFLICT (id) DO NOTHING",
            &args![org_id, now.as_str()],
        )?,
        scoring_configs::insert_default_statement(tenant, &now)?,
    ];
    for ((name, closed, won), rank) in DEFAULT_STAGES
        .iter()
        .zip(ranking::evenly_spaced(DEFAULT_STAGES.len()))
    {
        statements.push(stages::insert_statement(
            tenant,
            &NewStage {
                id: &clock::new_id(prefix::STAGE),
                name,
                rank_key: &rank,
                is_closed: *closed,
                is_won: *won,
                now: &now,
            },
        )?);
    }
    db::batch(db, statements).await?;
    Ok(())
}
