//! The social sync's reliability rules, as pure functions of (state, outcome, now, randomness):
//!
//! - the life cycle of an inbox event ([`claim`], [`next_status`]): every claim counts an attempt
//!   before the work starts, retries with exponential backoff and jitter, dead after
//!   [`Policy::max_attempts`] (also when no attempt ever finished), waits that do not count;
//! - the per (org, platform) throttle and circuit breaker ([`Throttle`]): platform throttle answers
//!   block calls until the platform says, and a platform that keeps failing opens a circuit;
//! - reading the platforms' answers ([`classify_meta`], [`classify_linkedin`]): Meta's
//!   `X-App-Usage` / `X-Business-Use-Case-Usage` headers and error codes, LinkedIn's 429;
//! - the consumer's D1 query budget per invocation ([`QueryBudget`]).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::delivery::MAX_EVENTS_PER_PART;
use crate::types::wire_enum;

wire_enum! {
    /// Where a `webhook_inbox` row is in its life cycle ([`claim`], [`next_status`]).
    pub enum InboxStatus, described as "inbox status" {
        /// Waiting to be processed (first time, or a retry due at its next attempt).
        Pending => "pending",
        /// Claimed by a consumer, under a lease.
        Processing => "processing",
        /// Every event of it is applied.
        Processed => "processed",
        /// Its account was disconnected before it was processed.
        Ignored => "ignored",
        /// Out of attempts, or it cannot succeed; replayable (back to pending).
        Dead => "dead",
    }
}

impl InboxStatus {
    /// Not finished yet: waiting or being processed (the status page counts these as pending).
    pub const fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Processing)
    }

    /// Finished for good: retention may prune it and erasure may tombstone its body.
    pub const fn is_finished(self) -> bool {
        matches!(self, Self::Processed | Self::Ignored)
    }
}

wire_enum! {
    /// The state of an org's connection to a platform (its `integrations` row).
    pub enum IntegrationStatus, described as "integration status" {
        /// A token is set and events are applied.
        Connected => "connected",
        /// The platform rejected the token: events wait for a new one.
        NeedsToken => "needs_token",
        /// The org disconnected the platform: its token is forgotten, its events ignored.
        Disconnected => "disconnected",
    }
}

/// The knobs of the reliability rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Attempts (calls that failed) before an event is dead.
    pub max_attempts: u32,
    /// The first retry's delay; doubled for each further attempt.
    pub base_delay: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
    /// How long a consumer owns an event it claimed; an expired lease is reclaimed.
    pub lease: Duration,
    /// Consecutive failures of a platform (for one org) that open the circuit.
    pub circuit_threshold: u32,
    /// How long an open circuit pauses calls before one probe call decides.
    pub circuit_cooldown: Duration,
    /// When the platform throttles without saying for how long.
    pub default_throttle: Duration,
    /// Usage (percent of the quota) from which calls pause before the platform throttles.
    pub usage_pause_percent: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_attempts: 8,
            base_delay: Duration::seconds(30),
            max_delay: Duration::hours(6),
            lease: Duration::seconds(60),
            circuit_threshold: 5,
            circuit_cooldown: Duration::minutes(5),
            default_throttle: Duration::minutes(15),
            usage_pause_percent: 95.0,
        }
    }
}

/// What claiming a due event does. The claim is where attempts are counted: an attempt whose work
/// never finishes (the isolate crashed, hit a platform limit or outlived its lease, so
/// [`next_status`] never ran) has still been counted, so an event that keeps killing its consumer
/// cannot be claimed forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Process it as attempt `attempt` (counted now), leased for [`Policy::lease`].
    Process { attempt: u32 },
    /// Every attempt is used: the event is dead (replayable) without another try.
    GiveUp { last_error: String },
}

/// What claiming an event does, given the attempts its earlier claims counted.
pub fn claim(policy: &Policy, attempts: u32) -> Claim {
    if attempts >= policy.max_attempts {
        Claim::GiveUp {
            last_error: policy.gave_up_unfinished(),
        }
    } else {
        Claim::Process {
            attempt: attempts + 1,
        }
    }
}

impl Policy {
    /// The last error of an event given up at its claim. The store writes it in the same
    /// conditional update as the claim; this is its text.
    pub fn gave_up_unfinished(&self) -> String {
        format!(
            "gave up after {} attempts: the last one never finished (the consumer stopped before \
             recording an outcome: a crash, a limit or an expired lease)",
            self.max_attempts
        )
    }
}

