//! End-to-end tests of leads, touchpoints, timeline, feed and custom fields (issue 3, parts 2-6)
//! against the local runtime. Every test works in its own org, so they share one runtime.

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use leadheat_e2e::runner::{run, E2eTest};
use leadheat_e2e::{mint_jwt, token, unique_org, unix_now, urlencode, Resp, Runtime, JWT_SECRET};
use serde_json::{json, Value};

fn main() {
    let tests: &[E2eTest] = &[
        (
            "seed_scoring_table_gives_seed_levels",
            seed_scoring_table_gives_seed_levels,
        ),
        ("auth_cases", auth_cases),
        (
            "validation_errors_name_the_field",
            validation_errors_name_the_field,
        ),
        (
            "custom_field_definitions_crud_and_values",
            custom_field_definitions_crud_and_values,
        ),
        (
            "if_match_race_one_wins_one_412",
            if_match_race_one_wins_one_412,
        ),
        ("patch_semantics", patch_semantics),
        (
            "duplicate_external_id_is_one_touchpoint",
            duplicate_external_id_is_one_touchpoint,
        ),
        (
            "automatic_matching_by_email_phone_and_profile",
            automatic_matching_by_email_phone_and_profile,
        ),
        (
            "merge_keeps_every_touchpoint_and_recomputes_heat",
            merge_keeps_every_touchpoint_and_recomputes_heat,
        ),
        (
            "pagination_neither_skips_nor_repeats_under_inserts",
            pagination_neither_skips_nor_repeats_under_inserts,
        ),
        ("every_filter", every_filter),
        ("every_sort", every_sort),
        (
            "timeline_filters_order_and_pages",
            timeline_filters_order_and_pages,
        ),
        ("social_feed", social_feed),
        ("delete_erases_personal_data", delete_erases_personal_data),
        ("export_holds_everything", export_holds_everything),
        (
            "concurrent_touchpoints_all_count",
            concurrent_touchpoints_all_count,
        ),
        (
            "concurrent_creates_with_one_email_converge",
            concurrent_creates_with_one_email_converge,
        ),
    ];
    run(Runtime::start(), tests)
}

// ---------------------------------------------------------------------------------------------
// Helpers

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

    fn delete(&self, path: &str) -> Resp {
        self.rt
            .request("DELETE", path)
            .bearer(&self.token)
            .send_empty()
    }

    fn create(&self, body: Value) -> Value {
        self.send("POST", "/v1/leads", &body).expect(201).json()
    }

    fn touch(&self, lead: &str, kind: &str, platform: &str, extra: Value) -> Resp {
        let mut body = json!({"type": kind, "platform": platform});
        if let Value::Object(extra) = extra {
            for (k, v) in extra {
                body[k] = v;
            }
        }
        self.send("POST", &format!("/v1/leads/{lead}/interactions"), &body)
    }

    fn list(&self, query: &str) -> Value {
        self.get(&format!("/v1/leads?{query}")).expect(200).json()
    }

    /// Every page of a list, following next_cursor.
    fn list_all(&self, query: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let q = match &cursor {
                Some(c) => format!("{query}&cursor={}", urlencode(c)),
                None => query.to_string(),
            };
            let page = self.list(&q);
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return items,
            }
        }
        panic!("pagination did not end");
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

fn id_of(lead: &Value) -> String {
    lead["id"].as_str().unwrap().to_string()
}

fn error_fields(resp: &Resp) -> Vec<String> {
    let body = resp.json();
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {body}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect()
}

