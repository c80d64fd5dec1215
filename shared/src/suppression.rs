//! Erasure that stays erased: what an erased lead leaves behind so that older copies of its data
//! cannot bring it back.
//!
//! `DELETE /v1/leads/{id}` records, per identity the lead was matched by (normalised email,
//! normalised phone, each social profile), a salted SHA-256 [`identity_hash`] with the erasure
//! time. An event that names one of those identities and occurred BEFORE the erasure (a webhook
//! redelivered, a dead event replayed, a row the reconciliation picks up again) is dropped
//! ([`suppresses`]); an event that occurred after it is a person who came back, and creates a new
//! lead as usual.
//!
//! The hashes are bound to the org and to the identity's kind, so one org's record says nothing
//! about another's and an email never collides with a phone or a profile id. No readable value is
//! kept.
//!
//! The erasure also scrubs the raw webhook payloads that name the person: [`inbox_needles`] are
//! the strings searched for in the inbox bodies, [`INBOX_TOMBSTONE`] what a scrubbed body becomes.
//!
//! Nothing here reads a clock.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::leads::{normalize_email, normalize_phone};

/// The hashing scheme, part of every hash so that a future scheme never matches this one.
pub const HASH_SCHEME: &str = "leadheat-suppression-v1";

/// What a scrubbed inbox body is replaced with (the row, its status and dedupe key stay).
pub const INBOX_TOMBSTONE: &str = r#"{"erased":true}"#;

/// Inbox rows left unprocessed at an erasure, scrubbed by each nightly sweep once processed.
pub const SCRUB_SWEEP_BATCH: usize = 500;

/// An identity a lead is matched by, as given (it is normalised here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity<'a> {
    Email(&'a str),
    Phone(&'a str),
    /// A social profile: the platform's wire name and the platform's user id.
    Profile {
        platform: &'a str,
        user_id: &'a str,
    },
}

impl Identity<'_> {
    /// The kind and the normalised value that are hashed; `None` when the value does not
    /// normalise (it could never have matched a lead either).
    fn normalised(&self) -> Option<(&'static str, String)> {
        match self {
            Identity::Email(email) => normalize_email(email).ok().map(|e| ("email", e)),
            Identity::Phone(phone) => normalize_phone(phone).ok().map(|p| ("phone", p)),
            Identity::Profile { platform, user_id } => {
                let user_id = user_id.trim();
                (!platform.is_empty() && !user_id.is_empty())
                    .then(|| ("profile", format!("{platform}:{user_id}")))
            }
        }
    }
}

