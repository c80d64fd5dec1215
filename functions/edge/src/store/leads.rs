//! `leads`, `lead_tags` and `lead_merges` (with the lead's social profiles attached): reading
//! the API's lead JSON, creating, updating with optimistic concurrency, listing with keyset
//! pagination, merging and erasing. A merge or an erasure is one batch composed of statements
//! from the modules owning the other tables a lead has rows in.

use chrono::{DateTime, Utc};
use leadheat_domain::cursor::Cursor;
use leadheat_domain::ids::prefix;
use leadheat_domain::lead_query::{LeadQuery, SortField};
use leadheat_domain::leads::{LeadInput, SocialProfileInput};
use leadheat_domain::platforms::linkedin::FormField;
use leadheat_domain::ranking;
use leadheat_domain::suppression::{self, Identity};
use leadheat_domain::types::{serialize_compact_f64, HeatLevel};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use worker::D1PreparedStatement;

use crate::args;
use crate::clock;
use crate::db::{self, Arg};
use crate::db::{Constraint, StoreError};
use crate::store::social_profiles::{self, SocialProfile};
use crate::store::{heat, idempotency, inbox, interactions, suppressions, tracking};
use crate::tenant::Tenant;

/// A lead in the exact shape of the API contract (README, OpenAPI) (plus internal fields that are never serialized).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadRecord {
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub source: String,
    pub source_detail: Value,
    pub stage_id: Option<String>,
    /// The lead's position key in its stage (`rank_key`).
    pub position: Option<String>,
    pub owner_id: Option<String>,
    pub tags: Vec<String>,
    pub custom_fields: Value,
    pub social_profiles: Vec<SocialProfile>,
    #[serde(serialize_with = "serialize_compact_f64")]
    pub heat_score: f64,
    pub heat_level: HeatLevel,
    #[serde(serialize_with = "serialize_compact_f64")]
    pub heat_trend: f64,
    pub last_interaction_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
    #[serde(skip)]
    pub org_id: String,
    #[serde(skip)]
    pub email_normalized: Option<String>,
    #[serde(skip)]
    pub phone_normalized: Option<String>,
    #[serde(skip)]
    pub heat_stamp: i64,
}

impl LeadRecord {
    pub fn tags_json(&self) -> String {
        serde_json::to_string(&self.tags).unwrap_or_else(|_| "[]".into())
    }

    pub fn custom_fields_map(&self) -> Map<String, Value> {
        self.custom_fields.as_object().cloned().unwrap_or_default()
    }

    pub fn source_detail_map(&self) -> Map<String, Value> {
        self.source_detail.as_object().cloned().unwrap_or_default()
    }
}

/// A `leads` row as D1 returns it.
#[derive(Debug, Deserialize)]
pub struct LeadRow {
    pub id: String,
    pub org_id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub email_normalized: Option<String>,
    pub phone: Option<String>,
    pub phone_normalized: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub source: String,
    pub source_detail: String,
    pub stage_id: Option<String>,
    pub rank_key: Option<String>,
    pub owner_id: Option<String>,
    pub tags: String,
    pub custom_fields: String,
    pub heat_score: f64,
    pub heat_level: HeatLevel,
    pub heat_trend: f64,
    pub heat_stamp: i64,
    pub last_interaction_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

impl LeadRow {
    fn into_record(self, social_profiles: Vec<SocialProfile>) -> LeadRecord {
        LeadRecord {
            tags: serde_json::from_str(&self.tags).unwrap_or_default(),
            custom_fields: serde_json::from_str(&self.custom_fields)
                .unwrap_or_else(|_| Value::Object(Map::new())),
            source_detail: serde_json::from_str(&self.source_detail)
                .unwrap_or_else(|_| Value::Object(Map::new())),
            id: self.id,
            first_name: self.first_name,
            last_name: self.last_name,
            email: self.email,
            phone: self.phone,
            company: self.company,
            title: self.title,
            source: self.source,
            stage_id: self.stage_id,
            position: self.rank_key,
            owner_id: self.owner_id,
            social_profiles,
            heat_score: self.heat_score,
            heat_level: self.heat_level,
            heat_trend: self.heat_trend,
            last_interaction_at: self.last_interaction_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
            org_id: self.org_id,
            email_normalized: self.email_normalized,
            phone_normalized: self.phone_normalized,
            heat_stamp: self.heat_stamp,
        }
    }
}

/// Attaches each row's social profiles (one query for all rows).
pub async fn records(tenant: &Tenant, rows: Vec<LeadRow>) -> Result<Vec<LeadRecord>, StoreError> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut profiles = social_profiles::for_leads(tenant, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mine: Vec<SocialProfile> = profiles
                .iter()
                .filter(|(lead_id, _)| *lead_id == row.id)
                .map(|(_, p)| p.clone())
                .collect();
            profiles.retain(|(lead_id, _)| *lead_id != row.id);
            row.into_record(mine)
        })
        .collect())
}

