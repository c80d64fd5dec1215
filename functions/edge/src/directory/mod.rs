//! The directory: the one database (binding `DB`) that knows where every org lives, and the data
//! that belongs to no single org. Its tables, each with its SQL in one module here:
//!
//! - `orgs` (this module): each org's shard, its website site key, and the state of a shard move;
//! - `integration_accounts` ([`accounts`]): which org a platform account (page, Instagram account,
//!   LinkedIn organisation or ad account) belongs to, so a webhook delivery finds its org;
//! - `webhook_unrouted` ([`unrouted`]): deliveries for accounts no org has connected;
//! - `job_leases` and `job_runs` ([`jobs`]) and `rate_limits` ([`rate_limits`]);
//! - `org_moves` ([`moves`]): the state of each org's shard move.
//!
//! Everything else is an org's and lives on the org's shard (`SHARD_0 ... SHARD_{N-1}`), reached
//! only through a [`Tenant`] that [`Directory::tenant`] binds. `N` is the number of shard
//! bindings the worker has (wrangler.toml), not a constant of the code.

pub mod accounts;
pub mod jobs;
pub mod moves;
pub mod rate_limits;
pub mod unrouted;

use chrono::{DateTime, Utc};
use leadheat_domain::sharding::{least_loaded, ShardLoad};
use serde::Deserialize;
use worker::{D1Database, Env};

use crate::args;
use crate::clock;
use crate::db::{self, StoreError, DIRECTORY_BINDING};
use crate::store::orgs as tenant_orgs;
use crate::tenant::{Shard, Tenant};

/// The directory and the worker's shard bindings.
pub struct Directory {
    db: D1Database,
    env: Env,
    shard_count: u32,
}

