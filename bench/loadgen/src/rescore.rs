//! Part 3: a full rescore of the seeded org through the scoring job, against the naive
//! one-query-per-lead rescore (bench/baseline's `/naive-rescore`) through the same runtime
//! machinery on a sample, extrapolated to the whole org.
//!
//! The job: `POST /v1/scoring/recalculate` (flags every lead and queues the org's pass), then
//! `POST /__dev/cron/scoring` until the latest `job_runs.summary` says `finished`. Each run's
//! `elapsed_ms` (wall time, an upper bound of its CPU time) is compared with the cron CPU budget.

use std::time::Instant;

use serde_json::{json, Value};

use crate::report::{Figure, PartOutput};
use crate::seed::{self, human, Seeded, ORG};
use crate::util::{self, Flavor, Runtime, Settings};
use crate::PartResult;

/// Workers' CPU limit for a cron invocation (the default 30 s; cron triggers firing less than
/// hourly get the same). Wall time is an upper bound of CPU time, so a run under it is within it.
const CPU_BUDGET_MS: f64 = 30_000.0;
/// Leads per naive invocation: 2 queries a lead + 2 stays under D1's 1,000 queries per invocation.
const NAIVE_PER_INVOCATION: usize = 450;

pub fn run(settings: &Settings, seeded: &mut Option<Seeded>) -> PartResult {
    if seeded.is_none() {
        *seeded = Some(seed::seed(settings).map_err(|e| (e, None))?);
    }
    let data = seeded.clone().expect("seeded");
    let size = data.size_label();
    let mut notes = Vec::new();
    let mut figures = Vec::new();

    // --- Baseline: naive, on a sample, through the baseline runtime on the same database.
    let sample = settings.naive_sample.min(data.leads);
    println!("[bench] rescore: naive baseline on {sample} leads");
    let naive = {
        let log = settings.work_dir.join("rescore-baseline.log");
        let runtime = Runtime::start(&settings.root, Flavor::Baseline, &data.persist, false, &log)
            .map_err(|e| (e, None))?;
        let agent = util::agent();
        let mut after = String::new();
        let mut done = 0usize;
        let mut invocations = 0usize;
        let mut queries = 0u64;
        let mut max_ms = 0f64;
        let t0 = Instant::now();
        while done < sample {
            let limit = NAIVE_PER_INVOCATION.min(sample - done);
            let path = format!("/naive-rescore?org={ORG}&after={after}&limit={limit}");
            let reply =
                util::send(agent.post(&runtime.url(&path)), Some(b"")).map_err(|e| (e, None))?;
            if reply.status != 200 {
                return Err((
                    format!("naive rescore answered {}: {}", reply.status, reply.body),
                    None,
                ));
            }
            let body: Value = serde_json::from_str(&reply.body).unwrap_or_default();
            invocations += 1;
            done += body["leads"].as_u64().unwrap_or(0) as usize;
            queries += body["queries"].as_u64().unwrap_or(0);
            max_ms = max_ms.max(body["elapsed_ms"].as_f64().unwrap_or(0.0));
            match body["last_id"].as_str() {
                Some(id) if !body["done"].as_bool().unwrap_or(true) => after = id.to_string(),
                _ => break,
            }
        }
        let seconds = t0.elapsed().as_secs_f64();
        json!({"leads": done, "invocations": invocations, "queries": queries, "seconds": seconds,
               "leads_per_s": done as f64 / seconds, "max_invocation_ms": max_ms})
    };
    let naive_rate = naive["leads_per_s"].as_f64().unwrap_or(f64::NAN);
    let naive_leads = naive["leads"].as_u64().unwrap_or(0) as f64;
    let naive_invocations = naive["invocations"].as_u64().unwrap_or(0) as f64;
    let naive_full_s = data.leads as f64 / naive_rate;
    let naive_full_invocations =
        (naive_invocations * data.leads as f64 / naive_leads.max(1.0)).ceil();
    println!(
        "[bench] rescore: naive {:.0} leads/s ({} leads, {} invocations); extrapolated to {}: {:.0} s, {:.0} invocations",
        naive_rate, naive_leads, naive_invocations, data.leads, naive_full_s, naive_full_invocations
    );

    // --- The scoring job, through the Leadheat runtime.
    let log = settings.work_dir.join("rescore-runtime.log");
    let runtime = Runtime::start(&settings.root, Flavor::Leadheat, &data.persist, false, &log)
        .map_err(|e| (e, None))?;
    let agent = util::agent();
    let token = leadheat_e2e::token(ORG, "admin");
    let t_request = Instant::now();
    let reply = util::send(
        agent
            .post(&runtime.url("/v1/scoring/recalculate"))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", "application/json"),
        Some(b"{}"),
    )
    .map_err(|e| (e, None))?;
    let request_ms = util::ms(t_request.elapsed());
    if reply.status != 202 && reply.status != 200 {
        let partial = PartOutput {
            figures: vec![Figure::new(
                "rescore",
                "naive rescore (baseline only)",
                format!("{} sample", human(sample)),
                "leads/s",
            )
            .value(naive_rate)],
            details: json!({"naive": naive}),
            ..PartOutput::default()
        };
        return Err((
            format!(
                "POST /v1/scoring/recalculate answered {}: {} (the scoring API is not ready; the part is ready to run once it is)",
                reply.status,
                reply.body.chars().take(200).collect::<String>()
            ),
            Some(partial),
        ));
    }
    // job_runs is in the directory.
    let conn = util::read_only(&data.directory_path).map_err(|e| (e, None))?;
    let latest = |conn: &rusqlite::Connection| -> Option<(String, Value)> {
        conn.query_row(
            "SELECT id, summary FROM job_runs WHERE job = 'scoring' ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .ok()
        .map(|(id, s)| (id, serde_json::from_str(&s).unwrap_or_default()))
    };
    let before = latest(&conn).map(|(id, _)| id);
    let mut invocations = 0usize;
    let mut rescored = 0u64;
    let mut examined = 0u64;
    let mut conflicts = 0u64;
    let mut errors = 0u64;
    let mut max_elapsed = 0f64;
    let mut elapsed_sum = 0f64;
    let mut finished = false;
    let mut last_summary = Value::Null;
    let t0 = Instant::now();
    println!("[bench] rescore: firing the scoring job until it finishes");
    while invocations < settings.rescore_max_invocations {
        let reply = util::send(agent.post(&runtime.url("/__dev/cron/scoring")), Some(b""))
            .map_err(|e| (e, None))?;
        invocations += 1;
        if reply.status != 200 {
            return Err((
                format!(
                    "/__dev/cron/scoring answered {}: {}",
                    reply.status, reply.body
                ),
                None,
            ));
        }
        let Some((id, summary)) = latest(&conn) else {
            return Err(("the scoring job recorded no job_runs row".to_string(), None));
        };
        if Some(&id) == before.as_ref() {
            return Err((
                "the scoring job ran but recorded no new job_runs row".to_string(),
                None,
            ));
        }
        rescored += summary["rescored"].as_u64().unwrap_or(0);
        examined += summary["leads_examined"].as_u64().unwrap_or(0);
        conflicts += summary["conflicts"].as_u64().unwrap_or(0);
        errors += summary["errors"].as_u64().unwrap_or(0);
        let elapsed = summary["elapsed_ms"].as_f64().unwrap_or(0.0);
        max_elapsed = max_elapsed.max(elapsed);
        elapsed_sum += elapsed;
        finished = summary["finished"].as_bool().unwrap_or(false);
        last_summary = summary;
        if invocations.is_multiple_of(20) {
            println!("[bench] rescore: {invocations} invocations, {rescored} leads rescored");
        }
        if finished {
            break;
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let rate = rescored as f64 / seconds;
    drop(runtime);
    println!(
        "[bench] rescore: {rescored} leads in {seconds:.1} s ({rate:.0} leads/s), {invocations} invocations, longest {max_elapsed:.0} ms, finished: {finished}"
    );

    let full = format!(
        "{size}{}",
        if finished {
            ""
        } else {
            " (NOT finished: invocation cap)"
        }
    );
    figures.push(
        Figure::new(
            "rescore",
            "full rescore throughput",
            full.clone(),
            "leads/s",
        )
        .value(rate)
        .baseline(format!("naive, {} sample", human(sample)), naive_rate)
        .target("≥ 10× naive", Some(rate >= 10.0 * naive_rate)),
    );
    figures.push(
        Figure::new("rescore", "full rescore time", full.clone(), "s")
            .value(seconds)
            .baseline("naive, extrapolated", naive_full_s)
            .note(format!("{rescored} leads rescored of {examined} examined, {conflicts} conflicts, {errors} errors")),
    );
    figures.push(
        Figure::new("rescore", "invocations", full.clone(), "")
            .value(invocations as f64)
            .baseline("naive, extrapolated", naive_full_invocations),
    );
    figures.push(
        Figure::new("rescore", "longest invocation (wall, ≥ CPU)", full, "ms")
            .value(max_elapsed)
            .baseline(
                "naive, longest",
                naive["max_invocation_ms"].as_f64().unwrap_or(f64::NAN),
            )
            .target(
                format!("≤ {:.0} s CPU budget", CPU_BUDGET_MS / 1000.0),
                Some(max_elapsed <= CPU_BUDGET_MS),
            ),
    );
    notes.push(format!(
        "Job: `POST /v1/scoring/recalculate` ({request_ms:.0} ms: flags every lead, queues the pass), then `POST /__dev/cron/scoring` \
         until `job_runs.summary.finished`; {invocations} invocations, mean {:.0} ms each by the job's own `elapsed_ms`. Budget per \
         invocation: SCORING_BATCH_SIZE × SCORING_BATCHES_PER_RUN from wrangler.toml.",
        elapsed_sum / invocations.max(1) as f64
    ));
    notes.push(format!(
        "Naive baseline: bench/baseline `/naive-rescore` served by bench/runtime-baseline.mjs on the same database: per lead one \
         SELECT of its touchpoints and one UPDATE, {NAIVE_PER_INVOCATION} leads per invocation (under D1's 1,000 queries per \
         invocation), scoring with the same domain function; {} leads in {} invocations, {} queries, {:.1} s, extrapolated linearly \
         to {} leads.",
        naive_leads,
        naive_invocations,
        naive["queries"],
        naive["seconds"].as_f64().unwrap_or(0.0),
        data.leads
    ));
    notes.push(
        "CPU budget: a cron invocation's CPU limit (30 s by default). The figure is the job's wall time per invocation, which \
         includes waiting on D1 and so bounds its CPU time from above."
            .to_string(),
    );
    Ok(PartOutput {
        figures,
        details: json!({
            "naive": naive,
            "job": {"invocations": invocations, "rescored": rescored, "examined": examined, "conflicts": conflicts,
                    "errors": errors, "seconds": seconds, "leads_per_s": rate, "max_invocation_ms": max_elapsed,
                    "finished": finished, "last_summary": last_summary, "recalculate_request_ms": request_ms},
        }),
        notes,
        ..PartOutput::default()
    })
}
