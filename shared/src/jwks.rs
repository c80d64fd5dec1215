//! An identity provider's published signing keys (a JSON Web Key Set, RFC 7517) and how long a
//! worker may keep them.
//!
//! Only what can verify an RS256 or ES256 token is kept: RSA keys of 2048 to 8192 bits and P-256
//! curve points. Everything else in a set (encryption keys, `oct` secrets, other curves, keys
//! marked for other algorithms) is skipped, so nothing from a JWKS can ever become an HMAC
//! secret. The keys are checked here for shape; the curve arithmetic is the verifier's (the
//! Workers' WebCrypto refuses a point that is not on the curve when it imports it).
//!
//! [`JwksCache`] holds the rules of the per-isolate cache: a lifetime taken from the answer's
//! `Cache-Control: max-age` within [`MIN_TTL_SECS`]..[`MAX_TTL_SECS`], and at most one fetch per
//! [`REFETCH_COOLDOWN_SECS`], whatever the requests ask for (an unknown `kid` or a failing
//! provider cannot make every request fetch).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use thiserror::Error;

use crate::auth::Algorithm;

/// Keys read from one set, at most; a larger set is cut here (providers publish two or three).
pub const MAX_KEYS: usize = 32;
/// The largest JWKS document read, in bytes.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// How long keys are kept when the provider's answer says nothing (10 minutes).
pub const DEFAULT_TTL_SECS: i64 = 600;
/// The shortest a fetched set is kept, whatever `max-age` says: one minute.
pub const MIN_TTL_SECS: i64 = 60;
/// The longest a fetched set is kept, whatever `max-age` says: one day.
pub const MAX_TTL_SECS: i64 = 24 * 60 * 60;
/// Fetches are at least this far apart (seconds), successful or not. A token with an unknown
/// `kid` makes the cache refetch (the provider may have rotated its keys) only after this long.
pub const REFETCH_COOLDOWN_SECS: i64 = 10;

const MIN_RSA_MODULUS_BYTES: usize = 2048 / 8;
const MAX_RSA_MODULUS_BYTES: usize = 8192 / 8;
const P256_COORDINATE_BYTES: usize = 32;

/// A public key that can verify one of the asymmetric algorithms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA modulus and exponent, big-endian, without leading zero bytes.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// A P-256 point's affine coordinates, 32 bytes each.
    P256 { x: Vec<u8>, y: Vec<u8> },
}

impl PublicKey {
    /// The one algorithm this key verifies: RS256 for RSA, ES256 for P-256.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Rsa { .. } => Algorithm::Rs256,
            PublicKey::P256 { .. } => Algorithm::Es256,
        }
    }

    /// The length a signature by this key has: the modulus length (RS256), or r and s (ES256).
    pub fn signature_len(&self) -> usize {
        match self {
            PublicKey::Rsa { n, .. } => n.len(),
            PublicKey::P256 { .. } => 2 * P256_COORDINATE_BYTES,
        }
    }

    /// The key as a JWK holding only its public parameters (what WebCrypto's
    /// `importKey("jwk", ...)` takes).
    pub fn to_jwk(&self) -> Value {
        match self {
            PublicKey::Rsa { n, e } => json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(n),
                "e": URL_SAFE_NO_PAD.encode(e),
            }),
            PublicKey::P256 { x, y } => json!({
                "kty": "EC",
                "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(x),
                "y": URL_SAFE_NO_PAD.encode(y),
            }),
        }
    }
}

/// One usable key of a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    pub key: PublicKey,
}

/// The usable keys of a JWKS document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JwksError {
    #[error("the key set is not a JSON object with a keys array")]
    NotAKeySet,
    #[error("the key set is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("the key set has no RS256 or ES256 signing key")]
    NoUsableKey,
}

