//! Heat scoring: a lead's score and level as a pure function of its touches, the org's
//! [`ScoringConfig`] and `now`.
//!
//! The API (at insert time) and the scheduled job (with decay) both call [`score`], so a lead's
//! stored heat never depends on which path computed it. With the default config (no decay) the
//! result is exactly the seed's integer table.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::types::{
    serialize_compact_f64, serialize_compact_opt_f64, FieldError, HeatLevel, InteractionType,
};

/// The seed's weights; every type not listed is worth 0.
pub const SEED_WEIGHTS: [(InteractionType, i64); 6] = [
    (InteractionType::SocialFollow, 1),
    (InteractionType::SocialLike, 1),
    (InteractionType::WebsiteVisit, 2),
    (InteractionType::InfoRequest, 5),
    (InteractionType::PriceQuote, 8),
    (InteractionType::SiteVisit, 10),
];

/// Weights outside `-MAX_ABS_WEIGHT..=MAX_ABS_WEIGHT` are rejected: a bound keeps sums exact and
/// finite and catches typos like an extra zero or two.
pub const MAX_ABS_WEIGHT: i64 = 1000;

/// The longest accepted decay half-life (ten years); anything longer is indistinguishable from off.
pub const MAX_HALF_LIFE_DAYS: f64 = 3650.0;

const MILLISECONDS_PER_DAY: f64 = 86_400_000.0;

/// The score boundaries between heat levels: `[0, warm)` is COLD, `[warm, hot)` WARM, `hot..` HOT.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    #[serde(serialize_with = "serialize_compact_f64")]
    pub warm: f64,
    #[serde(serialize_with = "serialize_compact_f64")]
    pub hot: f64,
}

impl Default for Thresholds {
    /// The seed's levels: COLD 0-5, WARM 6-15, HOT 16+.
    fn default() -> Self {
        Self {
            warm: 6.0,
            hot: 16.0,
        }
    }
}

/// An org's scoring settings, in the exact shape of `GET`/`PUT /v1/scoring`:
/// `{"weights":{type:points},"thresholds":{"warm":6,"hot":16},"decay_half_life_days":null|number}`.
///
/// `weights` is the full table: a type it does not list is worth 0 (a `PUT` replaces the table, it
/// does not merge into it). Unknown fields are rejected so that a misspelt key is an error rather
/// than a silently ignored setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringConfig {
    pub weights: BTreeMap<InteractionType, i64>,
    pub thresholds: Thresholds,
    /// Days after which a touch is worth half its weight; `None` turns decay off.
    #[serde(default, serialize_with = "serialize_compact_opt_f64")]
    pub decay_half_life_days: Option<f64>,
}

impl Default for ScoringConfig {
    /// The seed's table and levels, without decay.
    fn default() -> Self {
        Self {
            weights: SEED_WEIGHTS.into_iter().collect(),
            thresholds: Thresholds::default(),
            decay_half_life_days: None,
        }
    }
}

impl ScoringConfig {
    /// The undecayed points of one touch of `kind` (0 when the table does not list it).
    pub fn weight(&self, kind: InteractionType) -> i64 {
        self.weights.get(&kind).copied().unwrap_or(0)
    }

    /// Checks every field and reports all problems at once, with dotted field paths
    /// (`thresholds.hot`, `weights.price_quote`, `decay_half_life_days`).
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let Thresholds { warm, hot } = self.thresholds;

        if !warm.is_finite() {
            errors.push(FieldError::new(
                "thresholds.warm",
                "must be a finite number",
            ));
        } else if warm < 0.0 {
            errors.push(FieldError::new("thresholds.warm", "must be at least 0"));
        }
        if !hot.is_finite() {
            errors.push(FieldError::new("thresholds.hot", "must be a finite number"));
        } else if warm.is_finite() && hot <= warm {
            errors.push(FieldError::new(
                "thresholds.hot",
                "must be greater than thresholds.warm",
            ));
        }

