//! Live updates: the rules of `GET /v1/live`, a WebSocket per open sales UI page, held by one
//! Durable Object per org (hibernating between notices), and of the notices sent on it.
//!
//! A notice only says that something of the org changed and where the change came from; it never
//! carries lead data. The page then asks the API what changed (`GET /v1/changes`) and refetches
//! what it shows, so everything it renders still goes through the API's authorization, and a page
//! that missed a notice (a dropped socket) loses nothing: its poll catches up.
//!
//! Browsers cannot set an `Authorization` header on a WebSocket, so a page offers its JWT as a
//! subprotocol, `bearer.<JWT>` (a JWT's characters are all valid in a subprotocol name) beside
//! [`PROTOCOL`], which the server selects. Other clients may send `Authorization: Bearer` instead.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The subprotocol the server selects when the client offers it.
pub const PROTOCOL: &str = "leadheat.live.v1";
/// How a browser passes its token: `bearer.<JWT>` among the offered subprotocols.
pub const TOKEN_PROTOCOL_PREFIX: &str = "bearer.";
/// Open sockets per org at most; a further page falls back to polling.
pub const MAX_SOCKETS_PER_ORG: usize = 2_000;
/// Open sockets per user (per org) at most: ten tabs of the app. A further page answers 429 and
/// falls back to polling, so one user (or a stolen token) cannot hold the org's sockets.
pub const MAX_SOCKETS_PER_USER: usize = 10;
/// Close code for a socket whose token expired (4000-4999: application codes). The page
/// reconnects with its current token.
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;
/// What a page sends to keep an idle connection open; the runtime answers [`PONG`] without waking
/// the hibernating object.
pub const PING: &str = "ping";
pub const PONG: &str = "pong";

/// What a client offered in `Sec-WebSocket-Protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offer<'a> {
    /// Whether [`PROTOCOL`] was offered; if so the answer must select it.
    pub speaks_protocol: bool,
    /// The token offered as `bearer.<JWT>`, if any.
    pub token: Option<&'a str>,
}

/// Reads a `Sec-WebSocket-Protocol` header (comma-separated names; repeated headers arrive joined
/// the same way). Unknown names are ignored; the first non-empty token wins.
pub fn parse_offer(header: Option<&str>) -> Offer<'_> {
    let mut offer = Offer::default();
    for name in header.unwrap_or("").split(',').map(str::trim) {
        if name == PROTOCOL {
            offer.speaks_protocol = true;
        } else if let Some(token) = name.strip_prefix(TOKEN_PROTOCOL_PREFIX) {
            if offer.token.is_none() && !token.is_empty() {
                offer.token = Some(token);
            }
        }
    }
    offer
}

/// Whether a request asks to become a WebSocket (`Upgrade: websocket`, any case).
pub fn is_websocket_upgrade(upgrade_header: Option<&str>) -> bool {
    upgrade_header.is_some_and(|value| {
        value
            .split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("websocket"))
    })
}

/// Where a change came from (informational for the page; every notice means "refetch").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    /// A user's write through the API (leads, touchpoints, moves, settings).
    Api,
    /// A website tracking event that became a touchpoint.
    Tracking,
    /// A social event applied by the sync worker.
    Social,
    /// The scheduled scoring job rescored leads.
    Scoring,
}

/// What the server sends. Today one kind:
/// `{"type":"changed","source":"social","at":"<RFC 3339>"}`, `at` being when the change was
/// committed as the publishing worker's clock saw it. An enum, so a publish with any other
/// `type` is refused rather than read as a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Notice {
    Changed { source: ChangeSource, at: String },
}

/// Who holds a socket, kept with it across hibernation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The user (`sub` of the token).
    pub user: String,
    /// The token's expiry, Unix seconds: the socket lives no longer than the token.
    pub exp: i64,
}

impl Grant {
    /// Whether the socket must be closed at `now` (Unix seconds). A socket without a readable
    /// grant is treated as expired.
    pub fn expired(grant: Option<&Grant>, now: i64) -> bool {
        grant.is_none_or(|grant| grant.exp <= now)
    }
}

impl Grant {
    /// When the hub must close this socket, in Unix milliseconds (its alarm's time).
    pub fn expires_at_millis(&self) -> i64 {
        self.exp.saturating_mul(1_000)
    }
}

/// The tag a hub files a user's sockets under, to count them ([`MAX_SOCKETS_PER_USER`]). A digest:
/// runtime tags are at most 256 characters, user ids are not.
pub fn user_tag(user: &str) -> String {
    format!("user:{}", hex::encode(Sha256::digest(user.as_bytes())))
}

/// What an expiry sweep of a hub's sockets does at `now` (Unix seconds): close the sockets at
/// `close` (indexes into the grants given), and wake again at `next_alarm_millis`, the earliest
/// expiry among the sockets left open (`None` when none is left).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sweep {
    pub close: Vec<usize>,
    pub next_alarm_millis: Option<i64>,
}

/// Plans an expiry sweep over the grants of a hub's open sockets (`None`: a socket without a
/// readable grant, closed like an expired one).
pub fn sweep(grants: &[Option<Grant>], now: i64) -> Sweep {
    let mut plan = Sweep::default();
    for (index, grant) in grants.iter().enumerate() {
        match grant {
            Some(grant) if !Grant::expired(Some(grant), now) => {
                let at = grant.expires_at_millis();
                plan.next_alarm_millis = Some(plan.next_alarm_millis.map_or(at, |n| n.min(at)));
            }
            _ => plan.close.push(index),
        }
    }
    plan
}

