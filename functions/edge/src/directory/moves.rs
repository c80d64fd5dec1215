//! Shard moves (`org_moves`, docs/scaling.md "Moving an org between shards"): the SQL a move runs
//! on the directory and on both shards. What to do next, and in which table order, is decided by
//! `leadheat_domain::sharding` ([`MoveState`]); this module only runs it.
//!
//! A move is resumable: [`advance`] does steps while the invocation's query budget allows and
//! saves the state after each one, so the next call resumes there. Every step is idempotent (a
//! page copied again skips the rows already there; deletes delete what is left), so an invocation
//! cut between a step and its save only repeats that step. Two invocations never advance one move
//! at once: each takes the move's lease (`job_leases`, `org-move:<org>`) first.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use leadheat_domain::d1_limits::{runs_within, MAX_STATEMENT_BYTES};
use leadheat_domain::sharding::{
    count_sql, grace_left_ms, MoveCounts, MovePhase, MoveState, MoveStep, MoveTable, StepOutcome,
    TableCounts, MOVE_TABLES,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{jobs, Directory, OrgEntry};
use crate::args;
use crate::clock;
use crate::db::{self, Arg, QueryMeter, StoreError};

/// Rows read per copy page (one query); their insert is cut into statements under D1's size.
const COPY_PAGE_ROWS: u64 = 200;
/// Rows deleted per statement while clearing the target or deleting the old copy.
const DELETE_PAGE_ROWS: u64 = 500;
/// Room left in each insert statement for its SQL.
const SQL_ROOM: usize = 4_000;
/// Longer than an invocation lasts: a lease outlives its holder only when the holder crashed.
const LEASE_MS: i64 = 15 * 60 * 1000;

/// One `org_moves` row, as the operator route shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MoveRow {
    pub org_id: String,
    pub from_shard: u32,
    pub to_shard: u32,
    pub phase: String,
    pub current_table: Option<String>,
    pub cursor: Option<String>,
    pub counts: String,
    pub error: Option<String>,
    pub started_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

const MOVE_COLUMNS: &str = "org_id, from_shard, to_shard, phase, current_table, cursor, counts, \
                            error, started_at, updated_at, finished_at";

impl MoveRow {
    /// The row as JSON for the operator (cursor and counts as JSON, not text).
    pub fn to_json(&self) -> Value {
        let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
        serde_json::json!({
            "org_id": self.org_id,
            "from_shard": self.from_shard,
            "to_shard": self.to_shard,
            "phase": self.phase,
            "table": self.current_table,
            "cursor": self.cursor.as_deref().map(parse),
            "counts": parse(&self.counts),
            "error": self.error,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
        })
    }

    fn state(&self) -> Result<MoveState, StoreError> {
        let phase = MovePhase::parse(&self.phase).ok_or_else(|| {
            StoreError::backend("org_moves", format!("unknown phase {}", self.phase))
        })?;
        Ok(MoveState {
            from_shard: self.from_shard,
            to_shard: self.to_shard,
            phase,
            table: self.current_table.clone(),
            cursor: match &self.cursor {
                Some(text) => Some(serde_json::from_str(text)?),
                None => None,
            },
            counts: serde_json::from_str::<MoveCounts>(&self.counts).unwrap_or_default(),
            error: self.error.clone(),
        })
    }

    fn started_ms(&self) -> i64 {
        DateTime::parse_from_rfc3339(&self.started_at)
            .map(|t| t.timestamp_millis())
            .unwrap_or(0)
    }
}

/// The org's latest move.
pub async fn get(directory: &Directory, org_id: &str) -> Result<Option<MoveRow>, StoreError> {
    db::first(
        directory.db(),
        &format!("SELECT {MOVE_COLUMNS} FROM org_moves WHERE org_id = ?1"),
        &args![org_id],
    )
    .await
}

/// Up to `limit` unfinished moves, least recently advanced first.
pub async fn unfinished(directory: &Directory, limit: u32) -> Result<Vec<MoveRow>, StoreError> {
    db::all(
        directory.db(),
        &format!(
            "SELECT {MOVE_COLUMNS} FROM org_moves \
             WHERE phase IN ('clearing', 'copying', 'verifying', 'deleting') \
             ORDER BY updated_at LIMIT ?1"
        ),
        &args![limit],
    )
    .await
}

/// The orgs whose rows on `shard` a move is working on (as its source or its target, until the
/// move has finished), and orgs marked moving without a move record: shard-wide sweeps that
/// write leave them alone. One query.
pub async fn moving_on_shard(
    directory: &Directory,
    shard: u32,
) -> Result<BTreeSet<String>, StoreError> {
    #[derive(Deserialize)]
    struct Id {
        org_id: String,
    }
    let rows: Vec<Id> = db::all(
        directory.db(),
        "SELECT id AS org_id FROM orgs WHERE moving_to IS NOT NULL AND (shard = ?1 OR moving_to = ?1) \
         UNION SELECT org_id FROM org_moves \
         WHERE phase IN ('clearing', 'copying', 'verifying', 'deleting') \
           AND (from_shard = ?1 OR to_shard = ?1)",
        &args![shard],
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.org_id).collect())
}

