//! Planning of the scheduled heat recalculation: which cron is which, how much work one invocation
//! may do, which leads need a new score, how the keyset batches advance, and the dates the nightly
//! snapshots, trends and retention use.
//!
//! Everything here is pure: the scoring worker reads rows, asks these functions what to do, and
//! writes the outcome. A lead whose heat state is current is moved forward from its state
//! ([`crate::heat_state`]: no read of its touchpoints); a lead flagged, scored under an older
//! config or without a state is rebuilt from its whole history, exactly as
//! [`crate::scoring::score`] scores it alone.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use crate::heat_state::{Crossed, CrossingRange, HeatState};
use crate::scoring::{score, trend, HeatValue, ScoringConfig, Touch};
use crate::types::{wire_enum, HeatLevel};

/// The frequent cron (wrangler.toml `[env.scoring.triggers]`).
pub const FREQUENT_CRON: &str = "*/15 * * * *";
/// The nightly cron, 00:05 UTC: snapshots, trends and retention, plus the frequent run's work.
pub const NIGHTLY_CRON: &str = "5 0 * * *";

/// Leads read and written per batch unless `SCORING_BATCH_SIZE` says otherwise.
///
/// Sized for D1's per-invocation limits: a batch costs 4 reads plus at most one guarded UPDATE
/// per lead and 2 set-based statements, so the defaults (4 × 200) stay well under 1000 queries.
pub const DEFAULT_BATCH_SIZE: usize = 200;
/// Rescoring batches per invocation unless `SCORING_BATCHES_PER_RUN` says otherwise.
pub const DEFAULT_BATCHES_PER_RUN: usize = 4;
/// Bounds accepted from configuration (larger values would break D1's limits).
pub const MAX_BATCH_SIZE: usize = 1000;
pub const MAX_BATCHES_PER_RUN: usize = 100;
/// Snapshot batches are set-based (4 queries each, however many leads), so they are larger and
/// more numerous than rescoring batches.
pub const SNAPSHOT_BATCH_SIZE: usize = 1000;
pub const SNAPSHOT_BATCHES_PER_RESCORE_BATCH: usize = 5;
/// Snapshots older than this many days are pruned (default 400).
pub const DEFAULT_SNAPSHOT_RETENTION_DAYS: i64 = 400;

wire_enum! {
    /// Where an org's rescoring pass (its `rescore_runs` row) is: requested, being worked through
    /// batch by batch from its cursor, or finished.
    pub enum RescoreRunStatus, described as "rescore run status" {
        /// Requested (`POST /v1/scoring/recalculate`), not started yet.
        Queued => "queued",
        /// Started: the job resumes it from its cursor.
        Running => "running",
        /// Every lead of the pass was examined.
        Done => "done",
    }
}

impl RescoreRunStatus {
    /// Whether the pass still has work (the job picks the org up).
    pub const fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

/// Which of the two crons fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// Every 15 minutes: rescoring only.
    Frequent,
    /// 00:05 UTC: rescoring, then the day's snapshots and trends, then retention.
    Nightly,
}

impl RunKind {
    /// Tells the crons apart by their expression (whitespace-insensitive). Anything that is not
    /// the nightly cron is treated as a frequent run, so an ad-hoc trigger never writes snapshots.
    pub fn from_cron(cron: &str) -> RunKind {
        let normalized: Vec<&str> = cron.split_whitespace().collect();
        let nightly: Vec<&str> = NIGHTLY_CRON.split_whitespace().collect();
        if normalized == nightly {
            RunKind::Nightly
        } else {
            RunKind::Frequent
        }
    }
}

/// How much one invocation may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Budget {
    pub batch_size: usize,
    pub batches_per_run: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            batch_size: DEFAULT_BATCH_SIZE,
            batches_per_run: DEFAULT_BATCHES_PER_RUN,
        }
    }
}