/// A count over every shard (a lead's rows are on its org's shard; an erased lead's nowhere).
fn count(rt: &Runtime, sql: &str, id: &str) -> i64 {
    rt.query_shards(sql, [id], |row| row.get::<_, i64>(0))
        .into_iter()
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Tests

fn seed_scoring_table_gives_seed_levels(rt: &Runtime) {
    let api = Api::new(rt, &unique_org("seed"), "member");
    let lead = id_of(&api.create(json!({"first_name": "Ada", "source": "website"})));
    assert_eq!(
        api.get(&format!("/v1/leads/{lead}")).expect(200).json()["heat_level"],
        "COLD"
    );

    let steps = [
        ("social_follow", "instagram", 1, 1, "COLD"),
        ("social_like", "facebook", 1, 2, "COLD"),
        ("website_visit", "website", 2, 4, "COLD"),
        ("info_request", "email", 5, 9, "WARM"),
        ("price_quote", "email", 8, 17, "HOT"),
    ];
    for (kind, platform, points, score, level) in steps {
        let out = api
            .touch(&lead, kind, platform, json!({}))
            .expect(201)
            .json();
        assert_eq!(out["interaction"]["type"], kind);
        assert_eq!(out["interaction"]["points"], json!(points), "{out}");
        assert_eq!(out["interaction"]["captured_by"], "manual");
        assert_eq!(out["lead"]["heat_score"], json!(score), "{kind}: {out}");
        assert_eq!(out["lead"]["heat_level"], level, "{kind}");
        assert_eq!(
            out["lead"]["last_interaction_at"],
            out["interaction"]["occurred_at"]
        );
    }
    let stored = api.get(&format!("/v1/leads/{lead}")).expect(200).json();
    assert_eq!(
        (stored["heat_score"].clone(), stored["heat_level"].clone()),
        (json!(17), json!("HOT"))
    );

    let heat = api
        .get(&format!("/v1/leads/{lead}/heat"))
        .expect(200)
        .json();
    assert_eq!(heat["score"], json!(17));
    assert_eq!(heat["level"], "HOT");
    assert_eq!(heat["config_version"], json!(1));
    assert_eq!(
        heat["breakdown"],
        json!([
            {"type": "price_quote", "count": 1, "points": 8},
            {"type": "info_request", "count": 1, "points": 5},
            {"type": "website_visit", "count": 1, "points": 2},
            {"type": "social_follow", "count": 1, "points": 1},
            {"type": "social_like", "count": 1, "points": 1}
        ])
    );

    let other = id_of(&api.create(json!({"first_name": "Bo"})));
    let out = api
        .touch(&other, "site_visit", "in_person", json!({}))
        .expect(201)
        .json();
    assert_eq!(
        (
            out["lead"]["heat_score"].clone(),
            out["lead"]["heat_level"].clone()
        ),
        (json!(10), json!("WARM"))
    );
    // A type outside the seed table earns 0.
    let out = api
        .touch(&other, "call", "phone", json!({}))
        .expect(201)
        .json();
    assert_eq!(out["interaction"]["points"], json!(0));
    assert_eq!(out["lead"]["heat_score"], json!(10));

    // Level changes were recorded: COLD->WARM, WARM->HOT for the first lead.
    let changes: Vec<(String, String)> = rt.query_shards(
        "SELECT old_level, new_level FROM heat_level_changes WHERE lead_id = ?1 ORDER BY changed_at, id",
        [&lead],
        |r| Ok((r.get(0)?, r.get(1)?)),
    );
    assert_eq!(
        changes,
        vec![
            ("COLD".to_string(), "WARM".to_string()),
            ("WARM".to_string(), "HOT".to_string())
        ]
    );
}

fn auth_cases(rt: &Runtime) {
    let org = unique_org("auth");
    let member = Api::new(rt, &org, "member");
    let lead = id_of(&member.create(json!({"first_name": "Cy"})));
    let path = format!("/v1/leads/{lead}");

    assert_eq!(rt.get(&path).send_empty().status, 401);
    let claims = json!({"sub": "u", "org": org, "role": "admin", "exp": unix_now() + 600});
    let wrong_key = mint_jwt("not-the-secret", &claims);
    assert_eq!(rt.get(&path).bearer(&wrong_key).send_empty().status, 401);
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    assert_eq!(rt.get(&path).bearer(&none).send_empty().status, 401);
    let expired = mint_jwt(
        JWT_SECRET,
        &json!({"sub": "u", "org": org, "role": "admin", "exp": unix_now() - 60}),
    );
    let resp = rt.get(&path).bearer(&expired).send_empty();
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.header("content-type"),
        Some("application/problem+json")
    );

    let viewer = Api::new(rt, &org, "viewer");
    assert_eq!(viewer.get(&path).expect(200).json()["id"], json!(lead));
    viewer
        .send("POST", "/v1/leads", &json!({"first_name": "X"}))
        .expect(403);
    viewer
        .send("PATCH", &path, &json!({"first_name": "X"}))
        .expect(403);
    viewer.delete(&path).expect(403);
    viewer.touch(&lead, "note", "other", json!({})).expect(403);
    viewer
        .send(
            "POST",
            &format!("{path}/merge"),
            &json!({"source_lead_id": lead}),
        )
        .expect(403);
    viewer.get(&format!("{path}/timeline")).expect(200);

    let stranger = Api::new(rt, &unique_org("auth-other"), "admin");
    stranger.get(&path).expect(404);
    stranger
        .send("PATCH", &path, &json!({"first_name": "X"}))
        .expect(404);
    stranger.delete(&path).expect(404);
    stranger
        .touch(&lead, "note", "other", json!({}))
        .expect(404);
    stranger.get(&format!("{path}/timeline")).expect(404);
    stranger.get(&format!("{path}/export")).expect(404);
    stranger.get(&format!("{path}/heat")).expect(404);
    assert_eq!(stranger.list("")["items"], json!([]));
    // Still intact for its own org.
    assert_eq!(member.get(&path).expect(200).json()["first_name"], "Cy");
}

