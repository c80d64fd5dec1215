//! The scheduled heat recalculation worker.
//!
//! Two crons (wrangler.toml): `*/15 * * * *` rescores the leads that need it, and `5 0 * * *`
//! does the same and then writes the day's snapshots and trends and prunes old snapshots, then
//! runs the retention sweep of the other tables ([`retention`]). Both walk every shard; the
//! lease, the run records and the snapshot progress live in the directory. The
//! scheduled time is the job's clock (scores, snapshots, `job_runs`), which is also how the
//! end-to-end tests move time through `POST /__dev/cron/scoring?time=...`. Only the lease and the
//! elapsed time use the wall clock: they measure real overlap and real duration.

mod job;
mod ops;
mod retention;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use leadheat_domain::live::ChangeSource;
use leadheat_domain::rescoring::{RunKind, RunSummary};
use leadheat_edge::directory::{jobs, Directory};
use leadheat_edge::{clock, db, http, live};
use worker::{event, Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

#[event(fetch)]
pub async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    match req.path().as_str() {
        "/health" => http::health(),
        path if path == "/ops" || path.starts_with("/ops/") => {
            // One invocation: the move's D1 queries are counted, and limited, from zero.
            http::respond(db::invocation(ops::handle(req, &env)).await)
        }
        path => {
            http::Problem::not_found(format!("the scoring worker serves no {path}")).into_response()
        }
    }
}

#[event(scheduled)]
pub async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    // One invocation: its D1 queries are counted, and limited, from zero.
    db::invocation(run_scheduled(event, env)).await
}

async fn run_scheduled(event: ScheduledEvent, env: Env) {
    let wall_start = clock::now_ms();
    let scheduled_ms = event.schedule() as i64;
    let now = clock::from_ms(scheduled_ms);
    let cron = event.cron();
    let run_id = clock::new_id("run");
    let started_at = clock::rfc3339(now);

    let mut summary = RunSummary {
        job: "scoring",
        kind: Some(RunKind::from_cron(&cron)),
        cron: cron.clone(),
        scheduled_time: started_at.clone(),
        lease: "none",
        ..RunSummary::default()
    };

    let directory = match Directory::open(&env) {
        Ok(directory) => directory,
        Err(error) => {
            worker::console_error!("scoring run without a database: {}", error);
            return;
        }
    };

    let mut changed_orgs = BTreeSet::new();
    let outcome = job::run(
        &directory,
        &env,
        &run_id,
        now,
        &mut summary,
        &mut changed_orgs,
    )
    .await;
    // Open pages of the orgs whose leads were rescored refresh (committed batches count even
    // when a later one failed).
    for org_id in &changed_orgs {
        live::publish(&env, org_id, ChangeSource::Scoring, &started_at).await;
    }
    if let Err(error) = outcome {
        summary.errors += 1;
        summary.finished = false;
        summary.will_resume = true;
        worker::console_error!(
            "{}",
            serde_json::json!({"job": "scoring", "level": "error", "error": error.to_string()})
        );
    }

    if summary.kind == Some(RunKind::Nightly) {
        sweep(&directory, now).await;
    }

    // Unfinished shard moves go on with what is left of the invocation's queries (one is kept for
    // the run's record).
    advance_moves(&directory, &env).await;

    summary.elapsed_ms = clock::now_ms() - wall_start;
    let summary_json = serde_json::to_value(&summary).unwrap_or_else(|_| serde_json::json!({}));
    // The one structured line per run.
    worker::console_log!("{}", summary_json);

    let finished_at = clock::rfc3339(clock::from_ms(scheduled_ms + summary.elapsed_ms.max(0)));
    if let Err(error) = jobs::record_run(
        &directory,
        &run_id,
        "scoring",
        &cron,
        &started_at,
        &finished_at,
        &summary_json,
    )
    .await
    {
        worker::console_error!("recording the scoring run failed: {}", error);
    }
}

/// Advances unfinished shard moves (docs/scaling.md); one log line when there were any.
async fn advance_moves(directory: &Directory, env: &Env) {
    let budget = ops::move_budget(env).min(MOVES_CRON_BUDGET);
    match ops::advance_unfinished(directory, env, budget).await {
        Ok(advanced) if advanced.is_empty() => {}
        Ok(advanced) => {
            let moves: Vec<serde_json::Value> = advanced
                .iter()
                .map(|a| {
                    serde_json::json!({"org": a.row.org_id, "phase": a.row.phase,
                                       "table": a.row.current_table, "steps": a.steps,
                                       "stopped": a.stopped})
                })
                .collect();
            worker::console_log!(
                "{}",
                serde_json::json!({"job": "org-moves", "moves": moves})
            );
        }
        Err(error) => worker::console_error!(
            "{}",
            serde_json::json!({"job": "org-moves", "level": "error", "error": error.to_string()})
        ),
    }
}

/// The queries of a cron invocation that moves may have used up to (of D1's 1,000): the rest is
/// the run's record.
const MOVES_CRON_BUDGET: u32 = 990;

/// The nightly retention sweep, after the scoring work (whether or not this run held the lease:
/// its deletes are idempotent), over every shard and the directory. Its own log line; a failing
/// part is logged on its own line and retried the next night.
async fn sweep(directory: &Directory, now: DateTime<Utc>) {
    let swept = retention::sweep(directory, now).await;
    let mut line = serde_json::to_value(&swept).unwrap_or_else(|_| serde_json::json!({}));
    line["job"] = serde_json::json!("retention");
    line["scheduled_time"] = serde_json::json!(clock::rfc3339(now));
    line["max_queries"] = serde_json::json!(retention::MAX_QUERIES);
    worker::console_log!("{}", line);
}