/// What one processing attempt of an event came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every event of the delivery is applied.
    Ok,
    /// A failure that may pass (5xx, timeout, network); `retry_after` when the platform said.
    Transient {
        error: String,
        retry_after: Option<DateTime<Utc>>,
    },
    /// The platform throttled us: no call before `until`. Does not count as an attempt.
    RateLimited { error: String, until: DateTime<Utc> },
    /// Calls are paused (throttle or open circuit) and none was made. Not an attempt.
    Deferred {
        reason: String,
        until: DateTime<Utc>,
    },
    /// Retrying cannot help (invalid request, unknown object, malformed body).
    Permanent(String),
    /// The org's access token is invalid or expired (Meta code 190, LinkedIn 401).
    TokenInvalid(String),
}

/// Where an event goes after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Processed,
    /// Back to pending, due at `next_attempt_at`. `counted` is false when no call was made
    /// (the claim's attempt is given back).
    Retry {
        next_attempt_at: DateTime<Utc>,
        last_error: String,
        counted: bool,
    },
    /// Out of attempts, or cannot succeed: kept with its last error, replayable.
    Dead {
        last_error: String,
    },
}

/// The backoff before attempt `attempts + 1`: `base * 2^(attempts-1)` capped at `max`, with
/// "equal jitter" (half fixed, half random from `jitter`) so retries of many events spread out.
pub fn backoff(policy: &Policy, attempts: u32, jitter: [u8; 4]) -> Duration {
    let exponent = attempts.saturating_sub(1).min(30);
    let base_ms = policy.base_delay.num_milliseconds().max(1);
    let max_ms = policy.max_delay.num_milliseconds().max(base_ms);
    let delay = base_ms.saturating_mul(1i64 << exponent).min(max_ms);
    let half = delay / 2;
    let random = u32::from_le_bytes(jitter) as i64;
    Duration::milliseconds(delay - half + random % (half + 1))
}

/// The event's next state after an attempt. `attempts` counts this attempt (the claim counted it).
pub fn next_status(
    policy: &Policy,
    attempts: u32,
    outcome: &Outcome,
    now: DateTime<Utc>,
    jitter: [u8; 4],
) -> Next {
    match outcome {
        Outcome::Ok => Next::Processed,
        Outcome::Permanent(error) => Next::Dead {
            last_error: error.clone(),
        },
        Outcome::TokenInvalid(error) => Next::Dead {
            last_error: format!("token invalid: {error}"),
        },
        Outcome::RateLimited { error, until } => Next::Retry {
            next_attempt_at: (*until).max(now),
            last_error: error.clone(),
            counted: false,
        },
        Outcome::Deferred { reason, until } => Next::Retry {
            next_attempt_at: (*until).max(now),
            last_error: reason.clone(),
            counted: false,
        },
        Outcome::Transient { error, retry_after } => {
            if attempts >= policy.max_attempts {
                return Next::Dead {
                    last_error: format!("{error} (gave up after {attempts} attempts)"),
                };
            }
            let backed_off = now + backoff(policy, attempts, jitter);
            Next::Retry {
                next_attempt_at: retry_after.map_or(backed_off, |after| after.max(backed_off)),
                last_error: error.clone(),
                counted: true,
            }
        }
    }
}

/// How many D1 queries one invocation of the sync consumer may send, and the rule that keeps it
/// under them. D1 allows 1,000 queries per Worker invocation on the paid plan (every statement of
/// a batch counts); past it, every further query of the invocation fails, so events would fail
/// midway and burn attempts.
///
/// The consumer checks the budget before it claims each message (an inbox row): when the queries
/// used so far plus [`QueryBudget::RESERVE`], the most one row may cost, would exceed the limit,
/// it puts that message and the rest of the batch back on the queue unclaimed, so they count no
/// attempt. A row holds at most [`MAX_EVENTS_PER_PART`] events (the webhook worker splits larger
/// deliveries), which is what bounds the reserve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryBudget {
    /// Queries one invocation may use.
    pub limit: u32,
}

impl Default for QueryBudget {
    fn default() -> Self {
        QueryBudget {
            limit: QueryBudget::DEFAULT_LIMIT,
        }
    }
}