fn validation_errors_name_the_field(rt: &Runtime) {
    let api = Api::new(rt, &unique_org("valid"), "member");
    let resp = api.send(
        "POST",
        "/v1/leads",
        &json!({"first_name": "A", "email": "not-an-email"}),
    );
    assert_eq!(resp.status, 422);
    assert_eq!(
        resp.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(error_fields(&resp), ["email"]);
    assert_eq!(
        resp.json()["type"],
        "https://leadheat.dev/problems/validation"
    );

    let resp = api.send(
        "POST",
        "/v1/leads",
        &json!({"first_name": "A", "source": "television"}),
    );
    assert_eq!(resp.status, 422);
    assert_eq!(error_fields(&resp), ["source"]);

    let resp = api.send(
        "POST",
        "/v1/leads",
        &json!({"first_name": "A", "tags": ["ok", 7]}),
    );
    assert_eq!(error_fields(&resp.expect(422)), ["tags[1]"]);

    let resp = api.send(
        "POST",
        "/v1/leads",
        &json!({"first_name": "A", "phone": "12"}),
    );
    assert_eq!(error_fields(&resp.expect(422)), ["phone"]);

    let lead = id_of(&api.create(json!({"first_name": "A"})));
    let resp = api.touch(&lead, "wave", "website", json!({}));
    assert_eq!(error_fields(&resp.expect(422)), ["type"]);
    let resp = api.touch(
        &lead,
        "note",
        "myspace",
        json!({"occurred_at": "yesterday"}),
    );
    let mut fields = error_fields(&resp.expect(422));
    fields.sort();
    assert_eq!(fields, ["occurred_at", "platform"]);
    let resp = api.send(
        "PATCH",
        &format!("/v1/leads/{lead}"),
        &json!({"email": "x@"}),
    );
    assert_eq!(error_fields(&resp.expect(422)), ["email"]);
    let resp = api.get("/v1/leads?sort=colour&limit=500");
    let mut fields = error_fields(&resp.expect(422));
    fields.sort();
    assert_eq!(fields, ["limit", "sort"]);
    api.get("/v1/leads?cursor=garbage!").expect(422);
}

fn custom_field_definitions_crud_and_values(rt: &Runtime) {
    let org = unique_org("cf");
    let admin = Api::new(rt, &org, "admin");
    let member = Api::new(rt, &org, "member");

    member
        .send(
            "POST",
            "/v1/custom-fields",
            &json!({"key": "budget", "type": "number"}),
        )
        .expect(403);
    let budget = admin
        .send(
            "POST",
            "/v1/custom-fields",
            &json!({"key": "budget", "label": "Budget", "type": "number", "required": true}),
        )
        .expect(201)
        .json();
    assert_eq!(budget["key"], "budget");
    assert_eq!(budget["type"], "number");
    assert_eq!(budget["required"], json!(true));
    admin
        .send(
            "POST",
            "/v1/custom-fields",
            &json!({"key": "budget", "type": "text"}),
        )
        .expect(409);
    let tier = admin
        .send(
            "POST",
            "/v1/custom-fields",
            &json!({"key": "tier", "label": "Tier", "type": "select", "options": ["gold", "silver"]}),
        )
        .expect(201)
        .json();
    let resp = admin.send(
        "POST",
        "/v1/custom-fields",
        &json!({"key": "x", "type": "select"}),
    );
    assert_eq!(error_fields(&resp.expect(422)), ["options"]);

    let listed = member.get("/v1/custom-fields").expect(200).json();
    let keys: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["budget", "tier"]);

    // Values are validated against the definitions.
    let resp = member.send(
        "POST",
        "/v1/leads",
        &json!({"first_name": "A", "custom_fields": {"budget": "lots"}}),
    );
    assert_eq!(error_fields(&resp.expect(422)), ["custom_fields.budget"]);
    let resp = member.send(
        "POST",
        "/v1/leads",
        &json!({"first_name": "A", "custom_fields": {"budget": 5, "colour": "red"}}),
    );
    assert_eq!(error_fields(&resp.expect(422)), ["custom_fields.colour"]);
    let resp = member.send(
        "POST",
        "/v1/leads",
        &json!({"first_name": "A", "custom_fields": {"tier": "gold"}}),
    );
    assert_eq!(error_fields(&resp.expect(422)), ["custom_fields.budget"]);
    let resp = member.send(
        "POST",
        "/v1/leads",
        &json!({"first_name": "A", "custom_fields": {"budget": 5, "tier": "bronze"}}),
    );
    assert_eq!(error_fields(&resp.expect(422)), ["custom_fields.tier"]);
    let lead = member
        .create(json!({"first_name": "A", "custom_fields": {"budget": 5000, "tier": "gold"}}));
    assert_eq!(
        lead["custom_fields"],
        json!({"budget": 5000, "tier": "gold"})
    );
    let path = format!("/v1/leads/{}", id_of(&lead));
    let resp = member.send("PATCH", &path, &json!({"custom_fields": {"budget": null}}));
    assert_eq!(error_fields(&resp.expect(422)), ["custom_fields.budget"]);
    let patched = member
        .send(
            "PATCH",
            &path,
            &json!({"custom_fields": {"tier": null, "budget": 7}}),
        )
        .expect(200)
        .json();
    assert_eq!(patched["custom_fields"], json!({"budget": 7}));

    // Update and delete (admin only); deleting removes the values from leads.
    let tier_path = format!("/v1/custom-fields/{}", tier["id"].as_str().unwrap());
    member
        .send("PATCH", &tier_path, &json!({"label": "Level"}))
        .expect(403);
    let updated = admin
        .send(
            "PATCH",
            &tier_path,
            &json!({"label": "Level", "options": ["gold", "silver", "bronze"]}),
        )
        .expect(200)
        .json();
    assert_eq!(updated["label"], "Level");
    assert_eq!(updated["options"], json!(["gold", "silver", "bronze"]));
    let resp = admin.send("PATCH", &tier_path, &json!({"type": "text"}));
    assert_eq!(error_fields(&resp.expect(422)), ["type"]);
    let budget_path = format!("/v1/custom-fields/{}", budget["id"].as_str().unwrap());
    member.delete(&budget_path).expect(403);
    admin.delete(&budget_path).expect(204);
    admin.delete(&budget_path).expect(404);
    assert_eq!(
        member.get(&path).expect(200).json()["custom_fields"],
        json!({})
    );
    Api::new(rt, &unique_org("cf-other"), "admin")
        .delete(&tier_path)
        .expect(404);
}

