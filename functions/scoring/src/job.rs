//! One scoring run: take the lease (in the directory), rescore org by org on every shard in keyset
//! batches within the budget, and on the nightly cron (or to finish a nightly pass a budget cut
//! short) write snapshots and trends shard by shard and prune old snapshots.
//!
//! No shard or org stalls the others: an org's failure is logged and counted and the run goes on
//! with the next org; a shard's failure (its list of orgs with work, its binding) is logged and
//! the run goes on with the next shard. The shard rescoring starts with rotates from run to run,
//! so the query budget the invocation shares is not always spent on the same shard first.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use leadheat_domain::d1_limits::runs_within;
use leadheat_domain::rescoring::{
    merge_keyset, plan_batch, retention_cutoff, retention_days_from_var, snapshot_day, trend_days,
    trend_on, Budget, CrossingRead, RescoreRunStatus, RunKind, RunSummary, StoredHeat,
    SNAPSHOT_BATCH_SIZE,
};
use leadheat_domain::scoring::{ScoringConfig, Touch};
use leadheat_edge::db::{self, StoreError};
use leadheat_edge::directory::{jobs, moves, Directory};
use leadheat_edge::store::heat::{
    self, HeatWrite, LastInteraction, LeadHeatRow, OnStampMoved, PendingLevelChange, SnapshotWrite,
};
use leadheat_edge::store::interactions;
use leadheat_edge::store::rescoring::{self as store, OrgWork};
use leadheat_edge::tenant::{Shard, Tenant};
use leadheat_edge::{clock, config};
use worker::Env;

/// The lease every scoring run takes.
const LEASE_NAME: &str = "scoring";
/// Longer than any invocation can last (cron invocations are cut at 15 minutes), so a lease only
/// outlives its holder when the holder crashed, and then for at most this long.
const LEASE_MS: i64 = 15 * 60 * 1000;
/// How long a run that finds the lease taken waits for it before giving up (the work is left to
/// the next run; the holder is doing it anyway).
const LEASE_WAIT_MS: i64 = 20_000;
const LEASE_POLL_MS: u64 = 250;
/// Orgs considered per shard per run; more are reached by later runs.
const ORGS_PER_RUN: usize = 1000;
/// Leads scored under an older config flagged per org per pass start.
const STALE_FLAG_LIMIT: usize = 10_000;
/// Bytes of rows (as JSON: snapshots, level changes) per set-based statement, under D1's 100,000
/// per statement with room for the SQL.
const JSON_STATEMENT_BYTES: usize = 90_000;
/// D1 queries a run plans its batches within (D1 allows 1,000 per invocation), over all shards:
/// a batch that would not fit is left to the next run, which resumes where this one stopped.
pub(crate) const QUERY_BUDGET: usize = 900;
/// Snapshots deleted per statement, and statements per run (spread over the shards, at least one
/// each).
const PRUNE_LIMIT: usize = 5000;
const PRUNE_ROUNDS: usize = 10;
/// The period of the frequent cron: the shard rescoring starts with moves on by one per period.
const ROTATION_MS: i64 = 15 * 60 * 1000;

/// Runs the job; `summary` collects what it did and `changed_orgs` the orgs whose leads it
/// rescored (both also on error, up to the error). Errors of one org or one shard are logged and
/// counted in the summary; what is returned is a failure of the directory (the lease, the
/// snapshot progress).
pub async fn run(
    directory: &Directory,
    env: &Env,
    run_id: &str,
    now: DateTime<Utc>,
    summary: &mut RunSummary,
    changed_orgs: &mut BTreeSet<String>,
) -> Result<(), StoreError> {
    let budget = Budget::from_vars(
        config::optional(env, "SCORING_BATCH_SIZE").as_deref(),
        config::optional(env, "SCORING_BATCHES_PER_RUN").as_deref(),
    );
    let retention_days = retention_days_from_var(
        config::optional(env, "SCORING_SNAPSHOT_RETENTION_DAYS").as_deref(),
    );

    if !acquire_lease(directory, run_id).await? {
        summary.lease = "busy";
        summary.finished = false;
        summary.will_resume = true;
        return Ok(());
    }
    summary.lease = "acquired";
    let outcome = work(
        directory,
        now,
        budget,
        retention_days,
        summary,
        changed_orgs,
    )
    .await;
    // Released whatever happened; a crash leaves it to expire.
    let released = jobs::release_lease(directory, LEASE_NAME, run_id).await;
    outcome?;
    released
}