        for (kind, weight) in &self.weights {
            if !(-MAX_ABS_WEIGHT..=MAX_ABS_WEIGHT).contains(weight) {
                errors.push(FieldError::new(
                    format!("weights.{kind}"),
                    format!("must be between -{MAX_ABS_WEIGHT} and {MAX_ABS_WEIGHT}"),
                ));
            }
        }

        if let Some(half_life) = self.decay_half_life_days {
            if !half_life.is_finite() || half_life <= 0.0 {
                errors.push(FieldError::new(
                    "decay_half_life_days",
                    "must be a number of days greater than 0, or null to turn decay off",
                ));
            } else if half_life > MAX_HALF_LIFE_DAYS {
                errors.push(FieldError::new(
                    "decay_half_life_days",
                    format!("must be at most {MAX_HALF_LIFE_DAYS} days"),
                ));
            }
        }

        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The half-life to apply, or `None` for no decay. A half-life that [`Self::validate`] would
    /// reject is treated as off, so even an unvalidated config always yields a finite score.
    pub(crate) fn effective_half_life(&self) -> Option<f64> {
        self.decay_half_life_days
            .filter(|half_life| half_life.is_finite() && *half_life > 0.0)
    }
}

/// What scoring needs to know of an interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch {
    pub kind: InteractionType,
    pub occurred_at: DateTime<Utc>,
}

impl Touch {
    pub fn new(kind: InteractionType, occurred_at: DateTime<Utc>) -> Self {
        Self { kind, occurred_at }
    }
}

/// A lead's computed heat. Serializes as `{"score", "level", "breakdown": [{"type", "count",
/// "points"}]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heat {
    /// Never negative, always finite, rounded to 2 decimals.
    #[serde(serialize_with = "serialize_compact_f64")]
    pub score: f64,
    pub level: HeatLevel,
    /// One line per interaction type present, highest points first (ties by type order).
    pub breakdown: Vec<BreakdownLine>,
}

impl Heat {
    /// The score and level, as a lead stores them.
    pub fn value(&self) -> HeatValue {
        HeatValue {
            score: self.score,
            level: self.level,
        }
    }
}

/// A lead's stored heat: the score (never negative, rounded to cents) and its level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeatValue {
    pub score: f64,
    pub level: HeatLevel,
}

/// How much one interaction type contributed to a [`Heat`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakdownLine {
    #[serde(rename = "type")]
    pub kind: InteractionType,
    /// Number of touches of this type.
    pub count: u64,
    /// Their (decayed) points, rounded to 2 decimals; negative when the type's weight is.
    #[serde(serialize_with = "serialize_compact_f64")]
    pub points: f64,
}

/// The undecayed points an interaction of `kind` earns when recorded (its `points` field).
pub fn points_for(kind: InteractionType, config: &ScoringConfig) -> i64 {
    config.weight(kind)
}

/// `weight × 0.5^(age_days / half_life_days)`, unrounded.
///
/// A negative or NaN age (a touch stamped in the future) counts as 0, so no touch ever earns more
/// than its weight. A half-life that is not a finite positive number means no decay.
pub fn decayed_points(weight: i64, age_days: f64, half_life_days: f64) -> f64 {
    if !(half_life_days.is_finite() && half_life_days > 0.0) {
        return weight as f64;
    }
    // `x > 0.0` is false for NaN, so NaN ages are clamped as well.
    let age_days = if age_days > 0.0 { age_days } else { 0.0 };
    // 2^(-x) is 0.5^x, computed by the more precise exp2.
    weight as f64 * (-age_days / half_life_days).exp2()
}

/// The level a score falls in: COLD below `warm`, WARM from `warm` up to (excluding) `hot`, HOT
/// from `hot`. Boundaries are inclusive at the bottom of each level, so with the defaults 5 is
/// COLD, 6 WARM, 15 WARM and 16 HOT.
pub fn level_for(score: f64, thresholds: &Thresholds) -> HeatLevel {
    // Comparisons written so that a NaN score falls through to COLD.
    if score >= thresholds.hot {
        HeatLevel::Hot
    } else if score >= thresholds.warm {
        HeatLevel::Warm
    } else {
        HeatLevel::Cold
    }
}