/// Whether a hub whose alarm is set for `current_millis` (if any) must move it to close a new
/// socket expiring at `expires_at_millis`: only when that is earlier.
pub fn needs_earlier_alarm(current_millis: Option<i64>, expires_at_millis: i64) -> bool {
    current_millis.is_none_or(|current| expires_at_millis < current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_offer_carries_the_protocol_and_the_token() {
        let offer = parse_offer(Some("leadheat.live.v1, bearer.aaa.bbb.ccc"));
        assert_eq!(
            offer,
            Offer {
                speaks_protocol: true,
                token: Some("aaa.bbb.ccc")
            }
        );
    }

    #[test]
    fn offers_without_the_protocol_or_token_are_read_as_such() {
        assert_eq!(parse_offer(None), Offer::default());
        assert_eq!(parse_offer(Some("")), Offer::default());
        assert_eq!(
            parse_offer(Some("chat, bearer.")),
            Offer {
                speaks_protocol: false,
                token: None
            }
        );
        // The first non-empty token wins; whitespace around names is ignored.
        assert_eq!(
            parse_offer(Some(" bearer.one ,bearer.two")).token,
            Some("one")
        );
    }

    #[test]
    fn upgrade_header_is_matched_as_a_token_list() {
        assert!(is_websocket_upgrade(Some("websocket")));
        assert!(is_websocket_upgrade(Some("WebSocket")));
        assert!(is_websocket_upgrade(Some("h2c, websocket")));
        assert!(!is_websocket_upgrade(Some("websockets")));
        assert!(!is_websocket_upgrade(Some("h2c")));
        assert!(!is_websocket_upgrade(None));
    }

    #[test]
    fn a_notice_has_the_documented_wire_shape() {
        let notice = Notice::Changed {
            source: ChangeSource::Social,
            at: "2026-11-26T10:00:00.000Z".into(),
        };
        let json = serde_json::to_value(&notice).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "changed", "source": "social", "at": "2026-11-26T10:00:00.000Z"})
        );
        let back: Notice = serde_json::from_value(json).unwrap();
        assert_eq!(back, notice);
        assert!(
            serde_json::from_str::<Notice>(r#"{"type":"other","source":"api","at":""}"#).is_err()
        );
        assert!(
            serde_json::from_str::<Notice>(r#"{"type":"changed","source":"mail","at":""}"#)
                .is_err()
        );
    }

    #[test]
    fn a_grant_expires_with_its_token_and_a_missing_grant_is_expired() {
        let grant = Grant {
            user: "u1".into(),
            exp: 1_000,
        };
        assert!(!Grant::expired(Some(&grant), 999));
        assert!(Grant::expired(Some(&grant), 1_000));
        assert!(Grant::expired(None, 0));
    }

    fn grant(user: &str, exp: i64) -> Option<Grant> {
        Some(Grant {
            user: user.into(),
            exp,
        })
    }

    #[test]
    fn a_sweep_closes_expired_sockets_and_wakes_at_the_next_expiry() {
        let grants = [
            grant("a", 1_000),
            grant("b", 1_500),
            None,
            grant("c", 1_200),
            grant("d", 900),
        ];
        let plan = sweep(&grants, 1_000);
        assert_eq!(plan.close, vec![0, 2, 4]);
        assert_eq!(plan.next_alarm_millis, Some(1_200_000));
    }

    #[test]
    fn a_sweep_of_nothing_left_sets_no_alarm() {
        assert_eq!(sweep(&[], 1_000), Sweep::default());
        let plan = sweep(&[grant("a", 10), None], 1_000);
        assert_eq!(plan.close, vec![0, 1]);
        assert_eq!(plan.next_alarm_millis, None);
        let plan = sweep(&[grant("a", 2_000)], 1_000);
        assert!(plan.close.is_empty());
        assert_eq!(plan.next_alarm_millis, Some(2_000_000));
    }

    #[test]
    fn expiry_times_saturate() {
        let far = Grant {
            user: "u".into(),
            exp: i64::MAX,
        };
        assert_eq!(far.expires_at_millis(), i64::MAX);
        let past = Grant {
            user: "u".into(),
            exp: i64::MIN,
        };
        assert_eq!(past.expires_at_millis(), i64::MIN);
    }

    #[test]
    fn the_alarm_only_moves_earlier() {
        assert!(needs_earlier_alarm(None, 5_000));
        assert!(needs_earlier_alarm(Some(6_000), 5_000));
        assert!(!needs_earlier_alarm(Some(5_000), 5_000));
        assert!(!needs_earlier_alarm(Some(4_000), 5_000));
    }

    #[test]
    fn user_tags_are_distinct_short_and_stable() {
        let long = "u".repeat(10_000);
        assert_eq!(user_tag("alice"), user_tag("alice"));
        assert_ne!(user_tag("alice"), user_tag("bob"));
        assert!(user_tag(&long).len() <= 256);
        assert_eq!(user_tag("").len(), user_tag(&long).len());
    }
}
