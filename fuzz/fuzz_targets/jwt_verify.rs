//! `auth::verify_jwt` and `auth::bearer_token` on arbitrary tokens, secrets and clocks.
//!
//! Oracles: never panics; anything accepted has an HS256 header, a signature that really is the
//! HMAC of its signing input, non-blank `sub`/`org`, and times within the leeway; a minted token
//! round-trips; flipping any byte of a valid token makes it fail.
#![no_main]

use arbitrary::Arbitrary;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use leadheat_domain::auth::{
    bearer_token, mint_jwt, verify_jwt, AuthError, Claims, CLOCK_SKEW_LEEWAY_SECS,
};
use leadheat_domain::types::Role;
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

#[derive(Debug, Arbitrary)]
struct Input {
    token: String,
    secret: Vec<u8>,
    now: i64,
    sub: String,
    org: String,
    role: u8,
    exp_offset: i32,
    nbf_offset: Option<i32>,
    iat: Option<i64>,
    flip: u16,
}

fn hs256(secret: &[u8], input: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn check_accepted(token: &str, secret: &[u8], now: i64, claims: &Claims) {
    let token = token.trim();
    let mut parts = token.split('.');
    let (h, p, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
    assert_eq!(
        header["alg"], "HS256",
        "accepted a token whose alg is not HS256"
    );
    assert!(!secret.is_empty(), "accepted a token under an empty secret");
    assert_eq!(
        URL_SAFE_NO_PAD.decode(s).unwrap(),
        hs256(secret, &format!("{h}.{p}")),
        "accepted a token whose signature is not the HMAC of its signing input"
    );
    assert!(!claims.sub.trim().is_empty() && !claims.org.trim().is_empty());
    assert!(
        now < claims.exp.saturating_add(CLOCK_SKEW_LEEWAY_SECS),
        "accepted an expired token"
    );
    if let Some(nbf) = claims.nbf {
        assert!(
            nbf.saturating_sub(CLOCK_SKEW_LEEWAY_SECS) <= now,
            "accepted a token before nbf"
        );
    }
}

fuzz_target!(|input: Input| {
    // Arbitrary tokens under an arbitrary secret.
    if let Ok(claims) = verify_jwt(&input.token, &input.secret, input.now) {
        check_accepted(&input.token, &input.secret, input.now, &claims);
    }
    let _ = bearer_token(Some(&input.token));
    if let Some(token) = bearer_token(Some(&input.token)) {
        assert!(!token.is_empty() && input.token.contains(token));
    }

    // Round trip: a minted token verifies to the same claims when its times allow it.
    let secret: &[u8] = if input.secret.is_empty() {
        b"k"
    } else {
        &input.secret
    };
    let role = Role::ALL[input.role as usize % Role::ALL.len()];
    let claims = Claims {
        sub: input.sub.clone(),
        org: input.org.clone(),
        role,
        exp: input.now.saturating_add(input.exp_offset as i64),
        iat: input.iat,
        nbf: input.nbf_offset.map(|o| input.now.saturating_add(o as i64)),
    };
    let token = mint_jwt(&claims, secret);
    let verified = verify_jwt(&token, secret, input.now);
    let blank = claims.sub.trim().is_empty() || claims.org.trim().is_empty();
    let expired = input.now >= claims.exp.saturating_add(CLOCK_SKEW_LEEWAY_SECS);
    let early = claims
        .nbf
        .is_some_and(|nbf| nbf.saturating_sub(CLOCK_SKEW_LEEWAY_SECS) > input.now);
    match &verified {
        Ok(got) => {
            assert_eq!(got, &claims);
            check_accepted(&token, secret, input.now, got);
        }
        Err(AuthError::InvalidClaims(_)) => assert!(blank, "valid claims refused: {claims:?}"),
        Err(AuthError::Expired) => assert!(expired),
        Err(AuthError::NotYetValid) => assert!(early),
        // A minted token longer than MAX_TOKEN_LEN (huge sub/org) is refused as malformed.
        Err(AuthError::Malformed) => {
            assert!(token.len() > leadheat_domain::auth::MAX_TOKEN_LEN)
        }
        Err(other) => panic!("minted token refused: {other:?}"),
    }

    // Tampering: changing any one byte of a valid token must never keep it valid with other
    // claims (changes that only touch surrounding whitespace are trimmed away and not tested).
    if verified.is_ok() {
        let mut bytes = token.clone().into_bytes();
        let at = input.flip as usize % bytes.len();
        let replacement = if bytes[at] == b'A' { b'B' } else { b'A' };
        bytes[at] = replacement;
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(
            verify_jwt(&tampered, secret, input.now).is_err(),
            "a tampered token verified: {tampered}"
        );
        // And another secret never verifies it.
        let mut other = secret.to_vec();
        other.push(0x5a);
        assert_eq!(
            verify_jwt(&token, &other, input.now),
            Err(AuthError::BadSignature)
        );
    }
});
