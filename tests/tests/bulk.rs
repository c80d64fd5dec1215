//! End-to-end tests of bulk lead actions (`POST /v1/leads/bulk`) and the org's members
//! (`GET /v1/members`), against the local runtime.

use leadheat_e2e::runner::{run, E2eTest};
use leadheat_e2e::{mint_jwt, token, token_for_user, unique_org, unique_suffix, unix_now, Runtime};
use serde_json::{json, Value};

fn main() {
    let tests: &[E2eTest] = &[
        (
            "bulk_assigns_owner_adds_tag_and_moves_stage",
            bulk_assigns_owner_adds_tag_and_moves_stage,
        ),
        (
            "bulk_reports_other_orgs_ids_as_not_found",
            bulk_reports_other_orgs_ids_as_not_found,
        ),
        (
            "bulk_refuses_viewers_and_bad_bodies",
            bulk_refuses_viewers_and_bad_bodies,
        ),
        (
            "bulk_honours_idempotency_keys",
            bulk_honours_idempotency_keys,
        ),
        (
            "members_are_recorded_from_tokens",
            members_are_recorded_from_tokens,
        ),
    ];
    run(Runtime::start(), tests)
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn create_lead(rt: &Runtime, token: &str, first_name: &str) -> String {
    let email = format!(
        "{}.{}@example.com",
        first_name.to_lowercase(),
        unique_suffix()
    );
    rt.post("/v1/leads")
        .bearer(token)
        .send_json(&json!({"first_name": first_name, "email": email, "source": "website"}))
        .expect(201)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn lead(rt: &Runtime, token: &str, id: &str) -> Value {
    rt.get(&format!("/v1/leads/{id}"))
        .bearer(token)
        .send_empty()
        .expect(200)
        .json()
}

fn bulk(rt: &Runtime, token: &str, body: &Value) -> leadheat_e2e::Resp {
    rt.post("/v1/leads/bulk").bearer(token).send_json(body)
}

fn stage_id(rt: &Runtime, token: &str, name: &str) -> String {
    let stages = rt
        .get("/v1/pipeline/stages")
        .bearer(token)
        .send_empty()
        .expect(200)
        .json();
    stages["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn statuses(answer: &Value) -> Vec<(String, String)> {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn error_fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn timeline_types(rt: &Runtime, token: &str, id: &str) -> Vec<String> {
    rt.get(&format!("/v1/leads/{id}/timeline"))
        .bearer(token)
        .send_empty()
        .expect(200)
        .json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests

fn bulk_assigns_owner_adds_tag_and_moves_stage(rt: &Runtime) {
    let org = unique_org("bulk");
    let admin = token(&org, "admin");
    let member = token(&org, "member");
    let ids: Vec<String> = ["Ada", "Bea", "Cy"]
        .iter()
        .map(|name| create_lead(rt, &admin, name))
        .collect();

    let answer = bulk(
        rt,
        &member,
        &json!({"ids": ids, "action": "assign_owner", "owner_id": "user-ana"}),
    )
    .expect(200)
    .json();
    assert_eq!(
        answer["counts"],
        json!({"ok": 3, "not_found": 0, "error": 0})
    );
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(answer["results"][i]["id"], json!(id));
        let lead = lead(rt, &admin, id);
        assert_eq!(lead["owner_id"], "user-ana");
        assert_eq!(answer["results"][i]["version"], lead["version"]);
    }

    // A tag joins the existing ones; a lead that has it already is left as it is.
    rt.request("PATCH", &format!("/v1/leads/{}", ids[0]))
        .bearer(&admin)
        .send_json(&json!({"tags": ["vip", "event"]}))
        .expect(200);
    let before = lead(rt, &admin, &ids[0])["version"].clone();
    let answer = bulk(
        rt,
        &member,
        &json!({"ids": ids, "action": "add_tag", "tag": "vip"}),
    )
    .expect(200)
    .json();
    assert_eq!(answer["counts"]["ok"], 3, "{answer}");
    assert_eq!(lead(rt, &admin, &ids[0])["tags"], json!(["vip", "event"]));
    assert_eq!(lead(rt, &admin, &ids[0])["version"], before);
    assert_eq!(lead(rt, &admin, &ids[1])["tags"], json!(["vip"]));
    let tagged = rt
        .get("/v1/leads?tag=vip")
        .bearer(&admin)
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(tagged["items"].as_array().unwrap().len(), 3);

    // A move is the pipeline's move: the stage, and its stage_change touchpoint.
    let qualified = stage_id(rt, &admin, "Qualified");
    let answer = bulk(
        rt,
        &member,
        &json!({"ids": [ids[1], ids[2]], "action": "move_stage", "stage_id": qualified}),
    )
    .expect(200)
    .json();
    assert_eq!(answer["counts"]["ok"], 2, "{answer}");
    for id in &ids[1..] {
        assert_eq!(lead(rt, &admin, id)["stage_id"], json!(qualified));
        assert!(timeline_types(rt, &admin, id).contains(&"stage_change".to_string()));
    }
    assert!(!timeline_types(rt, &admin, &ids[0]).contains(&"stage_change".to_string()));

    // Unassigning is owner_id null.
    bulk(
        rt,
        &member,
        &json!({"ids": [ids[0]], "action": "assign_owner", "owner_id": null}),
    )
    .expect(200);
    assert_eq!(lead(rt, &admin, &ids[0])["owner_id"], Value::Null);
}

fn bulk_reports_other_orgs_ids_as_not_found(rt: &Runtime) {
    let mine = token(&unique_org("bulk-a"), "admin");
    let theirs = token(&unique_org("bulk-b"), "admin");
    let own = create_lead(rt, &mine, "Own");
    let foreign = create_lead(rt, &theirs, "Foreign");
    let answer = bulk(
        rt,
        &mine,
        &json!({"ids": [own, foreign, "lead_nope"], "action": "add_tag", "tag": "hot"}),
    )
    .expect(200)
    .json();
    assert_eq!(
        statuses(&answer),
        [
            (own.clone(), "ok".to_string()),
            (foreign.clone(), "not_found".to_string()),
            ("lead_nope".to_string(), "not_found".to_string()),
        ]
    );
    assert_eq!(
        answer["counts"],
        json!({"ok": 1, "not_found": 2, "error": 0})
    );
    // The other org's lead is untouched.
    assert_eq!(lead(rt, &theirs, &foreign)["tags"], json!([]));
    assert_eq!(lead(rt, &mine, &own)["tags"], json!(["hot"]));

    // A merged lead is gone from the list: not found too.
    let merged = create_lead(rt, &mine, "Merged");
    rt.post(&format!("/v1/leads/{own}/merge"))
        .bearer(&mine)
        .send_json(&json!({"source_lead_id": merged}))
        .expect(200);
    let answer = bulk(
        rt,
        &mine,
        &json!({"ids": [merged], "action": "assign_owner", "owner_id": "u1"}),
    )
    .expect(200)
    .json();
    assert_eq!(statuses(&answer), [(merged, "not_found".to_string())]);
}

fn bulk_refuses_viewers_and_bad_bodies(rt: &Runtime) {
    let org = unique_org("bulk-bad");
    let admin = token(&org, "admin");
    let viewer = token(&org, "viewer");
    let id = create_lead(rt, &admin, "Vic");
    let stage_before = lead(rt, &admin, &id)["stage_id"].clone();

    let refused = bulk(
        rt,
        &viewer,
        &json!({"ids": [id], "action": "add_tag", "tag": "x"}),
    )
    .expect(403);
    assert!(refused
        .header("Content-Type")
        .unwrap()
        .starts_with("application/problem+json"));
    assert_eq!(lead(rt, &admin, &id)["tags"], json!([]));

    let too_many: Vec<String> = (0..101).map(|i| format!("lead_{i}")).collect();
    let answer = bulk(
        rt,
        &admin,
        &json!({"ids": too_many, "action": "add_tag", "tag": "x"}),
    )
    .expect(422)
    .json();
    assert_eq!(error_fields(&answer), ["ids"]);

    let cases = [
        (json!({"ids": [id], "action": "archive"}), vec!["action"]),
        (json!({"ids": [id], "action": "add_tag"}), vec!["tag"]),
        (
            json!({"ids": [id], "action": "add_tag", "tag": "x", "owner_id": "u"}),
            vec!["owner_id"],
        ),
        (
            json!({"ids": [], "action": "add_tag", "tag": "x"}),
            vec!["ids"],
        ),
        (
            json!({"ids": [id], "action": "move_stage", "stage_id": "stg_not_ours"}),
            vec!["stage_id"],
        ),
        (
            json!({"ids": [id], "action": "add_tag", "tag": "x", "colour": "red"}),
            vec!["colour"],
        ),
    ];
    for (body, fields) in cases {
        let answer = bulk(rt, &admin, &body).expect(422).json();
        assert_eq!(error_fields(&answer), fields, "{body}");
    }
    assert_eq!(lead(rt, &admin, &id)["stage_id"], stage_before);
    assert_eq!(lead(rt, &admin, &id)["tags"], json!([]));
}

fn bulk_honours_idempotency_keys(rt: &Runtime) {
    let admin = token(&unique_org("bulk-idem"), "admin");
    let id = create_lead(rt, &admin, "Ida");
    let body = json!({"ids": [id], "action": "add_tag", "tag": "once"});
    let key = format!("bulk-{}", unique_suffix());
    let first = rt
        .post("/v1/leads/bulk")
        .bearer(&admin)
        .header("Idempotency-Key", &key)
        .send_json(&body)
        .expect(200);
    // The tag is removed; a replay answers the stored response without running again.
    rt.request("PATCH", &format!("/v1/leads/{id}"))
        .bearer(&admin)
        .send_json(&json!({"tags": []}))
        .expect(200);
    let replay = rt
        .post("/v1/leads/bulk")
        .bearer(&admin)
        .header("Idempotency-Key", &key)
        .send_json(&body)
        .expect(200);
    assert_eq!(replay.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(replay.json(), first.json());
    assert_eq!(lead(rt, &admin, &id)["tags"], json!([]));
    let other = json!({"ids": [id], "action": "add_tag", "tag": "twice"});
    rt.post("/v1/leads/bulk")
        .bearer(&admin)
        .header("Idempotency-Key", &key)
        .send_json(&other)
        .expect(422);
}

fn members_are_recorded_from_tokens(rt: &Runtime) {
    let org = unique_org("members");
    let exp = unix_now() + 3600;
    let ana = mint_jwt(
        leadheat_e2e::JWT_SECRET,
        &json!({"sub": "user-ana", "org": org, "role": "admin", "exp": exp,
                "name": "Ana Lima", "email": "Ana.Lima@Example.com"}),
    );
    let ben = token_for_user(&org, "viewer", "user-ben");
    rt.get("/v1/leads").bearer(&ana).send_empty().expect(200);
    // Any role may list them; the viewer is a member as soon as they are seen.
    let answer = rt
        .get("/v1/members")
        .bearer(&ben)
        .send_empty()
        .expect(200)
        .json();
    let items = answer["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{answer}");
    assert_eq!(items[0]["user_id"], "user-ana");
    assert_eq!(items[0]["name"], "Ana Lima");
    assert_eq!(items[0]["email"], "ana.lima@example.com");
    assert_eq!(items[0]["role"], "admin");
    assert_eq!(items[1]["user_id"], "user-ben");
    assert_eq!(items[1]["name"], Value::Null);
    assert_eq!(items[1]["role"], "viewer");

    // Seen again the same day: no write (last_seen_at stays); a new name is written at once.
    let seen = items[0]["last_seen_at"].clone();
    rt.get("/v1/leads").bearer(&ana).send_empty().expect(200);
    let db = rt.org_db(&org);
    let stored: String = db
        .query_row(
            "SELECT last_seen_at FROM members WHERE org_id = ?1 AND user_id = 'user-ana'",
            [&org],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(json!(stored), seen);
    let renamed = mint_jwt(
        leadheat_e2e::JWT_SECRET,
        &json!({"sub": "user-ana", "org": org, "role": "member", "exp": exp, "name": "Ana L."}),
    );
    rt.get("/v1/leads")
        .bearer(&renamed)
        .send_empty()
        .expect(200);
    let answer = rt
        .get("/v1/members")
        .bearer(&ben)
        .send_empty()
        .expect(200)
        .json();
    let ana_now = &answer["items"][0];
    assert_eq!(ana_now["name"], "Ana L.");
    assert_eq!(ana_now["email"], Value::Null);
    assert_eq!(ana_now["role"], "member");
    assert_eq!(ana_now["first_seen_at"], items[0]["first_seen_at"]);
    // Other orgs see none of them.
    let stranger = token(&unique_org("members-other"), "admin");
    let answer = rt
        .get("/v1/members")
        .bearer(&stranger)
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(
        answer["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["user_id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["user-admin"]
    );
}
