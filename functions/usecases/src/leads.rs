//! Lead operations beyond matching: a patch (fields, custom fields and a stage move), a merge of
//! two leads, the erasure, and the typing of custom field filters by the org's definitions.

use chrono::{DateTime, Utc};
use leadheat_domain::custom_fields::{self, FieldDef};
use leadheat_domain::lead_query::LeadQuery;
use leadheat_domain::leads::{normalize_email, normalize_phone, Change, LeadPatch};
use leadheat_domain::types::{FieldError, FieldType};
use leadheat_edge::db::Arg;
use leadheat_edge::store::custom_fields as custom_fields_store;
use leadheat_edge::store::leads::{
    self as store, CustomFilter, LeadRecord, LeadWrite, UpdateOutcome,
};
use leadheat_edge::tenant::Tenant;

use crate::pipeline::{self, LeadPlacement};
use crate::touchpoints::{self, NewTouchpoint};
use crate::Refused;

/// Attempts of a patch without an expected version that keeps losing to concurrent writers.
const PATCH_ATTEMPTS: usize = 3;

/// A lead of the org, or not found (saying so when it was merged into another).
pub async fn find(tenant: &Tenant, id: &str) -> Result<LeadRecord, Refused> {
    if let Some(lead) = store::get(tenant, id).await? {
        return Ok(lead);
    }
    match store::merged_into(tenant, id).await? {
        Some(into) => Err(Refused::not_found(format!(
            "lead {id} was merged into lead {into}"
        ))),
        None => Err(Refused::not_found(format!("no lead {id}"))),
    }
}

/// Applies `patch` to the lead, as the caller's `actor`: checked against `expected` (the version the
/// caller read, when it sent one), its custom fields against the org's definitions; a new stage
/// is a move ([`pipeline::move_lead`]), the other fields one guarded write, retried a few times
/// when a concurrent write without `expected` won. Returns the lead as it is after.
pub async fn patch(
    tenant: &Tenant,
    id: &str,
    expected: Option<i64>,
    patch: &LeadPatch,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<LeadRecord, Refused> {
    let defs = custom_fields_store::defs(tenant).await?;
    let other_fields = LeadPatch {
        stage_id: Change::Keep,
        ..patch.clone()
    };
    for _ in 0..PATCH_ATTEMPTS {
        let lead = find(tenant, id).await?;
        if let Some(expected) = expected {
            if expected != lead.version {
                return Err(Refused::Stale {
                    expected,
                    current: lead.version,
                });
            }
        }
        if patch.is_empty() {
            return Ok(lead);
        }
        let (write, left_stage) = apply_patch(&lead, patch, &defs)?;
        let lead = match &patch.stage_id {
            // The move first, with its touchpoint in one batch (every field is validated above);
            // a retry after a concurrent write finds the lead moved already.
            Change::Set(stage) if Some(stage) != lead.stage_id.as_ref() => {
                pipeline::move_lead(tenant, id, LeadPlacement::at_end(stage), actor, now).await?;
                if other_fields.is_empty() {
                    return find(tenant, id).await;
                }
                find(tenant, id).await?
            }
            _ => lead,
        };
        let write = LeadWrite {
            stage_id: lead.stage_id.clone(),
            rank_key: lead.position.clone(),
            ..write
        };
        match store::update(tenant, id, lead.version, &write, now).await? {
            UpdateOutcome::Updated => {
                if let Some(from) = left_stage {
                    // The pipeline's convention: a stage change is a (0-point) interaction.
                    touchpoints::record(
                        tenant,
                        NewTouchpoint::stage_change(
                            id,
                            Some(&from),
                            None,
                            actor,
                            now,
                        ),
                        now,
                    )
                    .await?;
                }
                return find(tenant, id).await;
            }
            UpdateOutcome::Stale => match expected {
                Some(expected) => {
                    let current = find(tenant, id).await?;
                    return Err(Refused::Stale {
                        expected,
                        current: current.version,
                    });
                }
                None => continue,
            },
            UpdateOutcome::ProfileTaken => {
                return Err(Refused::conflict(
                    "a social profile in social_profiles already belongs to another lead; merge the two leads instead",
                ))
            }
        }
    }
    Err(Refused::conflict(
        "the lead kept changing concurrently; retry",
    ))
}

/// Writes the fields of `patch` that are not a stage change (owner, tags, contact details; no
/// custom fields) to `lead` as read, guarded by its version: `Stale` when another write came in
/// between. The cheap path of a change many leads get at once (`lead_bulk`): no re-reads, no
/// touchpoint. Returns the lead's new version.
pub async fn write_fields(
    tenant: &Tenant,
    lead: &LeadRecord,
    patch: &LeadPatch,
    now: DateTime<Utc>,
) -> Result<i64, Refused> {
    debug_assert!(patch.stage_id.is_keep() && patch.custom_fields.is_none());
    let (write, _) = apply_patch(lead, patch, &[])?;
    let write = LeadWrite {
        stage_id: lead.stage_id.clone(),
        rank_key: lead.position.clone(),
        ..write
    };
    match store::update(tenant, &lead.id, lead.version, &write, now).await? {
        UpdateOutcome::Updated => Ok(lead.version + 1),
        UpdateOutcome::Stale => {
            let current = find(tenant, &lead.id).await?;
            Err(Refused::Stale {
                expected: lead.version,
                current: current.version,
            })
        }
        UpdateOutcome::ProfileTaken => Err(Refused::conflict(
            "a social profile of the lead already belongs to another lead",
        )),
    }
}

/// Applies a validated patch to the current lead; also returns the stage the lead leaves when the
/// patch takes it out of the pipeline (`stage_id: null`).
fn apply_patch(
    lead: &LeadRecord,
    patch: &LeadPatch,
    defs: &[FieldDef],
) -> Result<(LeadWrite, Option<String>), Refused> {
    let mut errors = Vec::new();
    let custom = match &patch.custom_fields {
        None => lead.custom_fields_map(),
        Some(values) => match custom_fields::validate_values(values, defs) {
            Ok(validated) => {
                let merged = custom_fields::apply_patch(&lead.custom_fields_map(), &validated);
                errors.extend(custom_fields::missing_required(&merged, defs));
                errors.extend(custom_fields::check_values_size(&merged).err());
                merged
            }
            Err(found) => {
                errors.extend(found);
                lead.custom_fields_map()
            }
        },
    };
    if !errors.is_empty() {
        return Err(Refused::Invalid(errors));
    }
    let email = patch.email.clone().apply(lead.email.clone());
    let phone = patch.phone.clone().apply(lead.phone.clone());
    // A new stage is not written here: the move is `pipeline::move_lead`'s, like every move.
    let (stage_id, rank_key, left_stage) = match &patch.stage_id {
        Change::Clear if lead.stage_id.is_some() => (None, None, lead.stage_id.clone()),
        _ => (lead.stage_id.clone(), lead.position.clone(), None),
    };
    let tags = patch.tags.clone().unwrap_or_else(|| lead.tags.clone());
    let write = LeadWrite {
        first_name: patch.first_name.clone().apply(lead.first_name.clone()),
        last_name: patch.last_name.clone().apply(lead.last_name.clone()),
        email_normalized: email.as_deref().and_then(|e| normalize_email(e).ok()),
        email,
        phone_normalized: phone.as_deref().and_then(|p| normalize_phone(p).ok()),
        phone,
        company: patch.company.clone().apply(lead.company.clone()),
        title: patch.title.clone().apply(lead.title.clone()),
        source: patch
            .source
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| lead.source.clone()),
        source_detail: patch
            .source_detail
            .clone()
            .unwrap_or_else(|| lead.source_detail_map()),
        stage_id,
        rank_key,
        owner_id: patch.owner_id.clone().apply(lead.owner_id.clone()),
        tags_changed: tags != lead.tags,
        tags,
        custom_fields: custom,
        social_profiles: patch.social_profiles.clone(),
    };
    Ok((write, left_stage))
}

