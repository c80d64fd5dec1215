//! The dashboard's rollups (docs/dashboard.md): after random writes through the API and the
//! scoring job (touchpoints over more than a year, level changes at past instants, snapshots,
//! merges, erasure, stage moves and a stage deletion, source edits), every figure of
//! `GET /v1/dashboard` for several windows equals the same figure computed here from the raw
//! tables, the rollup rows equal a recomputation from the raw tables, and the operator's rebuild
//! leaves them exactly as they were.
//!
//! The scoring job's runs touch every org of the runtime, so the tests run one at a time.

use std::collections::BTreeMap;

use leadheat_domain::types::{InteractionType, Platform};
use leadheat_e2e::runner::{run_serially, E2eTest};
use leadheat_e2e::social::rfc3339;
use leadheat_e2e::{token, unique_org, unix_now, Resp, Runtime};
use rusqlite::Connection;
use serde_json::{json, Value};

const OPS_TOKEN: &str = "test-ops-token";
const DAY: i64 = 86_400;
const NIGHTLY: &str = "5 0 * * *";
const FREQUENT: &str = "*/15 * * * *";
const SOURCES: [&str; 7] = [
    "website",
    "facebook",
    "instagram",
    "linkedin",
    "referral",
    "direct",
    "other",
];
/// Every type a user may record (`stage_change` is the pipeline's own).
const TYPES: [&str; 18] = [
    "social_follow",
    "social_like",
    "website_visit",
    "info_request",
    "price_quote",
    "site_visit",
    "social_comment",
    "social_share",
    "social_mention",
    "direct_message",
    "story_view",
    "connection_request",
    "connection_accepted",
    "lead_form",
    "email",
    "call",
    "meeting",
    "note",
];
const PLATFORMS: [&str; 8] = [
    "facebook",
    "instagram",
    "linkedin",
    "website",
    "email",
    "phone",
    "in_person",
    "other",
];

fn main() {
    let tests: &[E2eTest] = &[
        (
            "every_dashboard_figure_equals_the_raw_tables",
            every_dashboard_figure_equals_the_raw_tables,
        ),
        (
            "the_rebuild_route_needs_the_token_and_a_known_org",
            the_rebuild_route_needs_the_token_and_a_known_org,
        ),
    ];
    run_serially(Runtime::start_with_env(&[("OPS_TOKEN", OPS_TOKEN)]), tests)
}

/// A small deterministic generator (xorshift64*), seeded per run and printed, so a failure can
/// be replayed with `DASHBOARD_SEED`.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("DASHBOARD_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| unix_now() as u64 ^ 0x9e37_79b9_7f4a_7c15);
        eprintln!("dashboard_rollups: DASHBOARD_SEED={seed}");
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

struct Api<'a> {
    rt: &'a Runtime,
    token: String,
}

