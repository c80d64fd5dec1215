//! Part 1: webhook ingest. Signed Facebook deliveries (1 and 50 entries) at increasing
//! concurrency, each scenario against:
//!
//! - `baseline`: the bare baseline worker (the same webhook_inbox INSERT and queue send, nothing
//!   else; its consumer marks each row processed), in bench/runtime-baseline.mjs;
//! - `leadheat`: the real webhook worker in dev/runtime.mjs, for a page an org has connected, so the
//!   sync consumer processes every event (lead match or creation, touchpoint, score) WHILE the
//!   load runs, in the same workerd process;
//! - `receipt`: the real webhook worker for a page nobody connected: signature check, envelope
//!   split, account lookup in the directory and a receipt in the directory's `webhook_unrouted`
//!   (no body), no queue send and no processing. It isolates the webhook worker from the consumer
//!   sharing its machine.
//!
//! After each scenario the inbox of every shard (and the directory's unrouted receipts) is polled
//! read-only until nothing is pending, so "processed end to end" is per scenario and every
//! delivery is accounted for: rows = sent × rows per delivery = processed + ignored + dead, where
//! an unrouted receipt counts as ignored. The real webhook worker stores a delivery as the domain's
//! `split_delivery` splits it (rows of at most 10 events); the bare worker stores one row.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::data::{meta_delivery, PAGE_ID};
use crate::report::{Figure, PartOutput};
use crate::util::{self, ms, percentile, Flavor, Res, Rng, Runtime, Settings};
use crate::PartResult;

const ORG: &str = "org_bench_ingest";
/// A page no org has connected (the `receipt` mode).
const UNKNOWN_PAGE: &str = "999000000000001";

#[derive(Debug, Clone, serde::Serialize)]
struct Scenario {
    mode: &'static str,
    entries: usize,
    concurrency: usize,
    sent: usize,
    errors: usize,
    first_error: Option<String>,
    seconds: f64,
    deliveries_per_s: f64,
    events_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Inbox rows this scenario added.
    rows: i64,
    processed: i64,
    ignored: i64,
    dead: i64,
    /// Still pending or processing when the drain wait ended.
    unfinished: i64,
    lost: i64,
    /// From the last send until nothing was pending.
    drain_s: f64,
    /// From the first send until every row was finished (NaN when the wait timed out).
    end_to_end_s: f64,
    /// Events finished per second over `end_to_end_s`.
    processed_events_per_s: f64,
    /// Reconciliation crons fired (`POST /__dev/cron/sync`) because processing stalled.
    reconciliations: usize,
}

