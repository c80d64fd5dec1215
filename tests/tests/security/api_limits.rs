//! Security suite: api_limits. The lead API's request rate limits (per user, per org), bearer token
//! issuer, audience and lifetime, live sockets (closed at token expiry without a notice, capped per
//! user), the custom field definition cap, and chunked bodies over the API's cap.
//!
//! The suite's shared runtime raises the rate limits for everyone (`SUITE_RATE_LIMITS`), so the
//! rate limit and issuer tests start a runtime of their own ([`configured_runtime`]) with the
//! product's per-user limit as wrangler.toml states it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use leadheat_e2e::live::{Credentials, LiveSocket, Received};
use leadheat_e2e::runner::E2eTest;
use leadheat_e2e::{
    mint_jwt, token, token_for_user, unique_org, unix_now, workspace_root, Resp, Runtime,
    JWT_SECRET,
};
use serde_json::{json, Value};

use super::problem;

pub const TESTS: &[E2eTest] = &[
    (
        "api_limits_user_rate_refuses_the_101st_request_in_10_s",
        api_limits_user_rate_refuses_the_101st_request_in_10_s,
    ),
    (
        "api_limits_org_rate_budget_limits_all_its_users_together",
        api_limits_org_rate_budget_limits_all_its_users_together,
    ),
    (
        "api_limits_jwt_issuer_and_audience_checked_when_configured",
        api_limits_jwt_issuer_and_audience_checked_when_configured,
    ),
    (
        "api_limits_jwt_lifetime_over_24_hours_is_refused",
        api_limits_jwt_lifetime_over_24_hours_is_refused,
    ),
    (
        "api_limits_live_socket_closed_at_token_expiry_without_a_notice",
        api_limits_live_socket_closed_at_token_expiry_without_a_notice,
    ),
    (
        "api_limits_live_sockets_per_user_are_capped",
        api_limits_live_sockets_per_user_are_capped,
    ),
    (
        "api_limits_custom_field_definitions_per_org_are_capped",
        api_limits_custom_field_definitions_per_org_are_capped,
    ),
    (
        "api_limits_chunked_body_over_the_cap_answers_413_while_streaming",
        api_limits_chunked_body_over_the_cap_answers_413_while_streaming,
    ),
];

// ---------------------------------------------------------------------------------------------
// The configured runtime: product rate limits, an issuer and an audience

const ISSUER: &str = "https://idp.leadheat.test";
const AUDIENCE: &str = "leadheat-api";
/// The org budget of the configured runtime: lowered from the product's 1,000 so a test reaches it
/// in a few seconds (the mechanism is the same whatever the number).
const TEST_ORG_LIMIT: usize = 150;
/// The period of both limits (wrangler.toml `API_RATE_LIMIT_PERIOD_SECONDS`).
const PERIOD: Duration = Duration::from_secs(10);

/// A value of the API worker's `[env.api.vars]` as wrangler.toml states it.
fn api_var(name: &str) -> String {
    let config = std::fs::read_to_string(workspace_root().join("wrangler.toml")).unwrap();
    let section = config
        .split("\n[")
        .find(|s| s.starts_with("env.api.vars]"))
        .expect("wrangler.toml has [env.api.vars]");
    section
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == name).then(|| value.trim().trim_matches('"').to_string())
        })
        .unwrap_or_else(|| panic!("[env.api.vars] has no {name}"))
}

/// One runtime for the tests that need their own configuration, shared while they run and stopped
/// when the last of them is done.
fn configured_runtime() -> Arc<Runtime> {
    static SHARED: Mutex<Weak<Runtime>> = Mutex::new(Weak::new());
    let mut slot = SHARED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(runtime) = slot.upgrade() {
        return runtime;
    }
    let per_user = api_var("API_RATE_LIMIT_PER_USER");
    let per_org = TEST_ORG_LIMIT.to_string();
    let runtime = Arc::new(Runtime::start_with_env(&[
        ("API_RATE_LIMIT_PER_USER", &per_user),
        ("API_RATE_LIMIT_PER_ORG", &per_org),
        ("AUTH_JWT_ISSUER", ISSUER),
        ("AUTH_JWT_AUDIENCE", AUDIENCE),
    ]));
    *slot = Arc::downgrade(&runtime);
    runtime
}

/// A token the configured runtime accepts (right issuer and audience), for `sub` in `org`.
fn configured_token(org: &str, sub: &str) -> String {
    mint_jwt(
        JWT_SECRET,
        &json!({"sub": sub, "org": org, "role": "member", "exp": unix_now() + 600,
                "iss": ISSUER, "aud": [AUDIENCE, "other-api"]}),
    )
}

fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// Waits for the start of a fresh rate limit window (the binding counts in fixed windows aligned
/// to multiples of the period), and returns its number.
fn next_window() -> u128 {
    let period = PERIOD.as_millis();
    let into = unix_millis() % period;
    std::thread::sleep(Duration::from_millis((period - into) as u64 + 50));
    unix_millis() / period
}

/// Sends `count` requests as `bearer` on 4 threads; returns their statuses.
fn burst(rt: &Runtime, bearer: &str, count: usize) -> Vec<u16> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|worker| {
                scope.spawn(move || {
                    (worker..count)
                        .step_by(4)
                        .map(|_| cheap_request(rt, bearer).status)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    })
}

fn cheap_request(rt: &Runtime, bearer: &str) -> Resp {
    rt.get("/v1/custom-fields").bearer(bearer).send_empty()
}

/// Runs `attempt` in a fresh window until it finished inside that window (a loaded machine may
/// need longer than a period once), at most three times.
fn within_one_window(what: &str, mut attempt: impl FnMut() -> bool) {
    for _ in 0..3 {
        let window = next_window();
        let finished = attempt();
        if finished && unix_millis() / PERIOD.as_millis() == window {
            return;
        }
    }
    panic!("{what}: three attempts in a row did not fit in one {PERIOD:?} window");
}

fn assert_rate_limited(resp: Resp, context: &str) -> Value {
    let retry_after = resp.header("Retry-After").map(str::to_string);
    let body = problem(resp, 429, context);
    assert!(
        body["type"].as_str().unwrap().ends_with("/rate-limited"),
        "{context}: {body}"
    );
    assert_eq!(
        retry_after.as_deref(),
        Some("10"),
        "{context}: Retry-After is the period"
    );
    body
}

fn api_limits_user_rate_refuses_the_101st_request_in_10_s(_: &Runtime) {
    let rt = configured_runtime();
    // The product's default per user, as wrangler.toml states it (100 per 10 s).
    assert_eq!(api_var("API_RATE_LIMIT_PER_USER"), "100");
    assert_eq!(api_var("API_RATE_LIMIT_PERIOD_SECONDS"), "10");
    let org = unique_org("sec-rl-user");
    let other_org = unique_org("sec-rl-other");
    let mut attempt = 0;
    within_one_window("100 requests of one user", || {
        attempt += 1;
        let user = configured_token(&org, &format!("busy-{attempt}"));
        let statuses = burst(&rt, &user, 100);
        assert!(
            statuses.iter().all(|s| *s == 200),
            "the first 100 requests of a user are served: {statuses:?}"
        );
        let body = assert_rate_limited(cheap_request(&rt, &user), "the 101st request");
        assert!(body["detail"].as_str().unwrap().contains("100"), "{body}");
        // Writes are limited the same way.
        let write = rt
            .post("/v1/leads")
            .bearer(&user)
            .send_json(&json!({"first_name": "Over", "last_name": "Limit"}));
        assert_rate_limited(write, "a write over the limit");
        // Another user of the same org (the org is within its budget) and a user of another org
        // are served.
        let colleague = configured_token(&org, &format!("colleague-{attempt}"));
        cheap_request(&rt, &colleague).expect(200);
        let outsider = configured_token(&other_org, &format!("busy-{attempt}"));
        cheap_request(&rt, &outsider).expect(200);
        true
    });
    // Health and the OpenAPI document are outside the limits.
    rt.get("/v1/health").send_empty().expect(200);
    rt.get("/v1/openapi.json").send_empty().expect(200);
    // Nothing over the limit was written (on any shard).
    assert_eq!(lead_count(&rt, &org), 0);
}

fn api_limits_org_rate_budget_limits_all_its_users_together(_: &Runtime) {
    let rt = configured_runtime();
    let org = unique_org("sec-rl-org");
    let other_org = unique_org("sec-rl-org-other");
    let mut attempt = 0;
    within_one_window("an org's budget", || {
        attempt += 1;
        let org = format!("{org}-{attempt}");
        // Three users, each far below their own limit of 100, spend the org's 150 together.
        let users: Vec<String> = (0..3)
            .map(|i| configured_token(&org, &format!("user-{i}")))
            .collect();
        let first = burst(&rt, &users[0], TEST_ORG_LIMIT / 2);
        let second = burst(&rt, &users[1], TEST_ORG_LIMIT / 2);
        assert!(
            first.iter().chain(&second).all(|s| *s == 200),
            "the org's first {TEST_ORG_LIMIT} requests are served: {first:?} {second:?}"
        );
        let body = assert_rate_limited(
            cheap_request(&rt, &users[2]),
            "a third user over the org budget",
        );
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("organisation"), "{body}");
        assert!(detail.contains(&TEST_ORG_LIMIT.to_string()), "{body}");
        assert_rate_limited(cheap_request(&rt, &users[0]), "the first user too");
        // Another org is not limited by this org's burst, even a user with the same sub.
        let outsider = configured_token(&other_org, "user-2");
        cheap_request(&rt, &outsider).expect(200);
        true
    });
}

