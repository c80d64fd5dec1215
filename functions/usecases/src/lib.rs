//! Leadheat's operations, each in one place, over the store of `leadheat-edge`:
//!
//! - [`lead_matching`]: a lead created or matched to an existing one (deduplication), filling an
//!   existing lead's empty fields, and the erasure check every intake makes;
//! - [`touchpoints`]: recording a touchpoint with the lead's new heat in one batch, alone or in
//!   the batch of the write it reports (a lead move);
//! - [`demo`]: the development demo workspace written into an empty org through these operations;
//! - [`forms`]: a lead form submission made a lead with its `info_request` touchpoint;
//! - [`leads`]: a lead's patch, merge and erasure, and its custom field filters typed;
//! - [`lead_bulk`]: one owner, tag or stage action over many leads, lead by lead;
//! - [`pipeline`]: placing a stage among the others, and moving a lead to a stage and a position
//!   with its `stage_change` touchpoint, the one path every move takes.
//!
//! Workers parse requests and messages, call these, and render the outcome; the product's rules
//! are `leadheat-domain`'s. Errors are the store's [`leadheat_edge::db::StoreError`] or
//! [`Refused`] (the input the operation refuses, field by field).

pub mod demo;
pub mod forms;
pub mod lead_bulk;
pub mod lead_matching;
pub mod leads;
pub mod pipeline;
pub mod touchpoints;

use leadheat_domain::types::FieldError;
use leadheat_edge::db::StoreError;

/// Why an operation did not happen.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// The store's outcome (missing, conflicting, moving org, or a failure).
    Store(StoreError),
    /// Fields the operation refuses, each with why.
    Invalid(Vec<FieldError>),
    /// The caller wrote against version `expected` of a record that is now at `current`.
    Stale { expected: i64, current: i64 },
}

impl From<StoreError> for Refused {
    fn from(error: StoreError) -> Refused {
        Refused::Store(error)
    }
}

impl Refused {
    pub fn field(field: &str, message: impl Into<String>) -> Refused {
        Refused::Invalid(vec![FieldError::new(field, message)])
    }

    pub fn not_found(what: impl Into<String>) -> Refused {
        Refused::Store(StoreError::NotFound(what.into()))
    }

    pub fn conflict(what: impl Into<String>) -> Refused {
        Refused::Store(StoreError::Conflict(what.into()))
    }
}
