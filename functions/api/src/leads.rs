//! Leads: create (with automatic matching), get, update (If-Match), delete (erasure), list
//! (filters, sorts, keyset cursors), merge, export and the heat explanation.

use leadheat_domain::body::Fields;
use leadheat_domain::custom_fields::{self, FieldDef};
use leadheat_domain::lead_bulk::{self, ItemStatus};
use leadheat_domain::lead_query::{check_custom_filter_count, parse_lead_query};
use leadheat_domain::leads::{self as domain};
use leadheat_domain::scoring;
use leadheat_domain::types::FieldError;
use leadheat_edge::http::{self, Problem};
use leadheat_edge::store::custom_fields as defs_store;
use leadheat_edge::store::heat;
use leadheat_edge::store::interactions as interactions_store;
use leadheat_edge::store::leads::{self as store, LeadRecord};
use leadheat_usecases::lead_bulk::{self as bulk_op, BulkItem};
use leadheat_usecases::lead_matching;
use leadheat_usecases::leads;
use leadheat_usecases::touchpoints::{self};
use serde_json::{json, Map, Value};
use worker::Response;

use crate::context::{refused, Ctx};
use crate::request::ApiRequest;

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
    leads::find(&ctx.tenant, id).await.map_err(refused)
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

pub async fn update(req: &ApiRequest, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    ctx.require_writer()?;
    let expected = if_match(req)?;
    let body: Value = req.json()?;
    let patch = domain::parse_patch(&body).map_err(Problem::validation)?;
    let lead = leads::patch(&ctx.tenant, id, expected, &patch, &ctx.claims.sub, ctx.now)
        .await
        .map_err(refused)?;
    lead_response(200, &lead)
}

/// `DELETE /v1/leads/{id}`: the erasure (`store::leads::delete` says what goes with it). An older
/// event naming the person is dropped from then on; a newer one creates a new lead.
pub async fn delete(_req: &ApiRequest, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    ctx.require_writer()?;
    leads::erase(&ctx.tenant, id, ctx.now)
        .await
        .map_err(refused)?;
    http::no_content()
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
        leads::custom_filters(&query, &defs).map_err(refused)?
    };
    let page = store::list(&ctx.tenant, &query, &custom).await?;
    http::json(
        200,
        &json!({"items": page.items, "next_cursor": page.next_cursor}),
    )
}

/// `POST /v1/leads/bulk`: one action over up to 100 leads, each lead's outcome in `results`
/// (`ok`, `not_found` for an id that is not a lead of the org, `error` with its `detail`).
pub async fn bulk(req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    ctx.require_writer()?;
    let body: Value = req.json()?;
    let request = lead_bulk::parse_bulk(&body).map_err(Problem::validation)?;
    let items = bulk_op::apply(&ctx.tenant, &request, &ctx.claims.sub, ctx.now)
        .await
        .map_err(refused)?;
    let count = |status: ItemStatus| items.iter().filter(|i| i.status == status).count();
    let counts = json!({
        "ok": count(ItemStatus::Ok),
        "not_found": count(ItemStatus::NotFound),
        "error": count(ItemStatus::Error),
    });
    let results: Vec<Value> = items.iter().map(bulk_item_json).collect();
    http::json(200, &json!({"results": results, "counts": counts}))
}

fn bulk_item_json(item: &BulkItem) -> Value {
    let mut out = json!({"id": item.id, "status": item.status.as_str()});
    if let Some(version) = item.version {
        out["version"] = json!(version);
    }
    if let Some(detail) = &item.detail {
        out["detail"] = json!(detail);
    }
    out
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
        let fields = Fields::exactly(&["source_lead_id"]);
        let unknown = leadheat_domain::body::unknown_fields(object, fields, "");
        if !unknown.is_empty() {
            return Err(Problem::validation(unknown));
        }
    }
    let lead = leads::merge(&ctx.tenant, id, &source_id, ctx.now)
        .await
        .map_err(refused)?;
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