/// Why a move cannot start.
#[derive(Debug, Clone, PartialEq)]
pub enum StartRefused {
    /// The org is moving already (or its last move is still deleting).
    AlreadyMoving,
    /// The org's defaults are not written yet.
    NotReady,
}

/// Marks the org as moving to `to` (its tenant is refused from now on) and records the move, in
/// one directory transaction; refused when it is moving already or a move of it has not finished.
pub async fn start(
    directory: &Directory,
    entry: &OrgEntry,
    to: u32,
    now: DateTime<Utc>,
) -> Result<Result<MoveRow, StartRefused>, StoreError> {
    if entry.ready == 0 {
        return Ok(Err(StartRefused::NotReady));
    }
    let at = clock::rfc3339(now);
    let state = MoveState::start(entry.shard, to);
    let db = directory.db();
    let results = db::batch(
        db,
        vec![
            db::statement(
                db,
                "UPDATE orgs SET moving_to = ?3, updated_at = ?4 \
                 WHERE id = ?1 AND shard = ?2 AND moving_to IS NULL AND ready = 1 \
                   AND NOT EXISTS (SELECT 1 FROM org_moves WHERE org_id = ?1 \
                                   AND phase NOT IN ('done', 'failed'))",
                &args![entry.id.as_str(), entry.shard, to, at.as_str()],
            )?,
            db::statement(
                db,
                "INSERT INTO org_moves (org_id, from_shard, to_shard, phase, current_table, cursor, \
                                        counts, error, started_at, updated_at, finished_at) \
                 SELECT ?1, ?2, ?3, ?4, ?5, NULL, '{}', NULL, ?6, ?6, NULL \
                 WHERE EXISTS (SELECT 1 FROM orgs WHERE id = ?1 AND shard = ?2 AND moving_to = ?3 \
                               AND updated_at = ?6) \
                 ON CONFLICT (org_id) DO UPDATE SET from_shard = excluded.from_shard, \
                   to_shard = excluded.to_shard, phase = excluded.phase, \
                   current_table = excluded.current_table, cursor = NULL, counts = '{}', \
                   error = NULL, started_at = excluded.started_at, \
                   updated_at = excluded.updated_at, finished_at = NULL \
                 WHERE org_moves.phase IN ('done', 'failed')",
                &args![
                    entry.id.as_str(),
                    entry.shard,
                    to,
                    state.phase.as_str(),
                    state.table.clone(),
                    at.as_str()
                ],
            )?,
        ],
    )
    .await?;
    if results.first().map(db::changes) != Some(1) {
        return Ok(Err(StartRefused::AlreadyMoving));
    }
    get(directory, &entry.id)
        .await?
        .ok_or_else(|| StoreError::backend("org_moves", "the new move was not recorded"))
        .map(Ok)
}

