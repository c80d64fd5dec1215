//! End-to-end tests of `POST /v1/scoring/preview`: a proposed config scored over a bounded sample
//! of the org's leads, with nothing stored, and the same numbers a save and a rescore then store.

use leadheat_e2e::runner::{run_serially, E2eTest};
use leadheat_e2e::{token, unique_org, Resp, Runtime};
use serde_json::{json, Value};

fn main() {
    let tests: &[E2eTest] = &[
        (
            "preview_changes_nothing_and_matches_the_rescore",
            preview_changes_nothing_and_matches_the_rescore,
        ),
        (
            "the_sample_is_the_hottest_and_the_latest_at_most_ten",
            the_sample_is_the_hottest_and_the_latest_at_most_ten,
        ),
        (
            "invalid_bodies_name_the_field_and_only_admins_preview",
            invalid_bodies_name_the_field_and_only_admins_preview,
        ),
    ];
    // One at a time: the scoring cron one test fires runs over every org of the runtime.
    run_serially(Runtime::start(), tests)
}

fn proposal() -> Value {
    json!({
        "weights": {
            "social_follow": 1, "social_like": 1, "website_visit": 2,
            "info_request": 20, "price_quote": 8, "site_visit": 10
        },
        "thresholds": {"warm": 6, "hot": 16},
        "decay_half_life_days": null,
    })
}

fn create_lead(rt: &Runtime, tok: &str, name: &str) -> String {
    let lead = rt
        .post("/v1/leads")
        .bearer(tok)
        .send_json(&json!({
            "first_name": name,
            "last_name": "Preview",
            "email": format!("{}@example.com", leadheat_e2e::unique_suffix()),
        }))
        .expect(201)
        .json();
    lead["id"].as_str().expect("a lead id").to_string()
}

fn touch(rt: &Runtime, tok: &str, lead: &str, kind: &str, occurred_at: &str) {
    rt.post(&format!("/v1/leads/{lead}/interactions"))
        .bearer(tok)
        .send_json(&json!({"type": kind, "platform": "website", "occurred_at": occurred_at}))
        .expect(201);
}

fn heat(rt: &Runtime, tok: &str, id: &str) -> Heat {
    let lead = rt
        .get(&format!("/v1/leads/{id}"))
        .bearer(tok)
        .send_empty()
        .expect(200)
        .json();
    (
        lead["heat_score"].as_f64().expect("a heat_score"),
        lead["heat_level"]
            .as_str()
            .expect("a heat_level")
            .to_string(),
    )
}

fn preview(rt: &Runtime, tok: &str, body: &Value) -> Resp {
    rt.post("/v1/scoring/preview").bearer(tok).send_json(body)
}

/// A score and its level.
type Heat = (f64, String);

/// Per previewed lead: (id, current heat, proposed heat, level_changed).
fn lines(answer: &Value) -> Vec<(String, Heat, Heat, bool)> {
    let pair = |v: &Value| {
        (
            v["score"].as_f64().expect("a score"),
            v["level"].as_str().expect("a level").to_string(),
        )
    };
    answer["leads"]
        .as_array()
        .expect("leads")
        .iter()
        .map(|l| {
            (
                l["id"].as_str().expect("an id").to_string(),
                pair(&l["current"]),
                pair(&l["proposed"]),
                l["level_changed"].as_bool().expect("level_changed"),
            )
        })
        .collect()
}

/// What preview must leave alone: the config row, every lead's heat and flags, the rescore runs.
fn stored_state(rt: &Runtime, org: &str) -> Vec<String> {
    let db = rt.org_db(org);
    let mut state: Vec<String> = db
        .prepare(
            "SELECT id || ':' || heat_score || ':' || heat_level || ':' || needs_rescore || ':' || heat_stamp \
             FROM leads WHERE org_id = ?1 ORDER BY id",
        )
        .unwrap()
        .query_map([org], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let config: String = db
        .query_row(
            "SELECT COALESCE((SELECT config_version || ':' || weights FROM scoring_configs WHERE org_id = ?1), 'none')",
            [org],
            |r| r.get(0),
        )
        .unwrap();
    let runs: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM rescore_runs WHERE org_id = ?1",
            [org],
            |r| r.get(0),
        )
        .unwrap();
    state.push(config);
    state.push(format!("runs:{runs}"));
    state
}

