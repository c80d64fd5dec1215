//! Part 5: shards. Two questions of docs/scaling.md, on the seeded database:
//!
//! - **Noisy neighbours.** `org_bench` (the big org) loads its dashboard in a loop from
//!   [`HAMMER_CONCURRENCY`] client threads while a smaller org lists its leads
//!   (`GET /v1/leads?limit=50`). The lister is an org on the SAME shard as `org_bench`, then one on
//!   ANOTHER shard; each lister's p95 is set against its own quiet p95 (the lister alone, measured
//!   first). Locally every shard is a Durable Object in the one workerd process, on a 2-core
//!   machine shared with the Node front and this load generator, so "another shard" still shares
//!   the CPU: the local figures say how much of the slowdown is the database and how much the
//!   machine, not what two D1 databases do in production.
//! - **Capacity.** Bytes per lead and per touchpoint in `org_bench`'s shard file (SQLite's
//!   `dbstat`: the pages each table and its indexes use), leads and touchpoints on each shard, and
//!   the ingest part's events per second, which all went to one shard.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::OptionalExtension;
use serde_json::{json, Value};

use crate::report::{Figure, PartOutput};
use crate::seed::{self, human, Seeded, ORG};
use crate::util::{self, ms, percentile, Flavor, Res, Runtime, Settings};
use crate::PartResult;

/// Client threads loading `org_bench`'s dashboard.
const HAMMER_CONCURRENCY: usize = 8;
const DASHBOARD: &str = "/v1/dashboard?window_days=30";
const LIST: &str = "/v1/leads?limit=50";
/// D1's limit on one database.
const D1_MAX_BYTES: f64 = 10e9;

