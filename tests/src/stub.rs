//! A stub of the platforms' APIs (Meta Graph and LinkedIn REST) for end-to-end tests: a tiny
//! threaded HTTP/1.1 server on 127.0.0.1 written with `std::net`, programmable per resource.
//!
//! - `GET {meta_base}/{leadgen_id}?access_token=...` answers the lead registered with
//!   [`Stub::add_meta_lead`] as `{"id","created_time","field_data":[...]}`;
//! - `GET {linkedin_base}/leadFormResponses/{id}` and `/leadForms/{id}` answer what
//!   [`Stub::add_linkedin_response`] / [`Stub::add_linkedin_form`] registered;
//! - [`Stub::set_mode`] makes every request whose path contains a key misbehave: 500s, 429 or a
//!   Meta throttle code with usage headers, a Meta code 190, a permanent 400, or a slow answer.
//! - [`Stub::set_faults`] injects faults into the requests that have no mode of their own: a
//!   deterministic share (a seeded counter, no clock or thread scheduling involved in the choice)
//!   answers 429 (Meta usage headers and `Retry-After`) or 500, and some answers are slow. Used by
//!   the load tests (`tests/tests/load.rs`).
//!
//! - Ownership: the Graph calls `GET /me`, `GET /me/accounts`, `GET /{page-id}?fields=...` and
//!   LinkedIn's `GET /organizationAcls` and `GET /adAccountUsers` answer for the access tokens
//!   registered with [`Stub::grant`] (an unknown token gets Graph code 190 / LinkedIn 401).
//!   Tokens are read from `Authorization: Bearer` (or Graph's `access_token` parameter); a Graph
//!   call whose `appsecret_proof` is not the HMAC of its token under [`META_APP_SECRET`] is refused.
//!
//! - `GET /oidc/jwks` answers the identity provider's key set registered with [`Stub::set_jwks`]
//!   (with its `Cache-Control`), for the sign-in tests (`tests/tests/oidc.rs`).
//! - OAuth connect: Graph's `GET /oauth/access_token` (a code for a short-lived user token, then
//!   `grant_type=fb_exchange_token` for the long-lived one) and LinkedIn's
//!   `POST /oauth/v2/accessToken` answer for the codes registered with [`Stub::add_oauth_code`],
//!   once each, when the client id and secret are the suite's ([`META_APP_ID`],
//!   [`LINKEDIN_CLIENT_ID`]).
//!
//! Every request is recorded, so tests count the calls made for a resource.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use crate::{hmac_sha256, LINKEDIN_CLIENT_SECRET, META_APP_SECRET};

/// The Meta app id the suites configure (`META_APP_ID`).
pub const META_APP_ID: &str = "stub-meta-app-id";
/// The LinkedIn client id the suites configure (`LINKEDIN_CLIENT_ID`).
pub const LINKEDIN_CLIENT_ID: &str = "stub-linkedin-client-id";

/// Who an access token speaks for, as the stub platforms see it.
#[derive(Debug, Clone, PartialEq)]
pub enum Grant {
    /// A Facebook user token: these pages are in its `me/accounts`.
    GraphUser {
        user_id: String,
        pages: Vec<StubPage>,
    },
    /// A page's own token: its `me` is the page.
    GraphPage(StubPage),
    /// An Instagram Login token: its `me` is the Instagram account.
    InstagramLogin { account_id: String },
    /// A LinkedIn member token: organisation roles `(id, role, state)` and ad account roles
    /// `(id, role)`.
    LinkedinMember {
        organizations: Vec<(String, String, String)>,
        ad_accounts: Vec<(String, String)>,
    },
}

/// A Facebook page a token administers, with its Instagram business account if any.
#[derive(Debug, Clone, PartialEq)]
pub struct StubPage {
    pub id: String,
    pub instagram_business_account: Option<String>,
}

impl StubPage {
    pub fn new(id: &str) -> StubPage {
        StubPage {
            id: id.to_string(),
            instagram_business_account: None,
        }
    }

    pub fn with_instagram(id: &str, instagram_account: &str) -> StubPage {
        StubPage {
            id: id.to_string(),
            instagram_business_account: Some(instagram_account.to_string()),
        }
    }
}

