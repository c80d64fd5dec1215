//! Part 2: lead queries on the seeded org (100k leads / 1M touchpoints at full size). Each route is
//! timed through the local runtime (client round trip: HTTP front, API worker, D1) and, alternating
//! request by request so both see the same machine, its baseline: the same SQL run directly on the
//! same sqlite file with rusqlite (every row and column read, as D1 materialises them).
//!
//! A second baseline measures what D1 itself costs: the bare baseline worker (bench/baseline,
//! `POST /d1/read`) runs the same statements through the D1 binding as ONE batch, on a copy of the
//! same seeded files served by its own runtime, and returns the rows as JSON. The API against it
//! is what Leadheat adds over one D1 round trip (authentication, the org's directory lookup, extra
//! round trips, shaping).
//!
//! The baseline SQL is defined HERE, written after the store modules (functions/edge/src/store:
//! leads.rs `list`, social_profiles.rs `for_leads`, interactions.rs `timeline`/`feed`, stages.rs
//! `list`/`board_pages`, dashboard.rs `figures`) rather than extracted from them at run time, which
//! would be fragile. When a store query changes, change its copy here: the EXPLAIN QUERY PLAN check
//! below runs on these copies.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use leadheat_domain::types::{InteractionType, Platform};
use rusqlite::types::Value as Sql;
use rusqlite::Connection;
use serde_json::{json, Value};

use crate::report::{Figure, PartOutput};
use crate::seed::{self, Seeded, ORG};
use crate::util::{self, ms, percentile, Flavor, Res, Runtime, Settings};
use crate::PartResult;

type Baseline = Box<dyn Fn(&Connection, usize) -> rusqlite::Result<usize>>;
type Statements = Vec<(String, Vec<Sql>)>;

struct Case {
    name: String,
    api: Box<dyn Fn(usize) -> String>,
    baseline: Baseline,
    /// The statements of request `i` for the bare D1 worker, sent as one batch.
    d1: Box<dyn Fn(usize) -> Statements>,
    /// The statements to EXPLAIN (with representative arguments).
    explain: Vec<(String, Vec<Sql>)>,
}

const LIMIT: i64 = 50;

fn text(s: impl Into<String>) -> Sql {
    Sql::Text(s.into())
}

/// Runs one statement and materialises every row and column; returns the rows.
fn rows(conn: &Connection, sql: &str, args: &[Sql]) -> rusqlite::Result<Vec<Vec<Sql>>> {
    let mut statement = conn.prepare(sql)?;
    let columns = statement.column_count();
    let mut rows = statement.query(rusqlite::params_from_iter(args.iter()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns);
        for i in 0..columns {
            values.push(row.get::<_, Sql>(i)?);
        }
        out.push(values);
    }
    Ok(out)
}

const PROFILES_SQL: &str =
    "SELECT lead_id, platform, platform_user_id, handle, url FROM social_profiles \
     WHERE org_id = ?1 AND lead_id IN (SELECT value FROM json_each(?2)) ORDER BY created_at, id";

fn ids_json(rows: &[Vec<Sql>]) -> String {
    let ids: Vec<String> = rows
        .iter()
        .filter_map(|r| match r.first() {
            Some(Sql::Text(id)) => Some(id.clone()),
            _ => None,
        })
        .collect();
    serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into())
}

/// `leads::list`: the page query (limit + 1 rows), then the page's social profiles.
fn list_case(
    conn: &Connection,
    name: &str,
    api_query: &str,
    filter: &str,
    filter_args: Vec<Sql>,
    order: &str,
) -> Case {
    let limit_param = filter_args.len() + 2;
    let sql = format!(
        "SELECT l.* FROM leads l WHERE l.org_id = ?1{filter} ORDER BY {order} LIMIT ?{limit_param}"
    );
    let mut args = vec![text(ORG)];
    args.extend(filter_args);
    args.push(Sql::Integer(LIMIT + 1));
    let sample = rows(conn, &sql, &args).unwrap_or_default();
    let explain = vec![
        (sql.clone(), args.clone()),
        (
            PROFILES_SQL.to_string(),
            vec![text(ORG), text(ids_json(&sample))],
        ),
    ];
    let d1_statements = vec![
        (sql.clone(), args.clone()),
        (
            PROFILES_SQL.to_string(),
            vec![
                text(ORG),
                text(ids_json(&sample[..sample.len().min(LIMIT as usize)])),
            ],
        ),
    ];
    let path = format!("/v1/leads?{api_query}");
    Case {
        name: name.to_string(),
        api: Box::new(move |_| path.clone()),
        d1: Box::new(move |_| d1_statements.clone()),
        baseline: Box::new(move |conn, _| {
            let page = rows(conn, &sql, &args)?;
            let profiles = rows(
                conn,
                PROFILES_SQL,
                &[
                    text(ORG),
                    text(ids_json(&page[..page.len().min(LIMIT as usize)])),
                ],
            )?;
            Ok(page.len() + profiles.len())
        }),
        explain,
    }
}

