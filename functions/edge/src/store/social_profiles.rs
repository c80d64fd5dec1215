//! `social_profiles`: a lead's identities on each platform, unique per (org, platform, user id).

use chrono::{DateTime, Utc};
use leadheat_domain::leads::SocialProfileInput;
use serde::{Deserialize, Serialize};
use worker::D1PreparedStatement;

use crate::args;
use crate::clock;
use crate::db;
use crate::db::StoreError;
use crate::tenant::Tenant;

/// A profile as the lead JSON shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocialProfile {
    pub platform: String,
    pub platform_user_id: String,
    pub handle: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ProfileRow {
    lead_id: String,
    platform: String,
    platform_user_id: String,
    handle: Option<String>,
    url: Option<String>,
}

/// The profiles of several leads at once, as (lead id, profile), oldest first.
pub async fn for_leads(
    tenant: &Tenant,
    lead_ids: &[String],
) -> Result<Vec<(String, SocialProfile)>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    if lead_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = serde_json::to_string(lead_ids).map_err(|e| StoreError::backend("lead ids", e))?;
    let rows: Vec<ProfileRow> = db::all(
        db,
        "SELECT lead_id, platform, platform_user_id, handle, url FROM social_profiles \
         WHERE org_id = ?1 AND lead_id IN (SELECT value FROM json_each(?2)) ORDER BY created_at, id",
        &args![org_id, ids],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (
                row.lead_id,
                SocialProfile {
                    platform: row.platform,
                    platform_user_id: row.platform_user_id,
                    handle: row.handle,
                    url: row.url,
                },
            )
        })
        .collect())
}

/// The lead that holds a (platform, user id) identity in the org, if any.
pub async fn find_lead(
    tenant: &Tenant,
    platform: &str,
    platform_user_id: &str,
) -> Result<Option<String>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    #[derive(Deserialize)]
    struct Row {
        lead_id: String,
    }
    let row: Option<Row> = db::first(
        db,
        "SELECT lead_id FROM social_profiles WHERE org_id = ?1 AND platform = ?2 AND platform_user_id = ?3",
        &args![org_id, platform, platform_user_id],
    )
    .await?;
    Ok(row.map(|r| r.lead_id))
}

/// Inserts a profile. With `ignore_conflict`, a profile already held (by this or another lead)
/// is left as it is; without it, the conflict fails the batch (UNIQUE constraint).
pub fn insert_statement(
    tenant: &Tenant,
    lead_id: &str,
    profile: &SocialProfileInput,
    now: DateTime<Utc>,
    ignore_conflict: bool,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let sql = if ignore_conflict {
        "INSERT INTO social_profiles (id, org_id, lead_id, platform, platform_user_id, handle, url, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (org_id, platform, platform_user_id) DO NOTHING"
    } else {
        "INSERT INTO social_profiles (id, org_id, lead_id, platform, platform_user_id, handle, url, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    };
    db::statement(
        db,
        sql,
        &args![
            clock::new_id("sp"),
            org_id,
            lead_id,
            profile.platform.as_str(),
            profile.platform_user_id.as_str(),
            profile.handle.clone(),
            profile.url.clone(),
            clock::rfc3339(now)
        ],
    )
}

/// Moves every profile of lead `from` to lead `to` (a merge).
pub fn reassign_lead_statement(
    tenant: &Tenant,
    from: &str,
    to: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "UPDATE social_profiles SET lead_id = ?1 WHERE lead_id = ?2 AND org_id = ?3",
        &args![to, from, org_id],
    )
}

/// Removes every profile of a lead (before it gets new ones, or its erasure).
pub fn delete_for_lead_statement(
    tenant: &Tenant,
    lead_id: &str,
) -> Result<D1PreparedStatement, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::statement(
        db,
        "DELETE FROM social_profiles WHERE org_id = ?1 AND lead_id = ?2",
        &args![org_id, lead_id],
    )
}