/// One lead of the org; `None` when it does not exist or belongs to another org.
pub async fn get(tenant: &Tenant, id: &str) -> Result<Option<LeadRecord>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let row: Option<LeadRow> = db::first(
        db,
        "SELECT * FROM leads WHERE id = ?1 AND org_id = ?2",
        &args![id, org_id],
    )
    .await?;
    match row {
        None => Ok(None),
        Some(row) => Ok(records(tenant, vec![row]).await?.into_iter().next()),
    }
}

/// Like [`get`], but a missing lead is a 404 problem.
pub async fn require(tenant: &Tenant, id: &str) -> Result<LeadRecord, StoreError> {
    get(tenant, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no lead {id}")))
}

/// A normalized contact a lead can be matched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact<'a> {
    Email(&'a str),
    Phone(&'a str),
}

/// The org's first lead (by id) with this normalized email or phone.
pub async fn first_with(
    tenant: &Tenant,
    contact: Contact<'_>,
) -> Result<Option<String>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let (column, value) = match contact {
        Contact::Email(email) => ("email_normalized", email),
        Contact::Phone(phone) => ("phone_normalized", phone),
    };
    let row: Option<IdRow> = db::first(
        db,
        &format!("SELECT id FROM leads WHERE org_id = ?1 AND {column} = ?2 ORDER BY id LIMIT 1"),
        &args![org_id, value],
    )
    .await?;
    Ok(row.map(|r| r.id))
}

#[derive(Deserialize)]
struct IdRow {
    id: String,
}

/// A lead older than another one (a smaller id) that shares its email or phone.
pub struct OlderDuplicate {
    pub id: String,
    /// Whether the email matched (else the phone did).
    pub by_email: bool,
}

/// The org's oldest lead with an id below `than_id` and this normalized email or phone.
pub async fn older_with_email_or_phone(
    tenant: &Tenant,
    than_id: &str,
    email_normalized: Option<&str>,
    phone_normalized: Option<&str>,
) -> Result<Option<OlderDuplicate>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    #[derive(Deserialize)]
    struct Row {
        id: String,
        by: String,
    }
    let row: Option<Row> = db::first(
        db,
        "SELECT id, IIF(email_normalized = ?3, 'email', 'phone') AS by FROM leads \
         WHERE org_id = ?1 AND id < ?2 AND (email_normalized = ?3 OR phone_normalized = ?4) ORDER BY id LIMIT 1",
        &args![org_id, than_id, email_normalized, phone_normalized],
    )
    .await?;
    Ok(row.map(|r| OlderDuplicate {
        by_email: r.by == "email",
        id: r.id,
    }))
}

/// A position after the last lead of the stage.
pub async fn rank_at_end(tenant: &Tenant, stage_id: &str) -> Result<String, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    #[derive(Deserialize)]
    struct Row {
        rank_key: Option<String>,
    }
    let row: Option<Row> = db::first(
        db,
        "SELECT rank_key FROM leads WHERE org_id = ?1 AND stage_id = ?2 ORDER BY rank_key DESC, id DESC LIMIT 1",
        &args![org_id, stage_id],
    )
    .await?;
    let last = row.and_then(|r| r.rank_key);
    ranking::between(last.as_deref(), None)
        .or_else(|_| ranking::between(None, None))
        .map_err(|e| StoreError::backend("rank key", e))
}

