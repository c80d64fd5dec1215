//! End-to-end tests of the webhooks and the social sync (issue 4): handshakes, signatures, the
//! inbox and its dedupe, every platform's events becoming leads and touchpoints, lead forms fetched
//! from a stub of the platform APIs, retries, throttling, dead letters and replay, reconciliation
//! after a lost queue message, and the integrations API.
//!
//! The runtime's `META_GRAPH_BASE_URL` and `LINKEDIN_API_BASE_URL` point at [`Stub`]. Each test
//! uses its own org and platform account ids. Firing the sync cron reaches every org's due events,
//! so the tests that fire it or watch an event wait run one at a time (`serial`).

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use leadheat_domain::delivery::MAX_EVENTS_PER_PART;
use leadheat_e2e::runner::{run, E2eTest};
use leadheat_e2e::social::{
    connect, connect_page, fire_sync, numeric_id, page_event, post_linkedin, post_meta, rfc3339,
};
use leadheat_e2e::stub::{Mode, Stub};
use leadheat_e2e::{
    hmac_sha256, linkedin_signature, meta_signature, token, unique_org, unique_suffix, unix_now,
    urlencode, Runtime, INSTAGRAM_APP_SECRET, LINKEDIN_CLIENT_SECRET, META_APP_SECRET,
    META_VERIFY_TOKEN,
};
use rusqlite::OptionalExtension;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

fn main() {
    let tests: &[E2eTest] = &[
        (
            "meta_handshake_echoes_or_refuses",
            meta_handshake_echoes_or_refuses,
        ),
        (
            "linkedin_handshake_answers_the_challenge",
            linkedin_handshake_answers_the_challenge,
        ),
        (
            "meta_signatures_are_checked_before_storing",
            meta_signatures_are_checked_before_storing,
        ),
        (
            "instagram_accepts_either_app_secret",
            instagram_accepts_either_app_secret,
        ),
        (
            "linkedin_signature_with_and_without_prefix",
            linkedin_signature_with_and_without_prefix,
        ),
        (
            "oversized_delivery_is_refused",
            oversized_delivery_is_refused,
        ),
        (
            "integrations_api_connects_seals_and_disconnects",
            integrations_api_connects_seals_and_disconnects,
        ),
        (
            "facebook_leadgen_creates_a_scored_lead_from_the_form",
            facebook_leadgen_creates_a_scored_lead_from_the_form,
        ),
        (
            "likes_comments_and_messages_raise_a_known_profile",
            likes_comments_and_messages_raise_a_known_profile,
        ),
        (
            "the_same_delivery_three_times_is_one_touchpoint",
            the_same_delivery_three_times_is_one_touchpoint,
        ),
        (
            "a_batch_of_many_entries_and_accounts",
            a_batch_of_many_entries_and_accounts,
        ),
        (
            "unknown_page_is_answered_and_ignored",
            unknown_page_is_answered_and_ignored,
        ),
        (
            "instagram_comments_messages_and_story_insights",
            instagram_comments_messages_and_story_insights,
        ),
        (
            "linkedin_lead_sync_and_social_actions",
            linkedin_lead_sync_and_social_actions,
        ),
        (
            "outage_retries_then_recovers_without_loss",
            outage_retries_then_recovers_without_loss,
        ),
        (
            "failing_event_dies_after_bounded_attempts",
            failing_event_dies_after_bounded_attempts,
        ),
        (
            "permanent_failure_is_dead_then_replayed",
            permanent_failure_is_dead_then_replayed,
        ),
        (
            "meta_throttle_delays_further_calls",
            meta_throttle_delays_further_calls,
        ),
        (
            "linkedin_429_waits_for_retry_after",
            linkedin_429_waits_for_retry_after,
        ),
        (
            "invalid_token_needs_a_new_token_then_replays",
            invalid_token_needs_a_new_token_then_replays,
        ),
        (
            "reconciliation_recovers_a_lost_queue_message",
            reconciliation_recovers_a_lost_queue_message,
        ),
        (
            "token_key_rotation_reseals_tokens_so_the_old_key_can_go",
            token_key_rotation_reseals_tokens_so_the_old_key_can_go,
        ),
    ];
    let stub = Stub::shared();
    let runtime = Runtime::start_with_env(&[
        ("META_GRAPH_BASE_URL", &stub.meta_base()),
        ("LINKEDIN_API_BASE_URL", &stub.linkedin_base()),
    ]);
    run(runtime, tests)
}

static SERIAL: Mutex<()> = Mutex::new(());

fn stub() -> &'static Stub {
    Stub::shared()
}

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

// ------------------------------------------------------------------------------------------------
// Helpers

fn integration(rt: &Runtime, org: &str, platform: &str) -> Value {
    let list = rt
        .get("/v1/integrations")
        .bearer(&token(org, "viewer"))
        .send_empty()
        .expect(200)
        .json();
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["platform"] == platform)
        .cloned()
        .expect("an entry per platform")
}

/// (status, attempts, last_error) of every inbox row of an account, oldest first. A delivery for an
/// account no org connected is kept in the directory without a status: ("ignored", 0, None).
fn inbox_rows(rt: &Runtime, account: &str) -> Vec<(String, i64, Option<String>)> {
    rt.inbox_rows(account)
        .into_iter()
        .map(|row| (row.status, row.attempts, row.last_error))
        .collect()
}

/// Waits until every inbox row of the account satisfies `done`, and returns them.
fn wait_rows(
    rt: &Runtime,
    account: &str,
    what: &str,
    done: impl Fn(&(String, i64, Option<String>)) -> bool,
) -> Vec<(String, i64, Option<String>)> {
    rt.wait_for(what, WAIT, || {
        let rows = inbox_rows(rt, account);
        (!rows.is_empty() && rows.iter().all(&done)).then_some(rows)
    })
}

fn wait_settled(rt: &Runtime, account: &str) -> Vec<(String, i64, Option<String>)> {
    wait_rows(rt, account, "the inbox rows to be processed", |r| {
        r.0 == "processed" || r.0 == "ignored" || r.0 == "dead"
    })
}

fn lead_by_email(rt: &Runtime, org: &str, email: &str) -> Option<Value> {
    let page = rt
        .get(&format!("/v1/leads?q={}", urlencode(email)))
        .bearer(&token(org, "viewer"))
        .send_empty()
        .expect(200)
        .json();
    page["items"]
        .as_array()?
        .iter()
        .find(|l| l["email"] == email)
        .cloned()
}

fn lead_by_profile(rt: &Runtime, org: &str, platform: &str, user: &str) -> Option<Value> {
    let id: Option<String> = rt.org_db(org)
        .query_row(
            "SELECT lead_id FROM social_profiles WHERE org_id = ?1 AND platform = ?2 AND platform_user_id = ?3",
            [org, platform, user],
            |r| r.get(0),
        )
        .optional()
        .unwrap();
    let id = id?;
    Some(
        rt.get(&format!("/v1/leads/{id}"))
            .bearer(&token(org, "viewer"))
            .send_empty()
            .expect(200)
            .json(),
    )
}

