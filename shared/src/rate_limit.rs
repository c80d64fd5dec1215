//! Request rate limits of the lead API: which counters a request is charged to, and what a refused
//! request is answered.
//!
//! Counting is Cloudflare's (the Workers Rate Limiting binding: a limit per key per period of 10 or
//! 60 seconds, answering only "allowed" or not). This module decides the rest, without I/O:
//!
//! - every authenticated `/v1` request is charged first to its user ([`Scope::User`], keyed by org
//!   and `sub`: the same `sub` in two orgs is two users), then to its org ([`Scope::Org`]);
//! - a request its user's limit refuses is not charged to the org, so one user's excess never
//!   spends the budget of their colleagues;
//! - keys are digests, so no org can reach another org's counters whatever its ids contain;
//! - the answer beyond a limit is 429 with `Retry-After` equal to the period (the binding does not
//!   say when its window ends; a period is the longest a client may have to wait).
//!
//! The numbers live in `wrangler.toml`: each binding's `simple = { limit, period }` (what Cloudflare
//! enforces) and, mirrored, the API worker's vars [`PER_USER_VAR`], [`PER_ORG_VAR`] and
//! [`PERIOD_VAR`] (what the worker tells clients; the local runtime checks that both agree and
//! applies an environment override of a var to its binding).

use sha2::{Digest, Sha256};

/// Requests one user may make per period by default.
pub const DEFAULT_PER_USER: u32 = 100;
/// Requests one org (all its users together) may make per period by default.
pub const DEFAULT_PER_ORG: u32 = 1_000;
/// The default period, in seconds.
pub const DEFAULT_PERIOD_SECS: u32 = 10;
/// The periods the Workers Rate Limiting binding supports.
pub const ALLOWED_PERIODS_SECS: [u32; 2] = [10, 60];

pub const PER_USER_VAR: &str = "API_RATE_LIMIT_PER_USER";
pub const PER_ORG_VAR: &str = "API_RATE_LIMIT_PER_ORG";
pub const PERIOD_VAR: &str = "API_RATE_LIMIT_PERIOD_SECONDS";

/// Whose counter a request is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    User,
    Org,
}

/// The configured limits (requests per period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_user: u32,
    pub per_org: u32,
    pub period_secs: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_user: DEFAULT_PER_USER,
            per_org: DEFAULT_PER_ORG,
            period_secs: DEFAULT_PERIOD_SECS,
        }
    }
}

impl Limits {
    /// Reads the vars (unset ones take their defaults). Limits are whole numbers from 1; the period
    /// is one of [`ALLOWED_PERIODS_SECS`]. The error names the offending var.
    pub fn from_vars(
        per_user: Option<&str>,
        per_org: Option<&str>,
        period: Option<&str>,
    ) -> Result<Limits, String> {
        let defaults = Limits::default();
        let limit = |name: &str, raw: Option<&str>, default: u32| match raw.map(str::trim) {
            None | Some("") => Ok(default),
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("{name} must be a whole number from 1, not {raw:?}")),
        };
        let limits = Limits {
            per_user: limit(PER_USER_VAR, per_user, defaults.per_user)?,
            per_org: limit(PER_ORG_VAR, per_org, defaults.per_org)?,
            period_secs: limit(PERIOD_VAR, period, defaults.period_secs)?,
        };
        if !ALLOWED_PERIODS_SECS.contains(&limits.period_secs) {
            return Err(format!(
                "{PERIOD_VAR} must be 10 or 60 (the periods Cloudflare supports), not {}",
                limits.period_secs
            ));
        }
        Ok(limits)
    }

    fn limit(&self, scope: Scope) -> u32 {
        match scope {
            Scope::User => self.per_user,
            Scope::Org => self.per_org,
        }
    }
}

/// One counter to charge: its scope and the key to pass to that scope's binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub scope: Scope,
    pub key: String,
}

/// The counters a request of user `sub` in `org` is charged to, in order: stop at the first that
/// refuses, so a refused request is never charged further.
pub fn charges(org: &str, sub: &str) -> [Charge; 2] {
    [
        Charge {
            scope: Scope::User,
            key: digest_key("user", &[org, sub]),
        },
        Charge {
            scope: Scope::Org,
            key: digest_key("org", &[org]),
        },
    ]
}

/// A fixed-length key for arbitrary ids: each part is length-prefixed before hashing, so
/// `("ab", "c")` and `("a", "bc")` never share a counter.
fn digest_key(kind: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(kind.as_bytes());
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    format!("{kind}:{}", hex::encode(hasher.finalize()))
}

