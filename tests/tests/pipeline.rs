//! End-to-end tests of the pipeline (stages, board, moves), the dashboard, the scoring config and
//! website tracking, against the local runtime.

use leadheat_e2e::runner::{run, E2eTest};
use leadheat_e2e::{token, unique_org, unique_suffix, Resp, Runtime};
use std::collections::BTreeMap;

use rusqlite::Connection;
use serde_json::{json, Value};

fn main() {
    let tests: &[E2eTest] = &[
        (
            "stages_crud_reorder_and_delete_only_when_empty",
            stages_crud_reorder_and_delete_only_when_empty,
        ),
        (
            "board_order_follows_moves_and_pages_per_column",
            board_order_follows_moves_and_pages_per_column,
        ),
        (
            "move_writes_a_stage_change_touchpoint",
            move_writes_a_stage_change_touchpoint,
        ),
        (
            "move_is_validated_and_scoped_to_the_org",
            move_is_validated_and_scoped_to_the_org,
        ),
        (
            "move_and_its_touchpoint_commit_together",
            move_and_its_touchpoint_commit_together,
        ),
        (
            "dashboard_figures_match_a_seeded_org",
            dashboard_figures_match_a_seeded_org,
        ),
        (
            "dashboard_social_engagement_by_day_is_exact",
            dashboard_social_engagement_by_day_is_exact,
        ),
        (
            "scoring_config_read_validate_and_change",
            scoring_config_read_validate_and_change,
        ),
        (
            "tracking_attributes_anonymous_views_on_identification",
            tracking_attributes_anonymous_views_on_identification,
        ),
        (
            "tracking_never_creates_a_lead_without_identity",
            tracking_never_creates_a_lead_without_identity,
        ),
        (
            "tracking_rejects_bad_requests",
            tracking_rejects_bad_requests,
        ),
        (
            "tracking_rate_limits_per_visitor",
            tracking_rate_limits_per_visitor,
        ),
        (
            "tracking_cors_preflight_and_site_key_rotation",
            tracking_cors_preflight_and_site_key_rotation,
        ),
    ];
    rfc_formats_known_instants();
    run(Runtime::start(), tests)
}

