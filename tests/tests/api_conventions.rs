//! End-to-end tests of the API's cross-cutting conventions: problem+json errors, Idempotency-Key,
//! body limits, content types, CORS and the OpenAPI document.

use leadheat_e2e::runner::{run, E2eTest};
use leadheat_e2e::{token, unique_org, unique_suffix, Resp, Runtime};
use serde_json::{json, Value};

fn main() {
    let tests: &[E2eTest] = &[
        (
            "errors_are_problem_json_with_stable_types",
            errors_are_problem_json_with_stable_types,
        ),
        (
            "idempotent_replay_and_key_mismatch",
            idempotent_replay_and_key_mismatch,
        ),
        (
            "idempotent_lead_creation_creates_one_lead",
            idempotent_lead_creation_creates_one_lead,
        ),
        (
            "oversized_bodies_are_refused_with_413",
            oversized_bodies_are_refused_with_413,
        ),
        ("wrong_content_type_is_415", wrong_content_type_is_415),
        ("malformed_json_is_400", malformed_json_is_400),
        ("openapi_document_is_served", openapi_document_is_served),
        (
            "cors_headers_on_every_response",
            cors_headers_on_every_response,
        ),
    ];
    run(Runtime::start(), tests)
}

const PROBLEMS: &str = "https://leadheat.dev/problems/";

/// Asserts the RFC 9457 shape and returns the body.
fn problem(resp: &Resp, status: u16, slug: &str) -> Value {
    assert_eq!(resp.status, status, "body: {}", resp.body);
    assert_eq!(
        resp.header("Content-Type"),
        Some("application/problem+json"),
        "{}",
        resp.body
    );
    let body = resp.json();
    assert_eq!(body["type"], format!("{PROBLEMS}{slug}"), "{body}");
    assert_eq!(body["status"], status);
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}

fn errors_are_problem_json_with_stable_types(rt: &Runtime) {
    let org = unique_org("problems");
    let admin = token(&org, "admin");
    let viewer = token(&org, "viewer");
    problem(
        &rt.get("/v1/leads/lead_nope").bearer(&admin).send_empty(),
        404,
        "not-found",
    );
    problem(
        &rt.get("/v1/pipeline/stages").send_empty(),
        401,
        "unauthorized",
    );
    problem(
        &rt.get("/v1/pipeline/stages")
            .bearer("not.a.jwt")
            .send_empty(),
        401,
        "unauthorized",
    );
    problem(
        &rt.get("/v1/nothing-here").bearer(&admin).send_empty(),
        404,
        "not-found",
    );
    problem(
        &rt.request("PATCH", "/v1/pipeline/board")
            .bearer(&admin)
            .send_empty(),
        405,
        "method-not-allowed",
    );
    problem(
        &rt.post("/v1/pipeline/stages")
            .bearer(&viewer)
            .send_json(&json!({"name": "X"})),
        403,
        "forbidden",
    );
    let validation = problem(
        &rt.request("PUT", "/v1/scoring")
            .bearer(&admin)
            .send_json(&json!({"weights": {}, "thresholds": {"warm": 9, "hot": 3}})),
        422,
        "validation",
    );
    assert_eq!(
        validation["errors"],
        json!([{"field": "thresholds.hot", "message": "must be greater than thresholds.warm"}])
    );
    let conflict = problem(
        &rt.post("/v1/pipeline/stages")
            .bearer(&admin)
            .send_json(&json!({"name": "new"})),
        409,
        "conflict",
    );
    // Errors never leak SQL.
    let detail = conflict["detail"].as_str().unwrap().to_ascii_lowercase();
    assert!(
        !detail.contains("sqlite") && !detail.contains("insert"),
        "{detail}"
    );
}

