//! End-to-end tests of the scoring job (issue 5) through `POST /__dev/cron/scoring`, whose `time`
//! parameter is the job's clock: config changes, decay, resumable batches, nightly snapshots and
//! trends, overlapping runs, and the recalculation endpoint.
//!
//! Every cron run touches every org of the runtime's database, so the tests of this binary run one
//! at a time (`SERIAL`); each still uses its own org, and the budget test its own runtime.

use std::sync::{Mutex, MutexGuard};

use leadheat_e2e::runner::{run, E2eTest};
use leadheat_e2e::{token, unique_org, Runtime};
use serde_json::{json, Value};

const FREQUENT: &str = "*/15 * * * *";
const NIGHTLY: &str = "5 0 * * *";

fn main() {
    let tests: &[E2eTest] = &[
        (
            "config_change_rescores_every_lead",
            config_change_rescores_every_lead,
        ),
        (
            "decay_cools_a_hot_lead_as_the_clock_moves",
            decay_cools_a_hot_lead_as_the_clock_moves,
        ),
        (
            "small_budget_run_resumes_and_finishes_next_run",
            small_budget_run_resumes_and_finishes_next_run,
        ),
        (
            "nightly_snapshots_give_the_7_day_trend_and_are_pruned",
            nightly_snapshots_give_the_7_day_trend_and_are_pruned,
        ),
        ("overlapping_runs_apply_once", overlapping_runs_apply_once),
        (
            "recalculate_endpoint_schedules_and_reports",
            recalculate_endpoint_schedules_and_reports,
        ),
    ];
    run(Runtime::start(), tests)
}

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn seed_weights() -> Value {
    json!({
        "social_follow": 1, "social_like": 1, "website_visit": 2,
        "info_request": 5, "price_quote": 8, "site_visit": 10
    })
}

fn put_scoring(rt: &Runtime, admin: &str, weights: Value, warm: f64, hot: f64, decay: Value) {
    rt.request("PUT", "/v1/scoring")
        .bearer(admin)
        .send_json(&json!({
            "weights": weights,
            "thresholds": {"warm": warm, "hot": hot},
            "decay_half_life_days": decay,
        }))
        .expect(200);
}

fn create_lead(rt: &Runtime, tok: &str, name: &str) -> String {
    let lead = rt
        .post("/v1/leads")
        .bearer(tok)
        .send_json(&json!({
            "first_name": name,
            "last_name": "Scoring",
            "email": format!("{}@example.com", leadheat_e2e::unique_suffix()),
        }))
        .expect(201)
        .json();
    lead["id"].as_str().expect("a lead id").to_string()
}

fn touch(rt: &Runtime, tok: &str, lead: &str, kind: &str, occurred_at: &str) -> Value {
    rt.post(&format!("/v1/leads/{lead}/interactions"))
        .bearer(tok)
        .send_json(&json!({"type": kind, "platform": "website", "occurred_at": occurred_at}))
        .expect(201)
        .json()
}

fn lead(rt: &Runtime, tok: &str, id: &str) -> Value {
    rt.get(&format!("/v1/leads/{id}"))
        .bearer(tok)
        .send_empty()
        .expect(200)
        .json()
}

fn heat(rt: &Runtime, tok: &str, id: &str) -> (f64, String) {
    let lead = lead(rt, tok, id);
    (
        lead["heat_score"].as_f64().expect("a numeric heat_score"),
        lead["heat_level"]
            .as_str()
            .expect("a heat_level")
            .to_string(),
    )
}

fn fire(rt: &Runtime, cron: &str, time: &str) {
    let fired = rt
        .fire_cron("scoring", Some(cron), Some(time))
        .expect(200)
        .json();
    assert_eq!(fired["outcome"], "ok", "{fired}");
}

