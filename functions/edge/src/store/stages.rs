//! `pipeline_stages`, and the pipeline reads of `leads` (stage_id, rank_key): stages in board
//! order, the board's pages of leads, and a lead's move (its UPDATE is `leads::move_statement`).

use leadheat_domain::types::HeatLevel;
use serde::Deserialize;
use serde_json::Value;
use worker::D1PreparedStatement;

use crate::args;
use crate::db;
use crate::db::StoreError;
use crate::store::leads;
use crate::tenant::Tenant;

/// A stage with how many leads it holds.
#[derive(Debug, Clone, Deserialize)]
pub struct StageRow {
    pub id: String,
    pub name: String,
    pub rank_key: String,
    pub is_closed: i64,
    pub is_won: i64,
    pub lead_count: i64,
}

const STAGE_COLUMNS: &str = "s.id, s.name, s.rank_key, s.is_closed, s.is_won, \
     (SELECT COUNT(*) FROM leads l WHERE l.org_id = s.org_id AND l.stage_id = s.id) AS lead_count";

/// The org's stages in board order.
pub async fn list(tenant: &Tenant) -> Result<Vec<StageRow>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::all(
        db,
        &format!(
            "SELECT {STAGE_COLUMNS} FROM pipeline_stages s WHERE s.org_id = ?1 ORDER BY s.rank_key, s.id"
        ),
        &args![org_id],
    )
    .await
}

pub async fn get(tenant: &Tenant, id: &str) -> Result<Option<StageRow>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::first(
        db,
        &format!("SELECT {STAGE_COLUMNS} FROM pipeline_stages s WHERE s.org_id = ?1 AND s.id = ?2"),
        &args![org_id, id],
    )
    .await
}

/// A new stage.
pub struct NewStage<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub rank_key: &'a str,
    pub is_closed: bool,
    pub is_won: bool,
    pub now: &'a str,
}

/// Inserts a stage unless the org already has a stage of that name (case-insensitive): then it
/// changes nothing (check `db::changes()`).
pub fn insert_statement(
    tenant: &Tenant,
    stage: &NewStage<'_>,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "INSERT INTO pipeline_stages (id, org_id, name, rank_key, is_closed, is_won, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) ON CONFLICT (org_id, name) DO NOTHING",
        &args![
            stage.id,
            org_id,
            stage.name,
            stage.rank_key,
            stage.is_closed,
            stage.is_won,
            stage.now
        ],
    )
}

/// Creates a stage; `false` when the org already has a stage of that name (case-insensitive).
pub async fn create(tenant: &Tenant, stage: &NewStage<'_>) -> Result<bool, StoreError> {
    let results = tenant.batch(vec![insert_statement(tenant, stage)?]).await?;
    Ok(results.first().map(db::changes) == Some(1))
}

/// What an update or delete of a stage came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    NotFound,
    /// Rename: the name is taken. Delete: the stage still holds leads (or is the last one).
    Conflict,
}

/// The org's first stage (by position), where new leads go by default.
pub async fn first_id(tenant: &Tenant) -> Result<Option<String>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    #[derive(Deserialize)]
    struct Row {
        id: String,
    }
    let row: Option<Row> = db::first(
        db,
        "SELECT id FROM pipeline_stages WHERE org_id = ?1 ORDER BY rank_key, id LIMIT 1",
        &args![org_id],
    )
    .await?;
    Ok(row.map(|r| r.id))
}

/// Whether the stage exists in the org.
pub async fn exists(tenant: &Tenant, stage_id: &str) -> Result<bool, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let row: Option<Value> = db::first(
        db,
        "SELECT 1 AS found FROM pipeline_stages WHERE org_id = ?1 AND id = ?2",
        &args![org_id, stage_id],
    )
    .await?;
    Ok(row.is_some())
}

/// Changes a stage's name and flags (`None` keeps the current value).
pub async fn update(
    tenant: &Tenant,
    id: &str,
    name: Option<&str>,
    is_closed: Option<bool>,
    is_won: Option<bool>,
    now: &str,
) -> Result<Outcome, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    // OR IGNORE: a name taken by another stage of the org skips the row instead of failing.
    let changed = db::run(
        db,
        "UPDATE OR IGNORE pipeline_stages SET name = COALESCE(?3, name), is_closed = COALESCE(?4, is_closed), \
         is_won = COALESCE(?5, is_won), updated_at = ?6 WHERE org_id = ?1 AND id = ?2",
        &args![org_id, id, name, is_closed, is_won, now],
    )
    .await?;
    outcome(tenant, id, changed).await
}

/// Deletes a stage that holds no lead and is not the org's last stage.
pub async fn delete(tenant: &Tenant, id: &str) -> Result<Outcome, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let changed = db::run(
        db,
        "DELETE FROM pipeline_stages WHERE org_id = ?1 AND id = ?2 \
         AND NOT EXISTS (SELECT 1 FROM leads WHERE org_id = ?1 AND stage_id = ?2) \
         AND (SELECT COUNT(*) FROM pipeline_stages WHERE org_id = ?1) > 1",
        &args![org_id, id],
    )
    .await?;
    outcome(tenant, id, changed).await
}

/// What a guarded write of stage `id` that changed `changed` rows came to: done, or why not.
async fn outcome(tenant: &Tenant, id: &str, changed: u64) -> Result<Outcome, StoreError> {
    if changed == 1 {
        return Ok(Outcome::Done);
    }
    Ok(match get(tenant, id).await? {
        Some(_) => Outcome::Conflict,
        None => Outcome::NotFound,
    })
}