/// Statements creating a lead with its tags and social profiles (profiles conflict loudly, so a
/// concurrent duplicate fails the batch and the caller re-matches).
pub fn insert_statements(
    tenant: &Tenant,
    id: &str,
    input: &LeadInput,
    stage: Option<(&str, &str)>,
    now: DateTime<Utc>,
) -> Result<Vec<D1PreparedStatement>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let now_text = clock::rfc3339(now);
    let tags = serde_json::to_string(&input.tags).map_err(|e| StoreError::backend("tags", e))?;
    let custom = Value::Object(input.custom_fields.clone()).to_string();
    let detail = Value::Object(input.source_detail.clone()).to_string();
    let mut statements = vec![db::statement(
        db,
        "INSERT INTO leads (id, org_id, first_name, last_name, email, email_normalized, phone, phone_normalized, \
         company, title, source, source_detail, stage_id, rank_key, owner_id, tags, custom_fields, \
         created_at, updated_at, version) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?18, 1)",
        &args![
            id,
            org_id,
            input.first_name.clone(),
            input.last_name.clone(),
            input.email.clone(),
            input.email_normalized(),
            input.phone.clone(),
            input.phone_normalized(),
            input.company.clone(),
            input.title.clone(),
            input.source.as_str(),
            detail,
            stage.map(|(s, _)| s.to_string()),
            stage.map(|(_, r)| r.to_string()),
            input.owner_id.clone(),
            tags,
            custom,
            now_text
        ],
    )?];
    for tag in &input.tags {
        statements.push(tag_insert_statement(tenant, id, tag)?);
    }
    for profile in &input.social_profiles {
        statements.push(social_profiles::insert_statement(
            tenant, id, profile, now, false,
        )?);
    }
    Ok(statements)
}

pub fn tag_insert_statement(
    tenant: &Tenant,
    lead_id: &str,
    tag: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "INSERT INTO lead_tags (org_id, lead_id, tag) VALUES (?1, ?2, ?3) ON CONFLICT (lead_id, tag) DO NOTHING",
        &args![org_id, lead_id, tag],
    )
}

/// Removes every tag row of a lead.
fn tags_delete_statement(
    tenant: &Tenant,
    lead_id: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "DELETE FROM lead_tags WHERE lead_id = ?1 AND org_id = ?2",
        &args![lead_id, org_id],
    )
}

/// New values for every writable column of a lead (the result of applying a patch).
#[derive(Debug, Clone)]
pub struct LeadWrite {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub email_normalized: Option<String>,
    pub phone: Option<String>,
    pub phone_normalized: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub source: String,
    pub source_detail: Map<String, Value>,
    pub stage_id: Option<String>,
    pub rank_key: Option<String>,
    pub owner_id: Option<String>,
    pub tags: Vec<String>,
    pub custom_fields: Map<String, Value>,
    /// `Some` replaces the lead's profiles.
    pub social_profiles: Option<Vec<SocialProfileInput>>,
    /// Whether `tags` differ from the stored ones (the lead_tags rows are then rewritten).
    pub tags_changed: bool,
}

/// How an update ended.
pub enum UpdateOutcome {
    Updated,
    /// The version was not the expected one (412).
    Stale,
    /// A social profile belongs to another lead (409).
    ProfileTaken,
}

/// Writes every column of a lead, only if its version is still `expected_version` (else the
/// whole batch fails on the version CHECK and nothing changes), and bumps the version.
pub async fn update(
    tenant: &Tenant,
    id: &str,
    expected_version: i64,
    write: &LeadWrite,
    now: DateTime<Utc>,
) -> Result<UpdateOutcome, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let now_text = clock::rfc3339(now);
    let tags = serde_json::to_string(&write.tags).map_err(|e| StoreError::backend("tags", e))?;
    // A version mismatch sets version to 0, which the column's CHECK (version >= 1) refuses: the
    // batch is one transaction, so the tag and profile statements roll back with it.
    let mut statements = vec![db::statement(
        db,
        "UPDATE leads SET first_name = ?3, last_name = ?4, email = ?5, email_normalized = ?6, phone = ?7, \
         phone_normalized = ?8, company = ?9, title = ?10, source = ?11, source_detail = ?12, stage_id = ?13, \
         rank_key = ?14, owner_id = ?15, tags = ?16, custom_fields = ?17, updated_at = ?18, \
         version = IIF(version = ?19, version + 1, 0) \
         WHERE id = ?1 AND org_id = ?2",
        &args![
            id,
            org_id,
            write.first_name.clone(),
            write.last_name.clone(),
            write.email.clone(),
            write.email_normalized.clone(),
            write.phone.clone(),
            write.phone_normalized.clone(),
            write.company.clone(),
            write.title.clone(),
            write.source.as_str(),
            Value::Object(write.source_detail.clone()).to_string(),
            write.stage_id.clone(),
            write.rank_key.clone(),
            write.owner_id.clone(),
            tags,
            Value::Object(write.custom_fields.clone()).to_string(),
            now_text,
            expected_version
        ],
    )?];
    if write.tags_changed {
        statements.push(tags_delete_statement(tenant, id)?);
        for tag in &write.tags {
            statements.push(tag_insert_statement(tenant, id, tag)?);
        }
    }
    if let Some(profiles) = &write.social_profiles {
        statements.push(social_profiles::delete_for_lead_statement(tenant, id)?);
        for profile in profiles {
            statements.push(social_profiles::insert_statement(
                tenant, id, profile, now, false,
            )?);
        }
    }
    match db::try_batch(db, statements).await? {
        Ok(results) => {
            if results.first().map(db::changes).unwrap_or(0) > 0 {
                Ok(UpdateOutcome::Updated)
            } else {
                Ok(UpdateOutcome::Stale)
            }
        }
        Err(Constraint::Check) => Ok(UpdateOutcome::Stale),
        Err(Constraint::Unique) => Ok(UpdateOutcome::ProfileTaken),
        Err(Constraint::ForeignKey) => Err(StoreError::invalid("stage_id", "unknown stage")),
    }
}