/// Scores one lead's touches as of `now`.
///
/// Each touch earns its type's weight, decayed by its age when the config sets a half-life (see
/// [`decayed_points`]). The score is the sum, floored at 0 (negative weights can cool a lead but
/// not below zero) and rounded to 2 decimals, half away from zero, so stored values are stable.
/// Without decay every term is an integer and the result is exact, whatever the touch order.
pub fn score<'a>(
    touches: impl IntoIterator<Item = &'a Touch>,
    config: &ScoringConfig,
    now: DateTime<Utc>,
) -> Heat {
    let half_life = config.effective_half_life();

    // Per type: (count, unrounded points). A BTreeMap keeps the summation order fixed.
    let mut per_kind: BTreeMap<InteractionType, (u64, f64)> = BTreeMap::new();
    for touch in touches {
        let weight = config.weight(touch.kind);
        let points = match half_life {
            Some(half_life) => decayed_points(weight, age_in_days(touch, now), half_life),
            None => weight as f64,
        };
        let (count, total) = per_kind.entry(touch.kind).or_insert((0, 0.0));
        *count += 1;
        *total += points;
    }

    let sum: f64 = per_kind.values().map(|(_, points)| points).sum();
    // Written as a comparison (not `max`) so a -0.0 or NaN sum also becomes 0.
    let score = round_to_cents(if sum > 0.0 { sum } else { 0.0 });

    let mut breakdown: Vec<BreakdownLine> = per_kind
        .into_iter()
        .map(|(kind, (count, points))| BreakdownLine {
            kind,
            count,
            points: round_to_cents(points),
        })
        .collect();
    breakdown.sort_by(|a, b| b.points.total_cmp(&a.points).then(a.kind.cmp(&b.kind)));

    Heat {
        score,
        level: level_for(score, &config.thresholds),
        breakdown,
    }
}

/// Scores many leads at once (the scheduled job's batches); identical to calling [`score`] on
/// each lead alone.
pub fn score_many<K: Clone>(
    leads: &[(K, Vec<Touch>)],
    config: &ScoringConfig,
    now: DateTime<Utc>,
) -> Vec<(K, Heat)> {
    leads
        .iter()
        .map(|(key, touches)| (key.clone(), score(touches, config, now)))
        .collect()
}

/// A lead's heat trend: how much faster (positive) or slower (negative) it heated up over the
/// last 7 days than over the 7 days before.
///
/// Defined as `(now − 7d) − (7d − 14d)`, where `7d`/`14d` are the lead's scores 7 and 14 days ago
/// (from the daily snapshots). With only the 7-day snapshot it is the plain change `now − 7d`;
/// without a 7-day snapshot there is no recent change to compare and the trend is 0. Rounded to 2
/// decimals; non-finite inputs give 0.
pub fn trend(score_now: f64, score_7_days_ago: Option<f64>, score_14_days_ago: Option<f64>) -> f64 {
    let raw = match (score_7_days_ago, score_14_days_ago) {
        (Some(week_ago), Some(two_weeks_ago)) => {
            (score_now - week_ago) - (week_ago - two_weeks_ago)
        }
        (Some(week_ago), None) => score_now - week_ago,
        (None, _) => 0.0,
    };
    if raw.is_finite() {
        round_to_cents(raw)
    } else {
        0.0
    }
}

/// Age of a touch in (fractional) days; negative for a touch after `now`.
fn age_in_days(touch: &Touch, now: DateTime<Utc>) -> f64 {
    days_between(touch.occurred_at, now)
}

/// Days (fractional, by whole milliseconds) from `from` to `to`; negative when `to` is earlier.
pub(crate) fn days_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    // Cannot overflow: chrono's whole date range spans far less than i64::MAX milliseconds.
    to.signed_duration_since(from).num_milliseconds() as f64 / MILLISECONDS_PER_DAY
}

