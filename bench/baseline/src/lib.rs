//! The benchmarks' bare baseline worker (bench/README.md). Never deployed: only
//! `bench/runtime-baseline.mjs` serves it, locally, against the same local D1 as the real workers.
//!
//! - `POST /webhooks/<platform>`: ONLY the webhook's D1 insert (the same `webhook_inbox` INSERT as
//!   `leadheat_edge::store::inbox::insert`, dedupe key = SHA-256 of the body) and the queue send.
//!   No signature check, no envelope parsing, no org lookup: what the real webhook worker adds on
//!   top of this is what the ingest benchmark's ratio measures.
//! - Its queue consumer marks each event processed with one UPDATE (the floor of "processed end to
//!   end").
//! - `POST /naive-rescore?org=&after=&limit=`: the naive rescore, one query per lead: list the next
//!   `limit` leads, then for EACH lead read its touchpoints and write its score (2 queries a lead,
//!   against the scoring job's 3 queries and 1 batch per 200 leads). It scores with the same domain
//!   function as the job, so only the data access differs. One call stays under D1's 1,000 queries
//!   per invocation; the benchmark calls it until `done`.
//! - `POST /d1/read` `{"statements":[{"sql","args"}]}`: what D1 itself costs a read route. The
//!   statements (the route's SQL, as the query benchmark copies it) run as ONE D1 batch and the rows
//!   come back as JSON `{"results":[[row...]...]}`: no authentication, no org check, no shaping.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use leadheat_domain::scoring::{self, ScoringConfig, Thresholds, Touch};
use leadheat_domain::types::InteractionType;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use wasm_bindgen::JsValue;
use worker::{
    event, Context, D1Database, Date, Env, MessageBatch, MessageExt, Method, Request, Response,
    Result,
};

/// Bare D1 and clock glue (no leadheat-edge, so the baseline stays bare in size too).
mod db {
    pub const DB_BINDING: &str = "DB";
}

mod clock {
    use super::*;

    pub fn now_ms() -> i64 {
        Date::now().as_millis() as i64
    }

    pub fn now() -> DateTime<Utc> {
        Utc.timestamp_millis_opt(now_ms())
            .single()
            .unwrap_or_default()
    }

    pub fn rfc3339(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    pub fn new_id(prefix: &str) -> String {
        let mut random = [0u8; 10];
        getrandom::getrandom(&mut random).expect("crypto.getRandomValues");
        leadheat_domain::ids::new_id(prefix, now_ms(), random)
    }
}

fn js(values: &[Arg]) -> Vec<JsValue> {
    values
        .iter()
        .map(|v| match v {
            Arg::Null => JsValue::null(),
            Arg::Num(n) => JsValue::from_f64(*n),
            Arg::Text(s) => JsValue::from_str(s),
        })
        .collect()
}

enum Arg {
    Null,
    Num(f64),
    Text(String),
}

fn t(s: &str) -> Arg {
    Arg::Text(s.to_string())
}

async fn run(db: &D1Database, sql: &str, args: &[Arg]) -> Result<u64> {
    let result = db.prepare(sql).bind(&js(args))?.run().await?;
    Ok(result
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.changes)
        .unwrap_or(0) as u64)
}

async fn all<T: DeserializeOwned>(db: &D1Database, sql: &str, args: &[Arg]) -> Result<Vec<T>> {
    db.prepare(sql).bind(&js(args))?.all().await?.results::<T>()
}

const QUEUE_BINDING: &str = "BASELINE_EVENTS";
const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineMessage {
    pub inbox_id: String,
}

#[event(fetch)]
pub async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    match (req.method(), path.as_str()) {
        (_, "/health" | "/webhooks/health" | "/v1/health") => {
            Response::from_json(&json!({"status": "ok"}))
        }
        (Method::Post, "/naive-rescore") => naive_rescore(req, env).await,
        (Method::Post, "/d1/read") => d1_read(req, env).await,
        (Method::Post, p) if p.starts_with("/webhooks/") => {
            let platform = p.trim_start_matches("/webhooks/").to_string();
            receive(req, env, platform).await
        }
        _ => Response::error("not found", 404),
    }
}

#[derive(Deserialize)]
struct ReadRequest {
    statements: Vec<ReadStatement>,
}

#[derive(Deserialize)]
struct ReadStatement {
    sql: String,
    #[serde(default)]
    args: Vec<serde_json::Value>,
}

