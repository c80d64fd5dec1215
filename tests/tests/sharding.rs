//! Orgs sharded across D1 databases, end to end with the local runtime's two shards: new orgs
//! land on both shards, each org's rows live only on its own shard, one org's token never reaches
//! another org's rows (same shard or not), webhook deliveries route to the right shard, and the
//! scheduled jobs work on every shard.
//!
//! The tests run one at a time: the directory places each new org by all the orgs placed before
//! it, so tests placing orgs side by side would decide each other's shards.

use std::time::Duration;

use leadheat_e2e::runner::{run_serially, E2eTest};
use leadheat_e2e::social::{connect_page, numeric_id, page_event, post_meta};
use leadheat_e2e::{token, unique_org, Runtime};
use serde_json::{json, Value};

fn main() {
    let tests: &[E2eTest] = &[
        (
            "new_orgs_are_spread_over_every_shard",
            new_orgs_are_spread_over_every_shard,
        ),
        (
            "an_orgs_rows_live_only_on_its_shard",
            an_orgs_rows_live_only_on_its_shard,
        ),
        (
            "orgs_never_see_each_others_leads_on_any_shard",
            orgs_never_see_each_others_leads_on_any_shard,
        ),
        (
            "webhook_deliveries_reach_the_shard_of_each_pages_org",
            webhook_deliveries_reach_the_shard_of_each_pages_org,
        ),
        (
            "the_scoring_job_rescores_orgs_on_every_shard",
            the_scoring_job_rescores_orgs_on_every_shard,
        ),
    ];
    run_serially(Runtime::start(), tests)
}

/// The shard index the directory placed `org` on.
fn shard_of(rt: &Runtime, org: &str) -> i64 {
    rt.directory_db()
        .query_row("SELECT shard FROM orgs WHERE id = ?1", [org], |row| {
            row.get(0)
        })
        .unwrap_or_else(|e| panic!("org {org} has no directory entry: {e}"))
}

/// Makes the org exist (its first authenticated request places it) and returns its shard.
fn place(rt: &Runtime, label: &str) -> (String, i64) {
    let org = unique_org(label);
    rt.get("/v1/leads")
        .bearer(&token(&org, "viewer"))
        .send_empty()
        .expect(200);
    let shard = shard_of(rt, &org);
    (org, shard)
}

/// New orgs until one is on each shard: `orgs[k]` is on shard `k`.
fn one_org_per_shard(rt: &Runtime, label: &str) -> Vec<String> {
    let shard_count = rt.shard_dbs().len();
    let mut by_shard: Vec<Option<String>> = vec![None; shard_count];
    for _ in 0..20 {
        let (org, shard) = place(rt, label);
        by_shard[shard as usize].get_or_insert(org);
        if by_shard.iter().all(Option::is_some) {
            return by_shard.into_iter().flatten().collect();
        }
    }
    panic!("20 new orgs never covered every shard: {by_shard:?}");
}

