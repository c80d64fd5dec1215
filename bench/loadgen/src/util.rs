//! What every part shares: the settings, runtime processes, HTTP, statistics and the local D1 file.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

pub type Res<T> = Result<T, String>;

/// Sizes and switches, from the environment (bench/README.md lists them).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    /// Leads seeded for the query and rescoring parts (`BENCH_LEADS`).
    pub leads: usize,
    /// Average touchpoints per lead (`BENCH_TOUCHPOINTS_PER_LEAD`): 10 gives 1M at 100k leads.
    pub touchpoints_per_lead: usize,
    /// Seconds each ingest scenario sends for (`BENCH_INGEST_SECS`).
    pub ingest_secs: f64,
    /// Most deliveries one ingest scenario sends (`BENCH_INGEST_MAX`).
    pub ingest_max: usize,
    /// Most 50-entry deliveries one full-path ingest scenario sends (`BENCH_INGEST_MAX_BATCHES`):
    /// each is 50 events for the sync consumer, drained before the next scenario.
    pub ingest_max_batches: usize,
    /// Concurrency levels of the ingest part (`BENCH_CONCURRENCY`, comma-separated).
    pub concurrency: Vec<usize>,
    /// Samples per route and per side in the query part (`BENCH_QUERY_SAMPLES`).
    pub query_samples: usize,
    /// Leads the naive rescoring baseline works through (`BENCH_NAIVE_SAMPLE`).
    pub naive_sample: usize,
    /// Stop the scoring job after this many invocations (`BENCH_RESCORE_MAX_INVOCATIONS`).
    pub rescore_max_invocations: usize,
    /// Cold starts measured per runtime (`BENCH_COLD_STARTS`).
    pub cold_starts: usize,
    /// Parts to run (`BENCH_PARTS`, comma-separated: size,micro,ingest,queries,shards,rescore).
    pub parts: Vec<String>,
    /// Where results go.
    pub results_dir: PathBuf,
    /// Working directories (databases, logs), wiped at the start of a run.
    pub work_dir: PathBuf,
    pub root: PathBuf,
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

