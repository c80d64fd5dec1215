//! Thin, typed access to D1. Table-specific SQL lives in one module per table under `crate::store`;
//! this module only prepares, binds and runs statements and maps failures to [`StoreError`]s.
//!
//! It enforces D1's production limits that local SQLite does not
//! (`leadheat_domain::d1_limits`): every statement is checked for its bound parameters, its
//! `LIKE`/`GLOB` patterns and its size before it is prepared, and every query is counted against
//! the 1,000 queries of its Worker invocation ([`invocation`]; every statement of a batch counts).
//! A violation is refused here and reported as a backend failure (a 500 at the HTTP edge), exactly
//! where production D1 would fail, so the end-to-end tests catch the code paths that would break in
//! production.
//!
//! The count also serves workers that budget their own work ([`QueryMeter`], the sync consumer).
//! Each invocation also adds up the rows D1 reports having read (`meta.rows_read`) for its queries
//! ([`Invocation::usage`]): what a request costs, which the lead API can report in development.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};

use leadheat_domain::d1_limits::{self, Bound, Violation};
use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result, Env};

/// What the store reports: the outcomes a caller decides on (missing, conflicting, refused input,
/// an org in the middle of a shard move) apart from failures of the database itself. HTTP answers
/// and queue outcomes are chosen from it by the workers, never here.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// A row the caller named does not exist (in the caller's org).
    NotFound(String),
    /// The write conflicts with what is stored (a uniqueness or guard rule).
    Conflict(String),
    /// An input the stored data refuses, e.g. a reference to a missing row: the field and why.
    Invalid { field: String, message: String },
    /// The org is being moved to another shard: its data is read-only elsewhere for a moment.
    OrgMoving { org_id: String },
    /// D1, a binding or a D1 limit failed; `context` says what was being done.
    Backend { context: String, detail: String },
}

impl StoreError {
    pub fn backend(context: &str, error: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            context: context.to_string(),
            detail: error.to_string(),
        }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> StoreError {
        StoreError::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NotFound(what) => write!(f, "not found: {what}"),
            StoreError::Conflict(what) => write!(f, "conflict: {what}"),
            StoreError::Invalid { field, message } => write!(f, "{field}: {message}"),
            StoreError::OrgMoving { org_id } => write!(f, "org {org_id} is moving between shards"),
            StoreError::Backend { context, detail } => write!(f, "{context}: {detail}"),
        }
    }
}

impl From<worker::Error> for StoreError {
    fn from(error: worker::Error) -> StoreError {
        StoreError::backend("runtime", error)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> StoreError {
        StoreError::backend("stored JSON", error)
    }
}

/// The directory database's binding (orgs, their shards, account routing, site keys, jobs).
pub const DIRECTORY_BINDING: &str = "DB";

/// The binding of shard `index`: `SHARD_0`, `SHARD_1`, ...
pub fn shard_binding(index: u32) -> String {
    format!("SHARD_{index}")
}

pub(crate) fn binding(env: &Env, name: &str) -> Result<D1Database, StoreError> {
    env.d1(name)
        .map_err(|e| StoreError::backend(&format!("binding {name}"), e))
}

/// Queries sent by this isolate since it started (wrapping), for work outside any [`invocation`].
static QUERIES_SENT: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// The usage of the invocation being polled (a Worker isolate runs one thread; its
    /// invocations interleave only at `.await` points, where [`Invocation`] swaps this).
    static CURRENT: RefCell<Option<Rc<Usage>>> = const { RefCell::new(None) };
}

/// What one invocation sent to D1: its queries, and the rows D1 read for them.
#[derive(Debug, Default)]
pub struct Usage {
    queries: Cell<u32>,
    rows_read: Cell<u64>,
}

impl Usage {
    /// Queries sent (every statement of a batch counts).
    pub fn queries(&self) -> u32 {
        self.queries.get()
    }

    /// Rows read, as D1 reports them per statement (`meta.rows_read`), summed.
    pub fn rows_read(&self) -> u64 {
        self.rows_read.get()
    }
}

/// Runs `work` as one Worker invocation: the D1 queries it sends are counted from zero and
/// refused past D1's limit per invocation (`d1_limits::MAX_QUERIES_PER_INVOCATION`). Every
/// handler of every worker (fetch, queue, scheduled) runs its work inside one.
///
/// The count is exact even when invocations interleave in one isolate: each poll of `work`
/// installs its own counter and restores the previous one. An invocation nested in another counts
/// against the outer one.
pub fn invocation<F: Future>(work: F) -> Invocation<F> {
    Invocation {
        work: Box::pin(work),
        usage: Rc::new(Usage::default()),
    }
}

/// The future of [`invocation`].
pub struct Invocation<F> {
    work: Pin<Box<F>>,
    usage: Rc<Usage>,
}

impl<F> Invocation<F> {
    /// The invocation's D1 usage, readable while and after it runs (all zero for an invocation
    /// nested in another: its queries count against the outer one).
    pub fn usage(&self) -> Rc<Usage> {
        Rc::clone(&self.usage)
    }
}

