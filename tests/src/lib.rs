//! Harness for Leadheat's end-to-end tests.
//!
//! [`Runtime::start`] launches the local edge runtime (`dev/runtime.mjs`: every worker in one
//! workerd process) on a free port with fresh temporary D1 databases (the directory and every
//! tenant shard) and waits for its ready line; dropping it stops the runtime and its workerd
//! children, also when a test failed. The helpers mint JWTs and sign webhook bodies independently
//! of the domain crate, so a bug there cannot hide itself by signing and verifying the same wrong
//! way.
//!
//! Tests check what was stored through read-only connections to the local D1 files:
//! [`Runtime::directory_db`] for the directory's tables (orgs and their shards and site keys,
//! integration_accounts, webhook_unrouted, rate_limits, job_leases, job_runs),
//! [`Runtime::org_db`] for an org's rows on its shard, and [`Runtime::shard_dbs`] /
//! [`Runtime::query_shards`] when the org is not known (a lead by id, inbox rows by account).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::Value;
use sha2::Sha256;

pub mod live;
pub mod runner;
pub mod social;
pub mod stub;

/// The development secrets of `.dev.vars.example`, which the runtime uses unless overridden.
pub const JWT_SECRET: &str = "dev-only-jwt-secret-change-me";
pub const META_APP_SECRET: &str = "dev-only-meta-app-secret";
pub const META_VERIFY_TOKEN: &str = "dev-only-meta-verify-token";
pub const INSTAGRAM_APP_SECRET: &str = "dev-only-instagram-app-secret";
pub const LINKEDIN_CLIENT_SECRET: &str = "dev-only-linkedin-client-secret";

const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The lead API's rate limits in the runtimes the suites start: far above anything a suite sends,
/// so that only the tests of the limits themselves (which name their own values) meet them. The
/// product's defaults (wrangler.toml) stay as they are.
pub const SUITE_RATE_LIMITS: [(&str, &str); 2] = [
    ("API_RATE_LIMIT_PER_USER", "1000000"),
    ("API_RATE_LIMIT_PER_ORG", "1000000"),
];

/// The workspace root (where `dev/runtime.mjs` and `wrangler.toml` live).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits inside the workspace")
        .to_path_buf()
}

/// A running local edge runtime with its own temporary database.
pub struct Runtime {
    child: Option<Child>,
    pub base_url: String,
    pub persist_dir: PathBuf,
    log_path: PathBuf,
    env: Vec<(String, String)>,
    port: u16,
    owns_persist_dir: bool,
}

impl Runtime {
    /// Starts a runtime on a free port with a fresh database.
    pub fn start() -> Runtime {
        Self::start_with_env(&[])
    }

    /// Starts a runtime whose `[vars]`/secrets are overridden by `env` (e.g. a stub API's URL).
    /// The platform APIs are this process's shared stub ([`stub::Stub::shared`]) unless `env`
    /// names other base URLs: the runtime never calls the real platforms.
    pub fn start_with_env(env: &[(&str, &str)]) -> Runtime {
        let persist_dir = unique_temp_dir("leadheat-e2e");
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let shared = stub::Stub::shared();
        for (name, value) in [
            ("META_GRAPH_BASE_URL", shared.meta_base()),
            ("LINKEDIN_API_BASE_URL", shared.linkedin_base()),
            ("LINKEDIN_OAUTH_BASE_URL", shared.linkedin_oauth_base()),
            ("META_OAUTH_DIALOG_URL", shared.meta_dialog()),
        ] {
            if !env.iter().any(|(k, _)| k == name) {
                env.push((name.to_string(), value));
            }
        }
        let mut runtime = Runtime {
            child: None,
            base_url: String::new(),
            log_path: log_path(),
            persist_dir,
            env,
            port: free_port(),
            owns_persist_dir: true,
        };
        runtime.launch();
        runtime
    }