/// The level changes recorded for a lead, in the order they were written (ids are time-sortable
/// by the wall clock), as (old, new, changed_at). The API records changes too (at the request's
/// wall-clock time), so tests compare what a run appended.
fn level_changes(rt: &Runtime, lead: &str) -> Vec<(String, String, String)> {
    rt.query_shards(
        "SELECT old_level, new_level, changed_at FROM heat_level_changes WHERE lead_id = ?1 \
         ORDER BY id",
        [lead],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )
}

/// The level changes written after the first `before` ones.
fn level_changes_since(rt: &Runtime, lead: &str, before: usize) -> Vec<(String, String, String)> {
    level_changes(rt, lead)[before..].to_vec()
}

/// The job_runs summary (in the directory) of the latest run stamped with `started_at`.
fn run_summaries(rt: &Runtime, started_at: &str) -> Vec<Value> {
    rt.directory_db()
        .prepare(
            "SELECT summary FROM job_runs WHERE job = 'scoring' AND started_at = ?1 ORDER BY id",
        )
        .unwrap()
        .query_map([started_at], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|s| serde_json::from_str(&s.unwrap()).unwrap())
        .collect()
}

fn config_change_rescores_every_lead(rt: &Runtime) {
    let _serial = serial();
    let org = unique_org("rescore-config");
    let admin = token(&org, "admin");
    let at = "2026-03-01T12:00:00Z";

    let a = create_lead(rt, &admin, "A");
    touch(rt, &admin, &a, "website_visit", at);
    touch(rt, &admin, &a, "website_visit", at);
    touch(rt, &admin, &a, "social_like", at);
    let b = create_lead(rt, &admin, "B");
    touch(rt, &admin, &b, "website_visit", at);
    touch(rt, &admin, &b, "info_request", at);
    let c = create_lead(rt, &admin, "C");
    assert_eq!(heat(rt, &admin, &a), (5.0, "COLD".into()));
    assert_eq!(heat(rt, &admin, &b), (7.0, "WARM".into()));
    assert_eq!(heat(rt, &admin, &c), (0.0, "COLD".into()));

    let before: Vec<usize> = [&a, &b, &c]
        .iter()
        .map(|id| level_changes(rt, id).len())
        .collect();
    // Double website_visit.
    let mut weights = seed_weights();
    weights["website_visit"] = json!(4);
    put_scoring(rt, &admin, weights, 6.0, 16.0, Value::Null);
    fire(rt, FREQUENT, "2026-03-10T10:00:00Z");

    assert_eq!(heat(rt, &admin, &a), (9.0, "WARM".into()), "4 + 4 + 1");
    assert_eq!(heat(rt, &admin, &b), (9.0, "WARM".into()), "4 + 5");
    assert_eq!(heat(rt, &admin, &c), (0.0, "COLD".into()));

    let version: i64 = rt
        .org_db(&org)
        .query_row(
            "SELECT config_version FROM scoring_configs WHERE org_id = ?1",
            [&org],
            |r| r.get(0),
        )
        .unwrap();
    let rows: Vec<(String, i64, i64, String)> = rt.org_db(&org)
        .prepare("SELECT id, needs_rescore, scored_config_version, scored_at FROM leads WHERE org_id = ?1 ORDER BY id")
        .unwrap()
        .query_map([&org], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 3);
    for (id, flagged, scored_version, scored_at) in rows {
        assert_eq!((flagged, scored_version), (0, version), "{id}");
        assert_eq!(scored_at, "2026-03-10T10:00:00.000Z", "{id}");
    }

    // Exactly one level change, for A only, stamped with the run's time.
    assert_eq!(
        level_changes_since(rt, &a, before[0]),
        [(
            "COLD".into(),
            "WARM".into(),
            "2026-03-10T10:00:00.000Z".into()
        )]
    );
    assert!(level_changes_since(rt, &b, before[1]).is_empty());
    assert!(level_changes_since(rt, &c, before[2]).is_empty());

    // A second run changes nothing.
    fire(rt, FREQUENT, "2026-03-10T10:15:00Z");
    assert_eq!(heat(rt, &admin, &a), (9.0, "WARM".into()));
    assert_eq!(level_changes_since(rt, &a, before[0]).len(), 1);
}

