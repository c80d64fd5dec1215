//! The fast seeder: writes an org's leads and touchpoints straight into the local D1 sqlite file
//! with rusqlite while no runtime is running (the runtime applied the migrations first, so the
//! schema, triggers and indexes are exactly the production ones).
//!
//! One org (`org_bench`) holds every lead: the largest org is the case every per-org index must
//! hold up in. The data is deterministic (a seeded PRNG) and self-consistent: each lead's heat is
//! the domain's score of its own touchpoints under the default config, `last_interaction_at` is its
//! latest touchpoint, level changes follow the running score, and one daily snapshot per lead (at
//! the dashboard's 30-day window start) feeds the trending figures.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use leadheat_domain::ids::new_id;
use leadheat_domain::scoring::{self, level_for, ScoringConfig, Touch};
use leadheat_domain::types::{HeatLevel, InteractionType};
use rusqlite::{params, Connection};

use crate::data::{COMPANIES, FIRST_NAMES, LAST_NAMES, TAGS};
use crate::util::{self, Flavor, Res, Rng, Runtime, Settings};

pub const ORG: &str = "org_bench";
const STAGES: [(&str, bool, bool); 7] = [
    ("New", false, false),
    ("Contacted", false, false),
    ("Qualified", false, false),
    ("Proposal", false, false),
    ("Negotiation", false, false),
    ("Won", true, true),
    ("Lost", true, false),
];

/// What the query and rescoring parts need to know of the seeded database.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Seeded {
    pub persist: PathBuf,
    /// The shard file that holds `org_bench` (SHARD_0's: the directory places the first org there).
    pub db_path: PathBuf,
    /// The directory's file (orgs, job_runs, ...).
    #[serde(default)]
    pub directory_path: PathBuf,
    /// `org_bench`'s shard index (from the directory).
    #[serde(default)]
    pub shard: u32,
    /// The smaller orgs seeded beside `org_bench`: one on its shard and one on another shard (the
    /// noisy-neighbour scenario lists their leads while `org_bench` loads its dashboard).
    #[serde(default)]
    pub peers: Vec<Peer>,
    pub leads: usize,
    pub touchpoints: usize,
    pub seconds: f64,
    pub stage_ids: Vec<String>,
    /// Leads with many touchpoints, then ordinary ones (timeline samples).
    pub timeline_leads: Vec<String>,
    pub owner: String,
    pub tag: String,
    pub search: String,
    pub now: String,
}

/// A smaller org seeded beside `org_bench`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Peer {
    pub org: String,
    pub shard: u32,
    pub same_shard: bool,
    pub leads: usize,
    pub touchpoints: usize,
}

impl Seeded {
    pub fn size_label(&self) -> String {
        format!(
            "{} leads / {} touchpoints",
            human(self.leads),
            human(self.touchpoints)
        )
    }
}

