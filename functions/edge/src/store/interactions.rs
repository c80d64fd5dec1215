//! `interactions`: touchpoints, their timeline and the org's social feed. A new touchpoint changes
//! its lead's heat: `crate::touchpoints` batches [`insert_statement`] with the score update.

use leadheat_domain::cursor::Cursor;
use leadheat_domain::lead_query::{InteractionQuery, TIMELINE_SORT};
use leadheat_domain::scoring::Touch;
use leadheat_domain::types::{
    serialize_compact_f64, CapturedBy, HeatLevel, InteractionType, Platform,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use worker::D1PreparedStatement;

use crate::args;
use crate::db::StoreError;
use crate::db::{self, Arg};
use crate::tenant::Tenant;

/// An interaction in the exact shape of the API contract (README, OpenAPI).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InteractionRecord {
    pub id: String,
    pub lead_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub platform: String,
    pub occurred_at: String,
    pub captured_by: String,
    #[serde(serialize_with = "serialize_compact_f64")]
    pub points: f64,
    pub external_id: String,
    pub metadata: Value,
}

#[derive(Debug, Deserialize)]
pub struct InteractionRow {
    pub id: String,
    pub lead_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub platform: String,
    pub occurred_at: String,
    pub captured_by: String,
    pub points: f64,
    pub external_id: String,
    pub metadata: String,
}

impl From<InteractionRow> for InteractionRecord {
    fn from(row: InteractionRow) -> Self {
        InteractionRecord {
            metadata: serde_json::from_str(&row.metadata)
                .unwrap_or_else(|_| Value::Object(Map::new())),
            id: row.id,
            lead_id: row.lead_id,
            kind: row.kind,
            platform: row.platform,
            occurred_at: row.occurred_at,
            captured_by: row.captured_by,
            points: row.points,
            external_id: row.external_id,
        }
    }
}

const COLUMNS: &str =
    "id, lead_id, type, platform, occurred_at, captured_by, points, external_id, metadata";

pub async fn get(tenant: &Tenant, id: &str) -> Result<Option<InteractionRecord>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let row: Option<InteractionRow> = db::first(
        db,
        &format!("SELECT {COLUMNS} FROM interactions WHERE id = ?1 AND org_id = ?2"),
        &args![id, org_id],
    )
    .await?;
    Ok(row.map(Into::into))
}

/// The interaction holding an external id on a platform (the dedupe key), if any.
pub async fn by_external_id(
    tenant: &Tenant,
    platform: Platform,
    external_id: &str,
) -> Result<Option<InteractionRecord>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let row: Option<InteractionRow> = db::first(
        db,
        &format!("SELECT {COLUMNS} FROM interactions WHERE org_id = ?1 AND platform = ?2 AND external_id = ?3"),
        &args![org_id, platform.as_str(), external_id],
    )
    .await?;
    Ok(row.map(Into::into))
}

/// The columns of an interaction that scoring reads.
#[derive(Deserialize)]
struct TouchRow {
    #[serde(rename = "type")]
    kind: String,
    occurred_at: String,
}

/// What scoring needs of every interaction of a lead.
pub async fn touches(tenant: &Tenant, lead_id: &str) -> Result<Vec<Touch>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let rows: Vec<TouchRow> = db::all(
        db,
        "SELECT type, occurred_at FROM interactions WHERE lead_id = ?1 AND org_id = ?2",
        &args![lead_id, org_id],
    )
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| stored_touch(&row.kind, &row.occurred_at))
        .collect())
}

/// The touches one lead's heat state needs to move to `until` (its touches with `after <
/// occurred_at <= until`) and its first touch time after `until`: ONE query of two range reads of
/// index `interactions_lead_org_occurred`, so the rows read are those touches and one more.
pub async fn crossing(
    tenant: &Tenant,
    lead_id: &str,
    after: &str,
    until: &str,
) -> Result<(Vec<Touch>, Option<chrono::DateTime<chrono::Utc>>), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let rows: Vec<TouchRow> = db::all(
        db,
        "SELECT type, occurred_at FROM interactions \
         WHERE lead_id = ?1 AND org_id = ?2 AND occurred_at > ?3 AND occurred_at <= ?4 \
         UNION ALL \
         SELECT * FROM (SELECT type, occurred_at FROM interactions \
           WHERE lead_id = ?1 AND org_id = ?2 AND occurred_at > ?4 ORDER BY occurred_at LIMIT 1)",
        &args![lead_id, org_id, after, until],
    )
    .await?;
    let mut crossed = Vec::new();
    let mut next = None;
    for row in rows {
        if row.occurred_at.as_str() > until {
            next = chrono::DateTime::parse_from_rfc3339(&row.occurred_at)
                .ok()
                .map(|at| at.with_timezone(&chrono::Utc));
        } else if let Some(touch) = stored_touch(&row.kind, &row.occurred_at) {
            crossed.push(touch);
        }
    }
    Ok((crossed, next))
}

