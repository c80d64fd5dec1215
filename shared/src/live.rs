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

/// The subprotocol the server selects when the client offers it.
pub const PROTOCOL: &str = "leadheat.live.v1";
/// How a browser passes its token: `bearer.<JWT>` among the offered subprotocols.
pub const TOKEN_PROTOCOL_PREFIX: &str = "bearer.";
/// Open sockets per org at most; a further page falls back to polling.
pub const MAX_SOCKETS_PER_ORG: usize = 2_000;
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
}
