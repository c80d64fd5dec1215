//! Dashboard arithmetic: the reporting window, the window before it, and how a figure changed
//! between the two. The figures themselves come from aggregate SQL at the edge.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use crate::types::FieldError;

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

/// The current window `[start, end]` and the previous one `[previous_start, start)`, equally long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub days: i64,
    pub previous_start: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    pub fn ending_at(now: DateTime<Utc>, days: i64) -> Window {
        let start = now - Duration::days(days);
        Window {
            days,
            previous_start: start - Duration::days(days),
            start,
            end: now,
        }
    }

    /// The snapshot day (UTC date) holding the scores at the window start.
    pub fn start_day(&self) -> NaiveDate {
        self.start.date_naive()
    }

    /// The oldest snapshot day accepted as the window start's baseline.
    pub fn earliest_baseline_day(&self) -> NaiveDate {
        self.start_day() - Duration::days(SNAPSHOT_TOLERANCE_DAYS)
    }
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
        assert_eq!(w.start, Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap());
        assert_eq!(
            w.previous_start,
            Utc.with_ymd_and_hms(2026, 1, 30, 10, 0, 0).unwrap()
        );
        assert_eq!(w.end, now);
        assert_eq!(w.start_day().to_string(), "2026-03-01");
        assert_eq!(w.earliest_baseline_day().to_string(), "2026-02-22");
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