impl Api<'_> {
    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let req = self.rt.request(method, path).bearer(&self.token);
        match body {
            Some(body) => req.send_json(body),
            None => req.send_empty(),
        }
    }
    fn id(&self, path: &str, body: &Value) -> String {
        self.send("POST", path, Some(body)).expect(201).json()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

fn put_thresholds(api: &Api, warm: f64, hot: f64) {
    api.send(
        "PUT",
        "/v1/scoring",
        Some(&json!({
            "weights": {
                "social_follow": 1, "social_like": 1, "website_visit": 2, "info_request": 5,
                "price_quote": 8, "site_visit": 10, "social_comment": 2, "direct_message": 3,
                "lead_form": 6, "meeting": 7
            },
            "thresholds": {"warm": warm, "hot": hot},
            "decay_half_life_days": null,
        })),
    )
    .expect(200);
}

fn fire(rt: &Runtime, cron: &str, at: i64) {
    let fired = rt
        .fire_cron("scoring", Some(cron), Some(&rfc3339(at)))
        .expect(200)
        .json();
    assert_eq!(fired["outcome"], "ok", "{fired}");
}

fn touch_randomly(api: &Api, rng: &mut Rng, leads: &[String], count: usize, now: i64) {
    for _ in 0..count {
        let lead = rng.pick(leads);
        // Mostly recent, some over a year old, a few later today.
        let ago = match rng.below(10) {
            0 => (rng.below(420 * 24) as i64) * 3600,
            1 => -(rng.below(3) as i64) * 60,
            _ => (rng.below(40 * 24 * 60) as i64) * 60,
        };
        api.send(
            "POST",
            &format!("/v1/leads/{lead}/interactions"),
            Some(&json!({
                "type": rng.pick(&TYPES),
                "platform": rng.pick(&PLATFORMS),
                "occurred_at": rfc3339(now - ago),
            })),
        )
        .expect(201);
    }
}

fn every_dashboard_figure_equals_the_raw_tables(rt: &Runtime) {
    let mut rng = Rng::seeded();
    let org = unique_org("dashrollups");
    let api = Api {
        rt,
        token: token(&org, "admin"),
    };
    let now = unix_now();
    // The API's own writes change no level while the thresholds are out of reach, so every
    // recorded level change is in time order: the job's at past instants first, the API's now.
    put_thresholds(&api, 1000.0, 2000.0);
    let stages: Vec<String> = ["Rollup A", "Rollup B"]
        .iter()
        .map(|name| api.id("/v1/pipeline/stages", &json!({ "name": name })))
        .collect();
    let mut leads: Vec<String> = (0..24)
        .map(|i| {
            api.id(
                "/v1/leads",
                &json!({
                    "first_name": format!("R{i}"),
                    "last_name": "Rollup",
                    "email": format!("r{i}.{}@example.com", leadheat_e2e::unique_suffix()),
                    "source": rng.pick(&SOURCES),
                }),
            )
        })
        .collect();
    touch_randomly(&api, &mut rng, &leads, 90, now);

    // History: levels change and snapshots are taken 33, 12 and 3 days ago.
    put_thresholds(&api, 4.0, 12.0);
    fire(rt, NIGHTLY, now - 33 * DAY);
    put_thresholds(&api, 1000.0, 2000.0);
    fire(rt, NIGHTLY, now - 12 * DAY);
    touch_randomly(&api, &mut rng, &leads, 40, now);
    put_thresholds(&api, 6.0, 16.0);
    fire(rt, NIGHTLY, now - 3 * DAY);
    touch_randomly(&api, &mut rng, &leads, 40, now);

    // Today: merges, erasure, stage moves, a stage deleted, sources edited.
    for _ in 0..3 {
        let source = leads.remove(rng.below(leads.len()));
        let target = rng.pick(&leads).clone();
        api.send(
            "POST",
            &format!("/v1/leads/{target}/merge"),
            Some(&json!({ "source_lead_id": source })),
        )
        .expect(200);
    }
    for _ in 0..2 {
        let gone = leads.remove(rng.below(leads.len()));
        api.send("DELETE", &format!("/v1/leads/{gone}"), None)
            .expect(204);
    }
    for lead in leads.iter().take(10) {
        api.send(
            "POST",
            &format!("/v1/leads/{lead}/move"),
            Some(&json!({ "stage_id": rng.pick(&stages) })),
        )
        .expect(200);
    }
    for lead in leads.iter().take(10) {
        let moved = api
            .send("GET", &format!("/v1/leads/{lead}"), None)
            .expect(200)
            .json();
        if moved["stage_id"] == json!(stages[1]) {
            api.send(
                "POST",
                &format!("/v1/leads/{lead}/move"),
                Some(&json!({ "stage_id": stages[0] })),
            )
            .expect(200);
        }
    }
    api.send(
        "DELETE",
        &format!("/v1/pipeline/stages/{}", stages[1]),
        None,
    )
    .expect(204);
    for lead in leads.iter().skip(10).take(4) {
        api.send(
            "PATCH",
            &format!("/v1/leads/{lead}"),
            Some(&json!({ "source": rng.pick(&SOURCES) })),
        )
        .expect(200);
    }
    touch_randomly(&api, &mut rng, &leads, 20, now);
    // The merge targets are rescored by the job (their level changes are recorded now).
    fire(rt, FREQUENT, unix_now());

    let db = rt.org_db(&org);
    assert_rollups_are_the_raw_tables(&db, &org);
    let mut dashboards = Vec::new();
    for days in [1, 7, 30, 365] {
        let dash = api
            .send("GET", &format!("/v1/dashboard?window_days={days}"), None)
            .expect(200)
            .json();
        assert_eq!(dash, expected_dashboard(&db, &org, &dash), "window {days}");
        dashboards.push(dash);
    }
    let hot_leads = dashboards[3]["totals"]["hot_leads"].clone();
    assert!(
        hot_leads["value"].as_i64().unwrap() + hot_leads["previous"].as_i64().unwrap() > 0,
        "the data has HOT leads to count: {hot_leads}"
    );
    // Each window but the year's has a snapshot at its start to measure from.
    for dash in &dashboards[..3] {
        let trending = &dash["trending"];
        assert!(
            trending["rising"]
                .as_array()
                .unwrap()
                .iter()
                .chain(trending["falling"].as_array().unwrap())
                .any(|t| t["basis"] == "snapshots"),
            "window {}: no trending lead measured against a snapshot: {trending}",
            dash["window_days"]
        );
    }

    // The rebuild recomputes the same rows, and the dashboard reads the same.
    let before = rollup_rows(&db, &org);
    let rebuilt = rt
        .post(&format!(
            "/__dev/workers/scoring/ops/orgs/{org}/rollups/rebuild"
        ))
        .bearer(OPS_TOKEN)
        .send_empty()
        .expect(200)
        .json();
    // It covered the org's days (its rows', and those of rollup rows left at 0), in ranges of 31.
    let report = &rebuilt["rebuilt"];
    let (first, last) = (
        report["first_day"].as_str().unwrap(),
        report["last_day"].as_str().unwrap(),
    );
    let (raw_first, raw_last, span): (String, String, i64) = db
        .query_row(
            "SELECT MIN(d), MAX(d), CAST(julianday(?2) - julianday(?1) AS INTEGER) + 1 FROM ( \
               SELECT substr(occurred_at, 1, 10) AS d FROM interactions WHERE org_id = ?3 \
               UNION ALL SELECT substr(created_at, 1, 10) FROM leads WHERE org_id = ?3 \
               UNION ALL SELECT substr(changed_at, 1, 10) FROM heat_level_changes WHERE org_id = ?3)",
            [first, last, org.as_str()],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert!(
        first <= raw_first.as_str() && last >= raw_last.as_str(),
        "{rebuilt}"
    );
    assert_eq!(report["ranges"], json!((span + 30) / 31), "{rebuilt}");
    assert_eq!(rollup_rows(&db, &org), before);
    let again = api
        .send("GET", "/v1/dashboard?window_days=30", None)
        .expect(200)
        .json();
    assert_eq!(again, expected_dashboard(&db, &org, &again));
}

fn the_rebuild_route_needs_the_token_and_a_known_org(rt: &Runtime) {
    let path = "/__dev/workers/scoring/ops/orgs/org-nobody/rollups/rebuild";
    rt.post(path).send_empty().expect(401);
    rt.post(path).bearer("wrong").send_empty().expect(401);
    rt.post(path).bearer(OPS_TOKEN).send_empty().expect(404);
    rt.get(path).bearer(OPS_TOKEN).send_empty().expect(405);
}

// ------------------------------------------------------------------------------------------------
// The oracle: the same figures from the raw tables

fn query<T>(
    db: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Vec<T> {
    db.prepare(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .query_map(params, row)
        .unwrap()
        .collect::<rusqlite::Result<Vec<T>>>()
        .unwrap()
}

fn count(db: &Connection, sql: &str, params: impl rusqlite::Params) -> i64 {
    db.query_row(sql, params, |row| row.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The non-zero rollup rows of the org, as text, in key order.
fn rollup_rows(db: &Connection, org: &str) -> Vec<String> {
    query(
        db,
        "SELECT 'counts ' || heat_level || ' ' || source || ' ' || stage_id || ' ' || n \
         FROM dashboard_lead_counts WHERE org_id = ?1 AND n <> 0 \
         UNION ALL SELECT 'days ' || day || ' ' || created || ' ' || hot_net \
         FROM dashboard_lead_days WHERE org_id = ?1 AND (created <> 0 OR hot_net <> 0) \
         UNION ALL SELECT 'touch ' || day || ' ' || platform || ' ' || type || ' ' || n \
         FROM dashboard_touch_days WHERE org_id = ?1 AND n <> 0 ORDER BY 1",
        [org],
        |row| row.get(0),
    )
}

/// Every rollup row against a GROUP BY of the raw rows; no count is ever negative.
fn assert_rollups_are_the_raw_tables(db: &Connection, org: &str) {
    let raw = query(
        db,
        "SELECT 'counts ' || heat_level || ' ' || source || ' ' || COALESCE(stage_id, '') || ' ' || COUNT(*) \
         FROM leads WHERE org_id = ?1 GROUP BY heat_level, source, COALESCE(stage_id, '') \
         UNION ALL SELECT 'days ' || day || ' ' || SUM(created) || ' ' || SUM(hot_net) FROM ( \
           SELECT substr(created_at, 1, 10) AS day, 1 AS created, 0 AS hot_net FROM leads WHERE org_id = ?1 \
           UNION ALL SELECT substr(changed_at, 1, 10), 0, (new_level = 'HOT') - (old_level = 'HOT') \
           FROM heat_level_changes WHERE org_id = ?1) \
         GROUP BY day HAVING SUM(created) <> 0 OR SUM(hot_net) <> 0 \
         UNION ALL SELECT 'touch ' || substr(occurred_at, 1, 10) || ' ' || platform || ' ' || type || ' ' || COUNT(*) \
         FROM interactions WHERE org_id = ?1 GROUP BY substr(occurred_at, 1, 10), platform, type ORDER BY 1",
        [org],
        |row| row.get::<_, String>(0),
    );
    assert_eq!(rollup_rows(db, org), raw);
    let negative = count(
        db,
        "SELECT (SELECT COUNT(*) FROM dashboard_lead_counts WHERE org_id = ?1 AND n < 0) \
         + (SELECT COUNT(*) FROM dashboard_lead_days WHERE org_id = ?1 AND created < 0) \
         + (SELECT COUNT(*) FROM dashboard_touch_days WHERE org_id = ?1 AND n < 0)",
        [org],
    );
    assert_eq!(negative, 0);
}

fn change(value: i64, previous: i64) -> Value {
    let pct = if previous == 0 {
        Value::Null
    } else {
        json!(((value - previous) as f64 * 1000.0 / previous as f64).round() / 10.0)
    };
    json!({"value": value, "previous": previous, "change": value - previous, "change_pct": pct})
}

/// The window's first midnight and every UTC day from it through `to`'s day; checks that `from`
/// is that midnight.
fn days_of(from: &str, to: &str, days: i64) -> (i64, Vec<String>) {
    let end_midnight = (-1..=1)
        .map(|k| (unix_now().div_euclid(DAY) + k) * DAY)
        .find(|m| rfc3339(*m)[..10] == to[..10])
        .expect("the window ends today");
    let start_midnight = end_midnight - days * DAY;
    assert_eq!(
        rfc3339(start_midnight),
        from,
        "the window starts at a midnight"
    );
    let list = (0..=days)
        .map(|i| rfc3339(start_midnight + i * DAY)[..10].to_string())
        .collect();
    (start_midnight, list)
}

/// A number as the API writes it (whole numbers without a fraction).
fn compact(value: f64) -> Value {
    leadheat_domain::types::serialize_compact_f64(&value, serde_json::value::Serializer).unwrap()
}

/// The dashboard the raw tables call for, for the window the response reports.
fn expected_dashboard(db: &Connection, org: &str, dash: &Value) -> Value {
    let days = dash["window_days"].as_i64().unwrap();
    let window = &dash["window"];
    let (from, to, previous_from) = (
        window["from"].as_str().unwrap(),
        window["to"].as_str().unwrap(),
        window["previous_from"].as_str().unwrap(),
    );
    let (start_midnight, day_list) = days_of(from, to, days);
    let last_day = day_list.last().unwrap().clone();
    // Sorts after every instant of the window's last day.
    let until = format!("{last_day}T99");
    assert_eq!(rfc3339(start_midnight - days * DAY), previous_from);
    let earliest_baseline_day = rfc3339(start_midnight - 7 * DAY)[..10].to_string();

    let per = |column: &str, keys: &[&str]| -> Value {
        let counts: BTreeMap<String, i64> = query(
            db,
            &format!("SELECT {column}, COUNT(*) FROM leads WHERE org_id = ?1 GROUP BY {column}"),
            [org],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .into_iter()
        .collect();
        keys.iter()
            .map(|k| (k.to_string(), json!(counts.get(*k).copied().unwrap_or(0))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let by_stage: Vec<Value> = query(
        db,
        "SELECT s.id, s.name, (SELECT COUNT(*) FROM leads l WHERE l.org_id = s.org_id AND l.stage_id = s.id) \
         FROM pipeline_stages s WHERE s.org_id = ?1 ORDER BY s.rank_key, s.id",
        [org],
        |row| {
            Ok(json!({"stage_id": row.get::<_, String>(0)?, "name": row.get::<_, String>(1)?,
                       "count": row.get::<_, i64>(2)?}))
        },
    );
    let leads_in = |lo: &str, hi: &str| {
        count(
            db,
            "SELECT COUNT(*) FROM leads WHERE org_id = ?1 AND created_at >= ?2 AND created_at < ?3",
            [org, lo, hi],
        )
    };
    let touches_in = |lo: &str, hi: &str| {
        count(
            db,
            "SELECT COUNT(*) FROM interactions WHERE org_id = ?1 AND occurred_at >= ?2 AND occurred_at < ?3",
            [org, lo, hi],
        )
    };
    // HOT at the window start: leads whose last level change before it was into HOT.
    let hot_prev = count(
        db,
        "SELECT COUNT(*) FROM heat_level_changes c WHERE c.org_id = ?1 AND c.changed_at < ?2 AND c.new_level = 'HOT' \
         AND NOT EXISTS (SELECT 1 FROM heat_level_changes c2 WHERE c2.lead_id = c.lead_id AND c2.changed_at < ?2 \
             AND (c2.changed_at > c.changed_at OR (c2.changed_at = c.changed_at AND c2.id > c.id)))",
        [org, from],
    );
    let all = count(db, "SELECT COUNT(*) FROM leads WHERE org_id = ?1", [org]);
    let hot = count(
        db,
        "SELECT COUNT(*) FROM leads WHERE org_id = ?1 AND heat_level = 'HOT'",
        [org],
    );
    json!({
        "window_days": days,
        "window": window,
        "totals": {
            "leads": change(all, leads_in("", from)),
            "new_leads": change(leads_in(from, &until), leads_in(previous_from, from)),
            "touchpoints": change(touches_in(from, &until), touches_in(previous_from, from)),
            "hot_leads": change(hot, hot_prev),
        },
        "by_heat_level": per("heat_level", &["COLD", "WARM", "HOT"]),
        "by_source": per("source", &SOURCES),
        "by_stage": by_stage,
        "unstaged": count(db, "SELECT COUNT(*) FROM leads WHERE org_id = ?1 AND stage_id IS NULL", [org]),
        "social_engagement": engagement(db, org, from, &until, &day_list),
        "trending": trending(db, org, &earliest_baseline_day, &day_list[0]),
    })
}

fn engagement(db: &Connection, org: &str, from: &str, until: &str, day_list: &[String]) -> Value {
    let social_platforms: Vec<&str> = Platform::ALL
        .iter()
        .filter(|p| p.is_social())
        .map(|p| p.as_str())
        .collect();
    let social_types: Vec<&str> = InteractionType::ALL
        .iter()
        .filter(|k| k.is_social())
        .map(|k| k.as_str())
        .collect();
    let rows: Vec<(String, String, String)> = query::<(String, String, String)>(
        db,
        "SELECT substr(occurred_at, 1, 10), platform, type FROM interactions \
         WHERE org_id = ?1 AND occurred_at >= ?2 AND occurred_at < ?3",
        [org, from, until],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )
    .into_iter()
    .filter(|(_, p, t)| {
        social_platforms.contains(&p.as_str()) && social_types.contains(&t.as_str())
    })
    .collect();
    let n = |f: &dyn Fn(&(String, String, String)) -> bool| rows.iter().filter(|r| f(r)).count();
    let mut by_platform = serde_json::Map::new();
    for platform in &social_platforms {
        let by_type: serde_json::Map<String, Value> = social_types
            .iter()
            .map(|t| (t.to_string(), json!(n(&|r| r.1 == *platform && r.2 == *t))))
            .collect();
        by_platform.insert(
            platform.to_string(),
            json!({"total": n(&|r| r.1 == *platform), "by_type": by_type}),
        );
    }
    let by_type: serde_json::Map<String, Value> = social_types
        .iter()
        .map(|t| (t.to_string(), json!(n(&|r| r.2 == *t))))
        .collect();
    let by_day: Vec<Value> = day_list
        .iter()
        .map(|day| {
            let mut entry = serde_json::Map::new();
            entry.insert("day".into(), json!(day));
            for platform in &social_platforms {
                entry.insert(
                    platform.to_string(),
                    json!(n(&|r| r.0 == *day && r.1 == *platform)),
                );
            }
            entry.insert("total".into(), json!(n(&|r| r.0 == *day)));
            Value::Object(entry)
        })
        .collect();
    json!({"total": rows.len(), "by_platform": by_platform, "by_type": by_type, "by_day": by_day})
}

/// Each lead's score now against its latest snapshot from a week before the window's first day
/// through that day (0 without one); the 5 largest rises and falls, ties by id.
fn trending(db: &Connection, org: &str, earliest: &str, start_day: &str) -> Value {
    let snapshots: Vec<(String, String, f64)> = query(
        db,
        "SELECT lead_id, day, score FROM heat_snapshots WHERE org_id = ?1",
        [org],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    );
    let leads: Vec<Value> = query(
        db,
        "SELECT id, first_name, last_name, company, heat_score, heat_level, heat_trend \
         FROM leads WHERE org_id = ?1",
        [org],
        |row| {
            Ok(json!({
                "id": row.get::<_, String>(0)?, "first_name": row.get::<_, Option<String>>(1)?,
                "last_name": row.get::<_, Option<String>>(2)?, "company": row.get::<_, Option<String>>(3)?,
                "heat_score": compact(row.get(4)?), "heat_level": row.get::<_, String>(5)?,
                "heat_trend": compact(row.get(6)?),
            }))
        },
    );
    let mut deltas: Vec<(f64, String, Value)> = leads
        .into_iter()
        .map(|mut lead| {
            let id = lead["id"].as_str().unwrap().to_string();
            let base = snapshots
                .iter()
                .filter(|(l, d, _)| *l == id && d.as_str() >= earliest && d.as_str() <= start_day)
                .max_by(|a, b| a.1.cmp(&b.1))
                .map(|s| s.2);
            let delta = lead["heat_score"].as_f64().unwrap() - base.unwrap_or(0.0);
            lead["change"] = compact((delta * 100.0).round() / 100.0);
            lead["basis"] = json!(if base.is_some() {
                "snapshots"
            } else {
                "no_snapshot"
            });
            (delta, id, lead)
        })
        .collect();
    deltas.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let rising: Vec<Value> = deltas
        .iter()
        .filter(|d| d.0 > 0.0)
        .take(5)
        .map(|d| d.2.clone())
        .collect();
    deltas.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let falling: Vec<Value> = deltas
        .iter()
        .filter(|d| d.0 < 0.0)
        .take(5)
        .map(|d| d.2.clone())
        .collect();
    json!({"rising": rising, "falling": falling})
}
