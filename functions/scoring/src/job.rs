//! One scoring run: take the lease, rescore org by org in keyset batches within the budget, and on
//! the nightly cron (or to finish a nightly pass a budget cut short) write snapshots and trends
//! and prune old snapshots.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use leadheat_domain::d1_limits::runs_within;
use leadheat_domain::rescoring::{
    merge_keyset, plan_batch, retention_cutoff, retention_days_from_var, snapshot_day, trend_days,
    trend_on, Budget, RunKind, RunSummary, StoredHeat, SNAPSHOT_BATCH_SIZE,
};
use leadheat_domain::scoring::ScoringConfig;
use leadheat_domain::types::HeatLevel;
use leadheat_edge::http::Problem;
use leadheat_edge::store::heat::{self, HeatWrite, PendingLevelChange, SnapshotWrite};
use leadheat_edge::store::interactions;
use leadheat_edge::store::rescoring::{self as store, LeadHeatRow, OrgWork};
use leadheat_edge::{clock, config, db};
use worker::{D1Database, Env};

/// The lease every scoring run takes.
const LEASE_NAME: &str = "scoring";
/// Longer than any invocation can last (cron invocations are cut at 15 minutes), so a lease only
/// outlives its holder when the holder crashed, and then for at most this long.
const LEASE_MS: i64 = 15 * 60 * 1000;
/// How long a run that finds the lease taken waits for it before giving up (the work is left to
/// the next run; the holder is doing it anyway).
const LEASE_WAIT_MS: i64 = 20_000;
const LEASE_POLL_MS: u64 = 250;
/// Orgs considered per run; more are reached by later runs.
const ORGS_PER_RUN: usize = 1000;
/// Leads scored under an older config flagged per org per pass start.
const STALE_FLAG_LIMIT: usize = 10_000;
/// Bytes of rows (as JSON: snapshots, level changes) per set-based statement, under D1's 100,000
/// per statement with room for the SQL.
const JSON_STATEMENT_BYTES: usize = 90_000;
/// D1 queries a run plans its batches within (D1 allows 1,000 per invocation): a batch that
/// would not fit is left to the next run, which resumes where this one stopped.
const QUERY_BUDGET: usize = 900;
/// Snapshots deleted per statement, and statements per run.
const PRUNE_LIMIT: usize = 5000;
const PRUNE_ROUNDS: usize = 10;

/// Runs the job; `summary` collects what it did and `changed_orgs` the orgs whose leads it
/// rescored (both also on error, up to the error).
pub async fn run(
    db: &D1Database,
    env: &Env,
    run_id: &str,
    now: DateTime<Utc>,
    summary: &mut RunSummary,
    changed_orgs: &mut BTreeSet<String>,
) -> Result<(), Problem> {
    let budget = Budget::from_vars(
        config::optional(env, "SCORING_BATCH_SIZE").as_deref(),
        config::optional(env, "SCORING_BATCHES_PER_RUN").as_deref(),
    );
    let retention_days = retention_days_from_var(
        config::optional(env, "SCORING_SNAPSHOT_RETENTION_DAYS").as_deref(),
    );

    if !acquire_lease(db, run_id).await? {
        summary.lease = "busy";
        summary.finished = false;
        summary.will_resume = true;
        return Ok(());
    }
    summary.lease = "acquired";
    let outcome = work(db, now, budget, retention_days, summary, changed_orgs).await;
    // Released whatever happened; a crash leaves it to expire.
    let released = store::release_lease(db, LEASE_NAME, run_id).await;
    outcome?;
    released
}