fn api_limits_jwt_issuer_and_audience_checked_when_configured(_: &Runtime) {
    let rt = configured_runtime();
    let org = unique_org("sec-iss");
    let exp = unix_now() + 600;
    let claims = |extra: Value| {
        let mut claims = json!({"sub": "u-iss", "org": org, "role": "admin", "exp": exp});
        for (name, value) in extra.as_object().unwrap() {
            claims[name] = value.clone();
        }
        mint_jwt(JWT_SECRET, &claims)
    };
    for accepted in [
        json!({"iss": ISSUER, "aud": AUDIENCE}),
        json!({"iss": ISSUER, "aud": ["another-api", AUDIENCE]}),
    ] {
        cheap_request(&rt, &claims(accepted.clone()))
            .expect(200)
            .json();
    }
    for (refused, context) in [
        (json!({}), "no iss and no aud"),
        (json!({"aud": AUDIENCE}), "no iss"),
        (json!({"iss": ISSUER}), "no aud"),
        (
            json!({"iss": "https://evil.example", "aud": AUDIENCE}),
            "another issuer",
        ),
        (
            json!({"iss": format!("{ISSUER}/"), "aud": AUDIENCE}),
            "a near issuer",
        ),
        (
            json!({"iss": ISSUER, "aud": "another-api"}),
            "another audience",
        ),
        (
            json!({"iss": ISSUER, "aud": ["a", "b"]}),
            "an audience list without ours",
        ),
    ] {
        let bearer = claims(refused);
        let body = problem(cheap_request(&rt, &bearer), 401, context);
        assert!(
            body["type"].as_str().unwrap().ends_with("/unauthorized"),
            "{context}: {body}"
        );
        // The live socket authenticates the same way.
        let refusal = LiveSocket::connect(&rt, Credentials::Subprotocol(&bearer)).err();
        assert_eq!(refusal.map(|r| r.status), Some(401), "{context} (live)");
    }
    // The suite's runtime sets neither: tokens without iss and aud are accepted there (every other
    // test of the suite relies on it).
}

