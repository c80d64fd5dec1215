//! Leads: create (with automatic matching), get, update (If-Match), delete (erasure), list
//! (filters, sorts, keyset cursors), merge, export and the heat explanation.

use leadheat_domain::custom_fields::{self, FieldDef};
use leadheat_domain::lead_query::{check_custom_filter_count, parse_lead_query, LeadQuery};
use leadheat_domain::leads::{self as domain, normalize_email, normalize_phone, Change, LeadPatch};
use leadheat_domain::scoring;
use leadheat_domain::types::{FieldError, FieldType};
use leadheat_edge::db::Arg;
use leadheat_edge::http::{self, Problem};
use leadheat_edge::store::custom_fields as defs_store;
use leadheat_edge::store::heat;
use leadheat_edge::store::interactions as interactions_store;
use leadheat_edge::store::leads::{
    self as store, CustomFilter, LeadRecord, LeadWrite, UpdateOutcome,
};
use leadheat_usecases::lead_matching;
use leadheat_usecases::pipeline::{self, LeadPlacement};
use leadheat_usecases::touchpoints::{self, NewTouchpoint};
use serde_json::{json, Map, Value};
use worker::Response;

use crate::context::{refused, Ctx};
use crate::request::ApiRequest;

/// Attempts of an update without If-Match that keeps losing to concurrent writers.
const UPDATE_ATTEMPTS: usize = 3;

/// The lead JSON with its version as the ETag.
pub fn lead_response(status: u16, lead: &LeadRecord) -> Result<Response, Problem> {
    let mut response = http::json(status, lead)?;
    response
        .headers_mut()
        .set("ETag", &format!("\"{}\"", lead.version))?;
    Ok(response)
}

