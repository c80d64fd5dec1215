//! HS256 JSON Web Tokens, verified and minted by hand.
//!
//! The common JWT crates pull in `ring` (which does not build for the Workers' wasm target without
//! effort) or read the system clock; this module is small, pure and takes `now` as an argument.
//!
//! Verification order matters: the header is checked first (only `HS256`, so `alg: none` and
//! key-confusion tricks with `RS256` die before anything else), then the signature in constant
//! time, and only then are the claims read: nothing unauthenticated is interpreted beyond the
//! header.
//!
//! [`verify_jwt`] checks the signature, the claims Leadheat reads and the token's validity window.
//! [`verify_token`] adds the deployment's policy on top, and is what the API uses: an optional
//! issuer and audience ([`TokenPolicy`], vars `AUTH_JWT_ISSUER` and `AUTH_JWT_AUDIENCE`) and a
//! maximum lifetime ([`MAX_TOKEN_LIFETIME_SECS`]), so a leaked token is not good for long.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use serde::Serialize;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::signature::hmac_sha256;
use crate::types::Role;

/// Longest token accepted, checked before any decoding so a hostile header costs nothing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Clock skew tolerated on `exp` and `nbf`, in seconds. The issuer's clock and the edge's clock
/// are never exactly in step; 30 s absorbs that without meaningfully extending a token's life.
pub const CLOCK_SKEW_LEEWAY_SECS: i64 = 30;

/// The longest a token may live: 24 hours. `exp - iat` (when the token says when it was issued)
/// and `exp - now` (always; [`CLOCK_SKEW_LEEWAY_SECS`] allowed) must both stay within it, so an
/// issuer cannot mint a token for months and a token without `iat` cannot claim a long future.
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 24 * 60 * 60;

/// `{"alg":"HS256","typ":"JWT"}`, the header of every minted token.
const MINTED_HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// The claims Leadheat relies on; every other claim is ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The organisation id: the only org whose data this request may see.
    pub org: String,
    pub role: Role,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds (informational).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not before, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// Why a token was refused. Every variant answers 401; the messages are safe to show a client
/// (they never echo token contents or hint at the secret).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm is not accepted by this API")]
    UnsupportedAlgorithm,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token claims are invalid: {0}")]
    InvalidClaims(String),
    #[error("token issuer (iss) is not the one this API trusts")]
    WrongIssuer,
    #[error("token audience (aud) does not include this API")]
    WrongAudience,
    #[error("token lifetime exceeds the 24-hour maximum")]
    LifetimeTooLong,
}

/// What a deployment requires of its tokens beyond a valid signature and validity window.
/// `None` means "not checked".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenPolicy {
    /// `iss` must equal this exactly.
    pub issuer: Option<String>,
    /// `aud` must be this string, or an array containing it (RFC 7519 section 4.1.3).
    pub audience: Option<String>,
    /// The identity provider's issuer, whose tokens are verified with its published keys only:
    /// an HS256 token naming it is refused even when the secret signed it.
    pub refused_issuer: Option<String>,
}

/// Verifies an HS256 token signed with `secret` and returns its claims.
///
/// `exp` and `nbf` are compared with `now_unix` allowing [`CLOCK_SKEW_LEEWAY_SECS`] either way.
/// An empty `secret` never verifies anything (it would make every token forgeable). Total over
/// arbitrary input: never panics.
pub fn verify_jwt(token: &str, secret: &[u8], now_unix: i64) -> Result<Claims, AuthError> {
    verify_signed(token, secret, now_unix).map(|(claims, _)| claims)
}

/// [`verify_jwt`], then the deployment's `policy` (issuer, audience) and the maximum lifetime
/// ([`MAX_TOKEN_LIFETIME_SECS`]). What the API authenticates requests with.
pub fn verify_token(
    token: &str,
    secret: &[u8],
    now_unix: i64,
    policy: &TokenPolicy,
) -> Result<Claims, AuthError> {
    let (claims, payload) = verify_signed(token, secret, now_unix)?;
    check_lifetime(&claims, now_unix)?;
    if let Some(refused) = &policy.refused_issuer {
        if matches!(payload.get("iss"), Some(Value::String(iss)) if iss == refused) {
            return Err(AuthError::UnsupportedAlgorithm);
        }
    }
    check_issuer_and_audience(
        &payload,
        policy.issuer.as_deref(),
        policy.audience.as_deref(),
    )?;
    Ok(claims)
}