/// Writes new rank keys for the given stages, all in one batch.
pub async fn set_ranks(
    tenant: &Tenant,
    ranks: &[(String, String)],
    now: &str,
) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let statements = ranks
        .iter()
        .map(|(id, rank)| {
            db::statement(
                db,
                "UPDATE pipeline_stages SET rank_key = ?3, updated_at = ?4 WHERE org_id = ?1 AND id = ?2",
                &args![org_id, id.as_str(), rank.as_str(), now],
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    db::batch(db, statements).await?;
    Ok(())
}

/// A lead as a card on the board.
#[derive(Debug, Clone, Deserialize)]
pub struct CardRow {
    pub id: String,
    pub stage_id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    pub heat_score: f64,
    pub heat_level: HeatLevel,
    pub heat_trend: f64,
    pub rank_key: String,
}

const CARD_COLUMNS: &str =
    "id, stage_id, first_name, last_name, company, heat_score, heat_level, heat_trend, rank_key";

/// A column page: the stage's leads in position order after `(rank_key, id)`, at most `limit`.
pub struct ColumnPage<'a> {
    pub stage_id: &'a str,
    pub after: Option<(&'a str, &'a str)>,
    pub limit: usize,
}

/// One page per column, all read in one round trip (a D1 batch).
pub async fn board_pages(
    tenant: &Tenant,
    pages: &[ColumnPage<'_>],
) -> Result<Vec<Vec<CardRow>>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let sql_first = format!(
        "SELECT {CARD_COLUMNS} FROM leads WHERE org_id = ?1 AND stage_id = ?2 \
         ORDER BY rank_key, id LIMIT ?3"
    );
    let sql_after = format!(
        "SELECT {CARD_COLUMNS} FROM leads WHERE org_id = ?1 AND stage_id = ?2 \
         AND (rank_key > ?4 OR (rank_key = ?4 AND id > ?5)) ORDER BY rank_key, id LIMIT ?3"
    );
    let mut statements = Vec::with_capacity(pages.len());
    for page in pages {
        statements.push(match page.after {
            None => db::statement(db, &sql_first, &args![org_id, page.stage_id, page.limit])?,
            Some((rank, id)) => db::statement(
                db,
                &sql_after,
                &args![org_id, page.stage_id, page.limit, rank, id],
            )?,
        });
    }
    let results = db::batch(db, statements).await?;
    results
        .iter()
        .map(|result| db::rows(result, &sql_first))
        .collect()
}

/// Where a lead sits.
#[derive(Debug, Clone, Deserialize)]
pub struct Position {
    pub id: String,
    pub stage_id: Option<String>,
    pub rank_key: Option<String>,
}

pub async fn position(tenant: &Tenant, lead_id: &str) -> Result<Option<Position>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::first(
        db,
        "SELECT id, stage_id, rank_key FROM leads WHERE org_id = ?1 AND id = ?2",
        &args![org_id, lead_id],
    )
    .await
}

#[derive(Debug, Deserialize)]
struct RankOnly {
    rank_key: String,
}

/// The rank key of the lead right before (`before = true`) or right after `(rank, id)` in the
/// stage, skipping `except` (the lead being moved).
pub async fn neighbour_rank(
    tenant: &Tenant,
    stage_id: &str,
    anchor: Option<(&str, &str)>,
    before: bool,
    except: &str,
) -> Result<Option<String>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let row: Option<RankOnly> = match (anchor, before) {
        (Some((rank, id)), true) => {
            db::first(
                db,
                "SELECT rank_key FROM leads WHERE org_id = ?1 AND stage_id = ?2 AND id <> ?3 \
                 AND (rank_key < ?4 OR (rank_key = ?4 AND id < ?5)) ORDER BY rank_key DESC, id DESC LIMIT 1",
                &args![org_id, stage_id, except, rank, id],
            )
            .await?
        }
        (Some((rank, id)), false) => {
            db::first(
                db,
                "SELECT rank_key FROM leads WHERE org_id = ?1 AND stage_id = ?2 AND id <> ?3 \
                 AND (rank_key > ?4 OR (rank_key = ?4 AND id > ?5)) ORDER BY rank_key, id LIMIT 1",
                &args![org_id, stage_id, except, rank, id],
            )
            .await?
        }
        // The column's last lead (the end of the column).
        (None, true) => {
            db::first(
                db,
                "SELECT rank_key FROM leads WHERE org_id = ?1 AND stage_id = ?2 AND id <> ?3 \
                 ORDER BY rank_key DESC, id DESC LIMIT 1",
                &args![org_id, stage_id, except],
            )
            .await?
        }
        (None, false) => {
            db::first(
                db,
                "SELECT rank_key FROM leads WHERE org_id = ?1 AND stage_id = ?2 AND id <> ?3 \
                 ORDER BY rank_key, id LIMIT 1",
                &args![org_id, stage_id, except],
            )
            .await?
        }
    };
    Ok(row.map(|r| r.rank_key))
}

/// The statement putting a lead at `rank_key` in `stage_id`, guarded by the lead's previous
/// position so two concurrent moves of one lead cannot interleave: it changes one row if the
/// move applied, none if the lead had moved meanwhile. The pipeline runs it in one batch with the
/// move's touchpoint (`touchpoints::record_after`).
pub fn move_lead_statement(
    tenant: &Tenant,
    lead_id: &str,
    from: &Position,
    stage_id: &str,
    rank_key: &str,
    now: &str,
) -> Result<D1PreparedStatement, StoreError> {
    leads::move_statement(
        tenant,
        lead_id,
        (from.stage_id.as_deref(), from.rank_key.as_deref()),
        (stage_id, rank_key),
        now,
    )
}
