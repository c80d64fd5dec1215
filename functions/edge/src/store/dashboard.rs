//! The dashboard's reads and its rollups (migrations/tenant 0006, docs/dashboard.md): every
//! figure is read from the per-org rollups the triggers keep exact, all of them in one batch (one
//! round trip); no lead is loaded to count it and no touchpoint is read. Also the rebuild of one
//! org's rollups from the base tables.

use chrono::NaiveDate;
use leadheat_domain::dashboard::rebuild_ranges;
use leadheat_domain::types::{HeatLevel, InteractionType, Platform};
use serde::{Deserialize, Serialize};
use worker::D1PreparedStatement;

use crate::args;
use crate::db;
use crate::db::StoreError;
use crate::tenant::Tenant;

/// The UTC days the queries need (`YYYY-MM-DD`): the window is whole days.
pub struct Bounds<'a> {
    pub previous_start_day: &'a str,
    pub start_day: &'a str,
    pub end_day: &'a str,
    /// The oldest snapshot day accepted as a lead's score at the window start.
    pub earliest_baseline_day: &'a str,
    pub trending_limit: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KeyCount {
    pub key: Option<String>,
    pub n: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StageCount {
    pub stage_id: String,
    pub name: String,
    pub n: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Engagement {
    pub platform: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub n: i64,
}

/// Social touchpoints of one platform on one UTC day of the window.
#[derive(Debug, Clone, Deserialize)]
pub struct DailyEngagement {
    pub day: NaiveDate,
    pub platform: Platform,
    pub n: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Totals {
    pub leads_now: i64,
    pub leads_prev: i64,
    pub new_now: i64,
    pub new_prev: i64,
    pub touchpoints_now: i64,
    pub touchpoints_prev: i64,
    pub hot_now: i64,
    pub hot_prev: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Trending {
    /// `rising` or `falling`.
    pub direction: String,
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    pub heat_score: f64,
    pub heat_level: HeatLevel,
    pub heat_trend: f64,
    pub delta: f64,
    pub basis: String,
}

pub struct Figures {
    pub by_level: Vec<KeyCount>,
    pub by_source: Vec<KeyCount>,
    pub by_stage: Vec<StageCount>,
    pub unstaged: i64,
    pub engagement: Vec<Engagement>,
    pub engagement_by_day: Vec<DailyEngagement>,
    pub totals: Totals,
    pub rising: Vec<Trending>,
    pub falling: Vec<Trending>,
}

fn quoted(values: impl Iterator<Item = &'static str>) -> String {
    // Only the domain's own wire strings (letters and underscores) are inlined.
    values
        .map(|v| format!("'{v}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `type IN (...) AND platform IN (...)`: the social touchpoints.
fn social_filter() -> String {
    let social_types = quoted(
        InteractionType::ALL
            .iter()
            .filter(|kind| kind.is_social())
            .map(|kind| kind.as_str()),
    );
    let social_platforms = quoted(
        Platform::ALL
            .iter()
            .filter(|platform| platform.is_social())
            .map(|platform| platform.as_str()),
    );
    format!("type IN ({social_types}) AND platform IN ({social_platforms})")
}

/// Trending, both directions in one statement: each lead's score now against its latest
/// snapshot from the earliest baseline day (?2) to the window's first day (?3), 0 for a lead
/// without one (it had no recorded heat then). The baseline is one primary-key seek per lead
/// (`heat_snapshots (lead_id, day)`); no touchpoint is read. ?1 org, ?4 limit per direction.
const TRENDING: &str = "WITH deltas AS MATERIALIZED ( \
       SELECT id, heat_score - COALESCE(base, 0) AS delta, base IS NOT NULL AS based FROM ( \
         SELECT l.id, l.heat_score, \
           (SELECT s.score FROM heat_snapshots s WHERE s.lead_id = l.id AND s.day >= ?2 AND s.day <= ?3 \
            ORDER BY s.day DESC LIMIT 1) AS base \
         FROM leads l WHERE l.org_id = ?1) \
     ), picked AS ( \
       SELECT * FROM (SELECT 'rising' AS direction, id, delta, based FROM deltas WHERE delta > 0 \
                      ORDER BY delta DESC, id LIMIT ?4) \
       UNION ALL \
       SELECT * FROM (SELECT 'falling' AS direction, id, delta, based FROM deltas WHERE delta < 0 \
                      ORDER BY delta ASC, id LIMIT ?4) \
     ) \
     SELECT p.direction, l.id, l.first_name, l.last_name, l.company, l.heat_score, l.heat_level, \
       l.heat_trend, p.delta, IIF(p.based, 'snapshots', 'no_snapshot') AS basis \
     FROM picked p JOIN leads l ON l.id = p.id \
     ORDER BY p.direction DESC, IIF(p.direction = 'rising', -p.delta, p.delta), p.id";

/// Every figure of the dashboard from the rollups, in one D1 batch.
pub async fn figures(tenant: &Tenant, b: &Bounds<'_>) -> Result<Figures, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let social = social_filter();
    let by_level = "SELECT heat_level AS key, SUM(n) AS n FROM dashboard_lead_counts \
         WHERE org_id = ?1 GROUP BY heat_level";
    let by_source = "SELECT source AS key, SUM(n) AS n FROM dashboard_lead_counts \
         WHERE org_id = ?1 GROUP BY source";
    let by_stage = "SELECT s.id AS stage_id, s.name AS name, \
         COALESCE((SELECT SUM(c.n) FROM dashboard_lead_counts c WHERE c.org_id = s.org_id AND c.stage_id = s.id), 0) AS n \
         FROM pipeline_stages s WHERE s.org_id = ?1 ORDER BY s.rank_key, s.id";
    let unstaged = "SELECT NULL AS key, COALESCE(SUM(n), 0) AS n FROM dashboard_lead_counts \
         WHERE org_id = ?1 AND stage_id = ''";
    // ?1 org, ?2 first day, ?3 last day.
    let engagement = format!(
        "SELECT platform, type, SUM(n) AS n FROM dashboard_touch_days \
         WHERE org_id = ?1 AND day >= ?2 AND day <= ?3 AND {social} \
         GROUP BY platform, type HAVING SUM(n) <> 0 ORDER BY platform, type"
    );
    let engagement_by_day = format!(
        "SELECT day, platform, SUM(n) AS n FROM dashboard_touch_days \
         WHERE org_id = ?1 AND day >= ?2 AND day <= ?3 AND {social} \
         GROUP BY day, platform HAVING SUM(n) <> 0 ORDER BY day, platform"
    );
    // ?1 org, ?2 the previous window's first day, ?3 the window's first day, ?4 its last day.
    // HOT at the window start: the level changes into HOT minus those out of it, before then.
    let totals = "SELECT \
         (SELECT COALESCE(SUM(n), 0) FROM dashboard_lead_counts WHERE org_id = ?1) AS leads_now, \
         (SELECT COALESCE(SUM(created), 0) FROM dashboard_lead_days WHERE org_id = ?1 AND day < ?3) AS leads_prev, \
         (SELECT COALESCE(SUM(created), 0) FROM dashboard_lead_days WHERE org_id = ?1 AND day >= ?3 AND day <= ?4) AS new_now, \
         (SELECT COALESCE(SUM(created), 0) FROM dashboard_lead_days WHERE org_id = ?1 AND day >= ?2 AND day < ?3) AS new_prev, \
         (SELECT COALESCE(SUM(n), 0) FROM dashboard_touch_days WHERE org_id = ?1 AND day >= ?3 AND day <= ?4) AS touchpoints_now, \
         (SELECT COALESCE(SUM(n), 0) FROM dashboard_touch_days WHERE org_id = ?1 AND day >= ?2 AND day < ?3) AS touchpoints_prev, \
         (SELECT COALESCE(SUM(n), 0) FROM dashboard_lead_counts WHERE org_id = ?1 AND heat_level = 'HOT') AS hot_now, \
         (SELECT COALESCE(SUM(hot_net), 0) FROM dashboard_lead_days WHERE org_id = ?1 AND day < ?3) AS hot_prev";

    let window_args = args![org_id, b.start_day, b.end_day];
    let statements = vec![
        db::statement(db, by_level, &args![org_id])?,
        db::statement(db, by_source, &args![org_id])?,
        db::statement(db, by_stage, &args![org_id])?,
        db::statement(db, unstaged, &args![org_id])?,
        db::statement(db, &engagement, &window_args)?,
        db::statement(
            db,
            totals,
            &args![org_id, b.previous_start_day, b.start_day, b.end_day],
        )?,
        db::statement(
            db,
            TRENDING,
            &args![
                org_id,
                b.earliest_baseline_day,
                b.start_day,
                b.trending_limit
            ],
        )?,
        db::statement(db, &engagement_by_day, &window_args)?,
    ];
    let results = tenant.batch(statements).await?;
    let result = |i: usize| {
        results
            .get(i)
            .ok_or_else(|| StoreError::backend("dashboard batch", format!("missing result {i}")))
    };
    let unstaged: Vec<KeyCount> = db::rows(result(3)?, unstaged)?;
    let totals: Vec<Totals> = db::rows(result(5)?, totals)?;
    let (rising, falling): (Vec<Trending>, Vec<Trending>) = db::rows(result(6)?, TRENDING)?
        .into_iter()
        .partition(|row: &Trending| row.direction == "rising");
    Ok(Figures {
        by_level: db::rows(result(0)?, by_level)?,
        by_source: db::rows(result(1)?, by_source)?,
        by_stage: db::rows(result(2)?, by_stage)?,
        unstaged: unstaged.first().map_or(0, |row| row.n),
        engagement: db::rows(result(4)?, &engagement)?,
        totals: totals.into_iter().next().unwrap_or_default(),
        rising,
        falling,
        engagement_by_day: db::rows(result(7)?, &engagement_by_day)?,
    })
}

// ------------------------------------------------------------------------------------------------
// Rebuilding one org's rollups

/// What a rebuild recomputed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rebuilt {
    /// Rows of `dashboard_lead_counts` written.
    pub lead_counts: u64,
    /// The first and last day of the org's daily rollups and base rows, if any.
    pub first_day: Option<String>,
    pub last_day: Option<String>,
    /// The day ranges recomputed, one transaction each.
    pub ranges: usize,
}

/// The first and last stored day or instant of each kind of row the daily rollups count or
/// hold, each a MIN or MAX at one end of an index.
#[derive(Debug, Deserialize)]
struct DaySpan {
    touch_first: Option<String>,
    touch_last: Option<String>,
    lead_first: Option<String>,
    lead_last: Option<String>,
    change_first: Option<String>,
    change_last: Option<String>,
    rollup_touch_first: Option<String>,
    rollup_touch_last: Option<String>,
    rollup_lead_first: Option<String>,
    rollup_lead_last: Option<String>,
}

impl DaySpan {
    /// The first and last UTC day among them (a day is the first ten characters of either).
    fn days(&self) -> Option<(NaiveDate, NaiveDate)> {
        let days: Vec<NaiveDate> = [
            &self.touch_first,
            &self.touch_last,
            &self.lead_first,
            &self.lead_last,
            &self.change_first,
            &self.change_last,
            &self.rollup_touch_first,
            &self.rollup_touch_last,
            &self.rollup_lead_first,
            &self.rollup_lead_last,
        ]
        .into_iter()
        .flatten()
        .filter_map(|text| text.get(..10).and_then(|day| day.parse().ok()))
        .collect();
        Some((*days.iter().min()?, *days.iter().max()?))
    }
}

/// The days the org's daily rollups may need: those of its rows (touchpoints, lead creations,
/// level changes) and those of its rollup rows (a stale day with no row left).
const DAY_SPAN: &str = "SELECT \
       (SELECT MIN(occurred_at) FROM interactions WHERE org_id = ?1) AS touch_first, \
       (SELECT MAX(occurred_at) FROM interactions WHERE org_id = ?1) AS touch_last, \
       (SELECT MIN(created_at) FROM leads WHERE org_id = ?1) AS lead_first, \
       (SELECT MAX(created_at) FROM leads WHERE org_id = ?1) AS lead_last, \
       (SELECT MIN(changed_at) FROM heat_level_changes WHERE org_id = ?1) AS change_first, \
       (SELECT MAX(changed_at) FROM heat_level_changes WHERE org_id = ?1) AS change_last, \
       (SELECT MIN(day) FROM dashboard_touch_days WHERE org_id = ?1) AS rollup_touch_first, \
       (SELECT MAX(day) FROM dashboard_touch_days WHERE org_id = ?1) AS rollup_touch_last, \
       (SELECT MIN(day) FROM dashboard_lead_days WHERE org_id = ?1) AS rollup_lead_first, \
       (SELECT MAX(day) FROM dashboard_lead_days WHERE org_id = ?1) AS rollup_lead_last";

/// Recomputes the org's rollups from its base rows: the lead counts in one transaction, then the
/// daily rollups range of days by range, each range in one transaction that replaces its days.
/// Triggers keep every range exact while the others are rebuilt, so concurrent writes are never
/// lost or counted twice.
pub async fn rebuild(tenant: &Tenant) -> Result<Rebuilt, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let counts = tenant
        .batch(vec![
            db::statement(
                db,
                "DELETE FROM dashboard_lead_counts WHERE org_id = ?1",
                &args![org_id],
            )?,
            db::statement(
                db,
                "INSERT INTO dashboard_lead_counts (org_id, heat_level, source, stage_id, n) \
                 SELECT org_id, heat_level, source, COALESCE(stage_id, ''), COUNT(*) FROM leads \
                 WHERE org_id = ?1 GROUP BY heat_level, source, COALESCE(stage_id, '')",
                &args![org_id],
            )?,
        ])
        .await?;
    let mut rebuilt = Rebuilt {
        lead_counts: counts.get(1).map_or(0, db::changes),
        ..Rebuilt::default()
    };
    let span: Option<DaySpan> = db::first(db, DAY_SPAN, &args![org_id]).await?;
    let Some((first, last)) = span.as_ref().and_then(DaySpan::days) else {
        return Ok(rebuilt);
    };
    let ranges = rebuild_ranges(first, last);
    for (from, until) in &ranges {
        let (from, until) = (from.to_string(), until.to_string());
        tenant
            .batch(range_statements(tenant, &from, &until)?)
            .await?;
    }
    rebuilt.first_day = Some(first.to_string());
    rebuilt.last_day = Some(last.to_string());
    rebuilt.ranges = ranges.len();
    Ok(rebuilt)
}

/// Replaces the org's daily rollups of the days `[from, until)`. A stored instant starts with its
/// day, so `instant >= from AND instant < until` picks exactly those days.
fn range_statements(
    tenant: &Tenant,
    from: &str,
    until: &str,
) -> Result<Vec<D1PreparedStatement>, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
    let args = args![org_id, from, until];
    [
        "DELETE FROM dashboard_touch_days WHERE org_id = ?1 AND day >= ?2 AND day < ?3",
        "INSERT INTO dashboard_touch_days (org_id, day, platform, type, n) \
         SELECT org_id, substr(occurred_at, 1, 10), platform, type, COUNT(*) FROM interactions \
         WHERE org_id = ?1 AND occurred_at >= ?2 AND occurred_at < ?3 \
         GROUP BY substr(occurred_at, 1, 10), platform, type",
        "DELETE FROM dashboard_lead_days WHERE org_id = ?1 AND day >= ?2 AND day < ?3",
        "INSERT INTO dashboard_lead_days (org_id, day, created, hot_net) \
         SELECT ?1, day, SUM(created), SUM(hot_net) FROM ( \
           SELECT substr(created_at, 1, 10) AS day, 1 AS created, 0 AS hot_net FROM leads \
           WHERE org_id = ?1 AND created_at >= ?2 AND created_at < ?3 \
           UNION ALL \
           SELECT substr(changed_at, 1, 10), 0, (new_level = 'HOT') - (old_level = 'HOT') \
           FROM heat_level_changes \
           WHERE org_id = ?1 AND changed_at >= ?2 AND changed_at < ?3 \
             AND (new_level = 'HOT' OR old_level = 'HOT')) \
         GROUP BY day HAVING SUM(created) <> 0 OR SUM(hot_net) <> 0",
    ]
    .into_iter()
    .map(|sql| db::statement(db, sql, &args))
    .collect()
}
