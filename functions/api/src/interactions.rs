//! Touchpoints: manual entry for a lead, a lead's timeline and the org's social feed.

use chrono::{DateTime, Utc};
use leadheat_domain::body::{self, Fields};
use leadheat_domain::lead_query::parse_interaction_query;
use leadheat_domain::types::{CapturedBy, FieldError, InteractionType, Platform};
use leadheat_edge::http::{self, Problem};
use leadheat_edge::store::interactions as store;
use leadheat_edge::store::leads as leads_store;
use leadheat_usecases::touchpoints::{self, NewTouchpoint};
use serde_json::{json, Value};
use worker::Response;

use crate::context::Ctx;
use crate::request::ApiRequest;

const FIELDS: &[&str] = &["type", "platform", "occurred_at", "metadata", "external_id"];

/// Validates `{"type","platform","occurred_at"?,"metadata"?,"external_id"?}`.
fn parse_body(
    body: &Value,
    lead_id: &str,
    now: DateTime<Utc>,
) -> Result<NewTouchpoint, Vec<FieldError>> {
    let (object, mut errors) = body::parse(body, Fields::exactly(FIELDS))?;
    let kind = match object.get("type").and_then(Value::as_str) {
        Some(text) => text
            .parse::<InteractionType>()
            .map_err(|e| errors.push(FieldError::new("type", e.to_string())))
            .ok(),
        None => {
            errors.push(FieldError::new(
                "type",
                format!(
                    "is required: one of {}",
                    InteractionType::WIRE_NAMES.join(", ")
                ),
            ));
            None
        }
    };
    let platform = match object.get("platform").and_then(Value::as_str) {
        Some(text) => text
            .parse::<Platform>()
            .map_err(|e| errors.push(FieldError::new("platform", e.to_string())))
            .ok(),
        None => {
            errors.push(FieldError::new(
                "platform",
                format!("is required: one of {}", Platform::WIRE_NAMES.join(", ")),
            ));
            None
        }
    };
    let occurred_at = match object.get("occurred_at") {
        None | Some(Value::Null) => Some(now),
        Some(Value::String(text)) => match DateTime::parse_from_rfc3339(text) {
            Ok(at) => Some(at.with_timezone(&Utc)),
            Err(_) => {
                errors.push(FieldError::new(
                    "occurred_at",
                    "must be an RFC 3339 time, e.g. 2026-03-01T12:00:00Z",
                ));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new(
                "occurred_at",
                "must be an RFC 3339 time string",
            ));
            None
        }
    };
    let metadata = match object.get("metadata") {
        None | Some(Value::Null) => json!({}),
        Some(Value::Object(map)) => Value::Object(map.clone()),
        Some(_) => {
            errors.push(FieldError::new("metadata", "must be a JSON object"));
            Value::Null
        }
    };
    let external_id = match object.get("external_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if !text.trim().is_empty() && text.len() <= 512 => {
            Some(text.trim().to_string())
        }
        Some(_) => {
            errors.push(FieldError::new(
                "external_id",
                "must be a non-empty string of at most 512 characters",
            ));
            None
        }
    };
    match (kind, platform, occurred_at) {
        (Some(kind), Some(platform), Some(occurred_at)) if errors.is_empty() => Ok(NewTouchpoint {
            lead_id: lead_id.to_string(),
            kind,
            platform,
            occurred_at,
            captured_by: CapturedBy::Manual,
            external_id,
            metadata,
        }),
        _ => Err(errors),
    }
}

pub async fn create(req: &ApiRequest, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    ctx.require_writer()?;
    let body: Value = req.json()?;
    // 404 before 422: a missing lead is the more fundamental problem.
    leads_store::require(&ctx.tenant, id).await?;
    let touch = parse_body(&body, id, ctx.now).map_err(Problem::validation)?;
    let recorded = touchpoints::record(&ctx.tenant, touch, ctx.now).await?;
    let status = if recorded.duplicate { 200 } else { 201 };
    let mut response = http::json(
        status,
        &json!({"interaction": recorded.interaction, "lead": recorded.lead, "duplicate": recorded.duplicate}),
    )?;
    if !recorded.duplicate {
        response.headers_mut().set(
            "Location",
            &format!("/v1/leads/{}/timeline", recorded.interaction.lead_id),
        )?;
    }
    Ok(response)
}

pub async fn timeline(req: &ApiRequest, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    let query = parse_interaction_query(&req.query, false).map_err(Problem::validation)?;
    leads_store::require(&ctx.tenant, id).await?;
    let page = store::timeline(&ctx.tenant, id, &query).await?;
    http::json(
        200,
        &json!({"items": page.items, "next_cursor": page.next_cursor}),
    )
}

pub async fn feed(req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    let query = parse_interaction_query(&req.query, true).map_err(Problem::validation)?;
    let page = store::feed(&ctx.tenant, &query).await?;
    http::json(
        200,
        &json!({"items": page.items, "next_cursor": page.next_cursor}),
    )
}