fn touchpoints(rt: &Runtime, org: &str, external_id: &str) -> Vec<(String, String, String)> {
    rt.org_db(org)
        .prepare(
            "SELECT type, captured_by, metadata FROM interactions WHERE org_id = ?1 AND external_id = ?2",
        )
        .unwrap()
        .query_map([org, external_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn set_weights(rt: &Runtime, org: &str, extra: Value) {
    let mut weights = json!({
        "social_follow": 1, "social_like": 1, "website_visit": 2,
        "info_request": 5, "price_quote": 8, "site_visit": 10
    });
    for (k, v) in extra.as_object().unwrap() {
        weights[k] = v.clone();
    }
    rt.request("PUT", "/v1/scoring")
        .bearer(&token(org, "admin"))
        .send_json(&json!({"weights": weights, "thresholds": {"warm": 6, "hot": 16}, "decay_half_life_days": null}))
        .expect(200);
}

fn leadgen_event(page: &str, leadgen_id: &str) -> Value {
    page_event(
        page,
        json!([{"field": "leadgen", "value": {
            "ad_id": "6100000000001", "form_id": "7100000000002", "leadgen_id": leadgen_id,
            "created_time": unix_now(), "page_id": page, "adgroup_id": "6100000000001"
        }}]),
    )
}

fn standard_fields(email: &str) -> Value {
    let digits = numeric_id();
    let phone = format!("+1 415 {}", &digits[digits.len() - 7..]);
    json!([
        {"name": "full_name", "values": ["Ada Lovelace"]},
        {"name": "email", "values": [email]},
        {"name": "phone_number", "values": [phone]},
        {"name": "company_name", "values": ["Analytical Engines Ltd"]},
        {"name": "job_title", "values": ["Head of Research"]},
        {"name": "budget", "values": ["10k-50k"]}
    ])
}

// ------------------------------------------------------------------------------------------------
// Handshakes and signatures

fn meta_handshake_echoes_or_refuses(rt: &Runtime) {
    for platform in ["facebook", "instagram"] {
        let ok = rt
            .get(&format!(
                "/webhooks/{platform}?hub.mode=subscribe&hub.verify_token={}&hub.challenge=1158201444",
                urlencode(META_VERIFY_TOKEN)
            ))
            .send_empty()
            .expect(200);
        assert_eq!(ok.body, "1158201444");
        assert!(ok.header("content-type").unwrap().starts_with("text/plain"));
        rt.get(&format!(
            "/webhooks/{platform}?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1"
        ))
        .send_empty()
        .expect(403);
        rt.get(&format!("/webhooks/{platform}?hub.challenge=1"))
            .send_empty()
            .expect(403);
    }
}

fn linkedin_handshake_answers_the_challenge(rt: &Runtime) {
    let code = "890e4a0a-4f2c-4c4e-9b5d-1c2d3e4f5a6b";
    let answer = rt
        .get(&format!("/webhooks/linkedin?challengeCode={code}"))
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(answer["challengeCode"], code);
    assert_eq!(
        answer["challengeResponse"],
        hex::encode(hmac_sha256(
            LINKEDIN_CLIENT_SECRET.as_bytes(),
            code.as_bytes()
        ))
    );
}

fn meta_signatures_are_checked_before_storing(rt: &Runtime) {
    let page = numeric_id();
    let body = page_event(
        &page,
        json!([{"field": "feed", "value": {"item": "reaction", "verb": "add", "reaction_type": "like",
            "post_id": format!("{page}_1"), "from": {"id": "1", "name": "X"}, "created_time": unix_now()}}]),
    )
    .to_string();
    let good = meta_signature(META_APP_SECRET, body.as_bytes());
    let send = |signature: Option<&str>, bytes: &[u8]| {
        let mut req = rt
            .post("/webhooks/facebook")
            .header("Content-Type", "application/json");
        if let Some(signature) = signature {
            req = req.header("X-Hub-Signature-256", signature);
        }
        req.send_bytes(bytes)
    };
    let tampered = body.replace("\"X\"", "\"Y\"");
    assert_eq!(send(Some(&good), tampered.as_bytes()).status, 401);
    let wrong = meta_signature("not-the-secret", body.as_bytes());
    assert_eq!(send(Some(&wrong), body.as_bytes()).status, 401);
    assert_eq!(send(None, body.as_bytes()).status, 401);
    assert_eq!(send(Some("sha256=zz"), body.as_bytes()).status, 401);
    // The Instagram secret does not sign Facebook deliveries.
    let instagram = meta_signature(INSTAGRAM_APP_SECRET, body.as_bytes());
    assert_eq!(send(Some(&instagram), body.as_bytes()).status, 401);
    assert!(inbox_rows(rt, &page).is_empty(), "nothing is stored");
    let response = send(Some(&good), body.as_bytes()).expect(200);
    assert_eq!(response.json()["received"], true);
    assert_eq!(inbox_rows(rt, &page).len(), 1);
}

fn instagram_accepts_either_app_secret(rt: &Runtime) {
    for secret in [INSTAGRAM_APP_SECRET, META_APP_SECRET] {
        let account = numeric_id();
        let body = json!({"object": "instagram", "entry": [{"id": account, "time": unix_now(), "changes": [
            {"field": "comments", "value": {"id": numeric_id(), "text": "hi", "from": {"id": "5", "username": "u"}, "media": {"id": "9"}}}
        ]}]})
        .to_string();
        rt.post("/webhooks/instagram")
            .header(
                "X-Hub-Signature-256",
                &meta_signature(secret, body.as_bytes()),
            )
            .send_bytes(body.as_bytes())
            .expect(200);
        assert_eq!(inbox_rows(rt, &account).len(), 1);
    }
    let account = numeric_id();
    let body = json!({"object": "instagram", "entry": [{"id": account, "time": 1}]}).to_string();
    rt.post("/webhooks/instagram")
        .header(
            "X-Hub-Signature-256",
            &meta_signature("other", body.as_bytes()),
        )
        .send_bytes(body.as_bytes())
        .expect(401);
    assert!(inbox_rows(rt, &account).is_empty());
}

fn linkedin_signature_with_and_without_prefix(rt: &Runtime) {
    for prefixed in [false, true] {
        let organization = numeric_id();
        let body = json!({"type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS", "notifications": [{
            "notificationId": numeric_id().parse::<u64>().unwrap(),
            "organizationalEntity": format!("urn:li:organization:{organization}"),
            "action": "LIKE", "sourcePost": "urn:li:share:1", "actor": "urn:li:person:abc",
            "lastModifiedAt": unix_now() * 1000
        }]})
        .to_string();
        let signature = linkedin_signature(LINKEDIN_CLIENT_SECRET, body.as_bytes());
        let header = if prefixed {
            format!("hmacsha256={signature}")
        } else {
            signature.clone()
        };
        rt.post("/webhooks/linkedin")
            .header("X-LI-Signature", &header)
            .send_bytes(body.as_bytes())
            .expect(200);
        assert_eq!(inbox_rows(rt, &organization).len(), 1);
        // Tampered, wrong secret, missing.
        let tampered = body.replace("LIKE", "COMMENT");
        rt.post("/webhooks/linkedin")
            .header("X-LI-Signature", &header)
            .send_bytes(tampered.as_bytes())
            .expect(401);
        let wrong = linkedin_signature("nope", body.as_bytes());
        rt.post("/webhooks/linkedin")
            .header("X-LI-Signature", &wrong)
            .send_bytes(body.as_bytes())
            .expect(401);
        rt.post("/webhooks/linkedin")
            .send_bytes(body.as_bytes())
            .expect(401);
        assert_eq!(inbox_rows(rt, &organization).len(), 1);
    }
}

fn oversized_delivery_is_refused(rt: &Runtime) {
    let padding = "x".repeat(1024 * 1024 + 10);
    let body = json!({"object": "page", "entry": [], "padding": padding}).to_string();
    let response = rt
        .post("/webhooks/facebook")
        .header(
            "X-Hub-Signature-256",
            &meta_signature(META_APP_SECRET, body.as_bytes()),
        )
        .send_bytes(body.as_bytes());
    assert_eq!(response.status, 413, "{}", response.body);
}

// ------------------------------------------------------------------------------------------------
// Integrations API

fn integrations_api_connects_seals_and_disconnects(rt: &Runtime) {
    let org = unique_org("integrations");
    let page = numeric_id();
    let secret_token = format!("EAAB-secret-{}", unique_suffix());
    let body = json!({"page_ids": [page], "access_token": secret_token});
    // Only admins connect.
    for role in ["member", "viewer"] {
        rt.request("PUT", "/v1/integrations/facebook")
            .bearer(&token(&org, role))
            .send_json(&body)
            .expect(403);
    }
    // Validation.
    let invalid = rt
        .request("PUT", "/v1/integrations/facebook")
        .bearer(&token(&org, "admin"))
        .send_json(&json!({"page_ids": "nope"}))
        .expect(422)
        .json();
    let fields: Vec<&str> = invalid["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"access_token") && fields.contains(&"page_ids"),
        "{invalid}"
    );
    rt.request("PUT", "/v1/integrations/myspace")
        .bearer(&token(&org, "admin"))
        .send_json(&body)
        .expect(404);

    let connected = connect(rt, &org, "facebook", body.clone());
    assert!(
        !connected.to_string().contains(&secret_token),
        "{connected}"
    );
    assert_eq!(connected["connected"], true);
    assert_eq!(connected["accounts"]["page_ids"], json!([page]));
    let sealed_once: String = rt
        .org_db(&org)
        .query_row(
            "SELECT token_ciphertext FROM integrations WHERE org_id = ?1 AND platform = 'facebook'",
            [&org],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!sealed_once.contains(&secret_token));
    // Rotation: PUT again; a fresh nonce seals it differently.
    connect(rt, &org, "facebook", body.clone());
    let sealed_twice: String = rt
        .org_db(&org)
        .query_row(
            "SELECT token_ciphertext FROM integrations WHERE org_id = ?1 AND platform = 'facebook'",
            [&org],
            |r| r.get(0),
        )
        .unwrap();
    assert_ne!(sealed_once, sealed_twice);

    let list = rt
        .get("/v1/integrations")
        .bearer(&token(&org, "viewer"))
        .send_empty()
        .expect(200);
    assert!(!list.body.contains(&secret_token));
    let items = list.json()["items"].as_array().unwrap().clone();
    let platforms: Vec<&str> = items
        .iter()
        .map(|i| i["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["facebook", "instagram", "linkedin"]);
    for key in [
        "connected",
        "last_event_at",
        "processed",
        "pending",
        "dead",
        "last_error",
    ] {
        assert!(items[0].get(key).is_some(), "{key} in {}", items[0]);
    }
    assert_eq!(items[1]["connected"], false);

    // Another org cannot take the page.
    rt.request("PUT", "/v1/integrations/facebook")
        .bearer(&token(&unique_org("thief"), "admin"))
        .send_json(&body)
        .expect(409);

    // LinkedIn takes organisations and ad accounts (URNs accepted).
    let linkedin = connect(
        rt,
        &org,
        "linkedin",
        json!({"organization_ids": ["urn:li:organization:2414183"], "sponsored_account_ids": [522529623], "access_token": "AQX"}),
    );
    assert_eq!(linkedin["accounts"]["organization_ids"], json!(["2414183"]));
    assert_eq!(
        linkedin["accounts"]["sponsored_account_ids"],
        json!(["522529623"])
    );

    // Disconnect: events for the page are then ignored.
    rt.request("DELETE", "/v1/integrations/facebook")
        .bearer(&token(&org, "member"))
        .send_empty()
        .expect(403);
    rt.request("DELETE", "/v1/integrations/facebook")
        .bearer(&token(&org, "admin"))
        .send_empty()
        .expect(204);
    let facebook = integration(rt, &org, "facebook");
    assert_eq!(facebook["connected"], false);
    assert_eq!(facebook["status"], "disconnected");
    assert_eq!(facebook["accounts"]["page_ids"], json!([]));
    post_meta(rt, "facebook", &leadgen_event(&page, &numeric_id())).expect(200);
    let rows = wait_settled(rt, &page);
    assert_eq!(rows[0].0, "ignored");
}

// ------------------------------------------------------------------------------------------------
// Events to leads and touchpoints

fn facebook_leadgen_creates_a_scored_lead_from_the_form(rt: &Runtime) {
    let org = unique_org("leadgen");
    let page = numeric_id();
    connect_page(rt, &org, &page);
    let leadgen_id = numeric_id();
    let email = format!("ada.{}@example.com", unique_suffix());
    stub().add_meta_lead(&leadgen_id, standard_fields(&email));

    post_meta(rt, "facebook", &leadgen_event(&page, &leadgen_id)).expect(200);
    let rows = wait_settled(rt, &page);
    assert_eq!(rows[0].0, "processed", "{rows:?}");

    let lead = lead_by_email(rt, &org, &email).expect("the lead exists");
    assert_eq!(lead["first_name"], "Ada");
    assert_eq!(lead["last_name"], "Lovelace");
    assert_eq!(lead["company"], "Analytical Engines Ltd");
    assert_eq!(lead["title"], "Head of Research");
    assert!(
        lead["phone"].as_str().unwrap().starts_with("+1 415 "),
        "{lead}"
    );
    assert_eq!(lead["source"], "facebook");
    assert_eq!(lead["source_detail"]["form_id"], "7100000000002");
    assert_eq!(lead["source_detail"]["ad_id"], "6100000000001");
    // One info_request (5 points with the default weights): COLD.
    assert_eq!(lead["heat_score"], json!(5));
    assert_eq!(lead["heat_level"], "COLD");

    let touches = touchpoints(rt, &org, &format!("leadgen:{leadgen_id}"));
    assert_eq!(touches.len(), 1);
    assert_eq!(touches[0].0, "info_request");
    assert_eq!(touches[0].1, "sync");
    let metadata: Value = serde_json::from_str(&touches[0].2).unwrap();
    assert_eq!(metadata["form_answers"]["budget"], "10k-50k");

    // The Graph call carried the org's token.
    assert_fetched_once_with_the_org_token(&org, &leadgen_id);

    // The integration shows the processed event.
    let facebook = integration(rt, &org, "facebook");
    assert_eq!(facebook["processed"], 1);
    assert!(facebook["last_event_at"].is_string());

    // The same submission in a new delivery: no second call, no second touchpoint.
    let mut again = leadgen_event(&page, &leadgen_id);
    again["entry"][0]["time"] = json!(unix_now() + 7);
    post_meta(rt, "facebook", &again).expect(200);
    wait_rows(rt, &page, "the second delivery", |r| r.0 == "processed");
    assert_eq!(inbox_rows(rt, &page).len(), 2);
    assert_eq!(
        touchpoints(rt, &org, &format!("leadgen:{leadgen_id}")).len(),
        1
    );
    assert_eq!(stub().call_count(&leadgen_id), 1);
}

fn likes_comments_and_messages_raise_a_known_profile(rt: &Runtime) {
    let org = unique_org("social");
    let page = numeric_id();
    connect_page(rt, &org, &page);
    set_weights(rt, &org, json!({"social_comment": 3, "direct_message": 4}));
    let user = numeric_id();
    let post = format!("{page}_{}", numeric_id());
    let now = unix_now();
    let comment_id = format!("{post}_{}", numeric_id());
    let body = json!({"object": "page", "entry": [
        {"id": page, "time": now, "changes": [
            {"field": "feed", "value": {"item": "reaction", "verb": "add", "reaction_type": "like", "post_id": post,
                "from": {"id": user, "name": "Grace Hopper"}, "created_time": now}},
            // Meta may also send the like as an item "like": the same touchpoint.
            {"field": "feed", "value": {"item": "like", "verb": "add", "post_id": post,
                "from": {"id": user, "name": "Grace Hopper"}, "created_time": now}},
            {"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": post, "comment_id": comment_id,
                "message": "Pricing?", "from": {"id": user, "name": "Grace Hopper"}, "created_time": now}},
            // A removal and the page's own comment change nothing.
            {"field": "feed", "value": {"item": "reaction", "verb": "remove", "reaction_type": "like", "post_id": post,
                "from": {"id": user, "name": "Grace Hopper"}, "created_time": now}},
            {"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": post, "comment_id": format!("{post}_9"),
                "message": "Thanks!", "from": {"id": page, "name": "The Page"}, "created_time": now}}
        ]},
        {"id": page, "time": now, "messaging": [
            {"sender": {"id": user}, "recipient": {"id": page}, "timestamp": now * 1000,
             "message": {"mid": format!("m_{}", numeric_id()), "text": "Hello, can you call me?"}},
            {"sender": {"id": page}, "recipient": {"id": user}, "timestamp": now * 1000,
             "message": {"mid": format!("m_{}", numeric_id()), "text": "Sure", "is_echo": true}}
        ]}
    ]});
    post_meta(rt, "facebook", &body).expect(200);
    let rows = wait_settled(rt, &page);
    assert_eq!(rows[0].0, "processed", "{rows:?}");

    let lead = lead_by_profile(rt, &org, "facebook", &user).expect("the commenter is a lead");
    assert_eq!(lead["first_name"], "Grace");
    assert_eq!(lead["last_name"], "Hopper");
    assert_eq!(lead["source"], "facebook");
    // like 1 + comment 3 + message 4.
    assert_eq!(lead["heat_score"], json!(8), "{lead}");
    assert_eq!(lead["heat_level"], "WARM");
    let timeline = rt
        .get(&format!(
            "/v1/leads/{}/timeline",
            lead["id"].as_str().unwrap()
        ))
        .bearer(&token(&org, "viewer"))
        .send_empty()
        .expect(200)
        .json();
    let mut kinds: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["direct_message", "social_comment", "social_like"]);
    for item in timeline["items"].as_array().unwrap() {
        assert_eq!(item["captured_by"], "webhook");
        assert_eq!(item["platform"], "facebook");
    }
    assert_eq!(
        touchpoints(rt, &org, &format!("comment:{comment_id}")).len(),
        1
    );
}

fn the_same_delivery_three_times_is_one_touchpoint(rt: &Runtime) {
    let org = unique_org("dedupe");
    let page = numeric_id();
    connect_page(rt, &org, &page);
    let comment_id = format!("{page}_1_{}", numeric_id());
    let value = json!({"item": "comment", "verb": "add", "post_id": format!("{page}_1"), "comment_id": comment_id,
        "message": "Interested", "from": {"id": numeric_id(), "name": "Alan Turing"}, "created_time": unix_now()});
    let body = page_event(&page, json!([{"field": "feed", "value": value}]));
    for _ in 0..3 {
        post_meta(rt, "facebook", &body).expect(200);
    }
    let rows = wait_settled(rt, &page);
    assert_eq!(
        rows.len(),
        1,
        "one inbox row for three deliveries: {rows:?}"
    );
    // A different delivery of the same comment (another batch, other bytes): a second inbox row,
    // still one touchpoint.
    let mut other = body.clone();
    other["entry"][0]["time"] = json!(unix_now() + 60);
    post_meta(rt, "facebook", &other).expect(200);
    let rows = wait_rows(rt, &page, "both rows processed", |r| r.0 == "processed");
    assert_eq!(rows.len(), 2);
    assert_eq!(
        touchpoints(rt, &org, &format!("comment:{comment_id}")).len(),
        1
    );
}

fn a_batch_of_many_entries_and_accounts(rt: &Runtime) {
    let org = unique_org("batch");
    let page = numeric_id();
    let unconnected = numeric_id();
    connect_page(rt, &org, &page);
    let now = unix_now();
    let users: Vec<String> = (0..30).map(|_| numeric_id()).collect();
    let mut entries: Vec<Value> = users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            // Ids as numbers or strings, unknown fields alongside.
            let from_id = if i % 2 == 0 { json!(user.parse::<u64>().unwrap()) } else { json!(user) };
            json!({"id": if i % 3 == 0 { json!(page.parse::<u64>().unwrap()) } else { json!(page) }, "time": now + i as i64,
                "unknown_entry_field": {"x": 1},
                "changes": [
                    {"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": format!("{page}_5"),
                        "comment_id": format!("{page}_5_{user}"), "message": format!("comment {i}"),
                        "from": {"id": from_id, "name": format!("Person {i}")}, "created_time": now, "new_meta_field": true}},
                    {"field": "some_future_field", "value": {"anything": [1, 2, 3]}},
                    {"field": "feed", "value": {"item": "status", "verb": "add", "post_id": format!("{page}_6"),
                        "from": {"id": page, "name": "The Page"}, "message": "our news"}}
                ]})
        })
        .collect();
    entries.push(json!({"id": unconnected, "time": now, "changes": [
        {"field": "feed", "value": {"item": "reaction", "verb": "add", "reaction_type": "love", "post_id": format!("{unconnected}_1"),
            "from": {"id": "42", "name": "Someone"}, "created_time": now}}
    ]}));
    post_meta(rt, "facebook", &json!({"object": "page", "entry": entries})).expect(200);
    // 30 entries of 3 changes: 90 events of the page, stored MAX_EVENTS_PER_PART to a row.
    let rows = wait_settled(rt, &page);
    assert_eq!(
        rows.len(),
        90usize.div_ceil(MAX_EVENTS_PER_PART),
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| r.0 == "processed"), "{rows:?}");
    let ignored = wait_settled(rt, &unconnected);
    assert_eq!(ignored[0].0, "ignored");
    let count: i64 = rt
        .org_db(&org)
        .query_row(
            "SELECT COUNT(*) FROM interactions WHERE org_id = ?1 AND type = 'social_comment'",
            [&org],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count, 30);
    let leads: i64 = rt
        .org_db(&org)
        .query_row(
            "SELECT COUNT(*) FROM leads WHERE org_id = ?1",
            [&org],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leads, 30);
}

