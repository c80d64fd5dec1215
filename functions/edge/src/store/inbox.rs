//! `webhook_inbox`: every signed delivery, stored before it is acknowledged, so nothing is lost
//! when a queue message is.
//!
//! Life cycle: pending → processing (claimed with a lease) → processed | ignored | pending again
//! (retry at next_attempt_at) | dead (replayable: back to pending). Claims are conditional updates,
//! so two consumers (a redelivered message, a reconciliation) never process one event at once.
//!
//! Attempts are counted by the claim (`leadheat_domain::sync::claim`): a claim of an event whose
//! attempts are used up makes it dead instead, so an event whose processing never finishes (its
//! consumer keeps crashing) cannot be claimed forever. Outcomes are written only by the consumer
//! that holds the lease (`lease_until` is its fencing token): a consumer that outlived its lease,
//! and whose event was claimed again since, changes nothing.

use leadheat_domain::sync::InboxStatus;
use serde::Deserialize;
use worker::D1PreparedStatement;

use crate::args;
use crate::db;
use crate::db::StoreError;
use crate::tenant::{Shard, Tenant};

/// What the webhook worker stores of a delivery.
pub struct NewInboxEvent<'a> {
    pub id: &'a str,
    pub platform: &'a str,
    pub dedupe_key: &'a str,
    pub account_id: Option<&'a str>,
    pub body: &'a str,
    pub received_at: &'a str,
}

/// Stores the parts of one delivery in ONE batch; returns, per part, whether it was stored (false
/// when the same event was already stored: a redelivery). One round trip however many parts.
///
/// The parts travel as JSON arrays of rows, each array in one set-based statement kept under D1's
/// statement size (`d1_limits::runs_within`), so a delivery of hundreds of parts costs a handful of
/// queries, not one per part (D1 allows 1,000 per invocation).
pub async fn insert_all(
    tenant: &Tenant,
    events: &[NewInboxEvent<'_>],
) -> Result<Vec<bool>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    use leadheat_domain::d1_limits::{runs_within, MAX_STATEMENT_BYTES};
    let rows: Vec<String> = events.iter().map(|event| row_json(org_id, event)).collect();
    // Each row adds its JSON and a comma to the array.
    let sizes: Vec<usize> = rows.iter().map(|row| row.len() + 1).collect();
    let room = MAX_STATEMENT_BYTES - INSERT_ROWS.len() - 2;
    let statements = runs_within(&sizes, usize::MAX, room)
        .into_iter()
        .map(|run| {
            let array = format!("[{}]", rows[run].join(","));
            db::statement(db, INSERT_ROWS, &args![array])
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut stored = std::collections::HashSet::new();
    for result in db::batch(db, statements).await? {
        let inserted: Vec<IdRow> = db::rows(&result, INSERT_ROWS)?;
        stored.extend(inserted.into_iter().map(|row| row.id));
    }
    Ok(events
        .iter()
        .map(|event| stored.contains(event.id))
        .collect())
}

/// Inserts the rows of a JSON array (`row_json`); a row whose (platform, dedupe key) is stored
/// already is skipped, and the ids of the rows inserted are returned.
const INSERT_ROWS: &str =
    "INSERT INTO webhook_inbox (id, platform, dedupe_key, account_id, org_id, body, \
     received_at, status, attempts, processed_at, last_error) \
     SELECT json_extract(value, '$.id'), json_extract(value, '$.platform'), \
            json_extract(value, '$.dedupe_key'), json_extract(value, '$.account_id'), \
            json_extract(value, '$.org_id'), json_extract(value, '$.body'), \
            json_extract(value, '$.received_at'), json_extract(value, '$.status'), 0, NULL, NULL \
     FROM json_each(?1) WHERE true \
     ON CONFLICT (platform, dedupe_key) DO NOTHING RETURNING id";

fn row_json(org: &str, event: &NewInboxEvent<'_>) -> String {
    serde_json::json!({
        "id": event.id,
        "platform": event.platform,
        "dedupe_key": event.dedupe_key,
        "account_id": event.account_id,
        "org_id": org,
        "body": event.body,
        "received_at": event.received_at,
        "status": InboxStatus::Pending,
    })
    .to_string()
}

#[derive(Debug, Clone, Deserialize)]
pub struct InboxEvent {
    pub id: String,
    pub platform: String,
    pub account_id: Option<String>,
    pub org_id: Option<String>,
    pub body: String,
    pub received_at: String,
    pub status: InboxStatus,
    pub attempts: i64,
}

const COLUMNS: &str = "id, platform, account_id, org_id, body, received_at, status, attempts";

pub async fn get(tenant: &Tenant, id: &str) -> Result<Option<InboxEvent>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::first(
        db,
        &format!("SELECT {COLUMNS} FROM webhook_inbox WHERE id = ?1 AND org_id = ?2"),
        &args![id, org_id],
    )
    .await
}

/// Claims an event for processing when it is due (pending and due at `now`, or processing with an
/// expired lease), as `leadheat_domain::sync::claim` decides, in one conditional update: with
/// attempts left, status processing, one more attempt, leased until `lease_until`; with
/// `max_attempts` used, status dead with `gave_up` as its last error (the returned row says
/// which). `None` when another consumer holds it, it is not due yet, or it is finished.
pub async fn claim(
    tenant: &Tenant,
    id: &str,
    now: &str,
    lease_until: &str,
    max_attempts: u32,
    gave_up: &str,
) -> Result<Option<InboxEvent>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::first(
        db,
        &format!(
            "UPDATE webhook_inbox SET \
                status = CASE WHEN attempts >= ?4 THEN 'dead' ELSE 'processing' END, \
                last_error = CASE WHEN attempts >= ?4 THEN ?5 ELSE last_error END, \
                lease_until = CASE WHEN attempts >= ?4 THEN NULL ELSE ?3 END, \
                next_attempt_at = CASE WHEN attempts >= ?4 THEN NULL ELSE next_attempt_at END, \
                attempts = CASE WHEN attempts >= ?4 THEN attempts ELSE attempts + 1 END \
             WHERE id = ?1 AND org_id = ?6 AND ((status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?2)) \
                OR (status = 'processing' AND (lease_until IS NULL OR lease_until <= ?2))) \
             RETURNING {COLUMNS}"
        ),
        &args![id, now, lease_until, max_attempts, truncate(gave_up), org_id],
    )
    .await
}