fn decay_cools_a_hot_lead_as_the_clock_moves(rt: &Runtime) {
    let _serial = serial();
    let org = unique_org("rescore-decay");
    let admin = token(&org, "admin");
    let t0 = "2026-02-01T00:00:00Z";
    let id = create_lead(rt, &admin, "Hot");
    touch(rt, &admin, &id, "site_visit", t0);
    touch(rt, &admin, &id, "price_quote", t0);
    assert_eq!(heat(rt, &admin, &id), (18.0, "HOT".into()));

    let before = level_changes(rt, &id).len();
    put_scoring(rt, &admin, seed_weights(), 6.0, 16.0, json!(7));
    // One half-life later: 18 / 2.
    fire(rt, FREQUENT, "2026-02-08T00:00:00Z");
    assert_eq!(heat(rt, &admin, &id), (9.0, "WARM".into()));
    assert_eq!(
        level_changes_since(rt, &id, before),
        [(
            "HOT".into(),
            "WARM".into(),
            "2026-02-08T00:00:00.000Z".into()
        )]
    );

    // Nothing flags the lead now: the decay sweep alone notices its score moved. 18 / 4.
    fire(rt, FREQUENT, "2026-02-15T00:00:00Z");
    assert_eq!(heat(rt, &admin, &id), (4.5, "COLD".into()));
    // Half a half-life further: 18 × 2^-2.5 = 3.18198… → 3.18.
    fire(rt, FREQUENT, "2026-02-18T12:00:00Z");
    assert_eq!(heat(rt, &admin, &id), (3.18, "COLD".into()));
    // The same instant again: nothing moves, nothing is recorded twice.
    fire(rt, FREQUENT, "2026-02-18T12:00:00Z");
    assert_eq!(heat(rt, &admin, &id), (3.18, "COLD".into()));
    assert_eq!(
        level_changes_since(rt, &id, before),
        [
            (
                "HOT".into(),
                "WARM".into(),
                "2026-02-08T00:00:00.000Z".into()
            ),
            (
                "WARM".into(),
                "COLD".into(),
                "2026-02-15T00:00:00.000Z".into()
            ),
        ]
    );
}