impl Budget {
    /// From the `SCORING_BATCH_SIZE` and `SCORING_BATCHES_PER_RUN` variables: unset, empty or
    /// unparsable values take the default, and values are clamped to `1..=MAX`.
    pub fn from_vars(batch_size: Option<&str>, batches_per_run: Option<&str>) -> Budget {
        fn parse(value: Option<&str>, default: usize, max: usize) -> usize {
            value
                .and_then(|v| v.trim().parse::<usize>().ok())
                .map_or(default, |v| v.clamp(1, max))
        }
        Budget {
            batch_size: parse(batch_size, DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE),
            batches_per_run: parse(
                batches_per_run,
                DEFAULT_BATCHES_PER_RUN,
                MAX_BATCHES_PER_RUN,
            ),
        }
    }

    /// Snapshot batches allowed per invocation.
    pub fn snapshot_batches(&self) -> usize {
        self.batches_per_run * SNAPSHOT_BATCHES_PER_RESCORE_BATCH
    }
}

/// A lead as the job reads it, before rescoring.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredHeat {
    pub score: f64,
    pub level: HeatLevel,
    /// Flagged by a config change, a manual recalculation or a touch written without scoring.
    pub needs_rescore: bool,
    /// The config version its score was computed with (0: never scored by the job).
    pub scored_config_version: i64,
    /// Its running heat state; `None` when it has none yet (a lead from before the state).
    pub state: Option<HeatState>,
}

impl StoredHeat {
    /// Whether the lead's heat must be rebuilt from its whole history: it is flagged, its state
    /// was built under an older config, or it has none.
    pub fn needs_rebuild(&self, org_config_version: i64) -> bool {
        self.needs_rescore
            || self.scored_config_version != org_config_version
            || self.state.is_none()
    }

    /// The touches to read before moving the lead's (current) state to `now`, if any.
    pub fn crossing(&self, org_config_version: i64, now: DateTime<Utc>) -> Option<CrossingRange> {
        if self.needs_rebuild(org_config_version) {
            return None;
        }
        self.state.and_then(|state| state.crossing(now))
    }
}

/// The touches read for one lead's [`CrossingRange`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CrossingRead {
    pub touches: Vec<Touch>,
    pub next_pending_at: Option<DateTime<Utc>>,
}

/// Why a lead gets a new score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RescoreReason {
    /// `needs_rescore` was set.
    Flagged,
    /// Scored under an older config version than the org's current one.
    ConfigChanged,
    /// Decay is on and the score (or level) has moved since it was written.
    Decayed,
}

/// What to write for one lead.
#[derive(Debug, Clone, PartialEq)]
pub struct RescorePlan {
    pub reason: RescoreReason,
    pub heat: HeatValue,
    /// The lead's new heat state, stored with the heat.
    pub state: HeatState,
    /// `(old, new)` when the level changes: a `heat_level_changes` record.
    pub level_change: Option<(HeatLevel, HeatLevel)>,
}

/// Decides whether a lead needs a write, given what is stored, the org's current config version,
/// whether decay is on, and the freshly computed heat and state. `None`: leave the row alone.
pub fn plan_lead(
    stored: &StoredHeat,
    org_config_version: i64,
    decay_on: bool,
    recomputed: HeatValue,
    state: HeatState,
) -> Option<RescorePlan> {
    let moved = recomputed.score != stored.score || recomputed.level != stored.level;
    let reason = if stored.needs_rescore {
        RescoreReason::Flagged
    } else if stored.scored_config_version < org_config_version {
        RescoreReason::ConfigChanged
    } else if decay_on && moved {
        RescoreReason::Decayed
    } else {
        return None;
    };
    let level_change =
        (recomputed.level != stored.level).then_some((stored.level, recomputed.level));
    Some(RescorePlan {
        reason,
        heat: recomputed,
        state,
        level_change,
    })
}

