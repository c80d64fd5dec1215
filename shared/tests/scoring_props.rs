//! Properties of heat scoring that must hold for every org config and every history.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use leadheat_domain::scoring::{
    decayed_points, level_for, score, score_many, ScoringConfig, Thresholds, Touch, MAX_ABS_WEIGHT,
    MAX_HALF_LIFE_DAYS,
};
use leadheat_domain::types::{HeatLevel, InteractionType};
use proptest::prelude::*;
use proptest::sample::select;

const MS_PER_DAY: f64 = 86_400_000.0;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn round_to_cents(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn any_kind() -> impl Strategy<Value = InteractionType> {
    select(InteractionType::ALL)
}

fn any_weights() -> impl Strategy<Value = BTreeMap<InteractionType, i64>> {
    proptest::collection::btree_map(any_kind(), -MAX_ABS_WEIGHT..=MAX_ABS_WEIGHT, 0..=19)
}

fn any_valid_half_life() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![Just(None), (0.001..=MAX_HALF_LIFE_DAYS).prop_map(Some)]
}

fn any_config(
    half_life: impl Strategy<Value = Option<f64>>,
) -> impl Strategy<Value = ScoringConfig> {
    (any_weights(), 0.0..500.0f64, 0.01..500.0f64, half_life).prop_map(
        |(weights, warm, gap, decay_half_life_days)| ScoringConfig {
            weights,
            thresholds: Thresholds {
                warm,
                hot: warm + gap,
            },
            decay_half_life_days,
        },
    )
}

/// Any instant chrono can represent, far past and far future included.
fn any_instant() -> impl Strategy<Value = DateTime<Utc>> {
    let earliest = DateTime::<Utc>::MIN_UTC.timestamp_millis();
    let latest = DateTime::<Utc>::MAX_UTC.timestamp_millis();
    (earliest..=latest).prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap())
}

/// Mostly realistic instants (ten years back to a year ahead of `now`), sometimes extreme ones.
fn any_touch_time() -> impl Strategy<Value = DateTime<Utc>> {
    let now_ms = now().timestamp_millis();
    let realistic = (now_ms - 3650 * 86_400_000..=now_ms + 365 * 86_400_000)
        .prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap());
    prop_oneof![4 => realistic, 1 => any_instant()]
}

fn any_touches() -> impl Strategy<Value = Vec<Touch>> {
    proptest::collection::vec(
        (any_kind(), any_touch_time()).prop_map(|(kind, at)| Touch::new(kind, at)),
        0..40,
    )
}