fn if_match_race_one_wins_one_412(rt: &Runtime) {
    let org = unique_org("ifmatch");
    let api = Api::new(rt, &org, "member");
    let lead = api.create(json!({"first_name": "Dee"}));
    assert_eq!(lead["version"], json!(1));
    let path = format!("/v1/leads/{}", id_of(&lead));

    // Two writers holding version 1, concurrently.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = ["Dana", "Dora"]
            .into_iter()
            .map(|name| {
                let (path, token) = (path.clone(), token(&org, "member"));
                scope.spawn(move || {
                    rt.request("PATCH", &path)
                        .bearer(&token)
                        .header("If-Match", "\"1\"")
                        .send_json(&json!({"first_name": name}))
                        .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(sorted, [200, 412], "{statuses:?}");
    let now = api.get(&path).expect(200);
    assert_eq!(now.header("etag"), Some("\"2\""));
    assert_eq!(now.json()["version"], json!(2));

    // A stale version is refused, the bare number form works, and no If-Match means last write wins.
    let stale = rt
        .request("PATCH", &path)
        .bearer(&api.token)
        .header("If-Match", "1")
        .send_json(&json!({"title": "CEO"}));
    assert_eq!(stale.status, 412);
    assert_eq!(
        stale.json()["type"],
        "https://leadheat.dev/problems/precondition-failed"
    );
    let ok = rt
        .request("PATCH", &path)
        .bearer(&api.token)
        .header("If-Match", "2")
        .send_json(&json!({"title": "CEO"}))
        .expect(200)
        .json();
    assert_eq!(
        (ok["title"].clone(), ok["version"].clone()),
        (json!("CEO"), json!(3))
    );
    let ok = api
        .send("PATCH", &path, &json!({"title": "CTO"}))
        .expect(200)
        .json();
    assert_eq!(ok["version"], json!(4));
}

fn patch_semantics(rt: &Runtime) {
    let api = Api::new(rt, &unique_org("patch"), "member");
    let lead = api.create(json!({
        "first_name": "Eve", "last_name": "Ng", "company": "Acme", "tags": ["a", "b"],
        "source": "referral", "source_detail": {"campaign": "spring"},
        "social_profiles": [{"platform": "linkedin", "platform_user_id": "li-eve", "handle": "eve"}]
    }));
    assert_eq!(lead["source"], "referral");
    assert_eq!(lead["source_detail"], json!({"campaign": "spring"}));
    assert_eq!(
        lead["social_profiles"],
        json!([{"platform": "linkedin", "platform_user_id": "li-eve", "handle": "eve", "url": null}])
    );
    assert!(
        lead["stage_id"].is_string() && lead["position"].is_string(),
        "{lead}"
    );
    for key in [
        "id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "company",
        "title",
        "source",
        "source_detail",
        "stage_id",
        "position",
        "owner_id",
        "tags",
        "custom_fields",
        "social_profiles",
        "heat_score",
        "heat_level",
        "heat_trend",
        "last_interaction_at",
        "created_at",
        "updated_at",
        "version",
    ] {
        assert!(lead.get(key).is_some(), "lead JSON lacks {key}: {lead}");
    }
    let path = format!("/v1/leads/{}", id_of(&lead));
    let patched = api
        .send(
            "PATCH",
            &path,
            &json!({"company": null, "tags": ["c"], "owner_id": "user-9"}),
        )
        .expect(200)
        .json();
    assert_eq!(patched["company"], Value::Null);
    assert_eq!(patched["last_name"], "Ng");
    assert_eq!(patched["tags"], json!(["c"]));
    assert_eq!(patched["owner_id"], "user-9");
    assert_eq!(api.list("tag=a")["items"], json!([]));
    assert_eq!(
        ids(api.list("tag=c")["items"].as_array().unwrap()),
        [id_of(&lead)]
    );
}

fn duplicate_external_id_is_one_touchpoint(rt: &Runtime) {
    let api = Api::new(rt, &unique_org("dup"), "member");
    let lead = id_of(&api.create(json!({"first_name": "Fay"})));
    let first = api
        .touch(
            &lead,
            "price_quote",
            "email",
            json!({"external_id": "quote-1", "metadata": {"amount": 10}}),
        )
        .expect(201)
        .json();
    assert_eq!(first["interaction"]["external_id"], "quote-1");
    assert_eq!(first["interaction"]["metadata"], json!({"amount": 10}));
    let second = api
        .touch(
            &lead,
            "price_quote",
            "email",
            json!({"external_id": "quote-1"}),
        )
        .expect(200)
        .json();
    assert_eq!(second["interaction"]["id"], first["interaction"]["id"]);
    assert_eq!(second["lead"]["heat_score"], json!(8));
    // Same external id on another platform is another touchpoint.
    api.touch(
        &lead,
        "price_quote",
        "phone",
        json!({"external_id": "quote-1"}),
    )
    .expect(201);
    let timeline = api
        .get(&format!("/v1/leads/{lead}/timeline"))
        .expect(200)
        .json();
    assert_eq!(timeline["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        count(
            rt,
            "SELECT COUNT(*) FROM interactions WHERE lead_id = ?1",
            &lead
        ),
        2
    );
    assert_eq!(
        api.get(&format!("/v1/leads/{lead}")).expect(200).json()["heat_score"],
        json!(16)
    );
}

fn automatic_matching_by_email_phone_and_profile(rt: &Runtime) {
    let api = Api::new(rt, &unique_org("match"), "member");
    let created = api
        .send(
            "POST",
            "/v1/leads",
            &json!({"first_name": "Gus", "email": "Gus@Example.com", "tags": ["x"]}),
        )
        .expect(201);
    assert_eq!(created.header("leadheat-match"), Some("created"));
    let lead = created.json();
    let id = id_of(&lead);

    let by_email = api
        .send(
            "POST",
            "/v1/leads",
            &json!({"email": " gus@EXAMPLE.com ", "last_name": "Grey", "first_name": "Other", "phone": "+1 555 010 0199", "tags": ["y"]}),
        )
        .expect(200);
    assert_eq!(by_email.header("leadheat-match"), Some("email"));
    let merged = by_email.json();
    assert_eq!(id_of(&merged), id);
    assert_eq!(merged["first_name"], "Gus", "existing values are kept");
    assert_eq!(merged["last_name"], "Grey", "empty fields are filled");
    assert_eq!(merged["tags"], json!(["x", "y"]));
    assert_eq!(merged["version"], json!(2));

    let by_phone = api
        .send(
            "POST",
            "/v1/leads",
            &json!({"phone": "+1 (555) 010-0199", "social_profiles": [{"platform": "instagram", "platform_user_id": "ig-77"}]}),
        )
        .expect(200);
    assert_eq!(by_phone.header("leadheat-match"), Some("phone"));
    assert_eq!(id_of(&by_phone.json()), id);

    let by_profile = api
        .send(
            "POST",
            "/v1/leads",
            &json!({"company": "Gus Inc", "social_profiles": [{"platform": "instagram", "platform_user_id": "ig-77"}]}),
        )
        .expect(200);
    assert_eq!(by_profile.header("leadheat-match"), Some("social_profile"));
    let final_lead = by_profile.json();
    assert_eq!(id_of(&final_lead), id);
    assert_eq!(final_lead["company"], "Gus Inc");
    assert_eq!(api.list("")["items"].as_array().unwrap().len(), 1);

    // A different email is a new lead.
    let other = api
        .send("POST", "/v1/leads", &json!({"email": "someone@else.org"}))
        .expect(201);
    assert_ne!(id_of(&other.json()), id);
}

fn merge_keeps_every_touchpoint_and_recomputes_heat(rt: &Runtime) {
    let api = Api::new(rt, &unique_org("merge"), "member");
    let target = id_of(&api.create(json!({"first_name": "Hal", "tags": ["t1"]})));
    let source = id_of(&api.create(json!({
        "last_name": "Hollis", "email": "hal@h.io", "tags": ["t2"],
        "social_profiles": [{"platform": "facebook", "platform_user_id": "fb-hal"}]
    })));
    api.touch(
        &target,
        "social_follow",
        "instagram",
        json!({"external_id": "f1"}),
    )
    .expect(201);
    api.touch(
        &target,
        "social_like",
        "facebook",
        json!({"external_id": "l1"}),
    )
    .expect(201);
    api.touch(
        &source,
        "price_quote",
        "email",
        json!({"external_id": "q1"}),
    )
    .expect(201);
    let out = api
        .touch(
            &source,
            "info_request",
            "website",
            json!({"external_id": "i1"}),
        )
        .expect(201)
        .json();
    assert_eq!(out["lead"]["heat_score"], json!(13));

    let resp = api.send(
        "POST",
        &format!("/v1/leads/{target}/merge"),
        &json!({"source_lead_id": target}),
    );
    assert_eq!(error_fields(&resp.expect(422)), ["source_lead_id"]);
    api.send(
        "POST",
        &format!("/v1/leads/{target}/merge"),
        &json!({"source_lead_id": "lead_nope"}),
    )
    .expect(404);

    let merged = api
        .send(
            "POST",
            &format!("/v1/leads/{target}/merge"),
            &json!({"source_lead_id": source}),
        )
        .expect(200)
        .json();
    assert_eq!(id_of(&merged), target);
    assert_eq!(merged["heat_score"], json!(15));
    assert_eq!(merged["heat_level"], "WARM");
    assert_eq!(merged["first_name"], "Hal");
    assert_eq!(merged["last_name"], "Hollis");
    assert_eq!(merged["email"], "hal@h.io");
    assert_eq!(merged["tags"], json!(["t1", "t2"]));
    assert_eq!(merged["social_profiles"][0]["platform_user_id"], "fb-hal");
    api.get(&format!("/v1/leads/{source}")).expect(404);
    let timeline = api
        .get(&format!("/v1/leads/{target}/timeline"))
        .expect(200)
        .json();
    let mut externals: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["external_id"].as_str().unwrap())
        .collect();
    externals.sort();
    assert_eq!(externals, ["f1", "i1", "l1", "q1"]);
    assert!(timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["lead_id"] == json!(target)));
    assert_eq!(
        count(
            rt,
            "SELECT COUNT(*) FROM lead_merges WHERE merged_lead_id = ?1",
            &source
        ),
        1
    );
    // The merged lead's email now matches the target.
    let again = api
        .send("POST", "/v1/leads", &json!({"email": "HAL@h.io"}))
        .expect(200);
    assert_eq!(id_of(&again.json()), target);
}

fn pagination_neither_skips_nor_repeats_under_inserts(rt: &Runtime) {
    let api = Api::new(rt, &unique_org("page"), "member");
    let mut originals = Vec::new();
    for i in 0..9 {
        originals.push(id_of(&api.create(json!({"first_name": format!("P{i}")}))));
    }
    for sort in [
        "created_at",
        "-created_at",
        "-heat_score",
        "name",
        "-last_interaction_at",
    ] {
        let mut seen: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut q = format!("sort={sort}&limit=2");
            if let Some(c) = &cursor {
                q.push_str(&format!("&cursor={}", urlencode(c)));
            }
            let page = api.list(&q);
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 2);
            seen.extend(ids(items));
            // Insert between pages: new rows may or may not show up, old ones must all show once.
            api.create(json!({"first_name": format!("New{sort}{pages}")}));
            pages += 1;
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
            assert!(pages < 100);
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{sort}: a row repeated: {seen:?}");
        for id in &originals {
            assert!(seen.contains(id), "{sort}: {id} was skipped");
        }
    }
    let page = api.list("limit=1");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["next_cursor"].is_string());
    // A cursor of one ordering is refused for another.
    let cursor = page["next_cursor"].as_str().unwrap();
    let resp = api.get(&format!("/v1/leads?sort=name&cursor={}", urlencode(cursor)));
    assert_eq!(error_fields(&resp.expect(422)), ["cursor"]);
}