impl QueryBudget {
    /// D1's limit per Worker invocation on the paid plan: no setting may exceed it.
    pub const D1_LIMIT: u32 = 1000;
    /// The default budget: D1's limit less a margin for estimates that prove low.
    pub const DEFAULT_LIMIT: u32 = 900;
    /// The most queries one row costs besides its events: the claim, resolving the org and the
    /// integration (up to 4), and recording the outcome (2). Measured: 5 for a row whose org was
    /// known at receipt (`tests/tests/sync_budget.rs`).
    pub const ROW_QUERIES: u32 = 10;
    /// The most queries one event costs. Measured (`tests/tests/sync_budget.rs`): 8 for a
    /// duplicate, 13 for a comment by a known person, 17 by a new person (the lead is created),
    /// 21 for a Facebook and 22 for a LinkedIn lead form creating its lead. The rest is margin for
    /// rarer paths: a concurrent create merged into an older lead, score writes that lose a race
    /// and are retried.
    pub const EVENT_QUERIES: u32 = 40;
    /// The most one message (one inbox row) may cost.
    pub const RESERVE: u32 = Self::ROW_QUERIES + MAX_EVENTS_PER_PART as u32 * Self::EVENT_QUERIES;
    /// How long a message put back for the budget waits in the queue before it is delivered again.
    pub const RETRY_DELAY_SECONDS: u32 = 1;

    /// From the `SYNC_QUERY_BUDGET` variable: unset, empty or unparsable values take the default;
    /// values are clamped to `1..=D1_LIMIT`.
    pub fn from_var(value: Option<&str>) -> QueryBudget {
        let limit = value
            .and_then(|v| v.trim().parse::<u32>().ok())
            .map_or(Self::DEFAULT_LIMIT, |v| v.clamp(1, Self::D1_LIMIT));
        QueryBudget { limit }
    }

    /// Whether the consumer may claim another message, having used `used` queries on the
    /// `started` messages it took so far in this invocation. The first message is always taken,
    /// so that a budget below the reserve still makes progress (one message per invocation).
    pub fn may_claim(&self, used: u32, started: u32) -> bool {
        started == 0 || used.saturating_add(Self::RESERVE) <= self.limit
    }
}

// Checked when the crate builds: the default budget holds a full row with as much again to spare
// (room for many light messages), under D1's limit.
const _: () = assert!(
    QueryBudget::RESERVE * 2 <= QueryBudget::DEFAULT_LIMIT
        && QueryBudget::DEFAULT_LIMIT < QueryBudget::D1_LIMIT
);

/// The throttle and circuit state of one (org, platform).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throttle {
    pub blocked_until: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    pub circuit_open_until: Option<DateTime<Utc>>,
}

/// Whether a call may be made now.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    Proceed,
    Wait {
        until: DateTime<Utc>,
        reason: String,
    },
}

/// The result of one call, for the throttle.
#[derive(Debug, Clone, PartialEq)]
pub enum CallResult {
    Success,
    /// The platform throttled: blocked until then (not a failure of the platform).
    Throttled {
        until: DateTime<Utc>,
    },
    /// Usage is near the quota: pause until then, although the call succeeded.
    SlowDown {
        until: DateTime<Utc>,
    },
    /// The platform failed (5xx, network): counts towards opening the circuit.
    Failure,
    /// The request was wrong (4xx): says nothing about the platform's health.
    Neutral,
}

impl Throttle {
    /// Calls wait for a throttle block or an open circuit; once the circuit's cool-down has passed,
    /// a call proceeds as the probe.
    pub fn gate(&self, now: DateTime<Utc>) -> Gate {
        if let Some(until) = self.circuit_open_until.filter(|until| *until > now) {
            return Gate::Wait {
                until,
                reason: format!(
                    "circuit open after {} consecutive failures",
                    self.consecutive_failures
                ),
            };
        }
        if let Some(until) = self.blocked_until.filter(|until| *until > now) {
            return Gate::Wait {
                until,
                reason: "rate limited by the platform".to_string(),
            };
        }
        Gate::Proceed
    }