/// Validates and normalizes custom field values of a create against the org's definitions.
fn create_custom_fields(
    values: &Map<String, Value>,
    defs: &[FieldDef],
) -> Result<Map<String, Value>, Vec<FieldError>> {
    let validated = custom_fields::validate_values(values, defs)?;
    let values: Map<String, Value> = validated
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .collect();
    let mut errors = custom_fields::missing_required(&values, defs);
    errors.extend(custom_fields::check_values_size(&values).err());
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

pub async fn create(req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    ctx.require_writer()?;
    let body: Value = req.json()?;
    let defs = defs_store::defs(&ctx.tenant).await?;
    let mut errors = Vec::new();
    let input = match domain::parse_create(&body) {
        Ok(input) => Some(input),
        Err(mut found) => {
            errors.append(&mut found);
            None
        }
    };
    // Custom fields are checked even when other fields failed, so one answer names every field.
    let raw_custom = body
        .get("custom_fields")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let custom = match create_custom_fields(&raw_custom, &defs) {
        Ok(values) => values,
        Err(mut found) => {
            errors.append(&mut found);
            Map::new()
        }
    };
    let Some(mut input) = input.filter(|_| errors.is_empty()) else {
        return Err(Problem::validation(errors));
    };
    input.custom_fields = custom;
    let (lead, outcome) = lead_matching::match_or_create(&ctx.tenant, input, ctx.now).await?;
    let mut response = lead_response(if outcome.created() { 201 } else { 200 }, &lead)?;
    response
        .headers_mut()
        .set("Leadheat-Match", outcome.as_str())?;
    response
        .headers_mut()
        .set("Location", &format!("/v1/leads/{}", lead.id))?;
    Ok(response)
}

/// A lead of the caller's org, or 404 (also for another org's lead).
async fn find(ctx: &Ctx, id: &str) -> Result<LeadRecord, Problem> {
    if let Some(lead) = store::get(&ctx.tenant, id).await? {
        return Ok(lead);
    }
    match store::merged_into(&ctx.tenant, id).await? {
        Some(into) => Err(Problem::not_found(format!(
            "lead {id} was merged into lead {into}"
        ))),
        None => Err(Problem::not_found(format!("no lead {id}"))),
    }
}

pub async fn get(_req: &ApiRequest, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    let lead = find(ctx, id).await?;
    lead_response(200, &lead)
}

/// `If-Match: 3`, `"3"`, `W/"3"` or `*`; `Ok(None)` without the header or for `*`.
fn if_match(req: &ApiRequest) -> Result<Option<i64>, Problem> {
    let Some(raw) = req.header("If-Match") else {
        return Ok(None);
    };
    let raw = raw.trim();
    if raw == "*" {
        return Ok(None);
    }
    let bare = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
    bare.parse::<i64>().map(Some).map_err(|_| {
        Problem::precondition_failed(format!(
            "If-Match must carry the lead's version, e.g. If-Match: \"3\"; got {raw}"
        ))
    })
}

fn stale(expected: i64, current: i64) -> Problem {
    Problem::precondition_failed(format!(
        "the lead changed: If-Match has version {expected} but the current version is {current}; reload and retry"
    ))
}

/// Applies a validated patch to the current lead; also returns the stage the lead leaves when the
/// patch takes it out of the pipeline (`stage_id: null`).
fn apply_patch(
    lead: &LeadRecord,
    patch: &LeadPatch,
    defs: &[FieldDef],
) -> Result<(LeadWrite, Option<String>), Problem> {
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
        return Err(Problem::validation(errors));
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

pub async fn update(req: &ApiRequest, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    ctx.require_writer()?;
    let expected = if_match(req)?;
    let body: Value = req.json()?;
    let patch = domain::parse_patch(&body).map_err(Problem::validation)?;
    let defs = defs_store::defs(&ctx.tenant).await?;
    let other_fields = LeadPatch {
        stage_id: Change::Keep,
        ..patch.clone()
    };
    for _ in 0..UPDATE_ATTEMPTS {
        let lead = find(ctx, id).await?;
        if let Some(expected) = expected {
            if expected != lead.version {
                return Err(stale(expected, lead.version));
            }
        }
        if patch.is_empty() {
            return lead_response(200, &lead);
        }
        let (write, left_stage) = apply_patch(&lead, &patch, &defs)?;
        let lead = match &patch.stage_id {
            // The move first, with its touchpoint in one batch (every field is validated above);
            // a retry after a concurrent write finds the lead moved already.
            Change::Set(stage) if Some(stage) != lead.stage_id.as_ref() => {
                pipeline::move_lead(
                    &ctx.tenant,
                    id,
                    LeadPlacement::at_end(stage),
                    &ctx.claims.sub,
                    ctx.now,
                )
                .await
                .map_err(refused)?;
                if other_fields.is_empty() {
                    return lead_response(200, &find(ctx, id).await?);
                }
                find(ctx, id).await?
            }
            _ => lead,
        };
        let write = LeadWrite {
            stage_id: lead.stage_id.clone(),
            rank_key: lead.position.clone(),
            ..write
        };
        match store::update(&ctx.tenant, id, lead.version, &write, ctx.now).await? {
            UpdateOutcome::Updated => {
                if let Some(from) = left_stage {
                    // The pipeline's convention: a stage change is a (0-point) interaction.
                    touchpoints::record(
                        &ctx.tenant,
                        NewTouchpoint::stage_change(
                            id,
                            Some(&from),
                            None,
                            &ctx.claims.sub,
                            ctx.now,
                        ),
                        ctx.now,
                    )
                    .await?;
                }
                let lead = find(ctx, id).await?;
                return lead_response(200, &lead);
            }
            UpdateOutcome::Stale => match expected {
                Some(expected) => {
                    let current = find(ctx, id).await?;
                    return Err(stale(expected, current.version));
                }
                None => continue,
            },
            UpdateOutcome::ProfileTaken => {
                return Err(Problem::conflict(
                    "a social profile in social_profiles already belongs to another lead; merge the two leads instead",
                ))
            }
        }
    }
    Err(Problem::conflict(
        "the lead kept changing concurrently; retry",
    ))
}

/// `DELETE /v1/leads/{id}`: the erasure (`store::leads::delete` says what goes with it). An older
/// event naming the person is dropped from then on; a newer one creates a new lead.
pub async fn delete(_req: &ApiRequest, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    ctx.require_writer()?;
    if store::delete(&ctx.tenant, id, ctx.now).await? {
        http::no_content()
    } else {
        Err(Problem::not_found(format!("no lead {id}")))
    }
}

/// Turns `cf.<key>=value` filters into typed SQL filters using the definitions.
fn custom_filters(query: &LeadQuery, defs: &[FieldDef]) -> Result<Vec<CustomFilter>, Problem> {
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
        Err(Problem::validation(errors))
    }
}

pub async fn list(req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    // Too many custom field filters: a query the store cannot run (D1's parameter limit).
    check_custom_filter_count(&req.query)
        .map_err(|error| Problem::bad_request(error.to_string()).with_errors(vec![error]))?;
    let query = parse_lead_query(&req.query).map_err(Problem::validation)?;
    let custom = if query.custom.is_empty() {
        Vec::new()
    } else {
        let defs = defs_store::defs(&ctx.tenant).await?;
        custom_filters(&query, &defs)?
    };
    let page = store::list(&ctx.tenant, &query, &custom).await?;
    http::json(
        200,
        &json!({"items": page.items, "next_cursor": page.next_cursor}),
    )
}

pub async fn merge(req: &ApiRequest, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    ctx.require_writer()?;
    let body: Value = req.json()?;
    let source_id = match body.get("source_lead_id") {
        Some(Value::String(source)) if !source.trim().is_empty() => source.trim().to_string(),
        _ => {
            return Err(Problem::field(
                "source_lead_id",
                "is required: the id of the lead to merge into this one",
            ))
        }
    };
    if let Some(object) = body.as_object() {
        let unknown: Vec<FieldError> = object
            .keys()
            .filter(|k| k.as_str() != "source_lead_id")
            .map(|k| FieldError::new(k.clone(), "unknown field"))
            .collect();
        if !unknown.is_empty() {
            return Err(Problem::validation(unknown));
        }
    }
    if source_id == id {
        return Err(Problem::field(
            "source_lead_id",
            "a lead cannot be merged into itself",
        ));
    }
    let target = find(ctx, id).await?;
    let source = store::get(&ctx.tenant, &source_id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no lead {source_id}")))?;
    store::merge(&ctx.tenant, &target, &source, ctx.now).await?;
    touchpoints::rescore(&ctx.tenant, &target.id, ctx.now).await?;
    let lead = find(ctx, id).await?;
    let mut response = lead_response(200, &lead)?;
    response.headers_mut().set("Leadheat-Merged", &source_id)?;
    Ok(response)
}

pub async fn export(_req: &ApiRequest, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    let lead = find(ctx, id).await?;
    let interactions = interactions_store::all_for_lead(&ctx.tenant, id).await?;
    let snapshots = heat::snapshots_of_lead(&ctx.tenant, id).await?;
    let level_changes = heat::level_changes_of_lead(&ctx.tenant, id).await?;
    let merged = store::merged_into_lead(&ctx.tenant, id).await?;
    let mut response = http::json(
        200,
        &json!({
            "exported_at": ctx.now_rfc3339(),
            "lead": lead,
            "interactions": interactions,
            "social_profiles": lead.social_profiles,
            "heat_snapshots": snapshots,
            "heat_level_changes": level_changes,
            "merged_leads": merged,
        }),
    )?;
    response.headers_mut().set(
        "Content-Disposition",
        &format!("attachment; filename=\"lead-{id}.json\""),
    )?;
    Ok(response)
}

pub async fn heat(_req: &ApiRequest, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    let lead = find(ctx, id).await?;
    let (config, config_version) = touchpoints::scoring_config(&ctx.tenant).await?;
    let touches = interactions_store::touches(&ctx.tenant, &lead.id).await?;
    let heat = scoring::score(&touches, &config, ctx.now);
    http::json(
        200,
        &json!({
            "lead_id": lead.id,
            "score": leadheat_edge::http::compact_number(heat.score),
            "level": heat.level,
            "breakdown": heat.breakdown,
            "config_version": config_version,
            "thresholds": config.thresholds,
            "decay_half_life_days": config.decay_half_life_days,
        }),
    )
}