/// Takes the lease, waiting a little for a run that holds it.
async fn acquire_lease(directory: &Directory, run_id: &str) -> Result<bool, StoreError> {
    let deadline = clock::now_ms() + LEASE_WAIT_MS;
    loop {
        let now_ms = clock::now_ms();
        let acquired = jobs::acquire_lease(
            directory,
            LEASE_NAME,
            run_id,
            &clock::rfc3339(clock::from_ms(now_ms)),
            &clock::rfc3339(clock::from_ms(now_ms + LEASE_MS)),
        )
        .await?;
        if acquired {
            return Ok(true);
        }
        if now_ms >= deadline {
            return Ok(false);
        }
        worker::Delay::from(Duration::from_millis(LEASE_POLL_MS)).await;
    }
}

async fn work(
    directory: &Directory,
    now: DateTime<Utc>,
    budget: Budget,
    retention_days: i64,
    summary: &mut RunSummary,
    changed_orgs: &mut BTreeSet<String>,
) -> Result<(), StoreError> {
    let kind = summary.kind.unwrap_or(RunKind::Frequent);
    let rescoring_finished = rescore(directory, now, budget, summary, changed_orgs).await;

    // The snapshot pass: a nightly run starts the day's on the first shard; a frequent run
    // finishes one that an earlier run's budget cut short, from the shard and lead it stopped at.
    let pass = match kind {
        RunKind::Nightly => Some((snapshot_day(now), 0, String::new())),
        RunKind::Frequent => match jobs::latest_snapshot_progress(directory).await? {
            Some(progress) if !progress.finished => progress
                .day
                .parse::<NaiveDate>()
                .ok()
                .map(|day| (day, progress.shard, progress.cursor)),
            _ => None,
        },
    };
    let mut snapshots_finished = true;
    if let Some((day, shard, cursor)) = pass {
        let (shard, cursor, finished) = snapshot_pass(
            directory,
            day,
            shard,
            cursor,
            budget.snapshot_batches(),
            summary,
        )
        .await;
        summary.snapshot_day = Some(day.to_string());
        summary.snapshot_shard = Some(shard);
        summary.snapshot_cursor = Some(cursor);
        summary.snapshots_finished = Some(finished);
        snapshots_finished = finished;
        if finished {
            let cutoff = retention_cutoff(day, retention_days).to_string();
            prune_snapshots(directory, &cutoff, summary).await;
        }
    }

    summary.finished = rescoring_finished && snapshots_finished;
    summary.will_resume = !summary.finished;
    Ok(())
}

/// The shard rescoring starts with at `now`: the next one every [`ROTATION_MS`], so that over
/// consecutive runs every shard gets the first pick of the query budget.
fn first_shard(now: DateTime<Utc>, shard_count: u32) -> u32 {
    if shard_count == 0 {
        return 0;
    }
    now.timestamp_millis()
        .div_euclid(ROTATION_MS)
        .rem_euclid(i64::from(shard_count)) as u32
}

/// Rescoring within the budget, shard after shard from the rotating first one; returns whether
/// every org's work is done (false when a shard or an org failed, or the budget ran out).
async fn rescore(
    directory: &Directory,
    now: DateTime<Utc>,
    budget: Budget,
    summary: &mut RunSummary,
    changed_orgs: &mut BTreeSet<String>,
) -> bool {
    let shard_count = directory.shard_count();
    let first = first_shard(now, shard_count);
    let mut all_done = true;
    let mut batches_left = budget.batches_per_run;
    for offset in 0..shard_count {
        let index = (first + offset) % shard_count;
        // Listing the shard's orgs costs one query; then at least one org must fit.
        if batches_left == 0 || !room_for(1 + ORG_START_QUERIES) {
            all_done = false;
            break;
        }
        let outcome = match directory.shard(index) {
            Ok(shard) => {
                rescore_shard(
                    directory,
                    &shard,
                    now,
                    budget.batch_size,
                    &mut batches_left,
                    summary,
                    changed_orgs,
                )
                .await
            }
            Err(error) => Err(error),
        };
        match outcome {
            Ok(done) => all_done &= done,
            Err(error) => {
                all_done = false;
                shard_error(summary, index, "rescoring", &error);
            }
        }
    }
    all_done
}