    /// The state after a call.
    pub fn after(&self, policy: &Policy, result: &CallResult, now: DateTime<Utc>) -> Throttle {
        let mut next = self.clone();
        match result {
            CallResult::Success | CallResult::Neutral => {
                next.consecutive_failures = 0;
                next.circuit_open_until = None;
            }
            CallResult::SlowDown { until } => {
                next.consecutive_failures = 0;
                next.circuit_open_until = None;
                next.blocked_until = Some(later(self.blocked_until, *until));
            }
            CallResult::Throttled { until } => {
                next.blocked_until = Some(later(self.blocked_until, *until));
            }
            CallResult::Failure => {
                next.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if next.consecutive_failures >= policy.circuit_threshold {
                    next.circuit_open_until = Some(now + policy.circuit_cooldown);
                }
            }
        }
        next
    }
}

fn later(current: Option<DateTime<Utc>>, candidate: DateTime<Utc>) -> DateTime<Utc> {
    current.map_or(candidate, |c| c.max(candidate))
}

/// One platform answer, read: what the event's attempt came to, and what the throttle learns.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    /// `None` when the call succeeded (the caller goes on with the body).
    pub failure: Option<Outcome>,
    pub call: CallResult,
    /// The usage headers, parsed (kept on the throttle row for the status page).
    pub usage: Option<Value>,
}

/// Days a finished inbox row (processed or ignored), or a delivery for an account nobody
/// connected, is kept for support and replays before it is deleted.
pub const INBOX_RETENTION_DAYS: i64 = 30;

/// Meta's throttling error codes (application, user, page / business use case, ads).
pub const META_THROTTLE_CODES: [i64; 10] =
    [4, 17, 32, 613, 80001, 80002, 80003, 80004, 80005, 80006];
/// Meta's invalid or expired access token.
pub const META_TOKEN_INVALID: i64 = 190;

/// Usage read from Meta's `X-App-Usage` (`{"call_count":28,"total_time":25,"total_cputime":25}`,
/// percentages) and `X-Business-Use-Case-Usage` (`{"<id>":[{"type":"pages","call_count":..,
/// "total_cputime":..,"total_time":..,"estimated_time_to_regain_access":minutes}]}`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MetaUsage {
    /// The highest percentage of any quota.
    pub max_percent: f64,
    /// Minutes until access is regained (0 when not throttled).
    pub regain_minutes: f64,
}

pub fn parse_meta_usage(app_usage: Option<&str>, business_usage: Option<&str>) -> MetaUsage {
    let mut usage = MetaUsage::default();
    let mut absorb = |object: &Value| {
        for key in [
            "call_count",
            "total_time",
            "total_cputime",
            "acc_id_util_pct",
        ] {
            if let Some(p) = number(object.get(key)) {
                usage.max_percent = usage.max_percent.max(p);
            }
        }
        if let Some(m) = number(object.get("estimated_time_to_regain_access")) {
            usage.regain_minutes = usage.regain_minutes.max(m);
        }
    };
    if let Some(value) = app_usage.and_then(|s| serde_json::from_str::<Value>(s).ok()) {
        absorb(&value);
    }
    if let Some(Value::Object(map)) =
        business_usage.and_then(|s| serde_json::from_str::<Value>(s).ok())
    {
        for entries in map.values() {
            match entries {
                Value::Array(list) => list.iter().for_each(&mut absorb),
                object @ Value::Object(_) => absorb(object),
                _ => {}
            }
        }
    }
    usage
}

fn number(value: Option<&Value>) -> Option<f64> {
    let v = value?;
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
}