impl Settings {
    pub fn from_env(root: PathBuf) -> Settings {
        let list = |name: &str, default: &str| -> Vec<String> {
            std::env::var(name)
                .unwrap_or_else(|_| default.to_string())
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Settings {
            leads: env_num("BENCH_LEADS", DEFAULT_LEADS),
            touchpoints_per_lead: env_num("BENCH_TOUCHPOINTS_PER_LEAD", 10),
            ingest_secs: env_num("BENCH_INGEST_SECS", 3.0),
            ingest_max: env_num("BENCH_INGEST_MAX", 3000),
            ingest_max_batches: env_num("BENCH_INGEST_MAX_BATCHES", 30),
            concurrency: list("BENCH_CONCURRENCY", "1,4,16")
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
            query_samples: env_num("BENCH_QUERY_SAMPLES", 40),
            naive_sample: env_num("BENCH_NAIVE_SAMPLE", 5000),
            rescore_max_invocations: env_num("BENCH_RESCORE_MAX_INVOCATIONS", 2000),
            cold_starts: env_num("BENCH_COLD_STARTS", 3),
            parts: list("BENCH_PARTS", "size,micro,ingest,queries,shards,rescore"),
            results_dir: std::env::var("BENCH_RESULTS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|_| root.join("bench/results")),
            work_dir: root.join("target/bench-work"),
            root,
        }
    }

    pub fn wants(&self, part: &str) -> bool {
        self.parts.iter().any(|p| p == part || p == "all")
    }
}

/// The default seed: the full size (100k leads, 1M touchpoints). `BENCH_LEADS` lowers it.
pub const DEFAULT_LEADS: usize = 100_000;

/// Which runtime script a [`Runtime`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `dev/runtime.mjs`: every Leadheat worker.
    Leadheat,
    /// `bench/runtime-baseline.mjs`: the bare baseline worker.
    Baseline,
}

/// A local runtime process (its own process group, so stopping it reaches workerd too).
pub struct Runtime {
    child: Option<Child>,
    pub base_url: String,
    pub persist: PathBuf,
    /// Spawn → the ready line.
    pub ready_after: Duration,
    pub started: Instant,
}

impl Runtime {
    pub fn start(
        root: &Path,
        flavor: Flavor,
        persist: &Path,
        migrate: bool,
        log_path: &Path,
    ) -> Res<Runtime> {
        let script = match flavor {
            Flavor::Leadheat => root.join("dev/runtime.mjs"),
            Flavor::Baseline => root.join("bench/runtime-baseline.mjs"),
        };
        let mut command = Command::new("node");
        command
            .arg(&script)
            .args(["--port", "0", "--persist"])
            .arg(persist)
            .current_dir(root)
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("CI", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The platform APIs are the test stub (ownership proofs on connect), never the real ones.
        let stub = leadheat_e2e::stub::Stub::shared();
        command
            .env("META_GRAPH_BASE_URL", stub.meta_base())
            .env("LINKEDIN_API_BASE_URL", stub.linkedin_base());
        // The bench measures the API, not its rate limits (which it would exceed at once).
        command.envs(leadheat_e2e::SUITE_RATE_LIMITS);
        if !migrate {
            command.arg("--no-migrate");
        }
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting node {}: {e}", script.display()))?;
        let (tx, rx) = mpsc::channel::<String>();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            let mut log = log.try_clone().map_err(|e| e.to_string())?;
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = writeln!(log, "{line}");
                    if let Some((_, url)) = line.split_once("] ready on ") {
                        let _ = tx.send(url.trim().to_string());
                    }
                }
            });
        }
        let mut runtime = Runtime {
            child: Some(child),
            base_url: String::new(),
            persist: persist.to_path_buf(),
            ready_after: Duration::ZERO,
            started,
        };
        match rx.recv_timeout(Duration::from_secs(180)) {
            Ok(url) => {
                runtime.ready_after = started.elapsed();
                runtime.base_url = url;
                Ok(runtime)
            }
            Err(_) => {
                runtime.stop();
                Err(format!(
                    "the {flavor:?} runtime printed no ready line; see {}",
                    log_path.display()
                ))
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// SIGTERM to the process group (the runtime's clean shutdown), SIGKILL if it hangs.
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

    /// The local D1 files under this runtime's persist directory, told apart by schema.
    pub fn d1_files(&self) -> Res<D1Files> {
        d1_files(&self.persist)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The local D1 files of a persist directory. Miniflare names each file after a hash of its
/// database id and keeps a `metadata.sqlite` beside them, so a file is recognised by its tables,
/// as the end-to-end harness does (tests/src/lib.rs): the directory has `webhook_unrouted`, a
/// tenant shard has `leads`.
#[derive(Debug, Clone)]
pub struct D1Files {
    /// `None` for the baseline runtime, which binds one tenant database and no directory.
    pub directory: Option<PathBuf>,
    /// Every tenant shard's file, in file-name order (not shard order: the names are hashes).
    pub shards: Vec<PathBuf>,
}

impl D1Files {
    pub fn directory(&self) -> Res<&PathBuf> {
        self.directory.as_ref().ok_or_else(|| {
            "no local D1 file is the directory (a webhook_unrouted table)".to_string()
        })
    }

    /// The shard file whose `orgs` table holds `org` (exactly one must).
    pub fn org_shard(&self, org: &str) -> Res<PathBuf> {
        let mut holding = Vec::new();
        for path in &self.shards {
            let conn = read_only(path)?;
            if conn
                .query_row("SELECT 1 FROM orgs WHERE id = ?1", [org], |_| Ok(()))
                .optional()
                .map_err(|e| format!("reading orgs of {}: {e}", path.display()))?
                .is_some()
            {
                holding.push(path.clone());
            }
        }
        match holding.len() {
            1 => Ok(holding.remove(0)),
            0 => Err(format!(
                "org {org} is on none of the {} shards (its first authenticated request places it)",
                self.shards.len()
            )),
            _ => Err(format!("org {org} is on several shards: {holding:?}")),
        }
    }
}

pub fn d1_files(persist: &Path) -> Res<D1Files> {
    let dir = persist.join("v3/d1/miniflare-D1DatabaseObject");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("no local D1 under {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sqlite"))
        .collect();
    files.sort();
    let mut directories = Vec::new();
    let mut shards = Vec::new();
    for path in files {
        let conn = read_only(&path)?;
        let has = |table: &str| -> Res<bool> {
            conn.query_row(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |_| Ok(()),
            )
            .optional()
            .map(|row| row.is_some())
            .map_err(|e| format!("reading the schema of {}: {e}", path.display()))
        };
        match (has("webhook_unrouted")?, has("leads")?) {
            (true, false) => directories.push(path),
            (false, true) => shards.push(path),
            (true, true) => {
                return Err(format!(
                    "{} has both the directory's and a shard's tables",
                    path.display()
                ))
            }
            (false, false) => {}
        }
    }
    if directories.len() > 1 {
        return Err(format!(
            "several local D1 files are the directory: {directories:?}"
        ));
    }
    if shards.is_empty() {
        return Err(format!(
            "no local D1 file under {} is a tenant shard (a leads table): were the migrations applied?",
            dir.display()
        ));
    }
    Ok(D1Files {
        directory: directories.pop(),
        shards,
    })
}

pub fn read_only(path: &Path) -> Res<Connection> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("opening {} read-only: {e}", path.display()))
}

/// A fresh, empty directory.
pub fn fresh_dir(path: &Path) -> Res<PathBuf> {
    if path.exists() {
        std::fs::remove_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path.to_path_buf())
}

/// Copies a directory tree (a runtime's persist directory) into `to`, which must exist.
pub fn copy_dir(from: &Path, to: &Path) -> Res<()> {
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", from.display()))?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)
                .map_err(|e| format!("{}: {e}", target.display()))?;
        }
    }
    Ok(())
}

/// An HTTP agent with keep-alive and no redirects.
pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(120))
        .redirects(0)
        .max_idle_connections_per_host(4)
        .build()
}

/// A response, whatever its status.
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub elapsed: Duration,
}

pub fn send(request: ureq::Request, body: Option<&[u8]>) -> Res<Reply> {
    let started = Instant::now();
    let result = match body {
        Some(bytes) => request.send_bytes(bytes),
        None => request.call(),
    };
    let response = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(format!("transport: {e}")),
    };
    let status = response.status();
    let body = response.into_string().map_err(|e| e.to_string())?;
    Ok(Reply {
        status,
        body,
        elapsed: started.elapsed(),
    })
}

/// Nearest-rank percentile of a sample (milliseconds), `p` in 0..=100.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Round to 2 significant decimals for the tables.
pub fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// A small deterministic PRNG (splitmix64): the seed data is the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn bytes10(&mut self) -> [u8; 10] {
        let a = self.next().to_be_bytes();
        let b = self.next().to_be_bytes();
        [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], b[0], b[1]]
    }
}

/// Now (chrono's `clock` feature is off in this workspace: the domain takes time as an argument).
pub fn now() -> chrono::DateTime<chrono::Utc> {
    std::time::SystemTime::now().into()
}

/// The storage format of every timestamp (RFC 3339, UTC, milliseconds, `Z`).
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