/// A stored interaction's `type` and `occurred_at` as a scoring touch; `None` when either does not
/// parse.
pub fn stored_touch(kind: &str, occurred_at: &str) -> Option<Touch> {
    let kind = kind.parse::<InteractionType>().ok()?;
    let at = chrono::DateTime::parse_from_rfc3339(occurred_at).ok()?;
    Some(Touch::new(kind, at.with_timezone(&chrono::Utc)))
}

/// A new interaction row (its values already validated and serialized).
pub struct NewInteractionRow<'a> {
    pub id: &'a str,
    pub lead_id: &'a str,
    pub kind: InteractionType,
    pub platform: Platform,
    pub occurred_at: &'a str,
    pub captured_by: CapturedBy,
    pub points: f64,
    pub external_id: &'a str,
    /// A JSON object, serialized.
    pub metadata: &'a str,
    pub created_at: &'a str,
}

/// Inserts an interaction unless its external id is already recorded on the platform (then it
/// changes nothing: check `db::changes()`).
pub fn insert_statement(
    tenant: &Tenant,
    row: &NewInteractionRow<'_>,
) -> Result<D1PreparedStatement, StoreError> {
    insert(tenant, row, false)
}

/// Like [`insert_statement`], but the row only lands when the statement right before this one in
/// the same batch changed exactly one row: SQLite's `changes()` is the row count of the previous
/// INSERT, UPDATE or DELETE on the connection (a batch runs its statements in order, in one
/// transaction). So a touchpoint that reports a guarded write (a move) is only written with it.
pub fn guarded_insert_statement(
    tenant: &Tenant,
    row: &NewInteractionRow<'_>,
) -> Result<D1PreparedStatement, StoreError> {
    insert(tenant, row, true)
}

fn insert(
    tenant: &Tenant,
    row: &NewInteractionRow<'_>,
    after_one_change: bool,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    // `INSERT ... SELECT` needs its WHERE before the upsert clause (SQLite's parsing rule).
    let values = if after_one_change {
        "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 WHERE changes() = 1"
    } else {
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    };
    db::statement(
        db,
        &format!(
            "INSERT INTO interactions (id, org_id, lead_id, type, platform, occurred_at, captured_by, points, \
             external_id, metadata, created_at) {values} \
             ON CONFLICT (org_id, platform, external_id) DO NOTHING"
        ),
        &args![
            row.id,
            org_id,
            row.lead_id,
            row.kind.as_str(),
            row.platform.as_str(),
            row.occurred_at,
            row.captured_by.as_str(),
            row.points,
            row.external_id,
            row.metadata,
            row.created_at
        ],
    )
}

/// Moves every interaction of lead `from` to lead `to` (a merge).
pub fn reassign_lead_statement(
    tenant: &Tenant,
    from: &str,
    to: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "UPDATE interactions SET lead_id = ?1 WHERE lead_id = ?2 AND org_id = ?3",
        &args![to, from, org_id],
    )
}

/// Deletes every interaction of a lead (its erasure).
pub fn erase_lead_statement(
    tenant: &Tenant,
    lead_id: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "DELETE FROM interactions WHERE lead_id = ?1 AND org_id = ?2",
        &args![lead_id, org_id],
    )
}

/// The org's latest touchpoint insert time as one row `at` (NULL without any): a single seek on
/// `interactions_org_created`. See [`crate::store::latest_write_at`].
pub fn latest_created_statement(tenant: &Tenant) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "SELECT MAX(created_at) AS at FROM interactions WHERE org_id = ?1",
        &args![org_id],
    )
}

