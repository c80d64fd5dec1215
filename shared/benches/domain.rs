//! Criterion micro-benchmarks of the domain's hot paths, each next to a baseline that does only the
//! unavoidable part of the same work, so the ratio means something on a noisy machine:
//!
//! - `scoring_1k_touches`: [`scoring::score`] of one lead with 1,000 touchpoints (default config, and
//!   with a 30-day half-life) against a plain loop summing the same weights from an array;
//! - `meta_signature_64k`: [`signature::verify_meta_signature`] on a 64 KiB body against one raw
//!   HMAC-SHA256 of the same bytes (the `hmac` crate alone);
//! - `meta_batch_50`: [`platforms::parse`] of a 50-entry Facebook delivery (and the webhook's
//!   [`delivery::split_delivery`]) against `serde_json::from_slice::<Value>` of the same bytes.
//!
//! `make bench` runs them with short measurement times and reads criterion's `estimates.json`
//! (bench/loadgen reports the medians and ratios); `cargo bench -p leadheat-domain` runs them alone.

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use hmac::{Hmac, Mac};
use leadheat_domain::delivery::split_delivery;
use leadheat_domain::platforms;
use leadheat_domain::scoring::{self, ScoringConfig, Touch};
use leadheat_domain::signature::{sign_meta, verify_meta_signature};
use leadheat_domain::types::{InteractionType, Platform};
use serde_json::{json, Value};
use sha2::Sha256;

const SECRET: &[u8] = b"dev-only-meta-app-secret";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

/// 1,000 touches spread over every interaction type and the last 200 days (deterministic).
fn touches() -> Vec<Touch> {
    let kinds = InteractionType::ALL;
    (0..1000u64)
        .map(|i| {
            let kind = kinds[(i * 7 % kinds.len() as u64) as usize];
            let at = now() - chrono::Duration::minutes((i * 288 + i % 13) as i64);
            Touch::new(kind, at)
        })
        .collect()
}

fn bench_scoring(c: &mut Criterion) {
    let touches = touches();
    let config = ScoringConfig::default();
    let decaying = ScoringConfig {
        decay_half_life_days: Some(30.0),
        ..ScoringConfig::default()
    };
    // The baseline: the same weights in a flat array indexed by type, summed in a loop.
    let table: Vec<i64> = InteractionType::ALL
        .iter()
        .map(|kind| config.weight(*kind))
        .collect();
    let indexes: Vec<usize> = touches
        .iter()
        .map(|t| {
            InteractionType::ALL
                .iter()
                .position(|k| *k == t.kind)
                .unwrap()
        })
        .collect();

    let mut group = c.benchmark_group("scoring_1k_touches");
    group.bench_function("leadheat", |b| {
        b.iter(|| scoring::score(black_box(&touches), black_box(&config), now()))
    });
    group.bench_function("leadheat_decay", |b| {
        b.iter(|| scoring::score(black_box(&touches), black_box(&decaying), now()))
    });
    group.bench_function("baseline", |b| {
        b.iter(|| black_box(&indexes).iter().map(|&i| table[i]).sum::<i64>())
    });
    group.finish();
}

fn bench_signature(c: &mut Criterion) {
    let body: Vec<u8> = (0..64 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let header = sign_meta(&body, SECRET);
    assert!(verify_meta_signature(Some(&header), &body, &[SECRET]).is_ok());

    let mut group = c.benchmark_group("meta_signature_64k");
    group.throughput(criterion::Throughput::Bytes(body.len() as u64));
    group.bench_function("leadheat", |b| {
        b.iter(|| verify_meta_signature(Some(black_box(&header)), black_box(&body), &[SECRET]))
    });
    group.bench_function("baseline", |b| {
        b.iter(|| {
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
            mac.update(black_box(&body));
            mac.finalize().into_bytes()
        })
    });
    group.finish();
}

/// A realistic 50-entry Facebook `feed` delivery: reactions, comments and shares by 50 people.
fn meta_batch() -> Vec<u8> {
    let base = now().timestamp();
    let entries: Vec<Value> = (0..50)
        .map(|i| {
            let user = format!("{}", 6_100_000_000_000_000u64 + i);
            let post = format!("104857600000000_{}", 9_000_000 + i % 7);
            let value = match i % 3 {
                0 => json!({"item": "reaction", "verb": "add", "reaction_type": "like",
                    "post_id": post, "from": {"id": user, "name": format!("Fan Number{i}")},
                    "created_time": base - i as i64}),
                1 => json!({"item": "comment", "verb": "add", "post_id": post,
                    "comment_id": format!("{post}_{}", 77_000 + i),
                    "message": "Looks great, how much does the premium plan cost for a team of ten?",
                    "from": {"id": user, "name": format!("Fan Number{i}")},
                    "created_time": base - i as i64}),
                _ => json!({"item": "share", "verb": "add", "post_id": post,
                    "share_id": format!("{}", 880_000_000 + i),
                    "link": "https://example.com/offers/winter",
                    "from": {"id": user, "name": format!("Fan Number{i}")},
                    "created_time": base - i as i64}),
            };
            json!({"id": "104857600000000", "time": base, "changes": [{"field": "feed", "value": value}]})
        })
        .collect();
    serde_json::to_vec(&json!({"object": "page", "entry": entries})).unwrap()
}

fn bench_parse(c: &mut Criterion) {
    let body = meta_batch();
    let events = platforms::parse(Platform::Facebook, &body, now()).unwrap();
    assert_eq!(events.len(), 50);

    let mut group = c.benchmark_group("meta_batch_50");
    group.throughput(criterion::Throughput::Elements(50));
    group.bench_function("leadheat", |b| {
        b.iter(|| platforms::parse(Platform::Facebook, black_box(&body), now()))
    });
    group.bench_function("leadheat_split_delivery", |b| {
        b.iter(|| split_delivery(Platform::Facebook, black_box(&body)))
    });
    group.bench_function("baseline", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&body)).unwrap())
    });
    group.finish();
}

fn config() -> Criterion {
    // Short by default so `make bench` stays within minutes; CRITERION_* flags can lengthen it.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_scoring, bench_signature, bench_parse
}
criterion_main!(benches);