/// How requests for a resource are answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// The registered resource (404 when none).
    Normal,
    /// 500 with a Graph-style error body.
    ServerError,
    /// Meta throttling: HTTP 400, error `code`, and usage headers saying access returns in
    /// `regain_minutes`.
    MetaThrottled { code: i64, regain_minutes: u32 },
    /// HTTP 429 with `Retry-After: seconds` (LinkedIn style).
    TooManyRequests { retry_after_seconds: u32 },
    /// Meta code 190: the access token is invalid.
    TokenInvalid,
    /// HTTP 400, Graph code 100: a request that can never succeed.
    Permanent,
    /// Answers normally after sleeping this long.
    Slow(Duration),
}

/// What the fault injection chose for one request.
struct Injected {
    /// `Some(retry_after_seconds)`: answer 429.
    throttled: Option<u32>,
    server_error: bool,
    delay: Option<Duration>,
}

/// The next draw of the fault injection (the caller holds the state's lock, so draws are numbered
/// in the order requests arrive).
fn draw_fault(state: &mut State, faults: &Faults) -> Injected {
    let n = state.fault_counts.drawn;
    state.fault_counts.drawn += 1;
    let draw = splitmix64(faults.seed.wrapping_add(n));
    let roll = (draw % 1000) as u32;
    let throttled = roll < faults.throttle_permille;
    let server_error = !throttled && roll < faults.throttle_permille + faults.error_permille;
    let slow = (((draw >> 32) % 1000) as u32) < faults.slow_permille;
    state.fault_counts.throttled += u64::from(throttled);
    state.fault_counts.errors += u64::from(server_error);
    state.fault_counts.slow += u64::from(slow);
    Injected {
        throttled: throttled.then_some(faults.retry_after_seconds),
        server_error,
        delay: slow.then_some(faults.slow),
    }
}

/// SplitMix64: a well-mixed 64-bit value of a counter (deterministic, no dependency).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fault injection for the requests without a mode of their own ([`Stub::set_faults`]).
///
/// The n-th such request (counted from 0 since the faults were set) draws `splitmix64(seed + n)`:
/// `throttle_permille` of the draws answer 429, the next `error_permille` answer 500, and
/// independently `slow_permille` of them answer after sleeping `slow`. The same seed and the same
/// request order give the same faults; which request gets the n-th draw depends on the order in
/// which the consumer's calls arrive.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    pub seed: u64,
    /// Per mille of requests answered 429 with `Retry-After` and Meta usage headers.
    pub throttle_permille: u32,
    /// Per mille of requests answered 500 (a transient Graph error).
    pub error_permille: u32,
    /// Per mille of requests answered slowly (whatever their status).
    pub slow_permille: u32,
    pub slow: Duration,
    /// The `Retry-After` seconds of a 429; Meta's usage headers say as much, rounded up to minutes.
    pub retry_after_seconds: u32,
}

impl Faults {
    /// About 30 % of calls fail (15 % throttled, 15 % server errors) and 10 % are slow (300 ms).
    pub fn thirty_percent(seed: u64) -> Faults {
        Faults {
            seed,
            throttle_permille: 150,
            error_permille: 150,
            slow_permille: 100,
            slow: Duration::from_millis(300),
            retry_after_seconds: 30,
        }
    }
}

/// What the fault injection did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Requests that drew from the fault injection.
    pub drawn: u64,
    pub throttled: u64,
    pub errors: u64,
    pub slow: u64,
}

#[derive(Default)]
struct State {
    grants: HashMap<String, Grant>,
    /// Pages whose id and name any valid Graph token may read (without the page's token).
    public_pages: Vec<String>,
    meta_leads: HashMap<String, Value>,
    linkedin: HashMap<String, Value>,
    modes: Vec<(String, Mode)>,
    /// `GET /oidc/jwks`: a key set and its `Cache-Control`.
    jwks: Option<(Value, Option<String>)>,
    faults: Option<Faults>,
    fault_counts: FaultCounts,
    /// Every request: method, path with query, headers (lower-case names).
    calls: Vec<Call>,
    /// OAuth codes not exchanged yet → the (long-lived) token they stand for.
    oauth_codes: HashMap<String, String>,
    /// Graph's short-lived user tokens → their long-lived token.
    short_tokens: HashMap<String, String>,
}

