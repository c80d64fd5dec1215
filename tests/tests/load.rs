//! Load and restart safety of the social pipeline, end to end (issue 7, items 1 and 2).
//!
//! - `load_with_faults_loses_nothing`: a burst of `LOAD_EVENTS` (default 1000) signed webhook
//!   deliveries of every platform and kind (Facebook feed likes, comments and shares, Messenger
//!   messages, lead forms fetched from the Graph API; Instagram comments and messages; LinkedIn
//!   likes, comments and lead forms fetched from the LinkedIn API; a few batches spanning two
//!   accounts and a few for an account nobody connected), 5 % of them delivered twice with the
//!   same bytes, posted by `LOAD_CLIENTS` (default 4) client threads while the stub platform APIs
//!   answer 429 or 500 to about 30 % of calls and are slow on 10 % ([`Faults::thirty_percent`]).
//!   The inbox is then drained by firing the sync reconciliation at advancing future times (the
//!   consumer's clock is the later of its own and the reconciliation's, so backoffs, throttles and
//!   open circuits end without sleeping) until no row is pending or processing, within
//!   `LOAD_DRAIN_SECS` (default 240). Everything is then checked in D1, read-only.
//! - `restart_mid_burst_loses_nothing`: the same kind of burst (`LOAD_RESTART_EVENTS`, default
//!   `LOAD_EVENTS / 5`, at least 200), then the runtime is stopped while events are in flight and
//!   started again on the same database (the local queue does not survive: the reconciliation
//!   must find every event), drained and checked the same way.
//!
//! The checks: every distinct delivery has exactly one inbox row per account; every row is
//! processed or dead (ignored only for the accounts nobody connected); nothing is pending or
//! processing (lost); each processed row's event is exactly one touchpoint (captured by `webhook`,
//! or `sync` for lead forms) and a dead row's none; one lead per social profile and per email, and
//! exactly as many leads as distinct people; each lead's heat equals the sum of its touchpoints'
//! points under the default weights. The figures are printed (`--nocapture` shows them);
//! `make soak` runs this with `LOAD_EVENTS=10000`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use leadheat_e2e::runner::{run, E2eTest};
use leadheat_e2e::social::{connect, fire_sync_at, post_linkedin_bytes, post_meta_bytes};
use leadheat_e2e::stub::{FaultCounts, Faults, Stub};
use leadheat_e2e::{unique_org, unique_suffix, unix_now, Runtime};
use serde_json::{json, Value};

const DEFAULT_EVENTS: usize = 1000;
const DEFAULT_CLIENTS: usize = 4;
const DEFAULT_DRAIN_SECS: u64 = 240;
const DEFAULT_SEED: u64 = 0x1EAD_4EA7;
/// Orgs sharing the load; each connects a Facebook page, an Instagram account, a LinkedIn
/// organisation and a LinkedIn ad account.
const ORGS: usize = 4;
/// How far each reconciliation run is ahead of the previous one: longer than any backoff of 8
/// attempts (30 s * 2^7), the open circuit's 5 minutes and the default throttle's 15 minutes.
const ROUND_STEP_SECS: i64 = 2 * 3600;

fn main() {
    let tests: &[E2eTest] = &[
        (
            "load_with_faults_loses_nothing",
            load_with_faults_loses_nothing,
        ),
        (
            "restart_mid_burst_loses_nothing",
            restart_mid_burst_loses_nothing,
        ),
    ];
    let stub = stub();
    let runtime = Runtime::start_with_env(&[
        ("META_GRAPH_BASE_URL", &stub.meta_base()),
        ("LINKEDIN_API_BASE_URL", &stub.linkedin_base()),
    ]);
    run(runtime, tests)
}

/// Both tests load the machine and inject faults into the one stub: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn stub() -> &'static Stub {
    Stub::shared()
}

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}")),
        Err(_) => default,
    }
}

// ------------------------------------------------------------------------------------------------
// The tests

fn load_with_faults_loses_nothing(rt: &Runtime) {
    let _serial = serial();
    let events = env_number("LOAD_EVENTS", DEFAULT_EVENTS as u64) as usize;
    let seed = env_number("LOAD_SEED", DEFAULT_SEED);
    let started = Instant::now();
    let scenario = Scenario::build(rt, stub(), events, seed);
    stub().set_faults(Some(Faults::thirty_percent(seed)));
    let posted = scenario.post(rt);
    let drained = drain(rt);
    let faults = stub().fault_counts();
    stub().set_faults(None);
    let figures = scenario.check(rt);
    report(
        "load", &scenario, &posted, &drained, &figures, faults, started,
    );
}