const TIMELINE_COLUMNS: &str =
    "i.id, i.lead_id, i.type, i.platform, i.occurred_at, i.captured_by, i.points, i.external_id, i.metadata";

fn timeline_case(name: &str, leads: Vec<String>, type_filter: Option<&str>) -> Case {
    let (filter, extra): (String, Vec<Sql>) = match type_filter {
        Some(kind) => (
            " AND i.type IN (SELECT value FROM json_each(?3))".to_string(),
            vec![text(format!("[\"{kind}\"]"))],
        ),
        None => (String::new(), vec![]),
    };
    let limit_param = 3 + extra.len();
    let sql = format!(
        "SELECT {TIMELINE_COLUMNS} FROM interactions i WHERE i.lead_id = ?1 AND i.org_id = ?2{filter} \
         ORDER BY i.occurred_at DESC, i.id DESC LIMIT ?{limit_param}"
    );
    let lead_sql = "SELECT * FROM leads WHERE id = ?1 AND org_id = ?2";
    let args_for = move |lead: &str| {
        let mut args = vec![text(lead), text(ORG)];
        args.extend(extra.clone());
        args.push(Sql::Integer(LIMIT + 1));
        args
    };
    let first = leads.first().cloned().unwrap_or_default();
    let explain = vec![
        (lead_sql.to_string(), vec![text(&first), text(ORG)]),
        (
            PROFILES_SQL.to_string(),
            vec![text(ORG), text(format!("[\"{first}\"]"))],
        ),
        (sql.clone(), args_for(&first)),
    ];
    let api_leads = leads.clone();
    let d1_leads = leads.clone();
    let d1_sql = sql.clone();
    let d1_args = args_for.clone();
    let query = match type_filter {
        Some(kind) => format!("type={kind}&limit={LIMIT}"),
        None => format!("limit={LIMIT}"),
    };
    Case {
        name: name.to_string(),
        api: Box::new(move |i| {
            format!(
                "/v1/leads/{}/timeline?{query}",
                api_leads[i % api_leads.len()]
            )
        }),
        d1: Box::new(move |i| {
            let lead = &d1_leads[i % d1_leads.len()];
            vec![
                (lead_sql.to_string(), vec![text(lead), text(ORG)]),
                (
                    PROFILES_SQL.to_string(),
                    vec![text(ORG), text(format!("[\"{lead}\"]"))],
                ),
                (d1_sql.clone(), d1_args(lead)),
            ]
        }),
        baseline: Box::new(move |conn, i| {
            let lead = &leads[i % leads.len()];
            let found = rows(conn, lead_sql, &[text(lead), text(ORG)])?;
            let profiles = rows(
                conn,
                PROFILES_SQL,
                &[text(ORG), text(format!("[\"{lead}\"]"))],
            )?;
            let page = rows(conn, &sql, &args_for(lead))?;
            Ok(found.len() + profiles.len() + page.len())
        }),
        explain,
    }
}

fn feed_case(name: &str, platform: Option<&str>) -> Case {
    let social_types: Vec<&str> = InteractionType::ALL
        .iter()
        .filter(|t| t.is_social())
        .map(|t| t.as_str())
        .collect();
    let social_platforms: Vec<&str> = Platform::ALL
        .iter()
        .filter(|p| p.is_social())
        .map(|p| p.as_str())
        .collect();
    let columns = TIMELINE_COLUMNS;
    let mut sql = format!(
        "SELECT {columns}, l.first_name AS lead_first_name, l.last_name AS lead_last_name, \
         l.heat_score AS lead_heat_score, l.heat_level AS lead_heat_level \
         FROM interactions i JOIN leads l ON l.id = i.lead_id \
         WHERE i.org_id = ?1 AND i.type IN (SELECT value FROM json_each(?2)) \
         AND i.platform IN (SELECT value FROM json_each(?3))"
    );
    let mut args = vec![
        text(ORG),
        text(serde_json::to_string(&social_types).unwrap()),
        text(serde_json::to_string(&social_platforms).unwrap()),
    ];
    if let Some(p) = platform {
        sql.push_str(" AND i.platform IN (SELECT value FROM json_each(?4))");
        args.push(text(format!("[\"{p}\"]")));
    }
    sql.push_str(&format!(
        " ORDER BY i.occurred_at DESC, i.id DESC LIMIT ?{}",
        args.len() + 1
    ));
    args.push(Sql::Integer(LIMIT + 1));
    let path = match platform {
        Some(p) => format!("/v1/feed?platform={p}&limit={LIMIT}"),
        None => format!("/v1/feed?limit={LIMIT}"),
    };
    let explain = vec![(sql.clone(), args.clone())];
    let d1_statements = explain.clone();
    Case {
        name: name.to_string(),
        api: Box::new(move |_| path.clone()),
        d1: Box::new(move |_| d1_statements.clone()),
        baseline: Box::new(move |conn, _| Ok(rows(conn, &sql, &args)?.len())),
        explain,
    }
}

