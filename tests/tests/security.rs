//! Security end-to-end tests against the local runtime: authentication (JWT attacks), object-level
//! and role authorization, webhook signatures and replays, hostile bodies (size, syntax, depth,
//! content type), SQL injection strings in every lead field and list filter, secrets in responses
//! and logs, idempotency keys across orgs, and tracking-endpoint abuse.
//!
//! Every test works in organisations of its own (`unique_org`), so they share one runtime.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use leadheat_e2e::runner::{run, E2eTest};
use leadheat_e2e::stub::Stub;
use leadheat_e2e::{
    hmac_sha256, linkedin_signature, meta_signature, mint_jwt, token, unique_org, unique_suffix,
    unix_now, urlencode, Resp, Runtime, INSTAGRAM_APP_SECRET, JWT_SECRET, LINKEDIN_CLIENT_SECRET,
    META_APP_SECRET,
};
use serde_json::{json, Value};

// The hardening suites: each module owns one area and lists its tests in `TESTS`.
#[path = "security/api_limits.rs"]
mod api_limits;
#[path = "security/d1_limits.rs"]
mod d1_limits;
#[path = "security/forgery.rs"]
mod forgery;
#[path = "security/ownership.rs"]
mod ownership;
#[path = "security/privacy.rs"]
mod privacy;

fn main() {
    let base: &[E2eTest] = &[
        ("jwt_alg_none_is_refused", jwt_alg_none_is_refused),
        (
            "jwt_algorithm_substitution_is_refused",
            jwt_algorithm_substitution_is_refused,
        ),
        (
            "jwt_signed_with_another_key_is_refused",
            jwt_signed_with_another_key_is_refused,
        ),
        (
            "jwt_expired_or_not_yet_valid_is_refused",
            jwt_expired_or_not_yet_valid_is_refused,
        ),
        (
            "jwt_with_missing_or_invalid_claims_is_refused",
            jwt_with_missing_or_invalid_claims_is_refused,
        ),
        (
            "malformed_authorization_headers_are_refused",
            malformed_authorization_headers_are_refused,
        ),
        (
            "another_orgs_lead_answers_404_on_every_route",
            another_orgs_lead_answers_404_on_every_route,
        ),
        ("viewers_cannot_write", viewers_cannot_write),
        (
            "members_cannot_use_admin_routes",
            members_cannot_use_admin_routes,
        ),
        (
            "webhook_with_tampered_body_is_refused_and_not_stored",
            webhook_with_tampered_body_is_refused_and_not_stored,
        ),
        (
            "webhook_with_truncated_or_malformed_signature_is_refused",
            webhook_with_truncated_or_malformed_signature_is_refused,
        ),
        (
            "webhook_signed_with_another_platforms_secret_is_refused",
            webhook_signed_with_another_platforms_secret_is_refused,
        ),
        (
            "webhook_replay_is_deduplicated",
            webhook_replay_is_deduplicated,
        ),
        ("oversized_bodies_answer_413", oversized_bodies_answer_413),
        (
            "malformed_json_answers_400_problem",
            malformed_json_answers_400_problem,
        ),
        (
            "deeply_nested_json_is_refused_without_harm",
            deeply_nested_json_is_refused_without_harm,
        ),
        (
            "wrong_content_type_answers_415",
            wrong_content_type_answers_415,
        ),
        (
            "sql_injection_strings_in_lead_fields_are_stored_verbatim",
            sql_injection_strings_in_lead_fields_are_stored_verbatim,
        ),
        (
            "sql_injection_strings_in_list_filters_are_harmless",
            sql_injection_strings_in_list_filters_are_harmless,
        ),
        (
            "access_tokens_never_appear_in_responses_logs_or_storage",
            access_tokens_never_appear_in_responses_logs_or_storage,
        ),
        (
            "idempotency_keys_are_scoped_to_the_org",
            idempotency_keys_are_scoped_to_the_org,
        ),
        (
            "tracking_is_rate_limited_per_visitor",
            tracking_is_rate_limited_per_visitor,
        ),
        (
            "tracking_never_creates_a_lead_without_identity",
            tracking_never_creates_a_lead_without_identity,
        ),
    ];
    let tests = [
        base,
        forgery::TESTS,
        ownership::TESTS,
        api_limits::TESTS,
        privacy::TESTS,
        d1_limits::TESTS,
    ]
    .concat();
    // The runtime calls the process's shared stub platform APIs (`Stub::shared`).
    run(Runtime::start(), &tests)
}

// ---------------------------------------------------------------------------------------------
// Helpers

const INJECTIONS: [&str; 3] = ["'; DROP TABLE leads; --", "\" OR 1=1 --", "%' --"];

/// Words that would betray a database error or stack trace in a response.
const LEAK_MARKERS: [&str; 6] = [
    "sqlite",
    "SQLITE",
    "syntax error",
    "no such",
    "D1_ERROR",
    "panicked",
];

/// Asserts an RFC 9457 problem with `status`, and returns its body.
fn problem(resp: Resp, status: u16, context: &str) -> Value {
    assert_eq!(
        resp.status, status,
        "{context}: expected {status}; body: {}",
        resp.body
    );
    let content_type = resp.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/problem+json"),
        "{context}: content type {content_type:?}; body: {}",
        resp.body
    );
    let body = resp.json();
    assert_eq!(body["status"], status, "{context}: {body}");
    assert!(
        body["type"].as_str().is_some_and(|t| !t.is_empty()),
        "{context}: problem without a type: {body}"
    );
    assert_no_leak(&resp.body, context);
    body
}

fn assert_no_leak(body: &str, context: &str) {
    for marker in LEAK_MARKERS {
        assert!(
            !body.contains(marker),
            "{context}: the response mentions {marker:?}: {body}"
        );
    }
}

fn create_lead(rt: &Runtime, bearer: &str, body: &Value) -> Value {
    let resp = rt.post("/v1/leads").bearer(bearer).send_json(body);
    assert!(
        resp.status == 201 || resp.status == 200,
        "creating a lead: {} {}",
        resp.status,
        resp.body
    );
    resp.json()
}

/// Whether `needle` is one of the strings anywhere inside `value`.
fn contains_string(value: &Value, needle: &str) -> bool {
    match value {
        Value::String(s) => s == needle,
        Value::Array(items) => items.iter().any(|v| contains_string(v, needle)),
        Value::Object(map) => map.values().any(|v| contains_string(v, needle)),
        _ => false,
    }
}