/// Rescoring of one shard's orgs with work; returns whether all of them are done. Only listing the
/// orgs fails the shard: an org's failure is logged and counted, and the next org goes on.
async fn rescore_shard(
    directory: &Directory,
    shard: &Shard,
    now: DateTime<Utc>,
    batch_size: usize,
    batches_left: &mut usize,
    summary: &mut RunSummary,
    changed_orgs: &mut BTreeSet<String>,
) -> Result<bool, StoreError> {
    let orgs = store::orgs_with_work(shard, ORGS_PER_RUN).await?;
    let mut all_done = orgs.len() < ORGS_PER_RUN;
    for org in &orgs {
        if *batches_left == 0 || !room_for(ORG_START_QUERIES) {
            all_done = false;
            break;
        }
        // The org's tenant, from the directory: its rows here are only its own while it lives
        // here and is not being moved.
        let tenant = match directory.tenant(&org.org_id).await {
            Ok(Some(tenant)) if tenant.shard() == shard.index() => tenant,
            Ok(found) => {
                // Rows of an org that moved away (its move deletes them) or that the directory
                // does not know: not this shard's work.
                let reason = if found.is_some() {
                    "the org lives on another shard"
                } else {
                    "the directory does not know the org"
                };
                skipped(&org.org_id, shard.index(), reason);
                continue;
            }
            Err(StoreError::OrgMoving { .. }) => {
                // Its rows are being copied: the run after the move rescores it.
                all_done = false;
                skipped(
                    &org.org_id,
                    shard.index(),
                    "the org is moving between shards",
                );
                continue;
            }
            Err(error) => {
                all_done = false;
                org_error(summary, &org.org_id, &error.to_string());
                continue;
            }
        };
        let config = match &org.config {
            Ok(config) => config,
            Err(error) => {
                org_error(
                    summary,
                    &org.org_id,
                    &format!("unreadable weights: {error}"),
                );
                continue;
            }
        };
        summary.orgs += 1;
        let rescored_before = summary.rescored;
        let outcome =
            rescore_org(&tenant, org, config, now, batch_size, batches_left, summary).await;
        if summary.rescored > rescored_before {
            changed_orgs.insert(org.org_id.clone());
        }
        match outcome {
            Ok(done) => all_done &= done,
            Err(error) => {
                all_done = false;
                org_error(summary, &org.org_id, &error.to_string());
            }
        }
    }
    Ok(all_done)
}

/// Logs and counts an org's failure (the run goes on with the next org).
fn org_error(summary: &mut RunSummary, org_id: &str, error: &str) {
    summary.errors += 1;
    worker::console_error!(
        "{}",
        serde_json::json!({"job": "scoring", "level": "error", "org": org_id, "error": error})
    );
}

/// Logs and counts a shard's failure (the run goes on with the next shard).
fn shard_error(summary: &mut RunSummary, shard: u32, phase: &str, error: &StoreError) {
    summary.errors += 1;
    worker::console_error!(
        "{}",
        serde_json::json!({
            "job": "scoring",
            "level": "error",
            "shard": shard,
            "phase": phase,
            "error": error.to_string(),
        })
    );
}

/// Logs an org left out of this run (not an error).
fn skipped(org_id: &str, shard: u32, reason: &str) {
    worker::console_warn!(
        "{}",
        serde_json::json!({
            "job": "scoring",
            "level": "warn",
            "org": org_id,
            "shard": shard,
            "skipped": reason,
        })
    );
}

