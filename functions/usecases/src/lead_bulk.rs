//! One action over many leads (`POST /v1/leads/bulk`): each lead goes through the operation a
//! single change would take (the guarded field write of [`leads::write_fields`] for the owner and
//! tags, [`pipeline::move_lead`] for the stage), so validation, versions and `stage_change`
//! touchpoints are the same; each lead's outcome is reported on its own. A lead already as asked
//! is not written again.
//!
//! Cost, measured with `DEV_SERVER_TIMING`: an owner or a tag is a few D1 queries a lead, a move
//! about 14. A request stops taking leads before it would run out of its invocation's 1,000
//! queries; the leads it did not reach are `error` with [`NOT_REACHED`], to send again.

use chrono::{DateTime, Utc};
use leadheat_domain::d1_limits::MAX_QUERIES_PER_INVOCATION;
use leadheat_domain::lead_bulk::{BulkAction, BulkRequest, ItemStatus};
use leadheat_domain::leads::{union_tags, Change, LeadPatch, MAX_TAGS};
use leadheat_edge::db::{self, StoreError};
use leadheat_edge::store::leads::LeadRecord;
use leadheat_edge::store::stages;
use leadheat_edge::tenant::Tenant;

use crate::leads;
use crate::pipeline::{self, LeadPlacement};
use crate::Refused;

/// Attempts at writing a lead that keeps changing between its read and its guarded write.
const WRITE_ATTEMPTS: usize = 3;

/// D1 queries kept free before a lead is started: the most one lead may take (a move whose heat
/// write is retried).
const QUERIES_PER_LEAD: u32 = 40;

/// The detail of a lead the request did not reach.
pub const NOT_REACHED: &str =
    "not attempted: the request ran out of database queries before this lead; send it again";

/// The outcome for one id of the request.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkItem {
    pub id: String,
    pub status: ItemStatus,
    /// The lead's version after the action (`ok` only).
    pub version: Option<i64>,
    /// Why the action was refused for this lead (`error` only).
    pub detail: Option<String>,
    /// Not attempted ([`NOT_REACHED`]): sending the id again will do it.
    pub retry: bool,
}

/// Applies the action to every id in order. A stage that is not the org's refuses the whole
/// request (`stage_id`); a failure of the store itself stops it (a retry is safe: every action
/// is idempotent). Anything else is the lead's own outcome.
pub async fn apply(
    tenant: &Tenant,
    request: &BulkRequest,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<BulkItem>, Refused> {
    if let BulkAction::MoveStage(stage) = &request.action {
        if stages::get(tenant, stage).await?.is_none() {
            return Err(Refused::field(
                "stage_id",
                format!("{stage} is not a stage of this org"),
            ));
        }
    }
    let mut items = Vec::with_capacity(request.ids.len());
    for id in &request.ids {
        if db::invocation_queries() + QUERIES_PER_LEAD > MAX_QUERIES_PER_INVOCATION {
            items.push(BulkItem {
                id: id.clone(),
                status: ItemStatus::Error,
                version: None,
                detail: Some(NOT_REACHED.to_string()),
                retry: true,
            });
            continue;
        }
        let outcome = apply_one(tenant, id, &request.action, actor, now).await;
        items.push(item(id, outcome)?);
    }
    Ok(items)
}

/// The action on one lead; its version after.
async fn apply_one(
    tenant: &Tenant,
    id: &str,
    action: &BulkAction,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<i64, Refused> {
    match action {
        BulkAction::MoveStage(stage) => {
            let lead = leads::find(tenant, id).await?;
            if lead.stage_id.as_deref() == Some(stage.as_str()) {
                return Ok(lead.version);
            }
            pipeline::move_lead(tenant, id, LeadPlacement::at_end(stage), actor, now)
                .await
                .map(|lead| lead.version)
        }
        _ => write_fields(tenant, id, action, now).await,
    }
}

/// The owner or a tag: read, changed and written against the version read, again if another
/// write came in between. Tags replace the whole list in a write, hence the read.
async fn write_fields(
    tenant: &Tenant,
    id: &str,
    action: &BulkAction,
    now: DateTime<Utc>,
) -> Result<i64, Refused> {
    for _ in 0..WRITE_ATTEMPTS {
        let lead = leads::find(tenant, id).await?;
        let Some(patch) = field_patch(&lead, action)? else {
            return Ok(lead.version);
        };
        match leads::write_fields(tenant, &lead, &patch, now).await {
            Err(Refused::Stale { .. }) => continue,
            other => return other,
        }
    }
    Err(Refused::conflict(
        "the lead kept changing concurrently; retry",
    ))
}

/// The patch the action makes of `lead`; `None` when the lead is as asked already.
fn field_patch(lead: &LeadRecord, action: &BulkAction) -> Result<Option<LeadPatch>, Refused> {
    let patch = match action {
        BulkAction::AssignOwner(owner) if lead.owner_id == *owner => return Ok(None),
        BulkAction::AssignOwner(owner) => LeadPatch {
            owner_id: owner.clone().map_or(Change::Clear, Change::Set),
            ..LeadPatch::default()
        },
        BulkAction::AddTag(tag) if lead.tags.contains(tag) => return Ok(None),
        BulkAction::AddTag(_) if lead.tags.len() >= MAX_TAGS => {
            return Err(Refused::field(
                "tag",
                format!("the lead has {MAX_TAGS} tags already"),
            ))
        }
        BulkAction::AddTag(tag) => LeadPatch {
            tags: Some(union_tags(&lead.tags, std::slice::from_ref(tag))),
            ..LeadPatch::default()
        },
        BulkAction::MoveStage(_) => return Ok(None),
    };
    Ok(Some(patch))
}

/// One lead's outcome; `Err` for a failure of the store, which ends the whole request.
fn item(id: &str, outcome: Result<i64, Refused>) -> Result<BulkItem, Refused> {
    let (status, version, detail) = match outcome {
        Ok(version) => (ItemStatus::Ok, Some(version), None),
        Err(Refused::Store(StoreError::NotFound(_))) => (ItemStatus::NotFound, None, None),
        Err(Refused::Store(
            error @ (StoreError::Backend { .. } | StoreError::OrgMoving { .. }),
        )) => return Err(Refused::Store(error)),
        Err(Refused::Store(error)) => (ItemStatus::Error, None, Some(error.to_string())),
        Err(Refused::Invalid(errors)) => {
            let fields: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            (ItemStatus::Error, None, Some(fields.join("; ")))
        }
        Err(Refused::Stale { .. }) => (
            ItemStatus::Error,
            None,
            Some("the lead changed concurrently; retry".to_string()),
        ),
    };
    Ok(BulkItem {
        id: id.to_string(),
        status,
        version,
        detail,
        retry: false,
    })
}
