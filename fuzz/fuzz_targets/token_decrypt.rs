//! `crypto::TokenKey::parse`, `crypto::decrypt_token` and `crypto::sealed_key_id` on arbitrary
//! keys, sealed strings and associated data.
//!
//! Oracles: never panics; a parsed key has an 8-hex-digit id; seal/open round-trips; a sealed
//! token opened with other associated data, another key, or with any single character changed
//! fails; key ids never leak key bytes through `Debug`.
#![no_main]

use arbitrary::Arbitrary;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use leadheat_domain::crypto::{
    decrypt_token, encrypt_token, sealed_key_id, CryptoError, TokenKey, KEY_ID_LEN,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    key_text: String,
    sealed: String,
    key_bytes: [u8; 32],
    other_key_bytes: [u8; 32],
    nonce: [u8; 12],
    plaintext: String,
    aad: Vec<u8>,
    flip: u16,
    replacement: u8,
}

fuzz_target!(|input: Input| {
    let parsed = TokenKey::parse(&input.key_text);
    if let Ok(key) = &parsed {
        assert_eq!(key.key_id().len(), KEY_ID_LEN);
        assert!(key.key_id().bytes().all(|b| b.is_ascii_hexdigit()));
        let debug = format!("{key:?}");
        assert!(
            !debug.contains(input.key_text.trim()) || input.key_text.trim().len() <= KEY_ID_LEN
        );
    }

    let key = TokenKey::from_bytes(input.key_bytes);
    let other = TokenKey::from_bytes(input.other_key_bytes);
    let keys: Vec<&TokenKey> = match &parsed {
        Ok(parsed) => vec![&key, parsed],
        Err(_) => vec![&key],
    };

    // Arbitrary sealed strings: whatever opens must name a configured key.
    let _ = sealed_key_id(&input.sealed);
    if decrypt_token(&keys, &input.sealed, &input.aad).is_ok() {
        let id = sealed_key_id(&input.sealed).expect("an opened token has a key id");
        assert!(keys.iter().any(|k| k.key_id() == id));
    }

    // Round trip.
    let sealed = encrypt_token(&key, input.nonce, &input.plaintext, &input.aad);
    assert_eq!(sealed_key_id(&sealed), Some(key.key_id()));
    assert_eq!(
        decrypt_token(&[&key], &sealed, &input.aad).as_deref(),
        Ok(input.plaintext.as_str())
    );
    // Rotation: the old key is still found in a list.
    assert_eq!(
        decrypt_token(&[&other, &key], &sealed, &input.aad).as_deref(),
        Ok(input.plaintext.as_str())
    );
    // The plaintext is not stored in the clear: its base64url spelling is not in the sealed
    // string (for plaintexts long enough that a chance match is out of the question).
    if input.plaintext.len() >= 12 {
        let spelled = URL_SAFE_NO_PAD.encode(input.plaintext.as_bytes());
        let ciphertext = sealed.rsplit('.').next().unwrap();
        assert!(
            !ciphertext.contains(&spelled[..spelled.len() - 4]),
            "plaintext visible in {sealed}"
        );
    }
    // Other associated data (the token of another org's row) fails.
    let mut aad = input.aad.clone();
    aad.push(input.replacement);
    assert_eq!(
        decrypt_token(&[&key], &sealed, &aad),
        Err(CryptoError::DecryptionFailed)
    );
    // Another key fails (unknown id, or a colliding id that does not authenticate).
    if other.key_id() != key.key_id() {
        assert!(matches!(
            decrypt_token(&[&other], &sealed, &input.aad),
            Err(CryptoError::UnknownKeyId(_))
        ));
    } else if input.key_bytes != input.other_key_bytes {
        assert_eq!(
            decrypt_token(&[&other], &sealed, &input.aad),
            Err(CryptoError::DecryptionFailed)
        );
    }
    // Any one character changed fails.
    let mut bytes = sealed.clone().into_bytes();
    let at = input.flip as usize % bytes.len();
    let replacement = b"AZaz09-_.v"[input.replacement as usize % 10];
    if bytes[at] != replacement {
        bytes[at] = replacement;
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(
            decrypt_token(&[&key, &other], &tampered, &input.aad).is_err(),
            "a tampered sealed token opened: {tampered}"
        );
    }
});