/// One request the stub received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// The request body (a form for LinkedIn's token endpoint).
    pub body: String,
}

impl Call {
    /// The token of `Authorization: Bearer`, if the request carried one.
    pub fn bearer(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(name, _)| name == "authorization")
            .and_then(|(_, value)| value.strip_prefix("Bearer "))
    }

    /// A query parameter of the request, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(self.target.split_once('?')?.1, name)
    }
}

/// The running stub; stops accepting when dropped (its thread ends with the test process).
pub struct Stub {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl Stub {
    pub fn start() -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port for the stub");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let state = Arc::clone(&shared);
                thread::spawn(move || {
                    let _ = serve(stream, &state);
                });
            }
        });
        Stub { port, state }
    }

    /// The stub every runtime of this test process calls unless a test sets its own base URLs.
    pub fn shared() -> &'static Stub {
        static SHARED: OnceLock<Stub> = OnceLock::new();
        SHARED.get_or_init(Stub::start)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Makes a page's id and name readable by any valid Graph token, as a public page is; only
    /// its administrators get its `access_token`.
    pub fn add_public_page(&self, page_id: &str) {
        self.lock().public_pages.push(page_id.to_string());
    }

    /// Registers (or replaces) what `token` speaks for.
    pub fn grant(&self, token: &str, grant: Grant) {
        self.lock().grants.insert(token.to_string(), grant);
    }

    /// Makes `token` a user or member token that administers every account a
    /// `PUT /v1/integrations/{platform}` body lists (Instagram accounts through pages of their own).
    pub fn grant_connect_body(&self, platform: &str, body: &Value) {
        let Some(token) = body["access_token"].as_str() else {
            return;
        };
        let ids = |field: &str| -> Vec<String> {
            body[field]
                .as_array()
                .map(|ids| {
                    ids.iter()
                        .map(|id| id.as_str().map_or_else(|| id.to_string(), str::to_string))
                        .map(|id| id.rsplit(':').next().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        let grant = match platform {
            "facebook" => Grant::GraphUser {
                user_id: format!("user-of-{token}"),
                pages: ids("page_ids").iter().map(|id| StubPage::new(id)).collect(),
            },
            "instagram" => Grant::GraphUser {
                user_id: format!("user-of-{token}"),
                pages: ids("account_ids")
                    .iter()
                    .map(|id| StubPage::with_instagram(&format!("page-of-{id}"), id))
                    .collect(),
            },
            _ => Grant::LinkedinMember {
                organizations: ids("organization_ids")
                    .into_iter()
                    .map(|id| (id, "ADMINISTRATOR".to_string(), "APPROVED".to_string()))
                    .collect(),
                ad_accounts: ids("sponsored_account_ids")
                    .into_iter()
                    .map(|id| (id, "ACCOUNT_MANAGER".to_string()))
                    .collect(),
            },
        };
        // Tests share tokens like "AQX": a grant adds to what the token already administers.
        let mut state = self.lock();
        match (state.grants.get_mut(token), grant) {
            (
                Some(Grant::GraphUser { pages, .. }),
                Grant::GraphUser {
                    pages: more_pages, ..
                },
            ) => {
                for page in more_pages {
                    if !pages.contains(&page) {
                        pages.push(page);
                    }
                }
            }
            (
                Some(Grant::LinkedinMember {
                    organizations,
                    ad_accounts,
                }),
                Grant::LinkedinMember {
                    organizations: more_organizations,
                    ad_accounts: more_ad_accounts,
                },
            ) => {
                organizations.extend(more_organizations);
                ad_accounts.extend(more_ad_accounts);
            }
            (_, grant) => {
                state.grants.insert(token.to_string(), grant);
            }
        }
    }

    /// The value for `META_GRAPH_BASE_URL`.
    pub fn meta_base(&self) -> String {
        format!("{}/graph/v25.0", self.url())
    }

    /// The value for `LINKEDIN_OAUTH_BASE_URL`.
    pub fn linkedin_oauth_base(&self) -> String {
        format!("{}/linkedin/oauth/v2", self.url())
    }

    /// The value for `META_OAUTH_DIALOG_URL` (the stub has no dialog: tests play the browser).
    pub fn meta_dialog(&self) -> String {
        format!("{}/facebook/v25.0/dialog/oauth", self.url())
    }

    /// Registers an authorization code the platform's login would hand out for `token`'s
    /// person; it can be exchanged once.
    pub fn add_oauth_code(&self, code: &str, token: &str) {
        self.lock()
            .oauth_codes
            .insert(code.to_string(), token.to_string());
    }

    /// The value for `LINKEDIN_API_BASE_URL`.
    pub fn linkedin_base(&self) -> String {
        format!("{}/linkedin/rest", self.url())
    }

    /// Registers a Graph lead: `field_data` is `[{"name","values":[..]}]`.
    pub fn add_meta_lead(&self, leadgen_id: &str, field_data: Value) {
        self.lock().meta_leads.insert(
            leadgen_id.to_string(),
            json!({"id": leadgen_id, "created_time": "2026-01-05T10:00:00+0000", "field_data": field_data}),
        );
    }

    pub fn add_linkedin_response(&self, response_id: &str, response: Value) {
        self.lock()
            .linkedin
            .insert(format!("leadFormResponses/{response_id}"), response);
    }

    pub fn add_linkedin_form(&self, form_id: &str, form: Value) {
        self.lock()
            .linkedin
            .insert(format!("leadForms/{form_id}"), form);
    }

    /// The path of the identity provider's key set, [`Stub::set_jwks`].
    pub const JWKS_PATH: &'static str = "/oidc/jwks";

    /// Serves `jwks` at [`Stub::JWKS_PATH`] (replacing the previous set, as a key rotation does),
    /// with `Cache-Control: cache_control` when given.
    pub fn set_jwks(&self, jwks: Value, cache_control: Option<&str>) {
        self.lock().jwks = Some((jwks, cache_control.map(str::to_string)));
    }

    /// Requests whose path contains `key` are answered according to `mode` (latest setting wins).
    pub fn set_mode(&self, key: &str, mode: Mode) {
        let mut state = self.lock();
        state.modes.retain(|(k, _)| k != key);
        state.modes.push((key.to_string(), mode));
    }

    /// Injects faults into every request without a mode of its own (`None` stops); the draw
    /// counter and [`Stub::fault_counts`] restart from 0.
    pub fn set_faults(&self, faults: Option<Faults>) {
        let mut state = self.lock();
        state.faults = faults;
        state.fault_counts = FaultCounts::default();
    }

    pub fn fault_counts(&self) -> FaultCounts {
        self.lock().fault_counts
    }

    /// Requests received whose path and query contain `fragment`.
    pub fn calls(&self, fragment: &str) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.target.contains(fragment))
            .cloned()
            .collect()
    }

    pub fn call_count(&self, fragment: &str) -> usize {
        self.calls(fragment).len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim().to_string();
            if name == "content-length" {
                content_length = value.parse().unwrap_or(0);
            }
            headers.push((name, value));
        }
    }
    let mut body = vec![0u8; content_length.min(1 << 20)];
    if content_length > 0 {
        std::io::Read::read_exact(&mut reader, &mut body)?;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let path = target.split('?').next().unwrap_or("").to_string();
    let query = target.split_once('?').map_or("", |(_, q)| q).to_string();
    let (mode, injected, resource) = {
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        state.calls.push(Call {
            method: method.clone(),
            target: target.clone(),
            headers: headers.clone(),
            body: body.clone(),
        });
        let mode = state
            .modes
            .iter()
            .rev()
            .find(|(key, _)| path.contains(key.as_str()))
            .map(|(_, mode)| mode.clone());
        let injected = match (&mode, state.faults.clone()) {
            (None, Some(faults)) => Some(draw_fault(&mut state, &faults)),
            _ => None,
        };
        let resource = match oauth_answer(&mut state, &path, &query, &body) {
            Some(answer) => Some(answer),
            None => match ownership_answer(&state, &path, &query, &headers) {
                Some(answer) => Some(answer),
                None => lookup(&state, &path).map(|value| (200, value)),
            },
        };
        (mode.unwrap_or(Mode::Normal), injected, resource)
    };
    let mode = match injected {
        Some(injected) => {
            if let Some(delay) = injected.delay {
                thread::sleep(delay);
            }
            if let Some(seconds) = injected.throttled {
                // Meta's usage headers (access regained in whole minutes) and `Retry-After`.
                let mut headers = usage_headers(100, seconds.div_ceil(60));
                headers.push(("Retry-After".to_string(), seconds.to_string()));
                let body = json!({"error": {"message": "(#4) Application request limit reached", "type": "OAuthException", "code": 4, "is_transient": true}, "message": "Resource level throttle limit reached", "status": 429});
                return respond(stream, 429, headers, body);
            }
            if injected.server_error {
                Mode::ServerError
            } else {
                Mode::Normal
            }
        }
        None => mode,
    };
    let (status, extra_headers, body): (u16, Vec<(String, String)>, Value) = match mode {
        Mode::Normal | Mode::Slow(_) => {
            if let Mode::Slow(delay) = mode {
                thread::sleep(delay);
            }
            match resource {
                Some((status, value)) if path == Stub::JWKS_PATH => {
                    let cache_control =
                        state.lock().unwrap_or_else(|p| p.into_inner()).jwks.clone();
                    let headers = cache_control
                        .and_then(|(_, value)| value)
                        .map(|value| vec![("Cache-Control".to_string(), value)])
                        .unwrap_or_default();
                    (status, headers, value)
                }
                Some((status, value)) => (status, usage_headers(12, 0), value),
                None => (
                    404,
                    vec![],
                    json!({"error": {"message": format!("Unsupported get request. Object with ID '{path}' does not exist"), "type": "GraphMethodException", "code": 100, "error_subcode": 33}, "message": "Not found", "status": 404}),
                ),
            }
        }
        Mode::ServerError => (
            500,
            vec![],
            json!({"error": {"message": "An unexpected error has occurred. Please retry your request later.", "type": "OAuthException", "code": 2, "is_transient": true}}),
        ),
        Mode::MetaThrottled {
            code,
            regain_minutes,
        } => (
            400,
            usage_headers(100, regain_minutes),
            json!({"error": {"message": "(#4) Application request limit reached", "type": "OAuthException", "code": code, "is_transient": true}}),
        ),
        Mode::TooManyRequests {
            retry_after_seconds,
        } => (
            429,
            vec![("Retry-After".to_string(), retry_after_seconds.to_string())],
            json!({"message": "Resource level throttle limit reached", "status": 429}),
        ),
        Mode::TokenInvalid => (
            400,
            vec![],
            json!({"error": {"message": "Error validating access token: Session has expired.", "type": "OAuthException", "code": 190, "error_subcode": 463}}),
        ),
        Mode::Permanent => (
            400,
            vec![],
            json!({"error": {"message": "Unsupported get request.", "type": "GraphMethodException", "code": 100, "error_subcode": 33}}),
        ),
    };
    respond(stream, status, extra_headers, body)
}

fn respond(
    mut stream: TcpStream,
    status: u16,
    extra_headers: Vec<(String, String)>,
    body: Value,
) -> std::io::Result<()> {
    let body = body.to_string();
    let mut response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in extra_headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&body);
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

fn lookup(state: &State, path: &str) -> Option<Value> {
    if path == Stub::JWKS_PATH {
        return state.jwks.as_ref().map(|(jwks, _)| jwks.clone());
    }
    if let Some(rest) = path.strip_prefix("/graph/v25.0/") {
        return state.meta_leads.get(rest).cloned();
    }
    if let Some(rest) = path.strip_prefix("/linkedin/rest/") {
        let decoded = rest.replace("%3A", ":").replace("%3a", ":");
        return state.linkedin.get(&decoded).cloned();
    }
    None
}

fn usage_headers(percent: u32, regain_minutes: u32) -> Vec<(String, String)> {
    vec![
        (
            "X-App-Usage".to_string(),
            json!({"call_count": percent.min(100), "total_time": 5, "total_cputime": 5}).to_string(),
        ),
        (
            "X-Business-Use-Case-Usage".to_string(),
            json!({"100200300": [{"type": "pages", "call_count": percent, "total_cputime": 5, "total_time": 5, "estimated_time_to_regain_access": regain_minutes}]}).to_string(),
        ),
    ]
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| percent_decode(value))
    })
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The access token of a request: `Authorization: Bearer`, else Graph's `access_token` parameter.
fn access_token(query: &str, headers: &[(String, String)]) -> Option<String> {
    headers
        .iter()
        .find(|(name, _)| name == "authorization")
        .and_then(|(_, value)| value.strip_prefix("Bearer "))
        .map(str::to_string)
        .or_else(|| query_param(query, "access_token"))
}

