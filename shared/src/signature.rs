//! Webhook signature checks, done on the raw request bytes and in constant time.
//!
//! - Meta (Facebook and Instagram) send `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the
//!   raw body keyed by the app secret. Instagram events may be signed with the Meta app secret or
//!   with the Instagram app secret, so [`verify_meta_signature`] accepts any of several secrets.
//! - LinkedIn sends `X-LI-Signature: <hex>` (sometimes written `hmacsha256=<hex>`), the HMAC-SHA256,
//!   keyed by the client secret, of the bytes `hmacsha256=` followed by the raw body.
//!
//! Verification must run on the bytes exactly as received: re-serialising parsed JSON changes
//! whitespace and key order and breaks the signature.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};
use thiserror::Error;

/// Header carrying Meta's (Facebook and Instagram) webhook signature.
pub const META_SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
/// Header carrying LinkedIn's webhook signature.
pub const LINKEDIN_SIGNATURE_HEADER: &str = "X-LI-Signature";

/// Scheme prefix of Meta's header value.
const META_PREFIX: &str = "sha256=";
/// LinkedIn both prepends this to the signed bytes and sometimes to the header value.
const LINKEDIN_PREFIX: &str = "hmacsha256=";
/// An HMAC-SHA256 tag in hex.
const HEX_TAG_LEN: usize = 64;

pub(crate) type HmacSha256 = Hmac<Sha256>;
type Tag = [u8; 32];

/// Why a webhook request's signature was refused. Every variant should answer 401 and store nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SignatureError {
    #[error("signature header is missing")]
    Missing,
    #[error("signature header is malformed")]
    Malformed,
    #[error("signature does not match the request body")]
    Mismatch,
    /// Every configured secret is empty: a deployment mistake, reported apart so it can be logged,
    /// but still a refusal (an empty key would let anyone forge a signature).
    #[error("no webhook secret is configured")]
    NoSecretConfigured,
}