/// The id of the org's first pipeline stage.
fn first_stage(rt: &Runtime, bearer: &str) -> String {
    let stages = rt
        .get("/v1/pipeline/stages")
        .bearer(bearer)
        .send_empty()
        .expect(200)
        .json();
    stages["items"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no stages: {stages}"))
        .to_string()
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A JWT with an arbitrary header, signed HS256 with `secret` (whatever the header claims).
fn jwt_with_header(header: &Value, claims: &Value, secret: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(secret.as_bytes(), input.as_bytes()));
    format!("{input}.{signature}")
}

fn claims(org: &str) -> Value {
    json!({"sub": "user-attacker", "org": org, "role": "admin", "exp": unix_now() + 3600})
}

/// An authenticated request that must answer 401 problem+json.
fn refused(rt: &Runtime, bearer: &str, context: &str) {
    let resp = rt.get("/v1/leads").bearer(bearer).send_empty();
    let body = problem(resp, 401, context);
    assert!(
        body["type"].as_str().unwrap().ends_with("unauthorized"),
        "{context}: {body}"
    );
    // Writes are refused the same way.
    let resp = rt
        .post("/v1/leads")
        .bearer(bearer)
        .send_json(&json!({"first_name": "Mallory"}));
    problem(resp, 401, context);
}

/// A 12-digit numeric id nobody else uses (platform account ids are numeric).
fn unique_numeric_id() -> String {
    let suffix = unique_suffix();
    let tail = &suffix[suffix.len().saturating_sub(12)..];
    u64::from_str_radix(tail, 16).unwrap().to_string()
}

/// Deliveries of `platform` stored for the account: inbox rows on any shard, or unrouted ones.
fn inbox_rows(rt: &Runtime, platform: &str, account: &str) -> i64 {
    rt.inbox_rows(account)
        .iter()
        .filter(|row| row.platform == platform)
        .count() as i64
}

fn facebook_delivery(page_id: &str) -> String {
    json!({
        "object": "page",
        "entry": [{"id": page_id, "time": 1764000000, "changes": [{"field": "feed", "value": {
            "item": "reaction", "verb": "add", "reaction_type": "like",
            "post_id": format!("{page_id}_1"), "from": {"id": "4242", "name": "A Visitor"},
            "created_time": 1764000000
        }}]}]
    })
    .to_string()
}

fn linkedin_delivery(org_id: &str) -> String {
    json!({
        "type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS",
        "notifications": [{
            "action": "LIKE", "notificationId": 1,
            "organizationalEntity": format!("urn:li:organization:{org_id}"),
            "sourcePost": "urn:li:share:1", "actor": "urn:li:person:abc",
            "lastModifiedAt": 1764000000000u64
        }]
    })
    .to_string()
}

fn post_webhook(rt: &Runtime, platform: &str, header: Option<(&str, &str)>, body: &[u8]) -> Resp {
    let mut req = rt
        .post(&format!("/webhooks/{platform}"))
        .header("Content-Type", "application/json");
    if let Some((name, value)) = header {
        req = req.header(name, value);
    }
    req.send_bytes(body)
}

// ---------------------------------------------------------------------------------------------
// Authentication

fn jwt_alg_none_is_refused(rt: &Runtime) {
    let org = unique_org("sec-none");
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "JWT"});
        let unsigned = format!("{}.{}.", b64(&header), b64(&claims(&org)));
        refused(rt, &unsigned, &format!("alg {alg} without signature"));
        // ... and with the HS256 signature of the same input appended.
        let signed = jwt_with_header(&header, &claims(&org), JWT_SECRET);
        refused(rt, &signed, &format!("alg {alg} with a signature"));
    }
    // No alg at all.
    let token = jwt_with_header(&json!({"typ": "JWT"}), &claims(&org), JWT_SECRET);
    refused(rt, &token, "no alg");
}

fn jwt_algorithm_substitution_is_refused(rt: &Runtime) {
    let org = unique_org("sec-alg");
    // The classic key confusion: claim RS256 (or another HMAC) but sign HS256 with the secret, or
    // with what an attacker would take for a public key.
    for alg in [
        "RS256", "ES256", "PS256", "HS384", "HS512", "hs256", "HS256 ",
    ] {
        let header = json!({"alg": alg, "typ": "JWT"});
        for secret in [JWT_SECRET, "-----BEGIN PUBLIC KEY-----"] {
            let token = jwt_with_header(&header, &claims(&org), secret);
            refused(rt, &token, &format!("alg {alg:?} signed with {secret:?}"));
        }
    }
    // An HS256 header carrying a key of the attacker's (jwk / jku / kid injection) is still
    // verified with AUTH_JWT_SECRET only.
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "../../dev/null",
        "jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode("attacker")}});
    let token = jwt_with_header(&header, &claims(&org), "attacker");
    refused(rt, &token, "embedded jwk");
    // `crit` extensions are not understood, so refused even when correctly signed.
    let header = json!({"alg": "HS256", "typ": "JWT", "crit": ["exp"]});
    let token = jwt_with_header(&header, &claims(&org), JWT_SECRET);
    refused(rt, &token, "crit header");
}

fn jwt_signed_with_another_key_is_refused(rt: &Runtime) {
    let org = unique_org("sec-key");
    for secret in [
        "",
        "wrong-secret",
        &format!("{JWT_SECRET} "),
        "dev-only-jwt-secret-change-mE",
    ] {
        let token = mint_jwt(secret, &claims(&org));
        refused(rt, &token, &format!("secret {secret:?}"));
    }
    // The right token with its signature altered in one character, or removed.
    let good = mint_jwt(JWT_SECRET, &claims(&org));
    let (input, signature) = good.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    refused(
        rt,
        &format!("{input}.{flipped}{}", &signature[1..]),
        "flipped signature",
    );
    refused(rt, &format!("{input}."), "stripped signature");
    refused(rt, input, "two segments");
    // Claims swapped under a valid signature (org escalation).
    let other =
        b64(&json!({"sub": "u", "org": "org-victim", "role": "admin", "exp": unix_now() + 3600}));
    let header = input.split('.').next().unwrap();
    refused(
        rt,
        &format!("{header}.{other}.{signature}"),
        "swapped payload",
    );
    // Sanity: the unaltered token works.
    rt.get("/v1/leads").bearer(&good).send_empty().expect(200);
}

fn jwt_expired_or_not_yet_valid_is_refused(rt: &Runtime) {
    let org = unique_org("sec-time");
    let now = unix_now();
    let base = |extra: Value| {
        let mut claims = json!({"sub": "u1", "org": org, "role": "admin"});
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        claims
    };
    let expired = mint_jwt(JWT_SECRET, &base(json!({"exp": now - 3600})));
    let body = problem(
        rt.get("/v1/leads").bearer(&expired).send_empty(),
        401,
        "expired",
    );
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    // Beyond any clock-skew leeway.
    refused(
        rt,
        &mint_jwt(JWT_SECRET, &base(json!({"exp": now - 120}))),
        "expired 2 min ago",
    );
    refused(rt, &mint_jwt(JWT_SECRET, &base(json!({"exp": 0}))), "exp 0");
    refused(
        rt,
        &mint_jwt(JWT_SECRET, &base(json!({"exp": -1}))),
        "negative exp",
    );
    let early = mint_jwt(
        JWT_SECRET,
        &base(json!({"exp": now + 7200, "nbf": now + 3600})),
    );
    refused(rt, &early, "nbf in an hour");
    // Sanity: a token valid now (nbf in the past) is accepted.
    let valid = mint_jwt(
        JWT_SECRET,
        &base(json!({"exp": now + 600, "nbf": now - 10})),
    );
    rt.get("/v1/leads").bearer(&valid).send_empty().expect(200);
}