/// Recomputes and plans a whole batch: `leads` in keyset order with their stored heat;
/// `history` the whole history of the leads that need a rebuild ([`StoredHeat::needs_rebuild`])
/// as `(lead key, touch)` rows in any order (one bulk read); `crossings` what was read for the
/// leads whose state asked for it ([`StoredHeat::crossing`]). A rebuilt lead gets exactly the
/// heat `score` gives it alone; the others move forward from their state.
///
/// A state that moved past pending touches is written even when its heat did not change, so
/// those touches are not read again.
pub fn plan_batch<K: Ord + Clone>(
    leads: &[(K, StoredHeat)],
    history: impl IntoIterator<Item = (K, Touch)>,
    crossings: &BTreeMap<K, CrossingRead>,
    config: &ScoringConfig,
    org_config_version: i64,
    now: DateTime<Utc>,
) -> Vec<(K, Option<RescorePlan>)> {
    let mut by_lead: BTreeMap<K, Vec<Touch>> = BTreeMap::new();
    for (key, touch) in history {
        by_lead.entry(key).or_default().push(touch);
    }
    let decay_on = config.decay_half_life_days.is_some();
    leads
        .iter()
        .map(|(key, stored)| {
            let plan = match stored.state {
                Some(state) if !stored.needs_rebuild(org_config_version) => {
                    let read = crossings.get(key);
                    let crossed = read.map(|read| Crossed {
                        touches: &read.touches,
                        next_pending_at: read.next_pending_at,
                    });
                    // Without the crossed touches the lead cannot move: left for the next run.
                    state.advance(config, now, crossed).ok().and_then(|moved| {
                        let value = moved.value(config, now);
                        let crossed_some = moved.pending_points != state.pending_points
                            || moved.next_pending_at != state.next_pending_at;
                        plan_lead(stored, org_config_version, decay_on, value, moved).or(
                            crossed_some.then_some(RescorePlan {
                                reason: RescoreReason::Decayed,
                                heat: value,
                                state: moved,
                                level_change: None,
                            }),
                        )
                    })
                }
                _ => {
                    let own = by_lead.get(key).map(Vec::as_slice).unwrap_or(&[]);
                    plan_lead(
                        stored,
                        org_config_version,
                        decay_on,
                        score(own, config, now).value(),
                        HeatState::from_touches(own, config, now),
                    )
                }
            };
            (key.clone(), plan)
        })
        .collect()
}

/// One keyset step over two id-ordered streams of candidate leads (the flagged leads, and with
/// decay on every lead scored under the current config), both read with `id > cursor LIMIT
/// batch_size`. Returns the ids of this batch (merged, deduplicated, at most `batch_size`) and
/// whether the pass is complete after it.
///
/// The pass is complete when neither stream had more rows than were taken: a stream that filled
/// its `LIMIT` may have more beyond it.
pub fn merge_keyset(
    flagged: &[String],
    current: &[String],
    batch_size: usize,
) -> (Vec<String>, bool) {
    let mut merged: Vec<&String> = flagged.iter().chain(current.iter()).collect();
    merged.sort();
    merged.dedup();
    let batch: Vec<String> = merged
        .iter()
        .take(batch_size)
        .map(|id| (*id).clone())
        .collect();
    let took_everything = batch.len() == merged.len();
    let streams_exhausted = flagged.len() < batch_size && current.len() < batch_size;
    // Ids beyond the last taken one stay for the next batch; if a stream filled its LIMIT, its
    // next rows may sort before the other stream's leftovers, so only "both short and all taken"
    // ends the pass.
    (batch, took_everything && streams_exhausted)
}

/// The UTC day a nightly run's snapshots are stored under: the day of the scheduled time.
pub fn snapshot_day(now: DateTime<Utc>) -> NaiveDate {
    now.date_naive()
}

/// The days whose snapshots feed `day`'s trend: 7 and 14 days before.
pub fn trend_days(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    (day - Duration::days(7), day - Duration::days(14))
}

