//! End-to-end tests of live updates (issue 8): `GET /v1/live` WebSockets held by one `LiveHub`
//! Durable Object per org, and the notices that every writing worker sends after a commit: the API
//! (a manual touchpoint), tracking, the sync worker (a webhook event) and the scoring job. Each
//! test uses its own org; the ones that expect silence run apart from the scoring run.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use leadheat_e2e::live::{Credentials, LiveSocket, Received};
use leadheat_e2e::runner::{run, E2eTest};
use leadheat_e2e::social::{connect_page, numeric_id, page_event, post_meta};
use leadheat_e2e::{mint_jwt, token, token_for_user, unique_org, unix_now, Runtime, JWT_SECRET};
use serde_json::{json, Value};

/// Long enough for a notice on a loaded 2-core machine; notices normally arrive in milliseconds.
const NOTICE_WAIT: Duration = Duration::from_secs(15);
/// How long a socket must stay silent to show it was not told about another org's change.
const SILENCE: Duration = Duration::from_secs(2);

fn main() {
    let tests: &[E2eTest] = &[
        (
            "a_plain_get_is_refused_with_426",
            a_plain_get_is_refused_with_426,
        ),
        (
            "an_upgrade_without_a_valid_token_is_refused",
            an_upgrade_without_a_valid_token_is_refused,
        ),
        (
            "a_browser_offer_selects_the_protocol_and_pings_are_answered",
            a_browser_offer_selects_the_protocol_and_pings_are_answered,
        ),
        (
            "a_manual_touchpoint_notifies_every_page_of_its_org_only",
            a_manual_touchpoint_notifies_every_page_of_its_org_only,
        ),
        (
            "a_webhook_event_notifies_through_the_sync_worker",
            a_webhook_event_notifies_through_the_sync_worker,
        ),
        (
            "an_identified_tracking_event_notifies",
            an_identified_tracking_event_notifies,
        ),
        (
            "a_scoring_run_notifies_and_its_level_change_moves_the_changes_cursor",
            a_scoring_run_notifies_and_its_level_change_moves_the_changes_cursor,
        ),
        (
            "a_socket_is_closed_once_its_token_has_expired",
            a_socket_is_closed_once_its_token_has_expired,
        ),
    ];
    run(Runtime::start(), tests)
}

