//! Security suite: D1's production limits, which the local SQLite does not enforce, and inbox rows
//! that keep killing their consumer.
//!
//! The data layer (`functions/edge/src/db.rs`) refuses, as production D1 would, a statement of
//! more than 100 bound parameters, a LIKE/GLOB pattern over 50 bytes, a statement over 100 KB and
//! a query past the 1,000th of an invocation (`leadheat_domain::d1_limits`). These tests drive the
//! paths that used to break them, and check each now gets a 4xx or a plan within the limits. The
//! refusals themselves are unit-tested natively (`db::tests`, `d1_limits::tests`).

use std::time::Duration;

use leadheat_e2e::runner::E2eTest;
use leadheat_e2e::social::{
    connect, connect_page, fire_sync_at, numeric_id, page_event, post_meta,
};
use leadheat_e2e::stub::{Mode, Stub};
use leadheat_e2e::{token, unique_org, unique_suffix, unix_now, urlencode, Runtime};
use rusqlite::OptionalExtension;
use serde_json::{json, Value};

use super::problem;

pub const TESTS: &[E2eTest] = &[
    (
        "poison_inbox_row_dies_after_max_attempts_and_is_replayable",
        poison_inbox_row_dies_after_max_attempts_and_is_replayable,
    ),
    (
        "punctuation_search_longer_than_a_like_pattern_is_answered",
        punctuation_search_longer_than_a_like_pattern_is_answered,
    ),
    (
        "too_many_custom_field_filters_answer_400_naming_the_filter",
        too_many_custom_field_filters_answer_400_naming_the_filter,
    ),
    (
        "meta_delivery_spanning_600_pages_is_stored_whole",
        meta_delivery_spanning_600_pages_is_stored_whole,
    ),
    (
        "custom_field_values_over_their_size_cap_answer_422",
        custom_field_values_over_their_size_cap_answer_422,
    ),
];

/// `Policy::default().max_attempts` (shared/src/sync.rs).
const MAX_ATTEMPTS: i64 = 8;

// ------------------------------------------------------------------------------------------------
// Item 6: an inbox row whose processing never finishes

/// (status, attempts, last_error) of the inbox row of `page` (on any shard; an unrouted delivery
/// counts as ("ignored", 0, None)).
fn inbox_row(rt: &Runtime, page: &str) -> Option<(String, i64, Option<String>)> {
    rt.inbox_rows(page)
        .into_iter()
        .find(|row| row.platform == "facebook")
        .map(|row| (row.status, row.attempts, row.last_error))
}

fn leadgen_event(page: &str, leadgen_id: &str) -> Value {
    page_event(
        page,
        json!([{"field": "leadgen", "value": {
            "ad_id": "6100000000001", "form_id": "7100000000002", "leadgen_id": leadgen_id,
            "created_time": unix_now(), "page_id": page
        }}]),
    )
}

