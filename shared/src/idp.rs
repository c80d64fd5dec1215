//! Tokens from an identity provider (Clerk, Auth0, Cloudflare Access or any OpenID Connect
//! issuer): RS256 or ES256, verified with the provider's published keys ([`crate::jwks`]), and
//! its org and role claims mapped onto Leadheat's by configuration.
//!
//! The signature arithmetic itself is the caller's, passed in as a function: the API worker uses
//! the runtime's WebCrypto, which costs no wasm (docs/auth.md has the measurements behind that
//! choice). Everything around it is here and pure: the header, which key may verify which
//! algorithm, the signature's length, and every claim check, in the same order as the HS256 path
//! ([`crate::auth`]): nothing in the payload is read before the signature has been verified.

use serde_json::{Map, Value};
use thiserror::Error;

use crate::auth::{
    check_issuer_and_audience, check_lifetime, check_time, invalid_claims, numeric_date,
    required_string, split_token, Algorithm, AuthError, Claims, Rounding, CLOCK_SKEW_LEEWAY_SECS,
};
use crate::jwks::{Jwk, PublicKey};
use crate::types::Role;

/// The configuration variables of identity-provider sign-in (README, configuration table).
pub const VAR_ISSUER: &str = "AUTH_OIDC_ISSUER";
pub const VAR_AUDIENCE: &str = "AUTH_OIDC_AUDIENCE";
pub const VAR_JWKS_URL: &str = "AUTH_JWKS_URL";
pub const VAR_ORG_CLAIM: &str = "AUTH_ORG_CLAIM";
pub const VAR_FIXED_ORG: &str = "AUTH_FIXED_ORG";
pub const VAR_ROLE_CLAIM: &str = "AUTH_ROLE_CLAIM";
pub const VAR_ROLE_MAP: &str = "AUTH_ROLE_MAP";
pub const VAR_DEFAULT_ROLE: &str = "AUTH_DEFAULT_ROLE";
pub const VAR_CF_ACCESS: &str = "AUTH_CF_ACCESS";

/// A configuration value that cannot be used; the deployment is broken until it is fixed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

fn config_error(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

/// Where a claim sits in a token's payload: a top-level name (`org_id`, or a namespaced
/// `https://leadheat.app/org`, dots and slashes included), or a JSON Pointer when it starts with
/// `/` (`/o/id` for Clerk's nested organisation claims).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    text: String,
    steps: Vec<String>,
}

impl ClaimPath {
    pub fn parse(text: &str) -> Option<ClaimPath> {
        let text = text.trim();
        let steps = match text.strip_prefix('/') {
            // RFC 6901: `~1` is `/` and `~0` is `~`, in that order.
            Some(pointer) => pointer
                .split('/')
                .map(|step| step.replace("~1", "/").replace("~0", "~"))
                .collect(),
            None => vec![text.to_owned()],
        };
        (!text.is_empty() && steps.iter().all(|step| !step.is_empty())).then(|| ClaimPath {
            text: text.to_owned(),
            steps,
        })
    }

    fn lookup<'a>(&self, payload: &'a Map<String, Value>) -> Option<&'a Value> {
        let (first, rest) = self.steps.split_first()?;
        rest.iter().try_fold(payload.get(first)?, |value, step| {
            value.as_object()?.get(step)
        })
    }
}

/// Where a token's org comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgSource {
    Claim(ClaimPath),
    /// One org for every user of the deployment (Cloudflare Access in front of one company).
    Fixed(String),
}

/// How a provider's claims become Leadheat's `org` and `role`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    pub org: OrgSource,
    pub role_claim: ClaimPath,
    /// Provider role names and the role each means (`org:admin` → admin); looked up first.
    pub role_map: Vec<(String, Role)>,
    /// The role of a user whose token has no recognised role (none: such a token is refused).
    pub default_role: Option<Role>,
}