pub fn run(settings: &Settings, seeded: &mut Option<Seeded>, ingest: Option<&Value>) -> PartResult {
    if seeded.is_none() {
        *seeded = Some(seed::seed(settings).map_err(|e| (e, None))?);
    }
    let data = seeded.clone().expect("seeded");
    if data.peers.len() != 2 {
        return Err((
            "the seed has no peer orgs (seeded by an older bench: run without BENCH_REUSE_SEED)"
                .to_string(),
            None,
        ));
    }
    let mut figures = Vec::new();
    let mut notes = Vec::new();

    // --- Capacity: storage (read before the runtime starts; the files are at rest).
    let storage = storage(&data).map_err(|e| (e, None))?;
    let per_lead = storage["bytes_per_lead"].as_f64().unwrap_or(f64::NAN);
    let per_touch = storage["bytes_per_touchpoint"].as_f64().unwrap_or(f64::NAN);
    let per_lead_all = storage["file_bytes_per_lead"].as_f64().unwrap_or(f64::NAN);
    let file_label = format!(
        "SHARD_{}'s file ({ORG} and a peer): {} leads / {} touchpoints",
        data.shard,
        human(storage["leads"].as_u64().unwrap_or(0) as usize),
        human(storage["touchpoints"].as_u64().unwrap_or(0) as usize)
    );
    println!(
        "[bench] shards: {per_lead:.0} bytes per lead (without touchpoints), {per_touch:.0} per touchpoint, \
         {per_lead_all:.0} of file per lead with its touchpoints"
    );
    figures.push(
        Figure::new(
            "shards",
            "bytes per lead (row, indexes, FTS, tags, profiles, snapshots, level changes)",
            file_label.clone(),
            "B",
        )
        .value(per_lead)
        .note("SQLite dbstat: pages of every table and index but interactions, ÷ leads"),
    );
    figures.push(
        Figure::new(
            "shards",
            "bytes per touchpoint (row and indexes)",
            file_label.clone(),
            "B",
        )
        .value(per_touch)
        .note("SQLite dbstat: pages of interactions and its indexes, ÷ touchpoints"),
    );
    figures.push(
        Figure::new(
            "shards",
            "file bytes per lead, with its touchpoints",
            file_label.clone(),
            "B",
        )
        .value(per_lead_all)
        .note("page_count × page_size ÷ leads"),
    );
    for (limit, name) in [
        (D1_MAX_BYTES / 2.0, "5 GB (half of D1's limit)"),
        (D1_MAX_BYTES, "10 GB (D1's limit)"),
    ] {
        figures.push(
            Figure::new(
                "shards",
                format!("leads one shard holds at {name}, at this mix"),
                format!(
                    "{:.1} touchpoints per lead",
                    storage["touchpoints_per_lead"].as_f64().unwrap_or(f64::NAN)
                ),
                "",
            )
            .value((limit / per_lead_all).floor())
            .note("projection: the limit ÷ file bytes per lead with its touchpoints"),
        );
    }
    if let Some(shards) = storage["shards"].as_array() {
        for shard in shards {
            figures.push(
                Figure::new(
                    "shards",
                    format!(
                        "leads on SHARD_{} (orgs: {})",
                        shard["shard"]
                            .as_u64()
                            .map_or("?".to_string(), |s| s.to_string()),
                        shard["orgs"].as_array().map_or(String::new(), |o| o
                            .iter()
                            .filter_map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(", "))
                    ),
                    format!(
                        "{} touchpoints, {:.1} MB file",
                        human(shard["touchpoints"].as_u64().unwrap_or(0) as usize),
                        shard["file_bytes"].as_f64().unwrap_or(0.0) / 1e6
                    ),
                    "",
                )
                .value(shard["leads"].as_f64().unwrap_or(f64::NAN)),
            );
        }
    }
    let events = ingest.map(events_per_shard).unwrap_or(Value::Null);
    if let Some(best) = events["processed_events_per_s"].as_f64() {
        figures.push(
            Figure::new(
                "shards",
                "events processed per second on one shard (ingest part, full path, best scenario)",
                events["processed_scenario"].as_str().unwrap_or("").to_string(),
                "events/s",
            )
            .value(best)
            .note("webhook receipt and the sync consumer on one workerd, 2 cores: a lower bound of one shard's rate"),
        );
    }
    if let Some(best) = events["accepted_events_per_s"].as_f64() {
        figures.push(
            Figure::new(
                "shards",
                "events accepted per second on one shard (ingest part, full path, best scenario)",
                events["accepted_scenario"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                "events/s",
            )
            .value(best),
        );
    }

    // --- Noisy neighbours.
    let log = settings.work_dir.join("shards-runtime.log");
    println!("[bench] shards: starting the runtime on the seeded database");
    let runtime = Runtime::start(&settings.root, Flavor::Leadheat, &data.persist, false, &log)
        .map_err(|e| (e, Some(partial(&figures, &storage, &events))))?;
    let samples = settings.query_samples;
    let budget = Duration::from_secs_f64(
        std::env::var("BENCH_NEIGHBOUR_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20.0),
    );
    let agent = util::agent();
    let get = |org: &str, path: &str| -> Res<util::Reply> {
        util::send(
            agent.get(&runtime.url(path)).set(
                "Authorization",
                &format!("Bearer {}", leadheat_e2e::token(org, "member")),
            ),
            None,
        )
    };
    // Warm-up, and a check that the routes answer.
    for (org, path) in [
        (ORG, DASHBOARD),
        (&data.peers[0].org, LIST),
        (&data.peers[1].org, LIST),
    ] {
        match get(org, path) {
            Ok(r) if r.status == 200 => {}
            Ok(r) => {
                return Err((
                    format!(
                        "{path} for {org} answered {}: {}",
                        r.status,
                        r.body.chars().take(160).collect::<String>()
                    ),
                    Some(partial(&figures, &storage, &events)),
                ))
            }
            Err(e) => return Err((e, Some(partial(&figures, &storage, &events)))),
        }
    }
    let mut cases = Vec::new();
    // Quiet first, each lister alone; then each beside the hammering.
    for peer in &data.peers {
        let quiet = list_samples(&get, &peer.org, samples, budget);
        println!(
            "[bench] shards: {} alone ({} shard): list p50 {:.2} ms p95 {:.2} ms, {} samples",
            peer.org,
            if peer.same_shard { "same" } else { "other" },
            percentile(&quiet, 50.0),
            percentile(&quiet, 95.0),
            quiet.len()
        );
        cases.push((peer.clone(), quiet));
    }
    let mut rows = Vec::new();
    for (peer, quiet) in &cases {
        let stop = Arc::new(AtomicBool::new(false));
        let dashboards = Arc::new(Mutex::new(Vec::<f64>::new()));
        let errors = Arc::new(Mutex::new(0usize));
        let url = runtime.url(DASHBOARD);
        let token = leadheat_e2e::token(ORG, "member");
        let hammers: Vec<_> = (0..HAMMER_CONCURRENCY)
            .map(|_| {
                let (stop, dashboards, errors, url, token) = (
                    Arc::clone(&stop),
                    Arc::clone(&dashboards),
                    Arc::clone(&errors),
                    url.clone(),
                    token.clone(),
                );
                std::thread::spawn(move || {
                    let agent = util::agent();
                    while !stop.load(Ordering::Relaxed) {
                        match util::send(
                            agent
                                .get(&url)
                                .set("Authorization", &format!("Bearer {token}")),
                            None,
                        ) {
                            Ok(r) if r.status == 200 => {
                                dashboards.lock().unwrap().push(ms(r.elapsed))
                            }
                            _ => *errors.lock().unwrap() += 1,
                        }
                    }
                })
            })
            .collect();
        // Let every hammering thread have a request in flight.
        std::thread::sleep(Duration::from_millis(500));
        let t0 = Instant::now();
        let busy = list_samples(&get, &peer.org, samples, budget);
        let window = t0.elapsed().as_secs_f64();
        let completed_in_window = dashboards.lock().unwrap().len();
        stop.store(true, Ordering::Relaxed);
        for hammer in hammers {
            let _ = hammer.join();
        }
        let dashboards = dashboards.lock().unwrap().clone();
        let errors = *errors.lock().unwrap();
        let side = if peer.same_shard {
            "the SAME shard as"
        } else {
            "ANOTHER shard than"
        };
        let (q50, q95) = (percentile(quiet, 50.0), percentile(quiet, 95.0));
        let (b50, b95) = (percentile(&busy, 50.0), percentile(&busy, 95.0));
        let (d50, d95) = (percentile(&dashboards, 50.0), percentile(&dashboards, 95.0));
        println!(
            "[bench] shards: {} on {side} {ORG}, which hammers its dashboard (c={HAMMER_CONCURRENCY}): list p50 {b50:.2} ms p95 \
             {b95:.2} ms ({} samples; alone p95 {q95:.2} ms) | {} dashboards, p50 {d50:.0} ms p95 {d95:.0} ms, {errors} errors",
            peer.org,
            busy.len(),
            dashboards.len()
        );
        let size = format!(
            "{} ({} leads) on SHARD_{}, {ORG} on SHARD_{}",
            peer.org,
            human(peer.leads),
            peer.shard,
            data.shard
        );
        figures.push(
            Figure::new(
                "shards",
                format!("list p50, lister on {side} {ORG} hammering its dashboard"),
                size.clone(),
                "ms",
            )
            .value(b50)
            .baseline("lister alone", q50),
        );
        figures.push(
            Figure::new("shards", format!("list p95, lister on {side} {ORG} hammering its dashboard"), size.clone(), "ms")
                .value(b95)
                .baseline("lister alone", q95)
                .note(format!(
                    "{} samples beside {} dashboards (p50 {d50:.0} ms, p95 {d95:.0} ms, c={HAMMER_CONCURRENCY}){}",
                    busy.len(),
                    dashboards.len(),
                    if errors > 0 { format!(", {errors} dashboard errors") } else { String::new() }
                )),
        );
        rows.push(json!({
            "lister": peer.org, "lister_shard": peer.shard, "same_shard": peer.same_shard, "lister_leads": peer.leads,
            "hammer": ORG, "hammer_shard": data.shard, "hammer_concurrency": HAMMER_CONCURRENCY,
            "quiet_ms": {"p50": q50, "p95": q95, "samples": quiet.len()},
            "busy_ms": {"p50": b50, "p95": b95, "samples": busy.len()},
            "p95_ratio": b95 / q95,
            "window_s": window, "dashboards_in_window": completed_in_window,
            "dashboard_ms": {"p50": d50, "p95": d95, "completed": dashboards.len(), "errors": errors},
        }));
    }
    drop(runtime);
    notes.push(format!(
        "Noisy neighbours: {ORG} ({} leads) loads `GET {DASHBOARD}` in a loop from {HAMMER_CONCURRENCY} threads while a smaller \
         org lists its leads (`GET {LIST}`, sequentially, up to {samples} samples or {:.0} s): first an org on {ORG}'s shard, then \
         one on another shard. Each lister's quiet figures are the same route with nothing else running, measured first. The orgs \
         were placed by the product (least-loaded placement), their leads seeded like {ORG}'s.",
        human(data.leads),
        budget.as_secs_f64()
    ));
    notes.push(
        "Locally every shard is its own D1 Durable Object, with its own SQLite file, but all of them run in the ONE workerd \
         process, beside the Node front and this load generator, on 2 cores. So another shard does not isolate the lister from \
         the hammering here the way a separate D1 database does in production: whatever slowdown the other-shard case shows is \
         the shared CPU and workerd, and the difference between the two cases is what sharing one database adds on top."
            .to_string(),
    );
    notes.push(
        "Capacity: SQLite's dbstat on the shard file that holds the seed (after seeding, before any run writes to it). Bytes per \
         lead count every table and index but interactions (the lead row, its FTS entries, tags, social profiles, snapshot and \
         level changes); bytes per touchpoint count interactions and its indexes. rusqlite's bundled SQLite and D1 store the same \
         pages; D1 bills the database's size, which is the file's."
            .to_string(),
    );
    Ok(PartOutput {
        figures,
        details: json!({"storage": storage, "events_per_shard": events, "neighbours": rows}),
        notes,
        ..PartOutput::default()
    })
}

fn partial(figures: &[Figure], storage: &Value, events: &Value) -> PartOutput {
    PartOutput {
        figures: figures.to_vec(),
        details: json!({"storage": storage, "events_per_shard": events}),
        ..PartOutput::default()
    }
}

/// Up to `samples` sequential list requests of `org` (at least 5, at most `budget` after that).
fn list_samples(
    get: &dyn Fn(&str, &str) -> Res<util::Reply>,
    org: &str,
    samples: usize,
    budget: Duration,
) -> Vec<f64> {
    let t0 = Instant::now();
    let mut out = Vec::new();
    for _ in 0..samples.max(5) {
        if let Ok(r) = get(org, LIST) {
            if r.status == 200 {
                out.push(ms(r.elapsed));
            }
        }
        if t0.elapsed() > budget && out.len() >= 5 {
            break;
        }
    }
    out
}

/// The best full-path ingest scenario's rates: the ingest part sends to one org, on one shard.
fn events_per_shard(ingest: &Value) -> Value {
    let scenarios = ingest["scenarios"].as_array().cloned().unwrap_or_default();
    let full: Vec<&Value> = scenarios
        .iter()
        .filter(|s| s["mode"] == "leadheat")
        .collect();
    let label = |s: &Value| {
        format!(
            "{} × {}-entry, c={}",
            s["sent"], s["entries"], s["concurrency"]
        )
    };
    let best = |key: &str| {
        full.iter()
            .filter(|s| s[key].as_f64().is_some_and(f64::is_finite))
            .max_by(|a, b| {
                a[key]
                    .as_f64()
                    .unwrap_or(0.0)
                    .total_cmp(&b[key].as_f64().unwrap_or(0.0))
            })
            .copied()
    };
    let processed = best("processed_events_per_s");
    let accepted = best("events_per_s");
    json!({
        "processed_events_per_s": processed.and_then(|s| s["processed_events_per_s"].as_f64()),
        "processed_scenario": processed.map(label),
        "accepted_events_per_s": accepted.and_then(|s| s["events_per_s"].as_f64()),
        "accepted_scenario": accepted.map(label),
        "scenarios": full.iter().map(|s| json!({
            "scenario": label(s), "accepted_events_per_s": s["events_per_s"], "processed_events_per_s": s["processed_events_per_s"],
        })).collect::<Vec<_>>(),
    })
}

/// Pages per table (dbstat) in `org_bench`'s shard file, and the rows on every shard.
fn storage(data: &Seeded) -> Res<Value> {
    let conn = util::read_only(&data.db_path)?;
    let err = |e: rusqlite::Error| format!("{}: {e}", data.db_path.display());
    let pragma = |name: &str| -> Res<i64> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .map_err(err)
    };
    let page_size = pragma("page_size")?;
    let page_count = pragma("page_count")?;
    let freelist = pragma("freelist_count")?;
    // Each schema object's table (an index's table; FTS5 shadow tables belong to leads_fts).
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    {
        let mut statement = conn
            .prepare("SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')")
            .map_err(err)?;
        let rows = statement
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(err)?;
        for row in rows {
            let (name, table) = row.map_err(err)?;
            let table = if table.starts_with("leads_fts") {
                "leads_fts".to_string()
            } else {
                table
            };
            owner.insert(name, table);
        }
    }
    let mut by_table: BTreeMap<String, i64> = BTreeMap::new();
    {
        let mut statement = conn
            .prepare("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")
            .map_err(|e| format!("dbstat (is SQLITE_ENABLE_DBSTAT_VTAB on?): {e}"))?;
        let rows = statement
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(err)?;
        for row in rows {
            let (name, bytes) = row.map_err(err)?;
            let table = owner.get(&name).cloned().unwrap_or(name);
            *by_table.entry(table).or_insert(0) += bytes;
        }
    }
    let count = |conn: &rusqlite::Connection, table: &str| -> Res<i64> {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| format!("counting {table}: {e}"))
    };
    let leads = count(&conn, "leads")?;
    let touchpoints = count(&conn, "interactions")?;
    let used: i64 = by_table.values().sum();
    let touch_bytes = by_table.get("interactions").copied().unwrap_or(0);
    let lead_bytes = used - touch_bytes;
    let file_bytes = page_count * page_size;

    // Every shard: its orgs (with their shard index from the directory), leads and touchpoints.
    let directory = util::read_only(&data.directory_path)?;
    let files = util::d1_files(&data.persist)?;
    let mut shards = Vec::new();
    for path in &files.shards {
        let shard_conn = util::read_only(path)?;
        let orgs: Vec<String> = shard_conn
            .prepare("SELECT id FROM orgs ORDER BY id")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| format!("orgs of {}: {e}", path.display()))?;
        let mut index: Option<u32> = None;
        for org in &orgs {
            index = directory
                .query_row("SELECT shard FROM orgs WHERE id = ?1", [org], |r| r.get(0))
                .optional()
                .map_err(|e| e.to_string())?;
            if index.is_some() {
                break;
            }
        }
        let size = |name: &str| -> Res<i64> {
            shard_conn
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .map_err(|e| e.to_string())
        };
        shards.push(json!({
            "shard": index,
            "file": path.file_name().map(|n| n.to_string_lossy().to_string()),
            "orgs": orgs,
            "leads": count(&shard_conn, "leads")?,
            "touchpoints": count(&shard_conn, "interactions")?,
            "file_bytes": size("page_count")? * size("page_size")?,
        }));
    }
    shards.sort_by_key(|s| s["shard"].as_u64().unwrap_or(u64::MAX));
    Ok(json!({
        "file": data.db_path.file_name().map(|n| n.to_string_lossy().to_string()),
        "page_size": page_size,
        "page_count": page_count,
        "freelist_pages": freelist,
        "file_bytes": file_bytes,
        "used_bytes": used,
        "leads": leads,
        "touchpoints": touchpoints,
        "touchpoints_per_lead": touchpoints as f64 / leads.max(1) as f64,
        "lead_bytes": lead_bytes,
        "touchpoint_bytes": touch_bytes,
        "bytes_per_lead": lead_bytes as f64 / leads.max(1) as f64,
        "bytes_per_touchpoint": touch_bytes as f64 / touchpoints.max(1) as f64,
        "file_bytes_per_lead": file_bytes as f64 / leads.max(1) as f64,
        "bytes_by_table": by_table,
        "shards": shards,
    }))
}