fn every_filter(rt: &Runtime) {
    let org = unique_org("filter");
    let admin = Api::new(rt, &org, "admin");
    admin
        .send(
            "POST",
            "/v1/custom-fields",
            &json!({"key": "size", "type": "number"}),
        )
        .expect(201);
    admin
        .send(
            "POST",
            "/v1/custom-fields",
            &json!({"key": "langs", "type": "multiselect", "options": ["en", "fr"]}),
        )
        .expect(201);
    admin
        .send(
            "POST",
            "/v1/custom-fields",
            &json!({"key": "partner", "type": "boolean"}),
        )
        .expect(201);
    let api = Api::new(rt, &org, "member");
    let hot = id_of(&api.create(json!({
        "first_name": "Ivy", "last_name": "Stone", "email": "ivy@stone.io", "company": "Granite Works",
        "source": "facebook", "owner_id": "owner-1", "tags": ["vip"],
        "custom_fields": {"size": 50, "langs": ["en", "fr"], "partner": true}
    })));
    let warm = id_of(&api.create(json!({
        "first_name": "Jon", "last_name": "Reed", "company": "Reed & Co", "source": "linkedin",
        "owner_id": "owner-2", "tags": ["vip", "b2b"], "custom_fields": {"size": 10, "langs": ["fr"]}
    })));
    let cold =
        id_of(&api.create(json!({"first_name": "Kim", "source": "website", "tags": ["b2b"]})));
    for (lead, kind, at) in [
        (&hot, "price_quote", "2026-01-10T10:00:00Z"),
        (&hot, "site_visit", "2026-01-11T10:00:00Z"),
        (&warm, "site_visit", "2026-02-10T10:00:00Z"),
        (&cold, "social_like", "2026-03-10T10:00:00Z"),
    ] {
        api.touch(lead, kind, "website", json!({"occurred_at": at}))
            .expect(201);
    }
    let set = |query: &str| -> HashSet<String> { ids(&api.list_all(query)).into_iter().collect() };
    let of = |ids: &[&String]| -> HashSet<String> { ids.iter().map(|s| s.to_string()).collect() };

    assert_eq!(set(""), of(&[&hot, &warm, &cold]));
    assert_eq!(set("heat_level=HOT"), of(&[&hot]));
    assert_eq!(set("heat_level=WARM,COLD"), of(&[&warm, &cold]));
    assert_eq!(set("source=linkedin"), of(&[&warm]));
    assert_eq!(set("owner_id=owner-1"), of(&[&hot]));
    assert_eq!(set("tag=vip"), of(&[&hot, &warm]));
    assert_eq!(set("tag=b2b"), of(&[&warm, &cold]));
    assert_eq!(set("min_score=10"), of(&[&hot, &warm]));
    assert_eq!(set("max_score=10"), of(&[&warm, &cold]));
    assert_eq!(set("min_score=2&max_score=17"), of(&[&warm]));
    assert_eq!(
        set("last_interaction_from=2026-02-01&last_interaction_to=2026-02-28"),
        of(&[&warm])
    );
    assert_eq!(
        set("last_interaction_from=2026-02-11T00:00:00Z"),
        of(&[&cold])
    );
    assert_eq!(
        set("created_from=2000-01-01&created_to=2999-01-01"),
        of(&[&hot, &warm, &cold])
    );
    assert_eq!(set("created_to=2000-01-01"), of(&[]));
    assert_eq!(set("cf.size=50"), of(&[&hot]));
    assert_eq!(set("cf.langs=fr"), of(&[&hot, &warm]));
    assert_eq!(set("cf.langs=en"), of(&[&hot]));
    assert_eq!(set("cf.partner=true"), of(&[&hot]));
    assert_eq!(
        error_fields(&api.get("/v1/leads?cf.nope=1").expect(422)),
        ["cf.nope"]
    );
    assert_eq!(
        error_fields(&api.get("/v1/leads?cf.size=big").expect(422)),
        ["cf.size"]
    );
    assert_eq!(set("q=ivy"), of(&[&hot]));
    assert_eq!(set("q=gran"), of(&[&hot]));
    assert_eq!(set("q=stone.io"), of(&[&hot]));
    assert_eq!(set("q=ree"), of(&[&warm]));
    assert_eq!(set("q=nobody"), of(&[]));
    assert_eq!(set("q=vip&tag=vip"), of(&[]));
    assert_eq!(set("tag=vip&source=facebook&heat_level=HOT"), of(&[&hot]));
    let stage = api.get(&format!("/v1/leads/{hot}")).expect(200).json()["stage_id"].clone();
    let stage = stage.as_str().unwrap();
    assert_eq!(set(&format!("stage_id={stage}")), of(&[&hot, &warm, &cold]));
    assert_eq!(set("stage_id=stg_nope"), of(&[]));
    assert_eq!(
        error_fields(&api.get("/v1/leads?heat_level=TEPID").expect(422)),
        ["heat_level"]
    );
    assert_eq!(
        error_fields(&api.get("/v1/leads?source=tv").expect(422)),
        ["source"]
    );
}

