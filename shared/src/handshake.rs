//! The platforms' endpoint verification handshakes, checked so that they can never serve as a
//! signing oracle.
//!
//! - LinkedIn validates an endpoint with `GET ?challengeCode=<uuid>` and expects
//!   `challengeResponse` = hex HMAC-SHA256 of the code, keyed by the client secret. Its delivery
//!   signatures are HMAC-SHA256 of `hmacsha256=` + body under the same key. If any string were
//!   accepted as a code, answering `hmacsha256=<json>` would hand out a valid `X-LI-Signature` for
//!   that JSON. LinkedIn documents the code as a UUID, so only a canonical UUID is answered: it can
//!   never begin with `hmacsha256=`, so a challenge answer and a delivery signature are computed
//!   over disjoint inputs.
//! - Meta subscribes with `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` and expects
//!   the challenge echoed as text. The echo involves no secret, so it signs nothing; still, only a
//!   matching token (compared in constant time) is answered, and only a short challenge of plain
//!   token characters is echoed, so the endpoint never reflects markup, JSON or header-like text.

use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::signature::linkedin_challenge_response;

/// The longest `hub.challenge` echoed. Meta sends a short integer; anything longer is not Meta's.
pub const MAX_META_CHALLENGE_LEN: usize = 128;

/// Why a verification request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum HandshakeError {
    /// LinkedIn: no `challengeCode` parameter (400).
    #[error("challengeCode is required")]
    MissingChallengeCode,
    /// LinkedIn: the code is not a UUID, LinkedIn's documented form (400).
    #[error("challengeCode must be a UUID such as 890e4665-4dfe-4ab1-b689-ed553bceeed0")]
    MalformedChallengeCode,
    /// Meta: `hub.mode` is not `subscribe` (403).
    #[error("hub.mode must be subscribe")]
    NotSubscribe,
    /// Meta: the verify token is missing or differs (403).
    #[error("hub.verify_token does not match")]
    TokenMismatch,
    /// Meta: the challenge is missing, too long or has characters Meta never sends (400).
    #[error("hub.challenge must be 1 to 128 letters, digits, '-', '_' or '.'")]
    MalformedChallenge,
    /// No secret or verify token is configured: refuse rather than answer with an empty key.
    #[error("the platform's webhook secret is not configured")]
    NotConfigured,
}

impl HandshakeError {
    /// The HTTP status the refusal answers with.
    pub fn status(self) -> u16 {
        match self {
            HandshakeError::NotSubscribe | HandshakeError::TokenMismatch => 403,
            HandshakeError::NotConfigured => 500,
            _ => 400,
        }
    }

    /// The query parameter at fault, for the problem's field list.
    pub fn field(self) -> Option<&'static str> {
        match self {
            HandshakeError::MissingChallengeCode | HandshakeError::MalformedChallengeCode => {
                Some("challengeCode")
            }
            HandshakeError::NotSubscribe => Some("hub.mode"),
            HandshakeError::TokenMismatch => Some("hub.verify_token"),
            HandshakeError::MalformedChallenge => Some("hub.challenge"),
            HandshakeError::NotConfigured => None,
        }
    }
}

/// LinkedIn's answer to a validation request: the code and its `challengeResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedinChallengeAnswer {
    pub challenge_code: String,
    pub challenge_response: String,
}

/// Answers LinkedIn's endpoint validation, only for a code of LinkedIn's documented form.
pub fn answer_linkedin_challenge(
    challenge_code: Option<&str>,
    client_secret: &[u8],
) -> Result<LinkedinChallengeAnswer, HandshakeError> {
    let code = challenge_code.ok_or(HandshakeError::MissingChallengeCode)?;
    if !is_canonical_uuid(code) {
        return Err(HandshakeError::MalformedChallengeCode);
    }
    if client_secret.is_empty() {
        return Err(HandshakeError::NotConfigured);
    }
    Ok(LinkedinChallengeAnswer {
        challenge_code: code.to_string(),
        challenge_response: linkedin_challenge_response(code, client_secret),
    })
}

/// The `hub.challenge` to echo when Meta's subscription request is genuine.
pub fn answer_meta_subscription<'a>(
    mode: Option<&str>,
    verify_token: Option<&str>,
    challenge: Option<&'a str>,
    expected_token: &str,
) -> Result<&'a str, HandshakeError> {
    if expected_token.is_empty() {
        return Err(HandshakeError::NotConfigured);
    }
    if mode != Some("subscribe") {
        return Err(HandshakeError::NotSubscribe);
    }
    let token_matches: bool =
        verify_token.is_some_and(|token| token.as_bytes().ct_eq(expected_token.as_bytes()).into());
    if !token_matches {
        return Err(HandshakeError::TokenMismatch);
    }
    match challenge {
        Some(challenge) if is_plain_challenge(challenge) => Ok(challenge),
        _ => Err(HandshakeError::MalformedChallenge),
    }
}