/// The raw configuration values, `None` when unset or empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct MappingSettings<'a> {
    pub org_claim: Option<&'a str>,
    pub fixed_org: Option<&'a str>,
    pub role_claim: Option<&'a str>,
    pub role_map: Option<&'a str>,
    pub default_role: Option<&'a str>,
}

impl ClaimMapping {
    /// Reads the settings; unset ones default to Leadheat's own claims, `org` and `role`.
    pub fn from_settings(settings: &MappingSettings<'_>) -> Result<ClaimMapping, ConfigError> {
        let org = match (settings.fixed_org.map(str::trim), settings.org_claim) {
            (Some(_), Some(_)) => {
                return Err(config_error(
                    VAR_FIXED_ORG,
                    format!("set either it or {VAR_ORG_CLAIM}, not both"),
                ))
            }
            (Some(""), None) => return Err(config_error(VAR_FIXED_ORG, "is blank")),
            (Some(org), None) => OrgSource::Fixed(org.to_owned()),
            (None, claim) => OrgSource::Claim(claim_path(VAR_ORG_CLAIM, claim.unwrap_or("org"))?),
        };
        let role_claim = claim_path(VAR_ROLE_CLAIM, settings.role_claim.unwrap_or("role"))?;
        let role_map = match settings.role_map {
            Some(map) => parse_role_map(map)?,
            None => Vec::new(),
        };
        let default_role = settings
            .default_role
            .map(|role| {
                role.trim().parse::<Role>().map_err(|_| {
                    config_error(
                        VAR_DEFAULT_ROLE,
                        format!("must be one of {}", Role::WIRE_NAMES.join(", ")),
                    )
                })
            })
            .transpose()?;
        Ok(ClaimMapping {
            org,
            role_claim,
            role_map,
            default_role,
        })
    }

    /// The org and role a verified payload maps to.
    fn apply(&self, payload: &Map<String, Value>) -> Result<(String, Role), AuthError> {
        let org = match &self.org {
            OrgSource::Fixed(org) => org.clone(),
            OrgSource::Claim(path) => match path.lookup(payload) {
                Some(Value::String(org)) if !org.trim().is_empty() => org.clone(),
                _ => {
                    return Err(invalid_claims(&format!(
                        "the org claim {} is missing or not a string",
                        path.text
                    )))
                }
            },
        };
        let values: Vec<&str> = match self.role_claim.lookup(payload) {
            Some(Value::String(value)) => vec![value.as_str()],
            Some(Value::Array(values)) => values.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        // Several roles (Auth0 role arrays): the most capable one counts.
        let role = values
            .into_iter()
            .filter_map(|value| self.role_of(value))
            .max_by_key(|role| privilege(*role))
            .or(self.default_role)
            .ok_or_else(|| {
                invalid_claims(&format!(
                    "the role claim {} names no role this API knows",
                    self.role_claim.text
                ))
            })?;
        Ok((org, role))
    }

    fn role_of(&self, value: &str) -> Option<Role> {
        self.role_map
            .iter()
            .find(|(name, _)| name == value)
            .map(|(_, role)| *role)
            .or_else(|| value.parse::<Role>().ok())
    }
}

fn privilege(role: Role) -> u8 {
    match role {
        Role::Viewer => 0,
        Role::Member => 1,
        Role::Admin => 2,
    }
}

fn claim_path(var: &'static str, text: &str) -> Result<ClaimPath, ConfigError> {
    ClaimPath::parse(text).ok_or_else(|| {
        config_error(
            var,
            "must be a claim name or a JSON Pointer such as /o/id, with no empty step",
        )
    })
}

/// `org:admin=admin, org:member=member`: provider role names and Leadheat roles. A name may hold
/// `=` (the last one separates); commas separate entries.
fn parse_role_map(text: &str) -> Result<Vec<(String, Role)>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (name, role) = entry.rsplit_once('=').ok_or_else(|| {
                config_error(VAR_ROLE_MAP, format!("entry {entry:?} is not name=role"))
            })?;
            let role = role.trim().parse::<Role>().map_err(|_| {
                config_error(
                    VAR_ROLE_MAP,
                    format!(
                        "entry {entry:?}: the role must be one of {}",
                        Role::WIRE_NAMES.join(", ")
                    ),
                )
            })?;
            let name = name.trim();
            if name.is_empty() {
                return Err(config_error(
                    VAR_ROLE_MAP,
                    format!("entry {entry:?} has no name"),
                ));
            }
            Ok((name.to_owned(), role))
        })
        .collect()
}

