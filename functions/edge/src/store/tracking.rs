//! `tracking_visitors` and `tracking_events`: the website's visitors (and the lead each one turned
//! out to be) and their raw events.

use serde::Deserialize;
use worker::D1PreparedStatement;

use crate::args;
use crate::db;
use crate::db::StoreError;
use crate::tenant::{Shard, Tenant};

#[derive(Debug, Clone, Deserialize)]
pub struct VisitorRow {
    pub lead_id: Option<String>,
    pub last_visit_touch_at: Option<String>,
}

/// Records that the visitor was seen (creating it on first sight) and returns its row.
pub async fn touch_visitor(
    tenant: &Tenant,
    visitor_id: &str,
    seen_at: &str,
) -> Result<VisitorRow, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let sql = "INSERT INTO tracking_visitors (org_id, visitor_id, lead_id, last_visit_touch_at, first_seen_at, last_seen_at) \
               VALUES (?1, ?2, NULL, NULL, ?3, ?3) \
               ON CONFLICT (org_id, visitor_id) DO UPDATE SET last_seen_at = MAX(tracking_visitors.last_seen_at, excluded.last_seen_at), \
               first_seen_at = MIN(tracking_visitors.first_seen_at, excluded.first_seen_at) \
               RETURNING lead_id, last_visit_touch_at";
    let rows: Vec<VisitorRow> = db::all(db, sql, &args![org_id, visitor_id, seen_at]).await?;
    rows.into_iter()
        .next()
        .ok_or_else(|| StoreError::backend("tracking_visitors upsert", "no row returned"))
}

/// Links the visitor to the lead it identified as.
pub async fn link_visitor(
    tenant: &Tenant,
    visitor_id: &str,
    lead_id: &str,
) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::run(
        db,
        "UPDATE tracking_visitors SET lead_id = ?3 WHERE org_id = ?1 AND visitor_id = ?2",
        &args![org_id, visitor_id, lead_id],
    )
    .await?;
    Ok(())
}

/// Points every visitor identified as lead `from` at lead `to` (a merge).
pub fn reassign_lead_statement(
    tenant: &Tenant,
    from: &str,
    to: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "UPDATE tracking_visitors SET lead_id = ?1 WHERE lead_id = ?2 AND org_id = ?3",
        &args![to, from, org_id],
    )
}

/// Erasure: deletes every visitor identified as the lead and all their raw events (the events
/// were the person's browsing, before and after they identified).
pub fn erase_lead_statements(
    tenant: &Tenant,
    lead_id: &str,
) -> Result<Vec<D1PreparedStatement>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    Ok(vec![
        db::statement(
            db,
            "DELETE FROM tracking_events WHERE org_id = ?2 AND visitor_id IN \
             (SELECT visitor_id FROM tracking_visitors WHERE lead_id = ?1 AND org_id = ?2)",
            &args![lead_id, org_id],
        )?,
        db::statement(
            db,
            "DELETE FROM tracking_visitors WHERE lead_id = ?1 AND org_id = ?2",
            &args![lead_id, org_id],
        )?,
    ])
}

/// Moves the visitor's last touched session start to `session_start` if the previous one is at
/// least a session length older (`older_than` = `session_start` - 30 minutes). `true` when this
/// call opened the session: the caller then records the visit; a concurrent request for the same
/// session finds the row already moved and records nothing.
pub async fn open_session(
    tenant: &Tenant,
    visitor_id: &str,
    session_start: &str,
    older_than: &str,
) -> Result<bool, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let changed = db::run(
        db,
        "UPDATE tracking_visitors SET last_visit_touch_at = ?3 WHERE org_id = ?1 AND visitor_id = ?2 \
         AND (last_visit_touch_at IS NULL OR last_visit_touch_at <= ?4)",
        &args![org_id, visitor_id, session_start, older_than],
    )
    .await?;
    Ok(changed == 1)
}

/// Sets the last touched session start to at least `session_start` (after attribution).
pub fn advance_session_statement(
    tenant: &Tenant,
    visitor_id: &str,
    session_start: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "UPDATE tracking_visitors SET last_visit_touch_at = ?3 WHERE org_id = ?1 AND visitor_id = ?2 \
         AND (last_visit_touch_at IS NULL OR last_visit_touch_at < ?3)",
        &args![org_id, visitor_id, session_start],
    )
}

pub struct NewEvent<'a> {
    pub id: &'a str,
    pub visitor_id: &'a str,
    pub kind: &'a str,
    pub url: Option<&'a str>,
    pub occurred_at: &'a str,
    pub attributed: bool,
}

pub async fn insert_event(tenant: &Tenant, event: &NewEvent<'_>) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::run(
        db,
        "INSERT INTO tracking_events (id, org_id, visitor_id, kind, url, occurred_at, attributed) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        &args![
            event.id,
            org_id,
            event.visitor_id,
            event.kind,
            event.url,
            event.occurred_at,
            event.attributed
        ],
    )
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Deserialize)]
pub struct AnonymousView {
    pub id: String,
    pub url: Option<String>,
    pub occurred_at: String,
}

/// The visitor's page views not yet attributed to a lead, newest first, at most `limit`.
pub async fn anonymous_views(
    tenant: &Tenant,
    visitor_id: &str,
    limit: usize,
) -> Result<Vec<AnonymousView>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::all(
        db,
        "SELECT id, url, occurred_at FROM tracking_events \
         WHERE org_id = ?1 AND visitor_id = ?2 AND kind = 'page_view' AND attributed = 0 \
         ORDER BY occurred_at DESC LIMIT ?3",
        &args![org_id, visitor_id, limit],
    )
    .await
}

/// Marks every anonymous page view of the visitor up to `until` as attributed.
pub fn mark_attributed_statement(
    tenant: &Tenant,
    visitor_id: &str,
    until: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "UPDATE tracking_events SET attributed = 1 \
         WHERE org_id = ?1 AND visitor_id = ?2 AND kind = 'page_view' AND attributed = 0 AND occurred_at <= ?3",
        &args![org_id, visitor_id, until],
    )
}

/// Retention: deletes up to `limit` events (of any org) that occurred before `before`.
pub async fn prune_events(shard: &Shard, before: &str, limit: usize) -> Result<u64, StoreError> {
    let db = shard.db();
    db::run(
        db,
        "DELETE FROM tracking_events WHERE id IN \
         (SELECT id FROM tracking_events WHERE occurred_at < ?1 LIMIT ?2)",
        &args![before, limit],
    )
    .await
}

/// Retention: deletes up to `limit` visitors (of any org) last seen before `before`, with their
/// remaining events.
pub async fn prune_visitors(shard: &Shard, before: &str, limit: usize) -> Result<u64, StoreError> {
    let db = shard.db();
    let statements = vec![
        db::statement(
            db,
            "DELETE FROM tracking_events WHERE (org_id, visitor_id) IN \
             (SELECT org_id, visitor_id FROM tracking_visitors WHERE last_seen_at < ?1 LIMIT ?2)",
            &args![before, limit],
        )?,
        db::statement(
            db,
            "DELETE FROM tracking_visitors WHERE rowid IN \
             (SELECT rowid FROM tracking_visitors WHERE last_seen_at < ?1 LIMIT ?2)",
            &args![before, limit],
        )?,
    ];
    let results = db::batch(db, statements).await?;
    Ok(results.last().map(db::changes).unwrap_or(0))
}
