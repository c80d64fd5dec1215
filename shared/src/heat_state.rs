//! A lead's heat as a small running state, so that a new touchpoint (and the periodic decay
//! sweep) updates the score without reading the lead's touchpoints.
//!
//! [`crate::scoring::score`] sums `weight × 2^(−max(0, now − t) / half_life)` over every touch.
//! Exponential decay factors over time: for touches at or before a reference time `R`, the sum at
//! any `now ≥ R` is their sum at `R` scaled by `2^(−(now − R) / half_life)`. Touches after `R`
//! (stamped in the future when they were recorded) are worth their full weight until `now`
//! reaches them, so they are kept apart, as a sum of weights and the earliest of their times.
//!
//! The state, relative to its [`HeatState::reference`] `R`:
//! - `settled`: Σ `weight × 2^(−(R − t) / half_life)` over the touches with `t ≤ R`;
//! - `pending_points`: Σ `weight` over the touches with `t > R`;
//! - `next_pending_at`: the earliest `t > R`, if any.
//!
//! Evaluating at `now` with `R ≤ now < next_pending_at` is exact: `settled × 2^(−(now − R) / h) +
//! pending_points`. Moving the reference past `next_pending_at` needs the touches that were
//! crossed, i.e. those with `R < t ≤ now`, and the next pending time after `now`: the caller
//! reads them ([`HeatState::crossing`] says when and which range), and each touch is crossed at
//! most once, so the reads stay O(1) per touchpoint over a lead's life. Without decay every term
//! is its integer weight: the state is the exact integer sum, whatever the times.
//!
//! A state never moves back in time: evaluated before its reference, it gives the value at its
//! reference (the callers' clocks move forward; a clock a few milliseconds behind changes the
//! score by far less than a cent).
//!
//! The state depends on the config (weights, half-life): a config change rebuilds it from the
//! lead's history ([`HeatState::from_touches`]), which is the only full read.

use chrono::{DateTime, Utc};

use crate::scoring::{
    days_between, decayed_points, level_for, round_to_cents, HeatValue, ScoringConfig, Touch,
};

/// A lead's running heat (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeatState {
    pub reference: DateTime<Utc>,
    pub settled: f64,
    pub pending_points: i64,
    pub next_pending_at: Option<DateTime<Utc>>,
}

/// The touches a state moving its reference to `until` must be given: every touch of the lead
/// with `after < occurred_at ≤ until`, and the earliest `occurred_at` after `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrossingRange {
    pub after: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// What the caller read for a [`CrossingRange`].
#[derive(Debug, Clone, Copy)]
pub struct Crossed<'a> {
    /// The touches with `after < occurred_at ≤ until` (others are ignored).
    pub touches: &'a [Touch],
    /// The earliest touch time after `until`, if any.
    pub next_pending_at: Option<DateTime<Utc>>,
}

/// A state was asked to move past pending touches without being given them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the touches between {} and {} are needed to move the heat state", .0.after, .0.until)]
pub struct MissingCrossing(pub CrossingRange);

impl HeatState {
    /// The state of a lead without touches.
    pub fn empty(reference: DateTime<Utc>) -> HeatState {
        HeatState {
            reference,
            settled: 0.0,
            pending_points: 0,
            next_pending_at: None,
        }
    }

