//! `GET /v1/dashboard?window_days=30`: counts by heat level, source and stage; social engagement per
//! platform and type over the window, and per platform day by day; trending leads; totals against
//! the previous window.
//!
//! The window is whole UTC days (the last `window_days` days and today). Every figure is read from
//! the org's rollups in one D1 batch (docs/dashboard.md); with the directory lookup of the
//! authentication that is two D1 calls. Trending compares a lead's score now with its latest
//! snapshot at the window start (from up to a week before it), or with 0 for a lead without one.

use std::collections::BTreeMap;

use leadheat_domain::dashboard::{self as rules, EngagementDay, Window, TRENDING_LIMIT};
use leadheat_domain::types::{HeatLevel, InteractionType, Platform, Source};
use leadheat_edge::clock;
use leadheat_edge::http::{self, Problem};
use leadheat_edge::store::dashboard::{self as store, Bounds, KeyCount, Trending};
use serde_json::{json, Map, Value};
use worker::Response;

use crate::context::Ctx;
use crate::request::ApiRequest;

pub async fn get(req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    let days = rules::parse_window_days(req.query("window_days"))
        .map_err(|e| Problem::validation(vec![e]))?;
    let window = Window::ending_at(ctx.now, days);
    let previous_start = clock::rfc3339(window.previous_start);
    let start = clock::rfc3339(window.start);
    let end = clock::rfc3339(window.end);
    let previous_start_day = window.previous_start_day().to_string();
    let start_day = window.start_day().to_string();
    let end_day = window.end_day().to_string();
    let earliest_baseline_day = window.earliest_baseline_day().to_string();
    let figures = store::figures(
        &ctx.tenant,
        &Bounds {
            previous_start_day: &previous_start_day,
            start_day: &start_day,
            end_day: &end_day,
            earliest_baseline_day: &earliest_baseline_day,
            trending_limit: TRENDING_LIMIT,
        },
    )
    .await?;

    let t = &figures.totals;
    let body = json!({
        "window_days": days,
        "window": {"from": start, "to": end, "previous_from": previous_start},
        "totals": {
            "leads": rules::change(t.leads_now, t.leads_prev),
            "new_leads": rules::change(t.new_now, t.new_prev),
            "touchpoints": rules::change(t.touchpoints_now, t.touchpoints_prev),
            "hot_leads": rules::change(t.hot_now, t.hot_prev),
        },
        "by_heat_level": counts(HeatLevel::WIRE_NAMES, &figures.by_level),
        "by_source": counts(Source::WIRE_NAMES, &figures.by_source),
        "by_stage": figures.by_stage.iter().map(|s| json!({
            "stage_id": s.stage_id, "name": s.name, "count": s.n,
        })).collect::<Vec<_>>(),
        "unstaged": figures.unstaged,
        "social_engagement": engagement(&figures.engagement, &window, &figures.engagement_by_day),
        "trending": {
            "rising": figures.rising.iter().map(trending_json).collect::<Vec<_>>(),
            "falling": figures.falling.iter().map(trending_json).collect::<Vec<_>>(),
        },
    });
    http::json(200, &body)
}

/// Every known key with its count (0 when absent), in the vocabulary's order.
fn counts(keys: &[&str], rows: &[KeyCount]) -> Map<String, Value> {
    keys.iter()
        .map(|key| {
            let n = rows
                .iter()
                .find(|row| row.key.as_deref() == Some(*key))
                .map_or(0, |row| row.n);
            (key.to_string(), json!(n))
        })
        .collect()
}

/// `{"total", "by_platform": {platform: {"total", "by_type": {type: n}}}, "by_type": {type: n},
/// "by_day": [{"day", platform: n, "total"}]}` over the social platforms and social types (every
/// one listed, zeros included) and every UTC day of the window, oldest first.
fn engagement(
    rows: &[store::Engagement],
    window: &Window,
    daily: &[store::DailyEngagement],
) -> Value {
    let social_types: Vec<&str> = InteractionType::ALL
        .iter()
        .filter(|k| k.is_social())
        .map(|k| k.as_str())
        .collect();
    let mut by_type: BTreeMap<&str, i64> = social_types.iter().map(|k| (*k, 0)).collect();
    let mut by_platform = Map::new();
    let mut total = 0;
    for platform in Platform::ALL.iter().filter(|p| p.is_social()) {
        let mut platform_types = Map::new();
        let mut platform_total = 0;
        for kind in &social_types {
            let n: i64 = rows
                .iter()
                .filter(|r| r.platform == platform.as_str() && r.kind == *kind)
                .map(|r| r.n)
                .sum();
            platform_types.insert(kind.to_string(), json!(n));
            platform_total += n;
            *by_type.entry(kind).or_default() += n;
        }
        total += platform_total;
        by_platform.insert(
            platform.as_str().to_string(),
            json!({"total": platform_total, "by_type": platform_types}),
        );
    }
    let by_type: Map<String, Value> = social_types
        .iter()
        .map(|k| (k.to_string(), json!(by_type.get(k).copied().unwrap_or(0))))
        .collect();
    let by_day: Vec<Value> =
        rules::engagement_by_day(window, daily.iter().map(|r| (r.day, r.platform, r.n)))
            .iter()
            .map(engagement_day_json)
            .collect();
    json!({"total": total, "by_platform": by_platform, "by_type": by_type, "by_day": by_day})
}

/// `{"day": "2026-11-20", "facebook": 3, "instagram": 0, "linkedin": 1, "total": 4}`
fn engagement_day_json(entry: &EngagementDay) -> Value {
    let mut day = Map::new();
    day.insert("day".to_string(), json!(entry.day.to_string()));
    for (platform, n) in &entry.by_platform {
        day.insert(platform.as_str().to_string(), json!(n));
    }
    day.insert("total".to_string(), json!(entry.total()));
    Value::Object(day)
}

fn trending_json(row: &Trending) -> Value {
    json!({
        "id": row.id,
        "first_name": row.first_name,
        "last_name": row.last_name,
        "company": row.company,
        "heat_score": http::compact_number(row.heat_score),
        "heat_level": row.heat_level,
        "heat_trend": http::compact_number(row.heat_trend),
        "change": http::compact_number((row.delta * 100.0).round() / 100.0),
        "basis": row.basis,
    })
}
