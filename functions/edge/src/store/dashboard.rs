//! The dashboard's aggregate reads: every figure is a COUNT / SUM computed by D1, all of them in
//! one batch (one round trip); no lead is loaded to count it.

use chrono::NaiveDate;
use leadheat_domain::types::{HeatLevel, InteractionType, Platform};
use serde::Deserialize;

use crate::args;
use crate::db;
use crate::db::StoreError;
use crate::tenant::Tenant;

/// The instants and days the queries need, all as stored strings.
pub struct Bounds<'a> {
    pub previous_start: &'a str,
    pub start: &'a str,
    pub end: &'a str,
    /// The snapshot day at the window start, and the oldest day accepted as its baseline.
    pub start_day: &'a str,
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

/// Every figure of the dashboard, in one D1 batch.
pub async fn figures(tenant: &Tenant, b: &Bounds<'_>) -> Result<Figures, StoreError> {
    let (db, org_id) = (tenant.db(), tenant.org_id());
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

    let by_level =
        "SELECT heat_level AS key, COUNT(*) AS n FROM leads WHERE org_id = ?1 GROUP BY heat_level";
    let by_source =
        "SELECT source AS key, COUNT(*) AS n FROM leads WHERE org_id = ?1 GROUP BY source";
    let by_stage = "SELECT s.id AS stage_id, s.name AS name, \
         (SELECT COUNT(*) FROM leads l WHERE l.org_id = s.org_id AND l.stage_id = s.id) AS n \
         FROM pipeline_stages s WHERE s.org_id = ?1 ORDER BY s.rank_key, s.id";
    let unstaged =
        "SELECT NULL AS key, COUNT(*) AS n FROM leads WHERE org_id = ?1 AND stage_id IS NULL";
    let engagement = format!(
        "SELECT platform, type, COUNT(*) AS n FROM interactions \
         WHERE org_id = ?1 AND occurred_at >= ?2 AND occurred_at <= ?3 \
         AND type IN ({social_types}) AND platform IN ({social_platforms}) \
         GROUP BY platform, type ORDER BY platform, type"
    );
    // The same touchpoints as `engagement`, per UTC day: stored instants are all
    // `YYYY-MM-DDTHH:MM:SS.sssZ` (a CHECK holds them to it), so their first ten characters are
    // the UTC day.
    let engagement_by_day = format!(
        "SELECT substr(occurred_at, 1, 10) AS day, platform, COUNT(*) AS n FROM interactions \
         WHERE org_id = ?1 AND occurred_at >= ?2 AND occurred_at <= ?3 \
         AND type IN ({social_types}) AND platform IN ({social_platforms}) \
         GROUP BY day, platform ORDER BY day, platform"
    );
    // ?1 org, ?2 previous window start, ?3 window start, ?4 window end.
    let totals = "SELECT \
         (SELECT COUNT(*) FROM leads WHERE org_id = ?1) AS leads_now, \
         (SELECT COUNT(*) FROM leads WHERE org_id = ?1 AND created_at < ?3) AS leads_prev, \
         (SELECT COUNT(*) FROM leads WHERE org_id = ?1 AND created_at >= ?3 AND created_at <= ?4) AS new_now, \
         (SELECT COUNT(*) FROM leads WHERE org_id = ?1 AND created_at >= ?2 AND created_at < ?3) AS new_prev, \
         (SELECT COUNT(*) FROM interactions WHERE org_id = ?1 AND occurred_at >= ?3 AND occurred_at <= ?4) AS touchpoints_now, \
         (SELECT COUNT(*) FROM interactions WHERE org_id = ?1 AND occurred_at >= ?2 AND occurred_at < ?3) AS touchpoints_prev, \
         (SELECT COUNT(*) FROM leads WHERE org_id = ?1 AND heat_level = 'HOT') AS hot_now, \
         (SELECT COUNT(*) FROM heat_level_changes c WHERE c.org_id = ?1 AND c.changed_at < ?3 AND c.new_level = 'HOT' \
            AND NOT EXISTS (SELECT 1 FROM heat_level_changes c2 WHERE c2.lead_id = c.lead_id AND c2.changed_at < ?3 \
                AND (c2.changed_at > c.changed_at OR (c2.changed_at = c.changed_at AND c2.id > c.id)))) AS hot_prev";
    // ?1 org, ?2 earliest baseline day, ?3 start day, ?4 window start, ?5 window end, ?6 limit.
    let trending = |direction: &str| {
        let (filter, order) = if direction == "rising" {
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
    let rising = trending("rising");
    let falling = trending("falling");

    let window_args = args![org_id, b.previous_start, b.start, b.end];
    let trending_args = args![
        org_id,
        b.earliest_baseline_day,
        b.start_day,
        b.start,
        b.end,
        b.trending_limit
    ];
    let statements = vec![
        db::statement(db, by_level, &args![org_id])?,
        db::statement(db, by_source, &args![org_id])?,
        db::statement(db, by_stage, &args![org_id])?,
        db::statement(db, unstaged, &args![org_id])?,
        db::statement(db, &engagement, &args![org_id, b.start, b.end])?,
        db::statement(db, totals, &window_args)?,
        db::statement(db, &rising, &trending_args)?,
        db::statement(db, &falling, &trending_args)?,
        db::statement(db, &engagement_by_day, &args![org_id, b.start, b.end])?,
    ];
    let results = db::batch(db, statements).await?;
    let result = |i: usize| {
        results
            .get(i)
            .ok_or_else(|| StoreError::backend("dashboard batch", format!("missing result {i}")))
    };
    let unstaged: Vec<KeyCount> = db::rows(result(3)?, unstaged)?;
    let totals: Vec<Totals> = db::rows(result(5)?, totals)?;
    Ok(Figures {
        by_level: db::rows(result(0)?, by_level)?,
        by_source: db::rows(result(1)?, by_source)?,
        by_stage: db::rows(result(2)?, by_stage)?,
        unstaged: unstaged.first().map_or(0, |row| row.n),
        engagement: db::rows(result(4)?, &engagement)?,
        totals: totals.into_iter().next().unwrap_or_default(),
        rising: db::rows(result(6)?, &rising)?,
        falling: db::rows(result(7)?, &falling)?,
        engagement_by_day: db::rows(result(8)?, &engagement_by_day)?,
    })
}
