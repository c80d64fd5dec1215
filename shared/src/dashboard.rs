//! Dashboard arithmetic: the reporting window, the window before it, how a figure changed
//! between the two, and the window's social engagement laid out day by day. The figures
//! themselves come from the per-org, per-UTC-day rollups at the edge (docs/dashboard.md), which is
//! why a window is made of whole UTC days.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde::Serialize;

use crate::types::{FieldError, Platform};

pub const DEFAULT_WINDOW_DAYS: i64 = 30;
pub const MAX_WINDOW_DAYS: i64 = 365;

/// How many leads each trending list shows.
pub const TRENDING_LIMIT: usize = 5;

/// A baseline snapshot may be this many days older than the window start and still count as the
/// score "at the start of the window" (the nightly job may have skipped a day).
pub const SNAPSHOT_TOLERANCE_DAYS: i64 = 7;

/// Parses `window_days` (default 30, 1 to 365 whole days).
pub fn parse_window_days(raw: Option<&str>) -> Result<i64, FieldError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_WINDOW_DAYS);
    };
    match raw.trim().parse::<i64>() {
        Ok(days) if (1..=MAX_WINDOW_DAYS).contains(&days) => Ok(days),
        _ => Err(FieldError::new(
            "window_days",
            format!("must be a whole number of days from 1 to {MAX_WINDOW_DAYS}"),
        )),
    }
}

/// The current window `[start, end]` and the previous one `[previous_start, start)`. Both are
/// whole UTC days: the current one starts at the midnight of the day `days` days before `end` and
/// runs through the end of `end`'s day (the rollups count by UTC day, so a touchpoint stamped
/// later today counts today); the previous one is the `days` days before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub days: i64,
    pub previous_start: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    pub fn ending_at(now: DateTime<Utc>, days: i64) -> Window {
        let start_day = (now - Duration::days(days)).date_naive();
        let start = start_day.and_time(NaiveTime::MIN).and_utc();
        Window {
            days,
            previous_start: start - Duration::days(days),
            start,
            end: now,
        }
    }

    /// The window's first UTC day; also the snapshot day holding the scores at its start.
    pub fn start_day(&self) -> NaiveDate {
        self.start.date_naive()
    }

    /// The previous window's first UTC day.
    pub fn previous_start_day(&self) -> NaiveDate {
        self.previous_start.date_naive()
    }

    /// The window's last UTC day (today).
    pub fn end_day(&self) -> NaiveDate {
        self.end.date_naive()
    }

    /// The oldest snapshot day accepted as the window start's baseline.
    pub fn earliest_baseline_day(&self) -> NaiveDate {
        self.start_day() - Duration::days(SNAPSHOT_TOLERANCE_DAYS)
    }

    /// Every UTC day of the window, oldest first: `days + 1` of them, the `days` whole days before
    /// today and today.
    pub fn utc_days(&self) -> impl Iterator<Item = NaiveDate> {
        let last_day = self.end.date_naive();
        self.start_day()
            .iter_days()
            .take_while(move |day| *day <= last_day)
    }
}

/// The social touchpoints of one UTC day of the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngagementDay {
    pub day: NaiveDate,
    /// One count per social platform, in `Platform::ALL` order, zeros included.
    pub by_platform: Vec<(Platform, i64)>,
}

impl EngagementDay {
    pub fn total(&self) -> i64 {
        self.by_platform.iter().map(|(_, n)| n).sum()
    }
}

/// The window's social engagement as a series: one entry per UTC day of the window (oldest first),
/// each listing every social platform. `counts` are `(day, platform, touchpoints)` as aggregated
/// by the store; a day or platform without a count is zero, repeated pairs add up, and counts
/// outside the window's days or on a non-social platform are ignored (the store's query selects
/// none, so the series sums to the window's totals).
pub fn engagement_by_day(
    window: &Window,
    counts: impl IntoIterator<Item = (NaiveDate, Platform, i64)>,
) -> Vec<EngagementDay> {
    let social: Vec<Platform> = Platform::ALL
        .iter()
        .copied()
        .filter(|platform| platform.is_social())
        .collect();
    let mut series: Vec<EngagementDay> = window
        .utc_days()
        .map(|day| EngagementDay {
            day,
            by_platform: social.iter().map(|platform| (*platform, 0)).collect(),
        })
        .collect();
    let first_day = window.start_day();
    for (day, platform, n) in counts {
        // Days are consecutive, so a day's entry sits at its distance from the first day.
        let Ok(index) = usize::try_from((day - first_day).num_days()) else {
            continue;
        };
        let Some(entry) = series.get_mut(index) else {
            continue;
        };
        if let Some((_, count)) = entry.by_platform.iter_mut().find(|(p, _)| *p == platform) {
            *count += n;
        }
    }
    series
}

