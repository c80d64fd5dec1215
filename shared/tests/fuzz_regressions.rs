//! Regression tests for what the fuzz targets under `fuzz/` found (run them with `make fuzz`).
//! Each test names the target and the input that found the problem, minimised.

use chrono::{TimeZone, Utc};
use leadheat_domain::lead_query::parse_time;
use leadheat_domain::sync::{classify_meta, parse_meta_usage, Policy};

/// fuzz target `sync_responses`: Meta's usage headers are platform input. A huge
/// `estimated_time_to_regain_access` overflowed chrono's `Duration::seconds` (or `now + delay`)
/// and panicked the sync consumer, which resets the wasm instance and retries the whole batch.
#[test]
fn huge_regain_time_in_meta_usage_headers_does_not_panic() {
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let policy = Policy::default();
    for minutes in ["1e300", "1e15", "153722867280912930", "9007199254740993"] {
        let app_usage =
            format!("{{\"call_count\":10,\"estimated_time_to_regain_access\":{minutes}}}");
        let business = format!(
            "{{\"1\":[{{\"type\":\"pages\",\"call_count\":100,\"estimated_time_to_regain_access\":{minutes}}}]}}"
        );
        for (app, biz) in [
            (Some(app_usage.as_str()), None),
            (None, Some(business.as_str())),
        ] {
            let usage = parse_meta_usage(app, biz);
            assert!(usage.regain_minutes.is_finite());
            let classified = classify_meta(&policy, 200, app, biz, "{}", now);
            let _ = classified;
            let throttled = classify_meta(&policy, 429, app, biz, "{}", now);
            let _ = throttled;
        }
    }
}

/// fuzz target `lead_query`: list filters accept a date such as `-602-1-01` (chrono's `%Y` takes
/// signs and any number of digits) and turned it into `-0602-01-01T00:00:00.000Z`, which is not
/// RFC 3339 and does not compare as text with the stored times (a `created_to` far in the future
/// spelled `+10000-...` sorted before every stored time and excluded every lead). Such times are
/// refused (422) instead.
#[test]
fn list_filter_times_outside_four_digit_years_are_refused() {
    for value in [
        "-602-1-01",
        "10000-01-01",
        "+10000-01-01",
        "0000-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-23:59",
    ] {
        for end_of_day in [false, true] {
            if let Ok(time) = parse_time(value, end_of_day) {
                panic!("{value:?} gave {time:?}, which does not compare with stored times");
            }
        }
    }
    // The edges that do fit stay accepted, in the storage format.
    assert_eq!(
        parse_time("0000-01-01", false).as_deref(),
        Ok("0000-01-01T00:00:00.000Z")
    );
    assert_eq!(
        parse_time("9999-12-31", true).as_deref(),
        Ok("9999-12-31T23:59:59.999Z")
    );
    assert_eq!(
        parse_time("2026-03-01T12:00:00+01:00", false).as_deref(),
        Ok("2026-03-01T11:00:00.000Z")
    );
}
