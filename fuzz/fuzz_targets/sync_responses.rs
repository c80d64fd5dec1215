//! What the sync consumer reads from the platforms' answers (`sync::parse_meta_usage`,
//! `classify_meta`, `classify_linkedin`, `parse_retry_after`) and its retry rules (`backoff`,
//! `next_status`, `Throttle`), on arbitrary headers, bodies and statuses.
//!
//! Oracles: never panics (a panic in the consumer resets the wasm instance and retries the whole
//! batch: a header value must never be able to do that); retries are never scheduled in the
//! past; an event is dead only when it is out of attempts or cannot succeed.
#![no_main]

#[path = "common.rs"]
mod common;

use arbitrary::Arbitrary;
use leadheat_domain::sync::{
    backoff, classify_linkedin, classify_meta, next_status, parse_meta_usage, parse_retry_after,
    Next, Outcome, Policy, Throttle,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    status: u16,
    app_usage: Option<String>,
    business_usage: Option<String>,
    retry_after: Option<String>,
    body: String,
    attempts: u32,
    jitter: [u8; 4],
}

fuzz_target!(|input: Input| {
    let now = common::now();
    let policy = Policy::default();
    let usage = parse_meta_usage(input.app_usage.as_deref(), input.business_usage.as_deref());
    assert!(usage.max_percent.is_finite() && usage.max_percent >= 0.0);
    assert!(usage.regain_minutes.is_finite() && usage.regain_minutes >= 0.0);
    if let Some(value) = &input.retry_after {
        if let Some(at) = parse_retry_after(value, now) {
            assert!(at >= now);
        }
    }
    let delay = backoff(&policy, input.attempts, input.jitter);
    assert!(delay >= chrono::Duration::zero() && delay <= policy.max_delay);

    let classified = [
        classify_meta(
            &policy,
            input.status,
            input.app_usage.as_deref(),
            input.business_usage.as_deref(),
            &input.body,
            now,
        ),
        classify_linkedin(
            &policy,
            input.status,
            input.retry_after.as_deref(),
            &input.body,
            now,
        ),
    ];
    let mut throttle = Throttle::default();
    for result in classified {
        throttle = throttle.after(&policy, &result.call, now);
        let _ = throttle.gate(now);
        let outcome = result.failure.unwrap_or(Outcome::Ok);
        let attempts = input.attempts.max(1);
        match next_status(&policy, attempts, &outcome, now, input.jitter) {
            Next::Processed => assert_eq!(outcome, Outcome::Ok),
            Next::Retry {
                next_attempt_at, ..
            } => assert!(next_attempt_at >= now),
            Next::Dead { .. } => assert!(
                matches!(outcome, Outcome::Permanent(_) | Outcome::TokenInvalid(_))
                    || attempts >= policy.max_attempts
            ),
        }
    }
});