fn jwt_with_missing_or_invalid_claims_is_refused(rt: &Runtime) {
    let org = unique_org("sec-claims");
    let full = json!({"sub": "u1", "org": org, "role": "member", "exp": unix_now() + 3600});
    for missing in ["sub", "org", "role", "exp"] {
        let mut claims = full.clone();
        claims.as_object_mut().unwrap().remove(missing);
        refused(
            rt,
            &mint_jwt(JWT_SECRET, &claims),
            &format!("without {missing}"),
        );
    }
    for (name, value) in [
        ("role", json!("superadmin")),
        ("role", json!("ADMIN ")),
        ("role", json!(["admin"])),
        ("org", json!("")),
        ("org", json!("   ")),
        ("org", json!(42)),
        ("sub", json!(null)),
        ("exp", json!("tomorrow")),
        ("exp", json!(null)),
    ] {
        let mut claims = full.clone();
        claims[name] = value.clone();
        refused(
            rt,
            &mint_jwt(JWT_SECRET, &claims),
            &format!("{name} = {value}"),
        );
    }
    // Not a JSON object at all.
    let token = jwt_with_header(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &json!([1, 2]),
        JWT_SECRET,
    );
    refused(rt, &token, "array claims");
}

fn malformed_authorization_headers_are_refused(rt: &Runtime) {
    let good = token(&unique_org("sec-hdr"), "admin");
    let cases = [
        String::new(),
        "Basic dXNlcjpwYXNz".to_string(),
        good.clone(),
        format!("Token {good}"),
        "Bearer".to_string(),
        "Bearer ".to_string(),
        "Bearer a.b.c".to_string(),
        format!("Bearer {}", "A".repeat(9000)),
        format!("Bearer {good}.extra"),
        "Bearer ....".to_string(),
    ];
    for value in &cases {
        let resp = rt
            .get("/v1/leads")
            .header("Authorization", value)
            .send_empty();
        problem(resp, 401, &format!("Authorization: {:.40}", value));
    }
    problem(rt.get("/v1/leads").send_empty(), 401, "no Authorization");
}

// ---------------------------------------------------------------------------------------------
// Authorization

fn another_orgs_lead_answers_404_on_every_route(rt: &Runtime) {
    let victim_org = unique_org("sec-victim");
    let victim = token(&victim_org, "admin");
    let attacker = token(&unique_org("sec-attacker"), "admin");
    let lead = create_lead(
        rt,
        &victim,
        &json!({"first_name": "Victor", "last_name": "Victim", "email": format!("victor-{}@example.com", unique_suffix())}),
    );
    let id = lead["id"].as_str().unwrap().to_string();
    let version = lead["version"].clone();
    let own = create_lead(rt, &attacker, &json!({"first_name": "Own"}));
    let own_id = own["id"].as_str().unwrap().to_string();
    let own_stage = first_stage(rt, &attacker);

    let path = |suffix: &str| format!("/v1/leads/{id}{suffix}");
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", path(""), None),
        ("PATCH", path(""), Some(json!({"first_name": "Pwned"}))),
        ("DELETE", path(""), None),
        ("GET", path("/timeline"), None),
        ("GET", path("/export"), None),
        ("GET", path("/heat"), None),
        (
            "POST",
            path("/interactions"),
            Some(json!({"type": "note", "platform": "other"})),
        ),
        (
            "POST",
            path("/merge"),
            Some(json!({"source_lead_id": own_id})),
        ),
        (
            "POST",
            format!("/v1/leads/{own_id}/merge"),
            Some(json!({"source_lead_id": id})),
        ),
        ("POST", path("/move"), Some(json!({"stage_id": own_stage}))),
    ];
    for (method, route, body) in &cases {
        let req = rt.request(method, route).bearer(&attacker);
        let resp = match body {
            Some(body) => req.send_json(body),
            None => req.send_empty(),
        };
        let problem_body = problem(resp, 404, &format!("{method} {route} from another org"));
        assert!(
            !problem_body.to_string().contains("Victor"),
            "{method} {route} leaked the lead: {problem_body}"
        );
    }
    // A move placing the attacker's lead next to the victim's lead names no foreign data either.
    let resp = rt
        .post(&format!("/v1/leads/{own_id}/move"))
        .bearer(&attacker)
        .send_json(&json!({"stage_id": own_stage, "before_lead_id": id}));
    assert!(
        matches!(resp.status, 404 | 422),
        "move next to a foreign lead: {} {}",
        resp.status,
        resp.body
    );
    assert!(!resp.body.contains("Victor"));
    // The lists never show it.
    for list in [
        "/v1/leads".to_string(),
        "/v1/leads?q=Victor".to_string(),
        "/v1/feed".to_string(),
        "/v1/pipeline/board".to_string(),
    ] {
        let resp = rt.get(&list).bearer(&attacker).send_empty().expect(200);
        assert!(!resp.body.contains(&id), "{list} shows the victim's lead");
    }
    // The victim's lead is untouched.
    let after = rt
        .get(&format!("/v1/leads/{id}"))
        .bearer(&victim)
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(after["first_name"], "Victor");
    assert_eq!(after["version"], version);
    let timeline = rt
        .get(&format!("/v1/leads/{id}/timeline"))
        .bearer(&victim)
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(timeline["items"].as_array().unwrap().len(), 0, "{timeline}");
}

fn viewers_cannot_write(rt: &Runtime) {
    let org = unique_org("sec-viewer");
    let admin = token(&org, "admin");
    let viewer = token(&org, "viewer");
    let lead = create_lead(rt, &admin, &json!({"first_name": "Vera"}));
    let id = lead["id"].as_str().unwrap();
    let other = create_lead(rt, &admin, &json!({"first_name": "Otto"}));
    let other_id = other["id"].as_str().unwrap();
    let stage = first_stage(rt, &admin);
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            "/v1/leads".into(),
            Some(json!({"first_name": "New"})),
        ),
        (
            "PATCH",
            format!("/v1/leads/{id}"),
            Some(json!({"first_name": "X"})),
        ),
        ("DELETE", format!("/v1/leads/{id}"), None),
        (
            "POST",
            format!("/v1/leads/{id}/interactions"),
            Some(json!({"type": "note", "platform": "other"})),
        ),
        (
            "POST",
            format!("/v1/leads/{id}/merge"),
            Some(json!({"source_lead_id": other_id})),
        ),
        (
            "POST",
            format!("/v1/leads/{id}/move"),
            Some(json!({"stage_id": stage})),
        ),
        (
            "PUT",
            "/v1/scoring".into(),
            Some(json!({"weights": {"note": 3}})),
        ),
        (
            "POST",
            "/v1/pipeline/stages".into(),
            Some(json!({"name": "Viewer stage"})),
        ),
        (
            "POST",
            "/v1/custom-fields".into(),
            Some(json!({"key": "viewer_field", "label": "V", "type": "text"})),
        ),
        (
            "PUT",
            "/v1/integrations/facebook".into(),
            Some(json!({"page_ids": [unique_numeric_id()], "access_token": "viewer-token"})),
        ),
    ];
    for (method, route, body) in &cases {
        let req = rt.request(method, route).bearer(&viewer);
        let resp = match body {
            Some(body) => req.send_json(body),
            None => req.send_empty(),
        };
        problem(resp, 403, &format!("viewer {method} {route}"));
    }
    // Nothing changed; reading still works.
    let after = rt
        .get(&format!("/v1/leads/{id}"))
        .bearer(&viewer)
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(after["first_name"], "Vera");
    assert_eq!(after["version"], lead["version"]);
    rt.get(&format!("/v1/leads/{other_id}"))
        .bearer(&viewer)
        .send_empty()
        .expect(200);
}