fn create_lead(rt: &Runtime, org: &str, email: &str) -> String {
    rt.post("/v1/leads")
        .bearer(&token(org, "member"))
        .send_json(&json!({"first_name": "Shard", "last_name": "Test", "email": email}))
        .expect(201)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn org_count(rt: &Runtime, shard: i64) -> i64 {
    rt.directory_db()
        .query_row("SELECT COUNT(*) FROM orgs WHERE shard = ?1", [shard], |r| {
            r.get(0)
        })
        .unwrap()
}

/// New orgs go to the least-loaded shard: whatever the shards held, a run of new orgs evens them
/// out and then alternates.
fn new_orgs_are_spread_over_every_shard(rt: &Runtime) {
    assert_eq!(rt.shard_dbs().len(), 2, "the local runtime runs two shards");
    for _ in 0..6 {
        let before = [org_count(rt, 0), org_count(rt, 1)];
        let (_, shard) = place(rt, "spread");
        let fewest = if before[1] < before[0] { 1 } else { 0 };
        assert_eq!(shard, fewest, "orgs per shard before: {before:?}");
    }
    let counts = [org_count(rt, 0), org_count(rt, 1)];
    assert!(
        (counts[0] - counts[1]).abs() <= 1,
        "orgs per shard {counts:?}"
    );
}

fn an_orgs_rows_live_only_on_its_shard(rt: &Runtime) {
    let (org, _) = place(rt, "rows");
    let id = create_lead(rt, &org, &format!("rows-{}@example.com", numeric_id()));
    let holders = rt.query_shards("SELECT org_id FROM leads WHERE id = ?1", [&id], |r| {
        r.get::<_, String>(0)
    });
    assert_eq!(
        holders,
        vec![org.clone()],
        "the lead is on exactly one shard"
    );
    // The shard holding it is the org's own, with the org's defaults (stages, scoring config).
    let db = rt.org_db(&org);
    let stages: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM pipeline_stages WHERE org_id = ?1",
            [&org],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stages, 7);
    let leads: i64 = db
        .query_row("SELECT COUNT(*) FROM leads WHERE id = ?1", [&id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(leads, 1);
    // The directory holds no tenant table.
    let tenant_tables: i64 = rt
        .directory_db()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' \
             AND name IN ('leads', 'interactions', 'webhook_inbox')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tenant_tables, 0);
}

/// Two orgs on the same shard and two on different shards, the same person a lead of each: none
/// reads, changes or deletes another's lead by id, and lists show only their own.
fn orgs_never_see_each_others_leads_on_any_shard(rt: &Runtime) {
    let pair = one_org_per_shard(rt, "iso");
    let (third, third_shard) = place(rt, "iso");
    let neighbour = &pair[third_shard as usize];
    let stranger = &pair[1 - third_shard as usize];
    let email = format!("same-person-{}@example.com", numeric_id());
    let third_lead = create_lead(rt, &third, &email);
    for intruder in [neighbour, stranger] {
        let intruder_lead = create_lead(rt, intruder, &email);
        let path = format!("/v1/leads/{third_lead}");
        rt.get(&path)
            .bearer(&token(intruder, "admin"))
            .send_empty()
            .expect(404);
        rt.request("PATCH", &path)
            .bearer(&token(intruder, "admin"))
            .send_json(&json!({"company": "Stolen"}))
            .expect(404);
        rt.request("DELETE", &path)
            .bearer(&token(intruder, "admin"))
            .send_empty()
            .expect(404);
        let list = rt
            .get("/v1/leads")
            .bearer(&token(intruder, "viewer"))
            .send_empty()
            .expect(200)
            .json();
        let ids: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![intruder_lead.as_str()], "org {intruder}");
    }
    // The owner's lead is untouched, and the owner sees only it.
    let own = rt
        .get(&format!("/v1/leads/{third_lead}"))
        .bearer(&token(&third, "viewer"))
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(own["company"], Value::Null);
    assert_eq!(own["email"], email.as_str());
}

fn inbox_status(rt: &Runtime, org: &str, page: &str) -> Option<String> {
    rt.org_db(org)
        .query_row(
            "SELECT status FROM webhook_inbox WHERE org_id = ?1 AND account_id = ?2",
            [org, page],
            |row| row.get::<_, String>(0),
        )
        .ok()
}

/// One Meta delivery naming pages of orgs on both shards: each page's events land in its own
/// org's shard inbox and become that org's touchpoints; a page nobody connected is unrouted.
fn webhook_deliveries_reach_the_shard_of_each_pages_org(rt: &Runtime) {
    let orgs = one_org_per_shard(rt, "route");
    let pages: Vec<String> = orgs.iter().map(|_| numeric_id()).collect();
    for (org, page) in orgs.iter().zip(&pages) {
        connect_page(rt, org, page);
    }
    let entry = |page: &str| {
        json!({"id": page, "time": 1764000000, "changes": [{"field": "feed", "value": {
            "item": "reaction", "verb": "add", "reaction_type": "like",
            "post_id": format!("{page}_1"), "from": {"id": numeric_id(), "name": "A Fan"},
            "created_time": 1764000000
        }}]})
    };
    let body =
        json!({"object": "page", "entry": pages.iter().map(|p| entry(p)).collect::<Vec<_>>()});
    let receipt = post_meta(rt, "facebook", &body).expect(200).json();
    assert_eq!(receipt["stored"], 2, "{receipt}");
    for (org, page) in orgs.iter().zip(&pages) {
        let status = rt.wait_for("the event to be processed", Duration::from_secs(30), || {
            inbox_status(rt, org, page).filter(|s| s != "pending" && s != "processing")
        });
        assert_eq!(status, "processed");
        let likes: i64 = rt
            .org_db(org)
            .query_row(
                "SELECT COUNT(*) FROM interactions WHERE org_id = ?1 AND type = 'social_like'",
                [org.as_str()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(likes, 1, "org {org}");
    }
    // Each page's inbox row is on its org's shard only.
    let rows = rt.query_shards(
        "SELECT org_id, account_id FROM webhook_inbox WHERE account_id IN (?1, ?2)",
        [&pages[0], &pages[1]],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    );
    let mut expected: Vec<(String, String)> = orgs.iter().cloned().zip(pages.clone()).collect();
    let mut rows = rows;
    rows.sort();
    expected.sort();
    assert_eq!(rows, expected);
    // A page nobody connected is recorded as unrouted in the directory, without its body.
    let stray = numeric_id();
    let receipt = post_meta(rt, "facebook", &page_event(&stray, json!([])))
        .expect(200)
        .json();
    assert_eq!(receipt["ignored"], 1, "{receipt}");
    let unrouted: i64 = rt
        .directory_db()
        .query_row(
            "SELECT COUNT(*) FROM webhook_unrouted WHERE account_id = ?1",
            [&stray],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unrouted, 1);
    let anywhere = rt.query_shards(
        "SELECT id FROM webhook_inbox WHERE account_id = ?1",
        [&stray],
        |r| r.get::<_, String>(0),
    );
    assert!(anywhere.is_empty(), "{anywhere:?}");
}

fn heat_score(rt: &Runtime, org: &str, lead: &str) -> f64 {
    rt.get(&format!("/v1/leads/{lead}"))
        .bearer(&token(org, "viewer"))
        .send_empty()
        .expect(200)
        .json()["heat_score"]
        .as_f64()
        .unwrap()
}

/// A scoring config change on an org of each shard: the job's runs rescore both orgs' leads.
fn the_scoring_job_rescores_orgs_on_every_shard(rt: &Runtime) {
    let orgs = one_org_per_shard(rt, "job");
    let mut leads = Vec::new();
    for org in &orgs {
        let id = create_lead(rt, org, &format!("job-{}@example.com", numeric_id()));
        rt.post(&format!("/v1/leads/{id}/interactions"))
            .bearer(&token(org, "member"))
            .send_json(&json!({"type": "price_quote", "platform": "website"}))
            .expect(201);
        assert_eq!(heat_score(rt, org, &id), 8.0);
        // Doubling the weight changes the score only through the job's rescore.
        rt.request("PUT", "/v1/scoring")
            .bearer(&token(org, "admin"))
            .send_json(&json!({
                "weights": {"social_follow": 1, "social_like": 1, "website_visit": 2,
                            "info_request": 5, "price_quote": 16, "site_visit": 10},
                "thresholds": {"warm": 6, "hot": 16},
                "decay_half_life_days": null,
            }))
            .expect(200);
        assert_eq!(heat_score(rt, org, &id), 8.0);
        leads.push(id);
    }
    // Runs until one finishes every shard's work (each run has a budget of batches, shared by
    // the orgs with work on every shard, and resumes where the last one stopped).
    let mut summary = String::new();
    for _ in 0..10 {
        let fired = rt
            .fire_cron("scoring", Some("*/15 * * * *"), None)
            .expect(200)
            .json();
        assert_eq!(fired["outcome"], "ok", "{fired}");
        summary = rt
            .directory_db()
            .query_row(
                "SELECT summary FROM job_runs WHERE job = 'scoring' ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let run: Value = serde_json::from_str(&summary).unwrap();
        assert_eq!(run["errors"], 0, "{run}");
        if run["finished"] == true {
            break;
        }
    }
    for (org, lead) in orgs.iter().zip(&leads) {
        assert_eq!(
            heat_score(rt, org, lead),
            16.0,
            "org {org} on shard {}; the run: {summary}",
            shard_of(rt, org)
        );
    }
}
