//! Property tests for everything that parses attacker-controlled input: JWTs, webhook signature
//! headers and sealed tokens must be total (never panic) and must only accept what they signed.

use leadheat_domain::auth::{bearer_token, mint_jwt, verify_jwt, AuthError, Claims};
use leadheat_domain::crypto::{decrypt_token, encrypt_token, sealed_key_id, CryptoError, TokenKey};
use leadheat_domain::signature::{
    sign_linkedin, sign_meta, verify_linkedin_signature, verify_meta_signature, SignatureError,
};
use leadheat_domain::types::Role;
use proptest::prelude::*;

const NOW: i64 = 1_750_000_000;

fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(vec![Role::Admin, Role::Member, Role::Viewer])
}

fn claims() -> impl Strategy<Value = Claims> {
    (
        "[A-Za-z0-9_\\-é]{1,40}",
        "[A-Za-z0-9_\\-]{1,40}",
        role(),
        (NOW + 1)..(NOW + 10 * 365 * 86_400),
        prop::option::of((NOW - 86_400)..NOW),
        prop::option::of((NOW - 86_400)..NOW),
    )
        .prop_map(|(sub, org, role, exp, iat, nbf)| Claims {
            sub,
            org,
            role,
            exp,
            iat,
            nbf,
        })
}

/// Strings shaped like tokens (three dot-separated base64url-ish parts) reach deeper code paths
/// than uniformly random strings.
fn token_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_\\-=+/.]{0,200}",
        (
            "[A-Za-z0-9_\\-]{0,60}",
            "[A-Za-z0-9_\\-]{0,60}",
            "[A-Za-z0-9_\\-]{0,60}"
        )
            .prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
    ]
}

proptest! {
    #[test]
    fn verify_jwt_never_panics(token in token_like(), secret in any::<Vec<u8>>(), now in any::<i64>()) {
        let _ = verify_jwt(&token, &secret, now);
    }

    #[test]
    fn bearer_token_never_panics(header in any::<String>()) {
        let _ = bearer_token(Some(&header));
    }

    #[test]
    fn minted_jwts_round_trip(claims in claims(), secret in prop::collection::vec(any::<u8>(), 1..64)) {
        let token = mint_jwt(&claims, &secret);
        prop_assert_eq!(verify_jwt(&token, &secret, NOW), Ok(claims));
    }

    #[test]
    fn any_single_character_change_to_a_jwt_is_rejected(
        claims in claims(),
        position in any::<prop::sample::Index>(),
        replacement in prop::char::range('0', 'z'),
    ) {
        let token = mint_jwt(&claims, b"secret");
        let index = position.index(token.len());
        // Tokens are ASCII, so byte positions are char boundaries.
        let original = token.as_bytes()[index] as char;
        prop_assume!(original != replacement && original != '.');
        let mut tampered = token.clone();
        tampered.replace_range(index..=index, &replacement.to_string());
        // Strict base64url has one spelling per value, so every change alters the signed input,
        // the signature, or makes a segment undecodable.
        prop_assert!(verify_jwt(&tampered, b"secret", NOW).is_err());
    }

    #[test]
    fn jwt_with_another_secret_is_a_bad_signature(
        claims in claims(),
        secret in prop::collection::vec(any::<u8>(), 1..64),
        other in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        prop_assume!(secret != other);
        let token = mint_jwt(&claims, &secret);
        prop_assert_eq!(verify_jwt(&token, &other, NOW), Err(AuthError::BadSignature));
    }

    #[test]
    fn signature_header_parsing_never_panics(header in any::<String>(), body in any::<Vec<u8>>()) {
        let _ = verify_meta_signature(Some(&header), &body, &[b"secret", b""]);
        let _ = verify_linkedin_signature(Some(&header), &body, b"secret");
    }

    #[test]
    fn near_miss_signature_headers_never_panic_or_verify(
        prefix in prop_oneof![Just(""), Just("sha256="), Just("hmacsha256="), Just("SHA256=")],
        tag in "[0-9a-fA-Fé=g ]{0,70}",
        body in any::<Vec<u8>>(),
    ) {
        let header = format!("{prefix}{tag}");
        prop_assert!(verify_meta_signature(Some(&header), &body, &[b"secret"]).is_err());
        prop_assert!(verify_linkedin_signature(Some(&header), &body, b"secret").is_err());
    }

    #[test]
    fn signed_webhook_bodies_verify_and_tampered_ones_do_not(
        body in prop::collection::vec(any::<u8>(), 1..512),
        secret in prop::collection::vec(any::<u8>(), 1..64),
        flip in any::<prop::sample::Index>(),
    ) {
        prop_assert_eq!(verify_meta_signature(Some(&sign_meta(&body, &secret)), &body, &[&secret]), Ok(()));
        prop_assert_eq!(verify_linkedin_signature(Some(&sign_linkedin(&body, &secret)), &body, &secret), Ok(()));

        let mut tampered = body.clone();
        tampered[flip.index(body.len())] ^= 0x01;
        prop_assert_eq!(
            verify_meta_signature(Some(&sign_meta(&body, &secret)), &tampered, &[&secret]),
            Err(SignatureError::Mismatch)
        );
        prop_assert_eq!(
            verify_linkedin_signature(Some(&sign_linkedin(&body, &secret)), &tampered, &secret),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn sealed_tokens_round_trip(
        key_bytes in any::<[u8; 32]>(),
        nonce in any::<[u8; 12]>(),
        plaintext in any::<String>(),
        associated_data in any::<Vec<u8>>(),
    ) {
        let key = TokenKey::from_bytes(key_bytes);
        let sealed = encrypt_token(&key, nonce, &plaintext, &associated_data);
        prop_assert_eq!(sealed_key_id(&sealed), Some(key.key_id()));
        prop_assert_eq!(decrypt_token(&[&key], &sealed, &associated_data), Ok(plaintext));
    }

    #[test]
    fn sealed_tokens_reject_other_associated_data(
        nonce in any::<[u8; 12]>(),
        plaintext in ".{0,64}",
        associated_data in any::<Vec<u8>>(),
        other in any::<Vec<u8>>(),
    ) {
        prop_assume!(associated_data != other);
        let key = TokenKey::from_bytes([9; 32]);
        let sealed = encrypt_token(&key, nonce, &plaintext, &associated_data);
        prop_assert_eq!(decrypt_token(&[&key], &sealed, &other), Err(CryptoError::DecryptionFailed));
    }

    #[test]
    fn decrypt_never_panics(sealed in token_like(), associated_data in any::<Vec<u8>>()) {
        let key = TokenKey::from_bytes([9; 32]);
        let _ = decrypt_token(&[&key], &sealed, &associated_data);
        let _ = sealed_key_id(&sealed);
    }

    #[test]
    fn decrypt_of_envelope_shaped_strings_never_panics(
        key_id in "[0-9a-f]{8}",
        nonce in "[A-Za-z0-9_\\-]{0,24}",
        ciphertext in "[A-Za-z0-9_\\-]{0,80}",
    ) {
        let key = TokenKey::from_bytes([9; 32]);
        let sealed = format!("v1.{key_id}.{nonce}.{ciphertext}");
        prop_assert!(decrypt_token(&[&key], &sealed, b"ad").is_err());
    }

    #[test]
    fn key_parsing_never_panics(encoded in any::<String>()) {
        let _ = TokenKey::parse(&encoded);
    }
}