fn members_cannot_use_admin_routes(rt: &Runtime) {
    let org = unique_org("sec-member");
    let member = token(&org, "member");
    let page = unique_numeric_id();
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "PUT",
            "/v1/scoring",
            json!({"weights": {"social_like": 100}, "thresholds": {"warm": 1, "hot": 2}, "decay_half_life_days": null}),
        ),
        (
            "POST",
            "/v1/pipeline/stages",
            json!({"name": "Member stage"}),
        ),
        (
            "POST",
            "/v1/custom-fields",
            json!({"key": "member_field", "label": "M", "type": "text"}),
        ),
        (
            "PUT",
            "/v1/integrations/facebook",
            json!({"page_ids": [page], "access_token": "member-token"}),
        ),
        (
            "PUT",
            "/v1/integrations/linkedin",
            json!({"organization_ids": [page], "sponsored_account_ids": [], "access_token": "member-token"}),
        ),
        ("PUT", "/v1/pipeline/stages/order", json!({"stage_ids": []})),
        ("POST", "/v1/tracking/rotate", json!({})),
    ];
    for (method, route, body) in &cases {
        let resp = rt.request(method, route).bearer(&member).send_json(body);
        problem(resp, 403, &format!("member {method} {route}"));
    }
    // The scoring config is unchanged and the page is connected to nobody.
    let scoring = rt
        .get("/v1/scoring")
        .bearer(&member)
        .send_empty()
        .expect(200)
        .json();
    assert_ne!(scoring["weights"]["social_like"], 100, "{scoring}");
    let connected: i64 = rt
        .directory_db()
        .query_row(
            "SELECT count(*) FROM integration_accounts WHERE account_id = ?1",
            [&page],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(connected, 0);
    // A member still writes leads.
    create_lead(rt, &member, &json!({"first_name": "Member made"}));
}

// ---------------------------------------------------------------------------------------------
// Webhooks

fn webhook_with_tampered_body_is_refused_and_not_stored(rt: &Runtime) {
    let page = unique_numeric_id();
    let body = facebook_delivery(&page);
    let signature = meta_signature(META_APP_SECRET, body.as_bytes());
    let tampered = body.replace("4242", "4243");
    assert_ne!(tampered, body);
    for platform in ["facebook", "instagram"] {
        let resp = post_webhook(
            rt,
            platform,
            Some(("X-Hub-Signature-256", &signature)),
            tampered.as_bytes(),
        );
        problem(resp, 401, &format!("{platform}: tampered body"));
        // One extra byte of whitespace is a different body too.
        let padded = format!("{body} ");
        let resp = post_webhook(
            rt,
            platform,
            Some(("X-Hub-Signature-256", &signature)),
            padded.as_bytes(),
        );
        problem(resp, 401, &format!("{platform}: trailing space"));
    }
    let li_org = unique_numeric_id();
    let li_body = linkedin_delivery(&li_org);
    let li_signature = linkedin_signature(LINKEDIN_CLIENT_SECRET, li_body.as_bytes());
    let li_tampered = li_body.replace("LIKE", "SHARE");
    let resp = post_webhook(
        rt,
        "linkedin",
        Some(("X-LI-Signature", &li_signature)),
        li_tampered.as_bytes(),
    );
    problem(resp, 401, "linkedin: tampered body");
    assert_eq!(inbox_rows(rt, "facebook", &page), 0);
    assert_eq!(inbox_rows(rt, "instagram", &page), 0);
    assert_eq!(inbox_rows(rt, "linkedin", &li_org), 0);
}

fn webhook_with_truncated_or_malformed_signature_is_refused(rt: &Runtime) {
    let page = unique_numeric_id();
    let body = facebook_delivery(&page);
    let good = meta_signature(META_APP_SECRET, body.as_bytes());
    let hex = good.strip_prefix("sha256=").unwrap();
    let bad_headers = [
        good[..good.len() - 1].to_string(),
        good[..good.len() - 2].to_string(),
        "sha256=".to_string(),
        hex.to_string(),
        format!("sha1={hex}"),
        format!("{good}00"),
        format!("sha256={}", "0".repeat(64)),
        format!("sha256={}", "z".repeat(64)),
        String::new(),
    ];
    for header in &bad_headers {
        let resp = post_webhook(
            rt,
            "facebook",
            Some(("X-Hub-Signature-256", header)),
            body.as_bytes(),
        );
        problem(resp, 401, &format!("facebook signature {header:?}"));
    }
    problem(
        post_webhook(rt, "facebook", None, body.as_bytes()),
        401,
        "facebook without signature",
    );
    // LinkedIn: truncated, wrong prefix, missing.
    let li_org = unique_numeric_id();
    let li_body = linkedin_delivery(&li_org);
    let li_good = linkedin_signature(LINKEDIN_CLIENT_SECRET, li_body.as_bytes());
    for header in [
        li_good[..li_good.len() - 1].to_string(),
        format!("sha256={li_good}"),
        format!("hmacsha256={}", &li_good[..63]),
    ] {
        let resp = post_webhook(
            rt,
            "linkedin",
            Some(("X-LI-Signature", &header)),
            li_body.as_bytes(),
        );
        problem(resp, 401, &format!("linkedin signature {header:?}"));
    }
    problem(
        post_webhook(rt, "linkedin", None, li_body.as_bytes()),
        401,
        "linkedin without signature",
    );
    // The Meta header on LinkedIn's endpoint is not LinkedIn's header.
    let resp = post_webhook(
        rt,
        "linkedin",
        Some(("X-Hub-Signature-256", &li_good)),
        li_body.as_bytes(),
    );
    problem(resp, 401, "linkedin with the Meta header name");
    assert_eq!(inbox_rows(rt, "facebook", &page), 0);
    assert_eq!(inbox_rows(rt, "linkedin", &li_org), 0);
    // Sanity: the untouched signatures are accepted.
    post_webhook(
        rt,
        "facebook",
        Some(("X-Hub-Signature-256", &good)),
        body.as_bytes(),
    )
    .expect(200);
    post_webhook(
        rt,
        "linkedin",
        Some(("X-LI-Signature", &li_good)),
        li_body.as_bytes(),
    )
    .expect(200);
}