/// `iss` must equal `issuer` exactly, and `aud` must be `audience` or an array containing it
/// (RFC 7519 section 4.1.3); `None` is not checked.
pub(crate) fn check_issuer_and_audience(
    payload: &Map<String, Value>,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Result<(), AuthError> {
    if let Some(issuer) = issuer {
        match payload.get("iss") {
            Some(Value::String(iss)) if iss == issuer => {}
            _ => return Err(AuthError::WrongIssuer),
        }
    }
    if let Some(audience) = audience {
        let accepted = match payload.get("aud") {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(audience)),
            _ => false,
        };
        if !accepted {
            return Err(AuthError::WrongAudience);
        }
    }
    Ok(())
}

/// The checks of [`verify_jwt`]; also returns the payload, for the policy checks.
fn verify_signed(
    token: &str,
    secret: &[u8],
    now_unix: i64,
) -> Result<(Claims, Map<String, Value>), AuthError> {
    let parts = split_token(token)?;
    if parts.algorithm != Algorithm::Hs256 {
        return Err(AuthError::UnsupportedAlgorithm);
    }
    if secret.is_empty() {
        return Err(AuthError::BadSignature);
    }
    let mut mac = hmac_sha256(secret);
    mac.update(parts.signing_input.as_bytes());
    // `verify_slice` compares in constant time (and rejects a tag of the wrong length).
    mac.verify_slice(&parts.signature)
        .map_err(|_| AuthError::BadSignature)?;

    let payload: Map<String, Value> =
        serde_json::from_slice(&parts.payload_json).map_err(|_| AuthError::Malformed)?;
    let claims = parse_claims(&payload)?;
    check_time(&claims, now_unix)?;
    Ok((claims, payload))
}

/// The signature algorithms a token header may name; any other `alg` (`none` included) is
/// refused before anything else is read. Which of them a deployment accepts is its
/// configuration's business: HS256 with `AUTH_JWT_SECRET`, RS256 and ES256 with an identity
/// provider's published keys ([`crate::idp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Hs256,
    Rs256,
    Es256,
}

impl Algorithm {
    /// The header's `alg`, matched exactly (JOSE names are case-sensitive).
    fn from_header(alg: &str) -> Option<Algorithm> {
        match alg {
            "HS256" => Some(Algorithm::Hs256),
            "RS256" => Some(Algorithm::Rs256),
            "ES256" => Some(Algorithm::Es256),
            _ => None,
        }
    }
}

/// A token split and decoded, with nothing interpreted beyond its header.
pub(crate) struct TokenParts<'a> {
    pub algorithm: Algorithm,
    /// The header's `kid`, when it is a string.
    pub kid: Option<String>,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a str,
    pub payload_json: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Splits a compact JWS into its parts and checks its header: the algorithm is one of
/// [`Algorithm`], `typ` (if any) is JWT and no `crit` extension is asked for.
pub(crate) fn split_token(token: &str) -> Result<TokenParts<'_>, AuthError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::Malformed);
    }
    let mut segments = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(AuthError::Malformed);
    };

    // Decoding (not interpreting) every segment first makes all garbage uniformly `Malformed`.
    let header_json = decode_segment(header_b64)?;
    let payload_json = decode_segment(payload_b64)?;
    let signature = decode_segment(signature_b64)?;

    let header = check_header(&header_json)?;
    let algorithm = match header.get("alg") {
        Some(Value::String(alg)) => Algorithm::from_header(alg),
        _ => None,
    }
    .ok_or(AuthError::UnsupportedAlgorithm)?;
    let kid = match header.get("kid") {
        Some(Value::String(kid)) => Some(kid.clone()),
        _ => None,
    };
    Ok(TokenParts {
        algorithm,
        kid,
        signing_input: &token[..header_b64.len() + 1 + payload_b64.len()],
        payload_json,
        signature,
    })
}