pub fn human(n: usize) -> String {
    if n >= 1_000_000 {
        format!("{:.2}M", n as f64 / 1e6)
    } else if n >= 1000 {
        format!("{:.0}k", n as f64 / 1e3)
    } else {
        n.to_string()
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Kinds with their share (percent) and the platforms they come from.
const MIX: [(InteractionType, u64, &[&str], &str); 13] = [
    (
        InteractionType::SocialLike,
        30,
        &["facebook", "instagram", "linkedin"],
        "webhook",
    ),
    (
        InteractionType::SocialFollow,
        8,
        &["facebook", "instagram", "linkedin"],
        "webhook",
    ),
    (
        InteractionType::SocialComment,
        10,
        &["facebook", "instagram", "linkedin"],
        "webhook",
    ),
    (
        InteractionType::SocialShare,
        4,
        &["facebook", "linkedin"],
        "webhook",
    ),
    (InteractionType::WebsiteVisit, 25, &["website"], "tracking"),
    (InteractionType::InfoRequest, 4, &["website"], "tracking"),
    (InteractionType::PriceQuote, 2, &["website"], "tracking"),
    (InteractionType::SiteVisit, 1, &["in_person"], "manual"),
    (
        InteractionType::DirectMessage,
        4,
        &["facebook", "instagram", "linkedin"],
        "webhook",
    ),
    (InteractionType::Email, 6, &["email"], "manual"),
    (InteractionType::Call, 3, &["phone"], "manual"),
    (InteractionType::Note, 2, &["other"], "manual"),
    (InteractionType::StageChange, 1, &["other"], "manual"),
];

const SOURCES: [(&str, u64); 7] = [
    ("website", 30),
    ("facebook", 22),
    ("instagram", 13),
    ("linkedin", 15),
    ("referral", 8),
    ("direct", 7),
    ("other", 5),
];

fn pick_weighted<'a, T>(rng: &mut Rng, table: &'a [(T, u64)]) -> &'a T {
    let total: u64 = table.iter().map(|(_, w)| w).sum();
    let mut roll = rng.below(total);
    for (item, weight) in table {
        if roll < *weight {
            return item;
        }
        roll -= weight;
    }
    &table[0].0
}

/// Creates a migrated database in a fresh directory and seeds it.
pub fn seed(settings: &Settings) -> Res<Seeded> {
    let record = settings.work_dir.join("seeded/seed.json");
    if std::env::var("BENCH_REUSE_SEED").as_deref() == Ok("1") {
        if let Some(seeded) = std::fs::read_to_string(&record)
            .ok()
            .and_then(|text| serde_json::from_str::<Seeded>(&text).ok())
            .filter(|s| s.leads == settings.leads && s.peers.len() == 2)
        {
            println!(
                "[bench] seed: reusing {} (BENCH_REUSE_SEED=1)",
                seeded.persist.display()
            );
            return Ok(seeded);
        }
    }
    let seeded = seed_fresh(settings)?;
    let _ = std::fs::write(
        &record,
        serde_json::to_string_pretty(&seeded).unwrap_or_default(),
    );
    Ok(seeded)
}

