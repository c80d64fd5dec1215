//! `Idempotency-Key` rules: what identifies a request, which responses are kept, and for how long.
//!
//! A retried POST with the same key and the same request (method, path and body) gets the first
//! response replayed; the same key with another request is a client error. The hash binds the key
//! to the request so a key reused by mistake never returns a stranger's response.
//!
//! Keys belong to the user who sent them (the token's `sub` within its org): another user's key,
//! a viewer's replay of an admin's key included, is a key of their own and never reaches the
//! first user's stored response. The caller's role is part of the request hash too, so the same
//! user under another role gets a mismatch rather than a response made under the first role.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::types::FieldError;

/// How long a key is remembered.
pub const KEY_TTL_HOURS: i64 = 24;

/// Longest accepted key (UUIDs and ULIDs fit many times over).
pub const MAX_KEY_LEN: usize = 255;

/// Hex SHA-256 of the caller's role and the request's method, path and body. Each part is
/// length-prefixed so that no two different requests can produce the same input bytes (`"/a" +
/// "b"` vs `"/ab" + ""`).
pub fn request_hash(role: &str, method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for part in [role.as_bytes(), method.as_bytes(), path.as_bytes(), body] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// Checks an `Idempotency-Key` header value: 1 to 255 visible ASCII characters.
pub fn validate_key(key: &str) -> Result<(), FieldError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(FieldError::new(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_LEN} characters"),
        ));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(FieldError::new(
            "Idempotency-Key",
            "must contain only visible ASCII characters",
        ));
    }
    Ok(())
}

/// Keys stored before this instant have expired and are ignored (and may be overwritten).
pub fn expiry_cutoff(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::hours(KEY_TTL_HOURS)
}

/// Whether a response is kept for replay: everything but server errors, which a retry should be
/// allowed to fix.
pub fn should_store(status: u16) -> bool {
    status < 500
}

/// What to do with a request carrying a key, given the stored row for that key (if any, unexpired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No usable row: run the request and store its response.
    Execute,
    /// Same request: answer with the stored response.
    Replay,
    /// The key was used for a different request.
    Mismatch,
}

/// Decides from the stored request hash (`None` when no unexpired row exists).
pub fn decide(stored_hash: Option<&str>, request_hash: &str) -> Decision {
    match stored_hash {
        None => Decision::Execute,
        Some(stored) if stored == request_hash => Decision::Replay,
        Some(_) => Decision::Mismatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn hash_is_stable_and_sensitive_to_every_part() {
        let base = request_hash("admin", "POST", "/v1/leads", b"{\"a\":1}");
        assert_eq!(
            base,
            request_hash("admin", "POST", "/v1/leads", b"{\"a\":1}")
        );
        assert_eq!(base.len(), 64);
        assert_ne!(
            base,
            request_hash("viewer", "POST", "/v1/leads", b"{\"a\":1}")
        );
        assert_ne!(
            base,
            request_hash("admin", "PUT", "/v1/leads", b"{\"a\":1}")
        );
        assert_ne!(
            base,
            request_hash("admin", "POST", "/v1/lead", b"{\"a\":1}")
        );
        assert_ne!(
            base,
            request_hash("admin", "POST", "/v1/leads", b"{\"a\":2}")
        );
    }

    #[test]
    fn parts_cannot_shift_into_each_other() {
        assert_ne!(
            request_hash("admin", "POST", "/ab", b""),
            request_hash("admin", "POST", "/a", b"b")
        );
        assert_ne!(
            request_hash("adminPOST", "", "/a", b""),
            request_hash("admin", "POST", "/a", b"")
        );
    }

    #[test]
    fn keys_are_validated() {
        assert!(validate_key("abc-123").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("has space").is_err());
        assert!(validate_key(&"x".repeat(256)).is_err());
        assert!(validate_key(&"x".repeat(255)).is_ok());
        assert!(validate_key("é").is_err());
    }

    #[test]
    fn server_errors_are_not_stored() {
        assert!(should_store(200));
        assert!(should_store(201));
        assert!(should_store(422));
        assert!(!should_store(500));
        assert!(!should_store(503));
    }

    #[test]
    fn decisions() {
        assert_eq!(decide(None, "h"), Decision::Execute);
        assert_eq!(decide(Some("h"), "h"), Decision::Replay);
        assert_eq!(decide(Some("g"), "h"), Decision::Mismatch);
    }

    #[test]
    fn cutoff_is_a_day_back() {
        let now = Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap();
        assert_eq!(
            expiry_cutoff(now),
            Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
        );
    }
}