fn webhook_signed_with_another_platforms_secret_is_refused(rt: &Runtime) {
    let page = unique_numeric_id();
    let body = facebook_delivery(&page);
    // LinkedIn's secret (in Meta's scheme and in LinkedIn's) on a Facebook delivery.
    for header in [
        meta_signature(LINKEDIN_CLIENT_SECRET, body.as_bytes()),
        format!(
            "sha256={}",
            linkedin_signature(LINKEDIN_CLIENT_SECRET, body.as_bytes())
        ),
        // The Instagram app secret is accepted for Instagram only, not for Facebook.
        meta_signature(INSTAGRAM_APP_SECRET, body.as_bytes()),
    ] {
        let resp = post_webhook(
            rt,
            "facebook",
            Some(("X-Hub-Signature-256", &header)),
            body.as_bytes(),
        );
        problem(resp, 401, "facebook signed with another platform's secret");
    }
    // Meta's secret (in either scheme) on a LinkedIn delivery.
    let li_org = unique_numeric_id();
    let li_body = linkedin_delivery(&li_org);
    for header in [
        linkedin_signature(META_APP_SECRET, li_body.as_bytes()),
        meta_signature(META_APP_SECRET, li_body.as_bytes())
            .trim_start_matches("sha256=")
            .to_string(),
        // LinkedIn's own secret, but over the body alone (Meta's scheme).
        meta_signature(LINKEDIN_CLIENT_SECRET, li_body.as_bytes())
            .trim_start_matches("sha256=")
            .to_string(),
    ] {
        let resp = post_webhook(
            rt,
            "linkedin",
            Some(("X-LI-Signature", &header)),
            li_body.as_bytes(),
        );
        problem(resp, 401, "linkedin signed with another secret or scheme");
    }
    assert_eq!(inbox_rows(rt, "facebook", &page), 0);
    assert_eq!(inbox_rows(rt, "linkedin", &li_org), 0);
    // Instagram accepts the Instagram app secret (docs/webhooks.md).
    let ig_account = unique_numeric_id();
    let ig_body = json!({"object": "instagram", "entry": [{"id": ig_account, "time": 1764000000, "changes": []}]}).to_string();
    post_webhook(
        rt,
        "instagram",
        Some((
            "X-Hub-Signature-256",
            &meta_signature(INSTAGRAM_APP_SECRET, ig_body.as_bytes()),
        )),
        ig_body.as_bytes(),
    )
    .expect(200);
}

fn webhook_replay_is_deduplicated(rt: &Runtime) {
    let page = unique_numeric_id();
    let body = facebook_delivery(&page);
    let signature = meta_signature(META_APP_SECRET, body.as_bytes());
    for attempt in 0..4 {
        let resp = post_webhook(
            rt,
            "facebook",
            Some(("X-Hub-Signature-256", &signature)),
            body.as_bytes(),
        );
        assert_eq!(resp.status, 200, "delivery {attempt}: {}", resp.body);
    }
    assert_eq!(
        inbox_rows(rt, "facebook", &page),
        1,
        "a replay made a second inbox row"
    );
    let li_org = unique_numeric_id();
    let li_body = linkedin_delivery(&li_org);
    let li_signature = linkedin_signature(LINKEDIN_CLIENT_SECRET, li_body.as_bytes());
    for header in [li_signature.clone(), format!("hmacsha256={li_signature}")] {
        post_webhook(
            rt,
            "linkedin",
            Some(("X-LI-Signature", &header)),
            li_body.as_bytes(),
        )
        .expect(200);
    }
    assert_eq!(inbox_rows(rt, "linkedin", &li_org), 1);
}

// ---------------------------------------------------------------------------------------------
// Hostile bodies

fn oversized_bodies_answer_413(rt: &Runtime) {
    let admin = token(&unique_org("sec-size"), "admin");
    // API: 256 KiB (functions/api/src/request.rs MAX_API_BODY_BYTES).
    let filler = "x".repeat(256 * 1024);
    let body = json!({"first_name": "Big", "source_detail": {"note": filler}}).to_string();
    let resp = rt
        .post("/v1/leads")
        .bearer(&admin)
        .header("Content-Type", "application/json")
        .send_bytes(body.as_bytes());
    problem(resp, 413, "API body over 256 KiB");
    // Refused before authentication is even looked at, too.
    let resp = rt
        .post("/v1/leads")
        .header("Content-Type", "application/json")
        .send_bytes(body.as_bytes());
    assert!(matches!(resp.status, 401 | 413), "{}", resp.status);
    // Webhooks: 1 MiB (functions/webhooks/src/lib.rs MAX_DELIVERY_BYTES), signature valid or not.
    let page = unique_numeric_id();
    let big = json!({"object": "page", "entry": [{"id": page, "time": 1, "changes": []}], "pad": "y".repeat(1024 * 1024)}).to_string();
    let signature = meta_signature(META_APP_SECRET, big.as_bytes());
    problem(
        post_webhook(
            rt,
            "facebook",
            Some(("X-Hub-Signature-256", &signature)),
            big.as_bytes(),
        ),
        413,
        "webhook body over 1 MiB",
    );
    assert_eq!(inbox_rows(rt, "facebook", &page), 0);
    // Tracking: 8 KiB (shared/src/tracking.rs MAX_BODY_BYTES).
    let settings = rt
        .get("/v1/tracking")
        .bearer(&admin)
        .send_empty()
        .expect(200)
        .json();
    let site_key = settings["site_key"].as_str().unwrap();
    let event = json!({"visitor_id": "v-big", "type": "page_view", "url": format!("https://example.com/{}", "z".repeat(9000))}).to_string();
    let resp = rt
        .post(&format!("/track/{site_key}"))
        .header("Content-Type", "application/json")
        .send_bytes(event.as_bytes());
    problem(resp, 413, "tracking body over 8 KiB");
    // The API still answers afterwards.
    rt.get("/v1/leads").bearer(&admin).send_empty().expect(200);
}