fn unknown_page_is_answered_and_ignored(rt: &Runtime) {
    let page = numeric_id();
    let response = post_meta(rt, "facebook", &leadgen_event(&page, &numeric_id())).expect(200);
    assert_eq!(response.json()["received"], true);
    let rows = wait_settled(rt, &page);
    assert_eq!(rows[0].0, "ignored");
}

fn instagram_comments_messages_and_story_insights(rt: &Runtime) {
    let org = unique_org("instagram");
    let account = numeric_id();
    connect(
        rt,
        &org,
        "instagram",
        json!({"account_ids": [account], "access_token": "IGQ-token"}),
    );
    let user = numeric_id();
    let comment_id = numeric_id();
    let media = numeric_id();
    let now = unix_now();
    let body = json!({"object": "instagram", "entry": [
        {"id": account, "time": now, "changes": [
            {"field": "comments", "value": {"id": comment_id, "text": "Love this!",
                "from": {"id": user, "username": "katherine.j"}, "media": {"id": media, "media_product_type": "FEED"}}},
            {"field": "mentions", "value": {"media_id": media, "comment_id": numeric_id()}},
            {"field": "story_insights", "value": {"media_id": media, "impressions": 44, "reach": 40,
                "taps_forward": 3, "taps_back": 1, "exits": 2, "replies": 0}}
        ]},
        {"id": account, "time": now, "messaging": [
            {"sender": {"id": user}, "recipient": {"id": account}, "timestamp": now * 1000,
             "message": {"mid": format!("aWdf{}", numeric_id()), "text": "DM"}}
        ]}
    ]})
    .to_string();
    rt.post("/webhooks/instagram")
        .header(
            "X-Hub-Signature-256",
            &meta_signature(INSTAGRAM_APP_SECRET, body.as_bytes()),
        )
        .send_bytes(body.as_bytes())
        .expect(200);
    let rows = wait_settled(rt, &account);
    assert_eq!(rows[0].0, "processed", "{rows:?}");
    let lead = lead_by_profile(rt, &org, "instagram", &user).expect("the commenter is a lead");
    assert_eq!(lead["source"], "instagram");
    assert_eq!(lead["social_profiles"][0]["handle"], "katherine.j");
    assert_eq!(
        touchpoints(rt, &org, &format!("comment:{comment_id}"))[0].0,
        "social_comment"
    );
    let kinds: i64 = rt.org_db(&org)
        .query_row(
            "SELECT COUNT(*) FROM interactions WHERE org_id = ?1 AND type IN ('social_comment', 'direct_message')",
            [&org],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kinds, 2);
    let instagram = integration(rt, &org, "instagram");
    let insights = &instagram["metrics"]["story_insights"][&media];
    assert_eq!(insights["reach"], json!(40.0));
    assert_eq!(insights["exits"], json!(2.0));
}