/// Works through one org's pass from its durable cursor; returns whether the pass finished.
async fn rescore_org(
    tenant: &Tenant,
    org: &OrgWork,
    config: &ScoringConfig,
    now: DateTime<Utc>,
    batch_size: usize,
    batches_left: &mut usize,
    summary: &mut RunSummary,
) -> Result<bool, StoreError> {
    // Whole milliseconds, as instants are stored, so states and rows agree on what came before.
    let now = clock::from_ms(now.timestamp_millis());
    let now_text = clock::rfc3339(now);
    let decay_on = config.decay_half_life_days.is_some();
    let resumable = org.run_status == Some(RescoreRunStatus::Running)
        && org.run_config_version == Some(org.config_version);
    let mut cursor: Option<String> = if resumable {
        org.cursor_lead_id.clone()
    } else {
        // A new pass, a requested one starting, or a running one whose config changed since it
        // began (the change flagged every lead again, so it starts over): leads a touchpoint
        // scored with an outdated config join the flagged ones first.
        heat::flag_stale_versions(tenant, org.config_version, STALE_FLAG_LIMIT).await?;
        store::start_pass(tenant, org.config_version, decay_on, &now_text).await?;
        None
    };

    loop {
        // A batch shrinks to the queries left in the invocation (one heat write per lead).
        let room = QUERY_BUDGET.saturating_sub(
            db::invocation_queries() as usize + BATCH_OVERHEAD + LEVEL_CHANGE_STATEMENTS,
        );
        if *batches_left == 0 || room == 0 {
            return Ok(false);
        }
        let batch_size = batch_size.min(room);
        let after = cursor.clone().unwrap_or_default();
        let flagged = store::flagged_after(tenant, &after, batch_size).await?;
        let current = if decay_on {
            store::current_after(tenant, org.config_version, &after, batch_size).await?
        } else {
            Vec::new()
        };
        let ids = |rows: &[LeadHeatRow]| rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        let (batch_ids, pass_done) = merge_keyset(&ids(&flagged), &ids(&current), batch_size);
        let rows: BTreeMap<String, LeadHeatRow> = flagged
            .into_iter()
            .chain(current)
            .map(|row| (row.id.clone(), row))
            .collect();
        let leads: Vec<(String, StoredHeat)> = batch_ids
            .iter()
            .filter_map(|id| rows.get(id))
            .map(|row| (row.id.clone(), row.stored()))
            .collect();

        // Only the leads without a current state are read in full; the others at most for the
        // touches their pending ones crossed.
        let rebuild_ids: Vec<String> = leads
            .iter()
            .filter(|(_, stored)| stored.needs_rebuild(org.config_version))
            .map(|(id, _)| id.clone())
            .collect();
        let mut touches = Vec::new();
        for row in store::touches_of(tenant, &rebuild_ids).await? {
            if let Some(touch) =
                readable_touch(tenant, summary, &row.lead_id, &row.kind, &row.occurred_at)
            {
                touches.push((row.lead_id, touch));
            }
        }
        let crossings = crossings(tenant, &leads, org.config_version, now, summary).await?;
        let plans = plan_batch(&leads, touches, &crossings, config, org.config_version, now);

        // ONE batch: the guarded heat writes, the level changes of the writes that applied,
        // and the pass's cursor.
        let mut statements = Vec::new();
        let mut level_changes = Vec::new();
        let mut written: Vec<&String> = Vec::new();
        for (lead_id, plan) in &plans {
            let Some(plan) = plan else { continue };
            let row = &rows[lead_id];
            written.push(lead_id);
            statements.push(heat::write_statement(
                tenant,
                &HeatWrite {
                    lead_id,
                    heat: plan.heat,
                    state: &plan.state,
                    config_version: org.config_version,
                    scored_at: &now_text,
                    expected_stamp: row.heat_stamp,
                    on_stamp_moved: OnStampMoved::Skip,
                    requires_interaction: None,
                    last_interaction: LastInteraction::Keep,
                },
            )?);
            if let Some((old, new)) = plan.level_change {
                level_changes.push(PendingLevelChange {
                    id: clock::new_id("hlc"),
                    lead_id: lead_id.clone(),
                    old_level: old.as_str(),
                    new_level: new.as_str(),
                    expected_stamp: row.heat_stamp,
                });
            }
        }
        let writes = statements.len();
        let sizes: Vec<usize> = level_changes
            .iter()
            .map(|c| serde_json::to_string(c).map_or(0, |json| json.len() + 1))
            .collect();
        let change_runs = runs_within(&sizes, usize::MAX, JSON_STATEMENT_BYTES);
        for run in &change_runs {
            statements.push(heat::level_changes_after_writes_statement(
                tenant,
                &level_changes[run.clone()],
                &now_text,
            )?);
        }
        let new_cursor = if pass_done {
            None
        } else {
            batch_ids.last().cloned().or(cursor.clone())
        };
        statements.push(store::progress_statement(
            tenant,
            cursor.as_deref(),
            new_cursor.as_deref(),
            batch_ids.len(),
            pass_done,
            &now_text,
        )?);
        let results = tenant.batch(statements).await?;

        // A write applied when it changed its lead; D1 also counts the rows the dashboard's
        // rollup triggers wrote, so "applied" is "changed something", and the level changes
        // recorded are those of the leads whose write applied (the statement's own condition).
        let applied_leads: BTreeSet<&str> = written
            .iter()
            .zip(&results[..writes])
            .filter(|(_, r)| db::changes(r) > 0)
            .map(|(lead_id, _)| lead_id.as_str())
            .collect();
        let applied = applied_leads.len() as u64;
        summary.rescored += applied;
        summary.conflicts += writes as u64 - applied;
        summary.level_changes += level_changes
            .iter()
            .filter(|c| applied_leads.contains(c.lead_id.as_str()))
            .count() as u64;
        summary.leads_examined += batch_ids.len() as u64;
        summary.batches += 1;
        *batches_left -= 1;

        let progressed = results.last().map(db::changes).unwrap_or(0) == 1;
        if !progressed {
            // The pass was restarted (a recalculation request) or moved by someone else: leave it
            // for the next run; the guarded writes above could not clobber anything.
            return Ok(false);
        }
        if pass_done {
            return Ok(true);
        }
        cursor = new_cursor;
    }
}