fn restart_mid_burst_loses_nothing(_shared: &Runtime) {
    let _serial = serial();
    let default = (env_number("LOAD_EVENTS", DEFAULT_EVENTS as u64) / 5).max(200);
    let events = env_number("LOAD_RESTART_EVENTS", default) as usize;
    let seed = env_number("LOAD_SEED", DEFAULT_SEED).wrapping_add(1);
    // Its own runtime: this test restarts it.
    let mut rt = Runtime::start_with_env(&[
        ("META_GRAPH_BASE_URL", &stub().meta_base()),
        ("LINKEDIN_API_BASE_URL", &stub().linkedin_base()),
    ]);
    let started = Instant::now();
    let scenario = Scenario::build(&rt, stub(), events, seed);
    stub().set_faults(Some(Faults::thirty_percent(seed)));
    let posted = scenario.post(&rt);
    // Stop while the consumer is still working through the burst (every delivery has had its 200).
    let before = inbox_counts(&rt);
    rt.restart();
    let after = inbox_counts(&rt);
    let in_flight =
        after.get("pending").copied().unwrap_or(0) + after.get("processing").copied().unwrap_or(0);
    println!(
        "[restart] stopped with inbox {before:?} (read just before the stop), restarted with {after:?}: {in_flight} events in flight"
    );
    assert!(
        in_flight > 0,
        "the queue had drained before the restart, so the test proved nothing: {after:?}"
    );
    let drained = drain(&rt);
    let faults = stub().fault_counts();
    stub().set_faults(None);
    let figures = scenario.check(&rt);
    report(
        "restart", &scenario, &posted, &drained, &figures, faults, started,
    );
}

// ------------------------------------------------------------------------------------------------
// The scenario: orgs, accounts, people and deliveries

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    FacebookLike,
    FacebookComment,
    FacebookShare,
    MessengerMessage,
    FacebookLeadgen,
    InstagramComment,
    InstagramMessage,
    LinkedInLike,
    LinkedInComment,
    LinkedInLeadForm,
}

/// The mix of kinds (weights out of 100) for connected accounts.
const MIX: [(Kind, usize); 10] = [
    (Kind::FacebookLike, 14),
    (Kind::FacebookComment, 13),
    (Kind::FacebookShare, 8),
    (Kind::MessengerMessage, 11),
    (Kind::FacebookLeadgen, 14),
    (Kind::InstagramComment, 11),
    (Kind::InstagramMessage, 8),
    (Kind::LinkedInLike, 7),
    (Kind::LinkedInComment, 6),
    (Kind::LinkedInLeadForm, 8),
];

impl Kind {
    fn platform(self) -> &'static str {
        match self {
            Kind::FacebookLike
            | Kind::FacebookComment
            | Kind::FacebookShare
            | Kind::MessengerMessage
            | Kind::FacebookLeadgen => "facebook",
            Kind::InstagramComment | Kind::InstagramMessage => "instagram",
            _ => "linkedin",
        }
    }

    /// The touchpoint's type.
    fn interaction(self) -> &'static str {
        match self {
            Kind::FacebookLike | Kind::LinkedInLike => "social_like",
            Kind::FacebookComment | Kind::InstagramComment | Kind::LinkedInComment => {
                "social_comment"
            }
            Kind::FacebookShare => "social_share",
            Kind::MessengerMessage | Kind::InstagramMessage => "direct_message",
            Kind::FacebookLeadgen | Kind::LinkedInLeadForm => "info_request",
        }
    }

    fn is_form(self) -> bool {
        matches!(self, Kind::FacebookLeadgen | Kind::LinkedInLeadForm)
    }
}

/// The default weights (the seed's table; every other type is worth 0).
fn default_points(interaction: &str) -> f64 {
    match interaction {
        "social_follow" | "social_like" => 1.0,
        "website_visit" => 2.0,
        "info_request" => 5.0,
        "price_quote" => 8.0,
        "site_visit" => 10.0,
        _ => 0.0,
    }
}

/// Who an event is attributed to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Person {
    /// (platform, platform user id)
    Profile(&'static str, String),
    Email(String),
}

/// One inbox row's worth of a delivery: one event for one account.
#[derive(Debug, Clone)]
struct Part {
    /// Unique across the process: in the event's platform ids (so in its external id) and as the
    /// `lh_part` marker of its entry, notification or body.
    token: u64,
    kind: Kind,
    account: String,
    /// Index into `Scenario::orgs`; `None` for an account nobody connected.
    org: Option<usize>,
    person: Person,
}

struct Delivery {
    platform: &'static str,
    bytes: Vec<u8>,
}

struct OrgAccounts {
    id: String,
    page: String,
    instagram: String,
    linkedin_org: String,
    ad_account: String,
}

struct Scenario {
    orgs: Vec<OrgAccounts>,
    unconnected_page: String,
    unconnected_linkedin: String,
    parts: Vec<Part>,
    deliveries: Vec<Delivery>,
    /// Indices into `deliveries`, in posting order; duplicates appear twice.
    sends: Vec<usize>,
}

/// Ids handed out across the process (two scenarios never share one): tokens from 9e18, users
/// from 8e18, far above `numeric_id`'s range (< 16^13) used for accounts.
static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(0);
static NEXT_USER: AtomicUsize = AtomicUsize::new(0);

fn next_token() -> u64 {
    9_000_000_000_000_000 + NEXT_TOKEN.fetch_add(1, Ordering::Relaxed) as u64
}

fn next_user() -> u64 {
    8_000_000_000_000_000 + NEXT_USER.fetch_add(1, Ordering::Relaxed) as u64
}

fn account_id() -> String {
    leadheat_e2e::social::numeric_id()
}

const LINKEDIN_FORMS: usize = 3;

