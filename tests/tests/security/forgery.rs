//! Security suite: the verification handshakes can never be used to forge a webhook delivery.
//!
//! The attack this guards against: LinkedIn's delivery signature is HMAC(client secret,
//! `hmacsha256=` + body), and its endpoint validation answers HMAC(client secret, challengeCode).
//! A server that answered any code would sign any body for anyone.

use leadheat_e2e::runner::E2eTest;
use leadheat_e2e::social::{connect, numeric_id};
use leadheat_e2e::{
    hmac_sha256, unique_org, urlencode, Runtime, LINKEDIN_CLIENT_SECRET, META_VERIFY_TOKEN,
};
use serde_json::{json, Value};

pub const TESTS: &[E2eTest] = &[
    (
        "linkedin_challenge_cannot_sign_a_forged_delivery",
        linkedin_challenge_cannot_sign_a_forged_delivery,
    ),
    (
        "linkedin_challenge_answers_only_uuid_codes",
        linkedin_challenge_answers_only_uuid_codes,
    ),
    (
        "meta_handshake_echoes_only_a_genuine_subscription",
        meta_handshake_echoes_only_a_genuine_subscription,
    ),
];

/// LinkedIn deliveries stored for the account: inbox rows on any shard, or unrouted ones.
fn inbox_rows(rt: &Runtime, account: &str) -> i64 {
    rt.inbox_rows(account)
        .iter()
        .filter(|row| row.platform == "linkedin")
        .count() as i64
}

/// The 400 problem naming `field`.
fn assert_bad_request_naming(status: u16, body: &str, field: &str, context: &str) {
    assert_eq!(status, 400, "{context}: {body}");
    let problem: Value = serde_json::from_str(body).expect("a problem+json body");
    let named = problem["errors"]
        .as_array()
        .is_some_and(|errors| errors.iter().any(|e| e["field"] == field));
    assert!(named, "{context}: the problem names {field}: {problem}");
}

/// The attack of the report, byte for byte: ask the validation endpoint to "answer" the challenge
/// `hmacsha256=<JSON>`, then post the JSON with that answer as its `X-LI-Signature`.
fn linkedin_challenge_cannot_sign_a_forged_delivery(rt: &Runtime) {
    let org = unique_org("forgery");
    let organization = numeric_id();
    connect(
        rt,
        &org,
        "linkedin",
        json!({"organization_ids": [organization], "access_token": format!("AQ-forgery-{organization}")}),
    );
    let forged = json!({
        "type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS",
        "notifications": [{
            "action": "COMMENT", "notificationId": 77,
            "organizationalEntity": format!("urn:li:organization:{organization}"),
            "sourcePost": "urn:li:share:1", "actor": "urn:li:person:mallory",
            "decoratedSourcePost": {"text": "injected"},
            "lastModifiedAt": 1764000000000u64
        }]
    })
    .to_string();
    let code = format!("hmacsha256={forged}");

    let answer = rt
        .get(&format!(
            "/webhooks/linkedin?challengeCode={}",
            urlencode(&code)
        ))
        .send_empty();
    let oracle = serde_json::from_str::<Value>(&answer.body)
        .ok()
        .and_then(|v| v["challengeResponse"].as_str().map(str::to_string));
    // Had the endpoint answered, its answer would be a valid signature of the forged body.
    let would_sign = hex::encode(hmac_sha256(
        LINKEDIN_CLIENT_SECRET.as_bytes(),
        code.as_bytes(),
    ));
    assert_ne!(
        oracle.as_deref(),
        Some(would_sign.as_str()),
        "the handshake signed attacker text"
    );
    assert_bad_request_naming(answer.status, &answer.body, "challengeCode", "forged code");

    // The attacker holds only what the handshake gave them.
    let posted = rt
        .post("/webhooks/linkedin")
        .header("Content-Type", "application/json")
        .header("X-LI-Signature", oracle.as_deref().unwrap_or_default())
        .send_bytes(forged.as_bytes());
    assert_eq!(posted.status, 401, "the forged delivery: {}", posted.body);
    assert_eq!(
        inbox_rows(rt, &organization),
        0,
        "nothing of the forged delivery is stored"
    );
}

fn linkedin_challenge_answers_only_uuid_codes(rt: &Runtime) {
    let uuid = "890e4665-4dfe-4ab1-b689-ed553bceeed0";
    let answer = rt
        .get(&format!("/webhooks/linkedin?challengeCode={uuid}"))
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(answer["challengeCode"], uuid);
    assert_eq!(
        answer["challengeResponse"],
        hex::encode(hmac_sha256(
            LINKEDIN_CLIENT_SECRET.as_bytes(),
            uuid.as_bytes()
        ))
    );
    for code in [
        "f9a1b2c3-challenge",
        "890e4665-4dfe-4ab1-b689-ed553bceeed",
        "890e46654dfe4ab1b689ed553bceeed0",
        "890e4665-4dfe-4ab1-b689-ed553bceeed0x",
        "hmacsha256=890e4665-4dfe-4ab1-b689-ed553bceeed0",
        "{\"a\":1}",
        "",
    ] {
        let refused = rt
            .get(&format!(
                "/webhooks/linkedin?challengeCode={}",
                urlencode(code)
            ))
            .send_empty();
        assert_bad_request_naming(refused.status, &refused.body, "challengeCode", code);
        assert!(!refused.body.contains("challengeResponse"), "{code}");
    }
    let missing = rt.get("/webhooks/linkedin").send_empty();
    assert_bad_request_naming(missing.status, &missing.body, "challengeCode", "no code");
}

fn meta_handshake_echoes_only_a_genuine_subscription(rt: &Runtime) {
    let token = urlencode(META_VERIFY_TOKEN);
    for platform in ["facebook", "instagram"] {
        let ok = rt
            .get(&format!(
                "/webhooks/{platform}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444"
            ))
            .send_empty()
            .expect(200);
        assert_eq!(ok.body, "1158201444");
        assert_eq!(ok.header("x-content-type-options"), Some("nosniff"));

        // Only `subscribe` with the right token is answered; nothing is echoed otherwise.
        for (query, status) in [
            (
                format!("hub.mode=unsubscribe&hub.verify_token={token}&hub.challenge=42"),
                403,
            ),
            (format!("hub.verify_token={token}&hub.challenge=42"), 403),
            (
                "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=42".to_string(),
                403,
            ),
            (
                format!("hub.mode=subscribe&hub.verify_token={token}x&hub.challenge=42"),
                403,
            ),
        ] {
            let refused = rt
                .get(&format!("/webhooks/{platform}?{query}"))
                .send_empty();
            assert_eq!(refused.status, status, "{query}: {}", refused.body);
            assert!(!refused.body.contains("42\""), "{query}");
        }
        // A genuine subscription still never reflects markup, JSON or signature-shaped text.
        for challenge in [
            "<script>alert(1)</script>",
            "hmacsha256={\"type\":\"x\"}",
            "sha256=abc",
            &"9".repeat(129),
        ] {
            let refused = rt
                .get(&format!(
                    "/webhooks/{platform}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge={}",
                    urlencode(challenge)
                ))
                .send_empty();
            assert_bad_request_naming(refused.status, &refused.body, "hub.challenge", challenge);
            assert!(!refused.body.contains(challenge), "{challenge} was echoed");
        }
    }
}