/// Reads a Graph API answer: `status`, the usage headers and the body
/// (`{"error":{"message","type","code","error_subcode"}}` on failure).
pub fn classify_meta(
    policy: &Policy,
    status: u16,
    app_usage: Option<&str>,
    business_usage: Option<&str>,
    body: &str,
    now: DateTime<Utc>,
) -> Classified {
    let usage = parse_meta_usage(app_usage, business_usage);
    let usage_json = (app_usage.is_some() || business_usage.is_some()).then(|| {
        serde_json::json!({"max_percent": usage.max_percent, "regain_minutes": usage.regain_minutes})
    });
    let regain = (usage.regain_minutes > 0.0)
        // Header input: capped at a week (as `Retry-After` is) so that no value can overflow the
        // time arithmetic and panic the consumer (found by the `sync_responses` fuzz target).
        .then(|| {
            now + Duration::seconds((usage.regain_minutes * 60.0).ceil().min(604_800.0) as i64)
        });
    let error = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").cloned());
    let code = error
        .as_ref()
        .and_then(|e| e.get("code"))
        .and_then(Value::as_i64);
    let message = error
        .as_ref()
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let describe = |what: &str| match (&message, code) {
        (Some(m), Some(c)) => format!("{what}: HTTP {status}, code {c}: {m}"),
        (Some(m), None) => format!("{what}: HTTP {status}: {m}"),
        _ => format!("{what}: HTTP {status}"),
    };
    let (failure, call) = if (200..300).contains(&status) && error.is_none() {
        let call = match regain {
            Some(until) => CallResult::SlowDown { until },
            None if usage.max_percent >= policy.usage_pause_percent => CallResult::SlowDown {
                until: now + Duration::minutes(1),
            },
            None => CallResult::Success,
        };
        (None, call)
    } else if code.is_some_and(|c| META_THROTTLE_CODES.contains(&c)) || status == 429 {
        let until = regain.unwrap_or(now + policy.default_throttle);
        (
            Some(Outcome::RateLimited {
                error: describe("throttled by Meta"),
                until,
            }),
            CallResult::Throttled { until },
        )
    } else if code == Some(META_TOKEN_INVALID) || status == 401 {
        (
            Some(Outcome::TokenInvalid(describe(
                "Meta rejected the access token",
            ))),
            CallResult::Neutral,
        )
    } else if status >= 500 || code.is_some_and(|c| c == 1 || c == 2) || status == 0 {
        (
            Some(Outcome::Transient {
                error: describe("Meta API unavailable"),
                retry_after: None,
            }),
            CallResult::Failure,
        )
    } else {
        (
            Some(Outcome::Permanent(describe("Meta API refused the request"))),
            CallResult::Neutral,
        )
    };
    Classified {
        failure,
        call,
        usage: usage_json,
    }
}

/// Reads a LinkedIn REST answer: 429 with `Retry-After` (seconds or an HTTP date) throttles,
/// 401 is a token problem, 5xx transient, other 4xx permanent.
pub fn classify_linkedin(
    policy: &Policy,
    status: u16,
    retry_after: Option<&str>,
    body: &str,
    now: DateTime<Utc>,
) -> Classified {
    let after = retry_after.and_then(|v| parse_retry_after(v, now));
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string));
    let describe = |what: &str| match &message {
        Some(m) => format!("{what}: HTTP {status}: {m}"),
        None => format!("{what}: HTTP {status}"),
    };
    let (failure, call) = match status {
        200..=299 => (None, CallResult::Success),
        429 => {
            let until = after.unwrap_or(now + policy.default_throttle);
            (
                Some(Outcome::RateLimited {
                    error: describe("throttled by LinkedIn"),
                    until,
                }),
                CallResult::Throttled { until },
            )
        }
        401 => (
            Some(Outcome::TokenInvalid(describe(
                "LinkedIn rejected the access token",
            ))),
            CallResult::Neutral,
        ),
        0 | 500..=599 => (
            Some(Outcome::Transient {
                error: describe("LinkedIn API unavailable"),
                retry_after: after,
            }),
            CallResult::Failure,
        ),
        _ => (
            Some(Outcome::Permanent(describe(
                "LinkedIn API refused the request",
            ))),
            CallResult::Neutral,
        ),
    };
    Classified {
        failure,
        call,
        usage: None,
    }
}