fn seed_fresh(settings: &Settings) -> Res<Seeded> {
    let started = Instant::now();
    let persist = util::fresh_dir(&settings.work_dir.join("seeded"))?;
    println!(
        "[bench] seed: applying the migrations and placing the orgs (starting and stopping the runtime once)"
    );
    let mut runtime = Runtime::start(
        &settings.root,
        Flavor::Leadheat,
        &persist,
        true,
        &settings.work_dir.join("seed-runtime.log"),
    )?;
    // Each org's first authenticated request makes the product place it (least-loaded shard,
    // lowest index among equals) and write its defaults there: its shard `orgs` row, scoring
    // config and pipeline stages. org_bench goes first, onto SHARD_0, the shard the baseline
    // worker binds. The peers are placed one after the other until one shares org_bench's shard
    // and one is on another shard.
    place(&runtime, ORG)?;
    let files = runtime.d1_files()?;
    let directory_path = files.directory()?.clone();
    let shard_of = |org: &str| -> Res<u32> {
        util::read_only(&directory_path)?
            .query_row("SELECT shard FROM orgs WHERE id = ?1", [org], |r| r.get(0))
            .map_err(|e| format!("the directory has no shard for {org}: {e}"))
    };
    let bench_shard = shard_of(ORG)?;
    if bench_shard != 0 {
        return Err(format!(
            "{ORG} was placed on shard {bench_shard}, not SHARD_0 (the baseline worker's database)"
        ));
    }
    let mut placed: Vec<(String, u32)> = Vec::new();
    for i in 0..8 {
        let same = placed.iter().any(|(_, s)| *s == bench_shard);
        let other = placed.iter().any(|(_, s)| *s != bench_shard);
        if same && other {
            break;
        }
        let org = format!("org_peer_{i}");
        place(&runtime, &org)?;
        placed.push((org.clone(), shard_of(&org)?));
    }
    let same = placed.iter().find(|(_, s)| *s == bench_shard).cloned();
    let other = placed.iter().find(|(_, s)| *s != bench_shard).cloned();
    runtime.stop();
    drop(runtime);
    let (Some(same), Some(other)) = (same, other) else {
        return Err(format!(
            "could not place orgs on {ORG}'s shard and on another one (placed: {placed:?}); are there at least 2 shards?"
        ));
    };

    // The directory: org_bench's public site key is a fixed one.
    {
        let directory = Connection::open(&directory_path).map_err(|e| e.to_string())?;
        directory
            .execute(
                "UPDATE orgs SET site_key = 'site_bench' WHERE id = ?1",
                [ORG],
            )
            .map_err(|e| format!("setting {ORG}'s site key: {e}"))?;
    }

    let now = crate::util::now();
    let db_path = files.org_shard(ORG)?;
    let mut seeded = seed_org(&db_path, ORG, settings.leads, settings, now, 42)?;
    let peer_leads = (settings.leads / 20).clamp(200, 5000);
    let mut peers = Vec::new();
    for ((probe, shard), same_shard, seed) in [(same, true, 43), (other, false, 44)] {
        let path = files.org_shard(&probe)?;
        let peer = seed_org(&path, &probe, peer_leads, settings, now, seed)?;
        peers.push(Peer {
            org: probe,
            shard,
            same_shard,
            leads: peer.leads,
            touchpoints: peer.touchpoints,
        });
    }
    seeded.persist = persist;
    seeded.db_path = db_path;
    seeded.directory_path = directory_path;
    seeded.shard = bench_shard;
    seeded.peers = peers;
    seeded.seconds = started.elapsed().as_secs_f64();
    seeded.now = ts(now);
    println!(
        "[bench] seed: {} leads and {} touchpoints in {:.0} s (plus {} leads for each of {} and {})",
        seeded.leads,
        seeded.touchpoints,
        seeded.seconds,
        peer_leads,
        seeded.peers[0].org,
        seeded.peers[1].org
    );
    Ok(seeded)
}

/// One authenticated request for `org`, which places it on a shard with its defaults.
fn place(runtime: &Runtime, org: &str) -> Res<()> {
    let token = leadheat_e2e::token(org, "admin");
    let reply = util::send(
        util::agent()
            .get(&runtime.url("/v1/leads?limit=1"))
            .set("Authorization", &format!("Bearer {token}")),
        None,
    )?;
    if reply.status == 200 {
        Ok(())
    } else {
        Err(format!(
            "placing {org} (GET /v1/leads) answered {}: {}",
            reply.status,
            reply.body.chars().take(200).collect::<String>()
        ))
    }
}

/// Seeds `leads` leads of `org` into its shard file (the runtime stopped).
fn seed_org(
    path: &std::path::Path,
    org: &str,
    leads: usize,
    settings: &Settings,
    now: DateTime<Utc>,
    seed: u64,
) -> Res<Seeded> {
    let conn = Connection::open(path).map_err(|e| e.to_string())?;
    conn.execute_batch(
        "PRAGMA synchronous = OFF; PRAGMA cache_size = -1500000; PRAGMA temp_store = MEMORY;",
    )
    .map_err(|e| e.to_string())?;
    let seeded =
        write(&conn, org, leads, settings, now, seed).map_err(|e| format!("seeding {org}: {e}"))?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").ok();
    Ok(seeded)
}