fn preview_changes_nothing_and_matches_the_rescore(rt: &Runtime) {
    let org = unique_org("preview");
    let admin = token(&org, "admin");
    let at = "2026-03-01T12:00:00Z";
    let a = create_lead(rt, &admin, "Asked");
    touch(rt, &admin, &a, "info_request", at);
    touch(rt, &admin, &a, "social_like", at);
    let b = create_lead(rt, &admin, "Quoted");
    touch(rt, &admin, &b, "price_quote", at);
    let c = create_lead(rt, &admin, "Quiet");
    assert_eq!(heat(rt, &admin, &a), (6.0, "WARM".into()));
    assert_eq!(heat(rt, &admin, &b), (8.0, "WARM".into()));

    let before = stored_state(rt, &org);
    let answer = preview(rt, &admin, &proposal()).expect(200).json();
    assert_eq!(answer["config"]["weights"]["info_request"], 20, "{answer}");
    let got = lines(&answer);
    let line = |id: &str| {
        got.iter()
            .find(|l| l.0 == id)
            .unwrap_or_else(|| panic!("{id} not previewed: {answer}"))
            .clone()
    };
    assert_eq!(got.len(), 3, "{answer}");
    assert_eq!(
        line(&a),
        (a.clone(), (6.0, "WARM".into()), (21.0, "HOT".into()), true)
    );
    assert_eq!(
        line(&b),
        (b.clone(), (8.0, "WARM".into()), (8.0, "WARM".into()), false)
    );
    assert_eq!(
        line(&c),
        (c.clone(), (0.0, "COLD".into()), (0.0, "COLD".into()), false)
    );
    // The hottest now (by stored heat) first.
    assert_eq!(got[0].0, b, "{answer}");
    assert_eq!(stored_state(rt, &org), before, "a preview stores nothing");

    // Saving the same config and letting the job rescore gives exactly the previewed heat.
    rt.request("PUT", "/v1/scoring")
        .bearer(&admin)
        .send_json(&proposal())
        .expect(200);
    let fired = rt
        .fire_cron("scoring", Some("*/15 * * * *"), None)
        .expect(200)
        .json();
    assert_eq!(fired["outcome"], "ok", "{fired}");
    for (id, _, proposed, _) in &got {
        assert_eq!(&heat(rt, &admin, id), proposed, "{id}");
    }
    // And previewing the saved config now shows no change at all.
    let again = preview(rt, &admin, &proposal()).expect(200).json();
    for (id, current, proposed, changed) in lines(&again) {
        assert_eq!(current, proposed, "{id}");
        assert!(!changed, "{id}");
    }
}

fn the_sample_is_the_hottest_and_the_latest_at_most_ten(rt: &Runtime) {
    let org = unique_org("preview-sample");
    let admin = token(&org, "admin");
    // Lead i: i + 1 website visits (score 2i + 2), all i hours old. So the hottest are the oldest
    // (11, 10, ...) and the most recently active the coldest (0, 1, ...).
    let ids: Vec<String> = (0..12)
        .map(|i| {
            let id = create_lead(rt, &admin, &format!("S{i}"));
            let at = format!("2026-03-01T{:02}:00:00Z", 20 - i);
            for _ in 0..=i {
                touch(rt, &admin, &id, "website_visit", &at);
            }
            id
        })
        .collect();
    let answer = preview(rt, &admin, &proposal()).expect(200).json();
    let got: Vec<String> = lines(&answer).into_iter().map(|l| l.0).collect();
    let want: Vec<String> = [11, 10, 9, 8, 7, 0, 1, 2, 3, 4]
        .iter()
        .map(|&i| ids[i].clone())
        .collect();
    assert_eq!(got, want, "{answer}");
    let first = &answer["leads"][0];
    assert_eq!(first["first_name"], "S11", "{answer}");
    assert_eq!(first["current"]["score"], 24, "{answer}");
    assert_eq!(first["last_interaction_at"], "2026-03-01T09:00:00.000Z");
}

fn problem_fields(resp: &Resp) -> Vec<String> {
    resp.json()["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn invalid_bodies_name_the_field_and_only_admins_preview(rt: &Runtime) {
    let org = unique_org("preview-invalid");
    let admin = token(&org, "admin");

    let mut body = proposal();
    body["thresholds"] = json!({"warm": 10, "hot": 5});
    let resp = preview(rt, &admin, &body).expect(422);
    assert_eq!(problem_fields(&resp), ["thresholds.hot"]);

    let mut body = proposal();
    body["weights"]["poke"] = json!(3);
    body["decay_half_life_days"] = json!("soon");
    let resp = preview(rt, &admin, &body).expect(422);
    assert_eq!(
        problem_fields(&resp),
        ["weights.poke", "decay_half_life_days"]
    );

    let resp = preview(rt, &admin, &json!({"thresholds": {"warm": 1, "hot": 2}})).expect(422);
    assert_eq!(problem_fields(&resp), ["weights"]);

    for role in ["viewer", "member"] {
        preview(rt, &token(&org, role), &proposal()).expect(403);
    }
}
