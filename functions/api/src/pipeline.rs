//! The pipeline: stages (list, create, rename, reorder, delete when empty), the board (each stage
//! with a page of its leads in position order) and moving a lead, which writes a `stage_change`
//! touchpoint in the same transaction.
//!
//! Positions are fractional keys (`leadheat_domain::ranking`): a move writes one key between the
//! new neighbours and never renumbers the column.

use leadheat_domain::cursor::Cursor;
use leadheat_domain::pipeline::{self as rules, MAX_STAGES};
use leadheat_domain::ranking;
use leadheat_domain::types::FieldError;
use leadheat_edge::http::{self, Problem};
use leadheat_edge::store::stages::{
    self, CardRow, ColumnPage, NewStage, Outcome, Position, StageRow,
};
use leadheat_edge::{clock, touchpoints};
use serde_json::{json, Map, Value};
use worker::Response;

use crate::context::Ctx;
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
        _ => Err(Problem::field("body", "must be a JSON object")),
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

fn refuse_unknown(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), Problem> {
    let unknown: Vec<FieldError> = body
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| FieldError::new(k.clone(), "is not a field of this request"))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Problem::validation(unknown))
    }
}

fn rank_problem(error: ranking::RankError) -> Problem {
    Problem::internal("ranking", error)
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
    let existing = stages::list(&ctx.tenant).await?;
    if existing.len() >= MAX_STAGES {
        return Err(Problem::conflict(format!(
            "an org has at most {MAX_STAGES} stages"
        )));
    }
    let index_of = |field: &str, id: Option<&str>| -> Result<Option<usize>, Problem> {
        match id {
            None => Ok(None),
            Some(id) => existing
                .iter()
                .position(|s| s.id == id)
                .map(Some)
                .ok_or_else(|| Problem::field(field, format!("{id} is not a stage of this org"))),
        }
    };
    let before = index_of("before_stage_id", opt_str(&body, "before_stage_id")?)?;
    let after = index_of("after_stage_id", opt_str(&body, "after_stage_id")?)?;
    let key = |i: usize| existing[i].rank_key.as_str();
    let (low, high) = match (after, before) {
        (Some(a), Some(b)) if a >= b => {
            return Err(Problem::field(
                "before_stage_id",
                "after_stage_id must come before before_stage_id",
            ))
        }
        (Some(a), Some(b)) => (Some(key(a)), Some(key(b))),
        (Some(a), None) => (
            Some(key(a)),
            existing.get(a + 1).map(|s| s.rank_key.as_str()),
        ),
        (None, Some(b)) => (b.checked_sub(1).map(key), Some(key(b))),
        (None, None) => (existing.last().map(|s| s.rank_key.as_str()), None),
    };
    let rank_key = ranking::between(low, high).map_err(rank_problem)?;
    let id = clock::new_id(leadheat_domain::ids::prefix::STAGE);
    let now = ctx.now_rfc3339();
    let created = stages::create(
        &ctx.tenant,
        &NewStage {
            id: &id,
            name: &name,
            rank_key: &rank_key,
            is_closed,
            is_won,
            now: &now,
        },
    )
    .await?;
    if !created {
        return Err(Problem::conflict(format!(
            "a stage named \"{name}\" already exists"
        )));
    }
    let stages = stages::list(&ctx.tenant).await?;
    let (position, stage) = stages
        .iter()
        .enumerate()
        .find(|(_, s)| s.id == id)
        .ok_or_else(|| Problem::internal("create stage", "the new stage is missing"))?;
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
    let before_id = opt_str(&body, "before_lead_id")?;
    let after_id = opt_str(&body, "after_lead_id")?;
    for (field, neighbour) in [("before_lead_id", before_id), ("after_lead_id", after_id)] {
        if neighbour == Some(id) {
            return Err(Problem::field(
                field,
                "a lead cannot be placed next to itself",
            ));
        }
    }

    let from: Position = stages::position(&ctx.tenant, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no lead {id}")))?;
    if stages::get(&ctx.tenant, &stage_id).await?.is_none() {
        return Err(Problem::field(
            "stage_id",
            format!("{stage_id} is not a stage of this org"),
        ));
    }
    let before = neighbour(ctx, &stage_id, "before_lead_id", before_id).await?;
    let after = neighbour(ctx, &stage_id, "after_lead_id", after_id).await?;
    // The keys to fit between: (low = the lead it follows, high = the lead it precedes).
    let (low, high) = match (after, before) {
        (Some((low, _)), Some((high, _))) => (Some(low), Some(high)),
        (Some((rank, lead)), None) => {
            let next =
                stages::neighbour_rank(&ctx.tenant, &stage_id, Some((&rank, &lead)), false, id)
                    .await?;
            (Some(rank), next)
        }
        (None, Some((rank, lead))) => {
            let previous =
                stages::neighbour_rank(&ctx.tenant, &stage_id, Some((&rank, &lead)), true, id)
                    .await?;
            (previous, Some(rank))
        }
        (None, None) => {
            let last = stages::neighbour_rank(&ctx.tenant, &stage_id, None, true, id).await?;
            (last, None)
        }
    };
    let rank_key = match (&low, &high) {
        // Two leads share a key (concurrent moves into one gap): nothing fits between; the client
        // retries after reading the board, where the tie is ordered by id.
        (Some(l), Some(h)) if l == h => {
            return Err(Problem::conflict(
                "the neighbours share a position; reload the board and retry",
            ))
        }
        _ => rules::key_between(low.as_deref(), high.as_deref())
            .map_err(|e| Problem::validation(vec![e]))?,
    };

    // The move and its stage_change touchpoint are one batch: the touchpoint is only written if
    // the guarded move applied, and a failure of either leaves the lead where it was.
    let now = ctx.now_rfc3339();
    let moved = stages::move_lead_statement(&ctx.tenant, id, &from, &stage_id, &rank_key, &now)?;
    let touch = touchpoints::NewTouchpoint::stage_change(
        id,
        from.stage_id.as_deref(),
        Some(&stage_id),
        &ctx.claims.sub,
        ctx.now,
    );
    match touchpoints::record_after(&ctx.tenant, moved, touch, ctx.now).await? {
        Some(recorded) => http::json(200, &recorded.lead),
        None => Err(Problem::conflict(
            "the lead was moved concurrently; reload and retry",
        )),
    }
}

/// A neighbour's (rank_key, id), which must sit in the target stage (422 naming `field` if not).
async fn neighbour(
    ctx: &Ctx,
    stage_id: &str,
    field: &str,
    neighbour_id: Option<&str>,
) -> Result<Option<(String, String)>, Problem> {
    let Some(neighbour_id) = neighbour_id else {
        return Ok(None);
    };
    match stages::position(&ctx.tenant, neighbour_id).await? {
        Some(Position {
            stage_id: Some(s),
            rank_key: Some(rank),
            id,
        }) if s == stage_id => Ok(Some((rank, id))),
        _ => Err(Problem::field(
            field,
            format!("{neighbour_id} is not a lead in stage {stage_id}"),
        )),
    }
}
