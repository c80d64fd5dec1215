//! Part 4a: gzipped wasm size of every worker (and of the bare baseline worker), and the time from
//! starting the local runtime to each worker's first response (against the baseline runtime).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::json;

use crate::report::{Figure, PartOutput};
use crate::util::{self, ms, percentile, Flavor, Res, Runtime, Settings};
use crate::PartResult;

const WORKERS: [&str; 4] = ["api", "webhooks", "scoring", "sync"];

/// Bytes of `gzip -c` (level 6, zlib's default, which is what wrangler reports as "gzip").
fn gzipped(path: &Path) -> Res<u64> {
    let output = Command::new("gzip")
        .args(["-c", "-6"])
        .arg(path)
        .output()
        .map_err(|e| format!("gzip: {e}"))?;
    if !output.status.success() {
        return Err(format!("gzip {} failed", path.display()));
    }
    Ok(output.stdout.len() as u64)
}

pub fn run(settings: &Settings) -> PartResult {
    let root = &settings.root;
    let mut figures = Vec::new();
    let mut details = serde_json::Map::new();
    let kb = |b: u64| b as f64 / 1024.0;

    let baseline_wasm = root.join("bench/baseline/build/index_bg.wasm");
    let baseline_gz = gzipped(&baseline_wasm)
        .map_err(|e| (format!("{e} (build the baseline: make bench)"), None))?;
    let baseline_raw = std::fs::metadata(&baseline_wasm)
        .map(|m| m.len())
        .unwrap_or(0);
    details.insert(
        "baseline".into(),
        json!({"wasm_bytes": baseline_raw, "wasm_gzip_bytes": baseline_gz}),
    );
    for worker in WORKERS {
        let wasm = root.join(format!("functions/{worker}/build/index_bg.wasm"));
        let js = root.join(format!("functions/{worker}/build/index.js"));
        let gz = match gzipped(&wasm) {
            Ok(gz) => gz,
            Err(e) => {
                figures.push(
                    Figure::new(
                        "size",
                        format!("{worker} wasm, gzipped"),
                        "release build",
                        "KiB",
                    )
                    .note(format!("not measured: {e}")),
                );
                continue;
            }
        };
        let raw = std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
        let js_gz = gzipped(&js).unwrap_or(0);
        let limit = if worker == "api" { 600.0 } else { 1000.0 };
        figures.push(
            Figure::new(
                "size",
                format!("{worker} wasm, gzipped"),
                "release, wasm-opt off, name section stripped",
                "KiB",
            )
            .value(kb(gz))
            .baseline("bench baseline worker", kb(baseline_gz))
            .target(
                format!("< {limit:.0} KB"),
                Some((gz as f64) < limit * 1000.0),
            )
            .note(format!(
                "{:.0} KiB raw; + {:.1} KiB gzipped JS glue",
                kb(raw),
                kb(js_gz)
            )),
        );
        details.insert(
            worker.into(),
            json!({"wasm_bytes": raw, "wasm_gzip_bytes": gz, "js_gzip_bytes": js_gz}),
        );
    }

    // Cold starts: a migrated database first (its start includes `wrangler d1 migrations apply`),
    // then `--no-migrate` starts on it.
    let cold = cold_starts(settings).map_err(|e| {
        (
            e,
            Some(PartOutput {
                figures: figures.clone(),
                details: json!(details.clone()),
                ..PartOutput::default()
            }),
        )
    })?;
    let runs = settings.cold_starts.max(1);
    let size = format!("median of {runs} starts");
    let (l, b) = (&cold.0, &cold.1);
    let med = |xs: &Vec<f64>| percentile(xs, 50.0);
    figures.push(
        Figure::new("size", "runtime start → ready line", size.clone(), "ms")
            .value(med(&l.ready))
            .baseline("baseline runtime (1 bare worker)", med(&b.ready))
            .note("no migrations: --no-migrate on a migrated database"),
    );
    figures.push(
        Figure::new(
            "size",
            "runtime start → first API response (GET /v1/health)",
            size.clone(),
            "ms",
        )
        .value(med(&l.first["api"]))
        .baseline(
            "baseline runtime, first response",
            med(&b.first["baseline"]),
        ),
    );
    for worker in ["webhooks", "scoring", "sync"] {
        figures.push(
            Figure::new(
                "size",
                format!("runtime start → first {worker} response"),
                size.clone(),
                "ms",
            )
            .value(med(&l.first[worker]))
            .baseline(
                "baseline runtime, first response",
                med(&b.first["baseline"]),
            )
            .note("asked right after the API's"),
        );
    }
    figures.push(
        Figure::new(
            "size",
            "first start incl. D1 migrations → ready",
            "fresh database",
            "ms",
        )
        .value(l.with_migrations)
        .baseline("baseline runtime, same", b.with_migrations),
    );
    details.insert("cold_start".into(), json!({"leadheat": l, "baseline": b}));
    Ok(PartOutput {
        figures,
        details: json!(details),
        notes: vec![
            "Sizes: `gzip -6` of each worker's `build/index_bg.wasm` (KiB = 1024 bytes; the targets are in KB = 1000 bytes, \
             Cloudflare's unit). Baseline: the bench baseline worker \
             (bench/baseline: the bare webhook insert + queue send and the naive rescore, on workers-rs, serde_json, chrono and the \
             domain's scoring), built the same way; most of a worker's size is workers-rs and its dependencies, which both share."
                .to_string(),
            "Cold start: from spawning `node dev/runtime.mjs --no-migrate` (all four workers in one workerd) to its ready line \
             and to each worker's first answer, asked one after the other; the baseline is bench/runtime-baseline.mjs serving the \
             bare worker, started the same way."
                .to_string(),
        ],
        ..PartOutput::default()
    })
}