impl<F: Future> Future for Invocation<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let outer = CURRENT.with(|current| {
            let outer = current.borrow().clone();
            let counter = outer.clone().unwrap_or_else(|| Rc::clone(&this.usage));
            *current.borrow_mut() = Some(counter);
            outer
        });
        let result = this.work.as_mut().poll(cx);
        CURRENT.with(|current| *current.borrow_mut() = outer);
        result
    }
}

/// Queries sent so far by the current invocation (by the isolate outside any).
fn sent() -> u32 {
    CURRENT.with(|current| match current.borrow().as_ref() {
        Some(usage) => usage.queries.get(),
        None => QUERIES_SENT.load(Ordering::Relaxed),
    })
}

/// D1 queries the current invocation has sent so far (the isolate's outside any invocation), for
/// work that stops before it would run out of them.
pub fn invocation_queries() -> u32 {
    sent()
}

/// Counts `queries` about to be sent, or refuses them when they would take the current invocation
/// past D1's limit (nothing is counted then: they are not sent).
fn count(queries: usize) -> Result<(), Violation> {
    CURRENT.with(|current| match current.borrow().as_ref() {
        Some(usage) => {
            let counter = &usage.queries;
            d1_limits::check_queries(counter.get(), queries)?;
            counter.set(counter.get() + queries as u32);
            Ok(())
        }
        None => Ok(()),
    })?;
    QUERIES_SENT.fetch_add(queries as u32, Ordering::Relaxed);
    Ok(())
}

/// Adds the rows D1 read for `results` to the current invocation's usage.
fn record_rows<'a>(results: impl IntoIterator<Item = &'a D1Result>) {
    let rows: u64 = results
        .into_iter()
        .filter_map(|result| result.meta().ok().flatten())
        .filter_map(|meta| meta.rows_read)
        .map(|rows| rows as u64)
        .sum();
    CURRENT.with(|current| {
        if let Some(usage) = current.borrow().as_ref() {
            usage.rows_read.set(usage.rows_read.get() + rows);
        }
    });
}

/// How many D1 queries were sent since the meter started: one per `all`/`first`/`run`, one per
/// statement of a `batch`. Inside an [`invocation`] it counts that invocation's queries exactly;
/// outside one, the isolate's.
#[derive(Debug, Clone, Copy)]
pub struct QueryMeter {
    start: u32,
}

impl QueryMeter {
    pub fn start() -> QueryMeter {
        QueryMeter { start: sent() }
    }

    pub fn used(&self) -> u32 {
        sent().wrapping_sub(self.start)
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
    /// The value as the limit checks see it.
    pub fn bound(&self) -> Bound<'_> {
        match self {
            Arg::Null => Bound::Null,
            Arg::Int(i) => Bound::Integer(*i),
            Arg::Real(f) => Bound::Real(*f),
            Arg::Text(s) => Bound::Text(s),
        }
    }

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

/// The D1 limit a statement would break, if any (see `leadheat_domain::d1_limits`).
pub fn limit_violation(sql: &str, args: &[Arg]) -> Option<Violation> {
    let values: Vec<Bound<'_>> = args.iter().map(Arg::bound).collect();
    d1_limits::check_statement(sql, &values).err()
}

/// A statement or query count D1 would refuse: a bug of the caller.
fn refused(what: &str, violation: Violation) -> StoreError {
    StoreError::backend(&format!("D1 limit exceeded by {what}"), violation)
}

/// Prepares `sql` with positional arguments (`?1`, `?2`, ...), after checking it against D1's
/// limits per statement.
pub fn statement(
    db: &D1Database,
    sql: &str,
    args: &[Arg],
) -> Result<D1PreparedStatement, StoreError> {
    if let Some(violation) = limit_violation(sql, args) {
        return Err(refused(&first_line(sql), violation));
    }
    let values: Vec<JsValue> = args.iter().map(Arg::to_js).collect();
    db.prepare(sql)
        .bind(&values)
        .map_err(|e| StoreError::backend(&format!("binding {}", first_line(sql)), e))
}

/// Every row of a query, deserialized.
pub async fn all<T: DeserializeOwned>(
    db: &D1Database,
    sql: &str,
    args: &[Arg],
) -> Result<Vec<T>, StoreError> {
    let statement = statement(db, sql, args)?;
    count(1).map_err(|v| refused(&first_line(sql), v))?;
    let result = statement
        .all()
        .await
        .map_err(|e| StoreError::backend(&format!("query {}", first_line(sql)), e))?;
    record_rows([&result]);
    rows(&result, sql)
}

/// The first row of a query, if any.
pub async fn first<T: DeserializeOwned>(
    db: &D1Database,
    sql: &str,
    args: &[Arg],
) -> Result<Option<T>, StoreError> {
    Ok(all(db, sql, args).await?.into_iter().next())
}

/// Runs a write and returns how many rows it changed.
pub async fn run(db: &D1Database, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
    let statement = statement(db, sql, args)?;
    count(1).map_err(|v| refused(&first_line(sql), v))?;
    let result = statement
        .run()
        .await
        .map_err(|e| StoreError::backend(&format!("statement {}", first_line(sql)), e))?;
    record_rows([&result]);
    Ok(changes(&result))
}

/// Runs statements atomically (D1 batches are one transaction) and returns each result.
pub async fn batch(
    db: &D1Database,
    statements: Vec<D1PreparedStatement>,
) -> Result<Vec<D1Result>, StoreError> {
    if statements.is_empty() {
        return Ok(Vec::new());
    }
    count(statements.len()).map_err(|v| refused("a batch", v))?;
    let results = db
        .batch(statements)
        .await
        .map_err(|e| StoreError::backend("batch", e))?;
    record_rows(&results);
    Ok(results)
}

/// Sends a batch as is, its error unmapped (for callers that tell constraint failures apart).
/// A batch past the invocation's query limit is refused (and logged) before it is sent.
pub async fn send_batch(
    db: &D1Database,
    statements: Vec<D1PreparedStatement>,
) -> worker::Result<Vec<D1Result>> {
    if let Err(violation) = count(statements.len()) {
        let problem = refused("a batch", violation.clone());
        return Err(worker::Error::RustError(problem.to_string()));
    }
    let results = db.batch(statements).await?;
    record_rows(&results);
    Ok(results)
}

/// Where a batch failed on a constraint rather than on infrastructure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    Unique,
    Check,
    ForeignKey,
}