/// `8-4-4-4-12` hex digits with hyphens, as LinkedIn sends (either case).
fn is_canonical_uuid(value: &str) -> bool {
    const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
    let mut groups = value.split('-');
    let shaped = GROUPS.iter().all(|len| {
        groups
            .next()
            .is_some_and(|g| g.len() == *len && g.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    shaped && groups.next().is_none()
}

fn is_plain_challenge(value: &str) -> bool {
    (1..=MAX_META_CHALLENGE_LEN).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{sign_linkedin, verify_linkedin_signature};

    const SECRET: &[u8] = b"linkedin-client-secret";
    const UUID: &str = "890e4665-4dfe-4ab1-b689-ed553bceeed0";

    #[test]
    fn a_uuid_code_is_answered_with_the_hmac_of_the_code() {
        let answer = answer_linkedin_challenge(Some(UUID), SECRET).unwrap();
        assert_eq!(answer.challenge_code, UUID);
        assert_eq!(
            answer.challenge_response,
            linkedin_challenge_response(UUID, SECRET)
        );
        let upper = UUID.to_ascii_uppercase();
        assert!(answer_linkedin_challenge(Some(&upper), SECRET).is_ok());
    }

    #[test]
    fn the_forgery_attack_is_refused() {
        // The attack: ask for the "challenge response" of `hmacsha256=` + a JSON body, which is
        // exactly the X-LI-Signature of that body.
        let body =
            br#"{"type":"LEAD_ACTION","leadGenFormResponse":"urn:li:leadGenFormResponse:1"}"#;
        let code = format!("hmacsha256={}", std::str::from_utf8(body).unwrap());
        // Had it been answered, the answer would verify as a delivery signature:
        let oracle = linkedin_challenge_response(&code, SECRET);
        assert_eq!(oracle, sign_linkedin(body, SECRET));
        assert!(verify_linkedin_signature(Some(&oracle), body, SECRET).is_ok());
        // So it is not answered.
        assert_eq!(
            answer_linkedin_challenge(Some(&code), SECRET),
            Err(HandshakeError::MalformedChallengeCode)
        );
    }

    #[test]
    fn codes_not_shaped_like_a_uuid_are_refused() {
        for code in [
            "",
            "f9a1b2c3-challenge",
            "890e4665-4dfe-4ab1-b689-ed553bceeed",
            "890e4665-4dfe-4ab1-b689-ed553bceeed00",
            "890e46654dfe4ab1b689ed553bceeed0",
            "890e4665-4dfe-4ab1-b689-ed553bceeed0-",
            "{890e4665-4dfe-4ab1-b689-ed553bceeed0}",
            "890e4665-4dfe-4ab1-b689-ed553bceeedg",
            "hmacsha256=890e4665-4dfe-4ab1-b689-ed553bceeed0",
            "890e4665-4dfe-4ab1-b689-ed553bceeéd",
        ] {
            assert_eq!(
                answer_linkedin_challenge(Some(code), SECRET),
                Err(HandshakeError::MalformedChallengeCode),
                "{code:?}"
            );
        }
        assert_eq!(
            answer_linkedin_challenge(None, SECRET),
            Err(HandshakeError::MissingChallengeCode)
        );
        assert_eq!(
            answer_linkedin_challenge(Some(UUID), b""),
            Err(HandshakeError::NotConfigured)
        );
    }

    #[test]
    fn meta_echoes_only_a_genuine_subscription() {
        let ok = answer_meta_subscription(
            Some("subscribe"),
            Some("verify"),
            Some("1158201444"),
            "verify",
        );
        assert_eq!(ok, Ok("1158201444"));
        let refusals = [
            (
                None,
                Some("verify"),
                Some("1"),
                HandshakeError::NotSubscribe,
            ),
            (
                Some("unsubscribe"),
                Some("verify"),
                Some("1"),
                HandshakeError::NotSubscribe,
            ),
            (
                Some("subscribe"),
                Some("verif"),
                Some("1"),
                HandshakeError::TokenMismatch,
            ),
            (
                Some("subscribe"),
                None,
                Some("1"),
                HandshakeError::TokenMismatch,
            ),
            (
                Some("subscribe"),
                Some("verify"),
                None,
                HandshakeError::MalformedChallenge,
            ),
            (
                Some("subscribe"),
                Some("verify"),
                Some("<script>alert(1)</script>"),
                HandshakeError::MalformedChallenge,
            ),
            (
                Some("subscribe"),
                Some("verify"),
                Some("hmacsha256={\"a\":1}"),
                HandshakeError::MalformedChallenge,
            ),
        ];
        for (mode, token, challenge, error) in refusals {
            assert_eq!(
                answer_meta_subscription(mode, token, challenge, "verify"),
                Err(error),
                "{mode:?} {token:?} {challenge:?}"
            );
        }
        let long = "1".repeat(MAX_META_CHALLENGE_LEN + 1);
        assert_eq!(
            answer_meta_subscription(Some("subscribe"), Some("verify"), Some(&long), "verify"),
            Err(HandshakeError::MalformedChallenge)
        );
        assert_eq!(
            answer_meta_subscription(Some("subscribe"), Some(""), Some("1"), ""),
            Err(HandshakeError::NotConfigured)
        );
    }

    #[test]
    fn statuses_and_fields() {
        assert_eq!(HandshakeError::MalformedChallengeCode.status(), 400);
        assert_eq!(HandshakeError::TokenMismatch.status(), 403);
        assert_eq!(HandshakeError::NotSubscribe.field(), Some("hub.mode"));
        assert_eq!(
            HandshakeError::MalformedChallenge.field(),
            Some("hub.challenge")
        );
    }
}