/// What a refused request is answered: 429 with `Retry-After: retry_after_secs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub scope: Scope,
    pub retry_after_secs: u32,
    pub detail: String,
}

/// The answer when `scope`'s counter refused a request.
pub fn refusal(limits: &Limits, scope: Scope) -> Refusal {
    let whose = match scope {
        Scope::User => "this user",
        Scope::Org => "this organisation (all its users together)",
    };
    Refusal {
        scope,
        retry_after_secs: limits.period_secs,
        detail: format!(
            "{whose} made more than {} API requests in {} s; retry after {} s",
            limits.limit(scope),
            limits.period_secs,
            limits.period_secs
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_100_per_user_and_1000_per_org_per_10_s() {
        let limits = Limits::from_vars(None, None, None).unwrap();
        assert_eq!(
            limits,
            Limits {
                per_user: 100,
                per_org: 1_000,
                period_secs: 10
            }
        );
        assert_eq!(Limits::from_vars(Some(""), Some(" "), None), Ok(limits));
    }

    #[test]
    fn vars_override_the_defaults() {
        let limits = Limits::from_vars(Some("5000"), Some(" 20000 "), Some("60")).unwrap();
        assert_eq!(
            limits,
            Limits {
                per_user: 5_000,
                per_org: 20_000,
                period_secs: 60
            }
        );
    }

    #[test]
    fn invalid_vars_are_refused_naming_the_var() {
        for (user, org, period, var) in [
            (Some("0"), None, None, PER_USER_VAR),
            (Some("-1"), None, None, PER_USER_VAR),
            (Some("ten"), None, None, PER_USER_VAR),
            (None, Some("1.5"), None, PER_ORG_VAR),
            (None, Some("99999999999"), None, PER_ORG_VAR),
            (None, None, Some("30"), PERIOD_VAR),
            (None, None, Some("0"), PERIOD_VAR),
        ] {
            let error = Limits::from_vars(user, org, period).unwrap_err();
            assert!(error.contains(var), "{error}");
        }
    }

    #[test]
    fn a_request_is_charged_to_its_user_then_its_org() {
        let [user, org] = charges("org_a", "u1");
        assert_eq!(user.scope, Scope::User);
        assert_eq!(org.scope, Scope::Org);
        assert!(user.key.starts_with("user:"), "{}", user.key);
        assert!(org.key.starts_with("org:"), "{}", org.key);
        // Deterministic: the same caller always hits the same counters.
        assert_eq!(charges("org_a", "u1"), charges("org_a", "u1"));
    }

    #[test]
    fn users_of_one_org_share_the_org_counter_only() {
        let [alice, alice_org] = charges("org_a", "alice");
        let [bob, bob_org] = charges("org_a", "bob");
        assert_ne!(alice.key, bob.key);
        assert_eq!(alice_org.key, bob_org.key);
    }

    #[test]
    fn orgs_never_share_a_counter() {
        let [user_a, org_a] = charges("org_a", "u1");
        let [user_b, org_b] = charges("org_b", "u1");
        assert_ne!(
            user_a.key, user_b.key,
            "the same sub in two orgs is two users"
        );
        assert_ne!(org_a.key, org_b.key);
        // Ids that would collide if simply concatenated do not.
        let [joined_1, _] = charges("ab", "c");
        let [joined_2, _] = charges("a", "bc");
        assert_ne!(joined_1.key, joined_2.key);
        let [separator_1, _] = charges("a:b", "c");
        let [separator_2, _] = charges("a", "b:c");
        assert_ne!(separator_1.key, separator_2.key);
    }

    #[test]
    fn keys_have_a_fixed_length_whatever_the_ids() {
        let long = "x".repeat(10_000);
        let [user, org] = charges(&long, &long);
        assert_eq!(user.key.len(), "user:".len() + 64);
        assert_eq!(org.key.len(), "org:".len() + 64);
        let [user, _] = charges("", "");
        assert_eq!(user.key.len(), "user:".len() + 64);
    }

    #[test]
    fn a_refusal_retries_after_one_period_and_names_the_limit() {
        let limits = Limits::default();
        let user = refusal(&limits, Scope::User);
        assert_eq!(user.retry_after_secs, 10);
        assert_eq!(user.scope, Scope::User);
        assert!(user.detail.contains("100"), "{}", user.detail);
        let org = refusal(
            &Limits {
                period_secs: 60,
                ..limits
            },
            Scope::Org,
        );
        assert_eq!(org.retry_after_secs, 60);
        assert!(org.detail.contains("1000"), "{}", org.detail);
        assert!(org.detail.contains("organisation"), "{}", org.detail);
    }
}
