//! The development demo workspace, end to end: an empty org loads it with one call and then shows
//! the product working (leads from every source, social touchpoints, a pipeline, HOT leads on the
//! dashboard), each figure as the real write paths computed it; an org with leads, a non-admin
//! and a deployment without `DEMO_DATA=on` are refused and nothing is written.

use std::collections::BTreeSet;

use leadheat_e2e::runner::{run, E2eTest};
use leadheat_e2e::{token, unique_org, Runtime};
use serde_json::{json, Value};

fn main() {
    let tests: &[E2eTest] = &[
        (
            "an_empty_workspace_loads_a_working_demo",
            an_empty_workspace_loads_a_working_demo,
        ),
        (
            "only_admins_load_demo_data_and_refusals_write_nothing",
            only_admins_load_demo_data_and_refusals_write_nothing,
        ),
        (
            "a_workspace_with_leads_is_never_mixed_with_demo_data",
            a_workspace_with_leads_is_never_mixed_with_demo_data,
        ),
        (
            "a_deployment_without_the_variable_offers_no_demo",
            a_deployment_without_the_variable_offers_no_demo,
        ),
    ];
    // The variable is set explicitly: an older local .dev.vars may predate it.
    run(Runtime::start_with_env(&[("DEMO_DATA", "on")]), tests)
}

fn leads_of(rt: &Runtime, jwt: &str, query: &str) -> Vec<Value> {
    let page = rt
        .get(&format!("/v1/leads?limit=100{query}"))
        .bearer(jwt)
        .send_empty()
        .expect(200)
        .json();
    page["items"].as_array().cloned().unwrap_or_default()
}

fn demo_status(rt: &Runtime, jwt: &str) -> Value {
    rt.get("/v1/demo-data")
        .bearer(jwt)
        .send_empty()
        .expect(200)
        .json()
}

fn an_empty_workspace_loads_a_working_demo(rt: &Runtime) {
    let org = unique_org("demo");
    let admin = token(&org, "admin");
    assert_eq!(
        demo_status(rt, &admin),
        json!({"enabled": true, "available": true})
    );

    let loaded = rt
        .post("/v1/demo-data")
        .bearer(&admin)
        .send_empty()
        .expect(201)
        .json();
    let lead_count = loaded["leads"].as_u64().expect("leads");
    let hot = loaded["hot"].as_u64().expect("hot");
    assert!(lead_count >= 20, "{loaded}");
    assert!((3..=6).contains(&hot), "{loaded}");
    assert!(loaded["touchpoints"].as_u64().expect("touchpoints") >= 2 * lead_count);

    let leads = leads_of(rt, &admin, "");
    assert_eq!(leads.len() as u64, lead_count);
    assert!(leads.iter().all(|l| l["tags"] == json!(["demo"])));
    let sources: BTreeSet<&str> = leads.iter().filter_map(|l| l["source"].as_str()).collect();
    for source in ["website", "facebook", "instagram", "linkedin"] {
        assert!(sources.contains(source), "no {source} lead: {sources:?}");
    }
    assert!(
        leads.iter().any(|l| l["owner_id"].is_string()),
        "some leads belong to the user who loaded the demo"
    );

    // The levels are the scoring's own: each lead's stored heat is its recomputed heat.
    let hot_leads = leads_of(rt, &admin, "&heat_level=HOT");
    assert_eq!(hot_leads.len() as u64, hot);
    for lead in &hot_leads {
        let heat = rt
            .get(&format!("/v1/leads/{}/heat", lead["id"].as_str().unwrap()))
            .bearer(&admin)
            .send_empty()
            .expect(200)
            .json();
        assert_eq!(heat["level"], "HOT", "{heat}");
        assert_eq!(heat["score"], lead["heat_score"], "{heat} vs {lead}");
    }

    let dashboard = rt
        .get("/v1/dashboard?window_days=30")
        .bearer(&admin)
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(dashboard["by_heat_level"]["HOT"], json!(hot), "{dashboard}");
    assert_eq!(
        dashboard["totals"]["leads"]["value"],
        json!(lead_count),
        "{dashboard}"
    );
    for platform in ["facebook", "instagram", "linkedin"] {
        let total = dashboard["social_engagement"]["by_platform"][platform]["total"]
            .as_u64()
            .unwrap_or(0);
        assert!(total > 0, "no {platform} engagement in {dashboard}");
    }

    let board = rt
        .get("/v1/pipeline/board")
        .bearer(&admin)
        .send_empty()
        .expect(200)
        .json();
    let busy_stages = board["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter(|s| s["leads"].as_array().is_some_and(|l| !l.is_empty()))
        .count();
    assert!(busy_stages >= 3, "{board}");

    assert_eq!(
        demo_status(rt, &admin),
        json!({"enabled": true, "available": false})
    );
    let again = rt
        .post("/v1/demo-data")
        .bearer(&admin)
        .send_empty()
        .expect(409);
    assert!(again.body.contains("already has leads"), "{}", again.body);
    assert_eq!(leads_of(rt, &admin, "").len() as u64, lead_count);
}

fn only_admins_load_demo_data_and_refusals_write_nothing(rt: &Runtime) {
    let org = unique_org("demo-roles");
    for role in ["member", "viewer"] {
        rt.post("/v1/demo-data")
            .bearer(&token(&org, role))
            .send_empty()
            .expect(403);
    }
    let viewer = token(&org, "viewer");
    assert!(leads_of(rt, &viewer, "").is_empty());
    assert_eq!(
        demo_status(rt, &viewer),
        json!({"enabled": true, "available": true})
    );
}

fn a_workspace_with_leads_is_never_mixed_with_demo_data(rt: &Runtime) {
    let org = unique_org("demo-busy");
    let admin = token(&org, "admin");
    rt.post("/v1/leads")
        .bearer(&admin)
        .send_json(&json!({"first_name": "Real", "email": "real.customer@example.net"}))
        .expect(201);
    assert_eq!(
        demo_status(rt, &admin),
        json!({"enabled": true, "available": false})
    );
    rt.post("/v1/demo-data")
        .bearer(&admin)
        .send_empty()
        .expect(409);
    let leads = leads_of(rt, &admin, "");
    assert_eq!(leads.len(), 1, "{leads:?}");
    assert_eq!(leads[0]["email"], "real.customer@example.net");
}

fn a_deployment_without_the_variable_offers_no_demo(_rt: &Runtime) {
    let off = Runtime::start_with_env(&[("DEMO_DATA", "")]);
    let org = unique_org("demo-off");
    let admin = token(&org, "admin");
    assert_eq!(
        demo_status(&off, &admin),
        json!({"enabled": false, "available": false})
    );
    let refused = off
        .post("/v1/demo-data")
        .bearer(&admin)
        .send_empty()
        .expect(404);
    assert!(
        refused.body.contains("development feature"),
        "{}",
        refused.body
    );
    assert!(leads_of(&off, &admin, "").is_empty());
}