/// What [`advance`] did.
#[derive(Debug, Clone)]
pub struct Advanced {
    pub row: MoveRow,
    /// Steps done by this call.
    pub steps: u32,
    /// Why it stopped before the move finished: `budget`, `grace` (the copy waits for the grace
    /// period), `busy` (another invocation holds the move), or `error: ...`.
    pub stopped: Option<String>,
    /// Milliseconds left of the grace period when it stopped for it.
    pub grace_left_ms: i64,
}

/// Advances the org's move with at most `budget` D1 queries of this invocation (counting from
/// this call), the copy starting only `grace_secs` after the move started. Returns the state it
/// left.
pub async fn advance(
    directory: &Directory,
    org_id: &str,
    budget: u32,
    grace_secs: u64,
) -> Result<Option<Advanced>, StoreError> {
    let meter = QueryMeter::start();
    let Some(mut row) = get(directory, org_id).await? else {
        return Ok(None);
    };
    let mut advanced = Advanced {
        row: row.clone(),
        steps: 0,
        stopped: None,
        grace_left_ms: 0,
    };
    if MovePhase::parse(&row.phase).is_none_or(MovePhase::is_finished) {
        return Ok(Some(advanced));
    }
    let lease = format!("org-move:{org_id}");
    let holder = clock::new_id("mover");
    let now_ms = clock::now_ms();
    let leased = jobs::acquire_lease(
        directory,
        &lease,
        &holder,
        &clock::rfc3339(clock::from_ms(now_ms)),
        &clock::rfc3339(clock::from_ms(now_ms + LEASE_MS)),
    )
    .await?;
    if !leased {
        advanced.stopped = Some("busy".into());
        return Ok(Some(advanced));
    }
    let outcome = run_steps(
        directory,
        &mut row,
        budget,
        grace_secs,
        meter,
        &mut advanced,
    )
    .await;
    let released = jobs::release_lease(directory, &lease, &holder).await;
    if let Err(error) = outcome {
        advanced.stopped = Some(format!("error: {error}"));
        worker::console_error!(
            "{}",
            serde_json::json!({"job": "org-move", "level": "error", "org": org_id,
                               "phase": row.phase, "table": row.current_table,
                               "error": error.to_string()})
        );
    }
    released?;
    advanced.row = row;
    Ok(Some(advanced))
}

/// Queries a step needs at most besides its own writes: its reads and the save of the state.
fn room(meter: &QueryMeter, budget: u32, queries: u32) -> bool {
    meter.used() + queries <= budget
}