fn write(
    conn: &Connection,
    org: &str,
    lead_count: usize,
    settings: &Settings,
    now: DateTime<Utc>,
    seed: u64,
) -> rusqlite::Result<Seeded> {
    let mut rng = Rng::new(seed);
    let config = ScoringConfig::default();
    let now_text = ts(now);
    let now_ms = now.timestamp_millis();
    let snapshot_day = (now - Duration::days(30)).date_naive();
    let snapshot_end =
        Utc.from_utc_datetime(&snapshot_day.and_hms_opt(0, 0, 0).unwrap()) + Duration::days(1);

    let tx = conn.unchecked_transaction()?;
    // The org's shard row, scoring config (the domain's defaults, as the seed's scores assume)
    // and pipeline stages were written by the product when it placed the org.
    let stage_ids: Vec<String> = tx
        .prepare("SELECT id FROM pipeline_stages WHERE org_id = ?1 ORDER BY rank_key")?
        .query_map([org], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if stage_ids.len() != STAGES.len() {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "{org} has {} pipeline stages on its shard, expected the {} defaults",
            stage_ids.len(),
            STAGES.len()
        )));
    }

    // Leads first (in memory), so each stage's positions can be spread evenly.
    struct Lead {
        id: String,
        created: DateTime<Utc>,
        touches: usize,
        stage: Option<usize>,
    }
    let mut leads: Vec<Lead> = Vec::with_capacity(lead_count);
    let per_lead = settings.touchpoints_per_lead.max(1) as u64;
    for i in 0..lead_count {
        let created = now - Duration::minutes(rng.below(365 * 24 * 60) as i64 + 1);
        // 1 in 1,000 leads is a "whale" with hundreds of touchpoints (the long timelines).
        let touches = if i % 1000 == 7 {
            300 + rng.below(300) as usize
        } else {
            (1 + rng.below(2 * per_lead - 1)) as usize
        };
        let stage = if rng.chance(75) {
            Some(rng.below(7) as usize)
        } else {
            None
        };
        leads.push(Lead {
            id: new_id("lead", created.timestamp_millis(), rng.bytes10()),
            created,
            touches,
            stage,
        });
    }
    let mut ranks: BTreeMap<usize, std::vec::IntoIter<String>> = BTreeMap::new();
    for (s, _) in STAGES.iter().enumerate() {
        let count = leads.iter().filter(|l| l.stage == Some(s)).count();
        ranks.insert(s, spread_keys(count).into_iter());
    }

    let mut insert_lead = tx.prepare(
        "INSERT INTO leads (id, org_id, first_name, last_name, email, email_normalized, phone, phone_normalized, company, title, \
         source, source_detail, stage_id, rank_key, owner_id, tags, custom_fields, heat_score, heat_level, heat_trend, heat_stamp, \
         scored_at, scored_config_version, needs_rescore, last_interaction_at, created_at, updated_at, version) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, '{}', ?17, ?18, ?19, 1, ?20, 1, 0, ?21, ?22, ?22, 1)",
    )?;
    let mut insert_tag =
        tx.prepare("INSERT INTO lead_tags (org_id, lead_id, tag) VALUES (?1, ?2, ?3)")?;
    let mut insert_profile = tx.prepare(
        "INSERT INTO social_profiles (id, org_id, lead_id, platform, platform_user_id, handle, url, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)",
    )?;
    let mut insert_touch = tx.prepare(
        "INSERT INTO interactions (id, org_id, lead_id, type, platform, occurred_at, captured_by, points, external_id, metadata, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?6)",
    )?;
    let mut insert_snapshot = tx.prepare(
        "INSERT INTO heat_snapshots (lead_id, day, org_id, score, level) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut insert_change = tx.prepare(
        "INSERT INTO heat_level_changes (id, org_id, lead_id, old_level, new_level, changed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    type Kind = (InteractionType, &'static [&'static str], &'static str);
    let mix: Vec<(Kind, u64)> = MIX.iter().map(|(k, w, p, c)| ((*k, *p, *c), *w)).collect();

    let mut touchpoints = 0usize;
    let mut external = 0u64;
    let mut whales = Vec::new();
    let mut ordinary = Vec::new();
    for (i, lead) in leads.iter().enumerate() {
        let first = FIRST_NAMES[rng.below(40) as usize];
        let last = LAST_NAMES[rng.below(40) as usize];
        let company = COMPANIES[rng.below(30) as usize];
        let domain: String = company
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let email = format!(
            "{}.{}{}@{}.example",
            first.to_lowercase(),
            last.to_lowercase().replace('\'', ""),
            i,
            domain
        );
        let phone = rng.chance(50).then(|| format!("+1555{:07}", i));
        let source = *pick_weighted(&mut rng, &SOURCES);
        let owner = rng
            .chance(90)
            .then(|| format!("user-{}", 1 + rng.below(12)));
        let mut tags: Vec<&str> = Vec::new();
        for _ in 0..rng.below(4) {
            let tag = TAGS[rng.below(TAGS.len() as u64) as usize];
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }

        // Touchpoints between the lead's creation and now, in time order.
        let span = (now_ms - lead.created.timestamp_millis()).max(1) as u64;
        let mut times: Vec<i64> = (0..lead.touches)
            .map(|_| lead.created.timestamp_millis() + rng.below(span) as i64)
            .collect();
        times.sort_unstable();
        let mut touches: Vec<Touch> = Vec::with_capacity(times.len());
        let mut last_at: Option<i64> = None;
        let mut running = 0i64;
        let mut level = HeatLevel::Cold;
        let mut base_score: Option<f64> = None;
        // Written after the lead row (foreign keys).
        let mut pending_touches = Vec::with_capacity(times.len());
        let mut pending_changes = Vec::new();
        for at_ms in times {
            let (kind, platforms, captured) = *pick_weighted(&mut rng, &mix);
            let platform = platforms[rng.below(platforms.len() as u64) as usize];
            let at = Utc.timestamp_millis_opt(at_ms).unwrap();
            if at >= snapshot_end && base_score.is_none() {
                base_score = Some(running.max(0) as f64);
            }
            external += 1;
            let points = config.weight(kind);
            let metadata = match captured {
                "webhook" => format!(
                    "{{\"post_id\":\"{}_{}\"}}",
                    104857600000000u64,
                    9_000_000 + rng.below(400)
                ),
                "tracking" => format!(
                    "{{\"url\":\"https://example.com/pricing?p={}\"}}",
                    rng.below(50)
                ),
                _ => "{}".to_string(),
            };
            pending_touches.push((
                new_id("ix", at_ms, rng.bytes10()),
                kind.as_str(),
                platform,
                ts(at),
                captured,
                points as f64,
                format!("seed:{external}"),
                metadata,
            ));
            touches.push(Touch::new(kind, at));
            if kind != InteractionType::StageChange {
                last_at = Some(at_ms);
            }
            running += points;
            let new_level = level_for(running.max(0) as f64, &config.thresholds);
            if new_level != level {
                pending_changes.push((
                    new_id("hlc", at_ms, rng.bytes10()),
                    level.as_str(),
                    new_level.as_str(),
                    ts(at),
                ));
                level = new_level;
            }
        }
        touchpoints += touches.len();
        let heat = scoring::score(&touches, &config, now);
        let base = if lead.created < snapshot_end {
            Some(base_score.unwrap_or(heat.score))
        } else {
            None
        };
        let rank = lead
            .stage
            .and_then(|s| ranks.get_mut(&s).and_then(|it| it.next()));
        let tags_json = serde_json::to_string(&tags).expect("tags");
        insert_lead.execute(params![
            lead.id,
            org,
            first,
            last,
            email,
            email.to_lowercase(),
            phone,
            phone.as_ref().map(|p| p.replace('+', "")),
            company,
            [
                "CEO",
                "CTO",
                "Head of Sales",
                "Marketing Manager",
                "Buyer",
                "Engineer"
            ][rng.below(6) as usize],
            source,
            if source == "facebook" {
                "{\"form\":\"winter-offer\",\"page\":\"104857600000000\"}"
            } else {
                "{}"
            },
            lead.stage.map(|s| stage_ids[s].clone()),
            rank,
            owner,
            tags_json,
            heat.score,
            heat.level.as_str(),
            base.map_or(0.0, |b| heat.score - b),
            now_text,
            last_at.map(|ms| ts(Utc.timestamp_millis_opt(ms).unwrap())),
            ts(lead.created),
        ])?;
        for (id, kind, platform, at, captured, points, external_id, metadata) in &pending_touches {
            insert_touch.execute(params![
                id,
                org,
                lead.id,
                kind,
                platform,
                at,
                captured,
                points,
                external_id,
                metadata
            ])?;
        }
        for (id, old, new, at) in &pending_changes {
            insert_change.execute(params![id, org, lead.id, old, new, at])?;
        }
        if let Some(score) = base {
            insert_snapshot.execute(params![
                lead.id,
                snapshot_day.to_string(),
                org,
                score,
                level_for(score, &config.thresholds).as_str()
            ])?;
        }
        for tag in &tags {
            insert_tag.execute(params![org, lead.id, tag])?;
        }
        if matches!(source, "facebook" | "instagram" | "linkedin") {
            insert_profile.execute(params![
                new_id("sp", lead.created.timestamp_millis(), rng.bytes10()),
                org,
                lead.id,
                source,
                format!("{}", 6_200_000_000_000_000u64 + i as u64),
                format!("{}.{}", first.to_lowercase(), i),
                ts(lead.created),
            ])?;
        }
        if lead.touches >= 300 && whales.len() < 10 {
            whales.push(lead.id.clone());
        } else if ordinary.len() < 30 && i % 97 == 3 {
            ordinary.push(lead.id.clone());
        }
        if i > 0 && i % 20_000 == 0 {
            println!("[bench] seed: {i} leads, {touchpoints} touchpoints");
        }
    }
    drop((
        insert_lead,
        insert_tag,
        insert_profile,
        insert_touch,
        insert_snapshot,
        insert_change,
    ));
    tx.commit()?;

    let mut timeline_leads = whales;
    timeline_leads.extend(ordinary);
    Ok(Seeded {
        persist: PathBuf::new(),
        db_path: PathBuf::new(),
        directory_path: PathBuf::new(),
        shard: 0,
        peers: Vec::new(),
        leads: leads.len(),
        touchpoints,
        seconds: 0.0,
        stage_ids,
        timeline_leads,
        owner: "user-3".to_string(),
        tag: "vip".to_string(),
        search: "ander".to_string(),
        now: now_text,
    })
}

