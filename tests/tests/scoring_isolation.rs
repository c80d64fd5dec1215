//! Scoring isolation, end to end: an org whose rescoring keeps failing (here, a test-only trigger
//! on its shard refuses its leads' heat writes) is logged, backed off and skipped, while every
//! other org is rescored in the same runs, on its shard and on the other one; once the org is
//! healthy again its next try succeeds and its backoff is forgotten.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use leadheat_e2e::runner::{run_serially, E2eTest};
use leadheat_e2e::{token, unique_org, unix_now, Runtime};
use rusqlite::{Connection, OptionalExtension};
use serde_json::{json, Value};

const FREQUENT: &str = "*/15 * * * *";

fn main() {
    let tests: &[E2eTest] = &[(
        "a_failing_org_backs_off_and_every_other_org_is_rescored",
        a_failing_org_backs_off_and_every_other_org_is_rescored,
    )];
    run_serially(Runtime::start(), tests)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An org with one lead worth 5 points (COLD) under the default weights; its id and the lead's.
fn org_with_a_lead(rt: &Runtime, label: &str) -> (String, String) {
    let org = unique_org(label);
    let admin = token(&org, "admin");
    let lead = rt
        .post("/v1/leads")
        .bearer(&admin)
        .send_json(&json!({"first_name": label, "email": format!("{org}@example.com")}))
        .expect(201)
        .json();
    let id = lead["id"].as_str().expect("a lead id").to_string();
    rt.post(&format!("/v1/leads/{id}/interactions"))
        .bearer(&admin)
        .send_json(&json!({"type": "info_request", "platform": "website"}))
        .expect(201);
    (org, id)
}

/// Makes `info_request` worth 20: every lead above must be rescored to HOT by the job.
fn raise_info_request(rt: &Runtime, org: &str) {
    rt.request("PUT", "/v1/scoring")
        .bearer(&token(org, "admin"))
        .send_json(&json!({
            "weights": {"social_follow": 1, "social_like": 1, "website_visit": 2,
                        "info_request": 20, "price_quote": 8, "site_visit": 10},
            "thresholds": {"warm": 6, "hot": 16},
            "decay_half_life_days": null,
        }))
        .expect(200);
}

fn level(rt: &Runtime, org: &str, lead: &str) -> String {
    let lead: Value = rt
        .get(&format!("/v1/leads/{lead}"))
        .bearer(&token(org, "viewer"))
        .send_empty()
        .expect(200)
        .json();
    lead["heat_level"].as_str().expect("a level").to_string()
}

fn shard_of(rt: &Runtime, org: &str) -> i64 {
    rt.directory_db()
        .query_row("SELECT shard FROM orgs WHERE id = ?1", [org], |row| {
            row.get(0)
        })
        .expect("the org is placed")
}

/// The org's backoff row: (failures, failed_at, retry_at, last_error).
fn backoff(rt: &Runtime, org: &str) -> Option<(i64, String, String, String)> {
    rt.org_db(org)
        .query_row(
            "SELECT failures, failed_at, retry_at, last_error FROM scoring_backoff WHERE org_id = ?1",
            [org],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()
        .expect("scoring_backoff is readable")
}

fn writable_shard(rt: &Runtime, org: &str) -> Connection {
    let conn = Connection::open(rt.org_db_path(org)).expect("the shard file opens");
    conn.busy_timeout(StdDuration::from_secs(10))
        .expect("a busy timeout");
    conn
}

fn fire(rt: &Runtime, at: DateTime<Utc>) -> Value {
    let fired = rt
        .fire_cron("scoring", Some(FREQUENT), Some(&rfc3339(at)))
        .expect(200)
        .json();
    assert_eq!(fired["outcome"], "ok", "{fired}");
    fired
}

fn a_failing_org_backs_off_and_every_other_org_is_rescored(rt: &Runtime) {
    // Placement is by load: the first and third org share a shard, the second is on the other.
    let (broken, broken_lead) = org_with_a_lead(rt, "a-broken");
    let (elsewhere, elsewhere_lead) = org_with_a_lead(rt, "c-elsewhere");
    let (beside, beside_lead) = org_with_a_lead(rt, "b-beside");
    assert_eq!(shard_of(rt, &broken), shard_of(rt, &beside));
    assert_ne!(shard_of(rt, &broken), shard_of(rt, &elsewhere));
    for org in [&broken, &elsewhere, &beside] {
        raise_info_request(rt, org);
    }
    writable_shard(rt, &broken)
        .execute_batch(&format!(
            "CREATE TRIGGER test_broken_org BEFORE UPDATE OF heat_score ON leads \
             WHEN NEW.org_id = '{broken}' BEGIN SELECT RAISE(ABORT, 'deliberately broken org'); END;"
        ))
        .expect("the test trigger is created");

    // Run 1: the broken org (listed first on its shard) fails; both others are rescored.
    let now = DateTime::from_timestamp(unix_now(), 0).expect("a valid clock");
    let t0 = now + Duration::minutes(5);
    fire(rt, t0);
    assert_eq!(level(rt, &beside, &beside_lead), "HOT");
    assert_eq!(level(rt, &elsewhere, &elsewhere_lead), "HOT");
    assert_eq!(level(rt, &broken, &broken_lead), "COLD");
    let (failures, failed_at, retry_at, error) = backoff(rt, &broken).expect("a backoff row");
    assert_eq!(failures, 1);
    assert_eq!(failed_at, rfc3339(t0));
    assert_eq!(retry_at, rfc3339(t0 + Duration::seconds(60)));
    assert!(error.contains("deliberately broken org"), "{error}");
    assert!(backoff(rt, &beside).is_none() && backoff(rt, &elsewhere).is_none());

    // Run 2, within the minute: the org is left out, so its count does not move.
    fire(rt, t0 + Duration::seconds(30));
    assert_eq!(backoff(rt, &broken).map(|b| b.0), Some(1));

    // Run 3, after the minute: tried again, failed again, the pause doubles.
    let t3 = t0 + Duration::seconds(61);
    fire(rt, t3);
    let (failures, _, retry_at, _) = backoff(rt, &broken).expect("still backing off");
    assert_eq!(failures, 2);
    assert_eq!(retry_at, rfc3339(t3 + Duration::seconds(120)));

    // Healthy again: the next try after the pause rescores it and forgets the failures.
    writable_shard(rt, &broken)
        .execute_batch("DROP TRIGGER test_broken_org;")
        .expect("the test trigger is dropped");
    fire(rt, t3 + Duration::seconds(60));
    assert_eq!(
        level(rt, &broken, &broken_lead),
        "COLD",
        "still inside its pause"
    );
    fire(rt, t3 + Duration::seconds(121));
    assert_eq!(level(rt, &broken, &broken_lead), "HOT");
    assert!(backoff(rt, &broken).is_none(), "the backoff is forgotten");
}