async fn run_steps(
    directory: &Directory,
    row: &mut MoveRow,
    budget: u32,
    grace_secs: u64,
    meter: QueryMeter,
    advanced: &mut Advanced,
) -> Result<(), StoreError> {
    let org_id = row.org_id.clone();
    let mut state = row.state()?;
    // Deleting removes the copy that is not the org's home: checked against the directory once
    // per invocation, so that a stale state never deletes the org's live rows.
    let mut home_checked = false;
    loop {
        let step = state.next_step();
        let outcome = match step {
            MoveStep::Finished => return Ok(()),
            MoveStep::Delete { shard, table } => {
                if !room(&meter, budget, 2 + u32::from(!home_checked)) {
                    advanced.stopped = Some("budget".into());
                    return Ok(());
                }
                if state.phase == MovePhase::Deleting && !home_checked {
                    let entry = directory.org(&org_id).await?;
                    if entry
                        .as_ref()
                        .is_none_or(|e| e.shard == shard || e.moving_to.is_some())
                    {
                        return Err(StoreError::Conflict(format!(
                            "the move of {org_id} would delete rows of shard {shard}, \
                             which the directory does not show as a copy it left"
                        )));
                    }
                    home_checked = true;
                }
                let shard_db = directory.shard(shard)?;
                let deleted = db::run(
                    shard_db.db(),
                    &table.delete_sql(),
                    &args![org_id.as_str(), DELETE_PAGE_ROWS as i64],
                )
                .await?;
                StepOutcome::Deleted {
                    rows: deleted,
                    limit: DELETE_PAGE_ROWS,
                }
            }
            MoveStep::Copy { table, after } => {
                let left = grace_left_ms(row.started_ms(), grace_secs, clock::now_ms());
                if left > 0 {
                    advanced.stopped = Some("grace".into());
                    advanced.grace_left_ms = left;
                    return Ok(());
                }
                // The read, at least one insert and the save.
                if !room(&meter, budget, 3) {
                    advanced.stopped = Some("budget".into());
                    return Ok(());
                }
                match copy_page(directory, &state, &org_id, table, after, &meter, budget).await? {
                    Some(outcome) => outcome,
                    None => {
                        advanced.stopped = Some("budget".into());
                        return Ok(());
                    }
                }
            }
            MoveStep::Verify => {
                // Two counts, then the directory's flip and the save in one batch.
                if !room(&meter, budget, 4) {
                    advanced.stopped = Some("budget".into());
                    return Ok(());
                }
                let source = count(directory, state.from_shard, &org_id).await?;
                let copy = count(directory, state.to_shard, &org_id).await?;
                let next = state
                    .clone()
                    .advance(StepOutcome::Verified { source, copy });
                finish_verification(directory, row, &next).await?;
                state = next;
                advanced.steps += 1;
                continue;
            }
        };
        state = state.advance(outcome);
        save(directory, row, &state).await?;
        advanced.steps += 1;
    }
}