/// Shard bindings looked for past the last one found: none, since they are numbered from 0 without
/// gaps; a gap ends the list (and the directory refuses an org placed beyond it).
fn count_shards(env: &Env) -> u32 {
    let mut count = 0;
    while env.d1(&db::shard_binding(count)).is_ok() {
        count += 1;
    }
    count
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrgEntry {
    pub id: String,
    pub shard: u32,
    pub site_key: String,
    pub ready: i64,
    pub moving_to: Option<u32>,
    pub created_at: String,
}

pub(crate) const ORG_COLUMNS: &str = "id, shard, site_key, ready, moving_to, created_at";

impl Directory {
    pub fn open(env: &Env) -> Result<Directory, StoreError> {
        let env = env.clone();
        let db = db::binding(&env, DIRECTORY_BINDING)?;
        let shard_count = count_shards(&env);
        if shard_count == 0 {
            return Err(StoreError::backend(
                "directory",
                "no shard database is bound (SHARD_0 is missing)",
            ));
        }
        Ok(Directory {
            db,
            env,
            shard_count,
        })
    }

    pub(crate) fn db(&self) -> &D1Database {
        &self.db
    }

    /// How many shards this worker has bound.
    pub fn shard_count(&self) -> u32 {
        self.shard_count
    }

    /// Shard `index`, for work over every org on it.
    pub fn shard(&self, index: u32) -> Result<Shard, StoreError> {
        Ok(Shard::bind(index, self.shard_db(index)?))
    }

    /// Every shard, in index order.
    pub fn shards(&self) -> Result<Vec<Shard>, StoreError> {
        (0..self.shard_count).map(|i| self.shard(i)).collect()
    }

    fn shard_db(&self, index: u32) -> Result<D1Database, StoreError> {
        if index >= self.shard_count {
            return Err(StoreError::backend(
                "directory",
                format!(
                    "shard {index} is not bound to this worker (it has {} shards)",
                    self.shard_count
                ),
            ));
        }
        db::binding(&self.env, &db::shard_binding(index))
    }

    /// The org's directory entry.
    pub async fn org(&self, org_id: &str) -> Result<Option<OrgEntry>, StoreError> {
        db::first(
            &self.db,
            &format!("SELECT {ORG_COLUMNS} FROM orgs WHERE id = ?1"),
            &args![org_id],
        )
        .await
    }

    /// The org on its shard, or `None` for an org the directory does not know. An org in the
    /// middle of a shard move is refused ([`StoreError::OrgMoving`]): its rows are being copied.
    pub async fn tenant(&self, org_id: &str) -> Result<Option<Tenant>, StoreError> {
        match self.org(org_id).await? {
            Some(entry) => self.tenant_of(&entry).map(Some),
            None => Ok(None),
        }
    }

    /// The tenant of a directory entry read earlier.
    pub fn tenant_of(&self, entry: &OrgEntry) -> Result<Tenant, StoreError> {
        if entry.moving_to.is_some() {
            return Err(StoreError::OrgMoving {
                org_id: entry.id.clone(),
            });
        }
        Ok(Tenant::bind(
            &entry.id,
            entry.shard,
            self.shard_db(entry.shard)?,
        ))
    }

    /// The org on its shard, creating it on first sight: its directory entry on the least-loaded
    /// shard, then its defaults on that shard. Safe to race (every insert ignores a conflict and
    /// the winner's shard is read back) and to fail half-way (`ready` stays 0 until the defaults
    /// exist, and the next call writes them again).
    pub async fn ensure_tenant(
        &self,
        org_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Tenant, StoreError> {
        let entry = match self.org(org_id).await? {
            Some(entry) => entry,
            None => self.place(org_id, now).await?,
        };
        let tenant = self.tenant_of(&entry)?;
        if entry.ready == 0 {
            tenant_orgs::create_with_defaults(&tenant, now).await?;
            db::run(
                &self.db,
                "UPDATE orgs SET ready = 1 WHERE id = ?1",
                &args![org_id],
            )
            .await?;
        }
        Ok(tenant)
    }

    /// Places a new org on the least-loaded shard and returns its entry (the winner's, if another
    /// request placed it first).
    async fn place(&self, org_id: &str, now: DateTime<Utc>) -> Result<OrgEntry, StoreError> {
        let shard = least_loaded(&self.load().await?, self.shard_count);
        db::run(
            &self.db,
            "INSERT INTO orgs (id, shard, site_key, ready, created_at, updated_at) \
             VALUES (?1, ?2, ?3, 0, ?4, ?4) ON CONFLICT (id) DO NOTHING",
            &args![org_id, shard, new_site_key(), clock::rfc3339(now)],
        )
        .await?;
        self.org(org_id)
            .await?
            .ok_or_else(|| StoreError::backend("directory", "the new org was not found"))
    }

    /// Orgs per shard (shards without any are absent).
    pub async fn load(&self) -> Result<Vec<ShardLoad>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            shard: u32,
            orgs: u64,
        }
        let rows: Vec<Row> = db::all(
            &self.db,
            "SELECT shard, COUNT(*) AS orgs FROM orgs GROUP BY shard",
            &args![],
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ShardLoad {
                shard: r.shard,
                orgs: r.orgs,
            })
            .collect())
    }

    /// Up to `limit` orgs on `shard` after `after` (keyset, by id): the jobs' walk of a shard.
    pub async fn orgs_on_shard(
        &self,
        shard: u32,
        after: &str,
        limit: u32,
    ) -> Result<Vec<OrgEntry>, StoreError> {
        db::all(
            &self.db,
            &format!(
                "SELECT {ORG_COLUMNS} FROM orgs WHERE shard = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
            ),
            &args![shard, after, limit],
        )
        .await
    }

    /// The org a website site key belongs to.
    pub async fn org_by_site_key(&self, site_key: &str) -> Result<Option<OrgEntry>, StoreError> {
        db::first(
            &self.db,
            &format!("SELECT {ORG_COLUMNS} FROM orgs WHERE site_key = ?1"),
            &args![site_key],
        )
        .await
    }

    /// Replaces the org's site key (the old one stops working at once) and returns the new one.
    pub async fn rotate_site_key(
        &self,
        tenant: &Tenant,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let key = new_site_key();
        db::run(
            &self.db,
            "UPDATE orgs SET site_key = ?2, updated_at = ?3 WHERE id = ?1",
            &args![tenant.org_id(), key.as_str(), clock::rfc3339(now)],
        )
        .await?;
        Ok(key)
    }
}

/// A public, unguessable key for the website snippet (not a secret: it only admits tracking).
fn new_site_key() -> String {
    format!("site_{}", hex::encode(clock::random_bytes::<16>()))
}