    /// Sets (or replaces) an environment override for the next start, e.g. a rotated secret.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_string(), value.to_string()));
    }

    /// Stops the runtime (as Ctrl-C would) and starts it again on the same port and database.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn launch(&mut self) {
        let root = workspace_root();
        let mut command = Command::new("node");
        command
            .arg(root.join("dev/runtime.mjs"))
            .args(["--port", &self.port.to_string()])
            .arg("--persist")
            .arg(&self.persist_dir)
            .current_dir(&root)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("CI", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in SUITE_RATE_LIMITS {
            if !self.env.iter().any(|(k, _)| k == name) {
                command.env(name, value);
            }
        }
        // Its own process group, so stopping it also reaches the workerd processes it spawned.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .spawn()
            .expect("node must be installed to run the local runtime (make test installs it)");

        let (ready_tx, ready_rx) = mpsc::channel();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("the runtime log file is writable");
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let ready_tx = ready_tx.clone();
            let mut log = log.try_clone().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = writeln!(log, "{line}");
                    if let Some(url) = line.strip_prefix("[leadheat] ready on ") {
                        let _ = ready_tx.send(url.trim().to_string());
                    }
                }
            });
        }
        self.child = Some(child);
        match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(url) => self.base_url = url,
            Err(_) => {
                let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
                self.stop();
                panic!("the local runtime did not print its ready line in {READY_TIMEOUT:?}; its output:\n{log}");
            }
        }
    }

    /// Stops the runtime with SIGTERM (its clean shutdown path), then SIGKILL if it hangs.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = format!("-{}", child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = child.wait();
    }

    /// Everything the runtime printed so far (worker logs included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Sends a request and returns the response whatever its status.
    pub fn request(&self, method: &str, path: &str) -> Req<'_> {
        Req {
            runtime: self,
            request: ureq::request(method, &self.url(path)).timeout(Duration::from_secs(60)),
        }
    }

    pub fn get(&self, path: &str) -> Req<'_> {
        self.request("GET", path)
    }

    pub fn post(&self, path: &str) -> Req<'_> {
        self.request("POST", path)
    }

    /// Fires a worker's scheduled handler through `POST /__dev/cron/<function>`.
    pub fn fire_cron(&self, function: &str, cron: Option<&str>, time: Option<&str>) -> Resp {
        let mut query = Vec::new();
        if let Some(cron) = cron {
            query.push(format!("cron={}", urlencode(cron)));
        }
        if let Some(time) = time {
            query.push(format!("time={}", urlencode(time)));
        }
        let path = format!("/__dev/cron/{function}?{}", query.join("&"));
        self.post(&path).send_empty()
    }

    /// The local D1 files, told apart by their schema: Miniflare names each file after a hash of
    /// its database's id, so the name says nothing. The directory is the file with a
    /// `webhook_unrouted` table, a shard one with a `leads` table; other files (Miniflare's
    /// `metadata.sqlite`) are neither. The files exist once the runtime applied the migrations,
    /// which it does before it prints its ready line.
    fn d1_files(&self) -> D1Files {
        let dir = self.persist_dir.join("v3/d1/miniflare-D1DatabaseObject");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("no local D1 under {}: {e}", dir.display()))
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "sqlite"))
            .collect();
        files.sort();
        let mut directories = Vec::new();
        let mut shards = Vec::new();
        for path in files {
            let conn = open_read_only(&path);
            let has = |table: &str| -> bool {
                conn.query_row(
                    "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                    [table],
                    |_| Ok(()),
                )
                .optional()
                .unwrap_or_else(|e| panic!("reading the schema of {}: {e}", path.display()))
                .is_some()
            };
            match (has("webhook_unrouted"), has("leads")) {
                (true, false) => directories.push(path),
                (false, true) => shards.push(path),
                (true, true) => panic!(
                    "{} has both the directory's and a shard's tables: the migration sets were \
                     applied to the same database",
                    path.display()
                ),
                (false, false) => {}
            }
        }
        let directory = match directories.len() {
            1 => directories.pop().unwrap(),
            0 => panic!(
                "no local D1 file under {} is the directory (a webhook_unrouted table): were the \
                 migrations applied?",
                dir.display()
            ),
            _ => panic!("several local D1 files are the directory: {directories:?}"),
        };
        assert!(
            !shards.is_empty(),
            "no local D1 file under {} is a tenant shard (a leads table): were the migrations applied?",
            dir.display()
        );
        D1Files { directory, shards }
    }

    /// The directory's local D1 file.
    pub fn directory_path(&self) -> PathBuf {
        self.d1_files().directory
    }

    /// Every tenant shard's local D1 file (in no particular shard order: the file names are hashes).
    pub fn shard_paths(&self) -> Vec<PathBuf> {
        self.d1_files().shards
    }

    /// A read-only connection to the directory: orgs (shard, site key), integration_accounts,
    /// webhook_unrouted, rate_limits, job_leases and job_runs.
    pub fn directory_db(&self) -> Connection {
        open_read_only(&self.directory_path())
    }

    /// Read-only connections to every tenant shard.
    pub fn shard_dbs(&self) -> Vec<Connection> {
        self.shard_paths()
            .iter()
            .map(|path| open_read_only(path))
            .collect()
    }

    /// The local D1 file of the shard that holds `org` (whose `orgs` table has it); panics when no
    /// shard or several do.
    pub fn org_db_path(&self, org: &str) -> PathBuf {
        let shards = self.shard_paths();
        let holding: Vec<&PathBuf> = shards
            .iter()
            .filter(|path| {
                open_read_only(path)
                    .query_row("SELECT 1 FROM orgs WHERE id = ?1", [org], |_| Ok(()))
                    .optional()
                    .unwrap_or_else(|e| panic!("reading orgs of {}: {e}", path.display()))
                    .is_some()
            })
            .collect();
        match holding[..] {
            [path] => path.clone(),
            [] => panic!(
                "org {org} is on none of the {} shards: its first authenticated request places it \
                 on one (did the test make one, and did it succeed?)",
                shards.len()
            ),
            _ => panic!(
                "org {org} is on several shards ({holding:?}): an org's rows must live on exactly one"
            ),
        }
    }

    /// A read-only connection to the shard that holds `org`'s rows; panics when no shard or
    /// several hold the org.
    pub fn org_db(&self, org: &str) -> Connection {
        open_read_only(&self.org_db_path(org))
    }

    /// Runs `sql` with `params` on every shard and returns all their rows, shard after shard.
    /// For a query about one org or one of its leads that is what the org's one shard has, also
    /// when the org is not known (a lead by id) or has no shard yet (nothing at all).
    pub fn query_shards<T, P>(
        &self,
        sql: &str,
        params: P,
        mut row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Vec<T>
    where
        P: rusqlite::Params + Clone,
    {
        let mut rows = Vec::new();
        for conn in self.shard_dbs() {
            let mut statement = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
            let found = statement
                .query_map(params.clone(), &mut row)
                .and_then(|mapped| mapped.collect::<rusqlite::Result<Vec<T>>>())
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            rows.extend(found);
        }
        rows
    }

    /// Every stored delivery part of a platform account, oldest first: the webhook_inbox rows of
    /// every shard, and the directory's webhook_unrouted rows (deliveries for an account no org
    /// connected, kept without body or status), which count as `ignored` with no attempts.
    pub fn inbox_rows(&self, account: &str) -> Vec<InboxRow> {
        let mut rows = self.query_shards(
            "SELECT id, platform, org_id, status, attempts, last_error, body, received_at \
             FROM webhook_inbox WHERE account_id = ?1",
            [account],
            |r| {
                Ok(InboxRow {
                    id: Some(r.get(0)?),
                    platform: r.get(1)?,
                    org_id: r.get(2)?,
                    status: r.get(3)?,
                    attempts: r.get(4)?,
                    last_error: r.get(5)?,
                    body: Some(r.get(6)?),
                    received_at: r.get(7)?,
                })
            },
        );
        let directory = self.directory_db();
        let mut statement = directory
            .prepare("SELECT platform, received_at FROM webhook_unrouted WHERE account_id = ?1")
            .unwrap();
        let unrouted = statement
            .query_map([account], |r| {
                Ok(InboxRow {
                    id: None,
                    platform: r.get(0)?,
                    org_id: None,
                    status: "ignored".to_string(),
                    attempts: 0,
                    last_error: None,
                    body: None,
                    received_at: r.get(1)?,
                })
            })
            .and_then(|mapped| mapped.collect::<rusqlite::Result<Vec<_>>>())
            .unwrap();
        rows.extend(unrouted);
        rows.sort_by(|a, b| (&a.received_at, &a.id).cmp(&(&b.received_at, &b.id)));
        rows
    }

    /// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check() {
                return value;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\nruntime log tail:\n{}",
                    tail(&self.log(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The runtime's local D1 files.
struct D1Files {
    directory: PathBuf,
    shards: Vec<PathBuf>,
}

fn open_read_only(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("the local D1 file {} opens read-only: {e}", path.display()))
}

/// One stored delivery part of an account ([`Runtime::inbox_rows`]): a shard's webhook_inbox row,
/// or a directory webhook_unrouted row (then `id`, `org_id`, `last_error` and `body` are `None`,
/// the status is `ignored` and attempts 0).
#[derive(Debug, Clone, PartialEq)]
pub struct InboxRow {
    pub id: Option<String>,
    pub platform: String,
    pub org_id: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub body: Option<String>,
    pub received_at: String,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop();
        if self.owns_persist_dir && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.persist_dir);
        }
    }
}