const STAGES_SQL: &str = "SELECT s.id, s.name, s.rank_key, s.is_closed, s.is_won, \
     (SELECT COUNT(*) FROM leads l WHERE l.org_id = s.org_id AND l.stage_id = s.id) AS lead_count \
     FROM pipeline_stages s WHERE s.org_id = ?1 ORDER BY s.rank_key, s.id";
const BOARD_SQL: &str = "SELECT id, stage_id, first_name, last_name, company, heat_score, heat_level, heat_trend, rank_key \
     FROM leads WHERE org_id = ?1 AND stage_id = ?2 ORDER BY rank_key, id LIMIT ?3";

fn board_case(stage_ids: Vec<String>) -> Case {
    let d1_stage_ids = stage_ids.clone();
    let explain = vec![
        (STAGES_SQL.to_string(), vec![text(ORG)]),
        (
            BOARD_SQL.to_string(),
            vec![text(ORG), text(&stage_ids[0]), Sql::Integer(LIMIT + 1)],
        ),
    ];
    Case {
        name: "board (7 stages, 50 cards each)".to_string(),
        api: Box::new(|_| format!("/v1/pipeline/board?limit={LIMIT}")),
        d1: Box::new(move |_| {
            let mut statements = vec![(STAGES_SQL.to_string(), vec![text(ORG)])];
            for id in &d1_stage_ids {
                statements.push((
                    BOARD_SQL.to_string(),
                    vec![text(ORG), text(id), Sql::Integer(LIMIT + 1)],
                ));
            }
            statements
        }),
        baseline: Box::new(move |conn, _| {
            let stages = rows(conn, STAGES_SQL, &[text(ORG)])?;
            let mut n = stages.len();
            for stage in &stages {
                let id = stage[0].clone();
                n += rows(conn, BOARD_SQL, &[text(ORG), id, Sql::Integer(LIMIT + 1)])?.len();
            }
            Ok(n)
        }),
        explain,
    }
}

