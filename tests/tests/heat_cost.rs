//! The cost of a touchpoint does not grow with its lead's history: the heat comes from the state
//! stored on the lead (docs/heat.md), not from a read of its touchpoints.
//!
//! The runtime runs with `DEV_SERVER_TIMING=on`, so every `/v1` answer carries the D1 queries and
//! rows read of its request in a `Server-Timing` header (`d1-queries`, `d1-rows-read`, summed from
//! D1's own `meta.rows_read`).
//!
//! - `a_touchpoint_reads_a_constant_number_of_rows_whatever_the_history`: a lead gets
//!   [`HISTORY`] touchpoints of mixed types and times (some stamped ahead of the clock) under a
//!   decaying config with a negative weight; then one more touchpoint reads at most
//!   [`MAX_ROWS_READ`] rows, no more than the same touchpoint on a lead with a short history, and
//!   the lead's stored score and level equal the domain's full recomputation over all its
//!   touchpoints at the write's time. The heat endpoint, which does read the whole history, shows
//!   the meter sees such reads.
//! - `concurrent_touchpoints_on_one_lead_all_count`: [`WRITERS`] clients record touchpoints on one
//!   lead at once. A heat write that lost the race rolls its insert back and is retried, so every
//!   touchpoint is stored exactly once and folded into the state exactly once: the score is the
//!   sum of their weights, and the lead is not left for a rebuild.

use chrono::{DateTime, Duration, Utc};
use leadheat_domain::scoring::{score, ScoringConfig, Touch};
use leadheat_domain::types::{HeatLevel, InteractionType};
use leadheat_e2e::runner::{run, E2eTest};
use leadheat_e2e::{token, unique_org, unix_now, Resp, Runtime};
use serde_json::{json, Value};

/// Touchpoints a lead gets before the measured one.
const HISTORY: usize = 600;

/// Rows a touchpoint insert may read, whatever its lead's history. Measured: 18 rows in 10
/// queries, with 600 touchpoints before it as with 5, every query a lookup of one or a few rows
/// by key (the caller's org in the directory, the lead, its heat state, the scoring config, the
/// insert with the guarded heat write, the interaction and lead of the answer). The bound leaves
/// room for a few more lookups; the history is out of reach of it: before the heat state the same
/// insert read 1222 rows with 600 touchpoints before it (34 with 5), reading them twice, once to
/// score and once for `last_interaction_at`.
const MAX_ROWS_READ: u64 = 30;

/// Clients recording touchpoints on one lead at once, and touchpoints each.
const WRITERS: usize = 6;
const WRITES_EACH: usize = 8;

fn main() {
    let tests: &[E2eTest] = &[
        (
            "a_touchpoint_reads_a_constant_number_of_rows_whatever_the_history",
            a_touchpoint_reads_a_constant_number_of_rows_whatever_the_history,
        ),
        (
            "concurrent_touchpoints_on_one_lead_all_count",
            concurrent_touchpoints_on_one_lead_all_count,
        ),
    ];
    run(
        Runtime::start_with_env(&[("DEV_SERVER_TIMING", "on")]),
        tests,
    )
}

/// A metric of the `Server-Timing` header (`name;desc="N"`), as a count.
fn timing(response: &Resp, metric: &str) -> u64 {
    let header = response
        .header("Server-Timing")
        .unwrap_or_else(|| panic!("no Server-Timing header: is DEV_SERVER_TIMING on?"));
    header
        .split(',')
        .map(str::trim)
        .find_map(|entry| entry.strip_prefix(&format!("{metric};desc=\"")))
        .and_then(|rest| rest.strip_suffix('"'))
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no {metric} count in Server-Timing: {header}"))
}

/// The config: weights of several signs, decay on.
fn config() -> Value {
    json!({
        "weights": {
            "social_like": 1, "website_visit": 2, "info_request": 5,
            "price_quote": 8, "site_visit": 10, "note": -3
        },
        "thresholds": {"warm": 40, "hot": 400},
        "decay_half_life_days": 30
    })
}

const KINDS: [&str; 7] = [
    "social_like",
    "website_visit",
    "note",
    "info_request",
    "call",
    "price_quote",
    "site_visit",
];

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn create_lead(rt: &Runtime, tok: &str, name: &str) -> String {
    let lead = rt
        .post("/v1/leads")
        .bearer(tok)
        .send_json(&json!({"first_name": name, "last_name": "Cost"}))
        .expect(201)
        .json();
    lead["id"].as_str().expect("a lead id").to_string()
}

/// Records the `i`-th touchpoint of a history: its type cycles, its time spreads over the last
/// 90 days, and every 40th is stamped a day or two ahead of the clock.
fn touch(rt: &Runtime, tok: &str, lead: &str, i: usize, now: DateTime<Utc>) -> Resp {
    let at = if i % 40 == 39 {
        now + Duration::hours(24 + (i % 24) as i64)
    } else {
        now - Duration::minutes(((i * 7919) % (90 * 24 * 60)) as i64)
    };
    rt.post(&format!("/v1/leads/{lead}/interactions"))
        .bearer(tok)
        .send_json(&json!({
            "type": KINDS[i % KINDS.len()],
            "platform": "website",
            "occurred_at": rfc3339(at),
        }))
        .expect(201)
}

fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

fn a_touchpoint_reads_a_constant_number_of_rows_whatever_the_history(rt: &Runtime) {
    let org = unique_org("heat-cost");
    let admin = token(&org, "admin");
    rt.request("PUT", "/v1/scoring")
        .bearer(&admin)
        .send_json(&config())
        .expect(200);
    let stored_config: ScoringConfig = serde_json::from_value(config()).unwrap();
    let now = DateTime::from_timestamp(unix_now(), 0).expect("a current time");

    let short = create_lead(rt, &admin, "Short");
    for i in 0..5 {
        touch(rt, &admin, &short, i, now);
    }
    let long = create_lead(rt, &admin, "Long");
    for i in 0..HISTORY {
        touch(rt, &admin, &long, i, now);
    }

    // The same touchpoint (type and time) on both leads.
    let short_rows = timing(&touch(rt, &admin, &short, HISTORY, now), "d1-rows-read");
    let recorded = touch(rt, &admin, &long, HISTORY, now);
    let long_rows = timing(&recorded, "d1-rows-read");
    println!(
        "rows read by a touchpoint: {long_rows} with {HISTORY} before it, {short_rows} with 5 \
         ({} queries)",
        timing(&recorded, "d1-queries")
    );
    assert!(
        long_rows <= MAX_ROWS_READ,
        "a touchpoint on a lead with {HISTORY} read {long_rows} rows (at most {MAX_ROWS_READ})"
    );
    assert!(
        long_rows <= short_rows,
        "the history costs rows: {long_rows} with {HISTORY} touchpoints, {short_rows} with 5"
    );

    // The stored heat is the full recomputation over every touchpoint at the write's time.
    let db = rt.org_db(&org);
    let (stored_score, stored_level, scored_at): (f64, String, String) = db
        .query_row(
            "SELECT heat_score, heat_level, scored_at FROM leads WHERE id = ?1",
            [&long],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let touches: Vec<Touch> = db
        .prepare("SELECT type, occurred_at FROM interactions WHERE lead_id = ?1")
        .unwrap()
        .query_map([&long], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .unwrap()
        .map(|row| {
            let (kind, at) = row.unwrap();
            Touch::new(kind.parse::<InteractionType>().unwrap(), parse_time(&at))
        })
        .collect();
    assert_eq!(touches.len(), HISTORY + 1);
    let full = score(&touches, &stored_config, parse_time(&scored_at));
    // Rounding to cents may put the two sums, a few ulps apart, a cent apart.
    assert!(
        (stored_score - full.score).abs() <= 0.01 + 1e-9,
        "stored {stored_score}, recomputed {}",
        full.score
    );
    assert_eq!(stored_level, full.level.as_str());
    assert_ne!(
        full.level,
        HeatLevel::Cold,
        "the history makes the lead warm at least"
    );
    let answered = recorded.json();
    assert_eq!(answered["lead"]["heat_score"].as_f64(), Some(stored_score));

    // The meter does see a read of the whole history.
    let heat = rt
        .get(&format!("/v1/leads/{long}/heat"))
        .bearer(&admin)
        .send_empty()
        .expect(200);
    let heat_rows = timing(&heat, "d1-rows-read");
    assert!(
        heat_rows > HISTORY as u64,
        "the heat breakdown reads every touchpoint, yet {heat_rows} rows were counted"
    );
}

fn concurrent_touchpoints_on_one_lead_all_count(rt: &Runtime) {
    let org = unique_org("heat-race");
    let admin = token(&org, "admin");
    let lead = create_lead(rt, &admin, "Busy");
    // The first touchpoint builds the lead's state; the rest race on it.
    rt.post(&format!("/v1/leads/{lead}/interactions"))
        .bearer(&admin)
        .send_json(&json!({"type": "social_like", "platform": "website"}))
        .expect(201);
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let (admin, lead) = (&admin, &lead);
            scope.spawn(move || {
                for i in 0..WRITES_EACH {
                    let kind = ["website_visit", "info_request", "site_visit"][(writer + i) % 3];
                    rt.post(&format!("/v1/leads/{lead}/interactions"))
                        .bearer(admin)
                        .send_json(&json!({"type": kind, "platform": "website"}))
                        .expect(201);
                }
            });
        }
    });
    // The default weights, without decay: website_visit 2, info_request 5, site_visit 10.
    let expected: i64 = 1
        + (0..WRITERS)
            .flat_map(|w| (0..WRITES_EACH).map(move |i| [2, 5, 10][(w + i) % 3]))
            .sum::<i64>();
    let (count, flagged, stored): (i64, i64, f64) = rt
        .org_db(&org)
        .query_row(
            "SELECT (SELECT COUNT(*) FROM interactions WHERE lead_id = ?1), needs_rescore, heat_score \
             FROM leads WHERE id = ?1",
            [&lead],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(count as usize, 1 + WRITERS * WRITES_EACH);
    assert_eq!(stored, expected as f64, "every touchpoint counts once");
    assert_eq!(flagged, 0, "no touchpoint was left for a rebuild");
}