/// Starts an HMAC-SHA256 keyed by `key`.
pub(crate) fn hmac_sha256(key: &[u8]) -> HmacSha256 {
    // HMAC is defined for keys of every length (long ones are hashed), so this never fails.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

fn tag_of(key: &[u8], parts: &[&[u8]]) -> Tag {
    let mut mac = hmac_sha256(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Checks Meta's `X-Hub-Signature-256` header against the raw `body`.
///
/// Accepts when the signature matches the HMAC-SHA256 of `body` under ANY of the non-empty
/// `secrets` (Instagram may sign with the Meta app secret or the Instagram app secret). Empty
/// secrets are skipped so that an unset variable never turns into a forgeable empty key.
pub fn verify_meta_signature(
    header: Option<&str>,
    body: &[u8],
    secrets: &[&[u8]],
) -> Result<(), SignatureError> {
    let claimed = parse_signature_header(header, SignatureScheme::Meta)?;
    let candidates: Vec<Tag> = secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .map(|secret| tag_of(secret, &[body]))
        .collect();
    matches_any(&claimed, &candidates)
}

/// Checks LinkedIn's `X-LI-Signature` header against the raw `body`.
///
/// The signed bytes are `hmacsha256=` followed by the body; the header value is the hex tag, with
/// or without its own leading `hmacsha256=`.
pub fn verify_linkedin_signature(
    header: Option<&str>,
    body: &[u8],
    client_secret: &[u8],
) -> Result<(), SignatureError> {
    let claimed = parse_signature_header(header, SignatureScheme::LinkedIn)?;
    let candidates: Vec<Tag> = if client_secret.is_empty() {
        Vec::new()
    } else {
        vec![linkedin_tag(body, client_secret)]
    };
    matches_any(&claimed, &candidates)
}

/// The `challengeResponse` LinkedIn expects during endpoint validation: lowercase hex
/// HMAC-SHA256 of the challenge code, keyed by the client secret.
pub fn linkedin_challenge_response(challenge_code: &str, client_secret: &[u8]) -> String {
    hex::encode(tag_of(client_secret, &[challenge_code.as_bytes()]))
}

/// Graph's `appsecret_proof`: lowercase hex HMAC-SHA256 of the access token, keyed by the app
/// secret. Sent with every Graph call, so that a leaked token is useless without the secret (and
/// required outright when the app enables "Require App Secret").
pub fn graph_appsecret_proof(access_token: &str, app_secret: &[u8]) -> String {
    hex::encode(tag_of(app_secret, &[access_token.as_bytes()]))
}

/// The full `X-Hub-Signature-256` value (`sha256=<hex>`) Meta would send for `body`.
pub fn sign_meta(body: &[u8], secret: &[u8]) -> String {
    format!("{META_PREFIX}{}", hex::encode(tag_of(secret, &[body])))
}

/// The `X-LI-Signature` value (bare lowercase hex) LinkedIn would send for `body`.
pub fn sign_linkedin(body: &[u8], secret: &[u8]) -> String {
    hex::encode(linkedin_tag(body, secret))
}

fn linkedin_tag(body: &[u8], client_secret: &[u8]) -> Tag {
    tag_of(client_secret, &[LINKEDIN_PREFIX.as_bytes(), body])
}

/// Compares `claimed` with every candidate without stopping early, so the time taken says
/// nothing about how many bytes matched or which secret did.
fn matches_any(claimed: &Tag, candidates: &[Tag]) -> Result<(), SignatureError> {
    if candidates.is_empty() {
        return Err(SignatureError::NoSecretConfigured);
    }
    let matched = candidates.iter().fold(Choice::from(0), |acc, expected| {
        acc | expected.ct_eq(claimed)
    });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[derive(Debug, Clone, Copy)]
enum SignatureScheme {
    /// `sha256=<hex>`; the prefix is mandatory.
    Meta,
    /// `<hex>` or `hmacsha256=<hex>`.
    LinkedIn,
}

/// Extracts the 32-byte tag from a header value. Total over arbitrary input: it slices only with
/// `str::get`/`strip_prefix`, which return `None` instead of panicking on odd char boundaries.
fn parse_signature_header(
    header: Option<&str>,
    scheme: SignatureScheme,
) -> Result<Tag, SignatureError> {
    let value = header.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Err(SignatureError::Missing);
    }
    let hex_tag = match scheme {
        SignatureScheme::Meta => {
            strip_prefix_ignore_ascii_case(value, META_PREFIX).ok_or(SignatureError::Malformed)?
        }
        SignatureScheme::LinkedIn => {
            strip_prefix_ignore_ascii_case(value, LINKEDIN_PREFIX).unwrap_or(value)
        }
    };
    if hex_tag.len() != HEX_TAG_LEN {
        return Err(SignatureError::Malformed);
    }
    let mut tag = [0u8; 32];
    // Accepts lowercase and uppercase digits alike.
    hex::decode_to_slice(hex_tag, &mut tag).map_err(|_| SignatureError::Malformed)?;
    Ok(tag)
}

fn strip_prefix_ignore_ascii_case<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        value.get(prefix.len()..)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"object":"page","entry":[{"id":"123","time":1700000000}]}"#;
    const META_SECRET: &[u8] = b"meta-app-secret";
    const INSTAGRAM_SECRET: &[u8] = b"instagram-app-secret";
    const LINKEDIN_SECRET: &[u8] = b"linkedin-client-secret";

    fn meta(header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
        verify_meta_signature(header, body, &[META_SECRET])
    }

    #[test]
    fn meta_known_answer_matches_an_independent_hmac() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let header = sign_meta(b"what do ya want for nothing?", b"Jefe");
        assert_eq!(
            header,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn meta_valid_signature_is_accepted() {
        let header = sign_meta(BODY, META_SECRET);
        assert_eq!(meta(Some(&header), BODY), Ok(()));
    }

    #[test]
    fn meta_uppercase_hex_and_surrounding_whitespace_are_accepted() {
        let header = sign_meta(BODY, META_SECRET);
        let hex_upper = header["sha256=".len()..].to_ascii_uppercase();
        assert_eq!(meta(Some(&format!("sha256={hex_upper}")), BODY), Ok(()));
        assert_eq!(meta(Some(&format!("  {header} ")), BODY), Ok(()));
    }

    #[test]
    fn meta_tampered_body_is_a_mismatch() {
        let header = sign_meta(BODY, META_SECRET);
        let mut tampered = BODY.to_vec();
        tampered[10] ^= 1;
        assert_eq!(
            meta(Some(&header), &tampered),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(meta(Some(&header), b""), Err(SignatureError::Mismatch));
    }

    #[test]
    fn meta_wrong_secret_is_a_mismatch() {
        let header = sign_meta(BODY, b"someone-else");
        assert_eq!(meta(Some(&header), BODY), Err(SignatureError::Mismatch));
    }

    #[test]
    fn meta_missing_header_is_missing() {
        assert_eq!(meta(None, BODY), Err(SignatureError::Missing));
        assert_eq!(meta(Some(""), BODY), Err(SignatureError::Missing));
        assert_eq!(meta(Some("   "), BODY), Err(SignatureError::Missing));
    }

    #[test]
    fn meta_malformed_headers_are_malformed() {
        let header = sign_meta(BODY, META_SECRET);
        let hex_tag = &header["sha256=".len()..];
        let cases = [
            hex_tag.to_string(),                    // no prefix
            format!("sha1={hex_tag}"),              // wrong scheme
            format!("sha256={}", &hex_tag[..63]),   // truncated
            format!("sha256={hex_tag}0"),           // too long
            format!("sha256={}zz", &hex_tag[..62]), // not hex
            "sha256=".to_string(),                  // empty tag
            format!("sha256={}é", &hex_tag[..62]),  // multibyte at the end
        ];
        for case in cases {
            assert_eq!(
                meta(Some(&case), BODY),
                Err(SignatureError::Malformed),
                "{case}"
            );
        }
    }

    #[test]
    fn meta_accepts_the_second_secret() {
        let header = sign_meta(BODY, INSTAGRAM_SECRET);
        assert_eq!(
            verify_meta_signature(Some(&header), BODY, &[META_SECRET, INSTAGRAM_SECRET]),
            Ok(())
        );
        assert_eq!(
            verify_meta_signature(Some(&header), BODY, &[META_SECRET]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn meta_never_accepts_an_empty_secret() {
        let forged = sign_meta(BODY, b"");
        assert_eq!(
            verify_meta_signature(Some(&forged), BODY, &[b"", META_SECRET]),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_meta_signature(Some(&forged), BODY, &[b""]),
            Err(SignatureError::NoSecretConfigured)
        );
        assert_eq!(
            verify_meta_signature(Some(&forged), BODY, &[]),
            Err(SignatureError::NoSecretConfigured)
        );
    }

    #[test]
    fn linkedin_signs_the_prefixed_body() {
        let expected = hex::encode(tag_of(LINKEDIN_SECRET, &[b"hmacsha256=", BODY]));
        assert_eq!(sign_linkedin(BODY, LINKEDIN_SECRET), expected);
        // Not the bare body: that would be Meta's construction.
        assert_ne!(expected, hex::encode(tag_of(LINKEDIN_SECRET, &[BODY])));
    }

    #[test]
    fn linkedin_accepts_with_and_without_header_prefix() {
        let hex_tag = sign_linkedin(BODY, LINKEDIN_SECRET);
        for header in [
            hex_tag.clone(),
            format!("hmacsha256={hex_tag}"),
            format!("HMACSHA256={}", hex_tag.to_ascii_uppercase()),
        ] {
            assert_eq!(
                verify_linkedin_signature(Some(&header), BODY, LINKEDIN_SECRET),
                Ok(()),
                "{header}"
            );
        }
    }

    #[test]
    fn linkedin_rejects_tampering_wrong_secret_and_bad_headers() {
        let hex_tag = sign_linkedin(BODY, LINKEDIN_SECRET);
        let verify = |header: Option<&str>, body: &[u8], secret: &[u8]| {
            verify_linkedin_signature(header, body, secret)
        };
        assert_eq!(
            verify(Some(&hex_tag), b"{}", LINKEDIN_SECRET),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&hex_tag), BODY, b"wrong"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(None, BODY, LINKEDIN_SECRET),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(Some(&hex_tag[..40]), BODY, LINKEDIN_SECRET),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(Some(&format!("sha256={hex_tag}")), BODY, LINKEDIN_SECRET),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn linkedin_never_accepts_an_empty_secret() {
        let forged = sign_linkedin(BODY, b"");
        assert_eq!(
            verify_linkedin_signature(Some(&forged), BODY, b""),
            Err(SignatureError::NoSecretConfigured)
        );
    }

    #[test]
    fn appsecret_proof_is_the_hmac_of_the_token_keyed_by_the_app_secret() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            graph_appsecret_proof("what do ya want for nothing?", b"Jefe"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn linkedin_challenge_response_is_lowercase_hex_hmac_of_the_code() {
        let response = linkedin_challenge_response("f9a1b2c3-challenge", LINKEDIN_SECRET);
        assert_eq!(response.len(), 64);
        assert!(response.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
        assert_eq!(
            response,
            hex::encode(tag_of(LINKEDIN_SECRET, &[b"f9a1b2c3-challenge"]))
        );
        // RFC 4231 test case 2 again, through the public function.
        assert_eq!(
            linkedin_challenge_response("what do ya want for nothing?", b"Jefe"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