/// A scoring run rescores the leads of every org with work and notifies each of them, so it must
/// not overlap a test that expects a socket to stay silent.
static SILENCE_OR_SCORING: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SILENCE_OR_SCORING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn create_lead(rt: &Runtime, bearer: &str, email: &str) -> String {
    rt.post("/v1/leads")
        .bearer(bearer)
        .send_json(&json!({"first_name": "Live", "email": email, "source": "website"}))
        .expect(201)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn touch(rt: &Runtime, bearer: &str, lead: &str, kind: &str) {
    rt.post(&format!("/v1/leads/{lead}/interactions"))
        .bearer(bearer)
        .send_json(&json!({"type": kind, "platform": "in_person"}))
        .expect(201);
}

fn changes_cursor(rt: &Runtime, bearer: &str) -> String {
    rt.get("/v1/changes")
        .bearer(bearer)
        .send_empty()
        .expect(200)
        .json()["cursor"]
        .as_str()
        .unwrap()
        .to_string()
}

fn changed_since(rt: &Runtime, bearer: &str, cursor: &str) -> Value {
    rt.get(&format!(
        "/v1/changes?since={}",
        leadheat_e2e::urlencode(cursor)
    ))
    .bearer(bearer)
    .send_empty()
    .expect(200)
    .json()
}

fn open(rt: &Runtime, org: &str) -> LiveSocket {
    LiveSocket::connect(rt, Credentials::Subprotocol(&token(org, "viewer")))
        .expect("the live socket opens")
}

fn a_plain_get_is_refused_with_426(rt: &Runtime) {
    let org = unique_org("live-plain");
    let refused = rt
        .get("/v1/live")
        .bearer(&token(&org, "viewer"))
        .send_empty()
        .expect(426);
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(
        refused.json()["type"],
        "https://leadheat.dev/problems/upgrade-required"
    );
}

fn an_upgrade_without_a_valid_token_is_refused(rt: &Runtime) {
    let refusal = LiveSocket::connect(rt, Credentials::None)
        .err()
        .expect("refused");
    assert_eq!(refusal.status, 401, "{refusal:?}");
    // The refusal is problem+json, read whole by a plain request asking for the upgrade.
    let problem = rt
        .get("/v1/live")
        .header("Upgrade", "websocket")
        .send_empty()
        .expect(401);
    assert_eq!(
        problem.json()["type"],
        "https://leadheat.dev/problems/unauthorized"
    );

    let forged = mint_jwt(
        "not-the-secret",
        &json!({"sub": "u", "org": unique_org("live-forged"), "role": "admin", "exp": unix_now() + 600}),
    );
    let refusal = LiveSocket::connect(rt, Credentials::Subprotocol(&forged))
        .err()
        .expect("a forged token is refused");
    assert_eq!(refusal.status, 401, "{refusal:?}");

    let expired = mint_jwt(
        JWT_SECRET,
        &json!({"sub": "u", "org": unique_org("live-expired"), "role": "admin", "exp": unix_now() - 3600}),
    );
    let refusal = LiveSocket::connect(rt, Credentials::Header(&expired))
        .err()
        .expect("an expired token is refused");
    assert_eq!(refusal.status, 401, "{refusal:?}");
}

fn a_browser_offer_selects_the_protocol_and_pings_are_answered(rt: &Runtime) {
    let org = unique_org("live-ping");
    let mut socket = open(rt, &org);
    assert_eq!(socket.protocol.as_deref(), Some("leadheat.live.v1"));
    socket.send_text("ping");
    assert_eq!(socket.receive(NOTICE_WAIT), Received::Text("pong".into()));
    socket.close();

    // A client that sends a bearer header and offers no subprotocol gets none back.
    let socket = LiveSocket::connect(rt, Credentials::Header(&token(&org, "member")))
        .expect("a bearer header opens the socket too");
    assert_eq!(socket.protocol, None);
    socket.close();
}

fn a_manual_touchpoint_notifies_every_page_of_its_org_only(rt: &Runtime) {
    let _serial = serial();
    let org = unique_org("live-api");
    let other = unique_org("live-api-other");
    let member = token(&org, "member");
    let lead = create_lead(rt, &member, &format!("{org}@example.com"));

    let mut first = open(rt, &org);
    let mut second = LiveSocket::connect(
        rt,
        Credentials::Subprotocol(&token_for_user(&org, "viewer", "u2")),
    )
    .unwrap();
    let mut outsider = open(rt, &other);
    let before = unix_now();
    touch(rt, &member, &lead, "meeting");

    for socket in [&mut first, &mut second] {
        let notice = socket.notice(NOTICE_WAIT);
        assert_eq!(notice["type"], "changed", "{notice}");
        assert_eq!(notice["source"], "api", "{notice}");
        let at = notice["at"].as_str().unwrap();
        assert!(
            at >= leadheat_e2e::social::rfc3339(before - 1).as_str(),
            "{notice}"
        );
    }
    assert_eq!(
        outsider.receive(SILENCE),
        Received::Nothing,
        "another org's page must not hear this org's changes"
    );
    // The outsider's socket works: its own org's change reaches it.
    create_lead(
        rt,
        &token(&other, "member"),
        &format!("{other}@example.com"),
    );
    assert_eq!(outsider.notice(NOTICE_WAIT)["source"], "api");

    // Reads send nothing.
    rt.get("/v1/leads").bearer(&member).send_empty().expect(200);
    assert_eq!(first.receive(SILENCE), Received::Nothing);
    for socket in [first, second, outsider] {
        socket.close();
    }
}

fn a_webhook_event_notifies_through_the_sync_worker(rt: &Runtime) {
    let org = unique_org("live-social");
    let viewer = token(&org, "viewer");
    let page = numeric_id();
    connect_page(rt, &org, &page);
    let cursor = changes_cursor(rt, &viewer);
    let mut socket = open(rt, &org);

    let post = format!("{page}_{}", numeric_id());
    let body = page_event(
        &page,
        json!([{"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": post,
            "comment_id": format!("{post}_{}", numeric_id()), "message": "Live?",
            "from": {"id": numeric_id(), "name": "Ada Lovelace"}, "created_time": unix_now()}}]),
    );
    post_meta(rt, "facebook", &body).expect(200);

    let notice = socket.notice_from("social", NOTICE_WAIT);
    assert_eq!(notice["type"], "changed", "{notice}");
    // By the time the notice arrives the touchpoint is committed and visible to the page's probe.
    let changes = changed_since(rt, &viewer, &cursor);
    assert_eq!(changes["changed"], true, "{changes}");
    let feed = rt
        .get("/v1/feed")
        .bearer(&viewer)
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(feed["items"].as_array().unwrap().len(), 1, "{feed}");
    socket.close();
}

