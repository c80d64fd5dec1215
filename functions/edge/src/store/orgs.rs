//! `orgs`, with the defaults every org has from its first request: a scoring config and the
//! default pipeline stages (their statements are `scoring_configs`' and `stages`').

use chrono::{DateTime, Utc};
use leadheat_domain::ids::prefix;
use leadheat_domain::ranking;
use serde::Deserialize;
use worker::D1Database;

use crate::args;
use crate::clock;
use crate::db;
use crate::http::Problem;
use crate::store::scoring_configs;
use crate::store::stages::{self, NewStage};

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

/// Creates the org with its defaults unless it exists. Safe to race: every insert ignores a
/// conflict, so two first requests at once create one org.
pub async fn ensure(db: &D1Database, org_id: &str, now: DateTime<Utc>) -> Result<(), Problem> {
    // Every authenticated request lands here; orgs are never deleted, so an org seen once by this
    // isolate needs no further read.
    if KNOWN_ORGS.with(|known| known.borrow().contains(org_id)) {
        return Ok(());
    }
    let exists: Option<serde_json::Value> = db::first(
        db,
        "SELECT 1 AS found FROM orgs WHERE id = ?1",
        &args![org_id],
    )
    .await?;
    if exists.is_none() {
        create_with_defaults(db, org_id, now).await?;
    }
    KNOWN_ORGS.with(|known| {
        let mut known = known.borrow_mut();
        if known.len() >= MAX_KNOWN_ORGS {
            known.clear();
        }
        known.insert(org_id.to_string());
    });
    Ok(())
}

/// Orgs this isolate has seen exist (bounded: cleared when full).
const MAX_KNOWN_ORGS: usize = 10_000;

thread_local! {
    static KNOWN_ORGS: std::cell::RefCell<std::collections::HashSet<String>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

async fn create_with_defaults(
    db: &D1Database,
    org_id: &str,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let now = clock::rfc3339(now);
    let mut statements = vec![
        db::statement(
            db,
            "INSERT INTO orgs (id, site_key, created_at, updated_at) VALUES (?1, ?2, ?3, ?3) ON CONFLICT (id) DO NOTHING",
            &args![org_id, new_site_key(), now.as_str()],
        )?,
        scoring_configs::insert_default_statement(db, org_id, &now)?,
    ];
    for ((name, closed, won), rank) in DEFAULT_STAGES
        .iter()
        .zip(ranking::evenly_spaced(DEFAULT_STAGES.len()))
    {
        statements.push(stages::insert_statement(
            db,
            &NewStage {
                id: &clock::new_id(prefix::STAGE),
                org_id,
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

#[derive(Debug, Deserialize)]
pub struct OrgRow {
    pub id: String,
    pub site_key: String,
}

/// The org a website tracking key belongs to.
pub async fn by_site_key(db: &D1Database, site_key: &str) -> Result<Option<OrgRow>, Problem> {
    db::first(
        db,
        "SELECT id, site_key FROM orgs WHERE site_key = ?1",
        &args![site_key],
    )
    .await
}

pub async fn get(db: &D1Database, org_id: &str) -> Result<Option<OrgRow>, Problem> {
    db::first(
        db,
        "SELECT id, site_key FROM orgs WHERE id = ?1",
        &args![org_id],
    )
    .await
}

/// Replaces the org's site key (the old one stops working at once) and returns the new one.
pub async fn rotate_site_key(
    db: &D1Database,
    org_id: &str,
    now: DateTime<Utc>,
) -> Result<String, Problem> {
    let key = new_site_key();
    db::run(
        db,
        "UPDATE orgs SET site_key = ?2, updated_at = ?3 WHERE id = ?1",
        &args![org_id, key.as_str(), clock::rfc3339(now)],
    )
    .await?;
    Ok(key)
}

/// A public, unguessable key for the website snippet (not a secret: it only admits tracking).
fn new_site_key() -> String {
    format!("site_{}", hex::encode(clock::random_bytes::<16>()))
}