/// Signs `claims` with `secret` as an HS256 token: for dev tokens and tests. Production tokens
/// come from the identity provider sharing `AUTH_JWT_SECRET`.
pub fn mint_jwt(claims: &Claims, secret: &[u8]) -> String {
    // Strings, integers and a string-valued enum: serialising cannot fail.
    let payload = serde_json::to_vec(claims).expect("Claims always serialise to JSON");
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(MINTED_HEADER_JSON),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = hmac_sha256(secret);
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// The token in an `Authorization: Bearer <token>` header value (scheme matched
/// case-insensitively, as HTTP auth schemes are), or `None` for any other shape.
pub fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("Bearer") && !token.is_empty()).then_some(token)
}

/// Base64url without padding, strictly: padding, `+`/`/` and non-canonical trailing bits are all
/// refused, so one token has exactly one spelling.
fn decode_segment(segment: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| AuthError::Malformed)
}

fn check_header(header_json: &[u8]) -> Result<Map<String, Value>, AuthError> {
    let header: Map<String, Value> =
        serde_json::from_slice(header_json).map_err(|_| AuthError::Malformed)?;
    // A missing or unknown `alg` is refused first, whatever else the header says.
    match header.get("alg") {
        Some(Value::String(alg)) if Algorithm::from_header(alg).is_some() => {}
        _ => return Err(AuthError::UnsupportedAlgorithm),
    }
    match header.get("typ") {
        // Media type names compare case-insensitively (RFC 7515 §4.1.9).
        None => {}
        Some(Value::String(typ)) if typ.eq_ignore_ascii_case("JWT") => {}
        Some(_) => return Err(AuthError::Malformed),
    }
    // RFC 7515 §4.1.11: extensions listed in `crit` must be understood; we understand none.
    if header.contains_key("crit") {
        return Err(AuthError::Malformed);
    }
    Ok(header)
}

fn parse_claims(claims: &Map<String, Value>) -> Result<Claims, AuthError> {
    let role = match claims.get("role") {
        None => return Err(invalid_claims("role is missing")),
        Some(Value::String(role)) => role.parse::<Role>().ok(),
        Some(_) => None,
    }
    .ok_or_else(|| {
        invalid_claims(&format!(
            "role must be one of {}",
            Role::WIRE_NAMES.join(", ")
        ))
    })?;
    Ok(Claims {
        sub: required_string(claims, "sub")?,
        org: required_string(claims, "org")?,
        role,
        exp: numeric_date(claims, "exp", Rounding::Down)?
            .ok_or_else(|| invalid_claims("exp is missing"))?,
        iat: numeric_date(claims, "iat", Rounding::Down)?,
        // Rounded up so a fractional `nbf` never admits a token early.
        nbf: numeric_date(claims, "nbf", Rounding::Up)?,
    })
}