/// What a deployment requires of its provider's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpPolicy {
    /// `iss` must equal it exactly; always required, so that only this provider's tokens count.
    pub issuer: String,
    /// When set, `aud` must be it or an array containing it.
    pub audience: Option<String>,
    pub mapping: ClaimMapping,
}

/// A token read but not verified: its algorithm and `kid` pick the key; the rest waits for
/// [`verify_idp_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedToken {
    pub algorithm: Algorithm,
    pub kid: Option<String>,
    signing_input: String,
    signature: Vec<u8>,
    payload_json: Vec<u8>,
}

/// Splits and decodes a token and checks its header (see [`crate::auth`]): `alg` is HS256,
/// RS256 or ES256, nothing else.
pub fn read_token(token: &str) -> Result<UnverifiedToken, AuthError> {
    let parts = split_token(token)?;
    Ok(UnverifiedToken {
        algorithm: parts.algorithm,
        kid: parts.kid,
        signing_input: parts.signing_input.to_owned(),
        signature: parts.signature,
        payload_json: parts.payload_json,
    })
}

/// One signature to check: `signature` over `message` by `key`, with `algorithm` (RS256:
/// RSASSA-PKCS1-v1_5 with SHA-256; ES256: ECDSA P-256 with SHA-256, `r || s`, 64 bytes).
#[derive(Debug, Clone, Copy)]
pub struct SignatureCheck<'a> {
    pub algorithm: Algorithm,
    pub key: &'a PublicKey,
    pub message: &'a [u8],
    pub signature: &'a [u8],
}