fn graph_error(code: i64, message: &str) -> (u16, Value) {
    (
        400,
        json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "stub"}}),
    )
}

/// Answers the token endpoints of the OAuth connect: Graph `oauth/access_token` (query) and
/// LinkedIn `oauth/v2/accessToken` (form body); `None` for every other path.
fn oauth_answer(state: &mut State, path: &str, query: &str, body: &str) -> Option<(u16, Value)> {
    if path == "/graph/v25.0/oauth/access_token" {
        let param = |name: &str| query_param(query, name).unwrap_or_default();
        if param("client_id") != META_APP_ID || param("client_secret") != META_APP_SECRET {
            return Some(graph_error(
                101,
                "Error validating application. Invalid application ID or secret.",
            ));
        }
        if param("grant_type") == "fb_exchange_token" {
            return Some(match state.short_tokens.get(&param("fb_exchange_token")) {
                Some(long) => (
                    200,
                    json!({"access_token": long, "token_type": "bearer", "expires_in": 5_183_944}),
                ),
                None => graph_error(
                    190,
                    "Invalid OAuth access token - Cannot parse access token",
                ),
            });
        }
        if param("redirect_uri").is_empty() {
            return Some(graph_error(100, "Missing redirect_uri parameter."));
        }
        return Some(match state.oauth_codes.remove(&param("code")) {
            Some(token) => {
                let short = format!("short-{token}");
                state.short_tokens.insert(short.clone(), token);
                (
                    200,
                    json!({"access_token": short, "token_type": "bearer", "expires_in": 5_400}),
                )
            }
            None => graph_error(100, "Invalid verification code format."),
        });
    }
    if path != "/linkedin/oauth/v2/accessToken" {
        return None;
    }
    let param = |name: &str| query_param(body, name).unwrap_or_default();
    if param("client_id") != LINKEDIN_CLIENT_ID || param("client_secret") != LINKEDIN_CLIENT_SECRET
    {
        return Some((
            401,
            json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
        ));
    }
    if param("grant_type") != "authorization_code" || param("redirect_uri").is_empty() {
        return Some((
            400,
            json!({"error": "invalid_request", "error_description": "A required parameter \"grant_type\" or \"redirect_uri\" is missing"}),
        ));
    }
    Some(match state.oauth_codes.remove(&param("code")) {
        Some(token) => (
            200,
            json!({"access_token": token, "expires_in": 5_183_999, "scope": "r_organization_admin,r_ads"}),
        ),
        None => (
            400,
            json!({"error": "invalid_request", "error_description": "Unable to retrieve access token: appid/redirect uri/code verifier does not match authorization code. Or authorization code expired."}),
        ),
    })
}