/// Copies one page of `table`; `None` when its inserts do not fit in the budget (nothing written).
async fn copy_page(
    directory: &Directory,
    state: &MoveState,
    org_id: &str,
    table: &'static MoveTable,
    after: Option<Vec<Value>>,
    meter: &QueryMeter,
    budget: u32,
) -> Result<Option<StepOutcome>, StoreError> {
    let source = directory.shard(state.from_shard)?;
    let (sql, _) = table.page_sql(after.is_some());
    let mut params: Vec<Arg> = vec![Arg::from(org_id)];
    for value in after.iter().flatten() {
        params.push(json_arg(value));
    }
    params.push(Arg::from(COPY_PAGE_ROWS as i64));
    let rows: Vec<Map<String, Value>> = db::all(source.db(), &sql, &params).await?;
    let last = rows.last().map(|row| {
        table
            .key
            .iter()
            .map(|k| row.get(*k).cloned().unwrap_or(Value::Null))
            .collect::<Vec<_>>()
    });
    if !rows.is_empty() {
        let insert = table.insert_sql();
        let texts: Vec<String> = rows
            .iter()
            .map(|r| Value::Object(r.clone()).to_string())
            .collect();
        // Each row adds its JSON and a comma to the array.
        let sizes: Vec<usize> = texts.iter().map(|t| t.len() + 1).collect();
        let target = directory.shard(state.to_shard)?;
        let statements = runs_within(&sizes, usize::MAX, MAX_STATEMENT_BYTES - SQL_ROOM)
            .into_iter()
            .map(|run| {
                let array = format!("[{}]", texts[run].join(","));
                db::statement(target.db(), &insert, &args![array])
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !room(meter, budget, statements.len() as u32 + 1) {
            return Ok(None);
        }
        db::batch(target.db(), statements).await?;
    }
    Ok(Some(StepOutcome::Copied {
        rows: rows.len() as u64,
        limit: COPY_PAGE_ROWS,
        last,
    }))
}

fn json_arg(value: &Value) -> Arg {
    match value {
        Value::Null => Arg::Null,
        Value::Bool(b) => Arg::from(*b),
        Value::Number(n) => n
            .as_i64()
            .map(Arg::Int)
            .unwrap_or_else(|| Arg::Real(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => Arg::from(s.as_str()),
        other => Arg::from(other.to_string()),
    }
}

/// The org's rows per move table on `shard` (one query).
async fn count(directory: &Directory, shard: u32, org_id: &str) -> Result<TableCounts, StoreError> {
    let shard = directory.shard(shard)?;
    let row: Option<Map<String, Value>> =
        db::first(shard.db(), &count_sql(), &args![org_id]).await?;
    let row = row.unwrap_or_default();
    Ok(MOVE_TABLES
        .iter()
        .map(|t| {
            let n = row.get(t.name).and_then(Value::as_u64).unwrap_or(0);
            (t.name.to_string(), n)
        })
        .collect())
}

/// The row's columns for a state.
fn state_args(row: &MoveRow, state: &MoveState, now: &str) -> Result<Vec<Arg>, StoreError> {
    let cursor = match &state.cursor {
        Some(values) => Some(serde_json::to_string(values)?),
        None => None,
    };
    let finished = state.phase.is_finished().then(|| now.to_string());
    Ok(args![
        row.org_id.as_str(),
        state.phase.as_str(),
        state.table.clone(),
        cursor,
        serde_json::to_string(&state.counts)?,
        state.error.clone(),
        now,
        finished
    ])
}

const SAVE: &str =
    "UPDATE org_moves SET phase = ?2, current_table = ?3, cursor = ?4, counts = ?5, \
                    error = ?6, updated_at = ?7, finished_at = ?8 WHERE org_id = ?1";

fn refresh(row: &mut MoveRow, state: &MoveState, args: &[Arg]) {
    row.phase = state.phase.as_str().to_string();
    row.current_table = state.table.clone();
    row.cursor = match &args[3] {
        Arg::Text(text) => Some(text.clone()),
        _ => None,
    };
    if let Arg::Text(counts) = &args[4] {
        row.counts = counts.clone();
    }
    row.error = state.error.clone();
    if let Arg::Text(now) = &args[6] {
        row.updated_at = now.clone();
    }
    row.finished_at = match &args[7] {
        Arg::Text(text) => Some(text.clone()),
        _ => None,
    };
}

async fn save(
    directory: &Directory,
    row: &mut MoveRow,
    state: &MoveState,
) -> Result<(), StoreError> {
    let now = clock::rfc3339(clock::now());
    let values = state_args(row, state, &now)?;
    db::run(directory.db(), SAVE, &values).await?;
    refresh(row, state, &values);
    Ok(())
}

/// Saves the verification's outcome with its effect on the directory, in one transaction: the org
/// points at the target (verified) or stays home (failed); either way `moving_to` is cleared and
/// the org is admitted again.
async fn finish_verification(
    directory: &Directory,
    row: &mut MoveRow,
    next: &MoveState,
) -> Result<(), StoreError> {
    let now = clock::rfc3339(clock::now());
    let values = state_args(row, next, &now)?;
    let db = directory.db();
    let directory_update = if next.flipped() {
        db::statement(
            db,
            "UPDATE orgs SET shard = ?2, moving_to = NULL, updated_at = ?3 \
             WHERE id = ?1 AND shard = ?4 AND moving_to = ?2",
            &args![
                row.org_id.as_str(),
                next.to_shard,
                now.as_str(),
                next.from_shard
            ],
        )?
    } else {
        db::statement(
            db,
            "UPDATE orgs SET moving_to = NULL, updated_at = ?3 \
             WHERE id = ?1 AND moving_to = ?2",
            &args![row.org_id.as_str(), next.to_shard, now.as_str()],
        )?
    };
    let results = db::batch(
        db,
        vec![directory_update, db::statement(db, SAVE, &values)?],
    )
    .await?;
    if results.first().map(db::changes) != Some(1) {
        return Err(StoreError::Conflict(format!(
            "org {} was not moving from shard {} to shard {} any more",
            row.org_id, next.from_shard, next.to_shard
        )));
    }
    refresh(row, next, &values);
    Ok(())
}