/// A request being built.
pub struct Req<'a> {
    #[allow(dead_code)]
    runtime: &'a Runtime,
    request: ureq::Request,
}

impl Req<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.set(name, value);
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    pub fn send_json(self, body: &Value) -> Resp {
        self.header("Content-Type", "application/json")
            .send_bytes(body.to_string().as_bytes())
    }

    pub fn send_bytes(self, body: &[u8]) -> Resp {
        Resp::from(self.request.send_bytes(body))
    }

    pub fn send_empty(self) -> Resp {
        Resp::from(self.request.call())
    }
}

/// A response, whatever its status.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    fn from(result: Result<ureq::Response, ureq::Error>) -> Resp {
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!("request failed at the transport level: {error}"),
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .map(|name| {
                let value = response.header(&name).unwrap_or_default().to_string();
                (name, value)
            })
            .collect();
        let body = response.into_string().unwrap_or_default();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): status {} body {}",
                self.status, self.body
            )
        })
    }

    /// Asserts the status, showing the body when it differs.
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }
}

/// Mints an HS256 JWT with the given claims (independently of the domain crate's code).
pub fn mint_jwt(secret: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature =
        URL_SAFE_NO_PAD.encode(hmac_sha256(secret.as_bytes(), signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

/// A development token for `org` with `role`, valid for an hour.
pub fn token(org: &str, role: &str) -> String {
    token_for_user(org, role, &format!("user-{role}"))
}

pub fn token_for_user(org: &str, role: &str, sub: &str) -> String {
    let exp = unix_now() + 3600;
    mint_jwt(
        JWT_SECRET,
        &serde_json::json!({"sub": sub, "org": org, "role": role, "exp": exp}),
    )
}

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// `X-Hub-Signature-256` for a Meta (Facebook/Instagram) delivery.
pub fn meta_signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), body))
    )
}

/// `X-LI-Signature` for a LinkedIn delivery: HMAC of "hmacsha256=" followed by the body.
pub fn linkedin_signature(secret: &str, body: &[u8]) -> String {
    let mut message = b"hmacsha256=".to_vec();
    message.extend_from_slice(body);
    hex::encode(hmac_sha256(secret.as_bytes(), &message))
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64
}

/// A fresh, unique organisation id, so tests sharing one runtime never see each other's data.
pub fn unique_org(label: &str) -> String {
    format!("org-{label}-{}", unique_suffix())
}

pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runtime logs are kept after the run (the database is not): `target/e2e-logs/<test>-<pid>.log`.
fn log_path() -> PathBuf {
    let dir = workspace_root().join("target/e2e-logs");
    std::fs::create_dir_all(&dir).expect("target/e2e-logs is writable");
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "e2e".to_string());
    dir.join(format!("{binary}-{}.log", unique_suffix()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

fn unique_temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        unique_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("a writable temporary directory");
    dir
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