/// The row's consumer is killed in the middle of every attempt: a real crash of the isolate (the
/// runtime is stopped while the consumer waits on the platform API, so it never records an
/// outcome), on a runtime of the test's own. After each crash the row is left processing with its
/// lease; the reconciliation, fired past the lease, enqueues it again and the next consumer claims
/// it. The claim counts each attempt, so the claim after the eighth gives the row up as dead
/// instead of trying forever; the reconciliation then leaves it alone, and a replay brings it back.
fn poison_inbox_row_dies_after_max_attempts_and_is_replayable(_shared: &Runtime) {
    let mut rt = Runtime::start();
    let stub = Stub::shared();
    let org = unique_org("poison");
    let page = numeric_id();
    connect_page(&rt, &org, &page);
    let leadgen_id = numeric_id();
    // The lead form fetch hangs far longer than the test needs to kill its consumer.
    stub.set_mode(&leadgen_id, Mode::Slow(Duration::from_secs(120)));
    post_meta(&rt, "facebook", &leadgen_event(&page, &leadgen_id)).expect(200);

    let mut at = unix_now();
    for attempt in 1..=MAX_ATTEMPTS {
        if attempt > 1 {
            // Past the previous claim's lease (60 s), as the minute cron would be.
            at += 600;
            fire_sync_at(&rt, at);
        }
        rt.wait_for(
            &format!("claim {attempt} calling the platform"),
            Duration::from_secs(60),
            || (stub.call_count(&leadgen_id) as i64 == attempt).then_some(()),
        );
        let (status, attempts, _) = inbox_row(&rt, &page).unwrap();
        assert_eq!(
            (status.as_str(), attempts),
            ("processing", attempt),
            "the claim counts the attempt before the work"
        );
        rt.restart();
    }

    at += 600;
    fire_sync_at(&rt, at);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (status, attempts, last_error) = loop {
        let row = inbox_row(&rt, &page).unwrap();
        if row.0 == "dead" || std::time::Instant::now() > deadline {
            break row;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        (status.as_str(), attempts),
        ("dead", MAX_ATTEMPTS),
        "after {MAX_ATTEMPTS} unfinished attempts the next claim must give the row up \
         (platform calls so far: {})",
        stub.call_count(&leadgen_id)
    );
    let last_error = last_error.unwrap();
    assert!(
        last_error.contains("gave up after 8 attempts"),
        "{last_error}"
    );
    assert_eq!(stub.call_count(&leadgen_id) as i64, MAX_ATTEMPTS);

    // The reconciliation never enqueues it again.
    at += 3600;
    fire_sync_at(&rt, at);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        inbox_row(&rt, &page).unwrap().0,
        "dead",
        "a dead row stays dead"
    );
    assert_eq!(stub.call_count(&leadgen_id) as i64, MAX_ATTEMPTS);

    // Seen in the integration's status, and replayable once the platform answers again.
    let admin = token(&org, "admin");
    let status = rt
        .get("/v1/integrations")
        .bearer(&admin)
        .send_empty()
        .expect(200)
        .json();
    let facebook = status["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["platform"] == "facebook"))
        .cloned()
        .unwrap_or_else(|| panic!("no facebook integration in {status}"));
    assert_eq!(facebook["dead"], 1, "{facebook}");
    let email = format!("poison.{}@example.com", unique_suffix());
    stub.add_meta_lead(
        &leadgen_id,
        json!([{"name": "full_name", "values": ["Pat Poison"]}, {"name": "email", "values": [email]}]),
    );
    stub.set_mode(&leadgen_id, Mode::Normal);
    let replay = rt
        .post("/v1/integrations/facebook/replay")
        .bearer(&admin)
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(replay["replayed"], 1, "{replay}");
    let (status, attempts, _) = rt.wait_for(
        "the replayed row to be processed",
        Duration::from_secs(60),
        || inbox_row(&rt, &page).filter(|row| row.0 == "processed"),
    );
    assert_eq!((status.as_str(), attempts), ("processed", 1));
}

// ------------------------------------------------------------------------------------------------
// Item 7: paths that would break D1's limits in production

fn create_lead(rt: &Runtime, admin: &str, body: &Value) -> String {
    let resp = rt.post("/v1/leads").bearer(admin).send_json(body);
    assert!(
        matches!(resp.status, 200 | 201),
        "{} {}",
        resp.status,
        resp.body
    );
    resp.json()["id"].as_str().unwrap().to_string()
}

fn list_ids(rt: &Runtime, bearer: &str, query: &str) -> Vec<String> {
    let resp = rt
        .get(&format!("/v1/leads?{query}"))
        .bearer(bearer)
        .send_empty();
    assert_eq!(resp.status, 200, "GET /v1/leads?{query}: {}", resp.body);
    resp.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|lead| lead["id"].as_str().unwrap().to_string())
        .collect()
}