fn api_limits_jwt_lifetime_over_24_hours_is_refused(rt: &Runtime) {
    let org = unique_org("sec-lifetime");
    let now = unix_now();
    let day = 24 * 3600;
    let token_with = |times: Value| {
        let mut claims = json!({"sub": "u-life", "org": org, "role": "admin"});
        for (name, value) in times.as_object().unwrap() {
            claims[name] = value.clone();
        }
        mint_jwt(JWT_SECRET, &claims)
    };
    for accepted in [
        json!({"iat": now, "exp": now + day - 60}),
        json!({"exp": now + day - 60}),
        json!({"iat": now - day + 120, "exp": now + 60}),
    ] {
        let resp = cheap_request(rt, &token_with(accepted.clone()));
        assert_eq!(resp.status, 200, "{accepted}: {}", resp.body);
    }
    for (refused, context) in [
        (
            json!({"iat": now, "exp": now + day + 3600}),
            "issued for 25 hours",
        ),
        (json!({"exp": now + 7 * day}), "no iat, a week ahead"),
        (
            json!({"iat": now - 30 * day, "exp": now + 600}),
            "issued for a month, 10 minutes left",
        ),
        (
            json!({"iat": now + 6 * day, "exp": now + 7 * day}),
            "a future iat does not hide a far exp",
        ),
    ] {
        let body = problem(cheap_request(rt, &token_with(refused)), 401, context);
        assert!(
            body["detail"].as_str().unwrap().contains("24-hour"),
            "{context}: {body}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Live sockets

fn api_limits_live_socket_closed_at_token_expiry_without_a_notice(rt: &Runtime) {
    // An org where nothing happens: no write, so no notice is ever sent to its hub.
    let org = unique_org("sec-live-expiry");
    let exp = unix_now() + 3;
    let short = mint_jwt(
        JWT_SECRET,
        &json!({"sub": "short-lived", "org": org, "role": "viewer", "exp": exp}),
    );
    let mut socket = LiveSocket::connect(rt, Credentials::Subprotocol(&short))
        .expect("the socket opens while its token is valid");
    let mut lasting = LiveSocket::connect(rt, Credentials::Subprotocol(&token(&org, "viewer")))
        .expect("a socket with a longer token opens");
    let received = socket.receive(Duration::from_secs(20));
    let at = unix_now();
    assert_eq!(received, Received::Closed(Some(4001)), "closed at expiry");
    assert!(at >= exp, "closed at {at}, before its token's exp {exp}");
    assert!(at <= exp + 10, "closed at {at}, long after exp {exp}");
    // The socket with a valid token stays open.
    assert_eq!(lasting.receive(Duration::from_secs(1)), Received::Nothing);
    lasting.close();
}

fn api_limits_live_sockets_per_user_are_capped(rt: &Runtime) {
    const MAX_SOCKETS_PER_USER: usize = 10; // leadheat_domain::live::MAX_SOCKETS_PER_USER
    assert_eq!(
        leadheat_domain::live::MAX_SOCKETS_PER_USER,
        MAX_SOCKETS_PER_USER
    );
    let org = unique_org("sec-live-cap");
    let user = token_for_user(&org, "viewer", "tabby");
    let mut sockets: Vec<LiveSocket> = (0..MAX_SOCKETS_PER_USER)
        .map(|i| {
            LiveSocket::connect(rt, Credentials::Subprotocol(&user))
                .unwrap_or_else(|r| panic!("socket {i} of the user refused: {}", r.status))
        })
        .collect();
    let refusal = LiveSocket::connect(rt, Credentials::Subprotocol(&user)).err();
    assert_eq!(
        refusal.map(|r| r.status),
        Some(429),
        "socket 11 of one user"
    );
    // The refusal as a plain request, to read its problem body.
    let resp = rt
        .get("/v1/live")
        .header("Upgrade", "websocket")
        .bearer(&user)
        .send_empty();
    let body = problem(resp, 429, "socket 11 of one user (plain request)");
    assert!(
        body["detail"].as_str().unwrap().contains("this user"),
        "{body}"
    );
    // Another user of the same org still connects.
    let colleague = LiveSocket::connect(
        rt,
        Credentials::Subprotocol(&token_for_user(&org, "viewer", "other")),
    )
    .expect("another user of the org is not capped by this one");
    colleague.close();
    // Closing one of the user's sockets frees a place.
    sockets.pop().unwrap().close();
    let reopened = rt.wait_for("a freed socket place", Duration::from_secs(15), || {
        LiveSocket::connect(rt, Credentials::Subprotocol(&user)).ok()
    });
    sockets.push(reopened);
    for socket in sockets {
        socket.close();
    }
}

// ---------------------------------------------------------------------------------------------
// Custom field definitions

fn create_field(rt: &Runtime, admin: &str, key: &str) -> Resp {
    rt.post("/v1/custom-fields")
        .bearer(admin)
        .send_json(&json!({"key": key, "label": key, "type": "text"}))
}

fn api_limits_custom_field_definitions_per_org_are_capped(rt: &Runtime) {
    const MAX: usize = 100; // leadheat_domain::custom_fields::MAX_DEFINITIONS_PER_ORG
    assert_eq!(leadheat_domain::custom_fields::MAX_DEFINITIONS_PER_ORG, MAX);
    let org = unique_org("sec-cf-cap");
    let admin = token(&org, "admin");
    for i in 0..MAX - 5 {
        create_field(rt, &admin, &format!("field_{i}")).expect(201);
    }
    // The last five places, raced for by ten creates at once: exactly five win.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..10)
            .map(|i| {
                let admin = admin.clone();
                scope.spawn(move || create_field(rt, &admin, &format!("racer_{i}")).status)
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        5,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| matches!(s, 201 | 409)),
        "{statuses:?}"
    );
    // The 101st definition is refused, naming the field.
    let body = problem(
        create_field(rt, &admin, "one_too_many"),
        409,
        "definition 101",
    );
    assert_eq!(body["errors"][0]["field"], "key", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("one_too_many") && message.contains("100"),
        "{body}"
    );
    let listed = rt
        .get("/v1/custom-fields")
        .bearer(&admin)
        .send_empty()
        .expect(200)
        .json();
    assert_eq!(listed["items"].as_array().unwrap().len(), MAX);
    // Another org is not affected, and deleting one frees a place.
    create_field(
        rt,
        &token(&unique_org("sec-cf-cap-other"), "admin"),
        "field_0",
    )
    .expect(201);
    let id = listed["items"][0]["id"].as_str().unwrap();
    rt.request("DELETE", &format!("/v1/custom-fields/{id}"))
        .bearer(&admin)
        .send_empty()
        .expect(204);
    create_field(rt, &admin, "one_too_many").expect(201);
}

// ---------------------------------------------------------------------------------------------
// Chunked bodies

/// The API's body cap (functions/api/src/request.rs MAX_API_BODY_BYTES).
const MAX_API_BODY_BYTES: usize = 256 * 1024;

/// Opens a connection to the runtime and sends a chunked `POST /v1/leads` head.
fn chunked_post(rt: &Runtime, bearer: &str) -> TcpStream {
    let address = rt.base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // A server that stops reading (having answered) must not block the writer forever.
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let head = format!(
        "POST /v1/leads HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {bearer}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

fn write_chunk(stream: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    stream.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
    stream.write_all(data)?;
    stream.write_all(b"\r\n")
}

/// Reads a response's status and body (the connection is closed after it).
fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
            Err(e) if raw.is_empty() => panic!("no response: {e}"),
            Err(_) => break,
        }
        let text = String::from_utf8_lossy(&raw);
        // Enough once the head and a complete JSON body are in.
        if text.contains("\r\n\r\n") && text.trim_end().ends_with('}') {
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:.200}"));
    (status, text)
}

/// The org's leads, counted on every shard (an org none of whose requests got through has none).
fn lead_count(rt: &Runtime, org: &str) -> i64 {
    rt.query_shards("SELECT count(*) FROM leads WHERE org_id = ?1", [org], |r| {
        r.get::<_, i64>(0)
    })
    .into_iter()
    .sum()
}

/// Sends a chunked body a little over the cap (`finish`: with its terminating chunk) and returns
/// the answer's status and text. workerd resets the connection of a request whose body a worker
/// did not read to the end, and the local runtime, still forwarding, may then lose the answer (502);
/// such an attempt is repeated, at most three times.
fn oversized_chunked_post(rt: &Runtime, bearer: &str, finish: bool) -> (u16, String) {
    let filler = "x".repeat(16 * 1024);
    for _ in 0..3 {
        let mut stream = chunked_post(rt, bearer);
        let mut sent = 0;
        let _ = write_chunk(&mut stream, br#"{"first_name":"Huge","last_name":""#);
        while sent <= MAX_API_BODY_BYTES {
            if write_chunk(&mut stream, filler.as_bytes()).is_err() {
                break;
            }
            sent += filler.len();
        }
        if finish {
            let _ = write_chunk(&mut stream, br#""}"#).and_then(|_| stream.write_all(b"0\r\n\r\n"));
        }
        let (status, text) = read_response(&mut stream);
        if status != 502 {
            return (status, text);
        }
    }
    panic!("three attempts in a row lost the answer to the connection reset");
}

fn api_limits_chunked_body_over_the_cap_answers_413_while_streaming(rt: &Runtime) {
    let org = unique_org("sec-chunked");
    let admin = token(&org, "admin");
    // A small chunked body is read and served.
    let mut stream = chunked_post(rt, &admin);
    write_chunk(&mut stream, br#"{"first_name":"Chunky","#).unwrap();
    write_chunk(&mut stream, br#""last_name":"Bacon"}"#).unwrap();
    stream.write_all(b"0\r\n\r\n").unwrap();
    let (status, text) = read_response(&mut stream);
    assert_eq!(status, 201, "{text}");
    assert_eq!(lead_count(rt, &org), 1);

    // A complete chunked body over the cap: 413, nothing stored.
    let (status, text) = oversized_chunked_post(rt, &admin, true);
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("application/problem+json"), "{text}");

    // An upload that never ends (no terminating chunk: the body is still open while the answer
    // is read): answered 413 as soon as the cap is passed, without waiting for the body's end.
    let started = Instant::now();
    let (status, text) = oversized_chunked_post(rt, &admin, false);
    assert_eq!(status, 413, "an unfinished upload over the cap: {text}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "answered only after {:?}",
        started.elapsed()
    );
    assert_eq!(
        lead_count(rt, &org),
        1,
        "nothing of the refused bodies was stored"
    );
    // The API still answers.
    rt.get("/v1/leads").bearer(&admin).send_empty().expect(200);
}