impl Scenario {
    /// Connects the orgs, registers the lead forms in the stub and builds `events` deliveries.
    fn build(rt: &Runtime, stub: &Stub, events: usize, seed: u64) -> Scenario {
        let mut rng = Rng(seed);
        let orgs: Vec<OrgAccounts> = (0..ORGS)
            .map(|i| OrgAccounts {
                id: unique_org(&format!("load{i}")),
                page: account_id(),
                instagram: account_id(),
                linkedin_org: account_id(),
                ad_account: account_id(),
            })
            .collect();
        for org in &orgs {
            connect(
                rt,
                &org.id,
                "facebook",
                json!({"page_ids": [org.page], "access_token": format!("EAAB-load-{}", org.id)}),
            );
            connect(
                rt,
                &org.id,
                "instagram",
                json!({"account_ids": [org.instagram], "access_token": "IGQ-load"}),
            );
            connect(
                rt,
                &org.id,
                "linkedin",
                json!({"organization_ids": [org.linkedin_org], "sponsored_account_ids": [org.ad_account], "access_token": "AQV-load"}),
            );
        }
        // LinkedIn forms, named by their questions.
        let forms: Vec<String> = (0..LINKEDIN_FORMS)
            .map(|_| next_token().to_string())
            .collect();
        for form in &forms {
            stub.add_linkedin_form(
                form,
                json!({"id": form, "content": {"questions": [
                    {"questionId": 1, "name": "firstName", "predefinedField": "FIRST_NAME"},
                    {"questionId": 2, "name": "lastName", "predefinedField": "LAST_NAME"},
                    {"questionId": 3, "name": "email", "predefinedField": "EMAIL"},
                    {"questionId": 4, "name": "company", "predefinedField": "COMPANY_NAME"},
                    {"questionId": 5, "name": "companySize"}
                ]}}),
            );
        }
        // People: per org and platform a pool of users (several events each, so concurrent
        // events meet on one lead), and a pool of emails shared by both platforms' lead forms.
        let users_per_pool = (events / 40).max(8);
        let emails_per_org = (events / 60).max(5);
        let pools: Vec<HashMap<&'static str, Vec<u64>>> = (0..ORGS)
            .map(|_| {
                ["facebook", "instagram", "linkedin"]
                    .into_iter()
                    .map(|p| (p, (0..users_per_pool).map(|_| next_user()).collect()))
                    .collect()
            })
            .collect();
        let run = unique_suffix();
        let email = |org: usize, n: usize| format!("load{n}.o{org}.{run}@example.com");

        let mut scenario = Scenario {
            orgs,
            unconnected_page: account_id(),
            unconnected_linkedin: account_id(),
            parts: Vec::new(),
            deliveries: Vec::new(),
            sends: Vec::new(),
        };
        let now = unix_now();
        let total: usize = MIX.iter().map(|(_, w)| w).sum();
        for _ in 0..events {
            let mut roll = rng.below(total);
            let kind = MIX
                .iter()
                .find(|(_, w)| {
                    let hit = roll < *w;
                    roll = roll.saturating_sub(*w);
                    hit
                })
                .map(|(k, _)| *k)
                .unwrap();
            let org = rng.below(ORGS);
            // 2 % go to an account nobody connected; 5 % of Facebook feed deliveries batch a
            // second account (another org's page, or the unconnected one).
            let unconnected =
                rng.below(100) < 2 && matches!(kind, Kind::FacebookComment | Kind::LinkedInLike);
            let batch_second = !unconnected
                && matches!(
                    kind,
                    Kind::FacebookLike | Kind::FacebookComment | Kind::FacebookShare
                )
                && rng.below(100) < 5;
            let mut parts = Vec::new();
            let make = |scenario: &mut Scenario, rng: &mut Rng, org: Option<usize>| {
                let account = match (org, kind.platform()) {
                    (Some(o), "facebook") => scenario.orgs[o].page.clone(),
                    (Some(o), "instagram") => scenario.orgs[o].instagram.clone(),
                    (Some(o), _) if kind == Kind::LinkedInLeadForm => {
                        scenario.orgs[o].ad_account.clone()
                    }
                    (Some(o), _) => scenario.orgs[o].linkedin_org.clone(),
                    (None, "facebook") => scenario.unconnected_page.clone(),
                    (None, _) => scenario.unconnected_linkedin.clone(),
                };
                let pool_org = org.unwrap_or(0);
                let person = if kind.is_form() {
                    Person::Email(email(pool_org, rng.below(emails_per_org)))
                } else {
                    let pool = &pools[pool_org][kind.platform()];
                    let user = pool[rng.below(pool.len())];
                    let id = if kind.platform() == "linkedin" {
                        format!("p{user}")
                    } else {
                        user.to_string()
                    };
                    Person::Profile(kind.platform(), id)
                };
                scenario.parts.push(Part {
                    token: next_token(),
                    kind,
                    account,
                    org,
                    person,
                });
                scenario.parts.len() - 1
            };
            parts.push(make(&mut scenario, &mut rng, (!unconnected).then_some(org)));
            if batch_second {
                let other = rng.below(ORGS + 1);
                let second = (other != org && other < ORGS).then_some(other);
                if second.is_some() || other == ORGS {
                    parts.push(make(&mut scenario, &mut rng, second));
                }
            }
            let bytes = scenario.body(&parts, &forms, now, &mut rng).to_string();
            for &p in &parts {
                scenario.register(stub, p);
            }
            scenario.deliveries.push(Delivery {
                platform: kind.platform(),
                bytes: bytes.into_bytes(),
            });
        }
        // Posting order: shuffled, 5 % of the deliveries sent a second time, byte for byte, at a
        // later random position.
        let mut sends: Vec<usize> = (0..scenario.deliveries.len()).collect();
        for i in (1..sends.len()).rev() {
            sends.swap(i, rng.below(i + 1));
        }
        let duplicates = scenario.deliveries.len().div_ceil(20);
        for _ in 0..duplicates {
            let position = rng.below(sends.len());
            let delivery = sends[position];
            let later = position + 1 + rng.below(sends.len() - position);
            sends.insert(later, delivery);
        }
        scenario.sends = sends;
        scenario
    }