#[derive(Debug, Default, serde::Serialize)]
struct Starts {
    with_migrations: f64,
    ready: Vec<f64>,
    first: std::collections::BTreeMap<String, Vec<f64>>,
}

fn cold_starts(settings: &Settings) -> Res<(Starts, Starts)> {
    let mut out = Vec::new();
    for (flavor, name) in [
        (Flavor::Leadheat, "leadheat"),
        (Flavor::Baseline, "baseline"),
    ] {
        let persist = util::fresh_dir(&settings.work_dir.join(format!("cold-{name}")))?;
        let log = settings.work_dir.join(format!("cold-{name}.log"));
        let mut starts = Starts::default();
        let first = Runtime::start(&settings.root, flavor, &persist, true, &log)?;
        starts.with_migrations = ms(first.ready_after);
        drop(first);
        let paths: Vec<(&str, &str)> = match flavor {
            Flavor::Leadheat => vec![
                ("api", "/v1/health"),
                ("webhooks", "/webhooks/health"),
                ("scoring", "/__dev/workers/scoring/health"),
                ("sync", "/__dev/workers/sync/health"),
            ],
            Flavor::Baseline => vec![("baseline", "/health")],
        };
        for _ in 0..settings.cold_starts.max(1) {
            let runtime = Runtime::start(&settings.root, flavor, &persist, false, &log)?;
            starts.ready.push(ms(runtime.ready_after));
            let agent = util::agent();
            for (worker, path) in &paths {
                let reply = util::send(agent.get(&runtime.url(path)), None)?;
                let at = ms(runtime.started.elapsed());
                if reply.status != 200 {
                    return Err(format!("{name} {path} answered {}", reply.status));
                }
                starts.first.entry(worker.to_string()).or_default().push(at);
            }
            drop(runtime);
            // Let the previous workerd release its port and files.
            let t = Instant::now();
            while t.elapsed().as_millis() < 300 {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        println!(
            "[bench] cold start {name}: ready {:?} ms, first responses {:?}",
            starts.ready.iter().map(|x| x.round()).collect::<Vec<_>>(),
            starts
                .first
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().map(|x| x.round()).collect::<Vec<_>>()))
                .collect::<Vec<_>>()
        );
        out.push(starts);
    }
    let b = out.pop().unwrap();
    let l = out.pop().unwrap();
    Ok((l, b))
}