/// The org's latest lead write time as one row `at` (NULL without leads): a single seek on
/// `leads_org_updated`. See [`crate::store::latest_write_at`].
pub fn latest_updated_statement(tenant: &Tenant) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "SELECT MAX(updated_at) AS at FROM leads WHERE org_id = ?1",
        &args![org_id],
    )
}

/// Puts a lead at `to` = `(stage_id, rank_key)`, only if it still sits at `from` (so two
/// concurrent moves of one lead cannot interleave); bumps the version.
pub fn move_statement(
    tenant: &Tenant,
    lead_id: &str,
    from: (Option<&str>, Option<&str>),
    to: (&str, &str),
    now: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "UPDATE leads SET stage_id = ?3, rank_key = ?4, updated_at = ?5, version = version + 1 \
         WHERE org_id = ?1 AND id = ?2 AND stage_id IS ?6 AND rank_key IS ?7",
        &args![org_id, lead_id, to.0, to.1, now, from.0, from.1],
    )
}

/// Removes the custom field `key` from every lead of the org that has a value for it.
pub fn remove_custom_field_statement(
    tenant: &Tenant,
    key: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "UPDATE leads SET custom_fields = json_remove(custom_fields, ?2) \
         WHERE org_id = ?1 AND json_type(custom_fields, ?2) IS NOT NULL",
        &args![org_id, format!("$.{key}")],
    )
}

/// Erases a lead and everything held about it: touchpoints, tags, profiles, snapshots, level
/// changes and merge redirects, the website visitors it identified with their raw events, the
/// stored idempotent responses that name it, and the raw webhook payloads that name it (finished
/// ones scrubbed now, unfinished ones when processed; see `store::suppressions`). Its identities
/// are recorded as suppressed from `now` on, so an older event cannot bring it back. One batch.
/// Returns false when there was no such lead.
pub async fn delete(tenant: &Tenant, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let Some(lead) = get(tenant, id).await? else {
        return Ok(false);
    };
    // The ids once merged into it may still appear in stored responses.
    let mut lead_ids: Vec<String> = merged_into_lead(tenant, id)
        .await?
        .iter()
        .filter_map(|merge| merge["merged_lead_id"].as_str().map(str::to_string))
        .collect();
    lead_ids.push(id.to_string());
    let identities = identities_of(&lead);
    let hashes = suppression::identity_hashes(org_id, &identities);
    let needles = suppression::inbox_needles(&identities);
    let now_text = clock::rfc3339(now);

    let mut statements = Vec::new();
    if !hashes.is_empty() {
        statements.push(suppressions::record_statement(tenant, &hashes, &now_text)?);
    }
    if !needles.is_empty() {
        statements.push(inbox::tombstone_naming_statement(
            tenant,
            &needles,
            suppression::INBOX_TOMBSTONE,
        )?);
        statements.push(suppressions::record_unfinished_scrubs_statement(
            tenant, &needles, &now_text,
        )?);
    }
    statements.push(idempotency::erase_naming_statement(tenant, &lead_ids)?);
    statements.extend(tracking::erase_lead_statements(tenant, id)?);
    statements.extend([
        interactions::erase_lead_statement(tenant, id)?,
        tags_delete_statement(tenant, id)?,
        social_profiles::delete_for_lead_statement(tenant, id)?,
    ]);
    statements.extend(heat::erase_lead_history_statements(tenant, id)?);
    statements.push(db::statement(
        db,
        "DELETE FROM lead_merges WHERE into_lead_id = ?1 AND org_id = ?2",
        &args![id, org_id],
    )?);
    // Last: its row count says whether there was such a lead.
    statements.push(delete_statement(tenant, id)?);
    let results = db::batch(db, statements).await?;
    Ok(results.last().map(db::changes).unwrap_or(0) > 0)
}