fn linkedin_lead_sync_and_social_actions(rt: &Runtime) {
    let org = unique_org("linkedin");
    let organization = numeric_id();
    let ad_account = numeric_id();
    connect(
        rt,
        &org,
        "linkedin",
        json!({"organization_ids": [organization], "sponsored_account_ids": [ad_account], "access_token": "AQV-token"}),
    );
    let response_id = format!("{}-{}", numeric_id(), numeric_id());
    let form_id = numeric_id();
    let email = format!("linus.{}@example.org", unique_suffix());
    stub().add_linkedin_response(
        &response_id,
        json!({"id": response_id, "submittedAt": unix_now() * 1000, "leadType": "SPONSORED",
            "versionedLeadGenFormUrn": format!("urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{form_id},1)"),
            "leadMetadata": {"sponsoredLeadMetadata": {"campaign": "urn:li:sponsoredCampaign:345"}},
            "formResponse": {"answers": [
                {"questionId": 1, "answerDetails": {"textQuestionAnswer": {"answer": "Linus"}}},
                {"questionId": 2, "answerDetails": {"textQuestionAnswer": {"answer": "Torvalds"}}},
                {"questionId": 3, "answerDetails": {"textQuestionAnswer": {"answer": email}}},
                {"questionId": 4, "answerDetails": {"textQuestionAnswer": {"answer": "Kernel Inc"}}},
                {"questionId": 5, "answerDetails": {"textQuestionAnswer": {"answer": "50-200"}}}
            ]}}),
    );
    stub().add_linkedin_form(
        &form_id,
        json!({"id": form_id, "content": {"questions": [
            {"questionId": 1, "name": "firstName", "predefinedField": "FIRST_NAME"},
            {"questionId": 2, "name": "lastName", "predefinedField": "LAST_NAME"},
            {"questionId": 3, "name": "email", "predefinedField": "EMAIL"},
            {"questionId": 4, "name": "company", "predefinedField": "COMPANY_NAME"},
            {"questionId": 5, "name": "companySize"}
        ]}}),
    );
    let created = json!({"type": "LEAD_ACTION", "leadAction": "CREATED",
        "leadGenFormResponse": format!("urn:li:leadGenFormResponse:{response_id}"),
        "leadGenForm": format!("urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{form_id},1)"),
        "owner": {"sponsoredAccount": format!("urn:li:sponsoredAccount:{ad_account}")},
        "leadType": "SPONSORED", "occurredAt": unix_now() * 1000});
    post_linkedin(rt, &created).expect(200);
    let rows = wait_settled(rt, &ad_account);
    assert_eq!(rows[0].0, "processed", "{rows:?}");
    let lead = lead_by_email(rt, &org, &email).expect("the LinkedIn lead exists");
    assert_eq!(lead["first_name"], "Linus");
    assert_eq!(lead["company"], "Kernel Inc");
    assert_eq!(lead["source"], "linkedin");
    assert_eq!(lead["source_detail"]["campaign"], "345");
    assert_eq!(lead["heat_score"], json!(5));
    let calls = stub().calls(&response_id);
    assert_eq!(calls.len(), 1);
    assert!(calls[0]
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v == "Bearer AQV-token"));

    // Social actions: a like and a comment by a member.
    let member = format!("p{}", numeric_id());
    let notifications = json!({"type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS", "notifications": [
        {"notificationId": numeric_id().parse::<u64>().unwrap(), "organizationalEntity": format!("urn:li:organization:{organization}"),
         "action": "LIKE", "sourcePost": format!("urn:li:share:{}", numeric_id()), "actor": format!("urn:li:person:{member}"),
         "lastModifiedAt": unix_now() * 1000},
        {"notificationId": numeric_id().parse::<u64>().unwrap(), "organizationalEntity": format!("urn:li:organization:{organization}"),
         "action": "COMMENT", "sourcePost": format!("urn:li:share:{}", numeric_id()),
         "generatedActivity": format!("urn:li:comment:(urn:li:activity:{},{})", numeric_id(), numeric_id()),
         "decoratedGeneratedActivity": {"comment": {"owner": format!("urn:li:person:{member}"), "text": "Great post"}},
         "lastModifiedAt": unix_now() * 1000},
        {"notificationId": 1, "organizationalEntity": format!("urn:li:organization:{organization}"),
         "action": "COMMENT_DELETE", "sourcePost": "urn:li:share:1", "lastModifiedAt": unix_now() * 1000}
    ]});
    post_linkedin(rt, &notifications).expect(200);
    wait_settled(rt, &organization);
    let member_lead = lead_by_profile(rt, &org, "linkedin", &member).expect("the member is a lead");
    assert_eq!(member_lead["heat_score"], json!(1), "like 1 + comment 0");

    // The member deletes the form response: its answers are erased.
    let deleted = json!({"type": "LEAD_ACTION", "leadAction": "DELETED",
        "leadGenFormResponse": format!("urn:li:leadGenFormResponse:{response_id}"),
        "owner": {"sponsoredAccount": format!("urn:li:sponsoredAccount:{ad_account}")},
        "occurredAt": unix_now() * 1000 + 5});
    post_linkedin(rt, &deleted).expect(200);
    wait_rows(rt, &ad_account, "the deletion", |r| r.0 == "processed");
    let touch = &touchpoints(rt, &org, &format!("leadgen:{response_id}"))[0];
    let metadata: Value = serde_json::from_str(&touch.2).unwrap();
    assert!(metadata.get("form_answers").is_none(), "{metadata}");
    assert!(metadata["form_answers_erased_at"].is_string());
}

