//! Moving an org between shards (docs/scaling.md): the operator route of the scoring worker copies
//! an org with live data to the other shard, verifies it, flips the directory and deletes the
//! source; the org is refused while it moves and served from its new shard afterwards. A move whose
//! verification fails leaves the org where it was.

use std::path::PathBuf;
use std::time::Duration;

use leadheat_domain::sharding::{DERIVED_TABLES, MOVE_TABLES};
use leadheat_e2e::runner::{run, E2eTest};
use leadheat_e2e::social::{connect_page, numeric_id, page_event, post_meta};
use leadheat_e2e::{token, unique_org, Resp, Runtime};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};

const OPS_TOKEN: &str = "test-ops-token";
/// The grace period of these runtimes: long enough for the test to write while the org is moving
/// (the move waits for it before copying), short enough not to slow the suite.
const GRACE_SECONDS: &str = "2";

fn main() {
    let tests: &[E2eTest] = &[
        (
            "an_org_with_live_data_moves_to_the_other_shard",
            an_org_with_live_data_moves_to_the_other_shard,
        ),
        ("a_move_refuses_a_bad_target", a_move_refuses_a_bad_target),
        (
            "a_move_whose_verification_fails_leaves_the_org_home",
            a_move_whose_verification_fails_leaves_the_org_home,
        ),
    ];
    run(runtime(GRACE_SECONDS), tests)
}

fn runtime(grace: &str) -> Runtime {
    Runtime::start_with_env(&[("OPS_TOKEN", OPS_TOKEN), ("MOVE_GRACE_SECONDS", grace)])
}

struct Api<'a> {
    rt: &'a Runtime,
    token: String,
}

impl<'a> Api<'a> {
    fn new(rt: &'a Runtime, org: &str) -> Self {
        Api {
            rt,
            token: token(org, "admin"),
        }
    }
    fn get(&self, path: &str) -> Resp {
        self.rt.get(path).bearer(&self.token).send_empty()
    }
    fn send(&self, method: &str, path: &str, body: &Value) -> Resp {
        self.rt
            .request(method, path)
            .bearer(&self.token)
            .send_json(body)
    }
}

fn ops(rt: &Runtime, method: &str, path: &str, body: Option<&Value>) -> Resp {
    let req = rt
        .request(method, &format!("/__dev/workers/scoring/ops{path}"))
        .bearer(OPS_TOKEN);
    match body {
        Some(body) => req.send_json(body),
        None => req.send_empty(),
    }
}