/// Erases the form answers a lead form touchpoint holds (the member deleted the response on the
/// platform): the touchpoint stays (its points and time), its answers are gone.
pub async fn erase_form_answers(
    tenant: &Tenant,
    platform: &str,
    external_id: &str,
    now: &str,
) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::run(
        db,
        "UPDATE interactions SET metadata = json_set(json_remove(metadata, '$.form_answers'), '$.form_answers_erased_at', ?4) \
         WHERE org_id = ?1 AND platform = ?2 AND external_id = ?3",
        &args![org_id, platform, external_id, now],
    )
    .await?;
    Ok(())
}

/// Every interaction of a lead, oldest first (export).
pub async fn all_for_lead(
    tenant: &Tenant,
    lead_id: &str,
) -> Result<Vec<InteractionRecord>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let rows: Vec<InteractionRow> = db::all(
        db,
        &format!("SELECT {COLUMNS} FROM interactions WHERE lead_id = ?1 AND org_id = ?2 ORDER BY occurred_at, id"),
        &args![lead_id, org_id],
    )
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The lead summary a feed item carries.
#[derive(Debug, Clone, Serialize)]
pub struct FeedLead {
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[serde(serialize_with = "serialize_compact_f64")]
    pub heat_score: f64,
    pub heat_level: HeatLevel,
}

/// A feed item: the interaction JSON plus `lead`.
#[derive(Debug, Clone, Serialize)]
pub struct FeedItem {
    #[serde(flatten)]
    pub interaction: InteractionRecord,
    pub lead: FeedLead,
}

#[derive(Debug, Deserialize)]
struct FeedRow {
    id: String,
    lead_id: String,
    #[serde(rename = "type")]
    kind: String,
    platform: String,
    occurred_at: String,
    captured_by: String,
    points: f64,
    external_id: String,
    metadata: String,
    lead_first_name: Option<String>,
    lead_last_name: Option<String>,
    lead_heat_score: f64,
    lead_heat_level: HeatLevel,
}

/// A page of interactions, newest first.
pub struct InteractionPage<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Shared WHERE clauses of the timeline and the feed (columns of `i`), and the keyset.
fn filters(sql: &mut String, args: &mut Vec<Arg>, query: &InteractionQuery) {
    let bind = |args: &mut Vec<Arg>, value: Arg| {
        args.push(value);
        format!("?{}", args.len())
    };
    if !query.types.is_empty() {
        let list: Vec<&str> = query.types.iter().map(|t| t.as_str()).collect();
        let p = bind(args, Arg::Text(Value::from(list).to_string()));
        sql.push_str(&format!(
            " AND i.type IN (SELECT value FROM json_each({p}))"
        ));
    }
    if !query.platforms.is_empty() {
        let list: Vec<&str> = query.platforms.iter().map(|t| t.as_str()).collect();
        let p = bind(args, Arg::Text(Value::from(list).to_string()));
        sql.push_str(&format!(
            " AND i.platform IN (SELECT value FROM json_each({p}))"
        ));
    }
    if let Some(from) = &query.from {
        let p = bind(args, Arg::from(from));
        sql.push_str(&format!(" AND i.occurred_at >= {p}"));
    }
    if let Some(to) = &query.to {
        let p = bind(args, Arg::from(to));
        sql.push_str(&format!(" AND i.occurred_at <= {p}"));
    }
    if let Some(cursor) = &query.cursor {
        let at = cursor
            .key
            .first()
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let pa = bind(args, Arg::Text(at));
        let pi = bind(args, Arg::from(&cursor.id));
        sql.push_str(&format!(" AND (i.occurred_at, i.id) < ({pa}, {pi})"));
    }
    let p = bind(args, Arg::Int(query.limit as i64 + 1));
    sql.push_str(&format!(
        " ORDER BY i.occurred_at DESC, i.id DESC LIMIT {p}"
    ));
}

fn next_cursor(more: bool, last: Option<&InteractionRecord>) -> Option<String> {
    match (more, last) {
        (true, Some(last)) => Some(
            Cursor::new(
                TIMELINE_SORT,
                vec![Value::from(last.occurred_at.clone())],
                last.id.clone(),
            )
            .encode(),
        ),
        _ => None,
    }
}