    /// The delivery's JSON: one entry (Meta) or notification (LinkedIn) per part.
    fn body(&self, parts: &[usize], forms: &[String], now: i64, rng: &mut Rng) -> Value {
        let first = &self.parts[parts[0]];
        match first.kind {
            Kind::LinkedInLeadForm => {
                let form = &forms[rng.below(forms.len())];
                json!({"type": "LEAD_ACTION", "leadAction": "CREATED",
                    "leadGenFormResponse": format!("urn:li:leadGenFormResponse:{}", first.token),
                    "leadGenForm": format!("urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{form},1)"),
                    "owner": {"sponsoredAccount": format!("urn:li:sponsoredAccount:{}", first.account)},
                    "leadType": "SPONSORED", "occurredAt": now * 1000, "lh_part": first.token.to_string()})
            }
            Kind::LinkedInLike | Kind::LinkedInComment => {
                let notifications: Vec<Value> = parts
                    .iter()
                    .map(|&p| linkedin_notification(&self.parts[p], now))
                    .collect();
                json!({"type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS", "notifications": notifications})
            }
            Kind::InstagramComment | Kind::InstagramMessage => {
                let entries: Vec<Value> = parts
                    .iter()
                    .map(|&p| meta_entry(&self.parts[p], now))
                    .collect();
                json!({"object": "instagram", "entry": entries})
            }
            _ => {
                let entries: Vec<Value> = parts
                    .iter()
                    .map(|&p| meta_entry(&self.parts[p], now))
                    .collect();
                json!({"object": "page", "entry": entries})
            }
        }
    }

    /// Registers what the consumer will fetch for a lead form.
    fn register(&self, stub: &Stub, p: usize) {
        let part = &self.parts[p];
        let Person::Email(email) = &part.person else {
            return;
        };
        let token = part.token.to_string();
        match part.kind {
            Kind::FacebookLeadgen => stub.add_meta_lead(
                &token,
                json!([
                    {"name": "full_name", "values": ["Load Tester"]},
                    {"name": "email", "values": [email]},
                    {"name": "phone_number", "values": [phone_of(email)]},
                    {"name": "company_name", "values": ["Load Ltd"]},
                    {"name": "budget", "values": ["10k-50k"]}
                ]),
            ),
            Kind::LinkedInLeadForm => stub.add_linkedin_response(
                &token,
                json!({"id": token, "submittedAt": unix_now() * 1000, "leadType": "SPONSORED",
                    "leadMetadata": {"sponsoredLeadMetadata": {"campaign": "urn:li:sponsoredCampaign:345"}},
                    "formResponse": {"answers": [
                        {"questionId": 1, "answerDetails": {"textQuestionAnswer": {"answer": "Load"}}},
                        {"questionId": 2, "answerDetails": {"textQuestionAnswer": {"answer": "Tester"}}},
                        {"questionId": 3, "answerDetails": {"textQuestionAnswer": {"answer": email}}},
                        {"questionId": 4, "answerDetails": {"textQuestionAnswer": {"answer": "Load Ltd"}}},
                        {"questionId": 5, "answerDetails": {"textQuestionAnswer": {"answer": "50-200"}}}
                    ]}}),
            ),
            _ => {}
        }
    }