/// Every outcome write below applies only while the row is still processing under the writer's
/// lease (`lease_until`, the fencing token of its claim), and says whether it applied: false when
/// the lease expired and the event was claimed again, or given up, since.
const HELD_BY: &str = "org_id = ?9 AND status = 'processing' AND lease_until =";

pub async fn mark_processed(
    tenant: &Tenant,
    id: &str,
    lease_until: &str,
    now: &str,
) -> Result<bool, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let sql = format!(
        "UPDATE webhook_inbox SET status = 'processed', processed_at = ?3, lease_until = NULL, \
         next_attempt_at = NULL, last_error = NULL WHERE id = ?1 AND {HELD_BY} ?2"
    );
    Ok(db::run(db, &sql, &held(args![id, lease_until, now], org_id)).await? == 1)
}

/// Marks an event as ignored: its account was disconnected before it was processed.
pub async fn mark_ignored(
    tenant: &Tenant,
    id: &str,
    lease_until: &str,
    now: &str,
    reason: &str,
) -> Result<bool, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let sql = format!(
        "UPDATE webhook_inbox SET status = 'ignored', processed_at = ?3, lease_until = NULL, \
         next_attempt_at = NULL, last_error = ?4 WHERE id = ?1 AND {HELD_BY} ?2"
    );
    Ok(db::run(db, &sql, &held(args![id, lease_until, now, reason], org_id)).await? == 1)
}

/// Back to pending, due at `next_attempt_at`. The claim counted the attempt; when no call was made
/// (`counted` false: a throttle or an open circuit) it is given back.
pub async fn schedule_retry(
    tenant: &Tenant,
    id: &str,
    lease_until: &str,
    next_attempt_at: &str,
    last_error: &str,
    counted: bool,
) -> Result<bool, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let sql = format!(
        "UPDATE webhook_inbox SET status = 'pending', next_attempt_at = ?3, last_error = ?4, \
         lease_until = NULL, attempts = CASE WHEN ?5 = 1 OR attempts = 0 THEN attempts ELSE attempts - 1 END \
         WHERE id = ?1 AND {HELD_BY} ?2"
    );
    let args = args![
        id,
        lease_until,
        next_attempt_at,
        truncate(last_error),
        counted
    ];
    Ok(db::run(db, &sql, &held(args, org_id)).await? == 1)
}

pub async fn mark_dead(
    tenant: &Tenant,
    id: &str,
    lease_until: &str,
    last_error: &str,
) -> Result<bool, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let sql = format!(
        "UPDATE webhook_inbox SET status = 'dead', last_error = ?3, lease_until = NULL, \
         next_attempt_at = NULL WHERE id = ?1 AND {HELD_BY} ?2"
    );
    Ok(db::run(
        db,
        &sql,
        &held(args![id, lease_until, truncate(last_error)], org_id),
    )
    .await?
        == 1)
}

/// The arguments of an outcome write, with the org at `?9` ([`HELD_BY`]); the slots between are
/// bound to NULL and unused.
fn held(mut args: Vec<db::Arg>, org: &str) -> Vec<db::Arg> {
    args.resize(8, db::Arg::Null);
    args.push(db::Arg::from(org));
    args
}

#[derive(Debug, Deserialize)]
struct IdRow {
    id: String,
}

/// An inbox row the reconciliation re-enqueues, and its org.
#[derive(Debug, Clone, Deserialize)]
pub struct DueEvent {
    pub id: String,
    pub org_id: String,
}