/// A lead's trend on `day` from its current score and whatever snapshots it has on the two trend
/// days (`snapshots`: `(day, score)` pairs, any order, others ignored).
pub fn trend_on(day: NaiveDate, score_now: f64, snapshots: &[(NaiveDate, f64)]) -> f64 {
    let (week_ago, two_weeks_ago) = trend_days(day);
    let at = |wanted: NaiveDate| {
        snapshots
            .iter()
            .find(|(d, _)| *d == wanted)
            .map(|(_, s)| *s)
    };
    trend(score_now, at(week_ago), at(two_weeks_ago))
}

/// Snapshots of days strictly before this one are pruned (`retention_days` days are kept,
/// `day` included). A non-positive retention keeps only `day`.
pub fn retention_cutoff(day: NaiveDate, retention_days: i64) -> NaiveDate {
    let keep = retention_days.max(1);
    day - Duration::days(keep - 1)
}

/// The retention from the optional `SCORING_SNAPSHOT_RETENTION_DAYS` variable.
pub fn retention_days_from_var(value: Option<&str>) -> i64 {
    value
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|days| *days >= 1)
        .unwrap_or(DEFAULT_SNAPSHOT_RETENTION_DAYS)
}

/// What one run did: logged as one JSON line and stored in its `job_runs` row.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunSummary {
    pub job: &'static str,
    pub kind: Option<RunKind>,
    pub cron: String,
    pub scheduled_time: String,
    /// `acquired`, or `busy` when another run held the lease (this run then did nothing).
    pub lease: &'static str,
    pub orgs: u64,
    pub leads_examined: u64,
    pub rescored: u64,
    /// Guarded writes that lost to a concurrent write (those leads are left for the next run).
    pub conflicts: u64,
    pub level_changes: u64,
    pub batches: u64,
    pub snapshots: u64,
    /// Set when this run worked on a day's snapshot pass: the day, where it stopped (the shard,
    /// walked in index order, and the lead cursor on it) and whether the pass is complete (a
    /// frequent run continues an incomplete one).
    pub snapshot_day: Option<String>,
    pub snapshot_shard: Option<u32>,
    pub snapshot_cursor: Option<String>,
    pub snapshots_finished: Option<bool>,
    pub snapshots_pruned: u64,
    pub errors: u64,
    pub elapsed_ms: i64,
    /// True when no work is left; false when the next run resumes (budget spent, or busy).
    pub finished: bool,
    pub will_resume: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::InteractionType::*;
    use chrono::TimeZone;

    #[test]
    fn rescore_run_statuses_round_trip_and_only_unfinished_ones_are_active() {
        crate::types::assert_wire_round_trip(
            RescoreRunStatus::ALL,
            RescoreRunStatus::WIRE_NAMES,
            RescoreRunStatus::as_str,
        );
        assert_eq!(RescoreRunStatus::WIRE_NAMES, ["queued", "running", "done"]);
        let active: Vec<_> = RescoreRunStatus::ALL
            .iter()
            .filter(|status| status.is_active())
            .collect();
        assert_eq!(
            active,
            [&RescoreRunStatus::Queued, &RescoreRunStatus::Running]
        );
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 8, 0, 5, 0).unwrap()
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn stored(score: f64, level: HeatLevel, flagged: bool, version: i64) -> StoredHeat {
        StoredHeat {
            score,
            level,
            needs_rescore: flagged,
            scored_config_version: version,
            state: Some(HeatState::empty(now())),
        }
    }

    fn heat(score: f64, level: HeatLevel) -> HeatValue {
        HeatValue { score, level }
    }

    /// [`plan_lead`] with a state the decision does not look at.
    fn decide(
        stored: &StoredHeat,
        version: i64,
        decay_on: bool,
        recomputed: HeatValue,
    ) -> Option<RescorePlan> {
        plan_lead(
            stored,
            version,
            decay_on,
            recomputed,
            HeatState::empty(now()),
        )
    }

    #[test]
    fn crons_are_told_apart_by_expression() {
        assert_eq!(RunKind::from_cron("5 0 * * *"), RunKind::Nightly);
        assert_eq!(RunKind::from_cron(" 5  0 * * * "), RunKind::Nightly);
        assert_eq!(RunKind::from_cron("*/15 * * * *"), RunKind::Frequent);
        assert_eq!(RunKind::from_cron(""), RunKind::Frequent);
        assert_eq!(RunKind::from_cron("5 1 * * *"), RunKind::Frequent);
    }

    #[test]
    fn budget_from_vars() {
        assert_eq!(Budget::from_vars(None, None), Budget::default());
        assert_eq!(
            Budget::from_vars(Some("2"), Some("1")),
            Budget {
                batch_size: 2,
                batches_per_run: 1
            }
        );
        assert_eq!(Budget::from_vars(Some(""), Some("x")), Budget::default());
        assert_eq!(
            Budget::from_vars(Some("0"), Some("100000")),
            Budget {
                batch_size: 1,
                batches_per_run: MAX_BATCHES_PER_RUN
            }
        );
        assert_eq!(
            Budget::from_vars(Some("99999"), None).batch_size,
            MAX_BATCH_SIZE
        );
        assert_eq!(Budget::default().snapshot_batches(), 20);
    }

    #[test]
    fn flagged_leads_are_always_written() {
        // Even when nothing moved: the write clears the flag and records the version.
        let plan = decide(
            &stored(4.0, HeatLevel::Cold, true, 3),
            3,
            false,
            heat(4.0, HeatLevel::Cold),
        )
        .unwrap();
        assert_eq!(plan.reason, RescoreReason::Flagged);
        assert_eq!(plan.level_change, None);
    }

    #[test]
    fn an_older_config_version_means_a_rescore() {
        let plan = decide(
            &stored(4.0, HeatLevel::Cold, false, 1),
            2,
            false,
            heat(8.0, HeatLevel::Warm),
        )
        .unwrap();
        assert_eq!(plan.reason, RescoreReason::ConfigChanged);
        assert_eq!(plan.level_change, Some((HeatLevel::Cold, HeatLevel::Warm)));
        // Never scored by the job (version 0) counts as older.
        assert!(decide(
            &stored(0.0, HeatLevel::Cold, false, 0),
            1,
            false,
            heat(0.0, HeatLevel::Cold)
        )
        .is_some());
    }

    #[test]
    fn decay_rescoring_only_when_the_score_or_level_moved() {
        let current = stored(18.0, HeatLevel::Hot, false, 2);
        assert_eq!(decide(&current, 2, true, heat(18.0, HeatLevel::Hot)), None);
        let plan = decide(&current, 2, true, heat(17.5, HeatLevel::Hot)).unwrap();
        assert_eq!(plan.reason, RescoreReason::Decayed);
        assert_eq!(plan.level_change, None);
        let plan = decide(&current, 2, true, heat(9.0, HeatLevel::Warm)).unwrap();
        assert_eq!(plan.level_change, Some((HeatLevel::Hot, HeatLevel::Warm)));
        // A level that moves alone (thresholds unchanged but a stale level) is rewritten too.
        let plan = decide(
            &stored(18.0, HeatLevel::Warm, false, 2),
            2,
            true,
            heat(18.0, HeatLevel::Hot),
        )
        .unwrap();
        assert_eq!(plan.level_change, Some((HeatLevel::Warm, HeatLevel::Hot)));
    }

    #[test]
    fn without_decay_an_up_to_date_lead_is_left_alone() {
        // Even if a recomputation differed (e.g. a touch being inserted right now), the lead is
        // only rewritten through its flag or version: the inserting path scores it itself.
        let current = stored(4.0, HeatLevel::Cold, false, 2);
        assert_eq!(decide(&current, 2, false, heat(6.0, HeatLevel::Warm)), None);
    }

    #[test]
    fn plan_batch_groups_touches_by_lead() {
        let config = ScoringConfig::default();
        let leads = vec![
            ("a", stored(0.0, HeatLevel::Cold, true, 1)),
            ("b", stored(0.0, HeatLevel::Cold, true, 1)),
            ("c", stored(0.0, HeatLevel::Cold, true, 1)),
        ];
        let touches = vec![
            ("b", Touch::new(PriceQuote, now())),
            ("a", Touch::new(SiteVisit, now())),
            ("b", Touch::new(SiteVisit, now())),
            ("zzz", Touch::new(SiteVisit, now())), // a lead outside the batch is ignored
        ];
        let plans = plan_batch(&leads, touches, &BTreeMap::new(), &config, 1, now());
        type Row<'a> = (&'a str, f64, Option<(HeatLevel, HeatLevel)>);
        let scores: Vec<Row> = plans
            .iter()
            .map(|(k, p)| {
                let p = p.as_ref().unwrap();
                (*k, p.heat.score, p.level_change)
            })
            .collect();
        assert_eq!(
            scores,
            [
                ("a", 10.0, Some((HeatLevel::Cold, HeatLevel::Warm))),
                ("b", 18.0, Some((HeatLevel::Cold, HeatLevel::Hot))),
                ("c", 0.0, None),
            ]
        );
    }

    fn ids(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn merge_keyset_takes_the_smallest_ids_of_both_streams() {
        let (batch, done) = merge_keyset(&ids(&["a", "c"]), &ids(&["b", "c"]), 2);
        assert_eq!(batch, ids(&["a", "b"]));
        assert!(!done, "both streams filled their limit");

        let (batch, done) = merge_keyset(&ids(&["a"]), &ids(&["b"]), 3);
        assert_eq!(batch, ids(&["a", "b"]));
        assert!(done);

        // Both streams short, but together more than a batch: one more step is needed.
        let (batch, done) = merge_keyset(&ids(&["a", "c"]), &ids(&["b", "d"]), 3);
        assert_eq!(batch, ids(&["a", "b", "c"]));
        assert!(!done);

        let (batch, done) = merge_keyset(&[], &[], 5);
        assert!(batch.is_empty());
        assert!(done);

        // One stream full: not done even if everything fetched was taken.
        let (batch, done) = merge_keyset(&ids(&["a", "b"]), &[], 2);
        assert_eq!(batch, ids(&["a", "b"]));
        assert!(!done);
    }

    #[test]
    fn snapshot_trend_and_retention_days() {
        assert_eq!(snapshot_day(now()), day(2026, 3, 8));
        assert_eq!(
            snapshot_day(Utc.with_ymd_and_hms(2026, 3, 8, 23, 59, 59).unwrap()),
            day(2026, 3, 8)
        );
        assert_eq!(
            trend_days(day(2026, 3, 8)),
            (day(2026, 3, 1), day(2026, 2, 22))
        );
        // Across a month and a leap day.
        assert_eq!(
            trend_days(day(2028, 3, 1)),
            (day(2028, 2, 23), day(2028, 2, 16))
        );
        assert_eq!(retention_cutoff(day(2026, 3, 8), 1), day(2026, 3, 8));
        assert_eq!(retention_cutoff(day(2026, 3, 8), 400), day(2025, 2, 2));
        assert_eq!(retention_cutoff(day(2026, 3, 8), 0), day(2026, 3, 8));
        assert_eq!(retention_days_from_var(None), 400);
        assert_eq!(retention_days_from_var(Some("30")), 30);
        assert_eq!(retention_days_from_var(Some("0")), 400);
    }

    #[test]
    fn trend_on_picks_the_7_and_14_day_snapshots() {
        let today = day(2026, 3, 15);
        let snapshots = [
            (day(2026, 3, 8), 10.0),
            (day(2026, 3, 1), 2.0),
            (day(2026, 3, 14), 99.0), // yesterday: not a trend input
        ];
        assert_eq!(trend_on(today, 25.0, &snapshots), 7.0); // (25-10) - (10-2)
        assert_eq!(trend_on(today, 25.0, &snapshots[..1]), 15.0);
        assert_eq!(trend_on(today, 25.0, &snapshots[1..]), 0.0);
        assert_eq!(trend_on(today, 25.0, &[]), 0.0);
    }

    #[test]
    fn summary_serializes_flat() {
        let summary = RunSummary {
            job: "scoring",
            kind: Some(RunKind::Nightly),
            lease: "acquired",
            finished: true,
            ..RunSummary::default()
        };
        let value = serde_json::to_value(&summary).unwrap();
        assert_eq!(value["kind"], "nightly");
        assert_eq!(value["leads_examined"], 0);
        assert_eq!(value["finished"], true);
        // The snapshot position is null until a run works on a pass.
        assert!(value["snapshot_shard"].is_null());
        let resumed = RunSummary {
            snapshot_day: Some("2026-03-08".into()),
            snapshot_shard: Some(1),
            snapshot_cursor: Some("lead_x".into()),
            snapshots_finished: Some(false),
            ..summary
        };
        let value = serde_json::to_value(&resumed).unwrap();
        assert_eq!(value["snapshot_shard"], 1);
        assert_eq!(value["snapshot_cursor"], "lead_x");
    }

    mod properties {
        use super::*;
        use crate::types::InteractionType;
        use proptest::prelude::*;
        use proptest::sample::select;
        use std::collections::BTreeSet;

        fn base() -> DateTime<Utc> {
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
        }

        fn any_touch() -> impl Strategy<Value = Touch> {
            (select(InteractionType::ALL), 0i64..(90 * 86_400_000))
                .prop_map(|(kind, ms)| Touch::new(kind, base() + Duration::milliseconds(ms)))
        }

        fn any_config() -> impl Strategy<Value = ScoringConfig> {
            (
                proptest::collection::btree_map(select(InteractionType::ALL), -20i64..=20, 0..8),
                prop_oneof![Just(None), (0.5f64..60.0).prop_map(Some)],
            )
                .prop_map(|(weights, decay_half_life_days)| ScoringConfig {
                    weights,
                    decay_half_life_days,
                    ..ScoringConfig::default()
                })
        }

        proptest! {
            /// A batch gives every lead exactly the heat it gets scored alone, whatever the order
            /// of the bulk-read touch rows.
            #[test]
            fn batch_plans_equal_single_lead_scores(
                leads in proptest::collection::vec(proptest::collection::vec(any_touch(), 0..6), 0..8),
                config in any_config(),
                at_ms in 0i64..(120 * 86_400_000),
                reverse in any::<bool>(),
            ) {
                let now = base() + Duration::milliseconds(at_ms);
                let keyed: Vec<(usize, StoredHeat)> = (0..leads.len())
                    .map(|i| (i, StoredHeat { score: -1.0, level: HeatLevel::Cold, needs_rescore: true, scored_config_version: 0, state: None }))
                    .collect();
                let mut rows: Vec<(usize, Touch)> = leads
                    .iter()
                    .enumerate()
                    .flat_map(|(i, touches)| touches.iter().map(move |t| (i, *t)))
                    .collect();
                if reverse {
                    rows.reverse();
                }
                let plans = plan_batch(&keyed, rows, &BTreeMap::new(), &config, 1, now);
                prop_assert_eq!(plans.len(), leads.len());
                for (i, plan) in plans {
                    let plan = plan.expect("a flagged lead is always written");
                    prop_assert_eq!(plan.heat, score(&leads[i], &config, now).value());
                    // The state sums the same terms, in the order the rows came.
                    let alone = HeatState::from_touches(&leads[i], &config, now);
                    let weights: f64 = leads[i].iter().map(|t| config.weight(t.kind).unsigned_abs() as f64).sum();
                    prop_assert!((plan.state.points(&config, now) - alone.points(&config, now)).abs() <= 1e-9 * (1.0 + weights));
                }
            }

            /// With decay on, rescoring at a series of run times leaves exactly the score of
            /// rescoring once at the last of them (decay over a gap equals decay in steps), and a
            /// level change is recorded each time the level moves, never twice for one move.
            #[test]
            fn decay_in_steps_equals_decay_over_the_gap(
                touches in proptest::collection::vec(any_touch(), 1..6),
                half_life in 0.5f64..30.0,
                mut steps in proptest::collection::vec(0i64..(200 * 86_400_000), 1..6),
            ) {
                steps.sort();
                let config = ScoringConfig { decay_half_life_days: Some(half_life), ..ScoringConfig::default() };
                let mut stored = StoredHeat { score: 0.0, level: HeatLevel::Cold, needs_rescore: true, scored_config_version: 0, state: None };
                let mut changes = Vec::new();
                for ms in &steps {
                    let now = base() + Duration::milliseconds(*ms);
                    // What the job reads: the whole history for a rebuild, else the crossed
                    // touches its state asks for.
                    let history: Vec<(usize, Touch)> = if stored.needs_rebuild(1) {
                        touches.iter().map(|t| (0, *t)).collect()
                    } else {
                        Vec::new()
                    };
                    let mut crossings = BTreeMap::new();
                    if let Some(range) = stored.crossing(1, now) {
                        crossings.insert(0, CrossingRead {
                            touches: touches.iter().copied()
                                .filter(|t| range.after < t.occurred_at && t.occurred_at <= range.until)
                                .collect(),
                            next_pending_at: touches.iter().map(|t| t.occurred_at).filter(|at| *at > range.until).min(),
                        });
                    }
                    let leads = [(0, stored.clone())];
                    let plans = plan_batch(&leads, history, &crossings, &config, 1, now);
                    if let Some(plan) = &plans[0].1 {
                        if let Some(change) = plan.level_change {
                            changes.push(change);
                        }
                        stored = StoredHeat { score: plan.heat.score, level: plan.heat.level, needs_rescore: false, scored_config_version: 1, state: Some(plan.state) };
                    }
                }
                let last = base() + Duration::milliseconds(*steps.last().unwrap());
                let direct = score(&touches, &config, last).value();
                prop_assert_eq!(stored.score, direct.score);
                prop_assert_eq!(stored.level, direct.level);
                for pair in changes.windows(2) {
                    prop_assert_eq!(pair[0].1, pair[1].0, "changes chain");
                }
                for (old, new) in &changes {
                    prop_assert_ne!(old, new);
                }
                // And a further run at the same instant writes nothing.
                prop_assert_eq!(decide(&stored, 1, true, direct), None);
            }

            /// Walking two id streams batch by batch with one cursor visits the union of both,
            /// in order, each id once, and ends.
            #[test]
            fn keyset_walk_covers_both_streams_once(
                a in proptest::collection::btree_set("[a-f]{1,3}", 0..20),
                b in proptest::collection::btree_set("[a-f]{1,3}", 0..20),
                batch_size in 1usize..6,
            ) {
                let after = |set: &BTreeSet<String>, cursor: &str| -> Vec<String> {
                    set.iter().filter(|id| id.as_str() > cursor).take(batch_size).cloned().collect()
                };
                let mut cursor = String::new();
                let mut visited = Vec::new();
                for _ in 0..100 {
                    let (batch, done) = merge_keyset(&after(&a, &cursor), &after(&b, &cursor), batch_size);
                    prop_assert!(batch.len() <= batch_size);
                    visited.extend(batch.iter().cloned());
                    if let Some(last) = batch.last() {
                        cursor = last.clone();
                    }
                    if done {
                        break;
                    }
                    prop_assert!(!batch.is_empty(), "a step that is not the last makes progress");
                }
                let union: Vec<String> = a.union(&b).cloned().collect();
                prop_assert_eq!(visited, union);
            }
        }
    }
}