/// Reads a JWKS document, keeping the keys that can verify RS256 or ES256 signatures. A key that
/// is malformed or meant for something else is skipped, not an error: one odd key must not take
/// the provider's other keys down with it. A set with no usable key at all is an error.
pub fn parse_jwks(body: &[u8]) -> Result<JwkSet, JwksError> {
    if body.len() > MAX_JWKS_BYTES {
        return Err(JwksError::TooLarge);
    }
    let document: Map<String, Value> =
        serde_json::from_slice(body).map_err(|_| JwksError::NotAKeySet)?;
    let Some(Value::Array(entries)) = document.get("keys") else {
        return Err(JwksError::NotAKeySet);
    };
    let keys: Vec<Jwk> = entries
        .iter()
        .filter_map(|entry| entry.as_object().and_then(parse_key))
        .take(MAX_KEYS)
        .collect();
    if keys.is_empty() {
        return Err(JwksError::NoUsableKey);
    }
    Ok(JwkSet { keys })
}

impl JwkSet {
    /// The key to verify a token signed with `algorithm` whose header names `kid`. Without a
    /// `kid`, only a set with exactly one key for the algorithm answers (no guessing among
    /// several).
    pub fn find(&self, kid: Option<&str>, algorithm: Algorithm) -> Option<&Jwk> {
        let mut candidates = self
            .keys
            .iter()
            .filter(|jwk| jwk.key.algorithm() == algorithm);
        match kid {
            Some(kid) => candidates.find(|jwk| jwk.kid.as_deref() == Some(kid)),
            None => {
                let first = candidates.next()?;
                candidates.next().is_none().then_some(first)
            }
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn parse_key(entry: &Map<String, Value>) -> Option<Jwk> {
    let text = |name: &str| entry.get(name).and_then(Value::as_str);
    // RFC 7517 §4.2-4.3: a key for encryption, or whose operations exclude verifying, is not ours.
    if text("use").is_some_and(|use_| use_ != "sig") {
        return None;
    }
    if let Some(ops) = entry.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return None;
        }
    }
    let key = match text("kty")? {
        "RSA" => {
            let n = strip_leading_zeros(decode(text("n")?)?);
            let e = strip_leading_zeros(decode(text("e")?)?);
            let e_ok = !e.is_empty() && e.len() <= 8 && e.last().is_some_and(|b| b & 1 == 1);
            let n_ok = (MIN_RSA_MODULUS_BYTES..=MAX_RSA_MODULUS_BYTES).contains(&n.len());
            (n_ok && e_ok && e != [1]).then_some(PublicKey::Rsa { n, e })?
        }
        "EC" if text("crv")? == "P-256" => {
            let x = decode(text("x")?)?;
            let y = decode(text("y")?)?;
            let sizes_ok = x.len() == P256_COORDINATE_BYTES && y.len() == P256_COORDINATE_BYTES;
            sizes_ok.then_some(PublicKey::P256 { x, y })?
        }
        _ => return None,
    };
    // A key bound to another algorithm (RS384, PS256, ES384...) is not used for ours.
    let alg_matches = match text("alg") {
        None => true,
        Some("RS256") => key.algorithm() == Algorithm::Rs256,
        Some("ES256") => key.algorithm() == Algorithm::Es256,
        Some(_) => false,
    };
    if !alg_matches || entry.get("alg").is_some_and(|alg| !alg.is_string()) {
        return None;
    }
    let kid = match entry.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return None,
    };
    Some(Jwk { kid, key })
}