// ------------------------------------------------------------------------------------------------
// Reliability

fn outage_retries_then_recovers_without_loss(rt: &Runtime) {
    let _serial = serial();
    let org = unique_org("outage");
    let page = numeric_id();
    connect_page(rt, &org, &page);
    let leadgen_id = numeric_id();
    let email = format!("outage.{}@example.com", unique_suffix());
    stub().add_meta_lead(&leadgen_id, standard_fields(&email));
    stub().set_mode(&leadgen_id, Mode::ServerError);

    post_meta(rt, "facebook", &leadgen_event(&page, &leadgen_id)).expect(200);
    let rows = wait_rows(rt, &page, "a failed first attempt", |r| {
        r.0 == "pending" && r.1 == 1 && r.2.is_some()
    });
    assert!(rows[0].2.as_deref().unwrap().contains("500"), "{rows:?}");
    assert!(lead_by_email(rt, &org, &email).is_none());
    let facebook = integration(rt, &org, "facebook");
    assert_eq!(facebook["pending"], 1);
    assert!(facebook["last_error"].as_str().unwrap().contains("500"));

    // Still down at the first retry: backed off again.
    fire_sync(rt, 3600);
    wait_rows(rt, &page, "a second failed attempt", |r| {
        r.0 == "pending" && r.1 == 2
    });
    assert_eq!(stub().call_count(&leadgen_id), 2);

    // The platform recovers: the next reconciliation finishes the event.
    stub().set_mode(&leadgen_id, Mode::Normal);
    fire_sync(rt, 2 * 86_400);
    let rows = wait_rows(rt, &page, "recovery", |r| r.0 == "processed");
    assert_eq!(rows[0].1, 3);
    let lead = lead_by_email(rt, &org, &email).expect("nothing lost");
    assert_eq!(lead["heat_score"], json!(5));
}