fn an_identified_tracking_event_notifies(rt: &Runtime) {
    let _serial = serial();
    let org = unique_org("live-track");
    let admin = token(&org, "admin");
    let key = rt
        .get("/v1/tracking")
        .bearer(&admin)
        .send_empty()
        .expect(200)
        .json()["site_key"]
        .as_str()
        .unwrap()
        .to_string();
    let mut socket = open(rt, &org);

    // An anonymous page view changes nothing a page shows: no notice.
    rt.post(&format!("/track/{key}"))
        .send_json(&json!({"visitor_id": "anon-live", "type": "page_view"}))
        .expect(202);
    assert_eq!(socket.receive(SILENCE), Received::Nothing);

    rt.post(&format!("/track/{key}"))
        .send_json(&json!({"visitor_id": "known-live", "type": "info_request",
            "identity": {"email": format!("{org}@example.com")}}))
        .expect(202);
    assert_eq!(socket.notice(NOTICE_WAIT)["source"], "tracking");
    socket.close();
}

fn a_scoring_run_notifies_and_its_level_change_moves_the_changes_cursor(rt: &Runtime) {
    let _serial = serial();
    let org = unique_org("live-scoring");
    let admin = token(&org, "admin");
    let weights = |price_quote: u32| {
        json!({"weights": {"price_quote": price_quote}, "thresholds": {"warm": 6, "hot": 16},
            "decay_half_life_days": null})
    };
    rt.request("PUT", "/v1/scoring")
        .bearer(&admin)
        .send_json(&weights(20))
        .expect(200);
    let lead = create_lead(rt, &admin, &format!("{org}@example.com"));
    touch(rt, &admin, &lead, "price_quote");
    let hot = rt
        .get(&format!("/v1/leads/{lead}"))
        .bearer(&admin)
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(hot["heat_level"], "HOT", "{hot}");

    // New weights flag the lead; only the job rescores it, HOT to COLD.
    rt.request("PUT", "/v1/scoring")
        .bearer(&admin)
        .send_json(&weights(1))
        .expect(200);
    let cursor = changes_cursor(rt, &admin);
    let mut socket = open(rt, &org);
    // The job's clock is the scheduled time; a second later than the cursor orders them.
    std::thread::sleep(Duration::from_millis(1100));
    let fired = rt.fire_cron("scoring", None, None).expect(200).json();
    assert_eq!(fired["outcome"], "ok", "{fired}");

    let notice = socket.notice_from("scoring", NOTICE_WAIT);
    assert_eq!(notice["type"], "changed", "{notice}");
    let cold = rt
        .get(&format!("/v1/leads/{lead}"))
        .bearer(&admin)
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(cold["heat_level"], "COLD", "{cold}");
    let changes = changed_since(rt, &admin, &cursor);
    assert_eq!(changes["changed"], true, "{changes}");
    socket.close();
}

fn a_socket_is_closed_once_its_token_has_expired(rt: &Runtime) {
    let org = unique_org("live-expiry");
    let short = mint_jwt(
        JWT_SECRET,
        &json!({"sub": "short", "org": org, "role": "viewer", "exp": unix_now() + 2}),
    );
    let mut expiring = LiveSocket::connect(rt, Credentials::Subprotocol(&short)).unwrap();
    let mut lasting = open(rt, &org);
    std::thread::sleep(Duration::from_secs(3));
    create_lead(rt, &token(&org, "member"), &format!("{org}@example.com"));

    lasting.notice_from("api", NOTICE_WAIT);
    assert_eq!(expiring.receive(NOTICE_WAIT), Received::Closed(Some(4001)));
    lasting.close();
}