fn directory_entry(rt: &Runtime, org: &str) -> (i64, Option<i64>) {
    rt.directory_db()
        .query_row(
            "SELECT shard, moving_to FROM orgs WHERE id = ?1",
            [org],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
}

fn open(path: &PathBuf) -> Connection {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

/// Every row of the org in every move table on one shard, in key order, exactly as stored.
type Dump = Vec<(String, Vec<Vec<SqlValue>>)>;

fn dump(conn: &Connection, org: &str) -> Dump {
    MOVE_TABLES
        .iter()
        .map(|table| {
            let sql = format!(
                "SELECT {} FROM \"{}\" WHERE {} ORDER BY {}",
                table.columns.join(", "),
                table.name,
                table.scope_sql(),
                table.key.join(", ")
            );
            let mut statement = conn.prepare(&sql).unwrap();
            let width = table.columns.len();
            let rows = statement
                .query_map([org], |row| {
                    (0..width).map(|i| row.get::<_, SqlValue>(i)).collect()
                })
                .unwrap()
                .collect::<Result<Vec<Vec<SqlValue>>, _>>()
                .unwrap();
            (table.name.to_string(), rows)
        })
        .collect()
}

/// The org's non-zero rows of the derived tables (the dashboard's rollups), in order.
fn derived(conn: &Connection, org: &str) -> Vec<String> {
    let mut rows = Vec::new();
    for table in DERIVED_TABLES {
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let sql = format!(
            "SELECT json_array({}) FROM \"{table}\" WHERE org_id = ?1 ORDER BY 1",
            columns.join(", ")
        );
        let mut statement = conn.prepare(&sql).unwrap();
        let found = statement
            .query_map([org], |row| row.get::<_, String>(0))
            .unwrap();
        // A count back at 0 may stay as a row; it counts nothing.
        rows.extend(
            found
                .map(|row| format!("{table} {}", row.unwrap()))
                .filter(|row| !row.ends_with(",0]") && !row.ends_with(",0,0]")),
        );
    }
    rows
}

/// A dashboard without its window (which moves with the clock).
fn dashboard(api: &Api) -> Value {
    let mut dash = api.get("/v1/dashboard?window_days=30").expect(200).json();
    dash.as_object_mut().unwrap().remove("window");
    dash
}

fn counts(dump: &Dump) -> Vec<(String, usize)> {
    dump.iter()
        .map(|(t, rows)| (t.clone(), rows.len()))
        .collect()
}

fn wait_done(rt: &Runtime, org: &str) -> Value {
    rt.wait_for("the move to finish", Duration::from_secs(120), || {
        ops(rt, "POST", "/moves/advance", None).expect(200);
        let state = ops(rt, "GET", &format!("/orgs/{org}/move"), None)
            .expect(200)
            .json();
        matches!(state["phase"].as_str(), Some("done" | "failed")).then_some(state)
    })
}

fn an_org_with_live_data_moves_to_the_other_shard(rt: &Runtime) {
    let org = unique_org("move");
    let api = Api::new(rt, &org);

    // Live data: custom fields, leads with tags and fields, touchpoints, a merge, a stage move,
    // a scoring config, website tracking and a Facebook page with a processed webhook event.
    api.send(
        "POST",
        "/v1/custom-fields",
        &json!({"key": "budget", "label": "Budget", "type": "number"}),
    )
    .expect(201);
    let mut leads = Vec::new();
    for (i, name) in ["Ada", "Grace", "Edsger", "Barbara"].iter().enumerate() {
        let lead = api
            .send(
                "POST",
                "/v1/leads",
                &json!({"first_name": name, "last_name": "Move", "source": "direct",
                        "email": format!("{}-{i}@{org}.example.com", name.to_lowercase()),
                        "tags": ["vip", format!("t{i}")], "custom_fields": {"budget": 1000 * i}}),
            )
            .expect(201)
            .json();
        leads.push(lead["id"].as_str().unwrap().to_string());
    }
    for kind in ["price_quote", "site_visit", "info_request"] {
        api.send(
            "POST",
            &format!("/v1/leads/{}/interactions", leads[0]),
            &json!({"type": kind, "platform": "website"}),
        )
        .expect(201);
    }
    api.send(
        "POST",
        &format!("/v1/leads/{}/merge", leads[0]),
        &json!({"source_lead_id": leads[3]}),
    )
    .expect(200);
    let stages = api.get("/v1/pipeline/stages").expect(200).json();
    let stage_list = stages["items"].as_array().unwrap().clone();
    let contacted = stage_list
        .iter()
        .find(|s| s["name"] == "Contacted")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.send(
        "POST",
        &format!("/v1/leads/{}/move", leads[1]),
        &json!({"stage_id": contacted}),
    )
    .expect(200);
    api.send(
        "PUT",
        "/v1/scoring",
        &json!({"weights": {"site_visit": 12, "price_quote": 8, "info_request": 5,
                "website_visit": 2, "social_like": 1, "social_follow": 1},
                "thresholds": {"warm": 6, "hot": 16}, "decay_half_life_days": 30}),
    )
    .expect(200);
    let site_key = api.get("/v1/tracking").expect(200).json()["site_key"]
        .as_str()
        .unwrap()
        .to_string();
    rt.post(&format!("/track/{site_key}"))
        .send_json(
            &json!({"visitor_id": "v-move", "type": "page_view", "url": "https://x.example/"}),
        )
        .expect(202);
    rt.post(&format!("/track/{site_key}"))
        .send_json(&json!({"visitor_id": "v-move", "type": "info_request",
            "identity": {"email": format!("visitor@{org}.example.com"), "first_name": "Vis"}}))
        .expect(202);
    let page = numeric_id();
    connect_page(rt, &org, &page);
    let like = |post: u32| {
        page_event(
            &page,
            json!([{"field": "feed", "value": {
                "item": "reaction", "verb": "add", "reaction_type": "like",
                "post_id": format!("{page}_{post}"), "from": {"id": format!("9{post}"), "name": "A Fan"},
                "created_time": 1764000000 + post
            }}]),
        )
    };
    post_meta(rt, "facebook", &like(1)).expect(200);
    let processed = |conn: &Connection| -> i64 {
        conn.query_row(
            "SELECT COUNT(*) FROM webhook_inbox WHERE org_id = ?1 AND status = 'processed'",
            [&org],
            |row| row.get(0),
        )
        .unwrap()
    };
    rt.wait_for(
        "the first webhook event to be processed",
        Duration::from_secs(30),
        || (processed(&rt.org_db(&org)) == 1).then_some(()),
    );

    // What the API serves and what the shard holds before the move.
    let list = api.get("/v1/leads?limit=100").expect(200).json();
    let timeline = api
        .get(&format!("/v1/leads/{}/timeline", leads[0]))
        .expect(200)
        .json();
    let board = api.get("/v1/pipeline/board").expect(200).json();
    let (from, _) = directory_entry(rt, &org);
    let to = 1 - from;
    let source_path = rt.org_db_path(&org);
    let target_path = rt
        .shard_paths()
        .into_iter()
        .find(|p| *p != source_path)
        .unwrap();
    let before = dump(&open(&source_path), &org);
    let rollups_before = derived(&open(&source_path), &org);
    assert!(!rollups_before.is_empty());
    let dashboard_before = dashboard(&api);
    for table in [
        "orgs",
        "scoring_configs",
        "pipeline_stages",
        "custom_field_defs",
        "leads",
        "lead_tags",
        "social_profiles",
        "lead_merges",
        "interactions",
        "integrations",
        "webhook_inbox",
        "tracking_visitors",
        "tracking_events",
    ] {
        let rows = before.iter().find(|(t, _)| t == table).unwrap().1.len();
        assert!(
            rows > 0,
            "the org has no {table} rows to move: {:?}",
            counts(&before)
        );
    }

    // Start: the org is refused from now on; the copy waits for the grace period.
    let started = ops(
        rt,
        "POST",
        &format!("/orgs/{org}/move"),
        Some(&json!({"to": to})),
    )
    .expect(202)
    .json();
    assert_eq!(started["from_shard"], json!(from));
    assert_eq!(started["to_shard"], json!(to));
    assert_eq!(started["phase"], "copying", "{started}");
    assert_eq!(started["stopped"], "grace", "{started}");
    assert_eq!(directory_entry(rt, &org), (from, Some(to)));

    // Writes (and reads) during the move: 503 org-moving with Retry-After; a webhook is refused
    // too (Meta delivers it again later); a second move is refused.
    let write = api.send(
        "POST",
        "/v1/leads",
        &json!({"first_name": "Late", "source": "direct"}),
    );
    assert_eq!(write.status, 503, "{}", write.body);
    assert_eq!(
        write.json()["type"],
        "https://leadheat.dev/problems/org-moving"
    );
    assert!(write.header("Retry-After").is_some());
    let read = api.get("/v1/leads");
    assert_eq!(read.status, 503);
    assert_eq!(post_meta(rt, "facebook", &like(2)).status, 503);
    ops(
        rt,
        "POST",
        &format!("/orgs/{org}/move"),
        Some(&json!({"to": to})),
    )
    .expect(409);

    // Advance until done (the operator route; `make move-org` does the same).
    let state = wait_done(rt, &org);
    assert_eq!(state["phase"], "done", "{state}");
    assert_eq!(state["error"], Value::Null);
    assert_eq!(directory_entry(rt, &org), (to, None));
    assert_eq!(state["counts"]["source"], state["counts"]["copy"]);

    // The target holds exactly the rows the source held; the source holds none of the org's.
    let after = dump(&open(&target_path), &org);
    assert_eq!(counts(&after), counts(&before));
    for ((table, rows_before), (_, rows_after)) in before.iter().zip(&after) {
        assert_eq!(rows_before, rows_after, "the rows of {table}");
    }
    for (table, rows) in dump(&open(&source_path), &org) {
        assert!(
            rows.is_empty(),
            "{table} still has {} rows at the source",
            rows.len()
        );
    }
    // The triggers built the same rollups on the target; the source has none of the org's left.
    assert_eq!(derived(&open(&target_path), &org), rollups_before);
    assert_eq!(derived(&open(&source_path), &org), Vec::<String>::new());
    // The full-text index was filled on the target by the triggers.
    let found: i64 = open(&target_path)
        .query_row(
            "SELECT COUNT(*) FROM leads_fts JOIN leads ON leads.rowid = leads_fts.rowid \
             WHERE leads_fts MATCH 'Grace' AND leads.org_id = ?1",
            [&org],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(found, 1);

    // The API serves the same leads, timeline and board from the new shard.
    assert_eq!(api.get("/v1/leads?limit=100").expect(200).json(), list);
    assert_eq!(
        api.get(&format!("/v1/leads/{}/timeline", leads[0]))
            .expect(200)
            .json(),
        timeline
    );
    assert_eq!(api.get("/v1/pipeline/board").expect(200).json(), board);
    assert_eq!(dashboard(&api), dashboard_before);
    let search = api.get("/v1/leads?q=Grace").expect(200).json();
    assert!(search.to_string().contains(&leads[1]), "{search}");

    // A webhook for its page lands on the new shard; writes work again.
    post_meta(rt, "facebook", &like(3)).expect(200);
    rt.wait_for(
        "the webhook after the move to be processed",
        Duration::from_secs(30),
        || (processed(&open(&target_path)) == 2).then_some(()),
    );
    assert_eq!(processed(&open(&source_path)), 0);
    api.send(
        "POST",
        "/v1/leads",
        &json!({"first_name": "After", "source": "direct"}),
    )
    .expect(201);
    assert_eq!(rt.org_db_path(&org), target_path);
}

fn a_move_refuses_a_bad_target(rt: &Runtime) {
    let org = unique_org("move-bad");
    let api = Api::new(rt, &org);
    api.send(
        "POST",
        "/v1/leads",
        &json!({"first_name": "Stay", "source": "direct"}),
    )
    .expect(201);
    let (shard, _) = directory_entry(rt, &org);
    let path = format!("/orgs/{org}/move");
    for body in [
        json!({"to": shard}),
        json!({"to": 2}),
        json!({"to": -1}),
        json!({"to": "x"}),
        json!({}),
    ] {
        let refused = ops(rt, "POST", &path, Some(&body)).expect(422);
        assert_eq!(refused.json()["errors"][0]["field"], "to", "{body}");
        assert_eq!(
            refused.header("Content-Type"),
            Some("application/problem+json")
        );
    }
    ops(
        rt,
        "POST",
        "/orgs/org_nobody_knows/move",
        Some(&json!({"to": 0})),
    )
    .expect(404);
    ops(rt, "GET", &path, None).expect(404);
    // Without the token, or with another one: 401.
    let anonymous = rt
        .post(&format!("/__dev/workers/scoring/ops{path}"))
        .send_json(&json!({"to": 1 - shard}));
    assert_eq!(anonymous.status, 401);
    let wrong = rt
        .post(&format!("/__dev/workers/scoring/ops{path}"))
        .bearer("not-the-ops-token")
        .send_json(&json!({"to": 1 - shard}));
    assert_eq!(wrong.status, 401);
    assert_eq!(directory_entry(rt, &org), (shard, None));
    api.get("/v1/leads").expect(200);
}

/// A test-only trigger on the target drops the copied tags of the org, so the counts differ: the
/// move deletes its copy, clears `moving_to` and fails, and the org stays where it was. On a
/// runtime of its own (a second writer to the runtime's files would disturb the other tests) and
/// without a grace period, so the start call runs the whole move.
fn a_move_whose_verification_fails_leaves_the_org_home(_shared: &Runtime) {
    let own = runtime("0");
    let rt = &own;
    let org = unique_org("move-fail");
    let api = Api::new(rt, &org);
    let lead = api
        .send(
            "POST",
            "/v1/leads",
            &json!({"first_name": "Home", "source": "direct", "tags": ["a", "b"]}),
        )
        .expect(201)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (from, _) = directory_entry(rt, &org);
    let source_path = rt.org_db_path(&org);
    let target_path = rt
        .shard_paths()
        .into_iter()
        .find(|p| *p != source_path)
        .unwrap();
    let before = dump(&open(&source_path), &org);
    {
        let conn = Connection::open(&target_path).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.execute_batch(&format!(
            "CREATE TRIGGER test_drop_moved_tags BEFORE INSERT ON lead_tags \
             WHEN NEW.org_id = '{org}' BEGIN SELECT RAISE(IGNORE); END;"
        ))
        .unwrap();
    }

    let state = ops(
        rt,
        "POST",
        &format!("/orgs/{org}/move"),
        Some(&json!({"to": 1 - from})),
    )
    .expect(202)
    .json();
    let state = if state["phase"] == "failed" {
        state
    } else {
        wait_done(rt, &org)
    };
    assert_eq!(state["phase"], "failed", "{state}");
    let error = state["error"].as_str().unwrap();
    assert!(
        error.contains("lead_tags: 2 rows at the source, 0 in the copy"),
        "{error}"
    );
    assert_eq!(directory_entry(rt, &org), (from, None));
    for (table, rows) in dump(&open(&target_path), &org) {
        assert!(
            rows.is_empty(),
            "the failed copy left {} {table} rows",
            rows.len()
        );
    }
    assert_eq!(dump(&open(&source_path), &org), before);
    // The org is admitted again, on its shard.
    api.get(&format!("/v1/leads/{lead}")).expect(200);
    api.send(
        "POST",
        "/v1/leads",
        &json!({"first_name": "Again", "source": "direct"}),
    )
    .expect(201);
    assert_eq!(rt.org_db_path(&org), source_path);
}