fn failing_event_dies_after_bounded_attempts(rt: &Runtime) {
    let _serial = serial();
    let org = unique_org("dying");
    let page = numeric_id();
    connect_page(rt, &org, &page);
    let leadgen_id = numeric_id();
    stub().set_mode(&leadgen_id, Mode::ServerError);
    post_meta(rt, "facebook", &leadgen_event(&page, &leadgen_id)).expect(200);
    wait_rows(rt, &page, "attempt 1", |r| r.0 == "pending" && r.1 == 1);
    // Each run is a day later: past every backoff and circuit cool-down.
    for attempt in 2..=8 {
        fire_sync(rt, attempt * 86_400);
        wait_rows(rt, &page, &format!("attempt {attempt}"), |r| {
            (r.0 == "pending" || r.0 == "dead") && r.1 == attempt
        });
    }
    let rows = inbox_rows(rt, &page);
    assert_eq!(rows[0].0, "dead", "{rows:?}");
    assert!(rows[0]
        .2
        .as_deref()
        .unwrap()
        .contains("gave up after 8 attempts"));
    assert_eq!(stub().call_count(&leadgen_id), 8);
    let facebook = integration(rt, &org, "facebook");
    assert_eq!(facebook["dead"], 1);
    assert_eq!(facebook["pending"], 0);
    // The circuit opened along the way.
    let failures: i64 = rt.org_db(&org)
        .query_row(
            "SELECT consecutive_failures FROM platform_throttles WHERE org_id = ?1 AND platform = 'facebook'",
            [&org],
            |r| r.get(0),
        )
        .unwrap();
    assert!(failures >= 5, "{failures}");
}