fn small_budget_run_resumes_and_finishes_next_run(_shared: &Runtime) {
    // Its own runtime: one batch of two leads per run, and no other org's leads in the way.
    let rt = &Runtime::start_with_env(&[
        ("SCORING_BATCHES_PER_RUN", "1"),
        ("SCORING_BATCH_SIZE", "2"),
    ]);
    let org = unique_org("rescore-budget");
    let admin = token(&org, "admin");
    let mut ids: Vec<String> = (0..3)
        .map(|i| {
            let id = create_lead(rt, &admin, &format!("L{i}"));
            touch(rt, &admin, &id, "website_visit", "2026-03-01T12:00:00Z");
            id
        })
        .collect();
    ids.sort();
    // Score the fresh leads once so that the only pending work is the config change.
    fire(rt, FREQUENT, "2026-03-02T00:00:00Z");
    fire(rt, FREQUENT, "2026-03-02T00:15:00Z");

    let mut weights = seed_weights();
    weights["website_visit"] = json!(3);
    put_scoring(rt, &admin, weights, 6.0, 16.0, Value::Null);

    fire(rt, FREQUENT, "2026-03-03T00:00:00Z");
    let scores = |rt: &Runtime| -> Vec<(String, f64, i64)> {
        rt.org_db(&org)
            .prepare(
                "SELECT id, heat_score, needs_rescore FROM leads WHERE org_id = ?1 ORDER BY id",
            )
            .unwrap()
            .query_map([&org], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    // The first two (keyset order) are rescored, the third waits.
    assert_eq!(
        scores(rt),
        [
            (ids[0].clone(), 3.0, 0),
            (ids[1].clone(), 3.0, 0),
            (ids[2].clone(), 2.0, 1),
        ]
    );
    let (status, cursor, done, total): (String, Option<String>, i64, i64) = rt.org_db(&org)
        .query_row(
            "SELECT status, cursor_lead_id, leads_done, leads_total FROM rescore_runs WHERE org_id = ?1",
            [&org],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (status.as_str(), cursor.as_deref(), done, total),
        ("running", Some(ids[1].as_str()), 2, 3)
    );
    let first = run_summaries(rt, "2026-03-03T00:00:00.000Z");
    assert_eq!(first.len(), 1);
    let first = &first[0];
    assert_eq!(first["lease"], "acquired", "{first}");
    assert_eq!(first["batches"], 1, "{first}");
    assert_eq!(first["leads_examined"], 2, "{first}");
    assert_eq!(first["rescored"], 2, "{first}");
    assert_eq!(first["orgs"], 1, "{first}");
    assert_eq!(first["finished"], false, "{first}");
    assert_eq!(first["will_resume"], true, "{first}");

    fire(rt, FREQUENT, "2026-03-03T00:15:00Z");
    assert_eq!(
        scores(rt),
        [
            (ids[0].clone(), 3.0, 0),
            (ids[1].clone(), 3.0, 0),
            (ids[2].clone(), 3.0, 0),
        ]
    );
    let (status, cursor, done, total): (String, Option<String>, i64, i64) = rt.org_db(&org)
        .query_row(
            "SELECT status, cursor_lead_id, leads_done, leads_total FROM rescore_runs WHERE org_id = ?1",
            [&org],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((status.as_str(), cursor, done, total), ("done", None, 3, 3));
    let second = &run_summaries(rt, "2026-03-03T00:15:00.000Z")[0];
    assert_eq!(second["leads_examined"], 1, "{second}");
    assert_eq!(second["rescored"], 1, "{second}");
    assert_eq!(second["finished"], true, "{second}");
    assert_eq!(second["will_resume"], false, "{second}");

    // The structured log line of the run is in the runtime's output.
    let log = rt.log();
    assert!(
        log.lines().any(|line| line.contains("\"job\":\"scoring\"")
            && line.contains("\"scheduled_time\":\"2026-03-03T00:15:00.000Z\"")
            && line.contains("\"elapsed_ms\":")
            && line.contains("\"level_changes\":0")),
        "no JSON summary line in the runtime log:\n{log}"
    );
}

fn nightly_snapshots_give_the_7_day_trend_and_are_pruned(rt: &Runtime) {
    let _serial = serial();
    let org = unique_org("rescore-trend");
    let admin = token(&org, "admin");
    let at = "2026-01-01T00:00:00Z";
    let id = create_lead(rt, &admin, "Trend");
    touch(rt, &admin, &id, "website_visit", at);

    let snapshots = |rt: &Runtime| -> Vec<(String, f64, String)> {
        rt.org_db(&org)
            .prepare("SELECT day, score, level FROM heat_snapshots WHERE lead_id = ?1 ORDER BY day")
            .unwrap()
            .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let trend = |rt: &Runtime| {
        lead(rt, &admin, &id)["heat_trend"]
            .as_f64()
            .expect("numeric heat_trend")
    };

    fire(rt, NIGHTLY, "2026-01-01T00:05:00Z");
    assert_eq!(snapshots(rt), [("2026-01-01".into(), 2.0, "COLD".into())]);
    assert_eq!(trend(rt), 0.0, "no history yet");

    touch(rt, &admin, &id, "price_quote", at); // 10
    fire(rt, NIGHTLY, "2026-01-08T00:05:00Z");
    assert_eq!(
        trend(rt),
        8.0,
        "10 now against 2 a week ago, nothing before"
    );

    touch(rt, &admin, &id, "site_visit", at);
    touch(rt, &admin, &id, "info_request", at); // 25
    fire(rt, NIGHTLY, "2026-01-15T00:05:00Z");
    assert_eq!(trend(rt), 7.0, "(25 - 10) - (10 - 2)");
    // A rerun the same day overwrites: still one snapshot per day.
    fire(rt, NIGHTLY, "2026-01-15T00:05:00Z");
    assert_eq!(trend(rt), 7.0);
    assert_eq!(
        snapshots(rt),
        [
            ("2026-01-01".into(), 2.0, "COLD".into()),
            ("2026-01-08".into(), 10.0, "WARM".into()),
            ("2026-01-15".into(), 25.0, "HOT".into()),
        ]
    );
    // A frequent run writes no snapshot.
    fire(rt, FREQUENT, "2026-01-16T10:00:00Z");
    assert_eq!(snapshots(rt).len(), 3);

    // 400 days of retention: on 2027-02-10 the oldest day kept is 2026-01-07.
    fire(rt, NIGHTLY, "2027-02-10T00:05:00Z");
    assert_eq!(
        snapshots(rt),
        [
            ("2026-01-08".into(), 10.0, "WARM".into()),
            ("2026-01-15".into(), 25.0, "HOT".into()),
            ("2027-02-10".into(), 25.0, "HOT".into()),
        ]
    );
    assert_eq!(trend(rt), 0.0, "no snapshot 7 days before");
    let summary = &run_summaries(rt, "2027-02-10T00:05:00.000Z")[0];
    assert_eq!(summary["kind"], "nightly", "{summary}");
    assert_eq!(summary["snapshot_day"], "2027-02-10", "{summary}");
    assert_eq!(summary["snapshots_finished"], true, "{summary}");
    assert!(
        summary["snapshots_pruned"].as_u64().unwrap() >= 1,
        "{summary}"
    );
}

/// Four runs fired at the same instant from four threads give the result of one run.
fn overlapping_runs_apply_once(rt: &Runtime) {
    let _serial = serial();
    let org = unique_org("rescore-overlap");
    let admin = token(&org, "admin");
    let ids: Vec<String> = (0..4)
        .map(|i| {
            let id = create_lead(rt, &admin, &format!("O{i}"));
            touch(rt, &admin, &id, "info_request", "2026-03-01T12:00:00Z");
            id
        })
        .collect();
    for id in &ids {
        assert_eq!(heat(rt, &admin, id), (5.0, "COLD".into()));
    }
    let before: Vec<usize> = ids.iter().map(|id| level_changes(rt, id).len()).collect();
    // Lower the WARM threshold: every lead changes level in the next run.
    put_scoring(rt, &admin, seed_weights(), 5.0, 16.0, Value::Null);

    let time = "2026-04-01T00:05:00Z";
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| fire(rt, NIGHTLY, time)))
            .collect();
        for handle in runs {
            handle.join().expect("the cron request thread");
        }
    });

    for (id, before) in ids.iter().zip(before) {
        assert_eq!(heat(rt, &admin, id), (5.0, "WARM".into()));
        assert_eq!(
            level_changes_since(rt, id, before),
            [(
                "COLD".into(),
                "WARM".into(),
                "2026-04-01T00:05:00.000Z".into()
            )],
            "{id}"
        );
    }
    let snapshots: Vec<(String, i64)> = rt.org_db(&org)
        .prepare(
            "SELECT lead_id, COUNT(*) FROM heat_snapshots WHERE org_id = ?1 GROUP BY lead_id ORDER BY lead_id",
        )
        .unwrap()
        .query_map([&org], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut expected: Vec<(String, i64)> = ids.iter().map(|id| (id.clone(), 1)).collect();
    expected.sort();
    assert_eq!(snapshots, expected);
    // Every run was recorded. The lease serialized them (the later ones waited for it): exactly
    // one did the rescoring, the others found nothing left, and the lease is released.
    let summaries = run_summaries(rt, "2026-04-01T00:05:00.000Z");
    assert_eq!(summaries.len(), 4, "{summaries:?}");
    let working: Vec<&Value> = summaries
        .iter()
        .filter(|s| s["rescored"].as_u64().unwrap() > 0 || s["level_changes"].as_u64().unwrap() > 0)
        .collect();
    assert_eq!(working.len(), 1, "{summaries:?}");
    assert!(
        working[0]["rescored"].as_u64().unwrap() >= 4,
        "{summaries:?}"
    );
    assert!(
        working[0]["level_changes"].as_u64().unwrap() >= 4,
        "{summaries:?}"
    );
    for summary in &summaries {
        assert_eq!(summary["conflicts"], 0, "{summary}");
        assert!(
            summary["lease"] == "acquired" || summary["lease"] == "busy",
            "{summary}"
        );
    }
    let leases: i64 = rt
        .directory_db()
        .query_row(
            "SELECT COUNT(*) FROM job_leases WHERE name = 'scoring'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leases, 0);
}

fn recalculate_endpoint_schedules_and_reports(rt: &Runtime) {
    let _serial = serial();
    let org = unique_org("rescore-recalc");
    let admin = token(&org, "admin");
    let member = token(&org, "member");

    let idle = rt
        .get("/v1/scoring/recalculate")
        .bearer(&token(&org, "viewer"))
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(idle["status"], "idle", "{idle}");
    rt.post("/v1/scoring/recalculate")
        .bearer(&member)
        .send_empty()
        .expect(403);

    let ids: Vec<String> = (0..3)
        .map(|i| {
            let id = create_lead(rt, &admin, &format!("R{i}"));
            touch(rt, &admin, &id, "price_quote", "2026-03-01T12:00:00Z");
            id
        })
        .collect();
    // Scored at once by the API, then a run settles any first-time work.
    fire(rt, FREQUENT, "2026-05-01T08:45:00Z");

    let queued = rt
        .post("/v1/scoring/recalculate")
        .bearer(&admin)
        .send_empty()
        .expect(202)
        .json();
    assert_eq!(queued["status"], "queued", "{queued}");
    assert_eq!(queued["leads_done"], 0, "{queued}");
    assert_eq!(queued["leads_total"], 3, "{queued}");
    assert!(queued["requested_at"].is_string(), "{queued}");
    assert_eq!(queued["finished_at"], Value::Null, "{queued}");
    let flagged: i64 = rt
        .org_db(&org)
        .query_row(
            "SELECT COUNT(*) FROM leads WHERE org_id = ?1 AND needs_rescore = 1",
            [&org],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(flagged, 3);
    let status = rt
        .get("/v1/scoring/recalculate")
        .bearer(&member)
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(status, queued);

    fire(rt, FREQUENT, "2026-05-01T09:00:00Z");
    let done = rt
        .get("/v1/scoring/recalculate")
        .bearer(&member)
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["leads_done"], 3, "{done}");
    assert_eq!(done["leads_total"], 3, "{done}");
    assert_eq!(done["requested_at"], queued["requested_at"], "{done}");
    assert_eq!(done["started_at"], "2026-05-01T09:00:00.000Z", "{done}");
    assert_eq!(done["finished_at"], "2026-05-01T09:00:00.000Z", "{done}");
    for id in &ids {
        assert_eq!(heat(rt, &admin, id), (8.0, "WARM".into()));
    }
    let scored_at: Vec<String> = rt
        .org_db(&org)
        .prepare("SELECT scored_at FROM leads WHERE org_id = ?1")
        .unwrap()
        .query_map([&org], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(scored_at, vec!["2026-05-01T09:00:00.000Z".to_string(); 3]);
}