fn arg_of(value: &serde_json::Value) -> Arg {
    match value {
        serde_json::Value::Number(n) => Arg::Num(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Arg::Text(s.clone()),
        serde_json::Value::Null => Arg::Null,
        other => Arg::Text(other.to_string()),
    }
}

async fn d1_read(mut req: Request, env: Env) -> Result<Response> {
    let body: ReadRequest = match req.json().await {
        Ok(body) => body,
        Err(e) => return Response::error(format!("bad body: {e}"), 400),
    };
    let db = env.d1(db::DB_BINDING)?;
    let statements = body
        .statements
        .iter()
        .map(|s| {
            let args: Vec<Arg> = s.args.iter().map(arg_of).collect();
            db.prepare(&s.sql).bind(&js(&args))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut results = Vec::new();
    for result in db.batch(statements).await? {
        results.push(result.results::<serde_json::Value>()?);
    }
    Response::from_json(&json!({ "results": results }))
}

async fn receive(mut req: Request, env: Env, platform: String) -> Result<Response> {
    let body = req.bytes().await?;
    if body.len() > MAX_BODY_BYTES {
        return Response::error("too large", 413);
    }
    let text = String::from_utf8(body).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let dedupe_key = hex::encode(Sha256::digest(text.as_bytes()));
    let db = env.d1(db::DB_BINDING)?;
    let id = clock::new_id("evt");
    let now = clock::rfc3339(clock::now());
    let changed = run(
        &db,
        "INSERT INTO webhook_inbox (id, platform, dedupe_key, account_id, org_id, body, received_at, status, attempts, processed_at, last_error) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?10) ON CONFLICT (platform, dedupe_key) DO NOTHING",
        &[
            t(&id),
            t(&platform),
            Arg::Text(dedupe_key),
            Arg::Null,
            Arg::Null,
            Arg::Text(text),
            Arg::Text(now),
            t("pending"),
            Arg::Null,
            Arg::Null,
        ],
    )
    .await?;
    if changed == 1 {
        env.queue(QUEUE_BINDING)?
            .send(BaselineMessage { inbox_id: id })
            .await?;
    }
    Response::from_json(&json!({"received": true, "stored": changed}))
}

#[event(queue)]
pub async fn queue(batch: MessageBatch<BaselineMessage>, env: Env, _ctx: Context) -> Result<()> {
    let Ok(db) = env.d1(db::DB_BINDING) else {
        batch.retry_all();
        return Ok(());
    };
    let Ok(messages) = batch.messages() else {
        batch.ack_all();
        return Ok(());
    };
    let now = clock::rfc3339(clock::now());
    for message in messages {
        let outcome = run(
            &db,
            "UPDATE webhook_inbox SET status = 'processed', processed_at = ?2 WHERE id = ?1 AND status = 'pending'",
            &[t(&message.body().inbox_id), t(&now)],
        )
        .await;
        match outcome {
            Ok(_) => message.ack(),
            Err(_) => message.retry(),
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct IdRow {
    id: String,
}

#[derive(Deserialize)]
struct TouchRow {
    #[serde(rename = "type")]
    kind: String,
    occurred_at: String,
}

#[derive(Deserialize)]
struct ConfigRow {
    weights: String,
    warm_threshold: f64,
    hot_threshold: f64,
    decay_half_life_days: Option<f64>,
}

async fn naive_rescore(req: Request, env: Env) -> Result<Response> {
    let url = req.url()?;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let org = param("org").unwrap_or_default();
    let after = param("after").unwrap_or_default();
    let limit: usize = param("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
        .clamp(1, 490);
    let db = env.d1(db::DB_BINDING)?;
    let started = clock::now_ms();
    let now = clock::now();
    let now_text = clock::rfc3339(now);
    let mut queries = 0u32;

    let config = load_config(&db, &org).await?;
    queries += 1;
    let leads: Vec<IdRow> = all(
        &db,
        "SELECT id FROM leads WHERE org_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        &[t(&org), t(&after), Arg::Num(limit as f64)],
    )
    .await?;
    queries += 1;

    let mut touches_read = 0usize;
    for lead in &leads {
        // One query per lead for its touchpoints (by lead id alone: the store's `lead_id = ? AND
        // org_id = ?` form gets the org-wide index from SQLite's planner on a large org, which
        // would measure that planner choice rather than the naive access pattern) ...
        let rows: Vec<TouchRow> = all(
            &db,
            "SELECT type, occurred_at FROM interactions WHERE lead_id = ?1",
            &[t(&lead.id)],
        )
        .await?;
        touches_read += rows.len();
        let touches: Vec<Touch> = rows
            .iter()
            .filter_map(|r| {
                let kind: InteractionType = r.kind.parse().ok()?;
                let at = DateTime::parse_from_rfc3339(&r.occurred_at).ok()?;
                Some(Touch::new(kind, at.with_timezone(&Utc)))
            })
            .collect();
        let heat = scoring::score(&touches, &config, now);
        // ... and one write per lead.
        run(
            &db,
            "UPDATE leads SET heat_score = ?1, heat_level = ?2, heat_stamp = heat_stamp + 1, scored_at = ?3, \
             needs_rescore = 0 WHERE id = ?4 AND org_id = ?5",
            &[
                Arg::Num(heat.score),
                t(heat.level.as_str()),
                t(&now_text),
                t(&lead.id),
                t(&org),
            ],
        )
        .await?;
        queries += 2;
    }
    Response::from_json(&json!({
        "leads": leads.len(),
        "touches": touches_read,
        "queries": queries,
        "last_id": leads.last().map(|l| l.id.clone()),
        "done": leads.len() < limit,
        "elapsed_ms": clock::now_ms() - started,
    }))
}

async fn load_config(db: &D1Database, org: &str) -> Result<ScoringConfig> {
    let row: Option<ConfigRow> = all(
        db,
        "SELECT weights, warm_threshold, hot_threshold, decay_half_life_days FROM scoring_configs WHERE org_id = ?1",
        &[t(org)],
    )
    .await?
    .into_iter()
    .next();
    Ok(match row {
        None => ScoringConfig::default(),
        Some(row) => ScoringConfig {
            weights: serde_json::from_str(&row.weights)
                .map_err(|e| worker::Error::RustError(e.to_string()))?,
            thresholds: Thresholds {
                warm: row.warm_threshold,
                hot: row.hot_threshold,
            },
            decay_half_life_days: row.decay_half_life_days,
        },
    })
}
