//! The only places that read the wall clock or draw randomness; the domain takes both as arguments.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use worker::Date;

/// Milliseconds since the Unix epoch, from the runtime (`SystemTime::now()` panics on wasm32).
pub fn now_ms() -> i64 {
    Date::now().as_millis() as i64
}

/// Now, as a chrono instant.
pub fn now() -> DateTime<Utc> {
    from_ms(now_ms())
}

/// An instant from Unix milliseconds (saturating at chrono's range).
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The storage format of every timestamp: RFC 3339, UTC, milliseconds, `Z` (sorts as text).
pub fn rfc3339(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Cryptographically secure random bytes from the runtime's `crypto.getRandomValues`.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf)
        .expect("the Workers runtime always provides crypto.getRandomValues");
    buf
}

/// A new time-sortable id with `prefix`.
pub fn new_id(prefix: &str) -> String {
    leadheat_domain::ids::new_id(prefix, now_ms(), random_bytes())
}
