//! The pipeline: stages (list, create, rename, reorder, delete when empty), the board (each stage
//! with a page of its leads in position order) and moving a lead, which writes a `stage_change`
//! touchpoint in the same transaction.
//!
//! Positions are fractional keys (`leadheat_domain::ranking`): a move writes one key between the
//! new neighbours and never renumbers the column.

use leadheat_domain::body::{self, Fields};
use leadheat_domain::cursor::Cursor;
use leadheat_domain::pipeline as rules;
use leadheat_domain::ranking;
use leadheat_edge::http::{self, Problem};
use leadheat_edge::store::stages::{self, CardRow, ColumnPage, Outcome, StageRow};
use leadheat_usecases::pipeline::{self, LeadPlacement, StageRequest};
use serde_json::{json, Map, Value};
use worker::Response;

use crate::context::{refused, Ctx};
use crate::request::ApiRequest;

fn stage_json(stage: &StageRow, position: usize) -> Value {
    json!({
        "id": stage.id,
        "name": stage.name,
        "position": position,
        "is_closed": stage.is_closed != 0,
        "is_won": stage.is_won != 0,
        "lead_count": stage.lead_count,
    })
}

fn stages_json(stages: &[StageRow]) -> Value {
    json!({"items": stages.iter().enumerate().map(|(i, s)| stage_json(s, i)).collect::<Vec<_>>()})
}

fn card_json(card: &CardRow) -> Value {
    json!({
        "id": card.id,
        "stage_id": card.stage_id,
        "first_name": card.first_name,
        "last_name": card.last_name,
        "company": card.company,
        "heat_score": http::compact_number(card.heat_score),
        "heat_level": card.heat_level,
        "heat_trend": http::compact_number(card.heat_trend),
        "position": card.rank_key,
    })
}

/// The body as a JSON object (415 / 400 / 422 as `ApiRequest::json`).
fn object(req: &ApiRequest) -> Result<Map<String, Value>, Problem> {
    match req.json::<Value>()? {
        Value::Object(map) => Ok(map),
        _ => Err(Problem::field("body", body::NOT_AN_OBJECT)),
    }
}

/// An optional string field: absent or null → None; a non-string → 422.
fn opt_str<'a>(body: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, Problem> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(Problem::field(field, "must be a string")),
    }
}

fn opt_bool(body: &Map<String, Value>, field: &str) -> Result<Option<bool>, Problem> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Problem::field(field, "must be true or false")),
    }
}

fn refuse_unknown(object: &Map<String, Value>, allowed: &[&str]) -> Result<(), Problem> {
    let unknown = body::unknown_fields(object, Fields::exactly(allowed), "");
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Problem::validation(unknown))
    }
}

pub async fn list_stages(_req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    let stages = stages::list(&ctx.tenant).await?;
    http::json(200, &stages_json(&stages))
}

pub async fn create_stage(req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    ctx.require_admin()?;
    let body = object(req)?;
    refuse_unknown(
        &body,
        &[
            "name",
            "before_stage_id",
            "after_stage_id",
            "is_closed",
            "is_won",
        ],
    )?;
    let name = match opt_str(&body, "name")? {
        Some(name) => {
            rules::validate_stage_name("name", name).map_err(|e| Problem::validation(vec![e]))?
        }
        None => return Err(Problem::field("name", "is required")),
    };
    let is_won = opt_bool(&body, "is_won")?.unwrap_or(false);
    let is_closed = match opt_bool(&body, "is_closed")? {
        Some(false) if is_won => {
            return Err(Problem::field(
                "is_won",
                "a won stage is closed; set is_closed too",
            ))
        }
        Some(closed) => closed,
        None => is_won,
    };
    let (position, stage) = pipeline::create_stage(
        &ctx.tenant,
        StageRequest {
            name: &name,
            is_closed,
            is_won,
            before_stage_id: opt_str(&body, "before_stage_id")?,
            after_stage_id: opt_str(&body, "after_stage_id")?,
        },
        ctx.now,
    )
    .await
    .map_err(refused)?;
    let id = stage.id.clone();
    let stage = &stage;
    let mut response = http::json(201, &stage_json(stage, position))?;
    response
        .headers_mut()
        .set("Location", &format!("/v1/pipeline/stages/{id}"))?;
    Ok(response)
}