/// What the batch's leads with a current heat state need read to move to `now`: the touches
/// their pending ones crossed (ONE query for the batch, none when no state asks).
async fn crossings(
    tenant: &Tenant,
    leads: &[(String, StoredHeat)],
    config_version: i64,
    now: DateTime<Utc>,
    summary: &mut RunSummary,
) -> Result<BTreeMap<String, CrossingRead>, StoreError> {
    let ranges: Vec<(String, String)> = leads
        .iter()
        .filter_map(|(id, stored)| {
            let range = stored.crossing(config_version, now)?;
            Some((id.clone(), clock::rfc3339(range.after)))
        })
        .collect();
    let mut reads: BTreeMap<String, CrossingRead> = BTreeMap::new();
    for row in store::crossings_of(tenant, &ranges, &clock::rfc3339(now)).await? {
        let read = reads.entry(row.lead_id.clone()).or_default();
        match (row.kind, row.occurred_at) {
            // The next touch time after `now`, if any.
            (None, at) => {
                read.next_pending_at = at.and_then(|at| {
                    chrono::DateTime::parse_from_rfc3339(&at)
                        .ok()
                        .map(|at| at.with_timezone(&Utc))
                });
            }
            (Some(kind), Some(at)) => {
                if let Some(touch) = readable_touch(tenant, summary, &row.lead_id, &kind, &at) {
                    read.touches.push(touch);
                }
            }
            (Some(_), None) => {}
        }
    }
    Ok(reads)
}

/// A stored interaction as a scoring touch; an unreadable one is logged and counted.
fn readable_touch(
    tenant: &Tenant,
    summary: &mut RunSummary,
    lead_id: &str,
    kind: &str,
    occurred_at: &str,
) -> Option<Touch> {
    let touch = interactions::stored_touch(kind, occurred_at);
    if touch.is_none() {
        summary.errors += 1;
        worker::console_error!(
            "{}",
            serde_json::json!({
                "job": "scoring",
                "level": "error",
                "org": tenant.org_id(),
                "lead": lead_id,
                "error": "unreadable interaction",
            })
        );
    }
    touch
}