/// Rounds to 2 decimals, half away from zero (`f64::round`'s rule).
pub(crate) fn round_to_cents(value: f64) -> f64 {
    let rounded = (value * 100.0).round() / 100.0;
    if rounded.is_finite() {
        // `+ 0.0` turns -0.0 (e.g. a trend of -0.001) into 0.0 so it never prints as "-0".
        rounded + 0.0
    } else {
        // Only reachable for values near f64::MAX, where the ×100 overflows.
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use InteractionType::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn touches(kinds: &[InteractionType]) -> Vec<Touch> {
        kinds.iter().map(|&kind| Touch::new(kind, now())).collect()
    }

    fn seed_score(kinds: &[InteractionType]) -> Heat {
        score(&touches(kinds), &ScoringConfig::default(), now())
    }

    fn with_decay(half_life_days: f64) -> ScoringConfig {
        ScoringConfig {
            decay_half_life_days: Some(half_life_days),
            ..ScoringConfig::default()
        }
    }

    #[test]
    fn one_touch_of_each_seeded_type_earns_its_weight() {
        for (kind, weight) in SEED_WEIGHTS {
            let heat = seed_score(&[kind]);
            assert_eq!(heat.score, weight as f64, "{kind}");
            assert_eq!(points_for(kind, &ScoringConfig::default()), weight);
        }
    }

    #[test]
    fn seed_table_values() {
        let config = ScoringConfig::default();
        let table: Vec<(InteractionType, i64)> = InteractionType::ALL
            .iter()
            .map(|&kind| (kind, config.weight(kind)))
            .filter(|(_, weight)| *weight != 0)
            .collect();
        assert_eq!(table, SEED_WEIGHTS);
        assert_eq!(config.weights.len(), 6, "only non-zero weights are listed");
    }

    #[test]
    fn seed_examples_climb_through_the_levels() {
        let heat = seed_score(&[SocialFollow, SocialLike, WebsiteVisit]);
        assert_eq!((heat.score, heat.level), (4.0, HeatLevel::Cold));

        let heat = seed_score(&[SocialFollow, SocialLike, WebsiteVisit, InfoRequest]);
        assert_eq!((heat.score, heat.level), (9.0, HeatLevel::Warm));

        let heat = seed_score(&[
            SocialFollow,
            SocialLike,
            WebsiteVisit,
            InfoRequest,
            PriceQuote,
        ]);
        assert_eq!((heat.score, heat.level), (17.0, HeatLevel::Hot));
    }

    #[test]
    fn zero_weight_types_count_but_earn_nothing() {
        let zero_kinds: Vec<InteractionType> = InteractionType::ALL
            .iter()
            .copied()
            .filter(|&kind| ScoringConfig::default().weight(kind) == 0)
            .collect();
        assert_eq!(zero_kinds.len(), 13);
        let heat = seed_score(&zero_kinds);
        assert_eq!((heat.score, heat.level), (0.0, HeatLevel::Cold));
        assert_eq!(heat.breakdown.len(), 13);
        assert!(heat
            .breakdown
            .iter()
            .all(|line| line.count == 1 && line.points == 0.0));
    }

    #[test]
    fn no_touches_is_cold_zero() {
        let heat = seed_score(&[]);
        assert_eq!(
            heat,
            Heat {
                score: 0.0,
                level: HeatLevel::Cold,
                breakdown: vec![]
            }
        );
    }

    #[test]
    fn default_level_boundaries() {
        let defaults = Thresholds::default();
        assert_eq!(level_for(0.0, &defaults), HeatLevel::Cold);
        assert_eq!(level_for(5.0, &defaults), HeatLevel::Cold);
        assert_eq!(level_for(5.99, &defaults), HeatLevel::Cold);
        assert_eq!(level_for(6.0, &defaults), HeatLevel::Warm);
        assert_eq!(level_for(15.0, &defaults), HeatLevel::Warm);
        assert_eq!(level_for(15.99, &defaults), HeatLevel::Warm);
        assert_eq!(level_for(16.0, &defaults), HeatLevel::Hot);
        assert_eq!(level_for(1e9, &defaults), HeatLevel::Hot);
        assert_eq!(level_for(f64::NAN, &defaults), HeatLevel::Cold);
    }

    #[test]
    fn custom_level_boundaries() {
        let thresholds = Thresholds {
            warm: 2.5,
            hot: 40.0,
        };
        assert_eq!(level_for(2.49, &thresholds), HeatLevel::Cold);
        assert_eq!(level_for(2.5, &thresholds), HeatLevel::Warm);
        assert_eq!(level_for(39.99, &thresholds), HeatLevel::Warm);
        assert_eq!(level_for(40.0, &thresholds), HeatLevel::Hot);

        // warm = 0: nothing is COLD.
        let thresholds = Thresholds {
            warm: 0.0,
            hot: 1.0,
        };
        assert_eq!(level_for(0.0, &thresholds), HeatLevel::Warm);
    }

    #[test]
    fn score_uses_the_configured_thresholds() {
        let config = ScoringConfig {
            thresholds: Thresholds {
                warm: 2.0,
                hot: 4.0,
            },
            ..ScoringConfig::default()
        };
        let level = |kinds: &[InteractionType]| score(&touches(kinds), &config, now()).level;
        assert_eq!(level(&[SocialLike]), HeatLevel::Cold);
        assert_eq!(level(&[SocialLike, SocialFollow]), HeatLevel::Warm);
        assert_eq!(level(&[WebsiteVisit, WebsiteVisit]), HeatLevel::Hot);
    }

    #[test]
    fn decay_halves_points_at_one_half_life() {
        let config = with_decay(30.0);
        let touch = Touch::new(SiteVisit, now() - Duration::days(30));
        assert_eq!(score([&touch], &config, now()).score, 5.0);

        let touch = Touch::new(SiteVisit, now() - Duration::days(60));
        assert_eq!(score([&touch], &config, now()).score, 2.5);

        // A fresh touch keeps its full weight.
        let touch = Touch::new(SiteVisit, now());
        assert_eq!(score([&touch], &config, now()).score, 10.0);
    }

    #[test]
    fn decayed_points_formula() {
        assert_eq!(decayed_points(8, 0.0, 7.0), 8.0);
        assert_eq!(decayed_points(8, 7.0, 7.0), 4.0);
        assert_eq!(decayed_points(8, 21.0, 7.0), 1.0);
        assert_eq!(decayed_points(-4, 7.0, 7.0), -2.0);
        assert_eq!(decayed_points(8, f64::INFINITY, 7.0), 0.0);
        // Invalid half-lives mean no decay rather than NaN.
        assert_eq!(decayed_points(8, 7.0, 0.0), 8.0);
        assert_eq!(decayed_points(8, 7.0, f64::NAN), 8.0);
    }

    #[test]
    fn future_touches_never_earn_more_than_their_weight() {
        let touch = Touch::new(PriceQuote, now() + Duration::days(365));
        assert_eq!(score([&touch], &with_decay(1.0), now()).score, 8.0);
        assert_eq!(decayed_points(8, -10.0, 1.0), 8.0);
        assert_eq!(decayed_points(8, f64::NAN, 1.0), 8.0);
    }

    #[test]
    fn decay_is_off_by_default_so_old_touches_keep_full_weight() {
        let touch = Touch::new(SiteVisit, now() - Duration::days(3650));
        assert_eq!(seed_score(&[]).score, 0.0);
        assert_eq!(
            score([&touch], &ScoringConfig::default(), now()).score,
            10.0
        );
    }

    #[test]
    fn unvalidated_half_life_is_treated_as_no_decay() {
        let touch = Touch::new(SiteVisit, now() - Duration::days(30));
        for half_life in [0.0, -3.0, f64::NAN, f64::INFINITY] {
            assert_eq!(score([&touch], &with_decay(half_life), now()).score, 10.0);
        }
    }

    #[test]
    fn scores_are_rounded_to_cents() {
        // 10 × 0.5^(1/3) = 7.937005…
        let touch = Touch::new(SiteVisit, now() - Duration::days(1));
        let heat = score([&touch], &with_decay(3.0), now());
        assert_eq!(heat.score, 7.94);
        assert_eq!(heat.breakdown[0].points, 7.94);
    }

    #[test]
    fn negative_weights_cool_a_lead_but_never_below_zero() {
        let mut config = ScoringConfig::default();
        config.weights.insert(Note, -3);
        let heat = score(&touches(&[PriceQuote, Note]), &config, now());
        assert_eq!(heat.score, 5.0);
        let heat = score(&touches(&[SocialLike, Note]), &config, now());
        assert_eq!(heat.score, 0.0);
        assert!(heat.score.is_sign_positive());
        assert_eq!(heat.breakdown.last().unwrap().points, -3.0);
    }

    #[test]
    fn breakdown_groups_by_type_sorted_by_points_then_type() {
        let heat = seed_score(&[
            SocialLike,
            Note,
            WebsiteVisit,
            SocialFollow,
            SocialLike,
            WebsiteVisit,
            PriceQuote,
        ]);
        let lines: Vec<(InteractionType, u64, f64)> = heat
            .breakdown
            .iter()
            .map(|line| (line.kind, line.count, line.points))
            .collect();
        assert_eq!(
            lines,
            [
                (PriceQuote, 1, 8.0),
                (WebsiteVisit, 2, 4.0),
                (SocialLike, 2, 2.0),
                (SocialFollow, 1, 1.0),
                (Note, 1, 0.0),
            ]
        );
        assert_eq!(heat.score, 15.0);
    }

    #[test]
    fn heat_serializes_with_type_keys() {
        let heat = seed_score(&[InfoRequest, SocialLike]);
        assert_eq!(
            serde_json::to_value(&heat).unwrap(),
            serde_json::json!({
                "score": 6,
                "level": "WARM",
                "breakdown": [
                    {"type": "info_request", "count": 1, "points": 5},
                    {"type": "social_like", "count": 1, "points": 1},
                ]
            })
        );
    }

    #[test]
    fn score_many_matches_score() {
        let leads = vec![
            ("a", touches(&[SiteVisit, PriceQuote])),
            ("b", vec![]),
            ("c", touches(&[SocialLike])),
        ];
        let config = ScoringConfig::default();
        let batch = score_many(&leads, &config, now());
        assert_eq!(batch.len(), 3);
        for ((key, touches), (batch_key, heat)) in leads.iter().zip(&batch) {
            assert_eq!(key, batch_key);
            assert_eq!(heat, &score(touches, &config, now()));
        }
    }

    #[test]
    fn trend_definition() {
        // Heated by 6 this week after 2 the week before: accelerating by 4.
        assert_eq!(trend(10.0, Some(4.0), Some(2.0)), 4.0);
        // Same rise both weeks: steady.
        assert_eq!(trend(10.0, Some(5.0), Some(0.0)), 0.0);
        // Cooling down.
        assert_eq!(trend(3.0, Some(5.0), Some(5.0)), -2.0);
        // Only a week of history: the plain change.
        assert_eq!(trend(10.0, Some(4.0), None), 6.0);
        // No history.
        assert_eq!(trend(10.0, None, None), 0.0);
        assert_eq!(trend(10.0, None, Some(3.0)), 0.0);
        // Rounded, never -0.
        assert_eq!(trend(1.0, Some(0.333), None), 0.67);
        let tiny_fall = trend(0.001, Some(0.002), None);
        assert_eq!(tiny_fall, 0.0);
        assert!(tiny_fall.is_sign_positive());
        assert_eq!(trend(f64::NAN, Some(1.0), None), 0.0);
    }

    #[test]
    fn default_config_serializes_in_the_api_shape() {
        assert_eq!(
            serde_json::to_value(ScoringConfig::default()).unwrap(),
            serde_json::json!({
                "weights": {
                    "social_follow": 1,
                    "social_like": 1,
                    "website_visit": 2,
                    "info_request": 5,
                    "price_quote": 8,
                    "site_visit": 10,
                },
                "thresholds": {"warm": 6, "hot": 16},
                "decay_half_life_days": null,
            })
        );
        let text = serde_json::to_string(&ScoringConfig::default().thresholds).unwrap();
        assert_eq!(text, r#"{"warm":6,"hot":16}"#);
    }

    #[test]
    fn config_deserializes_from_a_put_body() {
        let config: ScoringConfig = serde_json::from_str(
            r#"{"weights":{"meeting":12,"note":0},"thresholds":{"warm":5.5,"hot":20},"decay_half_life_days":14}"#,
        )
        .unwrap();
        assert_eq!(config.weight(Meeting), 12);
        assert_eq!(config.weight(SiteVisit), 0, "types left out are worth 0");
        assert_eq!(
            config.thresholds,
            Thresholds {
                warm: 5.5,
                hot: 20.0
            }
        );
        assert_eq!(config.decay_half_life_days, Some(14.0));
        assert_eq!(config.validate(), Ok(()));

        let round_trip: ScoringConfig =
            serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(round_trip, config);

        // A missing half-life means no decay.
        let config: ScoringConfig =
            serde_json::from_str(r#"{"weights":{},"thresholds":{"warm":1,"hot":2}}"#).unwrap();
        assert_eq!(config.decay_half_life_days, None);
    }

    #[test]
    fn config_rejects_unknown_types_and_fields() {
        let error = serde_json::from_str::<ScoringConfig>(
            r#"{"weights":{"poke":1},"thresholds":{"warm":6,"hot":16}}"#,
        )
        .unwrap_err();
        assert!(error
            .to_string()
            .contains("unknown interaction type \"poke\""));

        let misspelt = serde_json::from_str::<ScoringConfig>(
            r#"{"weights":{},"thresholds":{"warm":6,"hot":16},"decay_half_life":7}"#,
        );
        assert!(misspelt.is_err());
    }

    #[test]
    fn default_config_is_valid() {
        assert_eq!(ScoringConfig::default().validate(), Ok(()));
    }

    fn invalid_fields(config: &ScoringConfig) -> Vec<String> {
        config
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|error| error.field)
            .collect()
    }

    #[test]
    fn validation_of_thresholds() {
        let with_thresholds = |warm, hot| ScoringConfig {
            thresholds: Thresholds { warm, hot },
            ..ScoringConfig::default()
        };
        assert_eq!(
            invalid_fields(&with_thresholds(-1.0, 16.0)),
            ["thresholds.warm"]
        );
        assert_eq!(
            invalid_fields(&with_thresholds(6.0, 6.0)),
            ["thresholds.hot"]
        );
        assert_eq!(
            invalid_fields(&with_thresholds(6.0, 5.0)),
            ["thresholds.hot"]
        );
        assert_eq!(
            invalid_fields(&with_thresholds(f64::NAN, f64::INFINITY)),
            ["thresholds.warm", "thresholds.hot"]
        );
        assert_eq!(with_thresholds(0.0, 0.01).validate(), Ok(()));
    }

    #[test]
    fn validation_of_weights() {
        let mut config = ScoringConfig::default();
        config.weights.insert(Meeting, 1000);
        config.weights.insert(Note, -1000);
        assert_eq!(config.validate(), Ok(()));

        config.weights.insert(Call, 1001);
        config.weights.insert(Email, -1001);
        let errors = config.validate().unwrap_err();
        assert_eq!(
            errors,
            [
                FieldError::new("weights.email", "must be between -1000 and 1000"),
                FieldError::new("weights.call", "must be between -1000 and 1000"),
            ]
        );
    }

    #[test]
    fn validation_of_half_life() {
        for valid in [0.5, 1.0, 30.0, 3650.0] {
            assert_eq!(with_decay(valid).validate(), Ok(()), "{valid}");
        }
        for invalid in [0.0, -1.0, 3650.5, f64::NAN, f64::INFINITY] {
            assert_eq!(
                invalid_fields(&with_decay(invalid)),
                ["decay_half_life_days"],
                "{invalid}"
            );
        }
    }

    #[test]
    fn validation_reports_every_problem_at_once() {
        let mut config = with_decay(-1.0);
        config.thresholds = Thresholds {
            warm: -1.0,
            hot: -2.0,
        };
        config.weights.insert(Call, 5000);
        assert_eq!(
            invalid_fields(&config),
            [
                "thresholds.warm",
                "thresholds.hot",
                "weights.call",
                "decay_half_life_days"
            ]
        );
    }
}