/// `dashboard::figures`: eight statements (one D1 batch).
fn dashboard_statements(now: DateTime<Utc>) -> Vec<(String, Vec<Sql>)> {
    let quoted = |values: Vec<&str>| {
        values
            .iter()
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let social_types = quoted(
        InteractionType::ALL
            .iter()
            .filter(|t| t.is_social())
            .map(|t| t.as_str())
            .collect(),
    );
    let social_platforms = quoted(
        Platform::ALL
            .iter()
            .filter(|p| p.is_social())
            .map(|p| p.as_str())
            .collect(),
    );
    let days = 30;
    let start = now - chrono::Duration::days(days);
    let previous_start = start - chrono::Duration::days(days);
    let fmt = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let start_day = start.date_naive();
    let earliest = start_day - chrono::Duration::days(7);
    let (s, p, e) = (fmt(start), fmt(previous_start), fmt(now));
    let trending = |rising: bool| {
        let (filter, order) = if rising {
            ("delta > 0", "delta DESC")
        } else {
            ("delta < 0", "delta ASC")
        };
        format!(
            "WITH base AS ( \
               SELECT s.lead_id, s.score FROM heat_snapshots s \
               WHERE s.org_id = ?1 AND s.day >= ?2 AND s.day <= ?3 \
               AND s.day = (SELECT MAX(s2.day) FROM heat_snapshots s2 WHERE s2.lead_id = s.lead_id AND s2.day <= ?3) \
             ), pts AS ( \
               SELECT lead_id, SUM(points) AS points FROM interactions \
               WHERE org_id = ?1 AND occurred_at >= ?4 AND occurred_at <= ?5 GROUP BY lead_id \
             ), candidates AS (SELECT lead_id FROM base UNION SELECT lead_id FROM pts), \
             deltas AS ( \
               SELECT l.id, l.first_name, l.last_name, l.company, l.heat_score, l.heat_level, l.heat_trend, \
                 IIF(base.lead_id IS NOT NULL, l.heat_score - base.score, COALESCE(pts.points, 0)) AS delta, \
                 IIF(base.lead_id IS NOT NULL, 'snapshots', 'touchpoints') AS basis \
               FROM candidates c JOIN leads l ON l.id = c.lead_id AND l.org_id = ?1 \
               LEFT JOIN base ON base.lead_id = c.lead_id LEFT JOIN pts ON pts.lead_id = c.lead_id \
             ) \
             SELECT * FROM deltas WHERE {filter} ORDER BY {order}, id LIMIT ?6"
        )
    };
    let trending_args = vec![
        text(ORG),
        text(earliest.to_string()),
        text(start_day.to_string()),
        text(&s),
        text(&e),
        Sql::Integer(5),
    ];
    vec![
        ("SELECT heat_level AS key, COUNT(*) AS n FROM leads WHERE org_id = ?1 GROUP BY heat_level".to_string(), vec![text(ORG)]),
        ("SELECT source AS key, COUNT(*) AS n FROM leads WHERE org_id = ?1 GROUP BY source".to_string(), vec![text(ORG)]),
        (
            "SELECT s.id AS stage_id, s.name AS name, \
             (SELECT COUNT(*) FROM leads l WHERE l.org_id = s.org_id AND l.stage_id = s.id) AS n \
             FROM pipeline_stages s WHERE s.org_id = ?1 ORDER BY s.rank_key, s.id"
                .to_string(),
            vec![text(ORG)],
        ),
        ("SELECT NULL AS key, COUNT(*) AS n FROM leads WHERE org_id = ?1 AND stage_id IS NULL".to_string(), vec![text(ORG)]),
        (
            format!(
                "SELECT platform, type, COUNT(*) AS n FROM interactions \
                 WHERE org_id = ?1 AND occurred_at >= ?2 AND occurred_at <= ?3 \
                 AND type IN ({social_types}) AND platform IN ({social_platforms}) \
                 GROUP BY platform, type ORDER BY platform, type"
            ),
            vec![text(ORG), text(&s), text(&e)],
        ),
        (
            "SELECT \
             (SELECT COUNT(*) FROM leads WHERE org_id = ?1) AS leads_now, \
             (SELECT COUNT(*) FROM leads WHERE org_id = ?1 AND created_at < ?3) AS leads_prev, \
             (SELECT COUNT(*) FROM leads WHERE org_id = ?1 AND created_at >= ?3 AND created_at <= ?4) AS new_now, \
             (SELECT COUNT(*) FROM leads WHERE org_id = ?1 AND created_at >= ?2 AND created_at < ?3) AS new_prev, \
             (SELECT COUNT(*) FROM interactions WHERE org_id = ?1 AND occurred_at >= ?3 AND occurred_at <= ?4) AS touchpoints_now, \
             (SELECT COUNT(*) FROM interactions WHERE org_id = ?1 AND occurred_at >= ?2 AND occurred_at < ?3) AS touchpoints_prev, \
             (SELECT COUNT(*) FROM leads WHERE org_id = ?1 AND heat_level = 'HOT') AS hot_now, \
             (SELECT COUNT(*) FROM heat_level_changes c WHERE c.org_id = ?1 AND c.changed_at < ?3 AND c.new_level = 'HOT' \
                AND NOT EXISTS (SELECT 1 FROM heat_level_changes c2 WHERE c2.lead_id = c.lead_id AND c2.changed_at < ?3 \
                    AND (c2.changed_at > c.changed_at OR (c2.changed_at = c.changed_at AND c2.id > c.id)))) AS hot_prev"
                .to_string(),
            vec![text(ORG), text(&p), text(&s), text(&e)],
        ),
        (trending(true), trending_args.clone()),
        (trending(false), trending_args),
    ]
}

fn dashboard_case() -> Case {
    Case {
        name: "dashboard (window_days=30)".to_string(),
        api: Box::new(|_| "/v1/dashboard?window_days=30".to_string()),
        d1: Box::new(|_| dashboard_statements(crate::util::now())),
        baseline: Box::new(|conn, _| {
            let mut n = 0;
            for (sql, args) in dashboard_statements(crate::util::now()) {
                n += rows(conn, &sql, &args)?.len();
            }
            Ok(n)
        }),
        explain: dashboard_statements(crate::util::now()),
    }
}

struct Work {
    rows: usize,
    vm_steps: i64,
    fullscan_steps: i64,
}

/// Runs a statement once and reads SQLite's counters: virtual machine steps (roughly the rows and
/// index entries visited) and full-scan steps.
fn work_of(conn: &Connection, sql: &str, args: &[Sql]) -> Option<Work> {
    let mut statement = conn.prepare(sql).ok()?;
    let mut rows = 0;
    {
        let mut cursor = statement
            .query(rusqlite::params_from_iter(args.iter()))
            .ok()?;
        while let Ok(Some(_)) = cursor.next() {
            rows += 1;
        }
    }
    Some(Work {
        rows,
        vm_steps: statement.get_status(rusqlite::StatementStatus::VmStep) as i64,
        fullscan_steps: statement.get_status(rusqlite::StatementStatus::FullscanStep) as i64,
    })
}

/// The plan of a statement, and the real tables it scans whole (SCAN of a table, with or without
/// an index: either reads every row of every org).
fn explain(conn: &Connection, sql: &str, args: &[Sql]) -> (Vec<String>, Vec<String>) {
    let details: Vec<String> = match conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")) {
        Ok(mut st) => st
            .query_map(rusqlite::params_from_iter(args.iter()), |row| {
                row.get::<_, String>(3)
            })
            .map(|it| it.filter_map(Result::ok).collect())
            .unwrap_or_default(),
        Err(e) => vec![format!("EXPLAIN failed: {e}")],
    };
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%'")
        .and_then(|mut st| st.query_map([], |r| r.get::<_, String>(0)).map(|it| it.filter_map(Result::ok).collect()))
        .unwrap_or_default();
    // Aliases: `FROM leads l`, `JOIN leads AS l`.
    let tokens: Vec<String> = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    let keywords = [
        "WHERE", "JOIN", "ON", "LEFT", "INNER", "CROSS", "GROUP", "ORDER", "LIMIT", "UNION",
        "USING", "AND",
    ];
    let mut aliases: Vec<(String, String)> = Vec::new();
    for i in 0..tokens.len() {
        let t = tokens[i].to_ascii_uppercase();
        if (t == "FROM" || t == "JOIN") && i + 1 < tokens.len() && tables.contains(&tokens[i + 1]) {
            let table = tokens[i + 1].clone();
            aliases.push((table.clone(), table.clone()));
            let mut j = i + 2;
            if j < tokens.len() && tokens[j].eq_ignore_ascii_case("AS") {
                j += 1;
            }
            if j < tokens.len() && !keywords.contains(&tokens[j].to_ascii_uppercase().as_str()) {
                aliases.push((tokens[j].clone(), table));
            }
        }
    }
    let scans = details
        .iter()
        .filter_map(|d| {
            let rest = d.strip_prefix("SCAN ")?;
            let name = rest.split_whitespace().next()?;
            let table = if tables.iter().any(|t| t == name) {
                Some(name.to_string())
            } else {
                aliases
                    .iter()
                    .find(|(a, _)| a == name)
                    .map(|(_, t)| t.clone())
            };
            table.map(|t| format!("{t}: {d}"))
        })
        .collect();
    (details, scans)
}

