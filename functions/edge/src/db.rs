//! Thin, typed access to D1. Table-specific SQL lives in one module per table under `crate::store`;
//! this module only prepares, binds and runs statements and maps failures to problems.
//!
//! It also counts the queries it sends ([`QueryMeter`]): D1 allows a bounded number of queries per
//! Worker invocation (1,000 on the paid plan; every statement of a batch counts), and a worker
//! that does unbounded work per invocation (the sync consumer) measures what it has used.

use std::sync::atomic::{AtomicU32, Ordering};

use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result, Env};

use crate::http::Problem;

/// The D1 binding every worker uses.
pub const DB_BINDING: &str = "DB";

pub fn database(env: &Env) -> Result<D1Database, Problem> {
    env.d1(DB_BINDING)
        .map_err(|e| Problem::internal("binding DB", e))
}

/// Queries sent by this isolate since it started (wrapping). Every helper below adds to it just
/// before it sends its statement(s) to D1, so a failed query counts too (D1 counts it as well).
static QUERIES_SENT: AtomicU32 = AtomicU32::new(0);

fn count(queries: usize) {
    QUERIES_SENT.fetch_add(queries as u32, Ordering::Relaxed);
}

/// How many D1 queries were sent since the meter started: one per `all`/`first`/`run`, one per
/// statement of a `batch`.
///
/// The count is per isolate, not per invocation: invocations that run concurrently in one isolate
/// (several queue batches, requests) add to each other's meters. A meter therefore never reads
/// less than its own invocation used; it may read more, which only makes a budget kept with it
/// stricter.
#[derive(Debug, Clone, Copy)]
pub struct QueryMeter {
    start: u32,
}

impl QueryMeter {
    pub fn start() -> QueryMeter {
        QueryMeter {
            start: QUERIES_SENT.load(Ordering::Relaxed),
        }
    }

    pub fn used(&self) -> u32 {
        QUERIES_SENT
            .load(Ordering::Relaxed)
            .wrapping_sub(self.start)
    }
}

/// A value bound to a statement parameter. Integers are bound as JS numbers because D1 rejects
/// BigInt; they are exact up to 2^53, far beyond any count or version stored here.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Arg {
    fn to_js(&self) -> JsValue {
        match self {
            Arg::Null => JsValue::null(),
            Arg::Int(i) => JsValue::from_f64(*i as f64),
            Arg::Real(f) => JsValue::from_f64(*f),
            Arg::Text(s) => JsValue::from_str(s),
        }
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(v.to_string())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(v)
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Arg {
        Arg::Text(v.clone())
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(v)
    }
}
impl From<i32> for Arg {
    fn from(v: i32) -> Arg {
        Arg::Int(v as i64)
    }
}
impl From<u32> for Arg {
    fn from(v: u32) -> Arg {
        Arg::Int(v as i64)
    }
}
impl From<usize> for Arg {
    fn from(v: usize) -> Arg {
        Arg::Int(v as i64)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Arg {
        Arg::Real(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Arg {
        Arg::Int(v as i64)
    }
}
impl<T: Into<Arg>> From<Option<T>> for Arg {
    fn from(v: Option<T>) -> Arg {
        v.map_or(Arg::Null, Into::into)
    }
}

/// `args![a, b, c]` builds the argument list of a statement (a `Vec`, so callers can extend it
/// with optional filters).
#[macro_export]
macro_rules! args {
    () => { Vec::<$crate::db::Arg>::new() };
    ($($value:expr),+ $(,)?) => { Vec::<$crate::db::Arg>::from([$($crate::db::Arg::from($value)),+]) };
}

/// Prepares `sql` with positional arguments (`?1`, `?2`, ...).
pub fn statement(db: &D1Database, sql: &str, args: &[Arg]) -> Result<D1PreparedStatement, Problem> {
    let values: Vec<JsValue> = args.iter().map(Arg::to_js).collect();
    db.prepare(sql)
        .bind(&values)
        .map_err(|e| Problem::internal(&format!("binding {}", first_line(sql)), e))
}

/// Every row of a query, deserialized.
pub async fn all<T: DeserializeOwned>(
    db: &D1Database,
    sql: &str,
    args: &[Arg],
) -> Result<Vec<T>, Problem> {
    let statement = statement(db, sql, args)?;
    count(1);
    let result = statement
        .all()
        .await
        .map_err(|e| Problem::internal(&format!("query {}", first_line(sql)), e))?;
    rows(&result, sql)
}

/// The first row of a query, if any.
pub async fn first<T: DeserializeOwned>(
    db: &D1Database,
    sql: &str,
    args: &[Arg],
) -> Result<Option<T>, Problem> {
    Ok(all(db, sql, args).await?.into_iter().next())
}

/// Runs a write and returns how many rows it changed.
pub async fn run(db: &D1Database, sql: &str, args: &[Arg]) -> Result<u64, Problem> {
    let statement = statement(db, sql, args)?;
    count(1);
    let result = statement
        .run()
        .await
        .map_err(|e| Problem::internal(&format!("statement {}", first_line(sql)), e))?;
    Ok(changes(&result))
}

/// Runs statements atomically (D1 batches are one transaction) and returns each result.
pub async fn batch(
    db: &D1Database,
    statements: Vec<D1PreparedStatement>,
) -> Result<Vec<D1Result>, Problem> {
    if statements.is_empty() {
        return Ok(Vec::new());
    }
    send_batch(db, statements)
        .await
        .map_err(|e| Problem::internal("batch", e))
}

/// Sends a batch as is, its error unmapped (for callers that tell constraint failures apart).
pub async fn send_batch(
    db: &D1Database,
    statements: Vec<D1PreparedStatement>,
) -> worker::Result<Vec<D1Result>> {
    count(statements.len());
    db.batch(statements).await
}

/// Rows of a statement's result, deserialized.
pub fn rows<T: DeserializeOwned>(result: &D1Result, sql: &str) -> Result<Vec<T>, Problem> {
    result
        .results::<T>()
        .map_err(|e| Problem::internal(&format!("decoding rows of {}", first_line(sql)), e))
}

/// How many rows a write changed.
pub fn changes(result: &D1Result) -> u64 {
    result
        .meta()
        .ok()
        .flatten()
        .and_then(|meta| meta.changes)
        .unwrap_or(0) as u64
}

fn first_line(sql: &str) -> String {
    sql.split_whitespace().take(8).collect::<Vec<_>>().join(" ")
}
