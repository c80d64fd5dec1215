//! The org's members: people the API has seen, with the name and email their token carries
//! (the optional `name` and `email` claims). A lead's `owner_id` is a member's `user_id` (the
//! token's `sub`); the UI shows the member's name in its place.
//!
//! A member is written on sight, but not on every request: at most once per
//! [`SEEN_REFRESH_HOURS`], or at once when the name, email or role in the token changes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use crate::leads::{normalize_email, MAX_TEXT_LEN};
use crate::types::Role;

/// How stale `last_seen_at` may grow before a sighting writes it again.
pub const SEEN_REFRESH_HOURS: i64 = 24;

/// What a token says about the person beyond `sub`, `org` and `role`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Profile {
    pub name: Option<String>,
    pub email: Option<String>,
}

/// The profile claims of a token's payload: `name` (trimmed, at most 200 characters, no control
/// characters) and `email` (an address, lower-cased). Anything else is left out, never refused:
/// the token was valid, and a badly formed display name must not lock anyone out.
pub fn profile_from_claims(claims: &Map<String, Value>) -> Profile {
    let name = claims
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty() && !n.chars().any(char::is_control))
        .map(|n| n.chars().take(MAX_TEXT_LEN).collect());
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .and_then(|e| normalize_email(e).ok());
    Profile { name, email }
}

/// The payload of a token whose signature has ALREADY been verified (the API authenticated the
/// request with it), for the claims Leadheat displays but does not trust for access. `None` for
/// anything that is not a three-part JWT with a JSON object payload.
pub fn verified_token_payload(token: &str) -> Option<Map<String, Value>> {
    let mut segments = token.trim().split('.');
    let (Some(_), Some(payload), Some(_), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return None;
    };
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A member as last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub profile: Profile,
    pub role: Role,
    pub at: DateTime<Utc>,
}

/// Whether a sighting at `now` must be written, given the last one written (`None`: never).
pub fn needs_write(
    last: Option<&Sighting>,
    profile: &Profile,
    role: Role,
    now: DateTime<Utc>,
) -> bool {
    match last {
        None => true,
        Some(last) => {
            last.profile != *profile
                || last.role != role
                || now - last.at >= Duration::hours(SEEN_REFRESH_HOURS)
        }
    }
}

/// The `last_seen_at` before which a stored member is written again (the same rule for the store).
pub fn refresh_cutoff(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::hours(SEEN_REFRESH_HOURS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, hour, 0, 0).unwrap()
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn profile_claims_are_cleaned_and_never_refused() {
        let profile = profile_from_claims(&claims(
            json!({"sub": "u1", "name": "  Ana Lima ", "email": "Ana@Example.COM"}),
        ));
        assert_eq!(profile.name.as_deref(), Some("Ana Lima"));
        assert_eq!(profile.email.as_deref(), Some("ana@example.com"));
        let odd = profile_from_claims(&claims(json!({"name": "a\u{7}b", "email": "not an email"})));
        assert_eq!(odd, Profile::default());
        assert_eq!(
            profile_from_claims(&claims(json!({"name": 3}))),
            Profile::default()
        );
        let long = profile_from_claims(&claims(json!({"name": "x".repeat(500)})));
        assert_eq!(long.name.unwrap().chars().count(), MAX_TEXT_LEN);
    }

    #[test]
    fn the_payload_of_a_token_is_read() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"u1","name":"Ana"}"#);
        let token = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln");
        assert_eq!(
            verified_token_payload(&token).unwrap()["name"],
            json!("Ana")
        );
        assert!(verified_token_payload("a.b").is_none());
        assert!(verified_token_payload("a.!!!.c").is_none());
        let array = URL_SAFE_NO_PAD.encode(b"[1]");
        assert!(verified_token_payload(&format!("h.{array}.s")).is_none());
    }

    #[test]
    fn a_member_is_written_once_a_day_or_when_they_change() {
        let ana = Profile {
            name: Some("Ana".into()),
            email: None,
        };
        assert!(needs_write(None, &ana, Role::Member, at(9)));
        let last = Sighting {
            profile: ana.clone(),
            role: Role::Member,
            at: at(9),
        };
        assert!(!needs_write(Some(&last), &ana, Role::Member, at(10)));
        assert!(!needs_write(Some(&last), &ana, Role::Member, at(23)));
        assert!(needs_write(
            Some(&last),
            &ana,
            Role::Member,
            at(9) + Duration::hours(SEEN_REFRESH_HOURS)
        ));
        assert!(needs_write(Some(&last), &ana, Role::Admin, at(10)));
        let renamed = Profile {
            name: Some("Ana Lima".into()),
            ..ana.clone()
        };
        assert!(needs_write(Some(&last), &renamed, Role::Member, at(10)));
        assert_eq!(refresh_cutoff(at(10)), at(10) - Duration::hours(24));
    }
}