/// `count` ascending position keys of one fixed width, spread evenly over the key space (keys over
/// `0-9A-Za-z`, never ending in `0`, as `leadheat_domain::ranking` requires). Not
/// `ranking::evenly_spaced`: it appends one key after another, and keys grow by about a character
/// every six appends, past its length limit after a few thousand.
fn spread_keys(count: usize) -> Vec<String> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut width = 2u32;
    while 62u128.pow(width) < 4 * (count as u128 + 1) {
        width += 1;
    }
    let space = 62u128.pow(width);
    let step = space / (count as u128 + 1);
    (1..=count as u128)
        .map(|i| {
            let mut value = step * i;
            if value.is_multiple_of(62) {
                value += 1;
            }
            let mut digits = vec![b'0'; width as usize];
            for slot in digits.iter_mut().rev() {
                *slot = ALPHABET[(value % 62) as usize];
                value /= 62;
            }
            String::from_utf8(digits).expect("ASCII")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn spread_keys_are_valid_and_ascending() {
        for n in [0, 1, 7, 61, 62, 5000, 20_000] {
            let keys = super::spread_keys(n);
            assert_eq!(keys.len(), n);
            assert!(keys.windows(2).all(|w| w[0] < w[1]));
            assert!(keys
                .iter()
                .all(|k| leadheat_domain::ranking::is_valid_key(k)));
        }
    }
}