/// Takes the lease, waiting a little for a run that holds it.
async fn acquire_lease(db: &D1Database, run_id: &str) -> Result<bool, Problem> {
    let deadline = clock::now_ms() + LEASE_WAIT_MS;
    loop {
        let now_ms = clock::now_ms();
        let acquired = store::acquire_lease(
            db,
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
    db: &D1Database,
    now: DateTime<Utc>,
    budget: Budget,
    retention_days: i64,
    summary: &mut RunSummary,
    changed_orgs: &mut BTreeSet<String>,
) -> Result<(), Problem> {
    let kind = summary.kind.unwrap_or(RunKind::Frequent);
    let rescoring_finished = rescore(db, now, budget, summary, changed_orgs).await?;

    // The snapshot pass: a nightly run starts the day's; a frequent run finishes one that an
    // earlier run's budget cut short.
    let pass = match kind {
        RunKind::Nightly => Some((snapshot_day(now), String::new())),
        RunKind::Frequent => match store::latest_snapshot_progress(db).await? {
            Some((day, cursor, false)) => day.parse::<NaiveDate>().ok().map(|day| (day, cursor)),
            _ => None,
        },
    };
    let mut snapshots_finished = true;
    if let Some((day, cursor)) = pass {
        let (cursor, finished) =
            snapshot_pass(db, day, cursor, budget.snapshot_batches(), summary).await?;
        summary.snapshot_day = Some(day.to_string());
        summary.snapshot_cursor = Some(cursor);
        summary.snapshots_finished = Some(finished);
        snapshots_finished = finished;
        if finished {
            let cutoff = retention_cutoff(day, retention_days).to_string();
            for _ in 0..PRUNE_ROUNDS {
                let pruned = heat::prune_snapshots(db, &cutoff, PRUNE_LIMIT).await?;
                summary.snapshots_pruned += pruned;
                if pruned < PRUNE_LIMIT as u64 {
                    break;
                }
            }
        }
    }

    summary.finished = rescoring_finished && snapshots_finished;
    summary.will_resume = !summary.finished;
    Ok(())
}

/// Rescoring within the budget; returns whether every org's work is done.
async fn rescore(
    db: &D1Database,
    now: DateTime<Utc>,
    budget: Budget,
    summary: &mut RunSummary,
    changed_orgs: &mut BTreeSet<String>,
) -> Result<bool, Problem> {
    let orgs = store::orgs_with_work(db, ORGS_PER_RUN).await?;
    let mut all_done = orgs.len() < ORGS_PER_RUN;
    let mut batches_left = budget.batches_per_run;
    for org in &orgs {
        // Starting a pass costs 2 queries; then at least one lead per batch.
        if batches_left == 0 || !room_for(2 + BATCH_OVERHEAD + LEVEL_CHANGE_STATEMENTS + 1) {
            all_done = false;
            break;
        }
        let config = match &org.config {
            Ok(config) => config,
            Err(error) => {
                summary.errors += 1;
                worker::console_error!(
                    "{{\"job\":\"scoring\",\"level\":\"error\",\"org\":{:?},\"error\":\"unreadable weights: {}\"}}",
                    org.org_id,
                    error
                );
                continue;
            }
        };
        summary.orgs += 1;
        let rescored_before = summary.rescored;
        let org_done = rescore_org(
            db,
            org,
            config,
            now,
            budget.batch_size,
            &mut batches_left,
            summary,
        )
        .await;
        if summary.rescored > rescored_before {
            changed_orgs.insert(org.org_id.clone());
        }
        all_done &= org_done?;
    }
    Ok(all_done)
}

/// Works through one org's pass from its durable cursor; returns whether the pass finished.
async fn rescore_org(
    db: &D1Database,
    org: &OrgWork,
    config: &ScoringConfig,
    now: DateTime<Utc>,
    batch_size: usize,
    batches_left: &mut usize,
    summary: &mut RunSummary,
) -> Result<bool, Problem> {
    let now_text = clock::rfc3339(now);
    let decay_on = config.decay_half_life_days.is_some();
    let resumable = org.run_status.as_deref() == Some("running")
        && org.run_config_version == Some(org.config_version);
    let mut cursor: Option<String> = if resumable {
        org.cursor_lead_id.clone()
    } else {
        // A new pass, a requested one starting, or a running one whose config changed since it
        // began (the change flagged every lead again, so it starts over): leads a touchpoint
        // scored with an outdated config join the flagged ones first.
        heat::flag_stale_versions(db, &org.org_id, org.config_version, STALE_FLAG_LIMIT).await?;
        store::start_pass(db, &org.org_id, org.config_version, decay_on, &now_text).await?;
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
        let flagged = store::flagged_after(db, &org.org_id, &after, batch_size).await?;
        let current = if decay_on {
            store::current_after(db, &org.org_id, org.config_version, &after, batch_size).await?
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
            .map(|row| (row.id.clone(), stored_heat(row)))
            .collect();

        let touch_rows = store::touches_of(db, &batch_ids).await?;
        let mut touches = Vec::with_capacity(touch_rows.len());
        for row in touch_rows {
            match interactions::stored_touch(&row.kind, &row.occurred_at) {
                Some(touch) => touches.push((row.lead_id, touch)),
                None => {
                    summary.errors += 1;
                    worker::console_error!(
                        "{{\"job\":\"scoring\",\"level\":\"error\",\"lead\":{:?},\"error\":\"unreadable interaction\"}}",
                        row.lead_id
                    );
                }
            }
        }
        let plans = plan_batch(&leads, touches, config, org.config_version, now);

        // ONE db::batch: the guarded heat writes, the level changes of the writes that applied,
        // and the pass's cursor.
        let mut statements = Vec::new();
        let mut level_changes = Vec::new();
        for (lead_id, plan) in &plans {
            let Some(plan) = plan else { continue };
            let row = &rows[lead_id];
            statements.push(heat::write_statement(
                db,
                &HeatWrite {
                    org_id: &org.org_id,
                    lead_id,
                    heat: &plan.heat,
                    config_version: org.config_version,
                    scored_at: &now_text,
                    expected_stamp: row.heat_stamp,
                    requires_interaction: None,
                    refresh_last_interaction: false,
                },
            )?);
            if let Some((old, new)) = plan.level_change {
                level_changes.push(PendingLevelChange {
                    id: clock::new_id("hlc"),
                    org_id: org.org_id.clone(),
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
                db,
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
            db,
            &org.org_id,
            cursor.as_deref(),
            new_cursor.as_deref(),
            batch_ids.len(),
            pass_done,
            &now_text,
        )?);
        let results = db::batch(db, statements).await?;

        let applied = results[..writes]
            .iter()
            .filter(|r| db::changes(r) == 1)
            .count() as u64;
        summary.rescored += applied;
        summary.conflicts += writes as u64 - applied;
        summary.level_changes += results[writes..writes + change_runs.len()]
            .iter()
            .map(db::changes)
            .sum::<u64>();
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

fn stored_heat(row: &LeadHeatRow) -> StoredHeat {
    StoredHeat {
        score: row.heat_score,
        level: row.heat_level.parse().unwrap_or(HeatLevel::Cold),
        needs_rescore: row.needs_rescore != 0,
        scored_config_version: row.scored_config_version,
    }
}

/// Queries of a rescoring batch besides its heat writes and level changes: three reads and the
/// progress.
const BATCH_OVERHEAD: usize = 4;
/// Statements a batch's level changes may take (each under [`JSON_STATEMENT_BYTES`]).
const LEVEL_CHANGE_STATEMENTS: usize = 10;

/// Whether `queries` more still fit in this invocation's [`QUERY_BUDGET`].
fn room_for(queries: usize) -> bool {
    db::invocation_queries() as usize + queries <= QUERY_BUDGET
}

/// Snapshots and trends for `day`, every lead in id order from `cursor`, at most `batches`
/// batches; returns where it stopped and whether every lead is done.
async fn snapshot_pass(
    db: &D1Database,
    day: NaiveDate,
    mut cursor: String,
    batches: usize,
    summary: &mut RunSummary,
) -> Result<(String, bool), Problem> {
    let day_text = day.to_string();
    let (week_ago, two_weeks_ago) = trend_days(day);
    let trend_day_texts = [week_ago.to_string(), two_weeks_ago.to_string()];
    for _ in 0..batches {
        let leads = store::all_leads_after(db, &cursor, SNAPSHOT_BATCH_SIZE).await?;
        if leads.is_empty() {
            return Ok((cursor, true));
        }
        let ids: Vec<String> = leads.iter().map(|l| l.id.clone()).collect();
        let mut history: BTreeMap<String, Vec<(NaiveDate, f64)>> = BTreeMap::new();
        for snapshot in store::snapshots_on(db, &ids, &trend_day_texts).await? {
            if let Ok(day) = snapshot.day.parse::<NaiveDate>() {
                history
                    .entry(snapshot.lead_id)
                    .or_default()
                    .push((day, snapshot.score));
            }
        }
        let writes: Vec<SnapshotWrite> = leads
            .iter()
            .map(|lead| SnapshotWrite {
                lead_id: lead.id.clone(),
                org_id: lead.org_id.clone(),
                score: lead.heat_score,
                level: lead.heat_level.clone(),
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
                db,
                &day_text,
                &writes[run.clone()],
            )?);
            statements.push(heat::trend_update_statement(db, &writes[run])?);
        }
        if !room_for(statements.len() + PRUNE_ROUNDS) {
            return Ok((cursor, false));
        }
        db::batch(db, statements).await?;
        summary.snapshots += writes.len() as u64;
        cursor = ids.last().cloned().unwrap_or(cursor);
        if leads.len() < SNAPSHOT_BATCH_SIZE {
            return Ok((cursor, true));
        }
    }
    Ok((cursor, false))
}