/// `Retry-After`: delay seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(now + Duration::seconds(seconds.min(7 * 24 * 3600) as i64));
    }
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|t| t.with_timezone(&Utc).max(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn inbox_and_integration_statuses_round_trip_through_their_wire_strings() {
        crate::types::assert_wire_round_trip(
            InboxStatus::ALL,
            InboxStatus::WIRE_NAMES,
            InboxStatus::as_str,
        );
        crate::types::assert_wire_round_trip(
            IntegrationStatus::ALL,
            IntegrationStatus::WIRE_NAMES,
            IntegrationStatus::as_str,
        );
        assert_eq!(
            InboxStatus::WIRE_NAMES,
            ["pending", "processing", "processed", "ignored", "dead"]
        );
        assert_eq!(
            IntegrationStatus::WIRE_NAMES,
            ["connected", "needs_token", "disconnected"]
        );
        let open: Vec<_> = InboxStatus::ALL.iter().filter(|s| s.is_open()).collect();
        assert_eq!(open, [&InboxStatus::Pending, &InboxStatus::Processing]);
        let finished: Vec<_> = InboxStatus::ALL
            .iter()
            .filter(|s| s.is_finished())
            .collect();
        assert_eq!(finished, [&InboxStatus::Processed, &InboxStatus::Ignored]);
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let p = Policy::default();
        for attempts in 1..=12u32 {
            let full = (30_000i64 << (attempts - 1).min(30)).min(6 * 3600 * 1000);
            for jitter in [[0u8; 4], [255u8; 4], [7, 1, 0, 9]] {
                let d = backoff(&p, attempts, jitter).num_milliseconds();
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempts}: {d} vs {full}"
                );
            }
        }
        assert_eq!(backoff(&p, 1, [0; 4]), Duration::seconds(15));
        assert_eq!(backoff(&p, 20, [0; 4]), Duration::hours(3));
    }

    #[test]
    fn claims_count_attempts_and_give_up_after_the_last() {
        let p = Policy::default();
        for attempts in 0..p.max_attempts {
            assert_eq!(
                claim(&p, attempts),
                Claim::Process {
                    attempt: attempts + 1
                }
            );
        }
        for attempts in [p.max_attempts, p.max_attempts + 1, u32::MAX] {
            let Claim::GiveUp { last_error } = claim(&p, attempts) else {
                panic!("attempts {attempts} must give up");
            };
            assert!(
                last_error.contains("gave up after 8 attempts"),
                "{last_error}"
            );
        }
    }

    #[test]
    fn a_row_that_never_finishes_is_dead_after_the_maximum_of_claims() {
        // Each claim counts; the consumer dies before `next_status`, so nothing else changes the
        // count. The claim after the last attempt gives up instead of processing again.
        let p = Policy::default();
        let mut attempts = 0;
        let mut processed = 0;
        while let Claim::Process { attempt } = claim(&p, attempts) {
            attempts = attempt;
            processed += 1;
            assert!(processed <= p.max_attempts, "claimed forever");
        }
        assert_eq!(processed, p.max_attempts);
        assert!(matches!(claim(&p, attempts), Claim::GiveUp { .. }));
    }

    #[test]
    fn an_attempt_is_counted_once_whether_it_finishes_or_not() {
        // Normal failures: the claim counted attempt n, `next_status` is told n and only decides.
        let p = Policy::default();
        let failure = Outcome::Transient {
            error: "HTTP 500".into(),
            retry_after: None,
        };
        let mut attempts = 0;
        let mut tries = 0;
        loop {
            let Claim::Process { attempt } = claim(&p, attempts) else {
                panic!("normal failures die through next_status, not at the claim");
            };
            tries += 1;
            match next_status(&p, attempt, &failure, now(), [0; 4]) {
                Next::Retry { counted, .. } => {
                    assert!(counted);
                    attempts = attempt;
                }
                Next::Dead { last_error } => {
                    assert!(last_error.contains("gave up after 8 attempts"));
                    break;
                }
                Next::Processed => unreachable!(),
            }
        }
        assert_eq!(tries, p.max_attempts);
    }

    #[test]
    fn transient_failures_retry_then_die() {
        let p = Policy::default();
        let outcome = Outcome::Transient {
            error: "HTTP 500".into(),
            retry_after: None,
        };
        for attempts in 1..p.max_attempts {
            match next_status(&p, attempts, &outcome, now(), [0; 4]) {
                Next::Retry {
                    next_attempt_at,
                    counted,
                    ..
                } => {
                    assert!(counted);
                    assert!(next_attempt_at > now());
                }
                other => panic!("attempt {attempts}: {other:?}"),
            }
        }
        match next_status(&p, p.max_attempts, &outcome, now(), [0; 4]) {
            Next::Dead { last_error } => assert!(last_error.contains("HTTP 500"), "{last_error}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_is_honoured_when_later_than_the_backoff() {
        let p = Policy::default();
        let later = now() + Duration::hours(2);
        let next = next_status(
            &p,
            1,
            &Outcome::Transient {
                error: "503".into(),
                retry_after: Some(later),
            },
            now(),
            [0; 4],
        );
        assert!(matches!(next, Next::Retry { next_attempt_at, .. } if next_attempt_at == later));
    }

    #[test]
    fn throttling_and_deferral_do_not_count() {
        let p = Policy::default();
        let until = now() + Duration::minutes(19);
        for outcome in [
            Outcome::RateLimited {
                error: "x".into(),
                until,
            },
            Outcome::Deferred {
                reason: "circuit".into(),
                until,
            },
        ] {
            assert_eq!(
                next_status(&p, p.max_attempts + 3, &outcome, now(), [0; 4]),
                Next::Retry {
                    next_attempt_at: until,
                    last_error: match &outcome {
                        Outcome::RateLimited { error, .. } => error.clone(),
                        Outcome::Deferred { reason, .. } => reason.clone(),
                        _ => unreachable!(),
                    },
                    counted: false
                }
            );
        }
    }

    #[test]
    fn permanent_and_token_failures_are_dead_at_once_and_ok_is_processed() {
        let p = Policy::default();
        assert!(matches!(
            next_status(&p, 1, &Outcome::Permanent("bad".into()), now(), [0; 4]),
            Next::Dead { .. }
        ));
        assert!(matches!(
            next_status(&p, 1, &Outcome::TokenInvalid("190".into()), now(), [0; 4]),
            Next::Dead { last_error } if last_error.starts_with("token invalid")
        ));
        assert_eq!(
            next_status(&p, 1, &Outcome::Ok, now(), [0; 4]),
            Next::Processed
        );
    }

    #[test]
    fn messages_are_claimed_while_a_full_row_still_fits() {
        let budget = QueryBudget::default();
        let room = budget.limit - QueryBudget::RESERVE;
        assert!(budget.may_claim(0, 0));
        assert!(budget.may_claim(room - 1, 3));
        assert!(budget.may_claim(room, 3));
        assert!(!budget.may_claim(room + 1, 3));
        assert!(!budget.may_claim(budget.limit, 9));
        assert!(!budget.may_claim(u32::MAX, 1));
    }

    #[test]
    fn the_first_message_is_always_claimed() {
        let tiny = QueryBudget { limit: 5 };
        assert!(tiny.may_claim(0, 0));
        assert!(tiny.may_claim(u32::MAX, 0));
        assert!(!tiny.may_claim(0, 1));
    }

    #[test]
    fn query_budget_from_the_variable() {
        assert_eq!(QueryBudget::from_var(None), QueryBudget::default());
        assert_eq!(QueryBudget::from_var(Some("")).limit, 900);
        assert_eq!(QueryBudget::from_var(Some("lots")).limit, 900);
        assert_eq!(QueryBudget::from_var(Some("-3")).limit, 900);
        assert_eq!(QueryBudget::from_var(Some(" 600 ")).limit, 600);
        assert_eq!(QueryBudget::from_var(Some("0")).limit, 1);
        assert_eq!(QueryBudget::from_var(Some("50000")).limit, 1000);
    }

    #[test]
    fn circuit_opens_after_consecutive_failures_and_a_probe_closes_it() {
        let p = Policy::default();
        let mut t = Throttle::default();
        for _ in 0..p.circuit_threshold - 1 {
            t = t.after(&p, &CallResult::Failure, now());
            assert_eq!(t.gate(now()), Gate::Proceed);
        }
        t = t.after(&p, &CallResult::Failure, now());
        assert!(
            matches!(t.gate(now()), Gate::Wait { until, .. } if until == now() + p.circuit_cooldown)
        );
        let after_cooldown = now() + p.circuit_cooldown + Duration::seconds(1);
        assert_eq!(t.gate(after_cooldown), Gate::Proceed);
        // The probe fails: open again at once.
        let reopened = t.after(&p, &CallResult::Failure, after_cooldown);
        assert!(matches!(reopened.gate(after_cooldown), Gate::Wait { .. }));
        // The probe succeeds: closed.
        let closed = t.after(&p, &CallResult::Success, after_cooldown);
        assert_eq!(closed.consecutive_failures, 0);
        assert_eq!(closed.gate(after_cooldown), Gate::Proceed);
    }

    #[test]
    fn throttles_block_until_the_platform_says() {
        let p = Policy::default();
        let until = now() + Duration::minutes(10);
        let t = Throttle::default().after(&p, &CallResult::Throttled { until }, now());
        assert!(matches!(t.gate(now()), Gate::Wait { until: u, .. } if u == until));
        assert_eq!(t.gate(until), Gate::Proceed);
        // A shorter block never shortens a longer one.
        let t2 = t.after(
            &p,
            &CallResult::Throttled {
                until: now() + Duration::minutes(1),
            },
            now(),
        );
        assert_eq!(t2.blocked_until, Some(until));
    }

    #[test]
    fn meta_usage_headers() {
        let usage = parse_meta_usage(
            Some(r#"{"call_count":28,"total_time":25,"total_cputime":96}"#),
            Some(
                r#"{"112233":[{"type":"pages","call_count":100,"total_cputime":25,"total_time":25,"estimated_time_to_regain_access":19}]}"#,
            ),
        );
        assert_eq!(usage.max_percent, 100.0);
        assert_eq!(usage.regain_minutes, 19.0);
        assert_eq!(
            parse_meta_usage(Some("garbage"), None),
            MetaUsage::default()
        );
        assert_eq!(parse_meta_usage(None, Some("[1]")), MetaUsage::default());
    }

    #[test]
    fn meta_throttle_codes_block_for_the_regain_time() {
        let p = Policy::default();
        for code in META_THROTTLE_CODES {
            let body = format!(
                r#"{{"error":{{"message":"limit","type":"OAuthException","code":{code}}}}}"#
            );
            let c = classify_meta(
                &p,
                400,
                None,
                Some(
                    r#"{"1":[{"type":"pages","call_count":100,"estimated_time_to_regain_access":19}]}"#,
                ),
                &body,
                now(),
            );
            let until = now() + Duration::minutes(19);
            assert_eq!(c.call, CallResult::Throttled { until }, "code {code}");
            assert!(matches!(c.failure, Some(Outcome::RateLimited { until: u, .. }) if u == until));
        }
        // Without a regain time: the default throttle.
        let c = classify_meta(&p, 429, None, None, "", now());
        assert_eq!(
            c.call,
            CallResult::Throttled {
                until: now() + p.default_throttle
            }
        );
    }

    #[test]
    fn meta_answers_by_kind() {
        let p = Policy::default();
        let ok = classify_meta(
            &p,
            200,
            Some(r#"{"call_count":5}"#),
            None,
            r#"{"id":"1"}"#,
            now(),
        );
        assert_eq!((ok.failure, ok.call), (None, CallResult::Success));
        let hot = classify_meta(&p, 200, Some(r#"{"call_count":97}"#), None, "{}", now());
        assert!(matches!(hot.call, CallResult::SlowDown { .. }));
        assert!(hot.failure.is_none());
        let token = classify_meta(
            &p,
            400,
            None,
            None,
            r#"{"error":{"message":"Session has expired","code":190,"error_subcode":463}}"#,
            now(),
        );
        assert!(matches!(token.failure, Some(Outcome::TokenInvalid(m)) if m.contains("190")));
        let down = classify_meta(&p, 500, None, None, "oops", now());
        assert!(matches!(down.failure, Some(Outcome::Transient { .. })));
        assert_eq!(down.call, CallResult::Failure);
        let bad = classify_meta(
            &p,
            400,
            None,
            None,
            r#"{"error":{"message":"Unsupported get request","code":100}}"#,
            now(),
        );
        assert!(matches!(bad.failure, Some(Outcome::Permanent(_))));
        assert_eq!(bad.call, CallResult::Neutral);
    }

    #[test]
    fn linkedin_answers_by_kind() {
        let p = Policy::default();
        let limited = classify_linkedin(&p, 429, Some("120"), "", now());
        assert_eq!(
            limited.call,
            CallResult::Throttled {
                until: now() + Duration::seconds(120)
            }
        );
        let dated = classify_linkedin(&p, 429, Some("Thu, 01 Jan 2026 13:00:00 GMT"), "", now());
        assert_eq!(
            dated.call,
            CallResult::Throttled {
                until: now() + Duration::hours(1)
            }
        );
        assert!(matches!(
            classify_linkedin(&p, 401, None, "", now()).failure,
            Some(Outcome::TokenInvalid(_))
        ));
        assert!(matches!(
            classify_linkedin(&p, 503, None, "", now()).failure,
            Some(Outcome::Transient { .. })
        ));
        assert!(
            matches!(classify_linkedin(&p, 404, None, r#"{"message":"Not found"}"#, now()).failure, Some(Outcome::Permanent(m)) if m.contains("Not found"))
        );
        assert_eq!(classify_linkedin(&p, 200, None, "{}", now()).failure, None);
    }
}