/// Answers the ownership calls (Graph `me`, `me/accounts`, page lookups; LinkedIn
/// `organizationAcls`, `adAccountUsers`); `None` for every other path.
fn ownership_answer(
    state: &State,
    path: &str,
    query: &str,
    headers: &[(String, String)],
) -> Option<(u16, Value)> {
    if let Some(rest) = path.strip_prefix("/graph/v25.0/") {
        let page_lookup = query_param(query, "fields")
            .is_some_and(|fields| fields.contains("instagram_business_account"))
            && !state.meta_leads.contains_key(rest);
        if rest != "me" && rest != "me/accounts" && !page_lookup {
            return None;
        }
        let Some(token) = access_token(query, headers) else {
            return Some(graph_error(
                104,
                "An access token is required to request this resource.",
            ));
        };
        if let Some(proof) = query_param(query, "appsecret_proof") {
            let expected = hex::encode(hmac_sha256(META_APP_SECRET.as_bytes(), token.as_bytes()));
            if proof != expected {
                return Some(graph_error(
                    100,
                    "Invalid appsecret_proof provided in the API argument",
                ));
            }
        }
        let Some(grant) = state.grants.get(&token) else {
            return Some(graph_error(
                190,
                "Invalid OAuth access token - Cannot parse access token",
            ));
        };
        let public = state.public_pages.iter().any(|page| page == rest);
        return Some(graph_ownership(grant, rest, query, public));
    }
    let rest = path.strip_prefix("/linkedin/rest/")?;
    if rest != "organizationAcls" && rest != "adAccountUsers" {
        return None;
    }
    let grant = access_token(query, headers).and_then(|token| state.grants.get(&token));
    let Some(Grant::LinkedinMember {
        organizations,
        ad_accounts,
    }) = grant
    else {
        return Some((
            401,
            json!({"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN", "message": "Invalid access token"}),
        ));
    };
    let elements: Vec<Value> = if rest == "organizationAcls" {
        let role = query_param(query, "role");
        let wanted_state = query_param(query, "state");
        organizations
            .iter()
            .filter(|(_, r, _)| role.as_deref().is_none_or(|want| want == r))
            .filter(|(_, _, s)| wanted_state.as_deref().is_none_or(|want| want == s))
            .map(|(id, role, state)| json!({"organization": format!("urn:li:organization:{id}"), "role": role, "state": state, "roleAssignee": "urn:li:person:stub"}))
            .collect()
    } else {
        ad_accounts
            .iter()
            .map(|(id, role)| json!({"account": format!("urn:li:sponsoredAccount:{id}"), "role": role, "user": "urn:li:person:stub"}))
            .collect()
    };
    Some((200, paged_elements(elements, query)))
}