fn every_sort(rt: &Runtime) {
    let api = Api::new(rt, &unique_org("sort"), "member");
    let a = id_of(&api.create(json!({"first_name": "Zed", "last_name": "Adams"})));
    let b = id_of(&api.create(json!({"first_name": "amy", "last_name": "baker"})));
    let c = id_of(&api.create(json!({"first_name": "Bob", "last_name": "Baker"})));
    let d = id_of(&api.create(json!({"company": "No Name Ltd"})));
    api.touch(
        &a,
        "price_quote",
        "email",
        json!({"occurred_at": "2026-01-03T00:00:00Z"}),
    )
    .expect(201);
    api.touch(
        &b,
        "site_visit",
        "in_person",
        json!({"occurred_at": "2026-01-01T00:00:00Z"}),
    )
    .expect(201);
    api.touch(
        &c,
        "social_like",
        "facebook",
        json!({"occurred_at": "2026-01-02T00:00:00Z"}),
    )
    .expect(201);

    let order = |sort: &str| ids(&api.list_all(&format!("sort={sort}&limit=3")));
    assert_eq!(
        order("-heat_score"),
        [b.clone(), a.clone(), c.clone(), d.clone()]
    );
    assert_eq!(
        order("heat_score"),
        [d.clone(), c.clone(), a.clone(), b.clone()]
    );
    assert_eq!(order(""), order("-heat_score"));
    assert_eq!(
        order("-last_interaction_at"),
        [a.clone(), c.clone(), b.clone(), d.clone()]
    );
    assert_eq!(
        order("last_interaction_at"),
        [d.clone(), b.clone(), c.clone(), a.clone()]
    );
    // Names: last name then first name, case-insensitive; no name sorts first ascending.
    assert_eq!(order("name"), [d.clone(), a.clone(), b.clone(), c.clone()]);
    assert_eq!(order("-name"), [c.clone(), b.clone(), a.clone(), d.clone()]);
    let created = api.list_all("sort=created_at&limit=3");
    let mut expected: Vec<(String, String)> = created
        .iter()
        .map(|l| (l["created_at"].as_str().unwrap().to_string(), id_of(l)))
        .collect();
    expected.sort();
    assert_eq!(
        ids(&created),
        expected
            .iter()
            .map(|(_, id)| id.clone())
            .collect::<Vec<_>>()
    );
    let mut newest = ids(&api.list_all("sort=-created_at&limit=3"));
    newest.reverse();
    assert_eq!(newest, ids(&created));
}