fn malformed_json_answers_400_problem(rt: &Runtime) {
    let org = unique_org("sec-json");
    let admin = token(&org, "admin");
    let lead = create_lead(rt, &admin, &json!({"first_name": "Json"}));
    let id = lead["id"].as_str().unwrap();
    let bodies: [&[u8]; 7] = [
        b"{\"first_name\":",
        b"{first_name: 'x'}",
        b"",
        b"\xff\xfe{}",
        b"{\"first_name\":\"a\"} trailing",
        b"[1,2,",
        b"{\"a\":1,}",
    ];
    let routes = [
        ("POST", "/v1/leads".to_string()),
        ("PATCH", format!("/v1/leads/{id}")),
        ("POST", format!("/v1/leads/{id}/interactions")),
        ("PUT", "/v1/scoring".to_string()),
        ("POST", "/v1/custom-fields".to_string()),
    ];
    for (method, route) in &routes {
        for body in bodies {
            let resp = rt
                .request(method, route)
                .bearer(&admin)
                .header("Content-Type", "application/json")
                .send_bytes(body);
            let problem_body = problem(
                resp,
                400,
                &format!("{method} {route} with {:?}", String::from_utf8_lossy(body)),
            );
            assert!(
                problem_body["type"].as_str().unwrap().contains("json")
                    || problem_body["type"]
                        .as_str()
                        .unwrap()
                        .contains("bad-request"),
                "{problem_body}"
            );
        }
    }
    // Tracking too.
    let settings = rt
        .get("/v1/tracking")
        .bearer(&admin)
        .send_empty()
        .expect(200)
        .json();
    let site_key = settings["site_key"].as_str().unwrap();
    let resp = rt
        .post(&format!("/track/{site_key}"))
        .header("Content-Type", "application/json")
        .send_bytes(b"{\"visitor_id\":");
    problem(resp, 400, "tracking with malformed JSON");
}

fn deeply_nested_json_is_refused_without_harm(rt: &Runtime) {
    let admin = token(&unique_org("sec-deep"), "admin");
    let depth = 10_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let unbalanced = "[".repeat(depth * 2);
    let inside_lead = format!("{{\"first_name\":\"Deep\",\"source_detail\":{{\"x\":{arrays}}}}}");
    for (name, body) in [
        ("arrays", &arrays),
        ("objects", &objects),
        ("unbalanced", &unbalanced),
        ("inside a lead", &inside_lead),
    ] {
        let resp = rt
            .post("/v1/leads")
            .bearer(&admin)
            .header("Content-Type", "application/json")
            .send_bytes(body.as_bytes());
        let status = resp.status;
        assert!(
            matches!(status, 400 | 413 | 422),
            "{name}: {status} {:.300}",
            resp.body
        );
        problem(resp, status, name);
    }
    // Webhooks: a correctly signed, deeply nested delivery is refused (not stored, no crash).
    let signature = meta_signature(META_APP_SECRET, arrays.as_bytes());
    let resp = post_webhook(
        rt,
        "facebook",
        Some(("X-Hub-Signature-256", &signature)),
        arrays.as_bytes(),
    );
    assert!(
        matches!(resp.status, 400 | 422),
        "nested webhook: {} {:.300}",
        resp.status,
        resp.body
    );
    // Tracking (8 KiB allows some 4,000 levels).
    let settings = rt
        .get("/v1/tracking")
        .bearer(&admin)
        .send_empty()
        .expect(200)
        .json();
    let site_key = settings["site_key"].as_str().unwrap();
    let tracked = format!("{}{}", "[".repeat(4000), "]".repeat(4000));
    let resp = rt
        .post(&format!("/track/{site_key}"))
        .header("Content-Type", "application/json")
        .send_bytes(tracked.as_bytes());
    assert!(
        matches!(resp.status, 400 | 422),
        "nested tracking: {}",
        resp.status
    );
    // Every worker still answers, and a normal request works.
    rt.get("/v1/health").send_empty().expect(200);
    rt.get("/webhooks/health").send_empty().expect(200);
    let lead = create_lead(rt, &admin, &json!({"first_name": "After the deep one"}));
    assert_eq!(lead["first_name"], "After the deep one");
}

fn wrong_content_type_answers_415(rt: &Runtime) {
    let admin = token(&unique_org("sec-ctype"), "admin");
    let body = json!({"first_name": "Typed"}).to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/xml"),
        Some("text/json"),
        None,
    ] {
        let mut req = rt.post("/v1/leads").bearer(&admin);
        if let Some(content_type) = content_type {
            req = req.header("Content-Type", content_type);
        }
        let resp = req.send_bytes(body.as_bytes());
        problem(resp, 415, &format!("Content-Type {content_type:?}"));
    }
    // Parameters and case are fine.
    let resp = rt
        .post("/v1/leads")
        .bearer(&admin)
        .header("Content-Type", "Application/JSON; charset=utf-8")
        .send_bytes(body.as_bytes());
    assert!(
        matches!(resp.status, 200 | 201),
        "{} {}",
        resp.status,
        resp.body
    );
    // Tracking accepts JSON or text/plain (sendBeacon), nothing else.
    let settings = rt
        .get("/v1/tracking")
        .bearer(&admin)
        .send_empty()
        .expect(200)
        .json();
    let site_key = settings["site_key"].as_str().unwrap();
    let event = json!({"visitor_id": "v-ctype", "type": "page_view"}).to_string();
    let resp = rt
        .post(&format!("/track/{site_key}"))
        .header("Content-Type", "application/xml")
        .send_bytes(event.as_bytes());
    problem(resp, 415, "tracking as application/xml");
}

// ---------------------------------------------------------------------------------------------
// SQL injection