proptest! {
    #[test]
    fn score_is_finite_and_never_negative(
        config in any_config(any_valid_half_life()),
        touches in any_touches(),
        now in any_instant(),
    ) {
        let heat = score(&touches, &config, now);
        prop_assert!(heat.score.is_finite());
        prop_assert!(heat.score >= 0.0 && heat.score.is_sign_positive());
        prop_assert!(heat.breakdown.iter().all(|line| line.points.is_finite()));
        prop_assert_eq!(heat.level, level_for(heat.score, &config.thresholds));
    }

    #[test]
    fn score_is_finite_even_for_unvalidated_half_lives(
        config in any_config(proptest::option::of(proptest::num::f64::ANY)),
        touches in any_touches(),
    ) {
        let heat = score(&touches, &config, now());
        prop_assert!(heat.score.is_finite() && heat.score >= 0.0);
    }

    #[test]
    fn adding_a_positive_touch_never_lowers_the_score_without_decay(
        config in any_config(Just(None)),
        touches in any_touches(),
        added_kind in any_kind(),
        added_weight in 1..=MAX_ABS_WEIGHT,
        added_at in any_touch_time(),
    ) {
        let mut config = config;
        config.weights.insert(added_kind, added_weight);
        let before = score(&touches, &config, now()).score;
        let mut more = touches;
        more.push(Touch::new(added_kind, added_at));
        prop_assert!(score(&more, &config, now()).score >= before);
    }

    #[test]
    fn adding_a_positive_touch_now_never_lowers_the_score_with_decay(
        config in any_config(any_valid_half_life()),
        touches in any_touches(),
        added_kind in any_kind(),
        added_weight in 1..=MAX_ABS_WEIGHT,
    ) {
        let mut config = config;
        config.weights.insert(added_kind, added_weight);
        let before = score(&touches, &config, now()).score;
        let mut more = touches;
        more.push(Touch::new(added_kind, now()));
        prop_assert!(score(&more, &config, now()).score >= before);
    }

    #[test]
    fn touch_order_does_not_matter_without_decay(
        config in any_config(Just(None)),
        touches in any_touches(),
    ) {
        let mut reversed = touches.clone();
        reversed.reverse();
        prop_assert_eq!(score(&touches, &config, now()), score(&reversed, &config, now()));
    }

    #[test]
    fn decay_over_a_gap_equals_decay_in_steps(
        weight in -MAX_ABS_WEIGHT..=MAX_ABS_WEIGHT,
        first_days in 0.0..5000.0f64,
        then_days in 0.0..5000.0f64,
        half_life in 0.01..=MAX_HALF_LIFE_DAYS,
    ) {
        let at_once = decayed_points(weight, first_days + then_days, half_life);
        let in_steps =
            decayed_points(weight, first_days, half_life) * 0.5f64.powf(then_days / half_life);
        prop_assert!((at_once - in_steps).abs() <= 1e-6, "{at_once} vs {in_steps}");
    }

    #[test]
    fn a_single_touch_scores_its_rounded_decayed_points(
        kind in any_kind(),
        weight in 1..=MAX_ABS_WEIGHT,
        age_ms in 0i64..3650 * 86_400_000,
        half_life in 0.01..=MAX_HALF_LIFE_DAYS,
    ) {
        let mut config = ScoringConfig {
            decay_half_life_days: Some(half_life),
            ..ScoringConfig::default()
        };
        config.weights.insert(kind, weight);
        let touch = Touch::new(kind, now() - chrono::Duration::milliseconds(age_ms));
        let age_days = age_ms as f64 / MS_PER_DAY;
        let expected = round_to_cents(decayed_points(weight, age_days, half_life));
        prop_assert_eq!(score([&touch], &config, now()).score, expected);
    }

    #[test]
    fn a_touch_never_earns_more_than_its_weight(
        weight in 0..=MAX_ABS_WEIGHT,
        age_days in proptest::num::f64::ANY,
        half_life in 0.01..=MAX_HALF_LIFE_DAYS,
    ) {
        let points = decayed_points(weight, age_days, half_life);
        prop_assert!((0.0..=weight as f64).contains(&points));
    }

    #[test]
    fn batch_scoring_equals_scoring_each_lead_alone(
        config in any_config(any_valid_half_life()),
        leads in proptest::collection::vec((any::<u32>(), any_touches()), 0..8),
    ) {
        let batch = score_many(&leads, &config, now());
        prop_assert_eq!(batch.len(), leads.len());
        for ((key, touches), (batch_key, heat)) in leads.iter().zip(&batch) {
            prop_assert_eq!(key, batch_key);
            prop_assert_eq!(heat, &score(touches, &config, now()));
        }
    }

    #[test]
    fn breakdown_accounts_for_every_touch_in_order(
        config in any_config(any_valid_half_life()),
        touches in any_touches(),
    ) {
        let heat = score(&touches, &config, now());
        let counted: u64 = heat.breakdown.iter().map(|line| line.count).sum();
        prop_assert_eq!(counted, touches.len() as u64);
        for pair in heat.breakdown.windows(2) {
            prop_assert!(
                pair[0].points > pair[1].points
                    || (pair[0].points == pair[1].points && pair[0].kind < pair[1].kind)
            );
        }
    }

    #[test]
    fn level_thresholds_are_exact(
        warm_cents in 1i64..100_000,
        gap_cents in 1i64..100_000,
    ) {
        let warm = warm_cents as f64 / 100.0;
        let hot = (warm_cents + gap_cents) as f64 / 100.0;
        let thresholds = Thresholds { warm, hot };
        prop_assert_eq!(level_for(warm, &thresholds), HeatLevel::Warm);
        prop_assert_eq!(level_for(warm - 0.01, &thresholds), HeatLevel::Cold);
        prop_assert_eq!(level_for(hot, &thresholds), HeatLevel::Hot);
        prop_assert_eq!(level_for(hot - 0.01, &thresholds),
            if hot - 0.01 >= warm { HeatLevel::Warm } else { HeatLevel::Cold });
    }

    #[test]
    fn a_score_landing_on_a_threshold_takes_the_higher_level(
        warm in 1i64..200,
        gap in 1i64..200,
    ) {
        // Scores built from 1-point touches land exactly on integer thresholds.
        let mut config = ScoringConfig {
            weights: BTreeMap::new(),
            thresholds: Thresholds { warm: warm as f64, hot: (warm + gap) as f64 },
            decay_half_life_days: None,
        };
        config.weights.insert(InteractionType::SocialLike, 1);
        let likes = |count: i64| vec![Touch::new(InteractionType::SocialLike, now()); count as usize];
        prop_assert_eq!(score(&likes(warm - 1), &config, now()).level, HeatLevel::Cold);
        prop_assert_eq!(score(&likes(warm), &config, now()).level, HeatLevel::Warm);
        prop_assert_eq!(score(&likes(warm + gap - 1), &config, now()).level, HeatLevel::Warm);
        prop_assert_eq!(score(&likes(warm + gap), &config, now()).level, HeatLevel::Hot);
    }
}