fn idempotent_replay_and_key_mismatch(rt: &Runtime) {
    let org = unique_org("idem");
    let admin = token(&org, "admin");
    let key = format!("key-{}", unique_suffix());
    let send = |body: &Value, key: &str| {
        rt.post("/v1/pipeline/stages")
            .bearer(&admin)
            .header("Idempotency-Key", key)
            .send_json(body)
    };
    let body = json!({"name": "Discovery"});
    let first = send(&body, &key).expect(201);
    assert_eq!(first.header("Idempotent-Replayed"), None);
    let replay = send(&body, &key).expect(201);
    assert_eq!(replay.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(replay.json(), first.json());
    assert_eq!(replay.header("Content-Type"), Some("application/json"));
    // Only one stage was created.
    let stages = rt
        .get("/v1/pipeline/stages")
        .bearer(&admin)
        .send_empty()
        .expect(200)
        .json();
    let discovery = stages["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "Discovery")
        .count();
    assert_eq!(discovery, 1);

    // The same key with another body.
    let mismatch = send(&json!({"name": "Other"}), &key);
    problem(&mismatch, 422, "idempotency-key-mismatch");
    // The same key on another path is another request too.
    let elsewhere = rt
        .post("/v1/tracking/rotate")
        .bearer(&admin)
        .header("Idempotency-Key", &key)
        .send_json(&body);
    problem(&elsewhere, 422, "idempotency-key-mismatch");

    // A client error is stored and replayed as well.
    let bad_key = format!("bad-{}", unique_suffix());
    let refused = send(&json!({"name": ""}), &bad_key);
    problem(&refused, 422, "validation");
    let refused_again = send(&json!({"name": ""}), &bad_key);
    problem(&refused_again, 422, "validation");
    assert_eq!(refused_again.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(refused_again.json(), refused.json());

    // Keys are per org: another org may use the same key for its own request.
    let other = token(&unique_org("idem-other"), "admin");
    rt.post("/v1/pipeline/stages")
        .bearer(&other)
        .header("Idempotency-Key", &key)
        .send_json(&json!({"name": "Elsewhere"}))
        .expect(201);
    // An invalid key is refused.
    problem(&send(&body, "has space"), 422, "validation");
}

fn idempotent_lead_creation_creates_one_lead(rt: &Runtime) {
    let org = unique_org("idem-lead");
    let member = token(&org, "member");
    let key = format!("lead-{}", unique_suffix());
    let body = json!({"first_name": "Ida", "email": format!("ida.{}@example.com", unique_suffix()), "source": "direct"});
    let send = || {
        rt.post("/v1/leads")
            .bearer(&member)
            .header("Idempotency-Key", &key)
            .send_json(&body)
    };
    let first = send().expect(201).json();
    let second = send().expect(201);
    assert_eq!(second.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(second.json()["id"], first["id"]);
    let list = rt
        .get("/v1/leads")
        .bearer(&member)
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
}

fn oversized_bodies_are_refused_with_413(rt: &Runtime) {
    let admin = token(&unique_org("big"), "admin");
    let huge = json!({"first_name": "x".repeat(300 * 1024), "source": "direct"});
    let resp = rt.post("/v1/leads").bearer(&admin).send_json(&huge);
    problem(&resp, 413, "payload-too-large");
    let resp = rt
        .post("/v1/pipeline/stages")
        .bearer(&admin)
        .send_json(&huge);
    problem(&resp, 413, "payload-too-large");
}

fn wrong_content_type_is_415(rt: &Runtime) {
    let admin = token(&unique_org("ctype"), "admin");
    let resp = rt
        .post("/v1/pipeline/stages")
        .bearer(&admin)
        .header("Content-Type", "text/plain")
        .send_bytes(br#"{"name":"Plain"}"#);
    problem(&resp, 415, "unsupported-media-type");
    let resp = rt
        .request("PUT", "/v1/scoring")
        .bearer(&admin)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send_bytes(b"weights=1");
    problem(&resp, 415, "unsupported-media-type");
}

fn malformed_json_is_400(rt: &Runtime) {
    let admin = token(&unique_org("malformed"), "admin");
    let resp = rt
        .post("/v1/pipeline/stages")
        .bearer(&admin)
        .header("Content-Type", "application/json")
        .send_bytes(b"{\"name\": ");
    problem(&resp, 400, "malformed-json");
    let resp = rt
        .request("PUT", "/v1/scoring")
        .bearer(&admin)
        .header("Content-Type", "application/json")
        .send_bytes(b"not json");
    problem(&resp, 400, "malformed-json");
}

fn openapi_document_is_served(rt: &Runtime) {
    let resp = rt.get("/v1/openapi.json").send_empty().expect(200);
    assert!(resp
        .header("Content-Type")
        .unwrap()
        .starts_with("application/json"));
    let doc = resp.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let leads = &doc["paths"]["/v1/leads"];
    assert!(leads["get"].is_object() && leads["post"].is_object());
    assert!(doc["paths"]["/v1/pipeline/board"]["get"].is_object());
    assert!(doc["paths"]["/track/{site_key}"]["post"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

fn cors_headers_on_every_response(rt: &Runtime) {
    let preflight = rt
        .request("OPTIONS", "/v1/leads")
        .header("Origin", "https://app.leadheat.test")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type, idempotency-key",
        )
        .send_empty();
    assert!(
        preflight.status == 204 || preflight.status == 200,
        "{}",
        preflight.status
    );
    assert_eq!(preflight.header("Access-Control-Allow-Origin"), Some("*"));
    let allowed = preflight
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .to_ascii_lowercase();
    for header in [
        "authorization",
        "content-type",
        "idempotency-key",
        "if-match",
    ] {
        assert!(allowed.contains(header), "{allowed}");
    }
    let error = rt
        .get("/v1/pipeline/stages")
        .header("Origin", "https://app.leadheat.test")
        .send_empty();
    assert_eq!(error.status, 401);
    assert_eq!(error.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(error
        .header("Access-Control-Expose-Headers")
        .unwrap()
        .contains("Idempotent-Replayed"));
}