/// A lead's timeline, newest first.
pub async fn timeline(
    tenant: &Tenant,
    lead_id: &str,
    query: &InteractionQuery,
) -> Result<InteractionPage<InteractionRecord>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let mut sql = format!(
        "SELECT {} FROM interactions i WHERE i.lead_id = ?1 AND i.org_id = ?2",
        COLUMNS
            .split(", ")
            .map(|c| format!("i.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut args = args![lead_id, org_id];
    filters(&mut sql, &mut args, query);
    let mut rows: Vec<InteractionRow> = db::all(db, &sql, &args).await?;
    let more = rows.len() > query.limit as usize;
    rows.truncate(query.limit as usize);
    let items: Vec<InteractionRecord> = rows.into_iter().map(Into::into).collect();
    let next_cursor = next_cursor(more, items.last());
    Ok(InteractionPage { items, next_cursor })
}

/// The org's social touchpoints (social types on social platforms), newest first, each with its
/// lead's name and heat.
pub async fn feed(
    tenant: &Tenant,
    query: &InteractionQuery,
) -> Result<InteractionPage<FeedItem>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let social_types: Vec<&str> = InteractionType::ALL
        .iter()
        .filter(|t| t.is_social())
        .map(|t| t.as_str())
        .collect();
    let social_platforms: Vec<&str> = Platform::ALL
        .iter()
        .filter(|p| p.is_social())
        .map(|p| p.as_str())
        .collect();
    let mut sql = format!(
        "SELECT {}, l.first_name AS lead_first_name, l.last_name AS lead_last_name, \
         l.heat_score AS lead_heat_score, l.heat_level AS lead_heat_level \
         FROM interactions i JOIN leads l ON l.id = i.lead_id \
         WHERE i.org_id = ?1 AND i.type IN (SELECT value FROM json_each(?2)) \
         AND i.platform IN (SELECT value FROM json_each(?3))",
        COLUMNS
            .split(", ")
            .map(|c| format!("i.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut args = args![
        org_id,
        Value::from(social_types).to_string(),
        Value::from(social_platforms).to_string()
    ];
    filters(&mut sql, &mut args, query);
    let mut rows: Vec<FeedRow> = db::all(db, &sql, &args).await?;
    let more = rows.len() > query.limit as usize;
    rows.truncate(query.limit as usize);
    let items: Vec<FeedItem> = rows
        .into_iter()
        .map(|row| {
            let interaction: InteractionRecord = InteractionRow {
                id: row.id,
                lead_id: row.lead_id,
                kind: row.kind,
                platform: row.platform,
                occurred_at: row.occurred_at,
                captured_by: row.captured_by,
                points: row.points,
                external_id: row.external_id,
                metadata: row.metadata,
            }
            .into();
            FeedItem {
                lead: FeedLead {
                    id: interaction.lead_id.clone(),
                    first_name: row.lead_first_name,
                    last_name: row.lead_last_name,
                    heat_score: row.lead_heat_score,
                    heat_level: row.lead_heat_level,
                },
                interaction,
            }
        })
        .collect();
    let next_cursor = next_cursor(more, items.last().map(|i| &i.interaction));
    Ok(InteractionPage { items, next_cursor })
}

/// Inserts many interactions in ONE statement (their values as one bound JSON array), each
/// unless its external id is already recorded on its platform; for bulk writes that must stay
/// within D1's queries per invocation (a visitor's history attributed at once). The caller
/// rescores the lead afterwards.
pub fn insert_many_statement(
    tenant: &Tenant,
    rows: &[NewInteractionRow<'_>],
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let values: Vec<Value> = rows
        .iter()
        .map(|row| {
            serde_json::json!([
                row.id,
                org_id,
                row.lead_id,
                row.kind.as_str(),
                row.platform.as_str(),
                row.occurred_at,
                row.captured_by.as_str(),
                row.points,
                row.external_id,
                row.metadata,
                row.created_at
            ])
        })
        .collect();
    db::statement(
        db,
        "INSERT INTO interactions (id, org_id, lead_id, type, platform, occurred_at, captured_by, points, \
         external_id, metadata, created_at) \
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), \
         json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'), \
         json_extract(value, '$[6]'), CAST(json_extract(value, '$[7]') AS REAL), json_extract(value, '$[8]'), \
         json_extract(value, '$[9]'), json_extract(value, '$[10]') FROM json_each(?1) WHERE true \
         ON CONFLICT (org_id, platform, external_id) DO NOTHING",
        &args![Value::Array(values).to_string()],
    )
}