/// Free text without a word is a substring search. As a LIKE pattern, 60 punctuation characters
/// (escaped `%` and `_` double) are far over D1's 50 bytes; the search must still answer, and
/// correctly.
fn punctuation_search_longer_than_a_like_pattern_is_answered(rt: &Runtime) {
    let org = unique_org("d1-like");
    let admin = token(&org, "admin");
    let needle = "%_-".repeat(20);
    assert_eq!(needle.len(), 60);
    let with = create_lead(
        rt,
        &admin,
        &json!({"first_name": "Punct", "company": format!("Acme {needle} Ltd"), "source": "direct"}),
    );
    let without = create_lead(
        rt,
        &admin,
        &json!({"first_name": "Plain", "company": "Acme Ltd", "source": "direct"}),
    );
    assert_eq!(
        list_ids(rt, &admin, &format!("q={}", urlencode(&needle))),
        std::slice::from_ref(&with)
    );
    // The wildcards are literal: a shorter run of them matches only where it occurs.
    assert_eq!(
        list_ids(rt, &admin, &format!("q={}", urlencode("%_"))),
        [with]
    );
    let long_miss = "#".repeat(200);
    assert!(list_ids(rt, &admin, &format!("q={}", urlencode(&long_miss))).is_empty());
    let all = list_ids(rt, &admin, "limit=10");
    assert!(all.contains(&without), "{all:?}");
}

/// Each `cf.*` filter binds two parameters; 45 of them (with the list's other parameters) were a
/// statement of more than D1's 100. The query is refused with 400 naming the first filter past the
/// documented maximum of 20, which still works.
fn too_many_custom_field_filters_answer_400_naming_the_filter(rt: &Runtime) {
    let org = unique_org("d1-cf");
    let admin = token(&org, "admin");
    let keys: Vec<String> = (0..45).map(|i| format!("f{i:02}")).collect();
    for key in &keys {
        rt.post("/v1/custom-fields")
            .bearer(&admin)
            .send_json(&json!({"key": key, "label": key, "type": "text"}))
            .expect(201);
    }
    let mut fields = serde_json::Map::new();
    for key in &keys {
        fields.insert(key.clone(), json!("v"));
    }
    let lead = create_lead(
        rt,
        &admin,
        &json!({"first_name": "Custom", "source": "direct", "custom_fields": fields}),
    );
    let query = |n: usize| -> String {
        keys[..n]
            .iter()
            .map(|k| format!("cf.{k}=v"))
            .collect::<Vec<_>>()
            .join("&")
    };

    let resp = rt
        .get(&format!("/v1/leads?{}", query(45)))
        .bearer(&admin)
        .send_empty();
    let body = problem(resp, 400, "45 custom field filters");
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["field"], "cf.f20", "{body}");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 20"),
        "{body}"
    );

    // The maximum is a plan within D1's limits.
    assert_eq!(list_ids(rt, &admin, &query(20)), [lead]);
}

/// A lead's row is written in one statement (at most 100 KB in D1), and a stored idempotent
/// response repeats it: custom field values over 16 KiB of JSON (`MAX_VALUES_BYTES`) are refused
/// with 422 naming `custom_fields`, on create and on patch, and nothing changes.
fn custom_field_values_over_their_size_cap_answer_422(rt: &Runtime) {
    let org = unique_org("d1-cf-size");
    let admin = token(&org, "admin");
    let keys = ["notes_a", "notes_b", "notes_c", "notes_d"];
    for key in keys {
        rt.post("/v1/custom-fields")
            .bearer(&admin)
            .send_json(&json!({"key": key, "label": key, "type": "text"}))
            .expect(201);
    }
    let long = "x".repeat(5_000);
    let values = |n: usize| -> Value {
        Value::Object(
            keys[..n]
                .iter()
                .map(|k| (k.to_string(), json!(long)))
                .collect(),
        )
    };
    let refused = |resp| {
        let body = problem(resp, 422, "custom fields over the cap");
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert_eq!(fields, ["custom_fields"], "{body}");
    };
    refused(
        rt.post("/v1/leads")
            .bearer(&admin)
            .send_json(&json!({"first_name": "Big", "custom_fields": values(4)})),
    );
    let stored: i64 = rt
        .query_shards(
            "SELECT count(*) FROM leads WHERE org_id = ?1",
            [&org],
            |r| r.get::<_, i64>(0),
        )
        .into_iter()
        .sum();
    assert_eq!(stored, 0, "the refused lead is not stored");

    // Three long values fit; a fourth added by a patch does not, and the lead keeps its values.
    let id = create_lead(
        rt,
        &admin,
        &json!({"first_name": "Fits", "custom_fields": values(3)}),
    );
    refused(
        rt.request("PATCH", &format!("/v1/leads/{id}"))
            .bearer(&admin)
            .send_json(&json!({"custom_fields": {"notes_d": long}})),
    );
    let lead = rt
        .get(&format!("/v1/leads/{id}"))
        .bearer(&admin)
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(lead["custom_fields"], values(3));
}