pub(crate) fn required_string(
    claims: &Map<String, Value>,
    name: &str,
) -> Result<String, AuthError> {
    match claims.get(name) {
        Some(Value::String(value)) if !value.trim().is_empty() => Ok(value.clone()),
        Some(Value::String(_)) => Err(invalid_claims(&format!("{name} is empty"))),
        Some(_) => Err(invalid_claims(&format!("{name} must be a string"))),
        None => Err(invalid_claims(&format!("{name} is missing"))),
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Rounding {
    Down,
    Up,
}

/// Reads an optional NumericDate. RFC 7519 allows fractional seconds; they are rounded toward
/// the stricter side. Out-of-range values saturate instead of overflowing.
pub(crate) fn numeric_date(
    claims: &Map<String, Value>,
    name: &str,
    rounding: Rounding,
) -> Result<Option<i64>, AuthError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let seconds = value.as_number().and_then(|number| {
        number.as_i64().or_else(|| {
            let seconds = number.as_f64().filter(|f| f.is_finite())?;
            let rounded = match rounding {
                Rounding::Down => seconds.floor(),
                Rounding::Up => seconds.ceil(),
            };
            // `as` saturates at the i64 bounds, which is the behaviour wanted here.
            Some(rounded as i64)
        })
    });
    seconds
        .map(Some)
        .ok_or_else(|| invalid_claims(&format!("{name} must be a number of seconds")))
}

pub(crate) fn check_time(claims: &Claims, now_unix: i64) -> Result<(), AuthError> {
    if now_unix >= claims.exp.saturating_add(CLOCK_SKEW_LEEWAY_SECS) {
        return Err(AuthError::Expired);
    }
    if let Some(not_before) = claims.nbf {
        if not_before.saturating_sub(CLOCK_SKEW_LEEWAY_SECS) > now_unix {
            return Err(AuthError::NotYetValid);
        }
    }
    Ok(())
}

pub(crate) fn check_lifetime(claims: &Claims, now_unix: i64) -> Result<(), AuthError> {
    let remaining = claims.exp.saturating_sub(now_unix);
    if remaining > MAX_TOKEN_LIFETIME_SECS.saturating_add(CLOCK_SKEW_LEEWAY_SECS) {
        return Err(AuthError::LifetimeTooLong);
    }
    if let Some(issued_at) = claims.iat {
        if claims.exp.saturating_sub(issued_at) > MAX_TOKEN_LIFETIME_SECS {
            return Err(AuthError::LifetimeTooLong);
        }
    }
    Ok(())
}

pub(crate) fn invalid_claims(reason: &str) -> AuthError {
    AuthError::InvalidClaims(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"dev-auth-secret-change-me";
    const NOW: i64 = 1_750_000_000;

    fn claims() -> Claims {
        Claims {
            sub: "user_1".into(),
            org: "org_1".into(),
            role: Role::Member,
            exp: NOW + 3600,
            iat: Some(NOW),
            nbf: None,
        }
    }

    /// Signs arbitrary header and payload bytes, to build tokens `mint_jwt` never would.
    fn sign_raw(header: &[u8], payload: &[u8], secret: &[u8]) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = hmac_sha256(secret);
        mac.update(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn with_payload(payload: Value) -> String {
        sign_raw(
            MINTED_HEADER_JSON.as_bytes(),
            payload.to_string().as_bytes(),
            SECRET,
        )
    }

    fn segments(token: &str) -> Vec<String> {
        token.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn round_trip() {
        let token = mint_jwt(&claims(), SECRET);
        assert_eq!(verify_jwt(&token, SECRET, NOW), Ok(claims()));
    }

    #[test]
    fn round_trip_every_role_and_nbf() {
        for role in [Role::Admin, Role::Member, Role::Viewer] {
            let claims = Claims {
                role,
                nbf: Some(NOW - 5),
                iat: None,
                ..claims()
            };
            let token = mint_jwt(&claims, SECRET);
            assert_eq!(verify_jwt(&token, SECRET, NOW), Ok(claims));
        }
    }

    #[test]
    fn minted_header_is_hs256_jwt_and_optional_claims_are_omitted() {
        let token = mint_jwt(
            &Claims {
                iat: None,
                ..claims()
            },
            SECRET,
        );
        let parts = segments(&token);
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&parts[0]).unwrap(),
            MINTED_HEADER_JSON.as_bytes()
        );
        let payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        assert_eq!(
            payload,
            json!({"sub": "user_1", "org": "org_1", "role": "member", "exp": NOW + 3600})
        );
    }

    #[test]
    fn accepts_a_token_from_another_issuer() {
        // Built independently of `mint_jwt`: extra claims and header fields are ignored.
        let token = sign_raw(
            br#"{"typ":"jwt","alg":"HS256","kid":"k1"}"#,
            br#"{"iss":"idp","sub":"u","org":"o","role":"admin","exp":1750003600.9,"nbf":1749999999.2}"#,
            SECRET,
        );
        let claims = verify_jwt(&token, SECRET, NOW).unwrap();
        assert_eq!(claims.role, Role::Admin);
        assert_eq!(claims.exp, 1_750_003_600);
        assert_eq!(claims.nbf, Some(1_750_000_000));
    }

    #[test]
    fn tampered_payload_is_a_bad_signature() {
        let token = mint_jwt(&claims(), SECRET);
        let mut parts = segments(&token);
        let admin = Claims {
            role: Role::Admin,
            ..claims()
        };
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&admin).unwrap());
        assert_eq!(
            verify_jwt(&parts.join("."), SECRET, NOW),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn tampered_or_truncated_signature_is_a_bad_signature() {
        let token = mint_jwt(&claims(), SECRET);
        let mut parts = segments(&token);
        let mut signature = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
        signature[0] ^= 0x80;
        parts[2] = URL_SAFE_NO_PAD.encode(&signature);
        assert_eq!(
            verify_jwt(&parts.join("."), SECRET, NOW),
            Err(AuthError::BadSignature)
        );
        parts[2] = URL_SAFE_NO_PAD.encode(&signature[..31]);
        assert_eq!(
            verify_jwt(&parts.join("."), SECRET, NOW),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn wrong_key_is_a_bad_signature() {
        let token = mint_jwt(&claims(), b"another-secret");
        assert_eq!(
            verify_jwt(&token, SECRET, NOW),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn empty_secret_never_verifies() {
        let token = mint_jwt(&claims(), b"");
        assert_eq!(verify_jwt(&token, b"", NOW), Err(AuthError::BadSignature));
    }

    #[test]
    fn alg_none_is_unsupported() {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
        for header in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"None"}"#,
        ] {
            let token = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(header));
            assert_eq!(
                verify_jwt(&token, SECRET, NOW),
                Err(AuthError::UnsupportedAlgorithm),
                "{header}"
            );
        }
    }

    #[test]
    fn other_algorithms_and_missing_alg_are_unsupported() {
        let payload = serde_json::to_vec(&claims()).unwrap();
        for header in [
            r#"{"alg":"RS256","typ":"JWT"}"#,
            r#"{"alg":"HS512"}"#,
            r#"{"alg":"hs256"}"#,
            r#"{"alg":["HS256"]}"#,
            r#"{"typ":"JWT"}"#,
            r#"{}"#,
        ] {
            // Even correctly HMAC-signed with our secret: the header alone decides.
            let token = sign_raw(header.as_bytes(), &payload, SECRET);
            assert_eq!(
                verify_jwt(&token, SECRET, NOW),
                Err(AuthError::UnsupportedAlgorithm),
                "{header}"
            );
        }
    }

    #[test]
    fn bad_typ_crit_and_non_object_headers_are_malformed() {
        let payload = serde_json::to_vec(&claims()).unwrap();
        for header in [
            r#"{"alg":"HS256","typ":"JWE"}"#,
            r#"{"alg":"HS256","typ":1}"#,
            r#"{"alg":"HS256","crit":["exp"]}"#,
            r#"["HS256"]"#,
            r#""HS256""#,
            "not json",
        ] {
            let token = sign_raw(header.as_bytes(), &payload, SECRET);
            assert_eq!(
                verify_jwt(&token, SECRET, NOW),
                Err(AuthError::Malformed),
                "{header}"
            );
        }
    }

    #[test]
    fn expiry_honours_the_leeway() {
        let token = mint_jwt(&claims(), SECRET);
        let exp = claims().exp;
        assert!(verify_jwt(&token, SECRET, exp - 1).is_ok());
        assert!(verify_jwt(&token, SECRET, exp).is_ok());
        assert!(verify_jwt(&token, SECRET, exp + CLOCK_SKEW_LEEWAY_SECS - 1).is_ok());
        assert_eq!(
            verify_jwt(&token, SECRET, exp + CLOCK_SKEW_LEEWAY_SECS),
            Err(AuthError::Expired)
        );
        assert_eq!(
            verify_jwt(&token, SECRET, exp + 86_400),
            Err(AuthError::Expired)
        );
    }

    #[test]
    fn nbf_in_the_future_is_not_yet_valid() {
        let nbf = NOW + 600;
        let token = mint_jwt(
            &Claims {
                nbf: Some(nbf),
                ..claims()
            },
            SECRET,
        );
        assert_eq!(verify_jwt(&token, SECRET, NOW), Err(AuthError::NotYetValid));
        assert_eq!(
            verify_jwt(&token, SECRET, nbf - CLOCK_SKEW_LEEWAY_SECS - 1),
            Err(AuthError::NotYetValid)
        );
        assert!(verify_jwt(&token, SECRET, nbf - CLOCK_SKEW_LEEWAY_SECS).is_ok());
    }

    #[test]
    fn extreme_times_saturate_instead_of_overflowing() {
        for (exp, nbf) in [(i64::MAX, Some(i64::MIN)), (i64::MIN, None)] {
            let token = mint_jwt(
                &Claims {
                    exp,
                    nbf,
                    ..claims()
                },
                SECRET,
            );
            for now in [i64::MIN, 0, NOW, i64::MAX] {
                let _ = verify_jwt(&token, SECRET, now);
            }
        }
        let huge = with_payload(json!({"sub":"u","org":"o","role":"viewer","exp":1e300}));
        assert!(verify_jwt(&huge, SECRET, NOW).is_ok());
    }

    #[test]
    fn missing_or_invalid_claims_are_reported() {
        let base = json!({"sub":"user_1","org":"org_1","role":"member","exp":NOW + 60});
        let cases: [(&str, Value); 11] = [
            ("sub", json!(null)),
            ("sub", json!("")),
            ("sub", json!(42)),
            ("org", json!(null)),
            ("org", json!("  ")),
            ("role", json!(null)),
            ("role", json!("owner")),
            ("role", json!("ADMIN")),
            ("exp", json!(null)),
            ("exp", json!("1750000060")),
            ("nbf", json!(true)),
        ];
        for (name, value) in cases {
            let mut payload = base.clone();
            match value {
                Value::Null => {
                    payload.as_object_mut().unwrap().remove(name);
                }
                value => payload[name] = value,
            }
            let result = verify_jwt(&with_payload(payload.clone()), SECRET, NOW);
            match result {
                Err(AuthError::InvalidClaims(message)) => {
                    assert!(message.contains(name), "{payload}: {message}")
                }
                other => panic!("{payload}: {other:?}"),
            }
        }
    }

    #[test]
    fn non_object_or_non_utf8_payloads_are_malformed() {
        for payload in [&b"[1,2]"[..], b"null", b"\xff\xfe{}", b""] {
            let token = sign_raw(MINTED_HEADER_JSON.as_bytes(), payload, SECRET);
            assert_eq!(verify_jwt(&token, SECRET, NOW), Err(AuthError::Malformed));
        }
    }

    #[test]
    fn garbage_is_malformed() {
        let token = mint_jwt(&claims(), SECRET);
        let parts = segments(&token);
        let cases = [
            String::new(),
            ".".into(),
            "..".into(),
            "...".into(),
            "not-a-token".into(),
            "a.b".into(),
            format!("{token}.extra"),
            format!("{}.{}", parts[0], parts[1]),
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
            format!("{}.{}+.{}", parts[0], parts[1], parts[2]),
            format!("Bearer {token}"),
            "ünïcödé.ünïcödé.ünïcödé".into(),
            "\u{0}.\u{0}.\u{0}".into(),
        ];
        for case in cases {
            assert_eq!(
                verify_jwt(&case, SECRET, NOW),
                Err(AuthError::Malformed),
                "{case}"
            );
        }
    }

    #[test]
    fn oversized_tokens_are_refused_before_decoding() {
        let token = mint_jwt(&claims(), SECRET);
        let padded = format!("{}{}", token, "A".repeat(MAX_TOKEN_LEN));
        assert_eq!(verify_jwt(&padded, SECRET, NOW), Err(AuthError::Malformed));
        let huge = "é".repeat(1 << 20);
        assert_eq!(verify_jwt(&huge, SECRET, NOW), Err(AuthError::Malformed));
        // A long but legitimate token (within the bound) still verifies.
        let long = Claims {
            sub: "u".repeat(4000),
            ..claims()
        };
        assert!(verify_jwt(&mint_jwt(&long, SECRET), SECRET, NOW).is_ok());
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        let token = mint_jwt(&claims(), SECRET);
        assert!(verify_jwt(&format!(" {token}\n"), SECRET, NOW).is_ok());
    }

    #[test]
    fn bearer_token_extracts_the_credentials() {
        assert_eq!(
            bearer_token(Some("Bearer abc.def.ghi")),
            Some("abc.def.ghi")
        );
        assert_eq!(bearer_token(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(Some("Basic dXNlcjpwYXNz")), None);
        assert_eq!(bearer_token(Some("Bearer")), None);
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(Some("")), None);
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn error_messages_are_safe_for_clients() {
        let token = with_payload(json!({"sub":"u","org":"o","role":"<script>","exp":NOW + 60}));
        let message = verify_jwt(&token, SECRET, NOW).unwrap_err().to_string();
        assert_eq!(
            message,
            "token claims are invalid: role must be one of admin, member, viewer"
        );
        assert!(!message.contains("<script>"));
    }
    fn policy(issuer: Option<&str>, audience: Option<&str>) -> TokenPolicy {
        TokenPolicy {
            issuer: issuer.map(str::to_owned),
            audience: audience.map(str::to_owned),
            refused_issuer: None,
        }
    }

    fn payload_with(extra: Value) -> Value {
        let mut payload = json!({"sub": "u", "org": "o", "role": "member", "exp": NOW + 600});
        for (name, value) in extra.as_object().unwrap() {
            payload[name] = value.clone();
        }
        payload
    }

    #[test]
    fn without_a_policy_issuer_and_audience_are_not_checked() {
        for extra in [
            json!({}),
            json!({"iss": "anyone"}),
            json!({"aud": ["x", "y"]}),
            json!({"iss": 42, "aud": {"odd": true}}),
        ] {
            let token = with_payload(payload_with(extra.clone()));
            assert!(
                verify_token(&token, SECRET, NOW, &TokenPolicy::default()).is_ok(),
                "{extra}"
            );
        }
    }

    #[test]
    fn a_configured_issuer_must_match_exactly() {
        let policy = policy(Some("https://idp.example.com"), None);
        let good = with_payload(payload_with(json!({"iss": "https://idp.example.com"})));
        assert!(verify_token(&good, SECRET, NOW, &policy).is_ok());
        for extra in [
            json!({}),
            json!({"iss": "https://idp.example.com/"}),
            json!({"iss": "https://IDP.example.com"}),
            json!({"iss": "https://evil.example.com"}),
            json!({"iss": ["https://idp.example.com"]}),
            json!({"iss": null}),
        ] {
            let token = with_payload(payload_with(extra.clone()));
            assert_eq!(
                verify_token(&token, SECRET, NOW, &policy),
                Err(AuthError::WrongIssuer),
                "{extra}"
            );
        }
    }

    #[test]
    fn a_configured_audience_must_be_or_be_among_aud() {
        let policy = policy(None, Some("leadheat-api"));
        for extra in [
            json!({"aud": "leadheat-api"}),
            json!({"aud": ["other", "leadheat-api"]}),
            json!({"aud": [1, "leadheat-api"]}),
        ] {
            let token = with_payload(payload_with(extra.clone()));
            assert!(
                verify_token(&token, SECRET, NOW, &policy).is_ok(),
                "{extra}"
            );
        }
        for extra in [
            json!({}),
            json!({"aud": "leadheat"}),
            json!({"aud": "leadheat-api "}),
            json!({"aud": []}),
            json!({"aud": ["other"]}),
            json!({"aud": {"leadheat-api": true}}),
            json!({"aud": "other leadheat-api"}),
        ] {
            let token = with_payload(payload_with(extra.clone()));
            assert_eq!(
                verify_token(&token, SECRET, NOW, &policy),
                Err(AuthError::WrongAudience),
                "{extra}"
            );
        }
    }

    #[test]
    fn issuer_and_audience_are_both_required_when_both_are_set() {
        let policy = policy(Some("idp"), Some("api"));
        let both = with_payload(payload_with(json!({"iss": "idp", "aud": "api"})));
        assert!(verify_token(&both, SECRET, NOW, &policy).is_ok());
        let no_aud = with_payload(payload_with(json!({"iss": "idp"})));
        assert_eq!(
            verify_token(&no_aud, SECRET, NOW, &policy),
            Err(AuthError::WrongAudience)
        );
        let no_iss = with_payload(payload_with(json!({"aud": "api"})));
        assert_eq!(
            verify_token(&no_iss, SECRET, NOW, &policy),
            Err(AuthError::WrongIssuer)
        );
    }

    #[test]
    fn the_policy_never_rescues_a_token_verify_jwt_refuses() {
        let policy = policy(Some("idp"), Some("api"));
        let payload = payload_with(json!({"iss": "idp", "aud": "api"}));
        let forged = sign_raw(
            MINTED_HEADER_JSON.as_bytes(),
            payload.to_string().as_bytes(),
            b"another-secret",
        );
        assert_eq!(
            verify_token(&forged, SECRET, NOW, &policy),
            Err(AuthError::BadSignature)
        );
        let expired = with_payload(payload_with(
            json!({"iss": "idp", "aud": "api", "exp": NOW - 3600}),
        ));
        assert_eq!(
            verify_token(&expired, SECRET, NOW, &policy),
            Err(AuthError::Expired)
        );
    }

    #[test]
    fn a_token_may_live_at_most_24_hours() {
        let open = TokenPolicy::default();
        let day = MAX_TOKEN_LIFETIME_SECS;
        assert_eq!(day, 86_400);
        // Issued now, for exactly the maximum: accepted. One second more: refused.
        let full = mint_jwt(
            &Claims {
                exp: NOW + day,
                iat: Some(NOW),
                ..claims()
            },
            SECRET,
        );
        assert!(verify_token(&full, SECRET, NOW, &open).is_ok());
        let over = mint_jwt(
            &Claims {
                exp: NOW + day + 1,
                iat: Some(NOW),
                ..claims()
            },
            SECRET,
        );
        assert_eq!(
            verify_token(&over, SECRET, NOW, &open),
            Err(AuthError::LifetimeTooLong)
        );
        // A long-lived token is refused even late in its life (exp - iat), and verify_jwt alone
        // still accepts it.
        let month = Claims {
            exp: NOW + 600,
            iat: Some(NOW - 30 * day),
            ..claims()
        };
        let month = mint_jwt(&month, SECRET);
        assert_eq!(
            verify_token(&month, SECRET, NOW, &open),
            Err(AuthError::LifetimeTooLong)
        );
        assert!(verify_jwt(&month, SECRET, NOW).is_ok());
    }

    #[test]
    fn a_token_without_iat_is_bounded_by_its_remaining_life() {
        let open = TokenPolicy::default();
        let day = MAX_TOKEN_LIFETIME_SECS;
        let within = mint_jwt(
            &Claims {
                exp: NOW + day + CLOCK_SKEW_LEEWAY_SECS,
                iat: None,
                ..claims()
            },
            SECRET,
        );
        assert!(verify_token(&within, SECRET, NOW, &open).is_ok());
        let beyond = mint_jwt(
            &Claims {
                exp: NOW + day + CLOCK_SKEW_LEEWAY_SECS + 1,
                iat: None,
                ..claims()
            },
            SECRET,
        );
        assert_eq!(
            verify_token(&beyond, SECRET, NOW, &open),
            Err(AuthError::LifetimeTooLong)
        );
        // An iat that lies (recent, with a far exp) does not help: exp - now still counts.
        let liar = mint_jwt(
            &Claims {
                exp: NOW + 30 * day,
                iat: Some(NOW + 29 * day),
                ..claims()
            },
            SECRET,
        );
        assert_eq!(
            verify_token(&liar, SECRET, NOW, &open),
            Err(AuthError::LifetimeTooLong)
        );
    }

    #[test]
    fn lifetime_checks_saturate_on_extreme_times() {
        let open = TokenPolicy::default();
        for (exp, iat) in [
            (i64::MAX, Some(i64::MIN)),
            (i64::MAX, None),
            (NOW + 60, Some(i64::MIN)),
            (NOW + 60, Some(i64::MAX)),
        ] {
            let token = mint_jwt(
                &Claims {
                    exp,
                    iat,
                    ..claims()
                },
                SECRET,
            );
            for now in [i64::MIN, 0, NOW, i64::MAX] {
                let _ = verify_token(&token, SECRET, now, &open);
            }
        }
        let far = mint_jwt(
            &Claims {
                exp: i64::MAX,
                iat: None,
                ..claims()
            },
            SECRET,
        );
        assert_eq!(
            verify_token(&far, SECRET, NOW, &open),
            Err(AuthError::LifetimeTooLong)
        );
    }

    #[test]
    fn an_hs256_token_naming_the_identity_providers_issuer_is_refused() {
        let policy = TokenPolicy {
            refused_issuer: Some("https://idp.example.com".into()),
            ..TokenPolicy::default()
        };
        let idp = with_payload(payload_with(json!({"iss": "https://idp.example.com"})));
        assert_eq!(
            verify_token(&idp, SECRET, NOW, &policy),
            Err(AuthError::UnsupportedAlgorithm)
        );
        // Service tokens with another issuer (or none) still pass.
        for extra in [json!({}), json!({"iss": "leadheat-service"})] {
            let token = with_payload(payload_with(extra.clone()));
            assert!(
                verify_token(&token, SECRET, NOW, &policy).is_ok(),
                "{extra}"
            );
        }
    }
}
