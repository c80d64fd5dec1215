//! `custom_field_defs`: the org's custom field definitions.

use chrono::{DateTime, Utc};
use leadheat_domain::custom_fields::{FieldDef, MAX_DEFINITIONS_PER_ORG};
use leadheat_domain::ids::prefix;
use leadheat_domain::types::FieldType;
use serde::{Deserialize, Serialize};

use crate::args;
use crate::clock;
use crate::db;
use crate::db::Constraint;
use crate::db::StoreError;
use crate::store::leads;
use crate::tenant::Tenant;

/// A definition as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDefRecord {
    pub id: String,
    #[serde(flatten)]
    pub def: FieldDef,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Deserialize)]
struct Row {
    id: String,
    key: String,
    label: String,
    field_type: String,
    options: String,
    required: i64,
    created_at: String,
    updated_at: String,
}

impl Row {
    fn into_record(self) -> Option<FieldDefRecord> {
        Some(FieldDefRecord {
            def: FieldDef {
                key: self.key,
                label: self.label,
                field_type: self.field_type.parse::<FieldType>().ok()?,
                options: serde_json::from_str(&self.options).unwrap_or_default(),
                required: self.required != 0,
            },
            id: self.id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

const COLUMNS: &str = "id, key, label, field_type, options, required, created_at, updated_at";

/// Every definition of the org, by key.
pub async fn list(tenant: &Tenant) -> Result<Vec<FieldDefRecord>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let rows: Vec<Row> = db::all(
        db,
        &format!("SELECT {COLUMNS} FROM custom_field_defs WHERE org_id = ?1 ORDER BY key"),
        &args![org_id],
    )
    .await?;
    Ok(rows.into_iter().filter_map(Row::into_record).collect())
}

/// Just the definitions (for validating values).
pub async fn defs(tenant: &Tenant) -> Result<Vec<FieldDef>, StoreError> {
    Ok(list(tenant).await?.into_iter().map(|r| r.def).collect())
}

pub async fn get(tenant: &Tenant, id: &str) -> Result<Option<FieldDefRecord>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let row: Option<Row> = db::first(
        db,
        &format!("SELECT {COLUMNS} FROM custom_field_defs WHERE id = ?1 AND org_id = ?2"),
        &args![id, org_id],
    )
    .await?;
    Ok(row.and_then(Row::into_record))
}

/// What creating a definition did.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    Record(FieldDefRecord),
    /// The key is already defined in the org.
    KeyTaken,
    /// The org already has [`MAX_DEFINITIONS_PER_ORG`] definitions.
    LimitReached,
}

/// Creates a definition unless the key is taken or the org is at [`MAX_DEFINITIONS_PER_ORG`].
/// The count is checked inside the insert itself, so concurrent creates cannot pass the cap.
pub async fn create(
    tenant: &Tenant,
    def: &FieldDef,
    now: DateTime<Utc>,
) -> Result<Created, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let id = clock::new_id(prefix::CUSTOM_FIELD);
    let options =
        serde_json::to_string(&def.options).map_err(|e| StoreError::backend("options", e))?;
    let statement = db::statement(
        db,
        "INSERT INTO custom_field_defs (id, org_id, key, label, field_type, options, required, created_at, updated_at) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8 \
         WHERE (SELECT count(*) FROM custom_field_defs WHERE org_id = ?2) < ?9",
        &args![
            id.as_str(),
            org_id,
            def.key.as_str(),
            def.label.as_str(),
            def.field_type.as_str(),
            options,
            def.required,
            clock::rfc3339(now),
            MAX_DEFINITIONS_PER_ORG
        ],
    )?;
    match db::try_batch(db, vec![statement]).await? {
        Ok(results) if results.first().map(db::changes).unwrap_or(0) == 0 => {
            Ok(Created::LimitReached)
        }
        Ok(_) => match get(tenant, &id).await? {
            Some(record) => Ok(Created::Record(record)),
            None => Err(StoreError::backend(
                "custom field insert",
                "the new definition was not found",
            )),
        },
        Err(Constraint::Unique) => Ok(Created::KeyTaken),
        Err(other) => Err(StoreError::backend(
            "custom field insert",
            format!("{other:?}"),
        )),
    }
}

/// Writes label, options and required of a definition.
pub async fn update(
    tenant: &Tenant,
    id: &str,
    def: &FieldDef,
    now: DateTime<Utc>,
) -> Result<Option<FieldDefRecord>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let options =
        serde_json::to_string(&def.options).map_err(|e| StoreError::backend("options", e))?;
    db::run(
        db,
        "UPDATE custom_field_defs SET label = ?3, options = ?4, required = ?5, updated_at = ?6 WHERE id = ?1 AND org_id = ?2",
        &args![id, org_id, def.label.as_str(), options, def.required, clock::rfc3339(now)],
    )
    .await?;
    get(tenant, id).await
}

/// Deletes a definition and removes its values from the org's leads. False when there was none.
pub async fn delete(tenant: &Tenant, id: &str) -> Result<bool, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let Some(existing) = get(tenant, id).await? else {
        return Ok(false);
    };
    let statements = vec![
        leads::remove_custom_field_statement(tenant, &existing.def.key)?,
        db::statement(
            db,
            "DELETE FROM custom_field_defs WHERE id = ?1 AND org_id = ?2",
            &args![id, org_id],
        )?,
    ];
    let results = db::batch(db, statements).await?;
    Ok(results.last().map(db::changes).unwrap_or(0) > 0)
}