fn permanent_failure_is_dead_then_replayed(rt: &Runtime) {
    let _serial = serial();
    let org = unique_org("replay");
    let page = numeric_id();
    connect_page(rt, &org, &page);
    let leadgen_id = numeric_id();
    stub().set_mode(&leadgen_id, Mode::Permanent);
    post_meta(rt, "facebook", &leadgen_event(&page, &leadgen_id)).expect(200);
    let rows = wait_rows(rt, &page, "a dead event", |r| r.0 == "dead");
    assert!(
        rows[0].2.as_deref().unwrap().contains("code 100"),
        "{rows:?}"
    );
    let facebook = integration(rt, &org, "facebook");
    assert_eq!(facebook["dead"], 1);
    assert_eq!(facebook["dead_events"].as_array().unwrap().len(), 1);
    assert!(facebook["last_error"]
        .as_str()
        .unwrap()
        .contains("code 100"));

    // Members cannot replay; nothing to replay elsewhere.
    rt.post("/v1/integrations/facebook/replay")
        .bearer(&token(&org, "member"))
        .send_empty()
        .expect(403);
    let email = format!("replayed.{}@example.com", unique_suffix());
    stub().add_meta_lead(&leadgen_id, standard_fields(&email));
    stub().set_mode(&leadgen_id, Mode::Normal);
    let replay = rt
        .post("/v1/integrations/facebook/replay")
        .bearer(&token(&org, "admin"))
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(replay["replayed"], 1, "{replay}");
    wait_rows(rt, &page, "the replayed event", |r| r.0 == "processed");
    assert_eq!(
        lead_by_email(rt, &org, &email).unwrap()["heat_score"],
        json!(5)
    );
    let facebook = integration(rt, &org, "facebook");
    assert_eq!(
        (facebook["dead"].clone(), facebook["processed"].clone()),
        (json!(0), json!(1))
    );
}