/// Verifies `token` with `key` and returns Leadheat's claims. `check_signature` answers whether
/// the signature is valid; it is only asked once the key and algorithm agree and the signature
/// has the right length. Then the payload is read: `sub`, the mapped `org` and `role`, `exp`
/// and `nbf` (with [`CLOCK_SKEW_LEEWAY_SECS`]), `iat` not in the future, the issuer, the
/// audience and the 24-hour maximum lifetime.
pub async fn verify_idp_token(
    token: &UnverifiedToken,
    key: &Jwk,
    policy: &IdpPolicy,
    now_unix: i64,
    check_signature: impl AsyncFnOnce(SignatureCheck<'_>) -> bool,
) -> Result<Claims, AuthError> {
    // An RSA key never checks an ES256 token (or the reverse), and HS256 never gets here.
    if token.algorithm == Algorithm::Hs256 || key.key.algorithm() != token.algorithm {
        return Err(AuthError::UnsupportedAlgorithm);
    }
    if token.signature.len() != key.key.signature_len() {
        return Err(AuthError::BadSignature);
    }
    let check = SignatureCheck {
        algorithm: token.algorithm,
        key: &key.key,
        message: token.signing_input.as_bytes(),
        signature: &token.signature,
    };
    if !check_signature(check).await {
        return Err(AuthError::BadSignature);
    }
    let payload: Map<String, Value> =
        serde_json::from_slice(&token.payload_json).map_err(|_| AuthError::Malformed)?;
    check_issuer_and_audience(&payload, Some(&policy.issuer), policy.audience.as_deref())?;
    let (org, role) = policy.mapping.apply(&payload)?;
    let claims = Claims {
        sub: required_string(&payload, "sub")?,
        org,
        role,
        exp: numeric_date(&payload, "exp", Rounding::Down)?
            .ok_or_else(|| invalid_claims("exp is missing"))?,
        iat: numeric_date(&payload, "iat", Rounding::Down)?,
        nbf: numeric_date(&payload, "nbf", Rounding::Up)?,
    };
    check_time(&claims, now_unix)?;
    if claims
        .iat
        .is_some_and(|iat| iat.saturating_sub(CLOCK_SKEW_LEEWAY_SECS) > now_unix)
    {
        return Err(AuthError::NotYetValid);
    }
    check_lifetime(&claims, now_unix)?;
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use p256::ecdsa::signature::{Signer, Verifier};
    use rsa::pkcs1v15;
    use rsa::signature::SignatureEncoding;
    use rsa::traits::PublicKeyParts;
    use serde_json::json;
    use sha2::Sha256;

    use super::*;
    use crate::auth::{mint_jwt, MAX_TOKEN_LIFETIME_SECS};
    use crate::jwks::parse_jwks;

    const NOW: i64 = 1_750_000_000;
    const ISSUER: &str = "https://clerk.example.com";

    /// Test keys, generated for each run (nothing here is a real key).
    struct Keys {
        rsa: rsa::RsaPrivateKey,
        ec: p256::ecdsa::SigningKey,
    }

    fn keys() -> &'static Keys {
        static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
        KEYS.get_or_init(|| {
            let mut rng = rand_core::OsRng;
            Keys {
                rsa: rsa::RsaPrivateKey::new(&mut rng, 2048).expect("an RSA test key"),
                ec: p256::ecdsa::SigningKey::random(&mut rng),
            }
        })
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn jwks() -> Vec<u8> {
        let keys = keys();
        let public = keys.rsa.to_public_key();
        let point = keys.ec.verifying_key().to_encoded_point(false);
        json!({"keys": [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
             "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be())},
            {"kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig", "alg": "ES256",
             "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())},
        ]})
        .to_string()
        .into_bytes()
    }

    /// Signs `header.payload` as the header's `alg` says, with the test keys.
    fn sign(header: Value, payload: Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(payload.to_string().as_bytes())
        );
        let signature = match header["alg"].as_str() {
            Some("ES256") => {
                let signature: p256::ecdsa::Signature = keys().ec.sign(input.as_bytes());
                signature.to_bytes().to_vec()
            }
            _ => pkcs1v15::SigningKey::<Sha256>::new(keys().rsa.clone())
                .sign(input.as_bytes())
                .to_vec(),
        };
        format!("{input}.{}", b64(&signature))
    }

    /// The verifier the tests pass in: the RustCrypto crates, standing in for WebCrypto.
    async fn check(check: SignatureCheck<'_>) -> bool {
        match (check.algorithm, check.key) {
            (Algorithm::Rs256, PublicKey::Rsa { n, e }) => {
                let Ok(key) = rsa::RsaPublicKey::new(
                    rsa::BigUint::from_bytes_be(n),
                    rsa::BigUint::from_bytes_be(e),
                ) else {
                    return false;
                };
                let Ok(signature) = pkcs1v15::Signature::try_from(check.signature) else {
                    return false;
                };
                pkcs1v15::VerifyingKey::<Sha256>::new(key)
                    .verify(check.message, &signature)
                    .is_ok()
            }
            (Algorithm::Es256, PublicKey::P256 { x, y }) => {
                let mut sec1 = vec![4];
                sec1.extend_from_slice(x);
                sec1.extend_from_slice(y);
                let (Ok(key), Ok(signature)) = (
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1),
                    p256::ecdsa::Signature::from_slice(check.signature),
                ) else {
                    return false;
                };
                key.verify(check.message, &signature).is_ok()
            }
            _ => false,
        }
    }

    /// Runs a future that never waits (the test verifier answers at once).
    fn ready<T>(future: impl Future<Output = T>) -> T {
        let mut future = pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(value) => value,
            Poll::Pending => panic!("the test verifier never waits"),
        }
    }

    fn mapping(settings: MappingSettings<'_>) -> ClaimMapping {
        ClaimMapping::from_settings(&settings).unwrap()
    }

    fn clerk() -> IdpPolicy {
        IdpPolicy {
            issuer: ISSUER.into(),
            audience: None,
            mapping: mapping(MappingSettings {
                org_claim: Some("/o/id"),
                role_claim: Some("/o/rol"),
                role_map: Some("org:admin=admin, org:member=member"),
                ..MappingSettings::default()
            }),
        }
    }

    fn clerk_payload() -> Value {
        json!({"iss": ISSUER, "sub": "user_2x", "exp": NOW + 60, "iat": NOW, "nbf": NOW - 10,
               "azp": "https://app.example.com", "o": {"id": "org_2a", "rol": "org:admin", "slg": "acme"}})
    }

    fn verify_with(token: &str, policy: &IdpPolicy, now: i64) -> Result<Claims, AuthError> {
        let set = parse_jwks(&jwks()).unwrap();
        let unverified = read_token(token)?;
        let key = set
            .find(unverified.kid.as_deref(), unverified.algorithm)
            .expect("a key for the token");
        ready(verify_idp_token(&unverified, key, policy, now, check))
    }

    fn verify(token: &str, policy: &IdpPolicy) -> Result<Claims, AuthError> {
        verify_with(token, policy, NOW)
    }

    fn rs(payload: Value) -> String {
        sign(
            json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}),
            payload,
        )
    }

    fn es(payload: Value) -> String {
        sign(json!({"alg": "ES256", "kid": "ec-1"}), payload)
    }

    #[test]
    fn rs256_and_es256_tokens_verify_and_map_clerk_claims() {
        for token in [rs(clerk_payload()), es(clerk_payload())] {
            let claims = verify(&token, &clerk()).unwrap();
            assert_eq!(
                claims,
                Claims {
                    sub: "user_2x".into(),
                    org: "org_2a".into(),
                    role: Role::Admin,
                    exp: NOW + 60,
                    iat: Some(NOW),
                    nbf: Some(NOW - 10),
                }
            );
        }
    }

    #[test]
    fn a_tampered_payload_or_signature_fails_for_both_algorithms() {
        for token in [rs(clerk_payload()), es(clerk_payload())] {
            let parts: Vec<&str> = token.split('.').collect();
            let mut member = clerk_payload();
            member["o"]["rol"] = json!("org:member");
            let swapped = format!(
                "{}.{}.{}",
                parts[0],
                b64(member.to_string().as_bytes()),
                parts[2]
            );
            assert_eq!(verify(&swapped, &clerk()), Err(AuthError::BadSignature));
            let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
            signature[10] ^= 1;
            let flipped = format!("{}.{}.{}", parts[0], parts[1], b64(&signature));
            assert_eq!(verify(&flipped, &clerk()), Err(AuthError::BadSignature));
            // A signature of the wrong length never reaches the verifier.
            let short = format!("{}.{}.{}", parts[0], parts[1], b64(&signature[1..]));
            assert_eq!(verify(&short, &clerk()), Err(AuthError::BadSignature));
        }
    }

    #[test]
    fn a_key_verifies_its_own_algorithm_only() {
        let set = parse_jwks(&jwks()).unwrap();
        let rsa_key = set.find(Some("rsa-1"), Algorithm::Rs256).unwrap();
        let ec_key = set.find(Some("ec-1"), Algorithm::Es256).unwrap();
        let es_token = read_token(&es(clerk_payload())).unwrap();
        let rs_token = read_token(&rs(clerk_payload())).unwrap();
        let never =
            async |_: SignatureCheck<'_>| -> bool { panic!("the verifier must not be asked") };
        assert_eq!(
            ready(verify_idp_token(&es_token, rsa_key, &clerk(), NOW, never)),
            Err(AuthError::UnsupportedAlgorithm)
        );
        assert_eq!(
            ready(verify_idp_token(&rs_token, ec_key, &clerk(), NOW, never)),
            Err(AuthError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn an_hs256_token_is_never_verified_with_a_published_key() {
        // The classic confusion: the attacker signs HS256 with the public key's bytes.
        let set = parse_jwks(&jwks()).unwrap();
        let rsa_key = set.find(Some("rsa-1"), Algorithm::Rs256).unwrap();
        let PublicKey::Rsa { n, .. } = &rsa_key.key else {
            unreachable!()
        };
        let token = mint_jwt(
            &Claims {
                sub: "attacker".into(),
                org: "org_2a".into(),
                role: Role::Admin,
                exp: NOW + 60,
                iat: None,
                nbf: None,
            },
            n,
        );
        let unverified = read_token(&token).unwrap();
        assert_eq!(unverified.algorithm, Algorithm::Hs256);
        assert_eq!(set.find(unverified.kid.as_deref(), Algorithm::Hs256), None);
        let never =
            async |_: SignatureCheck<'_>| -> bool { panic!("the verifier must not be asked") };
        assert_eq!(
            ready(verify_idp_token(&unverified, rsa_key, &clerk(), NOW, never)),
            Err(AuthError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn alg_none_and_unknown_algorithms_are_refused_when_read() {
        for alg in ["none", "RS384", "PS256", "ES384", "rs256", "EdDSA"] {
            let header = b64(json!({"alg": alg, "kid": "rsa-1"}).to_string().as_bytes());
            let payload = b64(clerk_payload().to_string().as_bytes());
            for signature in ["", "AAAA"] {
                assert_eq!(
                    read_token(&format!("{header}.{payload}.{signature}")),
                    Err(AuthError::UnsupportedAlgorithm),
                    "{alg}"
                );
            }
        }
    }

    #[test]
    fn issuer_and_audience_are_checked() {
        let mut wrong = clerk_payload();
        wrong["iss"] = json!("https://evil.example.com");
        assert_eq!(verify(&rs(wrong), &clerk()), Err(AuthError::WrongIssuer));
        let mut missing = clerk_payload();
        missing.as_object_mut().unwrap().remove("iss");
        assert_eq!(verify(&es(missing), &clerk()), Err(AuthError::WrongIssuer));

        let policy = IdpPolicy {
            audience: Some("leadheat-api".into()),
            ..clerk()
        };
        for aud in [json!("leadheat-api"), json!(["x", "leadheat-api"])] {
            let mut payload = clerk_payload();
            payload["aud"] = aud.clone();
            assert!(verify(&rs(payload), &policy).is_ok(), "{aud}");
        }
        for aud in [json!("other"), json!(["other"]), json!(null)] {
            let mut payload = clerk_payload();
            payload["aud"] = aud.clone();
            assert_eq!(
                verify(&rs(payload), &policy),
                Err(AuthError::WrongAudience),
                "{aud}"
            );
        }
    }

    #[test]
    fn time_claims_are_checked_with_leeway() {
        let at = |exp: i64, nbf: Option<i64>, iat: Option<i64>| {
            let mut payload = clerk_payload();
            payload["exp"] = json!(exp);
            let map = payload.as_object_mut().unwrap();
            map.remove("nbf");
            map.remove("iat");
            if let Some(nbf) = nbf {
                map.insert("nbf".into(), json!(nbf));
            }
            if let Some(iat) = iat {
                map.insert("iat".into(), json!(iat));
            }
            verify(&es(payload), &clerk())
        };
        let leeway = CLOCK_SKEW_LEEWAY_SECS;
        assert!(at(NOW - leeway + 1, None, None).is_ok());
        assert_eq!(at(NOW - leeway, None, None), Err(AuthError::Expired));
        assert!(at(NOW + 60, Some(NOW + leeway), None).is_ok());
        assert_eq!(
            at(NOW + 600, Some(NOW + leeway + 1), None),
            Err(AuthError::NotYetValid)
        );
        assert!(at(NOW + 60, None, Some(NOW + leeway)).is_ok());
        assert_eq!(
            at(NOW + 600, None, Some(NOW + leeway + 1)),
            Err(AuthError::NotYetValid)
        );
        assert_eq!(
            at(NOW + MAX_TOKEN_LIFETIME_SECS + 60, None, Some(NOW)),
            Err(AuthError::LifetimeTooLong)
        );
        let mut no_exp = clerk_payload();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert!(matches!(
            verify(&rs(no_exp), &clerk()),
            Err(AuthError::InvalidClaims(_))
        ));
    }

    #[test]
    fn auth0_namespaced_claims_and_role_arrays() {
        let policy = IdpPolicy {
            issuer: "https://tenant.eu.auth0.com/".into(),
            audience: Some("https://api.leadheat.app".into()),
            mapping: mapping(MappingSettings {
                org_claim: Some("https://leadheat.app/org"),
                role_claim: Some("https://leadheat.app/roles"),
                role_map: Some("Sales Admin=admin,Sales Rep=member,Analyst=viewer"),
                ..MappingSettings::default()
            }),
        };
        let payload = |roles: Value| {
            json!({"iss": "https://tenant.eu.auth0.com/", "sub": "auth0|abc",
                   "aud": ["https://api.leadheat.app", "https://tenant.eu.auth0.com/userinfo"],
                   "exp": NOW + 60, "iat": NOW,
                   "https://leadheat.app/org": "acme", "https://leadheat.app/roles": roles})
        };
        let claims = verify(&rs(payload(json!(["Analyst", "Sales Rep"]))), &policy).unwrap();
        assert_eq!((claims.org.as_str(), claims.role), ("acme", Role::Member));
        let claims = verify(&rs(payload(json!(["Analyst"]))), &policy).unwrap();
        assert_eq!(claims.role, Role::Viewer);
        let claims = verify(&rs(payload(json!("Sales Admin"))), &policy).unwrap();
        assert_eq!(claims.role, Role::Admin);
        for roles in [json!([]), json!(["Intern"]), json!(7), json!(null)] {
            assert!(
                matches!(
                    verify(&rs(payload(roles.clone())), &policy),
                    Err(AuthError::InvalidClaims(_))
                ),
                "{roles}"
            );
        }
    }

    #[test]
    fn cloudflare_access_fixed_org_and_default_role() {
        let policy = IdpPolicy {
            issuer: "https://acme.cloudflareaccess.com".into(),
            audience: Some(
                "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2".into(),
            ),
            mapping: mapping(MappingSettings {
                fixed_org: Some("acme"),
                default_role: Some("member"),
                ..MappingSettings::default()
            }),
        };
        let payload = json!({"iss": "https://acme.cloudflareaccess.com", "sub": "7335d417-61da-459d-899c-0a01c76a2f94",
            "aud": ["4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2"],
            "email": "ana@acme.example", "type": "app", "exp": NOW + 600, "iat": NOW,
            "org": "someone-elses-org", "role": "viewer"});
        let claims = verify(&rs(payload.clone()), &policy).unwrap();
        // The deployment's org wins over any org claim; a recognised role claim still counts.
        assert_eq!((claims.org.as_str(), claims.role), ("acme", Role::Viewer));
        let mut no_role = payload;
        no_role.as_object_mut().unwrap().remove("role");
        let claims = verify(&rs(no_role), &policy).unwrap();
        assert_eq!(claims.role, Role::Member);
    }

    #[test]
    fn missing_org_or_sub_is_refused() {
        let mut no_org = clerk_payload();
        no_org.as_object_mut().unwrap().remove("o");
        let error = verify(&rs(no_org), &clerk()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "token claims are invalid: the org claim /o/id is missing or not a string"
        );
        let mut blank = clerk_payload();
        blank["o"]["id"] = json!("  ");
        assert!(matches!(
            verify(&rs(blank), &clerk()),
            Err(AuthError::InvalidClaims(_))
        ));
        let mut no_sub = clerk_payload();
        no_sub.as_object_mut().unwrap().remove("sub");
        assert!(matches!(
            verify(&es(no_sub), &clerk()),
            Err(AuthError::InvalidClaims(_))
        ));
    }

    #[test]
    fn default_mapping_reads_leadheats_own_claims() {
        let policy = IdpPolicy {
            issuer: ISSUER.into(),
            audience: None,
            mapping: mapping(MappingSettings::default()),
        };
        let payload =
            json!({"iss": ISSUER, "sub": "u", "org": "o", "role": "viewer", "exp": NOW + 60});
        let claims = verify(&es(payload), &policy).unwrap();
        assert_eq!((claims.org.as_str(), claims.role), ("o", Role::Viewer));
        // Unmapped provider roles are not guessed.
        let payload =
            json!({"iss": ISSUER, "sub": "u", "org": "o", "role": "org:admin", "exp": NOW + 60});
        assert!(verify(&es(payload), &policy).is_err());
    }

    #[test]
    fn claim_paths() {
        let payload = json!({"o": {"id": "org_1", "a/b": {"~x": 5}}, "https://x.app/org": "o2", "org_id": "o3"});
        let payload = payload.as_object().unwrap();
        let at = |path: &str| ClaimPath::parse(path).unwrap().lookup(payload).cloned();
        assert_eq!(at("/o/id"), Some(json!("org_1")));
        assert_eq!(at("/o/a~1b/~0x"), Some(json!(5)));
        assert_eq!(at("https://x.app/org"), Some(json!("o2")));
        assert_eq!(at("org_id"), Some(json!("o3")));
        assert_eq!(at("o.id"), None);
        assert_eq!(at("/o/id/deeper"), None);
        for bad in ["", " ", "/", "/o//id", "/o/"] {
            assert_eq!(ClaimPath::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn bad_settings_name_their_variable() {
        let error =
            |settings: MappingSettings<'_>| ClaimMapping::from_settings(&settings).unwrap_err().var;
        assert_eq!(
            error(MappingSettings {
                fixed_org: Some("acme"),
                org_claim: Some("org_id"),
                ..MappingSettings::default()
            }),
            VAR_FIXED_ORG
        );
        assert_eq!(
            error(MappingSettings {
                fixed_org: Some("  "),
                ..MappingSettings::default()
            }),
            VAR_FIXED_ORG
        );
        assert_eq!(
            error(MappingSettings {
                org_claim: Some("/o//id"),
                ..MappingSettings::default()
            }),
            VAR_ORG_CLAIM
        );
        assert_eq!(
            error(MappingSettings {
                role_claim: Some("/"),
                ..MappingSettings::default()
            }),
            VAR_ROLE_CLAIM
        );
        for map in ["org:admin", "org:admin=owner", "=admin", "a=admin,b"] {
            assert_eq!(
                error(MappingSettings {
                    role_map: Some(map),
                    ..MappingSettings::default()
                }),
                VAR_ROLE_MAP,
                "{map}"
            );
        }
        assert_eq!(
            error(MappingSettings {
                default_role: Some("owner"),
                ..MappingSettings::default()
            }),
            VAR_DEFAULT_ROLE
        );
        let ok = mapping(MappingSettings {
            role_map: Some("a=b=admin, ,c=viewer,"),
            ..MappingSettings::default()
        });
        assert_eq!(
            ok.role_map,
            vec![
                ("a=b".to_string(), Role::Admin),
                ("c".to_string(), Role::Viewer)
            ]
        );
    }
}