/// Every identity the lead can be matched by.
fn identities_of(lead: &LeadRecord) -> Vec<Identity<'_>> {
    let mut identities = Vec::new();
    if let Some(email) = &lead.email {
        identities.push(Identity::Email(email));
    }
    if let Some(phone) = &lead.phone {
        identities.push(Identity::Phone(phone));
    }
    for profile in &lead.social_profiles {
        identities.push(Identity::Profile {
            platform: &profile.platform,
            user_id: &profile.platform_user_id,
        });
    }
    identities
}

/// Clears the lead's fields a deleted lead form supplied (`leadheat_domain::platforms::linkedin::
/// fields_supplied_by_form`): each only if it still holds the value given, so a concurrent edit
/// wins. Bumps the version when anything was cleared; returns whether anything was.
pub async fn clear_form_fields(
    tenant: &Tenant,
    lead_id: &str,
    fields: &[(FormField, String)],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    if fields.is_empty() {
        return Ok(false);
    }
    let mut args = args![lead_id, org_id, clock::rfc3339(now)];
    let mut sets = Vec::new();
    let mut any = Vec::new();
    for (field, value) in fields {
        args.push(Arg::from(value.as_str()));
        let n = args.len();
        let column = match field {
            FormField::FirstName => "first_name",
            FormField::LastName => "last_name",
            FormField::Email => "email",
            FormField::Phone => "phone",
            FormField::Company => "company",
            FormField::Title => "title",
        };
        if matches!(field, FormField::Email | FormField::Phone) {
            sets.push(format!(
                "{column}_normalized = IIF({column} = ?{n}, NULL, {column}_normalized)"
            ));
        }
        sets.push(format!("{column} = IIF({column} = ?{n}, NULL, {column})"));
        any.push(format!("{column} = ?{n}"));
    }
    let changed = db::run(
        db,
        &format!(
            "UPDATE leads SET {}, updated_at = ?3, version = version + 1 \
             WHERE id = ?1 AND org_id = ?2 AND ({})",
            sets.join(", "),
            any.join(" OR ")
        ),
        &args,
    )
    .await?;
    Ok(changed > 0)
}

/// Deletes the lead's own row (what refers to it must be gone or moved first).
fn delete_statement(tenant: &Tenant, id: &str) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "DELETE FROM leads WHERE id = ?1 AND org_id = ?2",
        &args![id, org_id],
    )
}

/// Values a lead takes over from another one (matching, merge): only where it has none.
#[derive(Debug, Clone, Default)]
pub struct Fill {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub email_normalized: Option<String>,
    pub phone: Option<String>,
    pub phone_normalized: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub owner_id: Option<String>,
    pub source_detail: Map<String, Value>,
    pub custom_fields: Map<String, Value>,
    pub tags: Vec<String>,
}

impl Fill {
    /// Whether applying this to `lead` would change anything.
    pub fn changes(&self, lead: &LeadRecord) -> bool {
        let fills =
            |current: &Option<String>, new: &Option<String>| current.is_none() && new.is_some();
        let current_cf = lead.custom_fields_map();
        let current_sd = lead.source_detail_map();
        fills(&lead.first_name, &self.first_name)
            || fills(&lead.last_name, &self.last_name)
            || fills(&lead.email, &self.email)
            || fills(&lead.phone, &self.phone)
            || fills(&lead.company, &self.company)
            || fills(&lead.title, &self.title)
            || fills(&lead.owner_id, &self.owner_id)
            || self
                .custom_fields
                .keys()
                .any(|k| !current_cf.contains_key(k))
            || self
                .source_detail
                .keys()
                .any(|k| !current_sd.contains_key(k))
            || self.tags.iter().any(|t| !lead.tags.contains(t))
    }

    pub fn from_input(input: &LeadInput) -> Fill {
        Fill {
            first_name: input.first_name.clone(),
            last_name: input.last_name.clone(),
            email: input.email.clone(),
            email_normalized: input.email_normalized(),
            phone: input.phone.clone(),
            phone_normalized: input.phone_normalized(),
            company: input.company.clone(),
            title: input.title.clone(),
            owner_id: input.owner_id.clone(),
            source_detail: input.source_detail.clone(),
            custom_fields: input.custom_fields.clone(),
            tags: input.tags.clone(),
        }
    }

