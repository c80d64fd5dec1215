//! The only places that read the wall clock or draw randomness; the domain takes both as arguments.

use worker::Date;

/// Milliseconds since the Unix epoch, from the runtime (`SystemTime::now()` panics on wasm32).
pub fn now_ms() -> i64 {
    Date::now().as_millis() as i64
}

/// Fills `buf` with cryptographically secure random bytes from the runtime's `crypto.getRandomValues`.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf).expect("the Workers runtime always provides crypto.getRandomValues");
    buf
}