    /// The exact state of a whole history at `reference` (the full rebuild).
    pub fn from_touches<'a>(
        touches: impl IntoIterator<Item = &'a Touch>,
        config: &ScoringConfig,
        reference: DateTime<Utc>,
    ) -> HeatState {
        let mut state = HeatState::empty(reference);
        for touch in touches {
            state.add(*touch, config);
        }
        state
    }

    /// Folds one new touch in, at the state's reference.
    pub fn add(&mut self, touch: Touch, config: &ScoringConfig) {
        let weight = config.weight(touch.kind);
        match config.effective_half_life() {
            None => self.settled += weight as f64,
            Some(half_life) if touch.occurred_at <= self.reference => {
                let age = days_between(touch.occurred_at, self.reference);
                self.settled += decayed_points(weight, age, half_life);
            }
            Some(_) => {
                self.pending_points += weight;
                self.next_pending_at = Some(match self.next_pending_at {
                    Some(next) => next.min(touch.occurred_at),
                    None => touch.occurred_at,
                });
            }
        }
    }

    /// The touches to read before moving to `now`, when some pending touch is due by then.
    pub fn crossing(&self, now: DateTime<Utc>) -> Option<CrossingRange> {
        match self.next_pending_at {
            Some(next) if next <= now && self.reference < now => Some(CrossingRange {
                after: self.reference,
                until: now,
            }),
            _ => None,
        }
    }

    /// The same touches relative to `now` (a state never moves back: an earlier `now` leaves it as
    /// it is). `crossed` must be given when [`Self::crossing`] asks for it.
    pub fn advance(
        &self,
        config: &ScoringConfig,
        now: DateTime<Utc>,
        crossed: Option<Crossed<'_>>,
    ) -> Result<HeatState, MissingCrossing> {
        if now <= self.reference {
            return Ok(*self);
        }
        let Some(half_life) = config.effective_half_life() else {
            return Ok(HeatState {
                reference: now,
                ..*self
            });
        };
        let mut next = HeatState {
            reference: now,
            settled: self.settled * decay_factor(self.reference, now, half_life),
            ..*self
        };
        if let Some(range) = self.crossing(now) {
            let crossed = crossed.ok_or(MissingCrossing(range))?;
            for touch in crossed.touches {
                if range.after < touch.occurred_at && touch.occurred_at <= range.until {
                    let weight = config.weight(touch.kind);
                    let age = days_between(touch.occurred_at, now);
                    next.settled += decayed_points(weight, age, half_life);
                    next.pending_points -= weight;
                }
            }
            next.next_pending_at = crossed.next_pending_at.filter(|at| *at > now);
        }
        Ok(next)
    }

    /// The unrounded points at `now` (at the reference when `now` is earlier). Exact when no
    /// pending touch is due by then; otherwise those count their full weight (advance first).
    pub fn points(&self, config: &ScoringConfig, now: DateTime<Utc>) -> f64 {
        let settled = match config.effective_half_life() {
            Some(half_life) if now > self.reference => {
                self.settled * decay_factor(self.reference, now, half_life)
            }
            _ => self.settled,
        };
        settled + self.pending_points as f64
    }

    /// The score and level at `now`, by the rules of [`crate::scoring::score`]: floored at 0,
    /// rounded to cents, levelled by the config's thresholds.
    pub fn value(&self, config: &ScoringConfig, now: DateTime<Utc>) -> HeatValue {
        let sum = self.points(config, now);
        let score = round_to_cents(if sum > 0.0 { sum } else { 0.0 });
        HeatValue {
            score,
            level: level_for(score, &config.thresholds),
        }
    }

    /// One new touchpoint at `now`: the state moved to `now`, the touch folded in, and the new
    /// heat. `crossed` as for [`Self::advance`].
    pub fn record(
        &self,
        touch: Touch,
        config: &ScoringConfig,
        now: DateTime<Utc>,
        crossed: Option<Crossed<'_>>,
    ) -> Result<(HeatState, HeatValue), MissingCrossing> {
        let mut state = self.advance(config, now, crossed)?;
        state.add(touch, config);
        let value = state.value(config, now);
        Ok((state, value))
    }

    /// The state of two leads' touches together (a merge). Both must have the same reference:
    /// advance both to the same instant first. `None` when the references differ.
    pub fn merge(&self, other: &HeatState) -> Option<HeatState> {
        (self.reference == other.reference).then(|| HeatState {
            reference: self.reference,
            settled: self.settled + other.settled,
            pending_points: self.pending_points + other.pending_points,
            next_pending_at: match (self.next_pending_at, other.next_pending_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        })
    }
}

