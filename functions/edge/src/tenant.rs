//! The handles through which data is reached.
//!
//! - [`Tenant`]: one org on its shard. Every store function over an org's rows takes one, and
//!   reads the org id from it, so a query for one org's rows cannot be written with another org's
//!   id or sent to another org's database. Only the directory makes tenants
//!   ([`crate::directory::Directory::tenant`]), after looking up the org's shard.
//! - [`Shard`]: one shard database, for the maintenance that is about rows of every org on it
//!   (retention sweeps, finding due work); it never names an org's rows by org id.
//!
//! Neither hands its database out of this crate: workers go through the store.

use std::rc::Rc;

use worker::{D1Database, D1PreparedStatement, D1Result};

use crate::db::{self, Constraint, StoreError};

/// An org and the shard database that holds its rows.
pub struct Tenant {
    org_id: String,
    shard: u32,
    db: Rc<D1Database>,
}

impl Tenant {
    /// Only the directory (and a shard move, which works on both copies) binds an org to a shard.
    pub(crate) fn bind(org_id: &str, shard: u32, db: D1Database) -> Tenant {
        Tenant {
            org_id: org_id.to_string(),
            shard,
            db: Rc::new(db),
        }
    }

    pub fn org_id(&self) -> &str {
        &self.org_id
    }

    /// The shard index (the `N` of its `SHARD_N` binding).
    pub fn shard(&self) -> u32 {
        self.shard
    }

    pub(crate) fn db(&self) -> &D1Database {
        &self.db
    }

    /// Runs statements built for this tenant as one D1 batch (one transaction).
    pub async fn batch(
        &self,
        statements: Vec<D1PreparedStatement>,
    ) -> Result<Vec<D1Result>, StoreError> {
        db::batch(&self.db, statements).await
    }

    /// Like [`Tenant::batch`], with a constraint failure (which rolls the whole batch back)
    /// returned as `Ok(Err(constraint))`, for callers that turn it into a retry or a conflict.
    pub async fn try_batch(
        &self,
        statements: Vec<D1PreparedStatement>,
    ) -> Result<Result<Vec<D1Result>, Constraint>, StoreError> {
        db::try_batch(&self.db, statements).await
    }
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tenant({} on shard {})", self.org_id, self.shard)
    }
}

/// One shard database, for work over all the orgs it holds.
pub struct Shard {
    index: u32,
    db: Rc<D1Database>,
}

impl Shard {
    pub(crate) fn bind(index: u32, db: D1Database) -> Shard {
        Shard {
            index,
            db: Rc::new(db),
        }
    }

    /// One org's rows on this shard, for a sweep over rows it found here (it works on rows, so an
    /// org that has since moved away only has stale rows here, which its move deletes).
    pub(crate) fn tenant_of_row(&self, org_id: &str) -> Tenant {
        Tenant {
            org_id: org_id.to_string(),
            shard: self.index,
            db: Rc::clone(&self.db),
        }
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub(crate) fn db(&self) -> &D1Database {
        &self.db
    }

    /// Runs statements built for this shard as one D1 batch (one transaction).
    pub async fn batch(
        &self,
        statements: Vec<D1PreparedStatement>,
    ) -> Result<Vec<D1Result>, StoreError> {
        db::batch(&self.db, statements).await
    }
}