pub async fn update_stage(req: &ApiRequest, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    ctx.require_admin()?;
    let body = object(req)?;
    refuse_unknown(&body, &["name", "is_closed", "is_won"])?;
    let name = match opt_str(&body, "name")? {
        Some(name) => Some(
            rules::validate_stage_name("name", name).map_err(|e| Problem::validation(vec![e]))?,
        ),
        None => None,
    };
    let is_closed = opt_bool(&body, "is_closed")?;
    let is_won = opt_bool(&body, "is_won")?;
    if name.is_none() && is_closed.is_none() && is_won.is_none() {
        return Err(Problem::field(
            "name",
            "send at least one of name, is_closed, is_won",
        ));
    }
    let current = stages::get(&ctx.tenant, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no stage {id}")))?;
    let won = is_won.unwrap_or(current.is_won != 0);
    let closed = is_closed.unwrap_or(current.is_closed != 0 || is_won == Some(true));
    if won && !closed {
        return Err(Problem::field(
            "is_won",
            "a won stage is closed; it cannot be open",
        ));
    }
    match stages::update(
        &ctx.tenant,
        id,
        name.as_deref(),
        Some(closed),
        Some(won),
        &ctx.now_rfc3339(),
    )
    .await?
    {
        Outcome::Done => {}
        Outcome::NotFound => return Err(Problem::not_found(format!("no stage {id}"))),
        Outcome::Conflict => {
            return Err(Problem::conflict(format!(
                "a stage named \"{}\" already exists",
                name.unwrap_or_default()
            )))
        }
    }
    let stages = stages::list(&ctx.tenant).await?;
    let (position, stage) = stages
        .iter()
        .enumerate()
        .find(|(_, s)| s.id == id)
        .ok_or_else(|| Problem::not_found(format!("no stage {id}")))?;
    http::json(200, &stage_json(stage, position))
}

pub async fn delete_stage(_req: &ApiRequest, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    ctx.require_admin()?;
    match stages::delete(&ctx.tenant, id).await? {
        Outcome::Done => http::no_content(),
        Outcome::NotFound => Err(Problem::not_found(format!("no stage {id}"))),
        Outcome::Conflict => Err(Problem::conflict(
            "only an empty stage can be deleted, and not the last one: move its leads first",
        )),
    }
}

pub async fn reorder_stages(req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    ctx.require_admin()?;
    let body = object(req)?;
    refuse_unknown(&body, &["stage_ids"])?;
    let requested: Vec<String> = match body.get("stage_ids") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Problem::field("stage_ids", "must be an array of stage ids"))?,
        _ => {
            return Err(Problem::field(
                "stage_ids",
                "is required: every stage id in the new order",
            ))
        }
    };
    let existing = stages::list(&ctx.tenant).await?;
    let existing_ids: Vec<String> = existing.iter().map(|s| s.id.clone()).collect();
    rules::validate_reorder(&existing_ids, &requested).map_err(|e| Problem::validation(vec![e]))?;
    let ranks: Vec<(String, String)> = requested
        .into_iter()
        .zip(ranking::evenly_spaced(existing_ids.len()))
        .collect();
    stages::set_ranks(&ctx.tenant, &ranks, &ctx.now_rfc3339()).await?;
    let stages = stages::list(&ctx.tenant).await?;
    http::json(200, &stages_json(&stages))
}

fn board_sort(stage_id: &str) -> String {
    format!("board:{stage_id}")
}

/// `GET /v1/pipeline/board?limit=&stage_id=&cursor=`: every stage with the first page of its leads,
/// or (with `stage_id` and that column's `cursor`) the next page of one column.
pub async fn board(req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    let limit = rules::parse_limit(req.query("limit")).map_err(|e| Problem::validation(vec![e]))?;
    let all = stages::list(&ctx.tenant).await?;
    let only = req.query("stage_id");
    let cursor = match req.query("cursor") {
        None => None,
        Some(raw) => {
            let Some(stage_id) = only else {
                return Err(Problem::field(
                    "stage_id",
                    "a column cursor needs the column's stage_id",
                ));
            };
            let cursor = Cursor::decode_for(raw, &board_sort(stage_id), 1)
                .map_err(|e| Problem::field("cursor", e.to_string()))?;
            let rank = cursor.key[0]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| Problem::field("cursor", "the cursor is malformed"))?;
            Some((rank, cursor.id))
        }
    };
    let columns: Vec<(usize, &StageRow)> = all
        .iter()
        .enumerate()
        .filter(|(_, s)| only.is_none_or(|id| s.id == id))
        .collect();
    if let (Some(id), true) = (only, columns.is_empty()) {
        return Err(Problem::field(
            "stage_id",
            format!("{id} is not a stage of this org"),
        ));
    }
    let pages: Vec<ColumnPage<'_>> = columns
        .iter()
        .map(|(_, stage)| ColumnPage {
            stage_id: &stage.id,
            after: cursor
                .as_ref()
                .map(|(rank, id)| (rank.as_str(), id.as_str())),
            // One more than the page, to know whether another page follows.
            limit: limit + 1,
        })
        .collect();
    let results = stages::board_pages(&ctx.tenant, &pages).await?;
    let stages_out: Vec<Value> = columns
        .iter()
        .zip(results)
        .map(|((position, stage), mut cards)| {
            let next_cursor = if cards.len() > limit {
                cards.truncate(limit);
                cards.last().map(|last| {
                    Cursor::new(board_sort(&stage.id), vec![json!(last.rank_key)], &last.id)
                        .encode()
                })
            } else {
                None
            };
            let mut column = stage_json(stage, *position);
            column["leads"] = json!(cards.iter().map(card_json).collect::<Vec<_>>());
            column["next_cursor"] = json!(next_cursor);
            column
        })
        .collect();
    http::json(200, &json!({"stages": stages_out}))
}

/// `POST /v1/leads/{id}/move` `{"stage_id", "before_lead_id"?, "after_lead_id"?}`: the lead goes
/// into the stage right before `before_lead_id` and/or right after `after_lead_id` (at the end of
/// the column when neither is given).
pub async fn move_lead(req: &ApiRequest, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    ctx.require_writer()?;
    let body = object(req)?;
    refuse_unknown(&body, &["stage_id", "before_lead_id", "after_lead_id"])?;
    let stage_id = opt_str(&body, "stage_id")?
        .ok_or_else(|| Problem::field("stage_id", "is required"))?
        .to_string();
    let placement = LeadPlacement {
        stage_id: &stage_id,
        before_lead_id: opt_str(&body, "before_lead_id")?,
        after_lead_id: opt_str(&body, "after_lead_id")?,
    };
    let lead = pipeline::move_lead(&ctx.tenant, id, placement, &ctx.claims.sub, ctx.now)
        .await
        .map_err(refused)?;
    http::json(200, &lead)
}