fn timeline_filters_order_and_pages(rt: &Runtime) {
    let api = Api::new(rt, &unique_org("timeline"), "member");
    let lead = id_of(&api.create(json!({"first_name": "Lu"})));
    let entries = [
        ("social_like", "facebook", "2026-01-01T08:00:00Z"),
        ("social_comment", "instagram", "2026-01-02T08:00:00Z"),
        ("website_visit", "website", "2026-01-03T08:00:00Z"),
        ("info_request", "email", "2026-01-04T08:00:00Z"),
        ("social_like", "instagram", "2026-01-05T08:00:00Z"),
    ];
    for (kind, platform, at) in entries {
        api.touch(&lead, kind, platform, json!({"occurred_at": at}))
            .expect(201);
    }
    let page = |query: &str| {
        api.get(&format!("/v1/leads/{lead}/timeline?{query}"))
            .expect(200)
            .json()
    };
    let times = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["occurred_at"].as_str().unwrap().to_string())
            .collect()
    };
    let all = page("");
    assert_eq!(
        times(&all),
        [
            "2026-01-05T08:00:00.000Z",
            "2026-01-04T08:00:00.000Z",
            "2026-01-03T08:00:00.000Z",
            "2026-01-02T08:00:00.000Z",
            "2026-01-01T08:00:00.000Z"
        ]
    );
    assert_eq!(all["next_cursor"], Value::Null);
    assert_eq!(all["items"][1]["points"], json!(5));
    assert_eq!(all["items"][1]["type"], "info_request");
    assert_eq!(
        times(&page("type=social_like")),
        ["2026-01-05T08:00:00.000Z", "2026-01-01T08:00:00.000Z"]
    );
    assert_eq!(
        times(&page("platform=instagram")),
        ["2026-01-05T08:00:00.000Z", "2026-01-02T08:00:00.000Z"]
    );
    assert_eq!(
        times(&page("from=2026-01-02T08:00:00Z&to=2026-01-04")),
        [
            "2026-01-04T08:00:00.000Z",
            "2026-01-03T08:00:00.000Z",
            "2026-01-02T08:00:00.000Z"
        ]
    );
    // Two per page: 2 + 2 + 1, in order, no repeats.
    let first = page("limit=2");
    let second = page(&format!(
        "limit=2&cursor={}",
        urlencode(first["next_cursor"].as_str().unwrap())
    ));
    let third = page(&format!(
        "limit=2&cursor={}",
        urlencode(second["next_cursor"].as_str().unwrap())
    ));
    assert_eq!(third["next_cursor"], Value::Null);
    let paged: Vec<String> = [first, second, third].iter().flat_map(times).collect();
    assert_eq!(paged, times(&all));
    assert_eq!(
        error_fields(
            &api.get(&format!("/v1/leads/{lead}/timeline?type=nope"))
                .expect(422)
        ),
        ["type"]
    );
}

fn social_feed(rt: &Runtime) {
    let api = Api::new(rt, &unique_org("feed"), "member");
    let mia = id_of(&api.create(json!({"first_name": "Mia", "last_name": "Moss"})));
    let ned = id_of(&api.create(json!({"first_name": "Ned"})));
    api.touch(
        &mia,
        "social_like",
        "facebook",
        json!({"occurred_at": "2026-02-01T00:00:00Z"}),
    )
    .expect(201);
    api.touch(
        &ned,
        "social_comment",
        "instagram",
        json!({"occurred_at": "2026-02-02T00:00:00Z"}),
    )
    .expect(201);
    api.touch(
        &mia,
        "connection_accepted",
        "linkedin",
        json!({"occurred_at": "2026-02-03T00:00:00Z"}),
    )
    .expect(201);
    // Not social: a price quote by email, and a website visit.
    api.touch(
        &mia,
        "price_quote",
        "email",
        json!({"occurred_at": "2026-02-04T00:00:00Z"}),
    )
    .expect(201);
    api.touch(
        &ned,
        "website_visit",
        "website",
        json!({"occurred_at": "2026-02-05T00:00:00Z"}),
    )
    .expect(201);

    let feed = api.get("/v1/feed").expect(200).json();
    let items = feed["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["connection_accepted", "social_comment", "social_like"]
    );
    assert_eq!(items[0]["lead"]["id"], json!(mia));
    assert_eq!(items[0]["lead"]["first_name"], "Mia");
    assert_eq!(items[0]["lead"]["last_name"], "Moss");
    assert_eq!(items[0]["lead"]["heat_score"], json!(9));
    assert_eq!(items[0]["lead"]["heat_level"], "WARM");
    assert_eq!(items[1]["lead"]["first_name"], "Ned");
    assert_eq!(items[1]["platform"], "instagram");

    let fb = api.get("/v1/feed?platform=facebook").expect(200).json();
    assert_eq!(fb["items"].as_array().unwrap().len(), 1);
    assert_eq!(fb["items"][0]["type"], "social_like");
    let comments = api.get("/v1/feed?type=social_comment").expect(200).json();
    assert_eq!(comments["items"].as_array().unwrap().len(), 1);
    let paged = api.get("/v1/feed?limit=2").expect(200).json();
    assert_eq!(paged["items"].as_array().unwrap().len(), 2);
    let rest = api
        .get(&format!(
            "/v1/feed?limit=2&cursor={}",
            urlencode(paged["next_cursor"].as_str().unwrap())
        ))
        .expect(200)
        .json();
    assert_eq!(rest["items"][0]["type"], "social_like");
    assert_eq!(rest["next_cursor"], Value::Null);
    assert_eq!(
        error_fields(&api.get("/v1/feed?platform=email").expect(422)),
        ["platform"]
    );
    assert_eq!(
        Api::new(rt, &unique_org("feed-other"), "viewer")
            .get("/v1/feed")
            .expect(200)
            .json()["items"],
        json!([])
    );
}