    pub fn from_lead(lead: &LeadRecord) -> Fill {
        Fill {
            first_name: lead.first_name.clone(),
            last_name: lead.last_name.clone(),
            email: lead.email.clone(),
            email_normalized: lead.email_normalized.clone(),
            phone: lead.phone.clone(),
            phone_normalized: lead.phone_normalized.clone(),
            company: lead.company.clone(),
            title: lead.title.clone(),
            owner_id: lead.owner_id.clone(),
            source_detail: lead.source_detail_map(),
            custom_fields: lead.custom_fields_map(),
            tags: lead.tags.clone(),
        }
    }
}

/// Fills the lead's empty fields, adds missing keys and tags, computed in SQL at write time so a
/// concurrent edit is never overwritten; bumps the version. Tag rows are added too.
pub fn fill_statements(
    tenant: &Tenant,
    id: &str,
    fill: &Fill,
    now: DateTime<Utc>,
) -> Result<Vec<D1PreparedStatement>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let tags = serde_json::to_string(&fill.tags).map_err(|e| StoreError::backend("tags", e))?;
    let mut statements = vec![db::statement(
        db,
        "UPDATE leads SET first_name = COALESCE(first_name, ?3), last_name = COALESCE(last_name, ?4), \
         email_normalized = IIF(email IS NULL, ?6, email_normalized), email = COALESCE(email, ?5), \
         phone_normalized = IIF(phone IS NULL, ?8, phone_normalized), phone = COALESCE(phone, ?7), \
         company = COALESCE(company, ?9), title = COALESCE(title, ?10), owner_id = COALESCE(owner_id, ?11), \
         source_detail = json_patch(?12, source_detail), custom_fields = json_patch(?13, custom_fields), \
         tags = (SELECT json_group_array(value) FROM (SELECT value FROM json_each(leads.tags) UNION ALL \
                 SELECT value FROM json_each(?14) WHERE value NOT IN (SELECT value FROM json_each(leads.tags)))), \
         updated_at = ?15, version = version + 1 \
         WHERE id = ?1 AND org_id = ?2",
        &args![
            id,
            org_id,
            fill.first_name.clone(),
            fill.last_name.clone(),
            fill.email.clone(),
            fill.email_normalized.clone(),
            fill.phone.clone(),
            fill.phone_normalized.clone(),
            fill.company.clone(),
            fill.title.clone(),
            fill.owner_id.clone(),
            Value::Object(fill.source_detail.clone()).to_string(),
            Value::Object(fill.custom_fields.clone()).to_string(),
            tags,
            clock::rfc3339(now)
        ],
    )?];
    for tag in &fill.tags {
        statements.push(tag_insert_statement(tenant, id, tag)?);
    }
    Ok(statements)
}

/// Merges `source` into `target` in one batch: every interaction, social profile and tag moves,
/// empty fields are filled, merge redirects are repointed and recorded, the source is deleted and
/// the target flagged for rescoring (its heat stamp bumped so no older score is written over).
/// The caller recomputes the heat afterwards.
pub async fn merge(
    tenant: &Tenant,
    target: &LeadRecord,
    source: &LeadRecord,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let now_text = clock::rfc3339(now);
    let (t, s) = (target.id.as_str(), source.id.as_str());
    let mut statements = vec![
        interactions::reassign_lead_statement(tenant, s, t)?,
        social_profiles::reassign_lead_statement(tenant, s, t)?,
        tracking::reassign_lead_statement(tenant, s, t)?,
        db::statement(
            db,
            "UPDATE lead_merges SET into_lead_id = ?1 WHERE into_lead_id = ?2 AND org_id = ?3",
            &args![t, s, org_id],
        )?,
    ];
    // The source's own fields are cleared before it is deleted (the fill reads them from Rust).
    statements.extend(fill_statements(tenant, t, &Fill::from_lead(source), now)?);
    // After the interactions moved: the target's last interaction time is read from them.
    statements.push(heat::flag_for_rebuild_statement(tenant, t)?);
    statements.push(tags_delete_statement(tenant, s)?);
    statements.extend(heat::erase_lead_history_statements(tenant, s)?);
    statements.push(delete_statement(tenant, s)?);
    statements.push(db::statement(
        db,
        "INSERT INTO lead_merges (org_id, merged_lead_id, into_lead_id, merged_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (merged_lead_id) DO UPDATE SET into_lead_id = excluded.into_lead_id, merged_at = excluded.merged_at",
        &args![org_id, s, t, now_text],
    )?);
    db::batch(db, statements).await?;
    Ok(())
}