// ---------------------------------------------------------------------------------------------
// Helpers

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// Now, in Unix milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Unix milliseconds as the API's timestamp format: RFC 3339, UTC, milliseconds, `Z`.
fn rfc(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let in_day = ms.rem_euclid(DAY_MS);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

fn rfc_formats_known_instants() {
    assert_eq!(rfc(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc(1_772_452_800_123), "2026-03-02T12:00:00.123Z");
}

struct Api<'a> {
    rt: &'a Runtime,
    token: String,
}

impl<'a> Api<'a> {
    fn new(rt: &'a Runtime, org: &str, role: &str) -> Self {
        Api {
            rt,
            token: token(org, role),
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
    fn post(&self, path: &str, body: &Value) -> Resp {
        self.send("POST", path, body)
    }
    fn delete(&self, path: &str) -> Resp {
        self.rt
            .request("DELETE", path)
            .bearer(&self.token)
            .send_empty()
    }
}

fn stages(api: &Api) -> Vec<Value> {
    api.get("/v1/pipeline/stages").expect(200).json()["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn stage_id(api: &Api, name: &str) -> String {
    stages(api)
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

fn create_lead(api: &Api, first_name: &str, source: &str) -> String {
    let email = format!(
        "{}.{}@example.com",
        first_name.to_lowercase(),
        unique_suffix()
    );
    api.post(
        "/v1/leads",
        &json!({"first_name": first_name, "last_name": "Test", "email": email, "source": source}),
    )
    .expect(201)
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn move_lead(api: &Api, lead: &str, body: Value) -> Value {
    api.post(&format!("/v1/leads/{lead}/move"), &body)
        .expect(200)
        .json()
}

/// The board's lead ids per stage name.
fn board_columns(api: &Api, query: &str) -> Vec<(String, Vec<String>, Value)> {
    let board = api
        .get(&format!("/v1/pipeline/board{query}"))
        .expect(200)
        .json();
    board["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|column| {
            let ids = column["leads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|card| card["id"].as_str().unwrap().to_string())
                .collect();
            (
                column["name"].as_str().unwrap().to_string(),
                ids,
                column["next_cursor"].clone(),
            )
        })
        .collect()
}

fn column(api: &Api, name: &str) -> Vec<String> {
    board_columns(api, "")
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, ids, _)| ids)
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn problem_field(resp: &Resp) -> Vec<String> {
    resp.json()["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Pipeline

fn stages_crud_reorder_and_delete_only_when_empty(rt: &Runtime) {
    let org = unique_org("stages");
    let admin = Api::new(rt, &org, "admin");
    let member = Api::new(rt, &org, "member");

    let initial = stages(&admin);
    assert_eq!(
        names(&initial),
        [
            "New",
            "Contacted",
            "Qualified",
            "Proposal",
            "Negotiation",
            "Won",
            "Lost"
        ]
    );
    let positions: Vec<i64> = initial
        .iter()
        .map(|s| s["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, [0, 1, 2, 3, 4, 5, 6]);
    let won = &initial[5];
    assert_eq!(
        (won["is_closed"].clone(), won["is_won"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(
        (
            initial[6]["is_closed"].clone(),
            initial[6]["is_won"].clone()
        ),
        (json!(true), json!(false))
    );
    assert_eq!(initial[0]["lead_count"], 0);

    // Create after Qualified.
    let qualified = stage_id(&admin, "Qualified");
    let demo = admin
        .post(
            "/v1/pipeline/stages",
            &json!({"name": "Demo", "after_stage_id": qualified}),
        )
        .expect(201)
        .json();
    assert_eq!(demo["name"], "Demo");
    assert_eq!(demo["position"], 3);
    assert_eq!(demo["is_closed"], false);
    let demo_id = demo["id"].as_str().unwrap().to_string();
    // Before New: first.
    let new_id = stage_id(&admin, "New");
    let inbox = admin
        .post(
            "/v1/pipeline/stages",
            &json!({"name": "Inbox", "before_stage_id": new_id}),
        )
        .expect(201)
        .json();
    assert_eq!(inbox["position"], 0);
    assert_eq!(
        names(&stages(&admin)),
        [
            "Inbox",
            "New",
            "Contacted",
            "Qualified",
            "Demo",
            "Proposal",
            "Negotiation",
            "Won",
            "Lost"
        ]
    );

    // Names are unique per org, whatever the case.
    let duplicate = admin
        .post("/v1/pipeline/stages", &json!({"name": "demo"}))
        .expect(409);
    assert_eq!(
        duplicate.header("Content-Type"),
        Some("application/problem+json")
    );
    let empty = admin
        .post("/v1/pipeline/stages", &json!({"name": "  "}))
        .expect(422);
    assert_eq!(problem_field(&empty), ["name"]);
    // Only admins change stages.
    member
        .post("/v1/pipeline/stages", &json!({"name": "Mine"}))
        .expect(403);
    member
        .send(
            "PATCH",
            &format!("/v1/pipeline/stages/{demo_id}"),
            &json!({"name": "x"}),
        )
        .expect(403);

    // Rename.
    let renamed = admin
        .send(
            "PATCH",
            &format!("/v1/pipeline/stages/{demo_id}"),
            &json!({"name": "Demo call"}),
        )
        .expect(200)
        .json();
    assert_eq!(renamed["name"], "Demo call");
    assert_eq!(renamed["position"], 4);
    admin
        .send(
            "PATCH",
            &format!("/v1/pipeline/stages/{demo_id}"),
            &json!({"name": "New"}),
        )
        .expect(409);
    admin
        .send(
            "PATCH",
            "/v1/pipeline/stages/stg_nope",
            &json!({"name": "Zzz"}),
        )
        .expect(404);

    // Reorder: reversed.
    let mut ids: Vec<String> = stages(&admin)
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    ids.reverse();
    let reordered = admin
        .send(
            "PUT",
            "/v1/pipeline/stages/order",
            &json!({"stage_ids": ids}),
        )
        .expect(200)
        .json();
    assert_eq!(
        names(reordered["items"].as_array().unwrap()),
        [
            "Lost",
            "Won",
            "Negotiation",
            "Proposal",
            "Demo call",
            "Qualified",
            "Contacted",
            "New",
            "Inbox"
        ]
    );
    assert_eq!(names(&stages(&admin))[0], "Lost");
    let incomplete = admin
        .send(
            "PUT",
            "/v1/pipeline/stages/order",
            &json!({"stage_ids": &ids[1..]}),
        )
        .expect(422);
    assert_eq!(problem_field(&incomplete), ["stage_ids"]);
    member
        .send(
            "PUT",
            "/v1/pipeline/stages/order",
            &json!({"stage_ids": ids}),
        )
        .expect(403);

    // Delete only when empty.
    let lead = create_lead(&admin, "Stagey", "direct");
    move_lead(&admin, &lead, json!({"stage_id": demo_id}));
    let demo_now = stages(&admin)
        .into_iter()
        .find(|s| s["id"] == demo_id.as_str())
        .unwrap();
    assert_eq!(demo_now["lead_count"], 1);
    admin
        .delete(&format!("/v1/pipeline/stages/{demo_id}"))
        .expect(409);
    move_lead(&admin, &lead, json!({"stage_id": new_id}));
    member
        .delete(&format!("/v1/pipeline/stages/{demo_id}"))
        .expect(403);
    admin
        .delete(&format!("/v1/pipeline/stages/{demo_id}"))
        .expect(204);
    assert!(!names(&stages(&admin)).contains(&"Demo call".to_string()));
    admin
        .delete(&format!("/v1/pipeline/stages/{demo_id}"))
        .expect(404);
}

fn board_order_follows_moves_and_pages_per_column(rt: &Runtime) {
    let org = unique_org("board");
    let api = Api::new(rt, &org, "member");
    let new = stage_id(&api, "New");
    let contacted = stage_id(&api, "Contacted");
    let a = create_lead(&api, "Ann", "direct");
    let b = create_lead(&api, "Bob", "direct");
    let c = create_lead(&api, "Cat", "direct");
    let d = create_lead(&api, "Dan", "direct");
    // New leads land at the end of the first stage, in creation order.
    assert_eq!(
        column(&api, "New"),
        [a.as_str(), b.as_str(), c.as_str(), d.as_str()]
    );

    // D before A: [D, A, B, C].
    let moved = move_lead(&api, &d, json!({"stage_id": new, "before_lead_id": a}));
    assert_eq!(moved["id"], d.as_str());
    assert_eq!(moved["stage_id"], new.as_str());
    assert_eq!(
        column(&api, "New"),
        [d.as_str(), a.as_str(), b.as_str(), c.as_str()]
    );
    // B after C: [D, A, C, B].
    move_lead(&api, &b, json!({"stage_id": new, "after_lead_id": c}));
    assert_eq!(
        column(&api, "New"),
        [d.as_str(), a.as_str(), c.as_str(), b.as_str()]
    );
    // A into Contacted (empty column).
    let moved = move_lead(&api, &a, json!({"stage_id": contacted}));
    assert_eq!(moved["stage_id"], contacted.as_str());
    // C into Contacted before A, then B between C and A.
    move_lead(
        &api,
        &c,
        json!({"stage_id": contacted, "before_lead_id": a}),
    );
    move_lead(
        &api,
        &b,
        json!({"stage_id": contacted, "after_lead_id": c, "before_lead_id": a}),
    );
    // D after itself is refused; D to the end of New (it is alone there).
    assert_eq!(column(&api, "New"), [d.as_str()]);
    assert_eq!(
        column(&api, "Contacted"),
        [c.as_str(), b.as_str(), a.as_str()]
    );
    // Reads do not change anything.
    assert_eq!(
        column(&api, "Contacted"),
        [c.as_str(), b.as_str(), a.as_str()]
    );

    // Positions on the cards ascend within the column.
    let board = api.get("/v1/pipeline/board").expect(200).json();
    let contacted_column = board["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Contacted")
        .unwrap()
        .clone();
    assert_eq!(contacted_column["lead_count"], 3);
    let positions: Vec<String> = contacted_column["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|card| card["position"].as_str().unwrap().to_string())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let card = &contacted_column["leads"][0];
    assert_eq!(card["first_name"], "Cat");
    assert_eq!(card["heat_level"], "COLD");
    assert_eq!(card["heat_score"], 0);

    // A page of 2 per column, then the rest of Contacted by its cursor.
    let paged = board_columns(&api, "?limit=2");
    let (_, first_page, cursor) = paged
        .iter()
        .find(|(n, _, _)| n == "Contacted")
        .unwrap()
        .clone();
    assert_eq!(first_page, [c.as_str(), b.as_str()]);
    let cursor = cursor
        .as_str()
        .expect("a next_cursor when more leads follow")
        .to_string();
    let (_, new_page, new_cursor) = paged.iter().find(|(n, _, _)| n == "New").unwrap().clone();
    assert_eq!(new_page, [d.as_str()]);
    assert_eq!(new_cursor, Value::Null);
    let rest = board_columns(
        &api,
        &format!("?limit=2&stage_id={contacted}&cursor={cursor}"),
    );
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].1, [a.as_str()]);
    assert_eq!(rest[0].2, Value::Null);
    // A cursor of one column is refused for another.
    api.get(&format!(
        "/v1/pipeline/board?stage_id={new}&cursor={cursor}"
    ))
    .expect(422);
    api.get("/v1/pipeline/board?limit=0").expect(422);
}

fn move_writes_a_stage_change_touchpoint(rt: &Runtime) {
    let org = unique_org("movetouch");
    let api = Api::new(rt, &org, "member");
    let new = stage_id(&api, "New");
    let qualified = stage_id(&api, "Qualified");
    let lead = create_lead(&api, "Moe", "direct");
    let moved = move_lead(&api, &lead, json!({"stage_id": qualified}));
    assert_eq!(moved["stage_id"], qualified.as_str());
    assert_eq!(moved["version"], 2, "{moved}");
    let rows: Vec<(String, String, String, f64)> = rt.org_db(&org)
        .prepare("SELECT type, platform, metadata, points FROM interactions WHERE org_id = ?1 AND lead_id = ?2")
        .unwrap()
        .query_map([&org, &lead], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (kind, _platform, metadata, points) = &rows[0];
    assert_eq!(kind, "stage_change");
    assert_eq!(*points, 0.0);
    let metadata: Value = serde_json::from_str(metadata).unwrap();
    assert_eq!(metadata["from_stage_id"], new.as_str());
    assert_eq!(metadata["to_stage_id"], qualified.as_str());
    // The stage_change touchpoint is worth 0 by default: the heat is unchanged.
    assert_eq!(moved["heat_score"], 0);
}

fn move_is_validated_and_scoped_to_the_org(rt: &Runtime) {
    let org = unique_org("movecheck");
    let api = Api::new(rt, &org, "member");
    let viewer = Api::new(rt, &org, "viewer");
    let other = Api::new(rt, &unique_org("moveother"), "admin");
    let new = stage_id(&api, "New");
    let contacted = stage_id(&api, "Contacted");
    let a = create_lead(&api, "Ada", "direct");
    let b = create_lead(&api, "Ben", "direct");

    // A neighbour that is not in the target stage.
    let wrong = api
        .post(
            &format!("/v1/leads/{a}/move"),
            &json!({"stage_id": contacted, "before_lead_id": b}),
        )
        .expect(422);
    assert_eq!(problem_field(&wrong), ["before_lead_id"]);
    let wrong = api
        .post(
            &format!("/v1/leads/{a}/move"),
            &json!({"stage_id": "stg_nope"}),
        )
        .expect(422);
    assert_eq!(problem_field(&wrong), ["stage_id"]);
    let missing = api
        .post(&format!("/v1/leads/{a}/move"), &json!({}))
        .expect(422);
    assert_eq!(problem_field(&missing), ["stage_id"]);
    // Out-of-order neighbours (b comes after a; "after b and before a" has no room).
    let order = api
        .post(
            &format!("/v1/leads/{}/move", create_lead(&api, "Cid", "direct")),
            &json!({"stage_id": new, "after_lead_id": b, "before_lead_id": a}),
        )
        .expect(422);
    assert_eq!(problem_field(&order), ["before_lead_id"]);
    // Viewers read only.
    viewer
        .post(
            &format!("/v1/leads/{a}/move"),
            &json!({"stage_id": contacted}),
        )
        .expect(403);
    // Another org's lead does not exist for this caller.
    let other_stage = stage_id(&other, "Contacted");
    other
        .post(
            &format!("/v1/leads/{a}/move"),
            &json!({"stage_id": other_stage}),
        )
        .expect(404);
    api.post("/v1/leads/lead_nope/move", &json!({"stage_id": contacted}))
        .expect(404);
    // Nothing moved.
    assert_eq!(column(&api, "Contacted"), Vec::<String>::new());
}

/// What a move may change of a lead: its position, version and heat (the lead is on one shard).
fn lead_state(rt: &Runtime, lead: &str) -> Vec<rusqlite::types::Value> {
    let mut rows = rt.query_shards(
        "SELECT stage_id, rank_key, version, updated_at, heat_score, heat_level, heat_stamp, \
         needs_rescore, scored_at, last_interaction_at FROM leads WHERE id = ?1",
        [lead],
        |row| (0..10).map(|i| row.get(i)).collect(),
    );
    assert_eq!(rows.len(), 1, "lead {lead} is on exactly one shard");
    rows.remove(0)
}

/// The lead's interaction types and its level change count (its rows are on one shard).
fn lead_history(rt: &Runtime, lead: &str) -> (Vec<String>, i64) {
    let types = rt.query_shards(
        "SELECT type FROM interactions WHERE lead_id = ?1 ORDER BY occurred_at, id",
        [lead],
        |row| row.get(0),
    );
    let changes = rt
        .query_shards(
            "SELECT COUNT(*) FROM heat_level_changes WHERE lead_id = ?1",
            [lead],
            |row| row.get::<_, i64>(0),
        )
        .into_iter()
        .sum();
    (types, changes)
}

/// Runs `sql` on every shard through a writable connection: a test installs a trigger to make one
/// statement of one lead fail or do nothing, and drops it afterwards (on the shards without the
/// lead the trigger never fires).
fn write_db(rt: &Runtime, sql: &str) {
    for path in rt.shard_paths() {
        let conn = Connection::open(&path).expect("the local D1 file opens writable");
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        conn.execute_batch(sql).unwrap();
    }
}

/// A move and its stage_change touchpoint are one transaction. Triggers installed through a
/// writable connection make one half fail or do nothing; they run on a runtime of this test's own,
/// since a second writer makes the runtime's concurrent writes fail with SQLITE_BUSY, which would
/// break the tests running beside this one.
fn move_and_its_touchpoint_commit_together(_shared: &Runtime) {
    let own = Runtime::start();
    let rt = &own;
    let org = unique_org("moveatomic");
    let api = Api::new(rt, &org, "member");
    let new = stage_id(&api, "New");
    let contacted = stage_id(&api, "Contacted");
    let qualified = stage_id(&api, "Qualified");
    let lead = create_lead(&api, "Tia", "direct");
    let suffix = unique_suffix().replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let path = format!("/v1/leads/{lead}/move");
    let start = lead_state(rt, &lead);
    assert_eq!(
        api.get(&format!("/v1/leads/{lead}")).expect(200).json()["stage_id"],
        new.as_str()
    );

    // The touchpoint half fails (its interaction insert is refused): the move is undone with it.
    let refuse = format!("test_refuse_touchpoint_{suffix}");
    write_db(
        rt,
        &format!(
            "CREATE TRIGGER {refuse} BEFORE INSERT ON interactions \
             WHEN NEW.lead_id = '{lead}' AND NEW.type = 'stage_change' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
        ),
    );
    let failed = api.post(&path, &json!({"stage_id": contacted}));
    write_db(rt, &format!("DROP TRIGGER {refuse};"));
    assert_eq!(failed.status, 500, "{}", failed.body);
    assert_eq!(
        lead_state(rt, &lead),
        start,
        "the lead moved without its touchpoint"
    );
    assert_eq!(lead_history(rt, &lead), (vec![], 0));

    // The move loses its race (its guarded UPDATE changes no row, as when another move came
    // first): 409, and no touchpoint, heat or level change is written.
    let skip = format!("test_skip_move_{suffix}");
    write_db(
        rt,
        &format!(
            "CREATE TRIGGER {skip} BEFORE UPDATE OF stage_id ON leads WHEN OLD.id = '{lead}' \
             BEGIN SELECT RAISE(IGNORE); END;"
        ),
    );
    let lost = api.post(&path, &json!({"stage_id": contacted}));
    write_db(rt, &format!("DROP TRIGGER {skip};"));
    assert_eq!(lost.status, 409, "{}", lost.body);
    assert_eq!(
        lost.header("Content-Type"),
        Some("application/problem+json")
    );
    assert_eq!(lead_state(rt, &lead), start);
    assert_eq!(lead_history(rt, &lead), (vec![], 0));

    // Each successful move writes exactly one stage_change.
    move_lead(&api, &lead, json!({"stage_id": contacted}));
    assert_eq!(lead_history(rt, &lead).0, ["stage_change"]);
    let moved = move_lead(&api, &lead, json!({"stage_id": qualified}));
    assert_eq!(moved["stage_id"], qualified.as_str());
    assert_eq!(moved["version"], 3, "{moved}");
    assert_eq!(lead_history(rt, &lead).0, ["stage_change", "stage_change"]);
}

// ---------------------------------------------------------------------------------------------
// Dashboard

fn touch(api: &Api, lead: &str, kind: &str, platform: &str, at: i64) {
    api.post(
        &format!("/v1/leads/{lead}/interactions"),
        &json!({"type": kind, "platform": platform, "occurred_at": rfc(at)}),
    )
    .expect(201);
}

fn dashboard_figures_match_a_seeded_org(rt: &Runtime) {
    let org = unique_org("dash");
    let api = Api::new(rt, &org, "member");
    let now = now_ms();
    let days = |n: i64| now - n * DAY_MS;

    let web = create_lead(&api, "Wendy", "website");
    let fb = create_lead(&api, "Fred", "facebook");
    let referral = create_lead(&api, "Rita", "referral");
    // Wendy: two price quotes in the window (16), one visit in the previous window (2) → 18 HOT.
    touch(&api, &web, "price_quote", "website", days(2));
    touch(&api, &web, "price_quote", "website", days(3));
    touch(&api, &web, "website_visit", "website", days(40));
    // Fred: like (1) and comment (0) on Facebook, follow (1) on Instagram, all in the window → 2.
    touch(&api, &fb, "social_like", "facebook", days(1));
    touch(&api, &fb, "social_comment", "facebook", days(2));
    touch(&api, &fb, "social_follow", "instagram", days(5));
    // Rita: info request (5) in the window, a LinkedIn like (1) in the previous window → 6 WARM.
    touch(&api, &referral, "info_request", "email", days(10));
    touch(&api, &referral, "social_like", "linkedin", days(45));

    let dash = api.get("/v1/dashboard?window_days=30").expect(200).json();
    assert_eq!(dash["window_days"], 30);
    assert_eq!(
        dash["by_heat_level"],
        json!({"COLD": 1, "WARM": 1, "HOT": 1})
    );
    assert_eq!(
        dash["by_source"],
        json!({"website": 1, "facebook": 1, "instagram": 0, "linkedin": 0, "referral": 1, "direct": 0, "other": 0})
    );
    let by_stage = dash["by_stage"].as_array().unwrap();
    assert_eq!(by_stage.len(), 7);
    assert_eq!(
        (by_stage[0]["name"].clone(), by_stage[0]["count"].clone()),
        (json!("New"), json!(3))
    );
    assert!(
        by_stage[1..].iter().all(|s| s["count"] == 0),
        "{by_stage:?}"
    );

    let totals = &dash["totals"];
    assert_eq!(
        totals["leads"],
        json!({"value": 3, "previous": 0, "change": 3, "change_pct": null})
    );
    assert_eq!(
        totals["new_leads"],
        json!({"value": 3, "previous": 0, "change": 3, "change_pct": null})
    );
    assert_eq!(
        totals["touchpoints"],
        json!({"value": 6, "previous": 2, "change": 4, "change_pct": 200.0})
    );
    assert_eq!(totals["hot_leads"]["value"], 1);

    let social = &dash["social_engagement"];
    assert_eq!(social["total"], 3);
    assert_eq!(social["by_platform"]["facebook"]["total"], 2);
    assert_eq!(
        social["by_platform"]["facebook"]["by_type"]["social_like"],
        1
    );
    assert_eq!(
        social["by_platform"]["facebook"]["by_type"]["social_comment"],
        1
    );
    assert_eq!(social["by_platform"]["instagram"]["total"], 1);
    assert_eq!(
        social["by_platform"]["instagram"]["by_type"]["social_follow"],
        1
    );
    assert_eq!(social["by_platform"]["linkedin"]["total"], 0);
    assert_eq!(social["by_type"]["social_like"], 1);

    // No snapshots yet: each lead rose from nothing to its score now.
    let rising: Vec<(String, Value)> = dash["trending"]["rising"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap().to_string(), t["change"].clone()))
        .collect();
    assert_eq!(
        rising,
        [
            (web.clone(), json!(18)),
            (referral.clone(), json!(6)),
            (fb.clone(), json!(2))
        ]
    );
    assert_eq!(dash["trending"]["rising"][0]["basis"], "no_snapshot");
    assert_eq!(dash["trending"]["falling"], json!([]));

    // A 4-day window: Wendy's 2-day and 3-day quotes, Fred's like and comment.
    let short = api.get("/v1/dashboard?window_days=4").expect(200).json();
    assert_eq!(short["totals"]["touchpoints"]["value"], 4);
    assert_eq!(short["totals"]["touchpoints"]["previous"], 1);
    assert_eq!(short["social_engagement"]["total"], 2);

    let bad = api.get("/v1/dashboard?window_days=0").expect(422);
    assert_eq!(problem_field(&bad), ["window_days"]);
    api.get("/v1/dashboard?window_days=366").expect(422);
    // Another org sees none of it.
    let other = Api::new(rt, &unique_org("dashother"), "viewer");
    let empty = other.get("/v1/dashboard").expect(200).json();
    assert_eq!(empty["totals"]["leads"]["value"], 0);
    assert_eq!(empty["window_days"], 30);
}

const SOCIAL_PLATFORMS: [&str; 3] = ["facebook", "instagram", "linkedin"];

/// `social_engagement.by_day` of a dashboard against the social touchpoints that should be in it
/// (`(platform, occurred_at ms)`): one entry per UTC day from the window's first day to its last,
/// oldest first, each with every platform and its total, zeros where nothing happened; the
/// series adds up to the per-platform totals and the overall total.
fn assert_engagement_by_day(dash: &Value, expected: &[(&str, i64)]) {
    let social = &dash["social_engagement"];
    let by_day = social["by_day"]
        .as_array()
        .expect("social_engagement.by_day");
    let window_days = dash["window_days"].as_i64().unwrap();
    assert_eq!(by_day.len() as i64, window_days + 1, "{by_day:?}");
    let from = dash["window"]["from"].as_str().unwrap();
    let to = dash["window"]["to"].as_str().unwrap();
    assert_eq!(by_day[0]["day"], from[..10]);
    assert_eq!(by_day[by_day.len() - 1]["day"], to[..10]);
    let mut want: BTreeMap<String, Value> = BTreeMap::new();
    for (platform, at) in expected {
        let day = want
            .entry(rfc(*at)[..10].to_string())
            .or_insert_with(|| json!({"facebook": 0, "instagram": 0, "linkedin": 0, "total": 0}));
        day[*platform] = json!(day[*platform].as_i64().unwrap() + 1);
        day["total"] = json!(day["total"].as_i64().unwrap() + 1);
    }
    // The first day's midnight: the window started `window_days` before about now.
    let approximate_start = now_ms() - window_days * DAY_MS;
    let first_midnight = (-1..=1)
        .map(|k| (approximate_start.div_euclid(DAY_MS) + k) * DAY_MS)
        .find(|ms| rfc(*ms)[..10] == from[..10])
        .expect("the window starts within a day of now minus its length");
    let zero = json!({"facebook": 0, "instagram": 0, "linkedin": 0, "total": 0});
    for (i, entry) in by_day.iter().enumerate() {
        let day = rfc(first_midnight + i as i64 * DAY_MS)[..10].to_string();
        assert_eq!(entry["day"], day, "entry {i} is not the next day");
        let mut counts = entry.as_object().unwrap().clone();
        counts.remove("day");
        assert_eq!(
            Value::Object(counts),
            want.remove(&day).unwrap_or_else(|| zero.clone()),
            "{day}"
        );
    }
    assert!(want.is_empty(), "days missing from by_day: {want:?}");
    for platform in SOCIAL_PLATFORMS {
        let sum: i64 = by_day.iter().map(|d| d[platform].as_i64().unwrap()).sum();
        assert_eq!(
            json!(sum),
            social["by_platform"][platform]["total"],
            "{platform}"
        );
    }
    let sum: i64 = by_day.iter().map(|d| d["total"].as_i64().unwrap()).sum();
    assert_eq!(json!(sum), social["total"]);
}

fn dashboard_social_engagement_by_day_is_exact(rt: &Runtime) {
    let org = unique_org("dashdays");
    let api = Api::new(rt, &org, "member");
    let now = now_ms();
    let days = |n: i64| now - n * DAY_MS;
    // A UTC midnight well inside the window, to put two touchpoints a millisecond apart on two days.
    let midnight = days(10).div_euclid(DAY_MS) * DAY_MS;

    let lead = create_lead(&api, "Dora", "facebook");
    let in_window = [
        ("facebook", "social_like", now - MINUTE_MS),
        ("facebook", "social_like", days(3)),
        ("facebook", "social_comment", days(3)),
        ("linkedin", "social_share", days(3)),
        ("instagram", "story_view", days(29)),
        // The window's partial first day.
        ("instagram", "social_follow", days(30) + 10 * MINUTE_MS),
        ("facebook", "direct_message", midnight - 1),
        ("linkedin", "connection_accepted", midnight),
    ];
    for (platform, kind, at) in in_window {
        touch(&api, &lead, kind, platform, at);
    }
    // Not social engagement of this window: the previous window, a social type on a non-social
    // platform, a non-social type on a social platform.
    touch(&api, &lead, "social_like", "facebook", days(31));
    touch(&api, &lead, "social_like", "website", days(3));
    touch(&api, &lead, "lead_form", "facebook", days(3));

    let dash = api.get("/v1/dashboard?window_days=30").expect(200).json();
    let social = &dash["social_engagement"];
    assert_eq!(social["total"], 8);
    assert_eq!(social["by_platform"]["facebook"]["total"], 4);
    assert_eq!(social["by_platform"]["instagram"]["total"], 2);
    assert_eq!(social["by_platform"]["linkedin"]["total"], 2);
    let expected: Vec<(&str, i64)> = in_window.iter().map(|(p, _, at)| (*p, *at)).collect();
    assert_engagement_by_day(&dash, &expected);
    let by_day = social["by_day"].as_array().unwrap();
    // Spelled out for the busiest day (three days ago) and the days around midnight.
    assert_eq!(
        by_day[27],
        json!({"day": rfc(days(3))[..10], "facebook": 2, "instagram": 0, "linkedin": 1, "total": 3})
    );
    assert_eq!(
        by_day[19],
        json!({"day": rfc(midnight - 1)[..10], "facebook": 1, "instagram": 0, "linkedin": 0, "total": 1})
    );
    assert_eq!(
        by_day[20],
        json!({"day": rfc(midnight)[..10], "facebook": 0, "instagram": 0, "linkedin": 1, "total": 1})
    );
    assert_eq!(
        by_day[15],
        json!({"day": rfc(days(15))[..10], "facebook": 0, "instagram": 0, "linkedin": 0, "total": 0})
    );

    // A 4-day window: today's like and the three-days-ago day only.
    let short = api.get("/v1/dashboard?window_days=4").expect(200).json();
    assert_eq!(short["social_engagement"]["total"], 4);
    assert_engagement_by_day(
        &short,
        &[
            ("facebook", now - MINUTE_MS),
            ("facebook", days(3)),
            ("facebook", days(3)),
            ("linkedin", days(3)),
        ],
    );

    // An org without touchpoints: every day of the default window, all zeros.
    let other = Api::new(rt, &unique_org("dashdaysempty"), "viewer");
    let empty = other.get("/v1/dashboard").expect(200).json();
    assert_engagement_by_day(&empty, &[]);
    assert_eq!(
        empty["social_engagement"]["by_day"]
            .as_array()
            .unwrap()
            .len(),
        31
    );
}

// ---------------------------------------------------------------------------------------------
// Scoring config

fn scoring_config_read_validate_and_change(rt: &Runtime) {
    let org = unique_org("scoring");
    let admin = Api::new(rt, &org, "admin");
    let member = Api::new(rt, &org, "member");
    let viewer = Api::new(rt, &org, "viewer");

    let config = viewer.get("/v1/scoring").expect(200).json();
    assert_eq!(
        config["weights"],
        json!({"social_follow": 1, "social_like": 1, "website_visit": 2, "info_request": 5, "price_quote": 8, "site_visit": 10})
    );
    assert_eq!(config["thresholds"], json!({"warm": 6, "hot": 16}));
    assert_eq!(config["decay_half_life_days"], Value::Null);
    assert_eq!(config["config_version"], 1);
    assert!(config["updated_at"].is_string());

    let lead = create_lead(&member, "Sam", "direct");

    // warm >= hot names thresholds.hot; a negative warm names thresholds.warm.
    let bad = admin
        .send(
            "PUT",
            "/v1/scoring",
            &json!({"weights": {"social_like": 1}, "thresholds": {"warm": 16, "hot": 16}}),
        )
        .expect(422);
    assert_eq!(bad.header("Content-Type"), Some("application/problem+json"));
    assert_eq!(problem_field(&bad), ["thresholds.hot"]);
    let bad = admin
        .send("PUT", "/v1/scoring", &json!({"weights": {"poke": 1}, "thresholds": {"warm": -1, "hot": 4}, "decay_half_life_days": 0}))
        .expect(422);
    assert_eq!(problem_field(&bad), ["weights.poke"]);
    let bad = admin
        .send("PUT", "/v1/scoring", &json!({"weights": {}, "thresholds": {"warm": -1, "hot": 4}, "decay_half_life_days": 0}))
        .expect(422);
    assert_eq!(
        problem_field(&bad),
        ["thresholds.warm", "decay_half_life_days"]
    );
    member
        .send(
            "PUT",
            "/v1/scoring",
            &json!({"weights": {}, "thresholds": {"warm": 1, "hot": 2}}),
        )
        .expect(403);
    assert_eq!(
        viewer.get("/v1/scoring").expect(200).json()["config_version"],
        1
    );

    let new_config = json!({
        "weights": {"social_like": 2, "website_visit": 3, "price_quote": 10, "meeting": 7},
        "thresholds": {"warm": 5, "hot": 12},
        "decay_half_life_days": 14
    });
    let put = admin
        .send("PUT", "/v1/scoring", &new_config)
        .expect(200)
        .json();
    assert_eq!(put["weights"], new_config["weights"]);
    assert_eq!(put["thresholds"], json!({"warm": 5, "hot": 12}));
    assert_eq!(put["decay_half_life_days"], 14);
    assert_eq!(put["config_version"], 2);
    let read = viewer.get("/v1/scoring").expect(200).json();
    assert_eq!(read, put);
    // The change flagged the org's leads for the scoring job.
    let flagged: i64 = rt
        .org_db(&org)
        .query_row(
            "SELECT needs_rescore FROM leads WHERE id = ?1",
            [&lead],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(flagged, 1);
    // Sending back what GET returned is accepted and bumps the version again.
    let again = admin.send("PUT", "/v1/scoring", &read).expect(200).json();
    assert_eq!(again["config_version"], 3);
}

// ---------------------------------------------------------------------------------------------
// Website tracking

fn site_key(api: &Api) -> String {
    let settings = api.get("/v1/tracking").expect(200).json();
    let key = settings["site_key"].as_str().unwrap().to_string();
    assert!(settings["snippet_url_example"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/track/{key}")));
    key
}

fn track(rt: &Runtime, key: &str, body: &Value) -> Resp {
    rt.post(&format!("/track/{key}")).send_json(body)
}

fn leads_of(rt: &Runtime, org: &str) -> Vec<(String, String, Option<String>)> {
    rt.org_db(org)
        .prepare("SELECT id, source, email FROM leads WHERE org_id = ?1 ORDER BY id")
        .unwrap()
        .query_map([org], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn interactions_of(rt: &Runtime, lead: &str) -> Vec<(String, String, String, String)> {
    rt.query_shards(
        "SELECT type, occurred_at, external_id, captured_by FROM interactions WHERE lead_id = ?1 ORDER BY occurred_at, type",
        [lead],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
    )
}

fn tracking_attributes_anonymous_views_on_identification(rt: &Runtime) {
    let org = unique_org("track");
    let admin = Api::new(rt, &org, "admin");
    let key = site_key(&admin);
    let visitor = format!("v-{}", unique_suffix());
    let now = now_ms();
    let at = |minutes: i64| rfc(now - minutes * MINUTE_MS);

    // Anonymous views: two sessions (120 and 80 minutes ago).
    for minutes in [120, 110, 95, 80, 75] {
        let accepted = track(
            rt,
            &key,
            &json!({"visitor_id": visitor, "type": "page_view", "url": format!("https://acme.test/p{minutes}"), "occurred_at": at(minutes)}),
        )
        .expect(202)
        .json();
        assert_eq!(accepted["identified"], false);
    }
    assert!(leads_of(rt, &org).is_empty());

    // The visitor identifies with a form.
    let email = format!("ivy.{}@example.com", unique_suffix());
    let accepted = track(
        rt,
        &key,
        &json!({"visitor_id": visitor, "type": "info_request", "url": "https://acme.test/contact", "occurred_at": at(10),
                "identity": {"email": email, "first_name": "Ivy", "last_name": "Visitor", "company": "Acme"}}),
    )
    .expect(202)
    .json();
    assert_eq!(accepted["identified"], true);
    let leads = leads_of(rt, &org);
    assert_eq!(leads.len(), 1);
    let (lead, source, stored_email) = leads[0].clone();
    assert_eq!(source, "website");
    assert_eq!(stored_email.as_deref(), Some(email.as_str()));

    // Identified views: one 5 minutes ago opens a third session, one a minute ago does not.
    track(
        rt,
        &key,
        &json!({"visitor_id": visitor, "type": "page_view", "occurred_at": at(5)}),
    )
    .expect(202);
    track(
        rt,
        &key,
        &json!({"visitor_id": visitor, "type": "page_view", "occurred_at": at(1)}),
    )
    .expect(202);

    let touches = interactions_of(rt, &lead);
    let kinds: Vec<&str> = touches.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "website_visit",
            "website_visit",
            "info_request",
            "website_visit"
        ],
        "{touches:?}"
    );
    assert_eq!(touches[0].1, at(120));
    assert_eq!(touches[1].1, at(80));
    assert_eq!(touches[3].1, at(5));
    assert_eq!(touches[0].2, format!("visit:{visitor}:{}", at(120)));
    assert!(touches.iter().all(|t| t.3 == "tracking"));
    // 2 + 2 + 5 + 2 = 11: WARM.
    let (score, level): (f64, String) = rt
        .org_db(&org)
        .query_row(
            "SELECT heat_score, heat_level FROM leads WHERE id = ?1",
            [&lead],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((score, level.as_str()), (11.0, "WARM"));
    // Every earlier anonymous view is now attributed.
    let unattributed: i64 = rt.org_db(&org)
        .query_row(
            "SELECT COUNT(*) FROM tracking_events WHERE org_id = ?1 AND visitor_id = ?2 AND attributed = 0",
            [&org, &visitor],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(unattributed, 0);

    // A price quote from the same (known) visitor, without identity, is the same lead's.
    track(
        rt,
        &key,
        &json!({"visitor_id": visitor, "type": "price_quote"}),
    )
    .expect(202);
    let touches = interactions_of(rt, &lead);
    assert_eq!(touches.iter().filter(|t| t.0 == "price_quote").count(), 1);
    assert_eq!(leads_of(rt, &org).len(), 1);

    // Another visitor identifying with the same email matches the lead instead of duplicating.
    let second = format!("v-{}", unique_suffix());
    track(rt, &key, &json!({"visitor_id": second, "type": "page_view", "identity": {"email": email.to_uppercase()}})).expect(202);
    assert_eq!(leads_of(rt, &org).len(), 1);
    assert_eq!(
        interactions_of(rt, &lead)
            .iter()
            .filter(|t| t.0 == "website_visit")
            .count(),
        4
    );
}

fn tracking_never_creates_a_lead_without_identity(rt: &Runtime) {
    let org = unique_org("anon");
    let admin = Api::new(rt, &org, "admin");
    let key = site_key(&admin);
    for kind in ["page_view", "info_request", "price_quote", "page_view"] {
        let accepted = track(rt, &key, &json!({"visitor_id": "anon-1", "type": kind}))
            .expect(202)
            .json();
        assert_eq!(accepted["identified"], false);
    }
    assert!(leads_of(rt, &org).is_empty());
    let stored: i64 = rt
        .org_db(&org)
        .query_row(
            "SELECT COUNT(*) FROM tracking_events WHERE org_id = ?1",
            [&org],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(stored, 4);
    // An identity without an email or phone identifies nobody.
    let refused = track(
        rt,
        &key,
        &json!({"visitor_id": "anon-1", "type": "info_request", "identity": {"first_name": "No"}}),
    )
    .expect(422);
    assert_eq!(problem_field(&refused), ["identity.email"]);
    assert!(leads_of(rt, &org).is_empty());
}

fn tracking_rejects_bad_requests(rt: &Runtime) {
    let org = unique_org("trackbad");
    let key = site_key(&Api::new(rt, &org, "viewer"));
    let unknown = track(
        rt,
        "site_doesnotexist",
        &json!({"visitor_id": "v", "type": "page_view"}),
    )
    .expect(404);
    assert_eq!(
        unknown.header("Content-Type"),
        Some("application/problem+json")
    );
    assert_eq!(unknown.json()["status"], 404);

    let big = json!({"visitor_id": "v", "type": "page_view", "url": "x".repeat(9000)});
    track(rt, &key, &big).expect(413);
    let invalid = track(
        rt,
        &key,
        &json!({"visitor_id": "has space", "type": "click"}),
    )
    .expect(422);
    assert_eq!(problem_field(&invalid), ["visitor_id", "type"]);
    let future = rfc(now_ms() + 120 * MINUTE_MS);
    let invalid = track(
        rt,
        &key,
        &json!({"visitor_id": "v", "type": "page_view", "occurred_at": future}),
    )
    .expect(422);
    assert_eq!(problem_field(&invalid), ["occurred_at"]);
    rt.post(&format!("/track/{key}"))
        .header("Content-Type", "application/json")
        .send_bytes(b"{nope")
        .expect(400);
    rt.post(&format!("/track/{key}"))
        .header("Content-Type", "application/xml")
        .send_bytes(b"<a/>")
        .expect(415);
    // sendBeacon's text/plain is accepted.
    rt.post(&format!("/track/{key}"))
        .header("Content-Type", "text/plain;charset=UTF-8")
        .send_bytes(br#"{"visitor_id":"beacon","type":"page_view"}"#)
        .expect(202);
}

fn tracking_rate_limits_per_visitor(rt: &Runtime) {
    let org = unique_org("ratelimit");
    let key = site_key(&Api::new(rt, &org, "viewer"));
    let body = json!({"visitor_id": "flood", "type": "page_view"});
    // At most 120 per visitor in a fixed one-minute window. The burst may straddle one rollover
    // (it lasts seconds), so it goes on until the first 429, which must come within two windows'
    // worth: whatever the clock, some window then holds a 121st event.
    let mut statuses = Vec::new();
    while statuses.len() < 2 * 120 + 1 && !statuses.contains(&429) {
        statuses.push(track(rt, &key, &body).status);
    }
    let accepted = statuses.iter().filter(|s| **s == 202).count();
    assert_eq!(statuses.last(), Some(&429), "no 429 in {statuses:?}");
    assert_eq!(accepted + 1, statuses.len(), "{statuses:?}");
    assert!(
        (120..=240).contains(&accepted),
        "{accepted} accepted before the first 429"
    );
    let limited_resp = track(rt, &key, &body);
    if limited_resp.status == 429 {
        assert_eq!(
            limited_resp.header("Content-Type"),
            Some("application/problem+json")
        );
        assert_eq!(
            limited_resp.json()["type"],
            "https://leadheat.dev/problems/rate-limited"
        );
    }
    // Another visitor of the same site is not limited by the first one's flood.
    track(
        rt,
        &key,
        &json!({"visitor_id": "calm", "type": "page_view"}),
    )
    .expect(202);
}

fn tracking_cors_preflight_and_site_key_rotation(rt: &Runtime) {
    let org = unique_org("cors");
    let admin = Api::new(rt, &org, "admin");
    let member = Api::new(rt, &org, "member");
    let key = site_key(&admin);
    let preflight = rt
        .request("OPTIONS", &format!("/track/{key}"))
        .header("Origin", "https://www.acme.test")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send_empty();
    assert!(
        preflight.status == 204 || preflight.status == 200,
        "{}",
        preflight.status
    );
    assert_eq!(preflight.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(preflight
        .header("Access-Control-Allow-Methods")
        .unwrap()
        .contains("POST"));
    assert!(preflight
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .to_ascii_lowercase()
        .contains("content-type"));
    let posted = rt
        .post(&format!("/track/{key}"))
        .header("Origin", "https://www.acme.test")
        .send_json(&json!({"visitor_id": "c1", "type": "page_view"}))
        .expect(202);
    assert_eq!(posted.header("Access-Control-Allow-Origin"), Some("*"));

    member.post("/v1/tracking/rotate", &json!({})).expect(403);
    let rotated = admin
        .post("/v1/tracking/rotate", &json!({}))
        .expect(200)
        .json();
    let new_key = rotated["site_key"].as_str().unwrap().to_string();
    assert_ne!(new_key, key);
    assert_eq!(site_key(&admin), new_key);
    track(rt, &key, &json!({"visitor_id": "c1", "type": "page_view"})).expect(404);
    track(
        rt,
        &new_key,
        &json!({"visitor_id": "c1", "type": "page_view"}),
    )
    .expect(202);
}