/// Runs a batch (one transaction); a constraint failure rolls everything back and is returned as
/// `Ok(Err(constraint))` so callers can turn it into a retry, a 409 or a 412.
pub(crate) async fn try_batch(
    db: &D1Database,
    statements: Vec<D1PreparedStatement>,
) -> Result<Result<Vec<D1Result>, Constraint>, StoreError> {
    match send_batch(db, statements).await {
        Ok(results) => Ok(Ok(results)),
        Err(error) => {
            let message = error.to_string();
            if message.contains("UNIQUE constraint failed") {
                Ok(Err(Constraint::Unique))
            } else if message.contains("CHECK constraint failed") {
                Ok(Err(Constraint::Check))
            } else if message.contains("FOREIGN KEY constraint failed") {
                Ok(Err(Constraint::ForeignKey))
            } else {
                Err(StoreError::backend("batch", message))
            }
        }
    }
}

/// Rows of a statement's result, deserialized.
pub fn rows<T: DeserializeOwned>(result: &D1Result, sql: &str) -> Result<Vec<T>, StoreError> {
    result
        .results::<T>()
        .map_err(|e| StoreError::backend(&format!("decoding rows of {}", first_line(sql)), e))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls a future that never waits to completion.
    fn run_now<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("the future waited"),
        }
    }

    #[test]
    fn a_statement_with_101_parameters_is_refused() {
        let placeholders: Vec<String> = (1..=101).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "SELECT org_id FROM integration_accounts WHERE account_id IN ({})",
            placeholders.join(", ")
        );
        let args: Vec<Arg> = (0..101).map(|i| Arg::from(format!("acct-{i}"))).collect();
        assert_eq!(
            limit_violation(&sql, &args),
            Some(Violation::TooManyParameters { count: 101 })
        );
        assert_eq!(
            limit_violation(&sql.replace(", ?101", ""), &args[..100]),
            None
        );
    }

    #[test]
    fn long_patterns_and_large_statements_are_refused() {
        let pattern = Arg::from("%".repeat(51));
        assert_eq!(
            limit_violation("SELECT id FROM leads WHERE email LIKE ?1", &[pattern]),
            Some(Violation::PatternTooLong { bytes: 51 })
        );
        let body = Arg::from("x".repeat(100_000));
        assert!(matches!(
            limit_violation("INSERT INTO t (b) VALUES (?1)", &[body]),
            Some(Violation::StatementTooLarge { .. })
        ));
        assert_eq!(
            limit_violation("SELECT ?1, ?2, ?3", &args![1, 2.5, Option::<i64>::None]),
            None
        );
    }

    #[test]
    fn each_invocation_is_refused_its_1001st_query() {
        run_now(invocation(async {
            assert_eq!(count(999), Ok(()));
            assert_eq!(count(1), Ok(()));
            assert_eq!(count(1), Err(Violation::TooManyQueries { count: 1001 }));
            // A refused batch counts nothing.
            assert_eq!(sent(), 1000);
        }));
        // The next invocation starts from zero; a nested one counts against its outer one.
        run_now(invocation(async {
            let meter = QueryMeter::start();
            assert_eq!(count(600), Ok(()));
            run_now(invocation(async {
                assert_eq!(count(400), Ok(()));
                assert!(count(1).is_err());
            }));
            assert_eq!(meter.used(), 1000);
        }));
    }
}