/// Where a lead id now lives if it was merged away.
pub async fn merged_into(tenant: &Tenant, id: &str) -> Result<Option<String>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    #[derive(Deserialize)]
    struct Row {
        into_lead_id: String,
    }
    let row: Option<Row> = db::first(
        db,
        "SELECT into_lead_id FROM lead_merges WHERE merged_lead_id = ?1 AND org_id = ?2",
        &args![id, org_id],
    )
    .await?;
    Ok(row.map(|r| r.into_lead_id))
}

/// The leads merged into this one (`merged_lead_id`, `merged_at`), oldest merge first (export).
pub async fn merged_into_lead(tenant: &Tenant, id: &str) -> Result<Vec<Value>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::all(
        db,
        "SELECT merged_lead_id, merged_at FROM lead_merges WHERE into_lead_id = ?1 AND org_id = ?2 ORDER BY merged_at",
        &args![id, org_id],
    )
    .await
}

/// A typed custom field filter, made by the API from `cf.<key>=value` and the definitions.
#[derive(Debug, Clone)]
pub enum CustomFilter {
    /// `json_extract(custom_fields, path) = value`.
    Equals { path: String, value: Arg },
    /// A multiselect that contains `value`.
    Contains { path: String, value: String },
}

/// One page of leads.
pub struct Page {
    pub items: Vec<LeadRecord>,
    pub next_cursor: Option<String>,
}

/// The sort key values of a lead, as its cursor carries them.
fn cursor_key(field: SortField, lead: &LeadRecord) -> Vec<Value> {
    match field {
        SortField::HeatScore => vec![Value::from(lead.heat_score.to_string())],
        SortField::CreatedAt => vec![Value::from(lead.created_at.clone())],
        SortField::LastInteractionAt => {
            vec![Value::from(
                lead.last_interaction_at.clone().unwrap_or_default(),
            )]
        }
        SortField::Name => vec![
            Value::from(lead.last_name.clone().unwrap_or_default()),
            Value::from(lead.first_name.clone().unwrap_or_default()),
        ],
    }
}