pub fn run(settings: &Settings) -> PartResult {
    let drain_limit = Duration::from_secs_f64(
        std::env::var("BENCH_DRAIN_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(120.0),
    );
    let mut notes = Vec::new();
    let mut scenarios: Vec<Scenario> = Vec::new();
    let fail = |e: String, scenarios: &[Scenario]| {
        (
            e,
            Some(PartOutput {
                details: json!({ "scenarios": scenarios }),
                ..PartOutput::default()
            }),
        )
    };

    for flavor in [Flavor::Baseline, Flavor::Leadheat] {
        let name = match flavor {
            Flavor::Baseline => "baseline",
            Flavor::Leadheat => "leadheat",
        };
        let persist = util::fresh_dir(&settings.work_dir.join(format!("ingest-{name}")))
            .map_err(|e| fail(e, &scenarios))?;
        let log = settings.work_dir.join(format!("ingest-{name}.log"));
        println!("[bench] ingest: starting the {name} runtime");
        let mut runtime = Runtime::start(&settings.root, flavor, &persist, true, &log)
            .map_err(|e| fail(e, &scenarios))?;
        let mut modes: Vec<(&'static str, &str)> = vec![];
        if flavor == Flavor::Baseline {
            modes.push(("baseline", PAGE_ID));
        } else {
            modes.push(("receipt", UNKNOWN_PAGE));
            match connect_page(&runtime) {
                Ok(()) => modes.push(("leadheat", PAGE_ID)),
                Err(e) => notes.push(format!(
                    "Leadheat: connecting the page through PUT /v1/integrations/facebook failed ({e}); only the receipt path \
                     (unknown page) was measured."
                )),
            }
        }
        let conn = Inbox::open(&runtime).map_err(|e| fail(e, &scenarios))?;
        let mut rng = Rng::new(7);
        let nonce = 100 + rng.below(800);
        let mut seq_base = 0u64;
        let mut stalled = false;
        for (mode, page) in modes {
            for entries in [1usize, 50] {
                for &concurrency in &settings.concurrency {
                    if stalled {
                        // The previous scenario's queue stopped delivering: start this one on a
                        // fresh runtime (same database) so one stall does not cascade.
                        notes.push(format!(
                            "{mode}: the runtime was restarted before the {entries}-entry c={concurrency} scenario because the \
                             previous scenario's events stopped being processed"
                        ));
                        drop(runtime);
                        runtime = Runtime::start(&settings.root, flavor, &persist, false, &log)
                            .map_err(|e| fail(e, &scenarios))?;
                    }
                    // A short warm-up so first-request costs stay out of the figures.
                    let warm_from = util::timestamp(util::now());
                    load(&runtime, page, entries, 1, 3, 0.5, nonce, seq_base);
                    seq_base += 10;
                    drain(&conn, &runtime, &warm_from, drain_limit);
                    let from = util::timestamp(util::now());
                    let max = if entries == 1 {
                        settings.ingest_max
                    } else if mode == "leadheat" {
                        settings.ingest_max_batches
                    } else {
                        (settings.ingest_max / 10).max(20)
                    };
                    let t0 = Instant::now();
                    let outcome = load(
                        &runtime,
                        page,
                        entries,
                        concurrency,
                        max,
                        settings.ingest_secs,
                        nonce,
                        seq_base,
                    );
                    seq_base += max as u64 + 10;
                    let send_done = t0.elapsed();
                    let drain_outcome = drain(&conn, &runtime, &from, drain_limit);
                    let drained = drain_outcome.finished;
                    stalled = !drained;
                    let end_to_end = if drained {
                        send_done + drain_outcome.finished_after
                    } else {
                        t0.elapsed()
                    };
                    let end_to_end = end_to_end.max(send_done);
                    let after = inbox_counts(&conn, &from).map_err(|e| fail(e, &scenarios))?;
                    let delta = |k: &str| after.get(k).copied().unwrap_or(0);
                    let rows: i64 = after.values().sum::<i64>();
                    let sent = outcome.ok_latencies.len();
                    let finished = delta("processed") + delta("ignored") + delta("dead");
                    let per_delivery = rows_per_delivery(mode, page, entries);
                    let sc = Scenario {
                        mode,
                        entries,
                        concurrency,
                        sent,
                        errors: outcome.errors,
                        first_error: outcome.first_error.clone(),
                        seconds: outcome.seconds,
                        deliveries_per_s: sent as f64 / outcome.seconds,
                        events_per_s: (sent * entries) as f64 / outcome.seconds,
                        p50_ms: percentile(&outcome.ok_latencies, 50.0),
                        p99_ms: percentile(&outcome.ok_latencies, 99.0),
                        rows,
                        processed: delta("processed"),
                        ignored: delta("ignored"),
                        dead: delta("dead"),
                        unfinished: delta("pending") + delta("processing"),
                        lost: sent as i64 * per_delivery - rows,
                        drain_s: (end_to_end - send_done).as_secs_f64(),
                        end_to_end_s: if drained {
                            end_to_end.as_secs_f64()
                        } else {
                            f64::NAN
                        },
                        processed_events_per_s: finished as f64 * entries as f64
                            / per_delivery as f64
                            / end_to_end.as_secs_f64(),
                        reconciliations: drain_outcome.reconciliations,
                    };
                    println!(
                        "[bench] ingest {mode:8} entries={entries:2} c={concurrency:2}: {} sent, {:.0} deliveries/s, {:.0} events/s, p50 {:.1} ms, p99 {:.1} ms | rows {} = processed {} + ignored {} + dead {} + unfinished {} | finished {:.1} s after the last send",
                        sc.sent, sc.deliveries_per_s, sc.events_per_s, sc.p50_ms, sc.p99_ms, sc.rows, sc.processed, sc.ignored, sc.dead, sc.unfinished, sc.drain_s
                    );
                    scenarios.push(sc);
                }
            }
        }
        drop(conn);
        drop(runtime);
    }

    Ok(summarize(settings, scenarios, notes))
}

fn summarize(settings: &Settings, scenarios: Vec<Scenario>, mut notes: Vec<String>) -> PartOutput {
    let mut figures = Vec::new();
    let find = |mode: &str, entries: usize, c: usize| {
        scenarios
            .iter()
            .find(|s| s.mode == mode && s.entries == entries && s.concurrency == c)
    };
    let label = |s: &Scenario| format!("{} × {}-entry, c={}", s.sent, s.entries, s.concurrency);
    let mut p50_met = true;
    let mut p50_any = false;
    let mut receipt_p50_met = true;
    let mut receipt_any = false;
    for entries in [1usize, 50] {
        let mut peak: Option<(f64, f64, usize)> = None;
        let mut receipt_peak: Option<(f64, f64, usize)> = None;
        for &c in &settings.concurrency {
            let Some(b) = find("baseline", entries, c) else {
                continue;
            };
            if let Some(l) = find("leadheat", entries, c) {
                let ok = l.p50_ms.is_finite() && b.p50_ms.is_finite() && l.p50_ms <= 1.3 * b.p50_ms;
                p50_met &= ok;
                p50_any = true;
                figures.push(
                    Figure::new("ingest", "p50 latency, full path", label(l), "ms")
                        .value(l.p50_ms)
                        .baseline("bare worker", b.p50_ms)
                        .target("≤ 1.3× baseline", Some(ok)),
                );
                figures.push(
                    Figure::new("ingest", "p99 latency, full path", label(l), "ms")
                        .value(l.p99_ms)
                        .baseline("bare worker", b.p99_ms),
                );
                figures.push(
                    Figure::new(
                        "ingest",
                        "accepted events/s, full path",
                        label(l),
                        "events/s",
                    )
                    .value(l.events_per_s)
                    .baseline("bare worker", b.events_per_s)
                    .note(format!(
                        "{:.0} deliveries/s, {} errors",
                        l.deliveries_per_s, l.errors
                    )),
                );
                figures.push(
                    Figure::new("ingest", "processed events/s (first send → all finished)", label(l), "events/s")
                        .value(l.processed_events_per_s)
                        .baseline("bare worker", b.processed_events_per_s)
                        .note(format!(
                            "{} rows = {} processed + {} ignored + {} dead + {} unfinished; {} lost; {} {:.1} s after the last send{}",
                            l.rows, l.processed, l.ignored, l.dead, l.unfinished, l.lost,
                            if l.unfinished == 0 { "all done" } else { "STALLED, gave up" },
                            l.drain_s,
                            if l.reconciliations > 0 { "; reconciliation cron fired" } else { "" }
                        )),
                );
                if peak.is_none_or(|(p, _, _)| l.events_per_s > p) {
                    peak = Some((l.events_per_s, b.events_per_s, c));
                }
            }
            if let Some(r) = find("receipt", entries, c) {
                let ok = r.p50_ms.is_finite() && b.p50_ms.is_finite() && r.p50_ms <= 1.3 * b.p50_ms;
                receipt_p50_met &= ok;
                receipt_any = true;
                figures.push(
                    Figure::new("ingest", "p50 latency, receipt only", label(r), "ms")
                        .value(r.p50_ms)
                        .baseline("bare worker", b.p50_ms)
                        .target("≤ 1.3× baseline", Some(ok)),
                );
                if receipt_peak.is_none_or(|(p, _, _)| r.events_per_s > p) {
                    receipt_peak = Some((r.events_per_s, b.events_per_s, c));
                }
                figures.push(
                    Figure::new("ingest", "p99 latency, receipt only", label(r), "ms")
                        .value(r.p99_ms)
                        .baseline("bare worker", b.p99_ms),
                );
                figures.push(
                    Figure::new(
                        "ingest",
                        "accepted events/s, receipt only",
                        label(r),
                        "events/s",
                    )
                    .value(r.events_per_s)
                    .baseline("bare worker", b.events_per_s),
                );
            }
        }
        if let Some((p, b, c)) = peak {
            figures.push(
                Figure::new(
                    "ingest",
                    format!("peak accepted events/s, {entries}-entry deliveries, full path"),
                    format!("best of c ∈ {:?} (c={c})", settings.concurrency),
                    "events/s",
                )
                .value(p)
                .baseline("bare worker", b)
                .target("≥ 500 events/s", Some(p >= 500.0)),
            );
        }
        if let Some((p, b, c)) = receipt_peak {
            figures.push(
                Figure::new(
                    "ingest",
                    format!("peak accepted events/s, {entries}-entry deliveries, receipt only"),
                    format!("best of c ∈ {:?} (c={c})", settings.concurrency),
                    "events/s",
                )
                .value(p)
                .baseline("bare worker", b)
                .target("≥ 500 events/s", Some(p >= 500.0)),
            );
        }
    }
    if receipt_any {
        figures.push(
            Figure::new(
                "ingest",
                "every receipt-only scenario's p50 within 1.3× baseline",
                "all scenarios",
                "",
            )
            .target("≤ 1.3× baseline", Some(receipt_p50_met)),
        );
    }
    if p50_any {
        figures.push(
            Figure::new(
                "ingest",
                "every full-path scenario's p50 within 1.3× baseline",
                "all scenarios",
                "",
            )
            .target("≤ 1.3× baseline", Some(p50_met)),
        );
    }
    let unaccounted = |mode: &str| {
        scenarios
            .iter()
            .filter(|s| s.mode == mode)
            .map(|s| s.lost.max(0) + s.unfinished)
            .sum::<i64>() as f64
    };
    let leadheat_unaccounted = unaccounted("leadheat") + unaccounted("receipt");
    figures.push(
        Figure::new(
            "ingest",
            "lost or unfinished deliveries",
            "every scenario",
            "",
        )
        .value(leadheat_unaccounted)
        .baseline("bare worker", unaccounted("baseline"))
        .target("0 lost", Some(leadheat_unaccounted == 0.0)),
    );
    let stalls: Vec<String> = scenarios
        .iter()
        .filter(|s| s.unfinished > 0)
        .map(|s| {
            format!(
                "{} {}-entry c={}: {} of {} rows never finished",
                s.mode, s.entries, s.concurrency, s.unfinished, s.rows
            )
        })
        .collect();
    if !stalls.is_empty() {
        notes.push(format!(
            "PROCESSING STALLED: {}. In those scenarios the local queue stopped delivering messages to the sync consumer (rows stay \
             pending with 0 attempts, and neither new deliveries nor the reconciliation cron's re-enqueued messages are consumed \
             until the runtime restarts); the next scenario then starts on a restarted runtime.",
            stalls.join("; ")
        ));
    }
    notes.push(format!(
        "Each scenario sends for {:.0} s or up to {} deliveries of 1 entry / {} of 50 entries on the full path (whichever comes \
         first: the full path's 50-entry deliveries are capped so that processing them stays within minutes); the size column \
         says how many were sent. Events are webhook entries: a 50-entry delivery is one request and 50 events for the sync \
         consumer, stored by the webhook worker as 5 inbox rows of 10 events (the bare worker stores one row). Latency is the client's (request sent → response read) over keep-alive connections, one per \
         client thread.",
        settings.ingest_secs, settings.ingest_max, settings.ingest_max_batches
    ));
    notes.push(
        "Full path: the deliveries' page is connected to an org (PUT /v1/integrations/facebook), so each delivery is verified, \
         split, resolved, stored, enqueued and then processed by the sync consumer, which runs in the SAME workerd process (one \
         thread) as the webhook worker while the load runs: its work shows in the webhook's tail latency here, where in production \
         it runs elsewhere. Receipt only: the same deliveries for a page nobody connected (recorded at receipt in the directory's \
         webhook_unrouted, without body, and counted as ignored: no queue send, no processing), which isolates the webhook worker."
            .to_string(),
    );
    notes.push(
        "Baseline: bench/baseline, a bare Rust worker (same toolchain, worker-build) served by bench/runtime-baseline.mjs (the same \
         Miniflare/workerd/Node-front machinery as dev/runtime.mjs): only the same webhook_inbox INSERT and a queue send; its \
         consumer marks each row processed with one UPDATE. Each runtime gets a fresh database; the inbox drains between scenarios."
            .to_string(),
    );
    notes.push(
        "The load generator, the Node front, workerd and the queue consumer share the machine's 2 cores, so every absolute \
         throughput here is a lower bound."
            .to_string(),
    );
    PartOutput {
        figures,
        details: json!({ "scenarios": scenarios }),
        notes,
        ..PartOutput::default()
    }
}

fn connect_page(runtime: &Runtime) -> Res<()> {
    let token = leadheat_e2e::token(ORG, "admin");
    let body = json!({"page_ids": [PAGE_ID], "access_token": "bench-page-access-token"});
    // The API proves the token administers the page through the stub Graph API.
    leadheat_e2e::stub::Stub::shared().grant_connect_body("facebook", &body);
    let reply = util::send(
        util::agent()
            .put(&runtime.url("/v1/integrations/facebook"))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", "application/json"),
        Some(body.to_string().as_bytes()),
    )?;
    if reply.status == 200 {
        Ok(())
    } else {
        Err(format!(
            "status {}: {}",
            reply.status,
            reply.body.chars().take(200).collect::<String>()
        ))
    }
}

struct LoadOutcome {
    ok_latencies: Vec<f64>,
    errors: usize,
    first_error: Option<String>,
    seconds: f64,
}

/// Sends up to `max` deliveries of `entries` entries for `page` from `concurrency` threads, for
/// at most `secs`.
#[allow(clippy::too_many_arguments)]
fn load(
    runtime: &Runtime,
    page: &str,
    entries: usize,
    concurrency: usize,
    max: usize,
    secs: f64,
    nonce: u64,
    seq_base: u64,
) -> LoadOutcome {
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let url = runtime.url("/webhooks/facebook");
    let started = Instant::now();
    let handles: Vec<_> = (0..concurrency)
        .map(|t| {
            let next = Arc::clone(&next);
            let url = url.clone();
            let page = page.to_string();
            std::thread::spawn(move || {
                let agent = util::agent();
                let mut rng = Rng::new(1000 + t as u64 + seq_base * 31);
                let mut ok = Vec::new();
                let mut errors = 0;
                let mut first_error = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= max || Instant::now() >= deadline {
                        break;
                    }
                    let body = meta_delivery(&page, seq_base + i as u64, entries, nonce, &mut rng);
                    let signature =
                        leadheat_e2e::meta_signature(leadheat_e2e::META_APP_SECRET, &body);
                    let request = agent
                        .post(&url)
                        .set("Content-Type", "application/json")
                        .set("X-Hub-Signature-256", &signature);
                    match util::send(request, Some(&body)) {
                        Ok(reply) if reply.status == 200 => ok.push(ms(reply.elapsed)),
                        Ok(reply) => {
                            errors += 1;
                            first_error.get_or_insert(format!(
                                "status {}: {}",
                                reply.status,
                                reply.body.chars().take(200).collect::<String>()
                            ));
                        }
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e);
                        }
                    }
                }
                (ok, errors, first_error)
            })
        })
        .collect();
    let mut outcome = LoadOutcome {
        ok_latencies: Vec::new(),
        errors: 0,
        first_error: None,
        seconds: 0.0,
    };
    for handle in handles {
        if let Ok((ok, errors, first_error)) = handle.join() {
            outcome.ok_latencies.extend(ok);
            outcome.errors += errors;
            if outcome.first_error.is_none() {
                outcome.first_error = first_error;
            }
        }
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome
}