fn sql_injection_strings_in_lead_fields_are_stored_verbatim(rt: &Runtime) {
    let org = unique_org("sec-sqli");
    let admin = token(&org, "admin");
    rt.post("/v1/custom-fields")
        .bearer(&admin)
        .send_json(&json!({"key": "notes", "label": "Notes", "type": "text"}))
        .expect(201);
    for (i, payload) in INJECTIONS.iter().enumerate() {
        let body = json!({
            "first_name": payload,
            "last_name": payload,
            "company": payload,
            "title": payload,
            "email": format!("o'brien-{i}-{}--@example.com", unique_suffix()),
            "owner_id": payload,
            "tags": [payload, format!("{payload} {i}")],
            "source": "referral",
            "source_detail": {"campaign": payload, "form": payload, "page": payload},
            "custom_fields": {"notes": payload},
            "social_profiles": [{
                "platform": "linkedin",
                "platform_user_id": format!("{payload}-{}", unique_suffix()),
                "handle": payload,
                "url": "https://www.linkedin.com/in/x'--"
            }]
        });
        let resp = rt.post("/v1/leads").bearer(&admin).send_json(&body);
        assert_eq!(resp.status, 201, "{payload}: {}", resp.body);
        assert_no_leak(&resp.body, payload);
        let lead = resp.json();
        let id = lead["id"].as_str().unwrap();
        let fetched = rt
            .get(&format!("/v1/leads/{id}"))
            .bearer(&admin)
            .send_empty()
            .expect(200)
            .json();
        for field in ["first_name", "last_name", "company", "title", "owner_id"] {
            assert_eq!(fetched[field], *payload, "{field} of {fetched}");
        }
        assert_eq!(fetched["email"], body["email"], "{fetched}");
        assert_eq!(fetched["tags"][0], *payload, "{fetched}");
        assert_eq!(fetched["source_detail"]["campaign"], *payload, "{fetched}");
        assert_eq!(fetched["custom_fields"]["notes"], *payload, "{fetched}");
        assert_eq!(
            fetched["social_profiles"][0]["handle"], *payload,
            "{fetched}"
        );
        assert_eq!(
            fetched["social_profiles"][0]["platform_user_id"],
            body["social_profiles"][0]["platform_user_id"]
        );
        // Updates and touchpoints carry them verbatim too.
        let patched = rt
            .request("PATCH", &format!("/v1/leads/{id}"))
            .bearer(&admin)
            .send_json(&json!({"title": format!("{payload} (2)"), "tags": [payload]}))
            .expect(200)
            .json();
        assert_eq!(patched["title"], format!("{payload} (2)"));
        let touched = rt
            .post(&format!("/v1/leads/{id}/interactions"))
            .bearer(&admin)
            .send_json(&json!({"type": "note", "platform": "other", "metadata": {"text": payload}, "external_id": payload}))
            .expect(201)
            .json();
        assert_eq!(touched["interaction"]["metadata"]["text"], *payload);
        let export = rt
            .get(&format!("/v1/leads/{id}/export"))
            .bearer(&admin)
            .send_empty()
            .expect(200);
        assert!(
            contains_string(&export.json(), payload),
            "export lacks {payload:?}: {}",
            export.body
        );
    }
    // The table is intact on every shard (other tests write to it at the same time, so count this
    // org's rows) and holds exactly the new rows, verbatim.
    let total: i64 = rt
        .query_shards("SELECT count(*) FROM leads", [], |row| row.get::<_, i64>(0))
        .into_iter()
        .sum();
    assert!(total >= INJECTIONS.len() as i64);
    let conn = rt.org_db(&org);
    let mine: i64 = conn
        .query_row(
            "SELECT count(*) FROM leads WHERE org_id = ?1",
            [&org],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(mine, INJECTIONS.len() as i64);
    let stored: i64 = conn
        .query_row(
            "SELECT count(*) FROM leads WHERE org_id = ?1 AND first_name IN (?2, ?3, ?4)",
            [&org, INJECTIONS[0], INJECTIONS[1], INJECTIONS[2]],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(stored, 3);
}

fn sql_injection_strings_in_list_filters_are_harmless(rt: &Runtime) {
    let victim = token(&unique_org("sec-sqli-victim"), "admin");
    let victim_lead = create_lead(
        rt,
        &victim,
        &json!({"first_name": "Hidden", "last_name": "OR"}),
    );
    let victim_id = victim_lead["id"].as_str().unwrap().to_string();
    let org = unique_org("sec-sqli-list");
    let admin = token(&org, "admin");
    rt.post("/v1/custom-fields")
        .bearer(&admin)
        .send_json(&json!({"key": "segment", "label": "Segment", "type": "text"}))
        .expect(201);
    let mut own = Vec::new();
    for payload in INJECTIONS {
        let lead = create_lead(
            rt,
            &admin,
            &json!({"first_name": payload, "last_name": "OR 1", "tags": [payload], "custom_fields": {"segment": payload}}),
        );
        own.push(lead["id"].as_str().unwrap().to_string());
    }
    let lead_id = own[0].clone();
    let params = [
        "q",
        "heat_level",
        "source",
        "stage_id",
        "owner_id",
        "tag",
        "min_score",
        "max_score",
        "sort",
        "limit",
        "cursor",
        "created_from",
        "created_to",
        "last_interaction_from",
        "cf.segment",
        "cf.x'--",
    ];
    for payload in INJECTIONS {
        for param in params {
            let path = format!("/v1/leads?{}={}", urlencode(param), urlencode(payload));
            let resp = rt.get(&path).bearer(&admin).send_empty();
            assert!(
                matches!(resp.status, 200 | 422),
                "{path}: {} {}",
                resp.status,
                resp.body
            );
            assert_no_leak(&resp.body, &path);
            assert!(
                !resp.body.contains(&victim_id),
                "{path} leaked another org's lead"
            );
            if resp.status == 200 {
                for item in resp.json()["items"].as_array().unwrap() {
                    let id = item["id"].as_str().unwrap();
                    assert!(
                        own.iter().any(|o| o == id),
                        "{path} returned a foreign lead {id}"
                    );
                }
            }
        }
        // Exact-match filters find the verbatim value, and only it.
        for (param, expected) in [("tag", 1), ("cf.segment", 1)] {
            let path = format!("/v1/leads?{param}={}", urlencode(payload));
            let items = rt.get(&path).bearer(&admin).send_empty().expect(200).json()["items"]
                .as_array()
                .unwrap()
                .len();
            assert_eq!(items, expected, "{path}");
        }
        for route in [
            format!("/v1/leads/{lead_id}/timeline"),
            "/v1/feed".to_string(),
            "/v1/pipeline/board".to_string(),
            "/v1/dashboard".to_string(),
        ] {
            for param in [
                "type",
                "platform",
                "from",
                "to",
                "cursor",
                "limit",
                "stage_id",
                "window_days",
            ] {
                let path = format!("{route}?{param}={}", urlencode(payload));
                let resp = rt.get(&path).bearer(&admin).send_empty();
                assert!(
                    matches!(resp.status, 200 | 404 | 422),
                    "{path}: {} {}",
                    resp.status,
                    resp.body
                );
                assert_no_leak(&resp.body, &path);
                assert!(!resp.body.contains(&victim_id), "{path} leaked");
            }
        }
        // Ids in the path.
        for route in [
            format!("/v1/leads/{}", urlencode(payload)),
            format!("/v1/leads/{}/timeline", urlencode(payload)),
        ] {
            let resp = rt.get(&route).bearer(&admin).send_empty();
            problem(resp, 404, &route);
        }
    }
    // The free-text search for `" OR 1=1 --` matches words, not everything: the victim's
    // `OR` lead is never among the results, and the tables are intact on every shard.
    for table in ["leads", "interactions", "leads_fts"] {
        let count: i64 = rt
            .query_shards(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get::<_, i64>(0)
            })
            .into_iter()
            .sum();
        assert!(count > 0 || table == "interactions", "{table} is empty");
    }
    rt.get(&format!("/v1/leads/{victim_id}"))
        .bearer(&victim)
        .send_empty()
        .expect(200);
}

// ---------------------------------------------------------------------------------------------
// Secrets

fn access_tokens_never_appear_in_responses_logs_or_storage(rt: &Runtime) {
    let org = unique_org("sec-token");
    let admin = token(&org, "admin");
    let marker = format!("EAAGtoken{}", unique_suffix());
    let puts = [
        (
            "facebook",
            json!({"page_ids": [unique_numeric_id()], "access_token": format!("{marker}-fb")}),
        ),
        (
            "instagram",
            json!({"account_ids": [unique_numeric_id()], "access_token": format!("{marker}-ig")}),
        ),
        (
            "linkedin",
            json!({"organization_ids": [unique_numeric_id()], "sponsored_account_ids": [unique_numeric_id()], "access_token": format!("{marker}-li")}),
        ),
    ];
    for (platform, body) in &puts {
        Stub::shared().grant_connect_body(platform, body);
        let resp = rt
            .request("PUT", &format!("/v1/integrations/{platform}"))
            .bearer(&admin)
            .send_json(body);
        assert_eq!(resp.status, 200, "PUT {platform}: {}", resp.body);
        assert!(
            !resp.body.contains(&marker),
            "PUT {platform} returned the token"
        );
    }
    // A refused write does not echo the token either.
    let resp = rt
        .request("PUT", "/v1/integrations/facebook")
        .bearer(&admin)
        .send_json(
            &json!({"page_ids": "not-a-list", "access_token": format!("{marker}-bad"), "extra": 1}),
        );
    assert_eq!(resp.status, 422, "{}", resp.body);
    assert!(!resp.body.contains(&marker));
    // Reads, in every shape.
    for path in ["/v1/integrations", "/v1/leads", "/v1/dashboard"] {
        let resp = rt.get(path).bearer(&admin).send_empty().expect(200);
        assert!(!resp.body.contains(&marker), "{path} returned the token");
    }
    let list = rt
        .get("/v1/integrations")
        .bearer(&admin)
        .send_empty()
        .json();
    for item in list["items"].as_array().unwrap() {
        assert_eq!(item["connected"], true, "{item}");
        assert!(item.get("access_token").is_none(), "{item}");
    }
    // Not in the runtime's log (give the workers a moment to flush).
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !rt.log().contains(&marker),
        "the runtime log contains an access token"
    );
    // Stored sealed: no column of the integrations table holds it in the clear.
    let conn = rt.org_db(&org);
    let mut stmt = conn
        .prepare("SELECT * FROM integrations WHERE org_id = ?1")
        .unwrap();
    let columns = stmt.column_count();
    let mut rows = stmt.query([&org]).unwrap();
    let mut seen = 0;
    while let Some(row) = rows.next().unwrap() {
        seen += 1;
        for i in 0..columns {
            if let Ok(Some(text)) = row.get::<_, Option<String>>(i) {
                assert!(
                    !text.contains(&marker),
                    "column {i} stores the token in the clear"
                );
            }
        }
    }
    assert_eq!(seen, 3);
}