fn decode(value: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(value).ok()
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// How long a fetched set may be used: the answer's `Cache-Control: max-age` (seconds), within
/// [`MIN_TTL_SECS`]..[`MAX_TTL_SECS`]; [`DEFAULT_TTL_SECS`] without one. `no-store` and
/// `no-cache` mean the minimum: the keys are still needed for the requests in between.
pub fn ttl_from_cache_control(cache_control: Option<&str>) -> i64 {
    let Some(value) = cache_control else {
        return DEFAULT_TTL_SECS;
    };
    let mut ttl = None;
    for directive in value.split(',').map(str::trim) {
        let (name, argument) = directive.split_once('=').unwrap_or((directive, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "no-store" | "no-cache" => return MIN_TTL_SECS,
            "max-age" => {
                ttl = argument
                    .trim()
                    .trim_matches('"')
                    .parse::<u64>()
                    .ok()
                    .map(|secs| i64::try_from(secs).unwrap_or(i64::MAX));
            }
            _ => {}
        }
    }
    ttl.map_or(DEFAULT_TTL_SECS, |ttl| {
        ttl.clamp(MIN_TTL_SECS, MAX_TTL_SECS)
    })
}

/// One provider's keys as an isolate holds them, and when to fetch them again.
#[derive(Debug, Clone, Default)]
pub struct JwksCache {
    set: Option<JwkSet>,
    expires_at: i64,
    last_attempt: Option<i64>,
}

impl JwksCache {
    /// The keys last fetched successfully, even past their lifetime: when the provider cannot be
    /// reached, a token signed by a key already known still verifies.
    pub fn set(&self) -> Option<&JwkSet> {
        self.set.as_ref()
    }

    /// Whether to fetch before looking a key up: nothing fetched yet, or the keys' lifetime is
    /// over, and the last attempt is at least [`REFETCH_COOLDOWN_SECS`] old.
    pub fn due(&self, now_unix: i64) -> bool {
        (self.set.is_none() || now_unix >= self.expires_at) && self.cooled_down(now_unix)
    }

    /// Whether a token whose key is not in the set may make the cache fetch again now.
    pub fn may_refetch(&self, now_unix: i64) -> bool {
        self.cooled_down(now_unix)
    }

    /// Records a successful fetch whose answer may be used for `ttl_secs`.
    pub fn fetched(&mut self, set: JwkSet, ttl_secs: i64, now_unix: i64) {
        self.set = Some(set);
        self.expires_at = now_unix.saturating_add(ttl_secs);
        self.last_attempt = Some(now_unix);
    }

    /// Records a failed fetch: the keys already held stay, and the next attempt waits.
    pub fn failed(&mut self, now_unix: i64) {
        self.last_attempt = Some(now_unix);
    }

    fn cooled_down(&self, now_unix: i64) -> bool {
        self.last_attempt
            .is_none_or(|at| now_unix.saturating_sub(at) >= REFETCH_COOLDOWN_SECS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn rsa_jwk(kid: &str, modulus_bytes: usize) -> Value {
        let mut n = vec![0xC5; modulus_bytes];
        n[modulus_bytes - 1] = 0x01;
        json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(&n), "e": "AQAB"})
    }

    fn ec_jwk(kid: &str) -> Value {
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(&[7; 32]), "y": b64(&[9; 32])})
    }

    fn set(keys: Vec<Value>) -> Result<JwkSet, JwksError> {
        parse_jwks(json!({ "keys": keys }).to_string().as_bytes())
    }

    #[test]
    fn reads_rsa_and_p256_keys() {
        let set = set(vec![rsa_jwk("r1", 256), ec_jwk("e1")]).unwrap();
        assert_eq!(set.len(), 2);
        let rsa = set.find(Some("r1"), Algorithm::Rs256).unwrap();
        assert_eq!(rsa.kid.as_deref(), Some("r1"));
        match &rsa.key {
            PublicKey::Rsa { n, e } => {
                assert_eq!(n.len(), 256);
                assert_eq!(e, &[1, 0, 1]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(rsa.key.signature_len(), 256);
        let ec = set.find(Some("e1"), Algorithm::Es256).unwrap();
        assert_eq!(
            ec.key,
            PublicKey::P256 {
                x: vec![7; 32],
                y: vec![9; 32]
            }
        );
        assert_eq!(ec.key.signature_len(), 64);
    }

    #[test]
    fn a_kid_is_looked_up_with_its_algorithm_only() {
        let set = set(vec![rsa_jwk("k", 256), ec_jwk("e1")]).unwrap();
        // The RSA key's kid with ES256, and the EC key's kid with RS256: no key.
        assert_eq!(set.find(Some("k"), Algorithm::Es256), None);
        assert_eq!(set.find(Some("e1"), Algorithm::Rs256), None);
        assert_eq!(set.find(Some("nope"), Algorithm::Rs256), None);
        // And never for HS256, whatever the kid.
        assert_eq!(set.find(Some("k"), Algorithm::Hs256), None);
        assert_eq!(set.find(None, Algorithm::Hs256), None);
    }

    #[test]
    fn without_a_kid_only_a_single_candidate_answers() {
        let one = set(vec![rsa_jwk("r1", 256), ec_jwk("e1")]).unwrap();
        assert!(one.find(None, Algorithm::Rs256).is_some());
        assert!(one.find(None, Algorithm::Es256).is_some());
        let two = set(vec![rsa_jwk("r1", 256), rsa_jwk("r2", 256)]).unwrap();
        assert_eq!(two.find(None, Algorithm::Rs256), None);
        assert!(two.find(Some("r2"), Algorithm::Rs256).is_some());
    }

    #[test]
    fn keys_for_other_purposes_and_secrets_are_skipped() {
        let skipped = [
            json!({"kty": "oct", "kid": "s", "k": b64(b"a shared secret")}),
            json!({"kty": "oct", "kid": "s", "alg": "HS256", "k": b64(b"a shared secret")}),
            json!({"kty": "EC", "crv": "P-384", "kid": "p384", "x": b64(&[1; 48]), "y": b64(&[1; 48])}),
            json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(&[1; 32])}),
            {
                let mut key = rsa_jwk("enc", 256);
                key["use"] = json!("enc");
                key
            },
            {
                let mut key = rsa_jwk("ps", 256);
                key["alg"] = json!("PS256");
                key
            },
            {
                let mut key = rsa_jwk("rs384", 256);
                key["alg"] = json!("RS384");
                key
            },
            {
                let mut key = ec_jwk("es-as-rs");
                key["alg"] = json!("RS256");
                key
            },
            {
                let mut key = rsa_jwk("ops", 256);
                key["key_ops"] = json!(["encrypt"]);
                key
            },
            {
                let mut key = rsa_jwk("kid-number", 256);
                key["kid"] = json!(7);
                key
            },
        ];
        for key in skipped {
            assert_eq!(set(vec![key.clone()]), Err(JwksError::NoUsableKey), "{key}");
        }
        let mut verify_only = rsa_jwk("ops", 256);
        verify_only["key_ops"] = json!(["verify"]);
        assert!(set(vec![verify_only]).is_ok());
    }

    #[test]
    fn weak_or_malformed_keys_are_skipped() {
        let malformed = [
            rsa_jwk("short", 128),
            rsa_jwk("huge", 1025),
            json!({"kty": "RSA", "kid": "pad", "n": format!("{}=", b64(&[0xC5; 256])), "e": "AQAB"}),
            json!({"kty": "RSA", "kid": "e1", "n": b64(&[0xC5; 256]), "e": "AQ"}),
            json!({"kty": "RSA", "kid": "even", "n": b64(&[0xC5; 256]), "e": "AQAC"}),
            json!({"kty": "RSA", "kid": "no-e", "n": b64(&[0xC5; 256])}),
            json!({"kty": "EC", "crv": "P-256", "kid": "short", "x": b64(&[1; 31]), "y": b64(&[1; 32])}),
            json!({"kty": "EC", "crv": "P-256", "kid": "no-y", "x": b64(&[1; 32])}),
            json!("not an object"),
        ];
        for key in malformed {
            assert_eq!(set(vec![key.clone()]), Err(JwksError::NoUsableKey), "{key}");
        }
        // Leading zero bytes of the modulus do not count towards its size.
        let mut padded = vec![0u8; 2];
        padded.extend([0xC5; 255]);
        let key = json!({"kty": "RSA", "kid": "z", "n": b64(&padded), "e": "AQAB"});
        assert_eq!(set(vec![key]), Err(JwksError::NoUsableKey));
    }

    #[test]
    fn one_bad_key_does_not_spoil_the_set() {
        let set = set(vec![json!({"kty": "RSA"}), ec_jwk("good")]).unwrap();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn documents_that_are_not_key_sets_are_refused() {
        for body in [
            "",
            "[]",
            "{}",
            r#"{"keys": {}}"#,
            r#"{"keys": "k"}"#,
            "not json",
        ] {
            assert_eq!(
                parse_jwks(body.as_bytes()),
                Err(JwksError::NotAKeySet),
                "{body}"
            );
        }
        assert_eq!(
            parse_jwks(r#"{"keys": []}"#.as_bytes()),
            Err(JwksError::NoUsableKey)
        );
        let huge = vec![b' '; MAX_JWKS_BYTES + 1];
        assert_eq!(parse_jwks(&huge), Err(JwksError::TooLarge));
    }

    #[test]
    fn a_set_is_cut_at_max_keys() {
        let keys = (0..40).map(|i| ec_jwk(&format!("k{i}"))).collect();
        let set = set(keys).unwrap();
        assert_eq!(set.len(), MAX_KEYS);
        assert!(set.find(Some("k31"), Algorithm::Es256).is_some());
        assert!(set.find(Some("k32"), Algorithm::Es256).is_none());
    }

    #[test]
    fn the_import_jwk_has_public_parameters_only() {
        let set = set(vec![{
            let mut key = rsa_jwk("r", 256);
            key["d"] = json!("private exponent that must not travel");
            key
        }])
        .unwrap();
        let jwk = set.find(Some("r"), Algorithm::Rs256).unwrap().key.to_jwk();
        let mut names: Vec<&str> = jwk
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["e", "kty", "n"]);
        assert_eq!(jwk["e"], "AQAB");
        let ec = PublicKey::P256 {
            x: vec![7; 32],
            y: vec![9; 32],
        }
        .to_jwk();
        assert_eq!(
            ec,
            json!({"kty": "EC", "crv": "P-256", "x": b64(&[7; 32]), "y": b64(&[9; 32])})
        );
    }

    #[test]
    fn ttl_follows_max_age_within_bounds() {
        assert_eq!(ttl_from_cache_control(None), DEFAULT_TTL_SECS);
        assert_eq!(ttl_from_cache_control(Some("public, max-age=3600")), 3600);
        assert_eq!(ttl_from_cache_control(Some("max-age=\"900\"")), 900);
        assert_eq!(
            ttl_from_cache_control(Some("Max-Age=120, must-revalidate")),
            120
        );
        assert_eq!(ttl_from_cache_control(Some("max-age=5")), MIN_TTL_SECS);
        assert_eq!(ttl_from_cache_control(Some("max-age=0")), MIN_TTL_SECS);
        assert_eq!(
            ttl_from_cache_control(Some("max-age=31536000")),
            MAX_TTL_SECS
        );
        assert_eq!(
            ttl_from_cache_control(Some("max-age=99999999999999999999")),
            DEFAULT_TTL_SECS
        );
        assert_eq!(ttl_from_cache_control(Some("max-age=-5")), DEFAULT_TTL_SECS);
        assert_eq!(ttl_from_cache_control(Some("public")), DEFAULT_TTL_SECS);
        assert_eq!(
            ttl_from_cache_control(Some("max-age=600, no-store")),
            MIN_TTL_SECS
        );
        assert_eq!(ttl_from_cache_control(Some("no-cache")), MIN_TTL_SECS);
    }

    #[test]
    fn the_cache_fetches_when_empty_or_expired_and_never_within_the_cooldown() {
        let now = 1_000_000;
        let mut cache = JwksCache::default();
        assert!(cache.due(now));
        assert!(cache.set().is_none());
        cache.failed(now);
        // A failing provider is not asked again for every request.
        assert!(!cache.due(now + REFETCH_COOLDOWN_SECS - 1));
        assert!(cache.due(now + REFETCH_COOLDOWN_SECS));

        let keys = set(vec![ec_jwk("e1")]).unwrap();
        let t = now + 100;
        cache.fetched(keys.clone(), 300, t);
        assert_eq!(cache.set(), Some(&keys));
        assert!(!cache.due(t + 299));
        assert!(cache.due(t + 300));
        // Unknown kids: one refetch per cooldown, however many requests ask.
        assert!(!cache.may_refetch(t + 1));
        assert!(cache.may_refetch(t + REFETCH_COOLDOWN_SECS));

        // Expired and the provider down: the old keys stay usable.
        cache.failed(t + 400);
        assert_eq!(cache.set(), Some(&keys));
        assert!(!cache.due(t + 401));
        assert!(cache.due(t + 400 + REFETCH_COOLDOWN_SECS));
    }

    #[test]
    fn the_cache_saturates_on_extreme_clocks() {
        let mut cache = JwksCache::default();
        let keys = set(vec![ec_jwk("e1")]).unwrap();
        cache.fetched(keys, MAX_TTL_SECS, i64::MAX - 5);
        assert!(!cache.due(i64::MAX - 4));
        // A clock that jumps backwards does not open the gate.
        assert!(!cache.may_refetch(i64::MIN));
        cache.failed(i64::MIN);
        assert!(cache.may_refetch(i64::MAX));
    }
}