/// `2^(−(to − from) / half_life)`.
fn decay_factor(from: DateTime<Utc>, to: DateTime<Utc>, half_life: f64) -> f64 {
    (-days_between(from, to) / half_life).exp2()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::score;
    use crate::types::HeatLevel;
    use crate::types::InteractionType::{self, *};
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;
    use proptest::sample::select;

    fn base() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn days(n: f64) -> DateTime<Utc> {
        base() + Duration::milliseconds((n * 86_400_000.0) as i64)
    }

    fn decaying(half_life: f64) -> ScoringConfig {
        ScoringConfig {
            decay_half_life_days: Some(half_life),
            ..ScoringConfig::default()
        }
    }

    /// The caller's reads for a crossing range, from the full history.
    fn read<'a>(
        history: &'a [Touch],
        range: CrossingRange,
        buffer: &'a mut Vec<Touch>,
    ) -> Crossed<'a> {
        buffer.clear();
        buffer.extend(
            history
                .iter()
                .filter(|t| range.after < t.occurred_at && t.occurred_at <= range.until),
        );
        Crossed {
            touches: buffer,
            next_pending_at: history
                .iter()
                .map(|t| t.occurred_at)
                .filter(|at| *at > range.until)
                .min(),
        }
    }

    #[test]
    fn without_decay_the_state_is_the_integer_sum() {
        let config = ScoringConfig::default();
        let touches = [
            Touch::new(SiteVisit, days(-400.0)),
            Touch::new(PriceQuote, days(900.0)),
            Touch::new(StageChange, days(1.0)),
        ];
        let state = HeatState::from_touches(&touches, &config, days(0.0));
        assert_eq!((state.settled, state.pending_points), (18.0, 0));
        assert_eq!(state.next_pending_at, None);
        assert_eq!(state.crossing(days(1000.0)), None);
        let value = state.value(&config, days(5.0));
        assert_eq!((value.score, value.level), (18.0, HeatLevel::Hot));
    }

    #[test]
    fn decay_halves_the_settled_sum_per_half_life() {
        let config = decaying(7.0);
        let touches = [
            Touch::new(SiteVisit, days(0.0)),
            Touch::new(PriceQuote, days(0.0)),
        ];
        let state = HeatState::from_touches(&touches, &config, days(0.0));
        assert_eq!(state.value(&config, days(7.0)).score, 9.0);
        assert_eq!(state.value(&config, days(14.0)).score, 4.5);
        assert_eq!(state.value(&config, days(17.5)).score, 3.18);
        // Before its reference, a state gives its value at the reference.
        assert_eq!(state.value(&config, days(-3.0)).score, 18.0);
    }

    #[test]
    fn a_future_touch_counts_its_full_weight_until_it_is_crossed() {
        let config = decaying(1.0);
        let future = Touch::new(PriceQuote, days(10.0));
        let state = HeatState::from_touches([&future], &config, days(0.0));
        assert_eq!((state.settled, state.pending_points), (0.0, 8));
        assert_eq!(state.next_pending_at, Some(days(10.0)));
        assert_eq!(state.value(&config, days(9.0)).score, 8.0);
        assert_eq!(state.crossing(days(9.0)), None);

        let range = state.crossing(days(11.0)).expect("the touch is due");
        assert_eq!((range.after, range.until), (days(0.0), days(11.0)));
        assert_eq!(
            state.advance(&config, days(11.0), None),
            Err(MissingCrossing(range))
        );
        let history = [future];
        let mut buffer = Vec::new();
        let moved = state
            .advance(
                &config,
                days(11.0),
                Some(read(&history, range, &mut buffer)),
            )
            .unwrap();
        assert_eq!((moved.settled, moved.pending_points), (4.0, 0));
        assert_eq!(moved.next_pending_at, None);
        assert_eq!(moved.value(&config, days(11.0)).score, 4.0);
    }

    #[test]
    fn negative_weights_floor_the_score_not_the_state() {
        let mut config = decaying(30.0);
        config.weights.insert(Note, -5);
        let touches = [
            Touch::new(Note, days(0.0)),
            Touch::new(SocialLike, days(0.0)),
        ];
        let mut state = HeatState::from_touches(&touches, &config, days(0.0));
        assert_eq!(state.value(&config, days(0.0)).score, 0.0);
        assert!(state.value(&config, days(0.0)).score.is_sign_positive());
        state.add(Touch::new(SiteVisit, days(0.0)), &config);
        assert_eq!(state.value(&config, days(0.0)).score, 6.0);
    }

    #[test]
    fn merge_needs_one_reference() {
        let config = decaying(3.0);
        let a = HeatState::from_touches([&Touch::new(SiteVisit, days(1.0))], &config, days(2.0));
        let b = HeatState::from_touches([&Touch::new(InfoRequest, days(5.0))], &config, days(2.0));
        let merged = a.merge(&b).unwrap();
        assert_eq!(merged.pending_points, 5);
        assert_eq!(merged.next_pending_at, Some(days(5.0)));
        let later = HeatState::empty(days(3.0));
        assert_eq!(a.merge(&later), None);
    }

    // --------------------------------------------------------------------------------------------
    // The incremental state equals the full recomputation.

    /// Absolute tolerance on unrounded points, relative to the weights involved: the incremental
    /// sum multiplies `2^a · 2^b` where the full one takes `2^(a+b)`, a few ulps apart.
    const RELATIVE_TOLERANCE: f64 = 1e-9;

    fn any_touch() -> impl Strategy<Value = Touch> {
        (select(InteractionType::ALL), -30_000i64..120_000)
            .prop_map(|(kind, minutes)| Touch::new(kind, base() + Duration::minutes(minutes)))
    }

    fn any_config() -> impl Strategy<Value = ScoringConfig> {
        (
            proptest::collection::btree_map(select(InteractionType::ALL), -50i64..=50, 0..10),
            prop_oneof![
                1 => Just(None),
                3 => (0.01f64..60.0).prop_map(Some),
            ],
            0.0f64..40.0,
            0.01f64..40.0,
        )
            .prop_map(|(weights, decay_half_life_days, warm, gap)| ScoringConfig {
                weights,
                decay_half_life_days,
                thresholds: crate::scoring::Thresholds {
                    warm,
                    hot: warm + gap,
                },
            })
    }

    /// One step of a lead's life: a touchpoint recorded at a clock, or a decay sweep at a clock.
    #[derive(Debug, Clone)]
    enum Step {
        Record(Touch, i64),
        Sweep(i64),
    }

    fn any_steps() -> impl Strategy<Value = Vec<Step>> {
        proptest::collection::vec(
            prop_oneof![
                3 => (any_touch(), 0i64..2_000).prop_map(|(t, dt)| Step::Record(t, dt)),
                1 => (0i64..20_000).prop_map(Step::Sweep),
            ],
            1..40,
        )
    }

    fn sum_of_weights(touches: &[Touch], config: &ScoringConfig) -> f64 {
        touches
            .iter()
            .map(|t| config.weight(t.kind).unsigned_abs() as f64)
            .sum()
    }

    /// The full recomputation's unrounded points, term by term as `score` takes them.
    fn full_points(touches: &[Touch], config: &ScoringConfig, now: DateTime<Utc>) -> f64 {
        touches
            .iter()
            .map(|t| match config.effective_half_life() {
                Some(h) => {
                    decayed_points(config.weight(t.kind), days_between(t.occurred_at, now), h)
                }
                None => config.weight(t.kind) as f64,
            })
            .sum()
    }

    fn near_a_threshold(score: f64, config: &ScoringConfig) -> bool {
        let t = config.thresholds;
        (score - t.warm).abs() <= 0.01 || (score - t.hot).abs() <= 0.01
    }

    fn check(
        state: &HeatState,
        history: &[Touch],
        config: &ScoringConfig,
        now: DateTime<Utc>,
    ) -> Result<(), TestCaseError> {
        let full = score(history, config, now);
        let incremental = state.value(config, now);
        if config.decay_half_life_days.is_none() {
            // Integer sums: exactly the same.
            prop_assert_eq!(incremental.score, full.score);
            prop_assert_eq!(incremental.level, full.level);
            return Ok(());
        }
        let tolerance = RELATIVE_TOLERANCE * (1.0 + sum_of_weights(history, config));
        let (a, b) = (state.points(config, now), full_points(history, config, now));
        prop_assert!((a - b).abs() <= tolerance, "points {} vs {}", a, b);
        // Rounding to cents can put a value a few ulps either side of a half cent one cent apart.
        prop_assert!(
            (incremental.score - full.score).abs() <= 0.01 + 1e-9,
            "score {} vs {}",
            incremental.score,
            full.score
        );
        if !near_a_threshold(full.score, config) {
            prop_assert_eq!(incremental.level, full.level);
        }
        Ok(())
    }

    proptest! {
        /// A lead's life as the API and the scoring job see it: touchpoints recorded in any order
        /// of occurrence (some stamped ahead of the clock), decay sweeps in between, the clock
        /// moving forward. After every step the state's heat equals `score` over every touch.
        #[test]
        fn incremental_heat_equals_the_full_recomputation(
            config in any_config(),
            start in -20_000i64..20_000,
            steps in any_steps(),
        ) {
            let mut clock = base() + Duration::minutes(start);
            let mut state = HeatState::empty(clock);
            let mut history: Vec<Touch> = Vec::new();
            let mut buffer = Vec::new();
            for step in steps {
                match step {
                    Step::Record(touch, dt) => {
                        clock += Duration::minutes(dt);
                        let crossed = state.crossing(clock).map(|r| read(&history, r, &mut buffer));
                        let (next, value) = state.record(touch, &config, clock, crossed).unwrap();
                        history.push(touch);
                        state = next;
                        prop_assert_eq!(value, state.value(&config, clock));
                    }
                    Step::Sweep(dt) => {
                        clock += Duration::minutes(dt);
                        let crossed = state.crossing(clock).map(|r| read(&history, r, &mut buffer));
                        state = state.advance(&config, clock, crossed).unwrap();
                    }
                }
                check(&state, &history, &config, clock)?;
                prop_assert_eq!(state.reference, clock);
            }
        }

        /// The rebuild from history at any reference evaluates like `score` at any later clock
        /// (moving past the pending touches it holds).
        #[test]
        fn a_rebuilt_state_equals_the_full_recomputation(
            config in any_config(),
            history in proptest::collection::vec(any_touch(), 0..40),
            at in -30_000i64..120_000,
            later in 0i64..200_000,
        ) {
            let reference = base() + Duration::minutes(at);
            let now = reference + Duration::minutes(later);
            let state = HeatState::from_touches(&history, &config, reference);
            check(&state, &history, &config, reference)?;
            let mut buffer = Vec::new();
            let crossed = state.crossing(now).map(|r| read(&history, r, &mut buffer));
            let moved = state.advance(&config, now, crossed).unwrap();
            check(&moved, &history, &config, now)?;
        }

        /// Two leads' states, moved to one instant and merged, equal the state of both histories.
        #[test]
        fn merged_states_equal_the_union(
            config in any_config(),
            a in proptest::collection::vec(any_touch(), 0..20),
            b in proptest::collection::vec(any_touch(), 0..20),
            at in -30_000i64..120_000,
        ) {
            let reference = base() + Duration::minutes(at);
            let merged = HeatState::from_touches(&a, &config, reference)
                .merge(&HeatState::from_touches(&b, &config, reference))
                .unwrap();
            let union: Vec<Touch> = a.iter().chain(&b).copied().collect();
            check(&merged, &union, &config, reference)?;
        }
    }
}
