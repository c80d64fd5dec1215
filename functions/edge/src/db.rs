//! Thin, typed access to D1. Table-specific SQL lives in one module per table under `crate::store`;
//! this module only prepares, binds and runs statements and maps failures to problems.

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
    let result = statement(db, sql, args)?
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
    let result = statement(db, sql, args)?
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
    db.batch(statements)
        .await
        .map_err(|e| Problem::internal("batch", e))
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