/// Lists the org's leads: filters, sort and keyset pagination (stable under concurrent inserts:
/// each page starts strictly after the previous page's last (sort key, id)).
pub async fn list(
    tenant: &Tenant,
    query: &LeadQuery,
    custom: &[CustomFilter],
) -> Result<Page, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let mut sql = String::from("SELECT l.* FROM leads l WHERE l.org_id = ?1");
    let mut args: Vec<Arg> = vec![Arg::from(org_id)];
    let bind = |args: &mut Vec<Arg>, value: Arg| {
        args.push(value);
        format!("?{}", args.len())
    };
    let json_list = |values: Vec<String>| Arg::Text(Value::from(values).to_string());

    if !query.heat_levels.is_empty() {
        let p = bind(
            &mut args,
            json_list(
                query
                    .heat_levels
                    .iter()
                    .map(|l| l.as_str().to_string())
                    .collect(),
            ),
        );
        sql.push_str(&format!(
            " AND l.heat_level IN (SELECT value FROM json_each({p}))"
        ));
    }
    if !query.sources.is_empty() {
        let p = bind(
            &mut args,
            json_list(
                query
                    .sources
                    .iter()
                    .map(|s| s.as_str().to_string())
                    .collect(),
            ),
        );
        sql.push_str(&format!(
            " AND l.source IN (SELECT value FROM json_each({p}))"
        ));
    }
    if let Some(stage) = &query.stage_id {
        let p = bind(&mut args, Arg::from(stage));
        sql.push_str(&format!(" AND l.stage_id = {p}"));
    }
    if let Some(owner) = &query.owner_id {
        let p = bind(&mut args, Arg::from(owner));
        sql.push_str(&format!(" AND l.owner_id = {p}"));
    }
    if !query.tags.is_empty() {
        let p = bind(&mut args, json_list(query.tags.clone()));
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM lead_tags t WHERE t.org_id = l.org_id AND t.lead_id = l.id \
             AND t.tag IN (SELECT value FROM json_each({p})))"
        ));
    }
    if let Some(min) = query.min_score {
        let p = bind(&mut args, Arg::Real(min));
        sql.push_str(&format!(" AND l.heat_score >= {p}"));
    }
    if let Some(max) = query.max_score {
        let p = bind(&mut args, Arg::Real(max));
        sql.push_str(&format!(" AND l.heat_score <= {p}"));
    }
    for (column, op, value) in [
        ("created_at", ">=", &query.created_from),
        ("created_at", "<=", &query.created_to),
        ("last_interaction_at", ">=", &query.last_interaction_from),
        ("last_interaction_at", "<=", &query.last_interaction_to),
    ] {
        if let Some(value) = value {
            let p = bind(&mut args, Arg::from(value));
            sql.push_str(&format!(" AND l.{column} {op} {p}"));
        }
    }
    match (&query.fts, &query.q) {
        (Some(fts), _) => {
            let p = bind(&mut args, Arg::from(fts));
            sql.push_str(&format!(
                " AND l.rowid IN (SELECT rowid FROM leads_fts WHERE leads_fts MATCH {p})"
            ));
        }
        (None, Some(q)) => {
            // Text without a word (punctuation, symbols): a plain substring search. `instr` has no
            // pattern to escape, so no D1 pattern limit (50 bytes) applies whatever the length of
            // `q`; and such text has no letters whose case LIKE would have folded.
            let p = bind(&mut args, Arg::from(q));
            sql.push_str(&format!(
                " AND (instr(l.first_name, {p}) > 0 OR instr(l.last_name, {p}) > 0 \
                 OR instr(l.email, {p}) > 0 OR instr(l.company, {p}) > 0)"
            ));
        }
        (None, None) => {}
    }
    for filter in custom {
        match filter {
            CustomFilter::Equals { path, value } => {
                let pp = bind(&mut args, Arg::from(path));
                let pv = bind(&mut args, value.clone());
                sql.push_str(&format!(" AND json_extract(l.custom_fields, {pp}) = {pv}"));
            }
            CustomFilter::Contains { path, value } => {
                let pp = bind(&mut args, Arg::from(path));
                let pv = bind(&mut args, Arg::from(value));
                sql.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM json_each(l.custom_fields, {pp}) WHERE value = {pv})"
                ));
            }
        }
    }

    let keys: Vec<&str> = match query.sort.field {
        SortField::HeatScore => vec!["l.heat_score"],
        SortField::CreatedAt => vec!["l.created_at"],
        SortField::LastInteractionAt => vec!["COALESCE(l.last_interaction_at, '')"],
        SortField::Name => vec![
            "COALESCE(l.last_name, '') COLLATE NOCASE",
            "COALESCE(l.first_name, '') COLLATE NOCASE",
        ],
    };
    let (op, dir) = if query.sort.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(cursor) = &query.cursor {
        let mut placeholders = Vec::new();
        for value in &cursor.key {
            let arg = match (query.sort.field, value) {
                (SortField::HeatScore, Value::String(s)) => Arg::Real(
                    s.parse::<f64>()
                        .map_err(|_| StoreError::invalid("cursor", "malformed"))?,
                ),
                (_, Value::String(s)) => Arg::from(s),
                _ => return Err(StoreError::invalid("cursor", "the cursor is malformed")),
            };
            placeholders.push(bind(&mut args, arg));
        }
        placeholders.push(bind(&mut args, Arg::from(&cursor.id)));
        sql.push_str(&format!(
            " AND ({}, l.id) {op} ({})",
            keys.join(", "),
            placeholders.join(", ")
        ));
    }
    let order: Vec<String> = keys
        .iter()
        .map(|k| format!("{k} {dir}"))
        .chain([format!("l.id {dir}")])
        .collect();
    let p = bind(&mut args, Arg::Int(query.limit as i64 + 1));
    sql.push_str(&format!(" ORDER BY {} LIMIT {p}", order.join(", ")));

    let mut rows: Vec<LeadRow> = db::all(db, &sql, &args).await?;
    let more = rows.len() > query.limit as usize;
    rows.truncate(query.limit as usize);
    let items = records(tenant, rows).await?;
    let next_cursor = match (more, items.last()) {
        (true, Some(last)) => Some(
            Cursor::new(
                query.sort.wire(),
                cursor_key(query.sort.field, last),
                last.id.clone(),
            )
            .encode(),
        ),
        _ => None,
    };
    Ok(Page { items, next_cursor })
}

/// A new lead id.
pub fn new_lead_id() -> String {
    clock::new_id(prefix::LEAD)
}

/// Whether the org has any lead at all (an empty workspace has none).
pub async fn any(tenant: &Tenant) -> Result<bool, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let row: Option<Value> = db::first(
        db,
        "SELECT 1 AS found FROM leads WHERE org_id = ?1 LIMIT 1",
        &args![org_id],
    )
    .await?;
    Ok(row.is_some())
}
