//! The operator routes (`/ops/*`, wrangler.toml route `leadheat.example.com/ops/*`): shard moves
//! and rollup rebuilds.
//!
//! - `POST /ops/orgs/{org}/move` with `{"to": k}` starts moving the org to shard `k` and advances
//!   the move within this invocation (202 with its state); 404 for an org the directory does not
//!   know, 422 for a shard that does not exist or is the org's own, 409 while the org is moving.
//! - `GET /ops/orgs/{org}/move`: the org's latest move (404 when it never moved).
//! - `POST /ops/moves/advance`: advances the unfinished moves within this invocation.
//! - `POST /ops/orgs/{org}/rollups/rebuild`: recomputes the org's dashboard rollups from its rows
//!   (docs/dashboard.md), 200 with what it did; 404 for an org the directory does not know, 409
//!   while the org is moving.
//!
//! Every route needs `Authorization: Bearer <OPS_TOKEN>`. Errors are problem+json.

use leadheat_domain::auth::bearer_token;
use leadheat_domain::sharding::{check_target, grace_secs_from_var, ops_token_matches};
use leadheat_domain::types::FieldError;
use leadheat_edge::db::{self, StoreError};
use leadheat_edge::directory::moves::{self, Advanced, StartRefused};
use leadheat_edge::directory::Directory;
use leadheat_edge::http::{self, Problem};
use leadheat_edge::store::dashboard;
use leadheat_edge::{clock, config};
use serde_json::{json, Value};
use worker::{Env, Method, Request, Response};

/// D1 queries an operator call or the cron spends on moves by default (D1 allows 1,000 per
/// invocation; the rest is left for the call's own reads and the cron's records).
const DEFAULT_MOVE_QUERY_BUDGET: u32 = 900;
/// Unfinished moves advanced per call, at most.
const MOVES_PER_CALL: u32 = 20;
/// Queries below which advancing another move is not worth starting (its reads and lease).
const MIN_MOVE_QUERIES: u32 = 12;
const MAX_BODY_BYTES: usize = 4 * 1024;

/// The query budget of moves (`MOVE_QUERY_BUDGET`, at most 1,000).
pub fn move_budget(env: &Env) -> u32 {
    config::optional(env, "MOVE_QUERY_BUDGET")
        .and_then(|v| v.trim().parse::<u32>().ok())
        .map_or(DEFAULT_MOVE_QUERY_BUDGET, |v| v.min(1000))
}

pub fn grace_secs(env: &Env) -> u64 {
    grace_secs_from_var(config::optional(env, "MOVE_GRACE_SECONDS").as_deref())
}

pub async fn handle(mut req: Request, env: &Env) -> Result<Response, Problem> {
    let authorization = req.headers().get("Authorization")?;
    let configured = config::optional(env, "OPS_TOKEN").unwrap_or_default();
    if !ops_token_matches(bearer_token(authorization.as_deref()), &configured) {
        return Err(Problem::unauthorized(
            "the operator routes need Authorization: Bearer <OPS_TOKEN>",
        ));
    }
    let path = req.path();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method();
    match parts.as_slice() {
        ["ops", "orgs", org, "move"] => {
            let org = org.to_string();
            match method {
                Method::Post => start(&mut req, env, &org).await,
                Method::Get => show(env, &org).await,
                _ => Err(Problem::method_not_allowed("use GET or POST")),
            }
        }
        ["ops", "orgs", org, "rollups", "rebuild"] => match method {
            Method::Post => rebuild_rollups(env, org).await,
            _ => Err(Problem::method_not_allowed("use POST")),
        },
        ["ops", "moves", "advance"] => match method {
            Method::Post => advance_all(env).await,
            _ => Err(Problem::method_not_allowed("use POST")),
        },
        _ => Err(Problem::not_found(format!("no operator route {path}"))),
    }
}

fn report(advanced: &Advanced) -> Value {
    let mut body = advanced.row.to_json();
    body["steps"] = json!(advanced.steps);
    body["stopped"] = json!(advanced.stopped);
    if advanced.grace_left_ms > 0 {
        body["grace_left_ms"] = json!(advanced.grace_left_ms);
    }
    body
}

async fn start(req: &mut Request, env: &Env, org: &str) -> Result<Response, Problem> {
    let body: Value = http::parse_json(&http::read_body(req, MAX_BODY_BYTES).await?)?;
    let to = body.get("to").and_then(Value::as_i64).ok_or_else(|| {
        Problem::validation(vec![FieldError::new(
            "to",
            "the target shard index, an integer",
        )])
    })?;
    let directory = Directory::open(env)?;
    let entry = directory
        .org(org)
        .await?
        .ok_or_else(|| Problem::not_found(format!("the directory knows no org {org}")))?;
    let to = check_target(entry.shard, to, directory.shard_count())
        .map_err(|message| Problem::validation(vec![FieldError::new("to", message)]))?;
    match moves::start(&directory, &entry, to, clock::now()).await? {
        Ok(_) => {}
        Err(StartRefused::AlreadyMoving) => {
            return Err(Problem::conflict(format!(
                "org {org} is moving already, or its last move has not finished"
            )))
        }
        Err(StartRefused::NotReady) => {
            return Err(Problem::conflict(format!(
                "org {org} is still being placed; retry in a moment"
            )))
        }
    }
    let advanced = advance_one(&directory, env, org).await?;
    http::json(202, &report(&advanced))
}

async fn rebuild_rollups(env: &Env, org: &str) -> Result<Response, Problem> {
    let directory = Directory::open(env)?;
    let tenant = directory
        .tenant(org)
        .await?
        .ok_or_else(|| Problem::not_found(format!("the directory knows no org {org}")))?;
    let rebuilt = dashboard::rebuild(&tenant).await?;
    http::json(200, &json!({ "org_id": org, "rebuilt": rebuilt }))
}

async fn show(env: &Env, org: &str) -> Result<Response, Problem> {
    let directory = Directory::open(env)?;
    let row = moves::get(&directory, org)
        .await?
        .ok_or_else(|| Problem::not_found(format!("org {org} has no move")))?;
    http::json(200, &row.to_json())
}

async fn advance_one(directory: &Directory, env: &Env, org: &str) -> Result<Advanced, StoreError> {
    let budget = move_budget(env).saturating_sub(db::invocation_queries());
    moves::advance(directory, org, budget, grace_secs(env))
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("the move of {org}")))
}

async fn advance_all(env: &Env) -> Result<Response, Problem> {
    let directory = Directory::open(env)?;
    let advanced = advance_unfinished(&directory, env, move_budget(env)).await?;
    let moves: Vec<Value> = advanced.iter().map(report).collect();
    http::json(200, &json!({ "moves": moves }))
}

/// Advances unfinished moves while this invocation has used fewer than `budget` queries; the
/// cron and the advance route call it.
pub async fn advance_unfinished(
    directory: &Directory,
    env: &Env,
    budget: u32,
) -> Result<Vec<Advanced>, StoreError> {
    let mut done = Vec::new();
    if db::invocation_queries() + MIN_MOVE_QUERIES > budget {
        return Ok(done);
    }
    for row in moves::unfinished(directory, MOVES_PER_CALL).await? {
        let left = budget.saturating_sub(db::invocation_queries());
        if left < MIN_MOVE_QUERIES {
            break;
        }
        if let Some(advanced) =
            moves::advance(directory, &row.org_id, left, grace_secs(env)).await?
        {
            done.push(advanced);
        }
    }
    Ok(done)
}