/// Rest.li paging over `elements` by `start` and `count`.
fn paged_elements(elements: Vec<Value>, query: &str) -> Value {
    let start: usize = query_param(query, "start")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let count: usize = query_param(query, "count")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let total = elements.len();
    let page: Vec<Value> = elements.into_iter().skip(start).take(count).collect();
    json!({"elements": page, "paging": {"start": start, "count": count, "total": total}})
}

fn page_json(page: &StubPage) -> Value {
    let mut value = json!({"id": page.id, "name": format!("Page {}", page.id), "access_token": format!("page-token-{}", page.id), "tasks": ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"]});
    if let Some(account) = &page.instagram_business_account {
        value["instagram_business_account"] = json!({"id": account});
    }
    value
}

fn graph_ownership(grant: &Grant, rest: &str, query: &str, public: bool) -> (u16, Value) {
    let pages: &[StubPage] = match grant {
        Grant::GraphUser { pages, .. } => pages,
        Grant::GraphPage(page) => std::slice::from_ref(page),
        _ => &[],
    };
    match (rest, grant) {
        ("me", Grant::GraphUser { user_id, .. }) => (200, json!({"id": user_id, "name": "Stub User"})),
        ("me", Grant::GraphPage(page)) => (200, json!({"id": page.id, "name": format!("Page {}", page.id)})),
        ("me", Grant::InstagramLogin { account_id }) => (200, json!({"id": account_id, "username": "stub_account"})),
        ("me/accounts", Grant::GraphUser { pages, .. }) => {
            let limit: usize = query_param(query, "limit").and_then(|v| v.parse().ok()).unwrap_or(25);
            let offset: usize = query_param(query, "after").and_then(|v| v.parse().ok()).unwrap_or(0);
            let data: Vec<Value> = pages.iter().skip(offset).take(limit).map(page_json).collect();
            let mut body = json!({"data": data, "paging": {"cursors": {"before": offset.to_string(), "after": (offset + limit).to_string()}}});
            if offset + limit < pages.len() {
                body["paging"]["next"] = json!("https://graph.example/next");
            }
            (200, body)
        }
        ("me/accounts", _) => graph_error(100, "(#100) Tried accessing nonexisting field (accounts) on node type (Page)"),
        (page_id, _) => match pages.iter().find(|page| page.id == page_id) {
            Some(page) => (200, page_json(page)),
            None if public => (200, json!({"id": page_id, "name": format!("Page {page_id}")})),
            None => graph_error(100, &format!("Unsupported get request. Object with ID '{page_id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation")),
        },
    }
}