fn idempotency_keys_are_scoped_to_the_org(rt: &Runtime) {
    let key = format!("idem-{}", unique_suffix());
    let first = token(&unique_org("sec-idem-a"), "admin");
    let second = token(&unique_org("sec-idem-b"), "admin");
    let a = rt
        .post("/v1/leads")
        .bearer(&first)
        .header("Idempotency-Key", &key)
        .send_json(&json!({"first_name": "Alice", "company": "Secret Co"}));
    assert_eq!(a.status, 201, "{}", a.body);
    let a = a.json();
    let b = rt
        .post("/v1/leads")
        .bearer(&second)
        .header("Idempotency-Key", &key)
        .send_json(&json!({"first_name": "Alice", "company": "Secret Co"}));
    assert!(matches!(b.status, 200 | 201), "{} {}", b.status, b.body);
    let b = b.json();
    assert_ne!(
        a["id"], b["id"],
        "another org's cached response was replayed"
    );
    problem(
        rt.get(&format!("/v1/leads/{}", a["id"].as_str().unwrap()))
            .bearer(&second)
            .send_empty(),
        404,
        "the first org's lead from the second",
    );
}

// ---------------------------------------------------------------------------------------------
// Tracking

fn site_key(rt: &Runtime, bearer: &str) -> String {
    rt.get("/v1/tracking")
        .bearer(bearer)
        .send_empty()
        .expect(200)
        .json()["site_key"]
        .as_str()
        .unwrap()
        .to_string()
}

fn track(rt: &Runtime, site_key: &str, event: &Value) -> Resp {
    rt.post(&format!("/track/{site_key}"))
        .header("Content-Type", "application/json")
        .send_json(event)
}

fn tracking_is_rate_limited_per_visitor(rt: &Runtime) {
    let admin = token(&unique_org("sec-rate"), "admin");
    let key = site_key(rt, &admin);
    let visitor = format!("v-rate-{}", unique_suffix());
    // 120 events per visitor per 60-second window (shared/src/tracking.rs); a window may roll
    // over during the loop, so allow up to two windows' worth before the 429.
    let mut accepted = 0;
    let mut limited = None;
    for i in 0..300 {
        let resp = track(
            rt,
            &key,
            &json!({"visitor_id": visitor, "type": "page_view", "url": format!("https://example.com/p{i}")}),
        );
        match resp.status {
            202 => accepted += 1,
            429 => {
                limited = Some(resp);
                break;
            }
            other => panic!("event {i}: {other} {}", resp.body),
        }
    }
    let limited = limited.expect("no 429 after 300 events of one visitor");
    assert!(accepted >= 120, "limited after only {accepted} events");
    let body = problem(limited, 429, "rate limited");
    assert!(
        body["type"].as_str().unwrap().ends_with("rate-limited"),
        "{body}"
    );
    // Another visitor of the same site is not affected.
    track(
        rt,
        &key,
        &json!({"visitor_id": format!("{visitor}-other"), "type": "page_view"}),
    )
    .expect(202);
    // An unknown site key is 404, not an oracle of anything.
    problem(
        track(
            rt,
            "no-such-site-key",
            &json!({"visitor_id": "v", "type": "page_view"}),
        ),
        404,
        "unknown site key",
    );
}

fn tracking_never_creates_a_lead_without_identity(rt: &Runtime) {
    let admin = token(&unique_org("sec-anon"), "admin");
    let key = site_key(rt, &admin);
    let visitor = format!("v-anon-{}", unique_suffix());
    for event in [
        json!({"visitor_id": visitor, "type": "page_view", "url": "https://example.com/"}),
        json!({"visitor_id": visitor, "type": "info_request"}),
        json!({"visitor_id": visitor, "type": "price_quote", "identity": null}),
    ] {
        track(rt, &key, &event).expect(202);
    }
    // An identity without an email or phone is refused, as are hostile ones.
    for identity in [
        json!({"first_name": "Anon"}),
        json!({"email": "not-an-email"}),
        json!({"email": "'; DROP TABLE leads; --"}),
        json!({"phone": "\" OR 1=1 --"}),
        json!({"email": format!("{}@example.com", "a".repeat(300))}),
    ] {
        let resp = track(
            rt,
            &key,
            &json!({"visitor_id": visitor, "type": "info_request", "identity": identity}),
        );
        problem(resp, 422, &format!("identity {identity}"));
    }
    // Hostile visitor ids are refused too.
    for visitor_id in ["'; DROP TABLE leads; --", "", &"v".repeat(200)] {
        let resp = track(
            rt,
            &key,
            &json!({"visitor_id": visitor_id, "type": "page_view"}),
        );
        problem(resp, 422, &format!("visitor id {visitor_id:.20}"));
    }
    let leads = rt
        .get("/v1/leads")
        .bearer(&admin)
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(
        leads["items"].as_array().unwrap().len(),
        0,
        "an anonymous visitor became a lead: {leads}"
    );
}
