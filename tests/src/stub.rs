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
//! Every request is recorded, so tests count the calls made for a resource.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

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
    meta_leads: HashMap<String, Value>,
    linkedin: HashMap<String, Value>,
    modes: Vec<(String, Mode)>,
    faults: Option<Faults>,
    fault_counts: FaultCounts,
    /// Every request: method, path with query, headers (lower-case names).
    calls: Vec<Call>,
}

/// One request the stub received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
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

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The value for `META_GRAPH_BASE_URL`.
    pub fn meta_base(&self) -> String {
        format!("{}/graph/v25.0", self.url())
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
    if content_length > 0 {
        let mut body = vec![0u8; content_length.min(1 << 20)];
        std::io::Read::read_exact(&mut reader, &mut body)?;
    }
    let path = target.split('?').next().unwrap_or("").to_string();
    let (mode, injected, resource) = {
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        state.calls.push(Call {
            method: method.clone(),
            target: target.clone(),
            headers,
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
        let resource = lookup(&state, &path);
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
                Some(value) => (200, usage_headers(12, 0), value),
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
