//! Part 4b: the criterion micro-benchmarks of shared/benches/domain.rs, each group holding the
//! Leadheat function and its baseline. Runs `cargo bench -p leadheat-domain --bench domain` (unless
//! `BENCH_MICRO_SKIP_RUN=1`, to only read earlier results) and reads criterion's estimates.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::report::{Figure, PartOutput};
use crate::util::{Res, Settings};
use crate::PartResult;

/// (group, Leadheat function, label, baseline label, size).
const CASES: [(&str, &str, &str, &str, &str); 4] = [
    (
        "scoring_1k_touches",
        "leadheat",
        "score a lead (default config)",
        "weights summed in a plain loop",
        "1,000 touchpoints",
    ),
    (
        "scoring_1k_touches",
        "leadheat_decay",
        "score a lead (30-day half-life)",
        "weights summed in a plain loop",
        "1,000 touchpoints",
    ),
    (
        "meta_signature_64k",
        "leadheat",
        "verify X-Hub-Signature-256",
        "one raw HMAC-SHA256",
        "64 KiB body",
    ),
    (
        "meta_batch_50",
        "leadheat",
        "parse a Meta batch (platforms::parse)",
        "serde_json::from_slice::<Value>",
        "50 entries",
    ),
];
const SPLIT: (&str, &str, &str, &str, &str) = (
    "meta_batch_50",
    "leadheat_split_delivery",
    "split a Meta delivery at receipt (delivery::split_delivery)",
    "serde_json::from_slice::<Value>",
    "50 entries",
);

fn median_ns(home: &Path, group: &str, function: &str) -> Res<f64> {
    let path = home.join(group).join(function).join("new/estimates.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    value["median"]["point_estimate"]
        .as_f64()
        .ok_or_else(|| format!("{} has no median", path.display()))
}

pub fn run(settings: &Settings) -> PartResult {
    let home = std::env::var("CRITERION_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| settings.root.join("target/criterion"));
    if std::env::var("BENCH_MICRO_SKIP_RUN").as_deref() != Ok("1") {
        println!("[bench] micro: cargo bench -p leadheat-domain --bench domain");
        let status = Command::new("cargo")
            .args([
                "bench",
                "-p",
                "leadheat-domain",
                "--bench",
                "domain",
                "--quiet",
            ])
            .env("CRITERION_HOME", &home)
            .current_dir(&settings.root)
            .status()
            .map_err(|e| (format!("cargo bench: {e}"), None))?;
        if !status.success() {
            return Err((format!("cargo bench exited with {status}"), None));
        }
    }
    let mut figures = Vec::new();
    let mut details = Vec::new();
    for (group, function, label, baseline_label, size) in
        CASES.iter().chain(std::iter::once(&SPLIT))
    {
        let value = median_ns(&home, group, function);
        let baseline = median_ns(&home, group, "baseline");
        match (value, baseline) {
            (Ok(v), Ok(b)) => {
                let (scale, unit) = if v >= 10_000.0 {
                    (1000.0, "µs")
                } else {
                    (1.0, "ns")
                };
                figures.push(
                    Figure::new("micro", *label, *size, unit)
                        .value(v / scale)
                        .baseline(*baseline_label, b / scale),
                );
                details.push(json!({"group": group, "function": function, "median_ns": v, "baseline_median_ns": b}));
            }
            (v, b) => {
                let why = v.err().or(b.err()).unwrap_or_default();
                figures.push(
                    Figure::new("micro", *label, *size, "").note(format!("not measured: {why}")),
                );
            }
        }
    }
    Ok(PartOutput {
        figures,
        details: json!(details),
        notes: vec![
            "Criterion medians (native release build, 0.5 s warm-up, 2 s measurement, 30 samples). Each baseline is the bare \
             primitive of the same work, so the ratio is what the domain logic adds on top of it. The Meta batch is parsed with \
             `leadheat_domain::platforms::parse`, the sync consumer's parser."
                .to_string(),
        ],
        ..PartOutput::default()
    })
}