fn meta_throttle_delays_further_calls(rt: &Runtime) {
    let _serial = serial();
    let org = unique_org("throttle");
    let page = numeric_id();
    connect_page(rt, &org, &page);
    let first = numeric_id();
    let second = numeric_id();
    let (email1, email2) = (
        format!("t1.{}@example.com", unique_suffix()),
        format!("t2.{}@example.com", unique_suffix()),
    );
    stub().add_meta_lead(&first, standard_fields(&email1));
    stub().add_meta_lead(&second, standard_fields(&email2));
    stub().set_mode(
        &first,
        Mode::MetaThrottled {
            code: 80001,
            regain_minutes: 19,
        },
    );
    post_meta(rt, "facebook", &leadgen_event(&page, &first)).expect(200);
    let rows = wait_rows(rt, &page, "the throttled event", |r| {
        r.0 == "pending" && r.2.is_some()
    });
    // Throttling is not a failed attempt.
    assert_eq!(rows[0].1, 0, "{rows:?}");
    let (blocked_until, usage): (String, String) = rt.org_db(&org)
        .query_row(
            "SELECT blocked_until, last_usage FROM platform_throttles WHERE org_id = ?1 AND platform = 'facebook'",
            [&org],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let lower = rfc3339(unix_now() + 17 * 60);
    let upper = rfc3339(unix_now() + 20 * 60);
    assert!(
        blocked_until > lower && blocked_until < upper,
        "{blocked_until}"
    );
    assert!(usage.contains("19"), "{usage}");

    // Another event of the org waits without calling the platform.
    post_meta(rt, "facebook", &leadgen_event(&page, &second)).expect(200);
    wait_rows(rt, &page, "both events waiting", |r| {
        r.0 == "pending" && r.2.is_some()
    });
    assert_eq!(stub().call_count(&second), 0);

    // Once access is regained, the reconciliation processes both.
    stub().set_mode(&first, Mode::Normal);
    fire_sync(rt, 30 * 60);
    wait_rows(rt, &page, "both processed", |r| r.0 == "processed");
    assert!(lead_by_email(rt, &org, &email1).is_some());
    assert!(lead_by_email(rt, &org, &email2).is_some());
    assert_eq!(stub().call_count(&second), 1);
}

fn linkedin_429_waits_for_retry_after(rt: &Runtime) {
    let _serial = serial();
    let org = unique_org("li429");
    let ad_account = numeric_id();
    connect(
        rt,
        &org,
        "linkedin",
        json!({"sponsored_account_ids": [ad_account], "access_token": "AQV-429"}),
    );
    let response_id = numeric_id();
    let email = format!("li429.{}@example.org", unique_suffix());
    stub().add_linkedin_response(
        &response_id,
        json!({"id": response_id, "formResponse": {"answers": [
            {"questionId": 1, "answerDetails": {"textQuestionAnswer": {"answer": email}}}
        ]}}),
    );
    stub().set_mode(
        &response_id,
        Mode::TooManyRequests {
            retry_after_seconds: 120,
        },
    );
    let created = json!({"type": "LEAD_ACTION", "leadAction": "CREATED",
        "leadGenFormResponse": format!("urn:li:leadGenFormResponse:{response_id}"),
        "owner": {"sponsoredAccount": format!("urn:li:sponsoredAccount:{ad_account}")},
        "leadType": "SPONSORED", "occurredAt": unix_now() * 1000});
    post_linkedin(rt, &created).expect(200);
    let rows = wait_rows(rt, &ad_account, "the throttled event", |r| {
        r.0 == "pending" && r.2.is_some()
    });
    assert_eq!(rows[0].1, 0, "a 429 is not a failed attempt: {rows:?}");
    assert!(rows[0].2.as_deref().unwrap().contains("429"), "{rows:?}");
    let blocked_until: String = rt.org_db(&org)
        .query_row(
            "SELECT blocked_until FROM platform_throttles WHERE org_id = ?1 AND platform = 'linkedin'",
            [&org],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        blocked_until > rfc3339(unix_now() + 60) && blocked_until < rfc3339(unix_now() + 180),
        "{blocked_until}"
    );
    // Within the Retry-After window nothing is called again.
    fire_sync(rt, 30);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(stub().call_count(&response_id), 1);
    stub().set_mode(&response_id, Mode::Normal);
    fire_sync(rt, 300);
    wait_rows(rt, &ad_account, "the event after Retry-After", |r| {
        r.0 == "processed"
    });
    // The answer names no form: the answer is kept under its question id, and no email is known.
    assert_eq!(stub().call_count(&response_id), 2);
    let touches = touchpoints(rt, &org, &format!("leadgen:{response_id}"));
    assert_eq!(touches.len(), 1);
    assert!(touches[0].2.contains(&email), "{touches:?}");
}

fn invalid_token_needs_a_new_token_then_replays(rt: &Runtime) {
    let _serial = serial();
    let org = unique_org("token");
    let page = numeric_id();
    connect_page(rt, &org, &page);
    let leadgen_id = numeric_id();
    stub().set_mode(&leadgen_id, Mode::TokenInvalid);
    post_meta(rt, "facebook", &leadgen_event(&page, &leadgen_id)).expect(200);
    wait_rows(rt, &page, "the event to die on the token", |r| {
        r.0 == "dead"
    });
    let facebook = integration(rt, &org, "facebook");
    assert_eq!(facebook["status"], "needs_token");
    assert_eq!(facebook["connected"], false);
    assert!(facebook["last_error"].as_str().unwrap().contains("190"));

    // Rotate the token, then replay.
    let email = format!("token.{}@example.com", unique_suffix());
    stub().add_meta_lead(&leadgen_id, standard_fields(&email));
    stub().set_mode(&leadgen_id, Mode::Normal);
    connect(
        rt,
        &org,
        "facebook",
        json!({"page_ids": [page], "access_token": "EAAB-rotated"}),
    );
    assert_eq!(integration(rt, &org, "facebook")["status"], "connected");
    rt.post("/v1/integrations/facebook/replay")
        .bearer(&token(&org, "admin"))
        .send_empty()
        .expect(200);
    wait_rows(rt, &page, "the replay", |r| r.0 == "processed");
    assert!(lead_by_email(rt, &org, &email).is_some());
    let calls = stub().calls(&leadgen_id);
    assert_eq!(calls.last().unwrap().bearer(), Some("EAAB-rotated"));
}

fn reconciliation_recovers_a_lost_queue_message(_shared: &Runtime) {
    // Its own runtime: this test restarts it, which loses the in-memory queue.
    let stub = stub();
    let mut rt = Runtime::start_with_env(&[
        ("META_GRAPH_BASE_URL", &stub.meta_base()),
        ("LINKEDIN_API_BASE_URL", &stub.linkedin_base()),
    ]);
    let org = unique_org("lost");
    let page = numeric_id();
    connect_page(&rt, &org, &page);
    let leadgen_id = numeric_id();
    let email = format!("lost.{}@example.com", unique_suffix());
    stub.add_meta_lead(&leadgen_id, standard_fields(&email));
    // The consumer is stuck in a slow platform call when the runtime stops.
    stub.set_mode(&leadgen_id, Mode::Slow(Duration::from_secs(8)));
    post_meta(&rt, "facebook", &leadgen_event(&page, &leadgen_id)).expect(200);
    rt.wait_for("the consumer to call the platform", WAIT, || {
        (stub.call_count(&leadgen_id) > 0).then_some(())
    });
    rt.restart();
    let rows = inbox_rows(&rt, &page);
    assert_eq!(
        rows[0].0, "processing",
        "claimed, then lost with the runtime: {rows:?}"
    );
    stub.set_mode(&leadgen_id, Mode::Normal);
    // Not yet due: the lease still holds.
    fire_sync(&rt, 0);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(inbox_rows(&rt, &page)[0].0, "processing");
    // After the lease: the reconciliation enqueues it again.
    fire_sync(&rt, 5 * 60);
    let rows = wait_rows(&rt, &page, "the recovered event", |r| r.0 == "processed");
    assert_eq!(rows[0].1, 2);
    assert_eq!(
        lead_by_email(&rt, &org, &email).unwrap()["heat_score"],
        json!(5)
    );
}

// ------------------------------------------------------------------------------------------------
// Key rotation

/// The development key of `.dev.vars.example` and a second key to rotate to.
const KEY_A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const KEY_B: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0f00112233445566778899aabbccddeeff";

/// The key id the sealed format names: the first 8 hex characters of SHA-256 of the key.
fn key_id(hex_key: &str) -> String {
    use sha2::{Digest, Sha256};
    let bytes = hex::decode(hex_key).unwrap();
    hex::encode(Sha256::digest(bytes))[..8].to_string()
}

/// A lead form through the stub on `rt`, which must be fetched with the org's original token.
fn leadgen_is_fetched_with_the_token(rt: &Runtime, org: &str, page: &str) {
    let leadgen_id = numeric_id();
    let email = format!("rotation.{}@example.com", unique_suffix());
    stub().add_meta_lead(&leadgen_id, standard_fields(&email));
    post_meta(rt, "facebook", &leadgen_event(page, &leadgen_id)).expect(200);
    rt.wait_for("the lead form to be applied", WAIT, || {
        lead_by_email(rt, org, &email)
    });
    assert_fetched_once_with_the_org_token(org, &leadgen_id);
}

/// The stub saw exactly one Graph call for the lead form, with `connect_page`'s token of `org`.
fn assert_fetched_once_with_the_org_token(org: &str, leadgen_id: &str) {
    let calls = stub().calls(leadgen_id);
    assert_eq!(calls.len(), 1, "{calls:?}");
    // The token travels in the Authorization header, never in the URL, with its appsecret_proof.
    let token = format!("EAAB-token-{org}");
    assert_eq!(calls[0].bearer(), Some(token.as_str()), "{:?}", calls[0]);
    assert!(!calls[0].target.contains(&token), "{:?}", calls[0]);
    assert_eq!(
        calls[0].query_param("appsecret_proof"),
        Some(hex::encode(hmac_sha256(
            META_APP_SECRET.as_bytes(),
            token.as_bytes()
        ))),
        "{:?}",
        calls[0]
    );
}

fn stored_key_id(rt: &Runtime, org: &str) -> (String, String) {
    rt.org_db(org)
        .query_row(
            "SELECT token_key_id, substr(token_ciphertext, 4, 8) FROM integrations \
             WHERE org_id = ?1 AND platform = 'facebook'",
            [org],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

fn token_key_rotation_reseals_tokens_so_the_old_key_can_go(_shared: &Runtime) {
    // Its own runtime: the test restarts it with other keys.
    let stub = stub();
    let mut rt = Runtime::start_with_env(&[
        ("META_GRAPH_BASE_URL", &stub.meta_base()),
        ("LINKEDIN_API_BASE_URL", &stub.linkedin_base()),
        ("TOKEN_ENCRYPTION_KEY", KEY_A),
        ("TOKEN_ENCRYPTION_KEYS_PREVIOUS", ""),
    ]);
    let org = unique_org("rotation");
    let page = numeric_id();
    connect_page(&rt, &org, &page);
    let (a, b) = (key_id(KEY_A), key_id(KEY_B));
    assert_eq!(stored_key_id(&rt, &org), (a.clone(), a.clone()));
    leadgen_is_fetched_with_the_token(&rt, &org, &page);

    // Rotate: B seals from now on, A still opens; the sync cron's sweep re-seals under B.
    rt.set_env("TOKEN_ENCRYPTION_KEY", KEY_B);
    rt.set_env("TOKEN_ENCRYPTION_KEYS_PREVIOUS", KEY_A);
    rt.restart();
    assert_eq!(stored_key_id(&rt, &org), (a.clone(), a));
    fire_sync(&rt, 0);
    assert_eq!(stored_key_id(&rt, &org), (b.clone(), b.clone()));
    leadgen_is_fetched_with_the_token(&rt, &org, &page);

    // The old key is removed: the re-sealed token still works.
    rt.set_env("TOKEN_ENCRYPTION_KEYS_PREVIOUS", "");
    rt.restart();
    leadgen_is_fetched_with_the_token(&rt, &org, &page);
    assert_eq!(stored_key_id(&rt, &org), (b.clone(), b));
    let facebook = integration(&rt, &org, "facebook");
    assert_eq!(facebook["status"], "connected", "{facebook}");
}
