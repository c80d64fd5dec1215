//! `leadheat-bench`: Leadheat's benchmarks (issue 6; bench/README.md).
//!
//! `make bench` builds the workers and the baseline worker, then runs this binary, which runs each
//! part selected by `BENCH_PARTS` (default all of them) and writes `bench/results/latest.md` and
//! `bench/results/latest.json`. Every figure sits beside a baseline measured in the same run and
//! the ratio of the two. A part that fails is reported as not completed; the binary still writes
//! the results and exits 0: benchmarks never fail a build.
//!
//! Parts: `size` (gzipped wasm and cold start), `micro` (criterion), `ingest` (webhook load),
//! `queries` (lead reads at 100k leads / 1M touchpoints), `shards` (noisy neighbours on the same and
//! another shard; bytes per lead and touchpoint), `rescore` (the scoring job).

// A part's error carries whatever it measured before failing; the error path is cold.
#![allow(clippy::result_large_err)]

mod data;
mod ingest;
mod micro;
mod queries;
mod report;
mod rescore;
mod seed;
mod shards;
mod size;
mod util;

use std::path::PathBuf;
use std::time::Instant;

use report::PartOutput;
use serde_json::json;
use util::Settings;

fn main() {
    let root = std::env::var("LEADHEAT_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| leadheat_e2e::workspace_root());
    let settings = Settings::from_env(root);
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!("usage: leadheat-bench   (parts and sizes come from BENCH_* variables; see bench/README.md)");
        return;
    }
    let _ = std::fs::create_dir_all(&settings.results_dir);
    // Scratch space of this run; BENCH_REUSE_SEED=1 keeps an earlier run's seeded database.
    let reuse_seed = std::env::var("BENCH_REUSE_SEED").as_deref() == Ok("1");
    if let Ok(entries) = std::fs::read_dir(&settings.work_dir) {
        for entry in entries.flatten() {
            if reuse_seed && entry.file_name() == "seeded" {
                continue;
            }
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
    let _ = std::fs::create_dir_all(&settings.work_dir);
    let load_start = util::load_average();
    println!(
        "[bench] parts: {}; load average {load_start:.2} on {} cores",
        settings.parts.join(","),
        cores()
    );
    if load_start > 1.5 {
        println!(
            "[bench] WARNING: the machine is busy (load {load_start:.2}); absolute figures will be noisy, \
             ratios less so (each baseline runs in the same conditions)"
        );
    }

    let started = Instant::now();
    let mut parts: Vec<(&str, PartOutput)> = Vec::new();
    // The seeded database is shared by the query and rescoring parts.
    let mut seeded: Option<seed::Seeded> = None;
    for part in ["size", "micro", "ingest", "queries", "shards", "rescore"] {
        if !settings.wants(part) {
            continue;
        }
        println!("[bench] === part {part} ===");
        let t = Instant::now();
        let result = match part {
            "size" => size::run(&settings),
            "micro" => micro::run(&settings),
            "ingest" => ingest::run(&settings),
            "queries" => queries::run(&settings, &mut seeded),
            "shards" => {
                let ingest = parts
                    .iter()
                    .find(|(k, _)| *k == "ingest")
                    .map(|(_, p)| &p.details);
                shards::run(&settings, &mut seeded, ingest)
            }
            "rescore" => rescore::run(&settings, &mut seeded),
            _ => unreachable!(),
        };
        let mut output = match result {
            Ok(output) => output,
            Err((error, partial)) => {
                println!("[bench] part {part} not completed: {error}");
                let mut output = partial.unwrap_or_default();
                output.error = Some(error);
                output
            }
        };
        output.seconds = t.elapsed().as_secs_f64();
        println!("[bench] part {part} took {:.0} s", output.seconds);
        parts.push((part, output));
    }
    let load_end = util::load_average();

    let machine = machine();
    let header = vec![
        ("Run".to_string(), crate::util::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        (
            "Machine".to_string(),
            format!(
                "{} cores ({}), {} memory",
                machine["nproc"],
                machine["cpu_model"].as_str().unwrap_or(""),
                machine["memory"].as_str().unwrap_or("")
            ),
        ),
        (
            "Load average".to_string(),
            format!("{load_start:.2} at the start, {load_end:.2} at the end (2 cores; other work on the machine shows up in absolute figures)"),
        ),
        (
            "Sizes".to_string(),
            format!(
                "BENCH_LEADS={} (touchpoints ≈ {} per lead); full size is BENCH_LEADS=100000",
                settings.leads, settings.touchpoints_per_lead
            ),
        ),
        ("Total time".to_string(), format!("{:.0} s", started.elapsed().as_secs_f64())),
    ];
    let md = report::markdown(&header, &parts);
    let json = json!({
        "generated_at": crate::util::now().to_rfc3339(),
        "machine": machine,
        "load_average": {"start": load_start, "end": load_end},
        "settings": settings,
        "total_seconds": started.elapsed().as_secs_f64(),
        "parts": parts.iter().map(|(k, p)| (k.to_string(), serde_json::to_value(p).unwrap_or_default())).collect::<serde_json::Map<_, _>>(),
    });
    let md_path = settings.results_dir.join("latest.md");
    let json_path = settings.results_dir.join("latest.json");
    if let Err(e) = std::fs::write(&md_path, &md) {
        eprintln!("[bench] writing {}: {e}", md_path.display());
    }
    if let Err(e) = std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    ) {
        eprintln!("[bench] writing {}: {e}", json_path.display());
    }
    println!("\n{md}");
    println!(
        "[bench] wrote {} and {}",
        md_path.display(),
        json_path.display()
    );
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// nproc, memory and CPU model (bench/README.md describes the machine the same way).
fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    json!({
        "nproc": cores(),
        "cpu_model": cpu_model,
        "memory": format!("{:.1} GiB", mem_kb / 1024.0 / 1024.0),
        "node": command_version("node", &["--version"]),
        "rustc": command_version("rustc", &["--version"]),
    })
}

fn command_version(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// What a part returns: its output, or an error with whatever it measured before failing.
pub type PartResult = Result<PartOutput, (String, Option<PartOutput>)>;
