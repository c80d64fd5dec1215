//! Website tracking input (`tracking::validate_event`, `is_valid_visitor_id`, `session_starts`,
//! `rate_buckets`, `visit_external_id`) on arbitrary bodies.
//!
//! Oracles: never panics; an accepted event has a valid visitor id, a known kind, a time within
//! [now - MAX_AGE_DAYS, now + MAX_FUTURE_SKEW_MINUTES], bounded text fields without control
//! characters, and an identity only when it carries a valid email or phone (no lead without
//! identity); session starts are ascending and at least SESSION_MINUTES apart.
#![no_main]

#[path = "common.rs"]
mod common;

use chrono::{Duration, TimeZone, Utc};
use leadheat_domain::leads::{normalize_email, normalize_phone};
use leadheat_domain::tracking::{
    is_valid_visitor_id, rate_buckets, rate_window_start, session_starts, validate_event,
    visit_external_id, EventKind, MAX_AGE_DAYS, MAX_FUTURE_SKEW_MINUTES, MAX_NAME_LEN, MAX_URL_LEN,
    SESSION_MINUTES,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn bounded(text: &Option<String>, max: usize) {
    if let Some(text) = text {
        assert!(!text.is_empty() && text.trim() == text && text.chars().count() <= max);
        assert!(!text.chars().any(char::is_control));
    }
}

fuzz_target!(|data: &[u8]| {
    let now = common::now();
    let Some(body) = common::json(data) else {
        return;
    };
    match validate_event(&body, now) {
        Ok(event) => {
            assert!(is_valid_visitor_id(&event.visitor_id));
            assert_eq!(EventKind::parse(event.kind.as_str()), Some(event.kind));
            assert!(event.occurred_at <= now + Duration::minutes(MAX_FUTURE_SKEW_MINUTES));
            assert!(event.occurred_at >= now - Duration::days(MAX_AGE_DAYS));
            bounded(&event.url, MAX_URL_LEN);
            if let Some(identity) = &event.identity {
                assert!(identity.email.is_some() || identity.phone.is_some());
                if let Some(email) = &identity.email {
                    assert_eq!(normalize_email(email).as_deref(), Ok(email.as_str()));
                }
                if let Some(phone) = &identity.phone {
                    assert!(normalize_phone(phone).is_ok());
                }
                bounded(&identity.first_name, MAX_NAME_LEN);
                bounded(&identity.last_name, MAX_NAME_LEN);
                bounded(&identity.company, MAX_NAME_LEN);
            }
            let _ = event.kind.interaction_type();
            let _ = event.kind.is_form();
            let site = body.get("site").and_then(Value::as_str).unwrap_or("site");
            let buckets = rate_buckets(site, &event.visitor_id);
            assert_ne!(buckets[0].0, buckets[1].0);
            let _ = visit_external_id(&event.visitor_id, &event.occurred_at.to_rfc3339());
        }
        Err(errors) => assert!(!errors.is_empty() && errors.iter().all(|e| !e.field.is_empty())),
    }

    // Sessions over times taken from the body's numbers (seconds around now).
    let mut times = Vec::new();
    if let Value::Array(items) = &body {
        for item in items.iter().take(256) {
            if let Some(offset) = item.as_i64() {
                let offset = offset.clamp(-10_000_000_000, 10_000_000_000);
                if let Some(at) = now.checked_add_signed(Duration::seconds(offset)) {
                    times.push(at);
                }
            }
        }
    }
    let last = times.first().copied();
    let starts = session_starts(last, &times);
    for pair in starts.windows(2) {
        assert!(pair[1] >= pair[0] + Duration::minutes(SESSION_MINUTES));
    }
    if let (Some(last), Some(first)) = (last, starts.first()) {
        assert!(*first >= last + Duration::minutes(SESSION_MINUTES));
    }
    let _ = rate_window_start(Utc.timestamp_opt(data.len() as i64 * 7919, 0).unwrap());
});