/// Events the reconciliation re-enqueues: pending and due, or processing with an expired lease.
pub async fn due(shard: &Shard, now: &str, limit: u32) -> Result<Vec<DueEvent>, StoreError> {
    let db = shard.db();
    db::all(
        db,
        "SELECT id, org_id FROM webhook_inbox WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?1) \
           AND org_id IS NOT NULL \
         UNION ALL \
         SELECT id, org_id FROM webhook_inbox WHERE status = 'processing' AND (lease_until IS NULL OR lease_until <= ?1) \
           AND org_id IS NOT NULL \
         LIMIT ?2",
        &args![now, limit],
    )
    .await
}

/// Dead events of an org's platform back to pending with fresh attempts; returns their ids.
pub async fn replay_dead(
    tenant: &Tenant,
    platform: &str,
    limit: u32,
) -> Result<Vec<String>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let rows: Vec<IdRow> = db::all(
        db,
        "UPDATE webhook_inbox SET status = 'pending', attempts = 0, next_attempt_at = NULL, lease_until = NULL \
         WHERE id IN (SELECT id FROM webhook_inbox WHERE org_id = ?1 AND platform = ?2 AND status = 'dead' ORDER BY id LIMIT ?3) \
         RETURNING id",
        &args![org_id, platform, limit],
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatusCount {
    pub platform: String,
    pub status: InboxStatus,
    pub count: i64,
}

/// Event counts of an org by platform and status.
pub async fn counts(tenant: &Tenant) -> Result<Vec<StatusCount>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::all(
        db,
        "SELECT platform, status, COUNT(*) AS count FROM webhook_inbox WHERE org_id = ?1 GROUP BY platform, status",
        &args![org_id],
    )
    .await
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeadEvent {
    pub id: String,
    pub platform: String,
    pub received_at: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// The org's dead events (newest first), for the integrations status.
pub async fn dead_events(tenant: &Tenant, limit: u32) -> Result<Vec<DeadEvent>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::all(
        db,
        "SELECT id, platform, received_at, attempts, last_error FROM webhook_inbox \
         WHERE org_id = ?1 AND status = 'dead' ORDER BY id DESC LIMIT ?2",
        &args![org_id, limit],
    )
    .await
}

/// The latest error of an org's platform events (pending retries and dead ones).
pub async fn last_error(tenant: &Tenant, platform: &str) -> Result<Option<String>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    #[derive(Deserialize)]
    struct Row {
        last_error: Option<String>,
    }
    let row: Option<Row> = db::first(
        db,
        "SELECT last_error FROM webhook_inbox WHERE org_id = ?1 AND platform = ?2 \
         AND status IN ('pending', 'dead') AND last_error IS NOT NULL ORDER BY id DESC LIMIT 1",
        &args![org_id, platform],
    )
    .await?;
    Ok(row.and_then(|r| r.last_error))
}

/// Errors are stored for people to read; a platform's error page is not (500 bytes are kept).
pub fn truncate(error: &str) -> String {
    if error.len() <= 500 {
        return error.to_string();
    }
    let mut end = 500;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &error[..end])
}

/// Retention: deletes up to `limit` processed or ignored events received before `before`
/// (pending, processing and dead events are kept whatever their age).
pub async fn prune(shard: &Shard, before: &str, limit: u32) -> Result<u64, StoreError> {
    let db = shard.db();
    db::run(
        db,
        "DELETE FROM webhook_inbox WHERE id IN (SELECT id FROM webhook_inbox \
         WHERE received_at < ?1 AND status IN ('processed', 'ignored') LIMIT ?2)",
        &args![before, limit],
    )
    .await
}

/// Whether a row's body names an erased person: `?2` of the statement using it is a JSON array of
/// lower-cased needles (`leadheat_domain::suppression::inbox_needles`), searched in the lower-cased
/// body. An empty array matches nothing.
pub const NAMES_ANY_NEEDLE: &str =
    "EXISTS (SELECT 1 FROM json_each(?2) WHERE instr(lower(webhook_inbox.body), value) > 0)";

/// Erasure: replaces with `tombstone` the body of every finished (processed or ignored) row of
/// the org that names the person. The row, its status and dedupe key stay, so an identical
/// redelivery is still recognised. Unfinished rows are left to their processing (see
/// `store::suppressions::record_unfinished_scrubs_statement`).
pub fn tombstone_naming_statement(
    tenant: &Tenant,
    needles: &[String],
    tombstone: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let needles = serde_json::to_string(needles).map_err(|e| StoreError::backend("needles", e))?;
    db::statement(
        db,
        &format!(
            "UPDATE webhook_inbox SET body = ?3 \
             WHERE org_id = ?1 AND status IN ('processed', 'ignored') AND {NAMES_ANY_NEEDLE}"
        ),
        &args![org_id, needles, tombstone],
    )
}

/// Replaces with `tombstone` the body of these rows, if they are finished (processed or ignored).
pub fn tombstone_statement(
    shard: &Shard,
    ids: &[String],
    tombstone: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let db = shard.db();
    let ids = serde_json::to_string(ids).map_err(|e| StoreError::backend("ids", e))?;
    db::statement(
        db,
        "UPDATE webhook_inbox SET body = ?2 \
         WHERE id IN (SELECT value FROM json_each(?1)) AND status IN ('processed', 'ignored')",
        &args![ids, tombstone],
    )
}