/// Merges the lead `source_id` into `target_id` (the target keeps its id; the source's
/// touchpoints, profiles and tags join it) and rescores the target. Returns the merged lead.
pub async fn merge(
    tenant: &Tenant,
    target_id: &str,
    source_id: &str,
    now: DateTime<Utc>,
) -> Result<LeadRecord, Refused> {
    if source_id == target_id {
        return Err(Refused::field(
            "source_lead_id",
            "a lead cannot be merged into itself",
        ));
    }
    let target = find(tenant, target_id).await?;
    let source = store::get(tenant, source_id)
        .await?
        .ok_or_else(|| Refused::not_found(format!("no lead {source_id}")))?;
    store::merge(tenant, &target, &source, now).await?;
    touchpoints::rescore(tenant, &target.id, now).await?;
    find(tenant, target_id).await
}

/// Erases the lead (`store::leads::delete` says what goes with it): an older event naming the
/// person is dropped from then on; a newer one creates a new lead.
pub async fn erase(tenant: &Tenant, id: &str, now: DateTime<Utc>) -> Result<(), Refused> {
    if store::delete(tenant, id, now).await? {
        Ok(())
    } else {
        Err(Refused::not_found(format!("no lead {id}")))
    }
}

/// Turns `cf.<key>=value` filters into typed SQL filters using the definitions.
pub fn custom_filters(query: &LeadQuery, defs: &[FieldDef]) -> Result<Vec<CustomFilter>, Refused> {
    let mut errors = Vec::new();
    let mut filters = Vec::new();
    for filter in &query.custom {
        let name = format!("cf.{}", filter.key);
        let Some(def) = defs.iter().find(|d| d.key == filter.key) else {
            errors.push(FieldError::new(name, "unknown custom field"));
            continue;
        };
        let path = format!("$.{}", def.key);
        let value = filter.value.clone();
        match def.field_type {
            FieldType::Number => match value.parse::<f64>() {
                Ok(number) if number.is_finite() => filters.push(CustomFilter::Equals {
                    path,
                    value: Arg::Real(number),
                }),
                _ => errors.push(FieldError::new(name, "must be a number")),
            },
            FieldType::Boolean => match value.as_str() {
                "true" => filters.push(CustomFilter::Equals {
                    path,
                    value: Arg::Int(1),
                }),
                "false" => filters.push(CustomFilter::Equals {
                    path,
                    value: Arg::Int(0),
                }),
                _ => errors.push(FieldError::new(name, "must be true or false")),
            },
            FieldType::Multiselect => filters.push(CustomFilter::Contains { path, value }),
            FieldType::Email => filters.push(CustomFilter::Equals {
                path,
                value: Arg::Text(value.trim().to_lowercase()),
            }),
            _ => filters.push(CustomFilter::Equals {
                path,
                value: Arg::Text(value),
            }),
        }
    }
    if errors.is_empty() {
        Ok(filters)
    } else {
        Err(Refused::Invalid(errors))
    }
}
