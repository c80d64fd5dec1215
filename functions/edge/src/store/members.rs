//! `members`: the people of an org the API has seen (their token's `sub`, name, email and role).

use serde::{Deserialize, Serialize};

use crate::args;
use crate::db;
use crate::db::StoreError;
use crate::tenant::Tenant;

/// Most members one answer lists (an org's sales team, not a directory of customers).
pub const MAX_MEMBERS: usize = 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    pub user_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: String,
    pub first_seen_at: String,
    pub last_seen_at: String,
}

/// A sighting of a member at `now`.
pub struct Seen<'a> {
    pub user_id: &'a str,
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub role: &'a str,
    pub now: &'a str,
    /// A stored row last seen at or after this, with the same name, email and role, is left as
    /// it is: no write.
    pub refresh_before: &'a str,
}

/// Records the sighting: inserts a new member, or updates one whose name, email or role changed
/// or who was last written before `refresh_before`. Returns whether a row was written.
pub async fn record(tenant: &Tenant, seen: &Seen<'_>) -> Result<bool, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let changed = db::run(
        db,
        "INSERT INTO members (org_id, user_id, name, email, role, first_seen_at, last_seen_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) \
         ON CONFLICT (org_id, user_id) DO UPDATE SET name = excluded.name, email = excluded.email, \
         role = excluded.role, last_seen_at = excluded.last_seen_at \
         WHERE members.name IS NOT excluded.name OR members.email IS NOT excluded.email \
         OR members.role IS NOT excluded.role OR members.last_seen_at < ?7",
        &args![
            org_id,
            seen.user_id,
            seen.name,
            seen.email,
            seen.role,
            seen.now,
            seen.refresh_before
        ],
    )
    .await?;
    Ok(changed == 1)
}

/// The org's members, by name (those without one last), then user id.
pub async fn list(tenant: &Tenant) -> Result<Vec<Member>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    db::all(
        db,
        "SELECT user_id, name, email, role, first_seen_at, last_seen_at FROM members \
         WHERE org_id = ?1 ORDER BY name IS NULL, name COLLATE NOCASE, user_id LIMIT ?2",
        &args![org_id, MAX_MEMBERS],
    )
    .await
}