/// Queries of a rescoring batch besides its heat writes and level changes: four reads (flagged
/// leads, current leads, the history of the leads to rebuild, the crossed touches) and the
/// progress.
const BATCH_OVERHEAD: usize = 5;
/// Statements a batch's level changes may take (each under [`JSON_STATEMENT_BYTES`]).
const LEVEL_CHANGE_STATEMENTS: usize = 10;
/// What taking up an org needs room for: its directory entry, starting a pass (2 queries), then a
/// batch of at least one lead.
const ORG_START_QUERIES: usize = 1 + 2 + BATCH_OVERHEAD + LEVEL_CHANGE_STATEMENTS + 1;

/// Whether `queries` more still fit in this invocation's [`QUERY_BUDGET`].
fn room_for(queries: usize) -> bool {
    db::invocation_queries() as usize + queries <= QUERY_BUDGET
}

/// The snapshot pass for `day`: shard after shard in index order from `shard`, every lead of a
/// shard in id order (from `cursor` on the first), at most `batches` batches in all. Returns the
/// shard and cursor it stopped at and whether the pass is done (the last shard finished). A shard
/// that fails is logged and counted, and the pass goes on with the next one (that shard misses the
/// day's snapshots rather than holding up every shard after it).
async fn snapshot_pass(
    directory: &Directory,
    day: NaiveDate,
    shard: u32,
    cursor: String,
    batches: usize,
    summary: &mut RunSummary,
) -> (u32, String, bool) {
    let shard_count = directory.shard_count();
    let mut batches_left = batches;
    let (mut index, mut cursor) = (shard, cursor);
    while index < shard_count {
        let outcome = match directory.shard(index) {
            Ok(shard) => {
                // The orgs a shard move is copying or deleting are left out: a snapshot written
                // under a move would change the counts it verifies (they miss that day's).
                match moves::moving_on_shard(directory, index).await {
                    Ok(moving) => {
                        snapshot_shard(
                            &shard,
                            day,
                            cursor.clone(),
                            &moving,
                            &mut batches_left,
                            summary,
                        )
                        .await
                    }
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(error),
        };
        let stopped_at = match outcome {
            Ok((stopped_at, true)) => stopped_at,
            Ok((stopped_at, false)) => return (index, stopped_at, false),
            Err(error) => {
                shard_error(summary, index, "snapshots", &error);
                cursor
            }
        };
        if index + 1 == shard_count {
            return (index, stopped_at, true);
        }
        index += 1;
        cursor = String::new();
    }
    // A position past the shards bound now: nothing is left of that pass.
    (index, cursor, true)
}

/// Snapshots and trends for `day` of one shard's leads in id order from `cursor`, while
/// `batches_left` and the query budget allow; returns where it stopped and whether every lead of
/// the shard is done. The leads of the orgs in `moving` get no snapshot and no trend.
async fn snapshot_shard(
    shard: &Shard,
    day: NaiveDate,
    mut cursor: String,
    moving: &BTreeSet<String>,
    batches_left: &mut usize,
    summary: &mut RunSummary,
) -> Result<(String, bool), StoreError> {
    let day_text = day.to_string();
    let (week_ago, two_weeks_ago) = trend_days(day);
    let trend_day_texts = [week_ago.to_string(), two_weeks_ago.to_string()];
    // Two reads, then at least one pair of writes, and the pruning after the last batch.
    while *batches_left > 0 && room_for(2 + 2 + PRUNE_ROUNDS) {
        *batches_left -= 1;
        let leads = store::all_leads_after(shard, &cursor, SNAPSHOT_BATCH_SIZE).await?;
        if leads.is_empty() {
            return Ok((cursor, true));
        }
        let ids: Vec<String> = leads.iter().map(|l| l.id.clone()).collect();
        let mut history: BTreeMap<String, Vec<(NaiveDate, f64)>> = BTreeMap::new();
        for snapshot in store::snapshots_on(shard, &ids, &trend_day_texts).await? {
            if let Ok(day) = snapshot.day.parse::<NaiveDate>() {
                history
                    .entry(snapshot.lead_id)
                    .or_default()
                    .push((day, snapshot.score));
            }
        }
        let writes: Vec<SnapshotWrite> = leads
            .iter()
            .filter(|lead| !moving.contains(&lead.org_id))
            .map(|lead| SnapshotWrite {
                lead_id: lead.id.clone(),
                org_id: lead.org_id.clone(),
                score: lead.heat_score,
                level: lead.heat_level,
                trend: trend_on(
                    day,
                    lead.heat_score,
                    history.get(&lead.id).map(Vec::as_slice).unwrap_or(&[]),
                ),
            })
            .collect();
        // The writes travel as JSON in one parameter: cut so that each statement stays under
        // D1's 100,000 bytes (a thousand snapshots are about 110 KB).
        let sizes: Vec<usize> = writes
            .iter()
            .map(|w| serde_json::to_string(w).map_or(0, |json| json.len() + 1))
            .collect();
        let mut statements = Vec::new();
        for run in runs_within(&sizes, usize::MAX, JSON_STATEMENT_BYTES) {
            statements.push(heat::snapshot_upsert_statement(
                shard,
                &day_text,
                &writes[run.clone()],
            )?);
            statements.push(heat::trend_update_statement(shard, &writes[run])?);
        }
        if !room_for(statements.len() + PRUNE_ROUNDS) {
            return Ok((cursor, false));
        }
        shard.batch(statements).await?;
        summary.snapshots += writes.len() as u64;
        cursor = ids.last().cloned().unwrap_or(cursor);
        if leads.len() < SNAPSHOT_BATCH_SIZE {
            return Ok((cursor, true));
        }
    }
    Ok((cursor, false))
}

/// Prunes snapshots of days before `cutoff` on every shard: [`PRUNE_ROUNDS`] statements in all
/// (at least one per shard), each shard's share of what is left, within the query budget. A shard
/// that fails is logged and counted; what is left waits for the next finished pass.
async fn prune_snapshots(directory: &Directory, cutoff: &str, summary: &mut RunSummary) {
    let shard_count = directory.shard_count();
    let mut rounds_left = PRUNE_ROUNDS.max(shard_count as usize);
    for index in 0..shard_count {
        let share = rounds_left / (shard_count - index) as usize;
        let outcome = match directory.shard(index) {
            Ok(shard) => prune_shard(&shard, cutoff, share, summary).await,
            Err(error) => Err((0, error)),
        };
        match outcome {
            Ok(rounds) => rounds_left -= rounds,
            Err((rounds, error)) => {
                rounds_left -= rounds;
                shard_error(summary, index, "snapshot pruning", &error);
            }
        }
    }
}

/// Up to `rounds` pruning statements on one shard, while each deletes a full batch; returns how
/// many it sent (also on failure).
async fn prune_shard(
    shard: &Shard,
    cutoff: &str,
    rounds: usize,
    summary: &mut RunSummary,
) -> Result<usize, (usize, StoreError)> {
    for sent in 0..rounds {
        if !room_for(1) {
            return Ok(sent);
        }
        let pruned = heat::prune_snapshots(shard, cutoff, PRUNE_LIMIT)
            .await
            .map_err(|error| (sent + 1, error))?;
        summary.snapshots_pruned += pruned;
        if pruned < PRUNE_LIMIT as u64 {
            return Ok(sent + 1);
        }
    }
    Ok(rounds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn each_frequent_run_starts_rescoring_on_the_next_shard() {
        let at = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 3, 8, h, m, 0).unwrap();
        let firsts: Vec<u32> = [(0, 0), (0, 15), (0, 30), (0, 45), (1, 0)]
            .iter()
            .map(|&(h, m)| first_shard(at(h, m), 3))
            .collect();
        for pair in firsts.windows(2) {
            assert_eq!(pair[1], (pair[0] + 1) % 3, "{firsts:?}");
        }
        // Any time within a 15-minute slot gives the slot's shard; one shard means shard 0.
        assert_eq!(first_shard(at(0, 16), 3), first_shard(at(0, 15), 3));
        assert_eq!(first_shard(at(0, 15), 1), 0);
        assert_eq!(first_shard(at(0, 15), 0), 0);
    }
}
