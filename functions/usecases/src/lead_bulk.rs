//! One action over many leads (`POST /v1/leads/bulk`): each lead goes through the operation a
//! single change would take ([`leads::patch`] for the owner and tags, [`pipeline::move_lead`] for
//! the stage), so validation, versions and `stage_change` touchpoints are the same; each lead's
//! outcome is reported on its own. A lead already as asked is not written again.

use chrono::{DateTime, Utc};
use leadheat_domain::lead_bulk::{BulkAction, BulkRequest, ItemStatus};
use leadheat_domain::leads::{union_tags, Change, LeadPatch, MAX_TAGS};
use leadheat_edge::db::StoreError;
use leadheat_edge::store::leads::LeadRecord;
use leadheat_edge::store::stages;
use leadheat_edge::tenant::Tenant;

use crate::leads;
use crate::pipeline::{self, LeadPlacement};
use crate::Refused;

/// Attempts at adding a tag to a lead that keeps changing under the read-modify-write.
const TAG_ATTEMPTS: usize = 3;

/// The outcome for one id of the request.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkItem {
    pub id: String,
    pub status: ItemStatus,
    /// The lead's version after the action (`ok` only).
    pub version: Option<i64>,
    /// Why the action was refused for this lead (`error` only).
    pub detail: Option<String>,
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
        let outcome = apply_one(tenant, id, &request.action, actor, now).await;
        items.push(item(id, outcome)?);
    }
    Ok(items)
}

async fn apply_one(
    tenant: &Tenant,
    id: &str,
    action: &BulkAction,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<LeadRecord, Refused> {
    match action {
        BulkAction::AssignOwner(owner) => {
            let lead = leads::find(tenant, id).await?;
            if lead.owner_id == *owner {
                return Ok(lead);
            }
            let patch = LeadPatch {
                owner_id: owner.clone().map_or(Change::Clear, Change::Set),
                ..LeadPatch::default()
            };
            leads::patch(tenant, id, Some(lead.version), &patch, actor, now).await
        }
        BulkAction::AddTag(tag) => add_tag(tenant, id, tag, actor, now).await,
        BulkAction::MoveStage(stage) => {
            let lead = leads::find(tenant, id).await?;
            if lead.stage_id.as_deref() == Some(stage.as_str()) {
                return Ok(lead);
            }
            pipeline::move_lead(tenant, id, LeadPlacement::at_end(stage), actor, now).await
        }
    }
}

/// Tags replace the whole list in a patch: the list is read, extended and written against the
/// version read, again if another write came in between.
async fn add_tag(
    tenant: &Tenant,
    id: &str,
    tag: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<LeadRecord, Refused> {
    for _ in 0..TAG_ATTEMPTS {
        let lead = leads::find(tenant, id).await?;
        if lead.tags.iter().any(|t| t == tag) {
            return Ok(lead);
        }
        if lead.tags.len() >= MAX_TAGS {
            return Err(Refused::field(
                "tag",
                format!("the lead has {MAX_TAGS} tags already"),
            ));
        }
        let patch = LeadPatch {
            tags: Some(union_tags(&lead.tags, &[tag.to_string()])),
            ..LeadPatch::default()
        };
        match leads::patch(tenant, id, Some(lead.version), &patch, actor, now).await {
            Err(Refused::Stale { .. }) => continue,
            other => return other,
        }
    }
    Err(Refused::conflict(
        "the lead kept changing concurrently; retry",
    ))
}

/// One lead's outcome; `Err` for a failure of the store, which ends the whole request.
fn item(id: &str, outcome: Result<LeadRecord, Refused>) -> Result<BulkItem, Refused> {
    let (status, version, detail) = match outcome {
        Ok(lead) => (ItemStatus::Ok, Some(lead.version), None),
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
    })
}