/// Where stored deliveries are: the webhook_inbox of every shard (the baseline runtime has one
/// tenant database and no directory), and the directory's webhook_unrouted (deliveries for an
/// account no org connected, kept without body or status: they count as ignored).
struct Inbox {
    shards: Vec<rusqlite::Connection>,
    directory: Option<rusqlite::Connection>,
}

impl Inbox {
    fn open(runtime: &Runtime) -> Res<Inbox> {
        let files = runtime.d1_files()?;
        Ok(Inbox {
            shards: files
                .shards
                .iter()
                .map(|path| util::read_only(path))
                .collect::<Res<_>>()?,
            directory: files
                .directory
                .as_ref()
                .map(|path| util::read_only(path))
                .transpose()?,
        })
    }
}

/// Rows received since `from` (RFC 3339, the storage format), by status, over every shard's
/// inbox; the directory's unrouted receipts count as `ignored`.
fn inbox_counts(inbox: &Inbox, from: &str) -> Res<BTreeMap<String, i64>> {
    let mut counts = BTreeMap::new();
    for conn in &inbox.shards {
        let mut statement = conn
            .prepare(
                "SELECT status, COUNT(*) FROM webhook_inbox WHERE received_at >= ?1 GROUP BY status",
            )
            .map_err(|e| e.to_string())?;
        let rows = statement
            .query_map([from], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .map_err(|e| e.to_string())?;
        for row in rows {
            let (status, n) = row.map_err(|e| e.to_string())?;
            *counts.entry(status).or_insert(0) += n;
        }
    }
    if let Some(directory) = &inbox.directory {
        let unrouted: i64 = directory
            .query_row(
                "SELECT COUNT(*) FROM webhook_unrouted WHERE received_at >= ?1",
                [from],
                |row| row.get(0),
            )
            .map_err(|e| e.to_string())?;
        if unrouted > 0 {
            *counts.entry("ignored".to_string()).or_insert(0) += unrouted;
        }
    }
    Ok(counts)
}

struct Drain {
    finished: bool,
    /// When the last row finished (from the call), when `finished`.
    finished_after: Duration,
    reconciliations: usize,
}

/// Polls until no row received since `from` is pending or processing. When nothing moves for
/// 10 s it fires the sync worker's reconciliation cron once (production runs it every minute:
/// it re-enqueues due events whose queue message was lost); when nothing moves for 30 s it gives
/// up (the scenario then reports its unfinished rows).
fn drain(inbox: &Inbox, runtime: &Runtime, from: &str, limit: Duration) -> Drain {
    let started = Instant::now();
    let deadline = started + limit;
    let mut last_open = i64::MAX;
    let mut last_change = Instant::now();
    let mut reconciliations = 0;
    loop {
        if let Ok(counts) = inbox_counts(inbox, from) {
            let open = counts.get("pending").copied().unwrap_or(0)
                + counts.get("processing").copied().unwrap_or(0);
            if open == 0 {
                return Drain {
                    finished: true,
                    finished_after: started.elapsed(),
                    reconciliations,
                };
            }
            if open != last_open {
                last_open = open;
                last_change = Instant::now();
            }
        }
        let idle = last_change.elapsed();
        if idle > Duration::from_secs(10) && reconciliations == 0 {
            reconciliations += 1;
            let _ = util::send(
                util::agent().post(&runtime.url("/__dev/cron/sync")),
                Some(b""),
            );
        }
        if Instant::now() >= deadline || idle > Duration::from_secs(30) {
            return Drain {
                finished: false,
                finished_after: started.elapsed(),
                reconciliations,
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Inbox rows one delivery of `entries` entries makes: the webhook worker splits it as the domain
/// does (`split_delivery`, at most 10 events a row); the bare baseline worker stores one row.
fn rows_per_delivery(mode: &str, page: &str, entries: usize) -> i64 {
    if mode == "baseline" {
        return 1;
    }
    let body = meta_delivery(page, 0, entries, 0, &mut Rng::new(1));
    leadheat_domain::delivery::split_delivery(leadheat_domain::types::Platform::Facebook, &body)
        .map_or(1, |parts| parts.len() as i64)
}