/// A Meta delivery batching 600 pages (none or few of them connected) used to cost one org lookup
/// per page and one insert per part: 1,200 queries, past D1's 1,000 per invocation. It is answered
/// 200 with every part stored, in a handful of queries, and a redelivery is still recognised.
fn meta_delivery_spanning_600_pages_is_stored_whole(rt: &Runtime) {
    let org = unique_org("d1-pages");
    let pages: Vec<String> = (0..600).map(|_| numeric_id()).collect();
    let connected = [pages[0].clone(), pages[599].clone()];
    connect(
        rt,
        &org,
        "facebook",
        json!({"page_ids": connected, "access_token": format!("EAAB-token-{org}")}),
    );
    let entries: Vec<Value> = pages
        .iter()
        .enumerate()
        .map(|(n, page)| {
            json!({"id": page, "time": unix_now(), "changes": [{"field": "feed", "value": {
                "item": "reaction", "verb": "add", "reaction_type": "like", "post_id": format!("{page}_1"),
                "from": {"id": format!("77{n}"), "name": "Fan"}, "created_time": unix_now()}}]})
        })
        .collect();
    let body = json!({"object": "page", "entry": entries}).to_string();

    let answer = leadheat_e2e::social::post_meta_bytes(rt, "facebook", body.as_bytes())
        .expect(200)
        .json();
    assert_eq!(
        (
            answer["stored"].clone(),
            answer["ignored"].clone(),
            answer["duplicates"].clone()
        ),
        (json!(600), json!(598), json!(0)),
        "{answer}"
    );
    // The connected pages' parts are in the org's inbox, the others in the directory's unrouted
    // deliveries: every part is stored.
    let pages_json = Value::from(pages.clone()).to_string();
    let routed: i64 = rt
        .query_shards(
            "SELECT count(*) FROM webhook_inbox WHERE platform = 'facebook' AND account_id IN \
             (SELECT value FROM json_each(?1))",
            [&pages_json],
            |r| r.get::<_, i64>(0),
        )
        .into_iter()
        .sum();
    let unrouted: i64 = rt
        .directory_db()
        .query_row(
            "SELECT count(*) FROM webhook_unrouted WHERE platform = 'facebook' AND account_id IN \
             (SELECT value FROM json_each(?1))",
            [&pages_json],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!((routed, unrouted), (2, 598));
    for page in &connected {
        rt.wait_for(
            "the connected pages' rows to be processed",
            Duration::from_secs(60),
            || {
                rt.org_db(&org)
                    .query_row(
                        "SELECT org_id FROM webhook_inbox WHERE account_id = ?1 AND status = 'processed'",
                        [page],
                        |r| r.get::<_, String>(0),
                    )
                    .optional()
                    .unwrap()
            },
        );
    }

    let again = leadheat_e2e::social::post_meta_bytes(rt, "facebook", body.as_bytes())
        .expect(200)
        .json();
    assert_eq!(
        (again["duplicate"].clone(), again["duplicates"].clone()),
        (json!(true), json!(600)),
        "{again}"
    );
}