fn delete_erases_personal_data(rt: &Runtime) {
    let api = Api::new(rt, &unique_org("erase"), "member");
    let lead = id_of(&api.create(json!({
        "first_name": "Ola", "email": "ola@erase.me", "tags": ["gone"],
        "social_profiles": [{"platform": "linkedin", "platform_user_id": "li-ola"}]
    })));
    api.touch(&lead, "price_quote", "email", json!({}))
        .expect(201);
    api.touch(&lead, "site_visit", "in_person", json!({}))
        .expect(201);
    api.delete(&format!("/v1/leads/{lead}")).expect(204);
    api.get(&format!("/v1/leads/{lead}")).expect(404);
    api.delete(&format!("/v1/leads/{lead}")).expect(404);
    for table in [
        "SELECT COUNT(*) FROM leads WHERE id = ?1",
        "SELECT COUNT(*) FROM interactions WHERE lead_id = ?1",
        "SELECT COUNT(*) FROM lead_tags WHERE lead_id = ?1",
        "SELECT COUNT(*) FROM social_profiles WHERE lead_id = ?1",
        "SELECT COUNT(*) FROM heat_level_changes WHERE lead_id = ?1",
        "SELECT COUNT(*) FROM heat_snapshots WHERE lead_id = ?1",
    ] {
        assert_eq!(count(rt, table, &lead), 0, "{table}");
    }
    assert_eq!(
        count(
            rt,
            "SELECT COUNT(*) FROM leads_fts WHERE leads_fts MATCH ?1",
            "\"ola\""
        ),
        0,
        "the full-text index forgot the name"
    );
    assert_eq!(api.list("q=ola")["items"], json!([]));
    // The identity is free again: a new lead with the same email is created, not matched.
    api.send("POST", "/v1/leads", &json!({"email": "ola@erase.me"}))
        .expect(201);
}

fn export_holds_everything(rt: &Runtime) {
    let api = Api::new(rt, &unique_org("export"), "viewer");
    let member = Api::new(rt, &api_org(&api), "member");
    let lead = id_of(&member.create(json!({
        "first_name": "Pia", "email": "pia@x.io",
        "social_profiles": [{"platform": "facebook", "platform_user_id": "fb-pia", "url": "https://facebook.com/pia"}]
    })));
    member
        .touch(
            &lead,
            "site_visit",
            "in_person",
            json!({"metadata": {"room": "A"}}),
        )
        .expect(201);
    let other = id_of(&member.create(json!({"first_name": "Pia2"})));
    member
        .touch(&other, "social_like", "facebook", json!({}))
        .expect(201);
    member
        .send(
            "POST",
            &format!("/v1/leads/{lead}/merge"),
            &json!({"source_lead_id": other}),
        )
        .expect(200);
    let export = api
        .get(&format!("/v1/leads/{lead}/export"))
        .expect(200)
        .json();
    assert_eq!(export["lead"]["id"], json!(lead));
    assert_eq!(export["lead"]["email"], "pia@x.io");
    assert_eq!(export["lead"]["heat_score"], json!(11));
    let interactions = export["interactions"].as_array().unwrap();
    assert_eq!(interactions.len(), 2);
    assert!(interactions
        .iter()
        .any(|i| i["metadata"] == json!({"room": "A"})));
    assert_eq!(
        export["social_profiles"][0]["url"],
        "https://facebook.com/pia"
    );
    assert_eq!(
        export["heat_level_changes"],
        json!([{"old_level": "COLD", "new_level": "WARM", "changed_at": export["heat_level_changes"][0]["changed_at"]}])
    );
    assert_eq!(export["merged_leads"][0]["merged_lead_id"], json!(other));
    assert!(export["heat_snapshots"].is_array());
}

/// The org a token was minted for (decoded from its payload).
fn api_org(api: &Api) -> String {
    let payload = api.token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["org"].as_str().unwrap().to_string()
}

fn concurrent_touchpoints_all_count(rt: &Runtime) {
    let org = unique_org("race");
    let api = Api::new(rt, &org, "member");
    let lead = id_of(&api.create(json!({"first_name": "Quinn"})));
    // Eight website visits (2 points each) at once, two of them the same external id.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (lead, token) = (lead.clone(), token(&org, "member"));
                scope.spawn(move || {
                    let external = if i < 2 { "same".to_string() } else { format!("v{i}") };
                    rt.post(&format!("/v1/leads/{lead}/interactions"))
                        .bearer(&token)
                        .send_json(&json!({"type": "website_visit", "platform": "website", "external_id": external}))
                        .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [200, 201, 201, 201, 201, 201, 201, 201],
        "{statuses:?}"
    );
    let stored = api.get(&format!("/v1/leads/{lead}")).expect(200).json();
    assert_eq!(
        stored["heat_score"],
        json!(14),
        "7 distinct visits x 2 points"
    );
    assert_eq!(stored["heat_level"], "WARM");
    assert_eq!(
        count(
            rt,
            "SELECT COUNT(*) FROM interactions WHERE lead_id = ?1",
            &lead
        ),
        7
    );
    assert_eq!(
        count(
            rt,
            "SELECT COUNT(*) FROM heat_level_changes WHERE lead_id = ?1",
            &lead
        ),
        1,
        "exactly one COLD->WARM change"
    );
}

fn concurrent_creates_with_one_email_converge(rt: &Runtime) {
    let org = unique_org("race-create");
    let results: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let token = token(&org, "member");
                scope.spawn(move || {
                    let resp = rt
                        .post("/v1/leads")
                        .bearer(&token)
                        .send_json(&json!({"email": "race@same.io", "tags": [format!("t{i}")]}));
                    let id = resp.json()["id"].as_str().unwrap_or("").to_string();
                    (resp.status, id)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        results
            .iter()
            .all(|(status, _)| *status == 200 || *status == 201),
        "{results:?}"
    );
    let api = Api::new(rt, &org, "member");
    let leads = api.list("");
    let items = leads["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "one lead for one email: {leads}");
    let mut tags: Vec<&str> = items[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, ["t0", "t1", "t2", "t3"]);
}