    /// Posts every send with the client threads; every answer must be 200.
    fn post(&self, rt: &Runtime) -> Posted {
        let clients = env_number("LOAD_CLIENTS", DEFAULT_CLIENTS as u64).max(1) as usize;
        let started = Instant::now();
        let next = AtomicUsize::new(0);
        let duplicates = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..clients {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&d) = self.sends.get(i) else {
                        break;
                    };
                    let delivery = &self.deliveries[d];
                    let response = match delivery.platform {
                        "linkedin" => post_linkedin_bytes(rt, &delivery.bytes),
                        platform => post_meta_bytes(rt, platform, &delivery.bytes),
                    };
                    assert_eq!(response.status, 200, "delivery refused: {}", response.body);
                    if response.json()["duplicate"] == true {
                        duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        Posted {
            sends: self.sends.len(),
            duplicates_answered: duplicates.into_inner(),
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    /// Checks the inbox, the touchpoints, the leads and their heat; returns the figures.
    fn check(&self, rt: &Runtime) -> Figures {
        let by_token: HashMap<u64, usize> = self
            .parts
            .iter()
            .enumerate()
            .map(|(i, p)| (p.token, i))
            .collect();
        let accounts: HashSet<&str> = self.parts.iter().map(|p| p.account.as_str()).collect();

        // The inbox: exactly one row per part, on the part's account (every shard's inbox).
        let mut rows_of_part: Vec<Vec<(String, i64, Option<String>)>> =
            vec![Vec::new(); self.parts.len()];
        let mut stray = Vec::new();
        let rows = rt.query_shards(
            "SELECT id, account_id, status, attempts, body, last_error FROM webhook_inbox",
            [],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            },
        );
        for row in rows {
            let (id, account, status, attempts, body, last_error) = row;
            let Some(account) = account.filter(|a| accounts.contains(a.as_str())) else {
                continue;
            };
            let markers = markers(&body);
            match markers.as_slice() {
                [token] if by_token.contains_key(token) => {
                    let p = by_token[token];
                    assert_eq!(
                        self.parts[p].account, account,
                        "row {id} is on the wrong account"
                    );
                    rows_of_part[p].push((status, attempts, last_error));
                }
                _ => stray.push(format!("{id} {account} {markers:?}")),
            }
        }
        // Parts for the accounts nobody connected are the directory's unrouted deliveries, which
        // keep no body to read a marker from: an account's rows stand for its parts one to one
        // (`ignored`, no attempts), so a row fewer shows as a missing event and one more as stray.
        let directory = rt.directory_db();
        for account in [&self.unconnected_page, &self.unconnected_linkedin] {
            let unrouted: i64 = directory
                .query_row(
                    "SELECT COUNT(*) FROM webhook_unrouted WHERE account_id = ?1",
                    [account],
                    |r| r.get(0),
                )
                .unwrap();
            let mut parts = (0..self.parts.len())
                .filter(|&p| self.parts[p].org.is_none() && &self.parts[p].account == account);
            for n in 0..unrouted {
                match parts.next() {
                    Some(p) => rows_of_part[p].push(("ignored".to_string(), 0, None)),
                    None => stray.push(format!("unrouted row {n} of {account}")),
                }
            }
        }
        assert!(stray.is_empty(), "inbox rows of no single event: {stray:?}");
        let missing: Vec<u64> = rows_of_part
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_empty())
            .map(|(p, _)| self.parts[p].token)
            .collect();
        let doubled: Vec<u64> = rows_of_part
            .iter()
            .enumerate()
            .filter(|(_, r)| r.len() > 1)
            .map(|(p, _)| self.parts[p].token)
            .collect();
        assert!(
            missing.is_empty(),
            "{} events have no inbox row: {missing:?}",
            missing.len()
        );
        assert!(
            doubled.is_empty(),
            "{} events have several inbox rows: {doubled:?}",
            doubled.len()
        );

        let mut figures = Figures::default();
        let mut status_of = Vec::with_capacity(self.parts.len());
        let mut dead_errors: BTreeMap<String, usize> = BTreeMap::new();
        let mut open = Vec::new();
        for (p, rows) in rows_of_part.iter().enumerate() {
            let (status, attempts, last_error) = &rows[0];
            let part = &self.parts[p];
            figures.max_attempts = figures.max_attempts.max(*attempts);
            match (status.as_str(), part.org) {
                ("processed", Some(_)) => figures.processed += 1,
                ("dead", Some(_)) => {
                    figures.dead += 1;
                    let error = last_error.clone().unwrap_or_default();
                    *dead_errors
                        .entry(error.chars().take(80).collect())
                        .or_default() += 1;
                }
                ("ignored", None) => figures.ignored += 1,
                ("pending" | "processing", _) => {
                    figures.lost += 1;
                    open.push(format!("{} {status} {last_error:?}", part.token));
                }
                (other, org) => panic!(
                    "event {} ({:?}, org {org:?}) ended {other}: {last_error:?}",
                    part.token, part.kind
                ),
            }
            status_of.push(status.clone());
        }
        figures.dead_errors = dead_errors;
        assert!(
            open.is_empty(),
            "{} events are still pending or processing (lost): {:?}",
            open.len(),
            &open[..open.len().min(20)]
        );
        assert_eq!(
            figures.processed + figures.dead + figures.ignored,
            self.parts.len()
        );

        // Touchpoints: one per processed event, none for the others.
        let org_ids: Vec<&str> = self.orgs.iter().map(|o| o.id.as_str()).collect();
        let in_orgs = format!(
            "({})",
            org_ids
                .iter()
                .map(|o| format!("'{o}'"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut touches_of_part = vec![0usize; self.parts.len()];
        // The orgs' rows are on their shards: every shard is read, and each org's own shard answers
        // the lookups of its people.
        let interactions: Vec<(String, String, String, String, String, f64)> = rt.query_shards(
            &format!(
                "SELECT org_id, lead_id, type, captured_by, external_id, points FROM interactions WHERE org_id IN {in_orgs}"
            ),
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        );
        let shard_of: HashMap<&str, rusqlite::Connection> =
            org_ids.iter().map(|&org| (org, rt.org_db(org))).collect();
        let profile_lead = |org: &str, platform: &str, user: &str| -> Option<String> {
            shard_of[org].query_row(
                "SELECT lead_id FROM social_profiles WHERE org_id = ?1 AND platform = ?2 AND platform_user_id = ?3",
                [org, platform, user],
                |r| r.get(0),
            )
            .ok()
        };
        let email_leads = |org: &str, email: &str| -> Vec<String> {
            shard_of[org]
                .prepare("SELECT id FROM leads WHERE org_id = ?1 AND email_normalized = ?2")
                .unwrap()
                .query_map([org, &email.to_ascii_lowercase()], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let mut unmatched = Vec::new();
        for (org, lead, kind, captured_by, external_id, points) in &interactions {
            let tokens: HashSet<u64> = external_id
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|run| run.parse().ok())
                .filter(|t| by_token.contains_key(t))
                .collect();
            let [token] = tokens.into_iter().collect::<Vec<_>>()[..] else {
                unmatched.push(external_id.clone());
                continue;
            };
            let p = by_token[&token];
            let part = &self.parts[p];
            touches_of_part[p] += 1;
            assert_eq!(kind, part.kind.interaction(), "{external_id}");
            let expected_by = if part.kind.is_form() {
                "sync"
            } else {
                "webhook"
            };
            assert_eq!(captured_by, expected_by, "{external_id}");
            assert_eq!(*points, default_points(kind), "{external_id}");
            assert_eq!(
                Some(org.as_str()),
                part.org.map(|o| self.orgs[o].id.as_str()),
                "{external_id}"
            );
            // The touchpoint belongs to its person's lead.
            let owner = match &part.person {
                Person::Profile(platform, user) => profile_lead(org, platform, user),
                Person::Email(email) => email_leads(org, email).into_iter().next(),
            };
            assert_eq!(
                owner.as_deref(),
                Some(lead.as_str()),
                "{external_id} is not on its person's lead"
            );
        }
        assert!(
            unmatched.is_empty(),
            "touchpoints of no event sent: {unmatched:?}"
        );
        let mut wrong = Vec::new();
        for (p, &count) in touches_of_part.iter().enumerate() {
            let expected = usize::from(status_of[p] == "processed");
            if count != expected {
                wrong.push(format!(
                    "{} {:?} {}: {count} touchpoints",
                    self.parts[p].token, self.parts[p].kind, status_of[p]
                ));
            }
        }
        assert!(
            wrong.is_empty(),
            "{} events applied other than once: {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(20)]
        );
        figures.touchpoints = interactions.len();
        assert_eq!(figures.touchpoints, figures.processed);
        let external_ids: HashSet<(&str, &str)> = interactions
            .iter()
            .map(|i| (i.0.as_str(), i.4.as_str()))
            .collect();
        assert_eq!(
            external_ids.len(),
            interactions.len(),
            "duplicate external ids"
        );

        // Leads: one per person seen in a processed event, none duplicated.
        let mut people: HashSet<(usize, Person)> = HashSet::new();
        for (p, part) in self.parts.iter().enumerate() {
            if status_of[p] == "processed" {
                people.insert((part.org.unwrap(), part.person.clone()));
            }
        }
        let leads: Vec<(String, String, Option<String>, f64, String, i64)> = rt.query_shards(
            &format!(
                "SELECT org_id, id, email_normalized, heat_score, heat_level, needs_rescore FROM leads WHERE org_id IN {in_orgs}"
            ),
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        );
        let mut emails: HashMap<(&str, &str), usize> = HashMap::new();
        for lead in &leads {
            if let Some(email) = &lead.2 {
                *emails.entry((lead.0.as_str(), email.as_str())).or_default() += 1;
            }
        }
        let shared: Vec<_> = emails.iter().filter(|(_, &n)| n > 1).collect();
        assert!(shared.is_empty(), "emails on several leads: {shared:?}");
        let profiles_shared: i64 = rt
            .query_shards(
                &format!(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM social_profiles WHERE org_id IN {in_orgs} \
                     GROUP BY org_id, platform, platform_user_id HAVING COUNT(*) > 1)"
                ),
                [],
                |r| r.get::<_, i64>(0),
            )
            .into_iter()
            .sum();
        assert_eq!(profiles_shared, 0, "social profiles on several leads");
        figures.leads = leads.len();
        figures.people = people.len();
        assert_eq!(
            figures.leads, figures.people,
            "one lead per person (social profile or email) of the processed events"
        );

        // Heat: each lead's score is the sum of its touchpoints' points (default weights, no
        // decay), and its level follows the default thresholds.
        let mut sums: HashMap<&str, f64> = HashMap::new();
        for i in &interactions {
            *sums.entry(i.1.as_str()).or_default() += default_points(&i.2);
        }
        let mut off = Vec::new();
        for (_, id, _, score, level, needs_rescore) in &leads {
            let sum = sums.get(id.as_str()).copied().unwrap_or(0.0);
            let expected_level = if sum >= 16.0 {
                "HOT"
            } else if sum >= 6.0 {
                "WARM"
            } else {
                "COLD"
            };
            if (score - sum).abs() > 1e-9 || level != expected_level {
                off.push(format!(
                    "{id}: heat {score} {level}, touchpoints {sum} (needs_rescore {needs_rescore})"
                ));
            }
            figures.heat_total += sum;
        }
        assert!(
            off.is_empty(),
            "{} leads' heat is not the sum of their touchpoints: {:?}",
            off.len(),
            &off[..off.len().min(20)]
        );
        figures
    }
}

fn meta_entry(part: &Part, now: i64) -> Value {
    let token = part.token;
    let page = &part.account;
    let user = match &part.person {
        Person::Profile(_, user) => user.clone(),
        Person::Email(_) => String::new(),
    };
    let from =
        json!({"id": user, "name": format!("Person {}", &user[user.len().saturating_sub(4)..])});
    let (changes, messaging) = match part.kind {
        Kind::FacebookLike => (
            json!([{"field": "feed", "value": {"item": "reaction", "verb": "add", "reaction_type": "like",
                "post_id": format!("{page}_{token}"), "from": from, "created_time": now}}]),
            None,
        ),
        Kind::FacebookComment => (
            json!([{"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": format!("{page}_1"),
                "comment_id": format!("{page}_{token}"), "message": "How much?", "from": from, "created_time": now}}]),
            None,
        ),
        Kind::FacebookShare => (
            json!([{"field": "feed", "value": {"item": "share", "verb": "add", "post_id": format!("{page}_1"),
                "share_id": token.to_string(), "link": "https://example.com/p", "from": from, "created_time": now}}]),
            None,
        ),
        Kind::FacebookLeadgen => (
            json!([{"field": "leadgen", "value": {"ad_id": "6100000000001", "form_id": "7100000000002",
                "leadgen_id": token.to_string(), "created_time": now, "page_id": page, "adgroup_id": "6100000000001"}}]),
            None,
        ),
        Kind::InstagramComment => (
            json!([{"field": "comments", "value": {"id": token.to_string(), "text": "Love it",
                "from": {"id": user, "username": format!("u{user}")}, "media": {"id": "9", "media_product_type": "FEED"}}}]),
            None,
        ),
        Kind::MessengerMessage => (
            Value::Null,
            Some(
                json!([{"sender": {"id": user}, "recipient": {"id": page}, "timestamp": now * 1000,
                "message": {"mid": format!("m_{token}"), "text": "Can you call me?"}}]),
            ),
        ),
        Kind::InstagramMessage => (
            Value::Null,
            Some(
                json!([{"sender": {"id": user}, "recipient": {"id": page}, "timestamp": now * 1000,
                "message": {"mid": format!("aWdf{token}"), "text": "DM"}}]),
            ),
        ),
        other => unreachable!("{other:?} is not a Meta event"),
    };
    let mut entry = json!({"id": page, "time": now, "lh_part": token.to_string()});
    match messaging {
        Some(messaging) => entry["messaging"] = messaging,
        None => entry["changes"] = changes,
    }
    entry
}

fn linkedin_notification(part: &Part, now: i64) -> Value {
    let token = part.token;
    let Person::Profile(_, member) = &part.person else {
        unreachable!("social actions have an actor")
    };
    let organization = format!("urn:li:organization:{}", part.account);
    match part.kind {
        Kind::LinkedInLike => json!({"notificationId": token, "organizationalEntity": organization,
            "action": "LIKE", "sourcePost": format!("urn:li:share:{token}"),
            "actor": format!("urn:li:person:{member}"), "lastModifiedAt": now * 1000,
            "lh_part": token.to_string()}),
        Kind::LinkedInComment => {
            json!({"notificationId": token, "organizationalEntity": organization,
            "action": "COMMENT", "sourcePost": "urn:li:share:1",
            "generatedActivity": format!("urn:li:comment:(urn:li:activity:{token},1)"),
            "decoratedGeneratedActivity": {"comment": {"owner": format!("urn:li:person:{member}"), "text": "Great"}},
            "lastModifiedAt": now * 1000, "lh_part": token.to_string()})
        }
        other => unreachable!("{other:?} is not a social action"),
    }
}

/// A phone per email (so two forms of one person match, and different people never do).
fn phone_of(email: &str) -> String {
    let digits: u64 = email
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    format!("+1 415 {:07}", digits % 10_000_000)
}

/// The `lh_part` markers of a stored inbox body (top level, entries, notifications).
fn markers(body: &str) -> Vec<u64> {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let mut found: Vec<u64> = Vec::new();
    let mut take = |v: &Value| {
        if let Some(token) = v
            .get("lh_part")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
        {
            if !found.contains(&token) {
                found.push(token);
            }
        }
    };
    take(&value);
    for list in ["entry", "notifications"] {
        if let Some(items) = value.get(list).and_then(Value::as_array) {
            items.iter().for_each(&mut take);
        }
    }
    found
}

// ------------------------------------------------------------------------------------------------
// Draining and figures

/// Inbox rows by status (all accounts): every shard's inbox, and the directory's unrouted
/// deliveries (accounts nobody connected) as `ignored`.
fn inbox_counts(rt: &Runtime) -> BTreeMap<String, i64> {
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for (status, n) in rt.query_shards(
        "SELECT status, COUNT(*) FROM webhook_inbox GROUP BY status",
        [],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
    ) {
        *counts.entry(status).or_default() += n;
    }
    let unrouted: i64 = rt
        .directory_db()
        .query_row("SELECT COUNT(*) FROM webhook_unrouted", [], |r| r.get(0))
        .unwrap();
    if unrouted > 0 {
        *counts.entry("ignored".to_string()).or_default() += unrouted;
    }
    counts
}

/// A fingerprint of the inbox (every shard's) that changes whenever the consumer does something.
fn inbox_fingerprint(rt: &Runtime) -> (Vec<(String, i64, i64)>, Option<String>) {
    let mut statuses: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (status, n, attempts) in rt.query_shards(
        "SELECT status, COUNT(*), COALESCE(SUM(attempts), 0) FROM webhook_inbox GROUP BY status",
        [],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        },
    ) {
        let entry = statuses.entry(status).or_default();
        entry.0 += n;
        entry.1 += attempts;
    }
    let latest = rt
        .query_shards(
            "SELECT MAX(COALESCE(next_attempt_at, '') || COALESCE(last_error, '')) FROM webhook_inbox WHERE status = 'pending'",
            [],
            |r| r.get::<_, Option<String>>(0),
        )
        .into_iter()
        .flatten()
        .max();
    (
        statuses
            .into_iter()
            .map(|(status, (n, attempts))| (status, n, attempts))
            .collect(),
        latest,
    )
}

struct Drained {
    rounds: usize,
    seconds: f64,
}

/// Fires the reconciliation at advancing future times until no row is pending or processing, each
/// time once the consumer has gone quiet (nothing processing and nothing changing for 1.5 s, or
/// nothing changing for 5 s: rows left processing by a stopped runtime), within `LOAD_DRAIN_SECS`.
fn drain(rt: &Runtime) -> Drained {
    let bound = Duration::from_secs(env_number("LOAD_DRAIN_SECS", DEFAULT_DRAIN_SECS));
    let started = Instant::now();
    let mut at = unix_now();
    let mut rounds = 0;
    loop {
        // Wait for quiet (bounded, so a row stuck in processing after a restart is reclaimed).
        let quiet_deadline = Instant::now() + Duration::from_secs(30);
        let mut last = inbox_fingerprint(rt);
        let mut stable_since = Instant::now();
        while Instant::now() < quiet_deadline && started.elapsed() < bound {
            std::thread::sleep(Duration::from_millis(250));
            let now = inbox_fingerprint(rt);
            let processing = now.0.iter().any(|(s, n, _)| s == "processing" && *n > 0);
            if now != last {
                last = now;
                stable_since = Instant::now();
            } else if stable_since.elapsed()
                >= Duration::from_millis(if processing { 5000 } else { 1500 })
            {
                break;
            }
        }
        let counts = inbox_counts(rt);
        let open = counts.get("pending").copied().unwrap_or(0)
            + counts.get("processing").copied().unwrap_or(0);
        if open == 0 || started.elapsed() >= bound {
            break;
        }
        at = (at + ROUND_STEP_SECS).max(unix_now() + ROUND_STEP_SECS);
        fire_sync_at(rt, at);
        rounds += 1;
    }
    Drained {
        rounds,
        seconds: started.elapsed().as_secs_f64(),
    }
}

struct Posted {
    sends: usize,
    duplicates_answered: usize,
    seconds: f64,
}

#[derive(Default)]
struct Figures {
    processed: usize,
    dead: usize,
    ignored: usize,
    lost: usize,
    touchpoints: usize,
    leads: usize,
    people: usize,
    heat_total: f64,
    max_attempts: i64,
    dead_errors: BTreeMap<String, usize>,
}

fn report(
    label: &str,
    scenario: &Scenario,
    posted: &Posted,
    drained: &Drained,
    figures: &Figures,
    faults: FaultCounts,
    started: Instant,
) {
    let distinct = scenario.deliveries.len();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for part in &scenario.parts {
        *kinds.entry(format!("{:?}", part.kind)).or_default() += 1;
    }
    println!(
        "[{label}] sent {} deliveries ({distinct} distinct + {} exact duplicates, {} answered \"duplicate\") with {} clients in {:.1} s",
        posted.sends,
        posted.sends - distinct,
        posted.duplicates_answered,
        env_number("LOAD_CLIENTS", DEFAULT_CLIENTS as u64),
        posted.seconds
    );
    println!(
        "[{label}] distinct events (inbox rows expected) {}: processed {}, dead {}, ignored {}, lost {}",
        scenario.parts.len(),
        figures.processed,
        figures.dead,
        figures.ignored,
        figures.lost
    );
    println!(
        "[{label}] touchpoints {} (= processed), leads {} (= distinct people {}), heat total {}, max attempts of a row {}",
        figures.touchpoints, figures.leads, figures.people, figures.heat_total, figures.max_attempts
    );
    println!(
        "[{label}] platform API calls with faults drawn {}: 429 {}, 500 {}, slow {}; reconciliation rounds {} in {:.1} s",
        faults.drawn, faults.throttled, faults.errors, faults.slow, drained.rounds, drained.seconds
    );
    if !figures.dead_errors.is_empty() {
        println!("[{label}] dead by error: {:?}", figures.dead_errors);
    }
    println!("[{label}] events by kind: {kinds:?}");
    println!("[{label}] elapsed {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(
        posted.duplicates_answered,
        posted.sends - distinct,
        "every exact duplicate is answered as one"
    );
}