/// A figure of this window against the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Change {
    pub value: i64,
    pub previous: i64,
    /// `value - previous`.
    pub change: i64,
    /// The change in percent of `previous`, rounded to one decimal; `null` when `previous` is 0.
    pub change_pct: Option<f64>,
}

pub fn change(value: i64, previous: i64) -> Change {
    let delta = value - previous;
    let change_pct = if previous == 0 {
        None
    } else {
        Some((delta as f64 * 1000.0 / previous as f64).round() / 10.0)
    };
    Change {
        value,
        previous,
        change: delta,
        change_pct,
    }
}

/// Days of daily rollups a rebuild recomputes per transaction: a month of an org's touchpoints
/// per statement, so no statement holds the shard for long.
pub const REBUILD_CHUNK_DAYS: i64 = 31;

/// Ranges a rebuild walks at most, so one invocation stays within D1's query limit (each range
/// is a handful of statements); a longer history gets longer ranges.
pub const MAX_REBUILD_RANGES: i64 = 150;

/// The day ranges `[from, until)` that cover `first..=last`, oldest first: `REBUILD_CHUNK_DAYS`
/// long, or longer when that would make more than `MAX_REBUILD_RANGES` of them.
pub fn rebuild_ranges(first: NaiveDate, last: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
    if last < first {
        return Vec::new();
    }
    let span = (last - first).num_days() + 1;
    let chunk = REBUILD_CHUNK_DAYS.max((span + MAX_REBUILD_RANGES - 1) / MAX_REBUILD_RANGES);
    let mut ranges = Vec::new();
    let mut from = first;
    while from <= last {
        let until = from + Duration::days(chunk);
        ranges.push((from, until));
        from = until;
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn window_days_default_and_bounds() {
        assert_eq!(parse_window_days(None), Ok(30));
        assert_eq!(parse_window_days(Some("7")), Ok(7));
        assert_eq!(parse_window_days(Some("365")), Ok(365));
        for bad in ["0", "366", "-1", "7.5", "x", ""] {
            assert_eq!(
                parse_window_days(Some(bad)).unwrap_err().field,
                "window_days",
                "{bad}"
            );
        }
    }

    #[test]
    fn windows_are_adjacent_and_equal() {
        let now = Utc.with_ymd_and_hms(2026, 3, 31, 10, 0, 0).unwrap();
        let w = Window::ending_at(now, 30);
        // Whole UTC days: the window starts at the midnight 30 days before today.
        assert_eq!(w.start, Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap());
        assert_eq!(
            w.previous_start,
            Utc.with_ymd_and_hms(2026, 1, 30, 0, 0, 0).unwrap()
        );
        assert_eq!(w.end, now);
        assert_eq!(w.start_day().to_string(), "2026-03-01");
        assert_eq!(w.previous_start_day().to_string(), "2026-01-30");
        assert_eq!(w.end_day().to_string(), "2026-03-31");
        assert_eq!(w.earliest_baseline_day().to_string(), "2026-02-22");
        // A window ending just before midnight has the same days.
        let late = Utc.with_ymd_and_hms(2026, 3, 31, 23, 59, 59).unwrap();
        assert_eq!(Window::ending_at(late, 30).start, w.start);
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn platform_counts(entry: &EngagementDay) -> Vec<(&'static str, i64)> {
        entry
            .by_platform
            .iter()
            .map(|(platform, n)| (platform.as_str(), *n))
            .collect()
    }

    #[test]
    fn a_window_covers_every_day_through_today() {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 10, 30, 0).unwrap();
        let days: Vec<String> = Window::ending_at(now, 3)
            .utc_days()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            days,
            ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26"]
        );
        // At midnight the window ends at the first instant of its last day, which it includes.
        let midnight = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let w = Window::ending_at(midnight, 30);
        assert_eq!(w.utc_days().count(), 31);
        assert_eq!(w.utc_days().last(), Some(day("2026-03-01")));
        // Across a month end and a leap day, still one entry per day.
        let leap = Utc.with_ymd_and_hms(2028, 3, 2, 12, 0, 0).unwrap();
        let days: Vec<String> = Window::ending_at(leap, 2)
            .utc_days()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(days, ["2028-02-29", "2028-03-01", "2028-03-02"]);
        assert_eq!(
            Window::ending_at(now, MAX_WINDOW_DAYS).utc_days().count(),
            366
        );
    }

    #[test]
    fn engagement_by_day_fills_every_day_and_platform_with_zeros() {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 10, 30, 0).unwrap();
        let w = Window::ending_at(now, 4);
        let series = engagement_by_day(
            &w,
            [
                (day("2026-11-22"), Platform::Facebook, 3),
                (day("2026-11-22"), Platform::Linkedin, 1),
                (day("2026-11-26"), Platform::Instagram, 2),
            ],
        );
        let days: Vec<String> = series.iter().map(|e| e.day.to_string()).collect();
        assert_eq!(
            days,
            [
                "2026-11-22",
                "2026-11-23",
                "2026-11-24",
                "2026-11-25",
                "2026-11-26"
            ]
        );
        assert_eq!(
            platform_counts(&series[0]),
            [("facebook", 3), ("instagram", 0), ("linkedin", 1)]
        );
        assert_eq!(series[0].total(), 4);
        for quiet in &series[1..4] {
            assert_eq!(
                platform_counts(quiet),
                [("facebook", 0), ("instagram", 0), ("linkedin", 0)]
            );
            assert_eq!(quiet.total(), 0);
        }
        assert_eq!(
            platform_counts(&series[4]),
            [("facebook", 0), ("instagram", 2), ("linkedin", 0)]
        );
    }

    #[test]
    fn engagement_by_day_of_a_quiet_window_is_all_zeros() {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap();
        let series = engagement_by_day(&Window::ending_at(now, 30), []);
        assert_eq!(series.len(), 31);
        assert_eq!(series[0].day, day("2026-10-27"));
        assert!(series
            .iter()
            .all(|e| e.total() == 0 && e.by_platform.len() == 3));
    }

    #[test]
    fn engagement_by_day_adds_repeats_and_ignores_what_is_outside_the_window() {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 10, 30, 0).unwrap();
        let series = engagement_by_day(
            &Window::ending_at(now, 1),
            [
                (day("2026-11-25"), Platform::Facebook, 2),
                (day("2026-11-25"), Platform::Facebook, 5),
                (day("2026-11-24"), Platform::Facebook, 100),
                (day("2026-11-27"), Platform::Linkedin, 100),
                (day("2026-11-26"), Platform::Website, 100),
            ],
        );
        assert_eq!(
            series
                .iter()
                .map(|e| (e.day.to_string(), platform_counts(e)))
                .collect::<Vec<_>>(),
            [
                (
                    "2026-11-25".to_string(),
                    vec![("facebook", 7), ("instagram", 0), ("linkedin", 0)]
                ),
                (
                    "2026-11-26".to_string(),
                    vec![("facebook", 0), ("instagram", 0), ("linkedin", 0)]
                ),
            ]
        );
    }

    #[test]
    fn rebuild_ranges_cover_every_day_once() {
        let ranges = rebuild_ranges(day("2026-01-15"), day("2026-03-20"));
        assert_eq!(
            ranges,
            [
                (day("2026-01-15"), day("2026-02-15")),
                (day("2026-02-15"), day("2026-03-18")),
                (day("2026-03-18"), day("2026-04-18")),
            ]
        );
        assert_eq!(
            rebuild_ranges(day("2026-01-15"), day("2026-01-15")),
            [(day("2026-01-15"), day("2026-02-15"))]
        );
        assert!(rebuild_ranges(day("2026-01-15"), day("2026-01-14")).is_empty());
        // Fifty years of history: longer ranges, no more than the cap, still contiguous.
        let long = rebuild_ranges(day("2000-01-01"), day("2049-12-31"));
        assert!(long.len() as i64 <= MAX_REBUILD_RANGES, "{}", long.len());
        assert_eq!(long[0].0, day("2000-01-01"));
        assert!(long.last().unwrap().1 > day("2049-12-31"));
        assert!(long.windows(2).all(|pair| pair[0].1 == pair[1].0));
    }

    #[test]
    fn changes() {
        assert_eq!(
            change(12, 8),
            Change {
                value: 12,
                previous: 8,
                change: 4,
                change_pct: Some(50.0)
            }
        );
        assert_eq!(change(2, 3).change_pct, Some(-33.3));
        assert_eq!(change(5, 0).change_pct, None);
        assert_eq!(change(0, 0).change, 0);
    }
}