/// Hex SHA-256 of the scheme, the org, the identity's kind and its normalised value, each
/// length-prefixed so that no two different inputs share bytes.
pub fn identity_hash(org_id: &str, identity: Identity<'_>) -> Option<String> {
    let (kind, value) = identity.normalised()?;
    let mut hasher = Sha256::new();
    for part in [HASH_SCHEME, org_id, kind, value.as_str()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    Some(hex::encode(hasher.finalize()))
}

/// The distinct hashes of `identities` (those that normalise), sorted.
pub fn identity_hashes(org_id: &str, identities: &[Identity<'_>]) -> Vec<String> {
    let mut hashes: Vec<String> = identities
        .iter()
        .filter_map(|identity| identity_hash(org_id, *identity))
        .collect();
    hashes.sort();
    hashes.dedup();
    hashes
}

/// Whether an event that occurred at `occurred_at` is dropped, given the latest erasure of any of
/// its identities: only events from before that erasure are.
pub fn suppresses(latest_erasure: Option<DateTime<Utc>>, occurred_at: DateTime<Utc>) -> bool {
    latest_erasure.is_some_and(|erased_at| occurred_at < erased_at)
}

/// The strings whose presence in an inbox body (compared lower-cased) means the body names the
/// person: the email, the phone as stored and normalised, and each platform user id as a JSON
/// string (`"123"`) or as the tail of a URN (`urn:li:person:abc"` ends in `:abc"`).
///
/// A false positive only scrubs a payload that was already processed (or will be once it is), so
/// the needles lean towards matching.
pub fn inbox_needles(identities: &[Identity<'_>]) -> Vec<String> {
    let mut needles = Vec::new();
    for identity in identities {
        match identity {
            Identity::Email(email) => {
                if let Ok(email) = normalize_email(email) {
                    needles.push(email);
                }
            }
            Identity::Phone(phone) => {
                let raw = phone.trim().to_lowercase();
                if let Ok(normalised) = normalize_phone(&raw) {
                    needles.push(normalised);
                    needles.push(raw);
                }
            }
            Identity::Profile { user_id, .. } => {
                let user_id = user_id.trim().to_lowercase();
                if !user_id.is_empty() {
                    needles.push(format!("\"{user_id}\""));
                    needles.push(format!(":{user_id}\""));
                }
            }
        }
    }
    needles.sort();
    needles.dedup();
    needles
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn hashes_are_of_the_normalised_value() {
        let a = identity_hash("org_a", Identity::Email(" Ada@Example.COM ")).unwrap();
        assert_eq!(
            a,
            identity_hash("org_a", Identity::Email("ada@example.com")).unwrap()
        );
        assert_eq!(a.len(), 64);
        let phone = identity_hash("org_a", Identity::Phone("+44 20 7946-0000")).unwrap();
        assert_eq!(
            phone,
            identity_hash("org_a", Identity::Phone("+442079460000")).unwrap()
        );
        assert_eq!(
            identity_hash("org_a", Identity::Phone("00442079460000")).unwrap(),
            phone
        );
    }

    #[test]
    fn hashes_are_bound_to_the_org_and_the_kind() {
        let email = identity_hash("org_a", Identity::Email("ada@example.com")).unwrap();
        assert_ne!(
            email,
            identity_hash("org_b", Identity::Email("ada@example.com")).unwrap()
        );
        let facebook = Identity::Profile {
            platform: "facebook",
            user_id: "123456",
        };
        let instagram = Identity::Profile {
            platform: "instagram",
            user_id: "123456",
        };
        assert_ne!(
            identity_hash("org_a", facebook),
            identity_hash("org_a", instagram)
        );
        assert_ne!(
            identity_hash("org_a", facebook),
            identity_hash("org_a", Identity::Phone("123456"))
        );
    }

    #[test]
    fn values_that_do_not_normalise_are_skipped() {
        assert_eq!(
            identity_hash("org_a", Identity::Email("not an email")),
            None
        );
        assert_eq!(identity_hash("org_a", Identity::Phone("12")), None);
        let blank = Identity::Profile {
            platform: "linkedin",
            user_id: " ",
        };
        assert_eq!(identity_hash("org_a", blank), None);
        let hashes = identity_hashes(
            "org_a",
            &[
                Identity::Email("ada@example.com"),
                Identity::Email("ADA@example.com"),
                Identity::Phone("x"),
            ],
        );
        assert_eq!(hashes.len(), 1);
    }

    #[test]
    fn only_events_from_before_the_erasure_are_suppressed() {
        let erased = Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap();
        let before = erased - chrono::Duration::seconds(1);
        let after = erased + chrono::Duration::seconds(1);
        assert!(suppresses(Some(erased), before));
        assert!(!suppresses(Some(erased), erased));
        assert!(!suppresses(Some(erased), after));
        assert!(!suppresses(None, before));
    }

    #[test]
    fn needles_name_the_person_in_raw_payloads() {
        let needles = inbox_needles(&[
            Identity::Email("Ada@Example.com"),
            Identity::Phone("+1 415 555 0100"),
            Identity::Profile {
                platform: "linkedin",
                user_id: "AbC123",
            },
        ]);
        assert_eq!(
            needles,
            [
                "\"abc123\"",
                "+1 415 555 0100",
                "+14155550100",
                ":abc123\"",
                "ada@example.com"
            ]
        );
        let body = r#"{"actor":"urn:li:person:AbC123"}"#.to_lowercase();
        assert!(needles.iter().any(|n| body.contains(n.as_str())));
        let other = r#"{"actor":"urn:li:person:AbC1234"}"#.to_lowercase();
        assert!(!needles.iter().any(|n| other.contains(n.as_str())));
        assert!(inbox_needles(&[Identity::Email("nope")]).is_empty());
    }
}