pub fn run(settings: &Settings, seeded: &mut Option<Seeded>) -> PartResult {
    if seeded.is_none() {
        *seeded = Some(seed::seed(settings).map_err(|e| (e, None))?);
    }
    let data = seeded.clone().expect("seeded");
    let size = data.size_label();
    let mut notes = vec![format!(
        "Seeded straight into the org's shard file (SHARD_{}) with rusqlite in {:.0} s (runtime stopped; the product placed the \
         org and wrote its defaults first): one org with {} leads, {} touchpoints, tags, social profiles, level changes and one \
         daily snapshot per lead. The raw-SQL side reads the same shard file.",
        data.shard,
        data.seconds,
        data.leads,
        data.touchpoints
    )];
    let conn =
        Connection::open_with_flags(&data.db_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| (e.to_string(), None))?;
    let log = settings.work_dir.join("queries-runtime.log");
    println!("[bench] queries: starting the runtime on the seeded database");
    let runtime = Runtime::start(&settings.root, Flavor::Leadheat, &data.persist, false, &log)
        .map_err(|e| (e, None))?;
    let d1_runtime = start_d1_baseline(settings, &data, &mut notes);
    let agent = util::agent();
    let token = leadheat_e2e::token(ORG, "member");
    let get = |path: &str| -> Res<util::Reply> {
        util::send(
            agent
                .get(&runtime.url(path))
                .set("Authorization", &format!("Bearer {token}")),
            None,
        )
    };

    let mut cases = vec![
        list_case(&conn, "list: default (hottest first)", "limit=50", "", vec![], "l.heat_score DESC, l.id DESC"),
        list_case(
            &conn,
            "list: heat_level=HOT",
            "heat_level=HOT&limit=50",
            " AND l.heat_level IN (SELECT value FROM json_each(?2))",
            vec![text("[\"HOT\"]")],
            "l.heat_score DESC, l.id DESC",
        ),
        list_case(
            &conn,
            "list: source=facebook, newest",
            "source=facebook&sort=-created_at&limit=50",
            " AND l.source IN (SELECT value FROM json_each(?2))",
            vec![text("[\"facebook\"]")],
            "l.created_at DESC, l.id DESC",
        ),
        list_case(
            &conn,
            "list: stage, last interaction",
            &format!("stage_id={}&sort=-last_interaction_at&limit=50", data.stage_ids[2]),
            " AND l.stage_id = ?2",
            vec![text(&data.stage_ids[2])],
            "COALESCE(l.last_interaction_at, '') DESC, l.id DESC",
        ),
        list_case(
            &conn,
            "list: owner, by name",
            &format!("owner_id={}&sort=name&limit=50", data.owner),
            " AND l.owner_id = ?2",
            vec![text(&data.owner)],
            "COALESCE(l.last_name, '') COLLATE NOCASE ASC, COALESCE(l.first_name, '') COLLATE NOCASE ASC, l.id ASC",
        ),
        list_case(
            &conn,
            "list: tag=vip",
            &format!("tag={}&limit=50", data.tag),
            " AND EXISTS (SELECT 1 FROM lead_tags t WHERE t.org_id = l.org_id AND t.lead_id = l.id \
             AND t.tag IN (SELECT value FROM json_each(?2)))",
            vec![text(format!("[\"{}\"]", data.tag))],
            "l.heat_score DESC, l.id DESC",
        ),
        list_case(
            &conn,
            "list: score 6–15",
            "min_score=6&max_score=15&limit=50",
            " AND l.heat_score >= ?2 AND l.heat_score <= ?3",
            vec![Sql::Real(6.0), Sql::Real(15.0)],
            "l.heat_score DESC, l.id DESC",
        ),
        list_case(
            &conn,
            "list: q (free text)",
            &format!("q={}&limit=50", data.search),
            " AND l.rowid IN (SELECT rowid FROM leads_fts WHERE leads_fts MATCH ?2)",
            vec![text(format!("\"{}\"*", data.search))],
            "l.heat_score DESC, l.id DESC",
        ),
    ];
    // Page 2 of the last-interaction sort: the cursor comes from the API's page 1.
    match get("/v1/leads?sort=-last_interaction_at&limit=50") {
        Ok(reply) if reply.status == 200 => {
            let page: Value = serde_json::from_str(&reply.body).unwrap_or_default();
            let last = page["items"]
                .as_array()
                .and_then(|items| items.last())
                .cloned()
                .unwrap_or_default();
            if let (Some(cursor), Some(id)) = (page["next_cursor"].as_str(), last["id"].as_str()) {
                let at = last["last_interaction_at"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                cases.push(list_case(
                    &conn,
                    "list: page 2 by cursor",
                    &format!(
                        "sort=-last_interaction_at&limit=50&cursor={}",
                        leadheat_e2e::urlencode(cursor)
                    ),
                    " AND (COALESCE(l.last_interaction_at, ''), l.id) < (?2, ?3)",
                    vec![text(at), text(id)],
                    "COALESCE(l.last_interaction_at, '') DESC, l.id DESC",
                ));
            }
        }
        Ok(reply) => notes.push(format!(
            "list page 2 not measured: page 1 answered {}",
            reply.status
        )),
        Err(e) => notes.push(format!("list page 2 not measured: {e}")),
    }
    let whales: Vec<String> = data.timeline_leads.iter().take(10).cloned().collect();
    let ordinary: Vec<String> = data.timeline_leads.iter().skip(10).cloned().collect();
    if !whales.is_empty() {
        cases.push(timeline_case(
            "timeline: long (300–600 touchpoints)",
            whales.clone(),
            None,
        ));
        cases.push(timeline_case(
            "timeline: long, type=social_like",
            whales,
            Some("social_like"),
        ));
    }
    if !ordinary.is_empty() {
        cases.push(timeline_case("timeline: typical lead", ordinary, None));
    }
    cases.push(feed_case("feed: all social", None));
    cases.push(feed_case("feed: platform=facebook", Some("facebook")));
    cases.push(board_case(data.stage_ids.clone()));
    cases.push(dashboard_case());

    let mut figures = Vec::new();
    let mut details = Vec::new();
    let mut scanning = 0usize;
    // A statement that steps through half as many rows as the org has leads reads a large part of
    // the org, whatever index it searches (the plan check alone cannot see that).
    let heavy_steps = (data.leads as i64 / 2).max(2000);
    let mut heavy_routes: Vec<String> = Vec::new();
    let mut measured = 0usize;
    let budget = Duration::from_secs_f64(
        std::env::var("BENCH_QUERY_CASE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(12.0),
    );
    // The runtime's own floor: a route with no authentication and no SQL.
    let mut floor = Vec::new();
    for _ in 0..settings.query_samples.max(10) {
        if let Ok(reply) = util::send(agent.get(&runtime.url("/v1/health")), None) {
            floor.push(ms(reply.elapsed));
        }
    }
    let (f50, f95) = (percentile(&floor, 50.0), percentile(&floor, 95.0));
    println!(
        "[bench] queries {:42} API p50 {f50:8.2} ms p95 {f95:8.2} ms",
        "floor: GET /v1/health"
    );
    figures.push(
        Figure::new(
            "queries",
            "runtime floor: GET /v1/health p50 / p95 (no auth, no SQL)",
            "–",
            "ms",
        )
        .value(f50)
        .note(format!(
            "p95 {f95:.2} ms: part of every API figure below, absent from raw SQL"
        )),
    );
    for case in &cases {
        // The plan check (printed, never failing).
        let mut plans = Vec::new();
        let mut scans = Vec::new();
        let mut heavy = Vec::new();
        for (sql, args) in &case.explain {
            let (plan, s) = explain(&conn, sql, args);
            scans.extend(s);
            let work = work_of(&conn, sql, args);
            if let Some(w) = &work {
                if w.vm_steps >= heavy_steps {
                    heavy.push(format!(
                        "{} VM steps for {} rows ({})",
                        w.vm_steps,
                        w.rows,
                        sql.split_whitespace().take(6).collect::<Vec<_>>().join(" ")
                    ));
                }
            }
            plans.push(json!({"sql": sql, "plan": plan, "vm_steps": work.as_ref().map(|w| w.vm_steps), "rows": work.as_ref().map(|w| w.rows), "fullscan_steps": work.as_ref().map(|w| w.fullscan_steps)}));
        }
        if !scans.is_empty() {
            scanning += 1;
        }
        if !heavy.is_empty() {
            heavy_routes.push(format!("{}: {}", case.name, heavy.join("; ")));
        }
        // Warm-up, and a check that the route answers.
        let warm = get(&(case.api)(0));
        let status = warm.as_ref().map(|r| r.status).unwrap_or(0);
        let _ = (case.baseline)(&conn, 0);
        if status != 200 {
            let why = match &warm {
                Ok(r) => format!(
                    "API answered {}: {}",
                    r.status,
                    r.body.chars().take(160).collect::<String>()
                ),
                Err(e) => e.clone(),
            };
            println!("[bench] queries {}: not measured ({why})", case.name);
            figures.push(
                Figure::new("queries", format!("{} p95", case.name), size.clone(), "ms")
                    .note(format!("not measured: {why}"))
                    .target("≤ 2× raw SQL", None),
            );
            details.push(
                json!({"route": case.name, "status": status, "plans": plans, "full_scans": scans}),
            );
            continue;
        }
        let _ = get(&(case.api)(1));
        let d1_bodies: Vec<Vec<u8>> = (0..settings.query_samples)
            .map(|i| d1_body(&(case.d1)(i)))
            .collect();
        let d1_read = |i: usize| -> Option<f64> {
            let runtime = d1_runtime.as_ref()?;
            let reply = util::send(
                agent
                    .post(&runtime.url("/d1/read"))
                    .set("Content-Type", "application/json"),
                Some(&d1_bodies[i]),
            )
            .ok()?;
            (reply.status == 200).then(|| ms(reply.elapsed))
        };
        let _ = d1_read(0);
        let mut api = Vec::new();
        let mut raw = Vec::new();
        let mut d1 = Vec::new();
        let mut errors = 0;
        let t0 = Instant::now();
        for i in 0..settings.query_samples {
            match get(&(case.api)(i)) {
                Ok(r) if r.status == 200 => api.push(ms(r.elapsed)),
                _ => errors += 1,
            }
            let t = Instant::now();
            if (case.baseline)(&conn, i).is_ok() {
                raw.push(ms(t.elapsed()));
            }
            d1.extend(d1_read(i));
            if t0.elapsed() > budget && api.len() >= 5 {
                break;
            }
        }
        measured += 1;
        let (a50, a95) = (percentile(&api, 50.0), percentile(&api, 95.0));
        let (b50, b95) = (percentile(&raw, 50.0), percentile(&raw, 95.0));
        let (d50, d95) = (percentile(&d1, 50.0), percentile(&d1, 95.0));
        println!(
            "[bench] queries {:42} API p50 {a50:8.2} ms p95 {a95:8.2} ms | bare D1 p50 {d50:8.2} ms p95 {d95:8.2} ms | raw SQL p50 {b50:8.2} ms p95 {b95:8.2} ms | {} samples{}",
            case.name,
            api.len(),
            if scans.is_empty() { String::new() } else { format!(" | FULL SCAN: {}", scans.join("; ")) }
        );
        let mut plan_note = if scans.is_empty() {
            "plan: no full scan".to_string()
        } else {
            format!("plan: FULL SCAN {}", scans.join("; "))
        };
        if !heavy.is_empty() {
            plan_note.push_str("; reads a large part of the org (see notes)");
        }
        figures.push(
            Figure::new("queries", format!("{} p50", case.name), size.clone(), "ms")
                .value(a50)
                .baseline("raw SQL", b50),
        );
        if !d1.is_empty() {
            figures.push(
                Figure::new(
                    "queries",
                    format!("{} p95 against bare D1", case.name),
                    size.clone(),
                    "ms",
                )
                .value(a95)
                .baseline("bare D1 worker, one batch", d95)
                .note(format!(
                    "bare D1 p50 {d50:.2} ms, {} samples; the same statements through the D1 binding as one batch",
                    d1.len()
                )),
            );
        }
        figures.push(
            Figure::new("queries", format!("{} p95", case.name), size.clone(), "ms")
                .value(a95)
                .baseline("raw SQL", b95)
                .target(
                    "≤ 2× raw SQL",
                    (a95.is_finite() && b95.is_finite()).then_some(a95 <= 2.0 * b95),
                )
                .note(format!(
                    "{} samples{}; {plan_note}",
                    api.len(),
                    if errors > 0 {
                        format!(", {errors} errors")
                    } else {
                        String::new()
                    }
                )),
        );
        details.push(json!({
            "route": case.name, "api_path": (case.api)(0), "samples": api.len(), "errors": errors,
            "api_ms": {"p50": a50, "p95": a95}, "raw_sql_ms": {"p50": b50, "p95": b95},
            "bare_d1_ms": {"p50": d50, "p95": d95, "samples": d1.len(), "statements": (case.d1)(0).len()},
            "plans": plans, "full_scans": scans,
        }));
    }
    figures.push(
        Figure::new(
            "queries",
            "routes whose SQL scans a whole table (EXPLAIN QUERY PLAN)",
            format!("{} routes", cases.len()),
            "",
        )
        .value(scanning as f64)
        .target("0 (checked, not enforced)", Some(scanning == 0)),
    );
    figures.push(
        Figure::new(
            "queries",
            "routes with a statement stepping through ≥ half the org's rows (SQLite VM steps)",
            format!("{} routes", cases.len()),
            "",
        )
        .value(heavy_routes.len() as f64)
        .note("informative: the plan check cannot see an index search that reads the whole org"),
    );
    for route in &heavy_routes {
        notes.push(format!("Reads a large part of the org: {route}."));
    }
    notes.push(format!(
        "{measured} of {} routes measured. API figures are client round trips (HTTP front, auth, org check, D1 queries, JSON); \
         raw SQL runs the route's statements back to back on one rusqlite connection to the same file (prepared per call, every \
         column of every row read). The two alternate request by request.",
        cases.len()
    ));
    notes.push(
        "The baseline SQL is a copy of the store modules' SQL kept in bench/loadgen/src/queries.rs (not read from the store code at \
         run time); the EXPLAIN QUERY PLAN check runs on those copies. rusqlite's bundled SQLite is not workerd's build: the same \
         SQL, close but not identical engines."
            .to_string(),
    );
    drop(runtime);
    drop(d1_runtime);
    Ok(PartOutput {
        figures,
        details: json!({"seed": data, "routes": details}),
        notes,
        ..PartOutput::default()
    })
}

/// The JSON body of `POST /d1/read` for `statements`.
fn d1_body(statements: &Statements) -> Vec<u8> {
    let json_arg = |value: &Sql| match value {
        Sql::Null => Value::Null,
        Sql::Integer(n) => json!(n),
        Sql::Real(x) => json!(x),
        Sql::Text(s) => json!(s),
        Sql::Blob(_) => Value::Null,
    };
    let statements: Vec<Value> = statements
        .iter()
        .map(|(sql, args)| json!({"sql": sql, "args": args.iter().map(json_arg).collect::<Vec<_>>()}))
        .collect();
    serde_json::to_vec(&json!({ "statements": statements })).unwrap_or_default()
}

/// The bare D1 worker on a copy of the seeded files (its own runtime may not share the files the
/// API's runtime has open). `None`, with a note, when it cannot run: the other figures stand.
fn start_d1_baseline(
    settings: &Settings,
    data: &Seeded,
    notes: &mut Vec<String>,
) -> Option<Runtime> {
    if data.shard != 0 {
        notes.push(format!(
            "bare D1 baseline not measured: the seeded org is on SHARD_{}, and the baseline worker binds SHARD_0's database",
            data.shard
        ));
        return None;
    }
    let started = util::fresh_dir(&settings.work_dir.join("queries-d1-baseline"))
        .and_then(|copy| util::copy_dir(&data.persist, &copy).map(|()| copy))
        .and_then(|copy| {
            println!("[bench] queries: starting the bare D1 baseline runtime on a copy of the seeded files");
            let log = settings.work_dir.join("queries-d1-baseline.log");
            Runtime::start(&settings.root, Flavor::Baseline, &copy, false, &log)
        });
    match started {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            notes.push(format!("bare D1 baseline not measured: {e}"));
            None
        }
    }
}
