//! Platform access tokens, encrypted at rest with AES-256-GCM.
//!
//! A sealed token is one ASCII string that fits a TEXT column:
//!
//! ```text
//! v1.<key_id>.<base64url nonce>.<base64url ciphertext+tag>
//! ```
//!
//! - `key_id` (8 hex chars of SHA-256 of the key) names the key that sealed it, so after a rotation
//!   the old key can still open old rows (pass `[current, previous]` to [`decrypt_token`]) and a
//!   re-encryption job can find rows still sealed by the previous key ([`sealed_key_id`]).
//! - The caller's associated data (e.g. `"org_id|platform"`) binds the ciphertext to its row: a
//!   token copied into another org's row fails to decrypt. The envelope prefix `v1.<key_id>.` is
//!   authenticated too, so neither can be swapped.
//! - The 12-byte nonce is an argument (this crate draws no randomness). It MUST be fresh random
//!   bytes for every encryption: reusing a nonce under one key breaks GCM.

use std::fmt;
use std::str::FromStr;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Key, KeyInit, Nonce};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Version tag of the sealed format produced by [`encrypt_token`].
pub const SEALED_TOKEN_VERSION: &str = "v1";
/// Length of a [`TokenKey`]'s id, in hex characters.
pub const KEY_ID_LEN: usize = 8;
/// AES-GCM's standard nonce size.
pub const NONCE_LEN: usize = 12;
/// Platform tokens are a few hundred bytes; anything far larger is not ours, so it is refused
/// before any decoding work.
const MAX_SEALED_LEN: usize = 64 * 1024;
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// Base64 of a key as people paste it: with or without `=` padding.
const BASE64_STANDARD_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const BASE64_URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a key could not be loaded or a sealed token could not be opened. Messages never contain
/// key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CryptoError {
    #[error("invalid TOKEN_ENCRYPTION_KEY: {0}")]
    InvalidKey(String),
    #[error("sealed token is malformed: {0}")]
    Malformed(&'static str),
    #[error("sealed token has an unsupported format version")]
    UnsupportedVersion,
    /// Sealed by a key that is not configured any more (or not yet).
    #[error("sealed token was encrypted with unknown key {0}")]
    UnknownKeyId(String),
    /// Wrong key, wrong associated data, or a tampered nonce, ciphertext or envelope.
    #[error("sealed token failed authentication")]
    DecryptionFailed,
}

/// A 256-bit AES-GCM key together with its public key id.
#[derive(Clone)]
pub struct TokenKey {
    cipher_key: [u8; KEY_LEN],
    key_id: String,
}

impl TokenKey {
    /// Parses `TOKEN_ENCRYPTION_KEY`: exactly 32 bytes written as 64 hex characters or as base64
    /// (standard or URL-safe alphabet, padding optional). Surrounding whitespace is ignored.
    pub fn parse(encoded: &str) -> Result<Self, CryptoError> {
        let encoded = encoded.trim();
        if encoded.is_empty() {
            return Err(invalid_key("it is empty"));
        }
        // Hex first: 64 hex characters are also valid base64 (of 48 bytes).
        if encoded.len() == 2 * KEY_LEN {
            let mut key = [0u8; KEY_LEN];
            if hex::decode_to_slice(encoded, &mut key).is_ok() {
                return Ok(Self::from_bytes(key));
            }
        }
        let decoded = BASE64_STANDARD_ANY_PADDING
            .decode(encoded)
            .or_else(|_| BASE64_URL_SAFE_ANY_PADDING.decode(encoded))
            .map_err(|_| invalid_key("it is neither 64 hex characters nor base64"))?;
        let key: [u8; KEY_LEN] = decoded.try_into().map_err(|bytes: Vec<u8>| {
            // Saying how long it was helps the operator without echoing the secret.
            CryptoError::InvalidKey(format!(
                "it decodes to {} bytes; expected 32 bytes as 64 hex characters or base64",
                bytes.len()
            ))
        })?;
        Ok(Self::from_bytes(key))
    }

    /// Wraps raw key bytes (e.g. freshly generated ones).
    pub fn from_bytes(cipher_key: [u8; KEY_LEN]) -> Self {
        let digest = Sha256::digest(cipher_key);
        let key_id = hex::encode(&digest[..KEY_ID_LEN / 2]);
        Self { cipher_key, key_id }
    }

    /// First 8 lowercase hex characters of SHA-256 of the key: recognises the key that sealed a
    /// token without revealing it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.cipher_key))
    }
}

impl FromStr for TokenKey {
    type Err = CryptoError;

    fn from_str(encoded: &str) -> Result<Self, Self::Err> {
        Self::parse(encoded)
    }
}

/// Shows the key id only, so a key never ends up in a log line.
impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

fn invalid_key(reason: &str) -> CryptoError {
    CryptoError::InvalidKey(format!(
        "{reason}; expected 32 bytes as 64 hex characters or base64 (standard or URL-safe)"
    ))
}

/// Seals `plaintext` under `key` as `v1.<key_id>.<nonce>.<ciphertext+tag>`.
///
/// `nonce` must be 12 fresh random bytes for every call. `associated_data` is authenticated but
/// not stored: [`decrypt_token`] must be given the same bytes.
pub fn encrypt_token(
    key: &TokenKey,
    nonce: [u8; NONCE_LEN],
    plaintext: &str,
    associated_data: &[u8],
) -> String {
    let envelope = envelope_prefix(key.key_id());
    let aad = authenticated_data(&envelope, associated_data);
    let ciphertext = key
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext.as_bytes(),
                aad: &aad,
            },
        )
        // AES-GCM refuses only messages over 64 GiB, which cannot exist in a Worker's memory.
        .expect("AES-GCM encrypts any plaintext that fits in memory");
    format!(
        "{envelope}{}.{}",
        URL_SAFE_NO_PAD.encode(nonce),
        URL_SAFE_NO_PAD.encode(ciphertext)
    )
}

/// Opens a token sealed by [`encrypt_token`] with whichever of `keys` has its key id (pass the
/// current key and the previous ones during a rotation). Total over arbitrary input.
pub fn decrypt_token(
    keys: &[&TokenKey],
    sealed: &str,
    associated_data: &[u8],
) -> Result<String, CryptoError> {
    let parts = SealedParts::parse(sealed)?;
    let aad = authenticated_data(&envelope_prefix(parts.key_id), associated_data);
    let nonce = Nonce::from_slice(&parts.nonce);
    // Two keys sharing a 32-bit id is unlikely but possible, so try every candidate.
    let mut candidates = keys
        .iter()
        .filter(|key| key.key_id() == parts.key_id)
        .peekable();
    if candidates.peek().is_none() {
        return Err(CryptoError::UnknownKeyId(parts.key_id.to_owned()));
    }
    let plaintext = candidates
        .find_map(|key| {
            let payload = Payload {
                msg: &parts.ciphertext,
                aad: &aad,
            };
            key.cipher().decrypt(nonce, payload).ok()
        })
        .ok_or(CryptoError::DecryptionFailed)?;
    // Authenticated bytes came from `encrypt_token`, which only seals `&str`.
    String::from_utf8(plaintext).map_err(|_| CryptoError::Malformed("plaintext is not UTF-8"))
}

/// The key id a sealed token names, if it is well formed: lets a rotation job find the rows still
/// sealed by an old key without decrypting them.
pub fn sealed_key_id(sealed: &str) -> Option<&str> {
    SealedParts::parse(sealed).ok().map(|parts| parts.key_id)
}

/// The configured keys: the current one seals, the previous ones (during a rotation) only open.
///
/// Rotation: set the new key as `TOKEN_ENCRYPTION_KEY` and the old one in
/// `TOKEN_ENCRYPTION_KEYS_PREVIOUS`; tokens sealed by an old key keep working, are re-sealed under
/// the current key as they are used or swept, and once none is left the old key is removed.
#[derive(Debug, Clone)]
pub struct TokenKeyring {
    current: TokenKey,
    previous: Vec<TokenKey>,
}

/// A token opened by a [`TokenKeyring`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedToken {
    pub plaintext: String,
    /// Sealed by a previous key: store it again sealed under the current one.
    pub needs_reseal: bool,
}

impl TokenKeyring {
    /// Parses the current key and an optional list of previous keys (separated by commas or
    /// whitespace; empty means none). A bad previous key is an error too: a rotation that
    /// silently lost its old key would make every old token unreadable.
    pub fn parse(current: &str, previous: Option<&str>) -> Result<Self, CryptoError> {
        let current = TokenKey::parse(current)?;
        let previous = previous
            .unwrap_or("")
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|part| !part.is_empty())
            .enumerate()
            .map(|(index, part)| {
                TokenKey::parse(part).map_err(|error| match error {
                    CryptoError::InvalidKey(reason) => CryptoError::InvalidKey(format!(
                        "previous key {} (TOKEN_ENCRYPTION_KEYS_PREVIOUS): {reason}",
                        index + 1
                    )),
                    other => other,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { current, previous })
    }

    pub fn current(&self) -> &TokenKey {
        &self.current
    }

    /// Seals under the current key (see [`encrypt_token`]).
    pub fn seal(&self, nonce: [u8; NONCE_LEN], plaintext: &str, associated_data: &[u8]) -> String {
        encrypt_token(&self.current, nonce, plaintext, associated_data)
    }

    /// Opens a token sealed by any configured key, saying whether it should be re-sealed.
    pub fn open(&self, sealed: &str, associated_data: &[u8]) -> Result<OpenedToken, CryptoError> {
        let keys: Vec<&TokenKey> = std::iter::once(&self.current)
            .chain(&self.previous)
            .collect();
        let plaintext = decrypt_token(&keys, sealed, associated_data)?;
        Ok(OpenedToken {
            plaintext,
            needs_reseal: sealed_key_id(sealed) != Some(self.current.key_id()),
        })
    }
}

struct SealedParts<'a> {
    key_id: &'a str,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl<'a> SealedParts<'a> {
    fn parse(sealed: &'a str) -> Result<Self, CryptoError> {
        if sealed.len() > MAX_SEALED_LEN {
            return Err(CryptoError::Malformed("too long"));
        }
        let mut segments = sealed.split('.');
        let (Some(version), Some(key_id), Some(nonce), Some(ciphertext), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(CryptoError::Malformed("expected four dot-separated parts"));
        };
        if version != SEALED_TOKEN_VERSION {
            return Err(CryptoError::UnsupportedVersion);
        }
        let is_key_id = key_id.len() == KEY_ID_LEN
            && key_id
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !is_key_id {
            return Err(CryptoError::Malformed("bad key id"));
        }
        let nonce: [u8; NONCE_LEN] = URL_SAFE_NO_PAD
            .decode(nonce)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(CryptoError::Malformed("bad nonce"))?;
        let ciphertext = URL_SAFE_NO_PAD
            .decode(ciphertext)
            .map_err(|_| CryptoError::Malformed("bad ciphertext encoding"))?;
        if ciphertext.len() < TAG_LEN {
            return Err(CryptoError::Malformed("ciphertext shorter than its tag"));
        }
        Ok(Self {
            key_id,
            nonce,
            ciphertext,
        })
    }
}

fn envelope_prefix(key_id: &str) -> String {
    format!("{SEALED_TOKEN_VERSION}.{key_id}.")
}

/// GCM's associated data: the envelope prefix, then the caller's bytes. The prefix has a fixed
/// length, so the concatenation is unambiguous.
fn authenticated_data(envelope: &str, associated_data: &[u8]) -> Vec<u8> {
    [envelope.as_bytes(), associated_data].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const NONCE: [u8; NONCE_LEN] = [7; NONCE_LEN];
    const AD: &[u8] = b"org_1|facebook";
    const TOKEN: &str = "EAAGm0PX4ZCpsBA-very-secret-page-token";

    fn key() -> TokenKey {
        TokenKey::parse(KEY_HEX).unwrap()
    }

    fn other_key() -> TokenKey {
        TokenKey::from_bytes([0x42; 32])
    }

    fn key_bytes() -> [u8; 32] {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(KEY_HEX, &mut bytes).unwrap();
        bytes
    }

    /// Replaces part `index` of a sealed token.
    fn with_part(sealed: &str, index: usize, replacement: &str) -> String {
        let mut parts: Vec<&str> = sealed.split('.').collect();
        parts[index] = replacement;
        parts.join(".")
    }

    /// Flips one bit of a base64url part's decoded bytes.
    fn flip_bit(part: &str, byte: usize) -> String {
        let mut bytes = URL_SAFE_NO_PAD.decode(part).unwrap();
        bytes[byte] ^= 0x01;
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn round_trip() {
        let sealed = encrypt_token(&key(), NONCE, TOKEN, AD);
        assert_eq!(decrypt_token(&[&key()], &sealed, AD).unwrap(), TOKEN);
        assert!(!sealed.contains(TOKEN));
    }

    #[test]
    fn sealed_format_is_versioned_with_key_id_nonce_and_ciphertext() {
        let sealed = encrypt_token(&key(), NONCE, TOKEN, AD);
        let parts: Vec<&str> = sealed.split('.').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], "v1");
        assert_eq!(parts[1], key().key_id());
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap(), NONCE);
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[3]).unwrap().len(),
            TOKEN.len() + TAG_LEN
        );
        assert_eq!(sealed_key_id(&sealed), Some(key().key_id()));
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let sealed = encrypt_token(&key(), NONCE, "", b"");
        assert_eq!(decrypt_token(&[&key()], &sealed, b"").unwrap(), "");
    }

    #[test]
    fn key_id_is_first_eight_hex_chars_of_sha256_of_the_key() {
        let expected = hex::encode(Sha256::digest(key_bytes()));
        assert_eq!(key().key_id(), &expected[..8]);
        assert_ne!(key().key_id(), other_key().key_id());
    }

    #[test]
    fn key_parses_from_hex_and_every_base64_form() {
        let bytes = key_bytes();
        let forms = [
            KEY_HEX.to_string(),
            KEY_HEX.to_ascii_uppercase(),
            format!("  {KEY_HEX}\n"),
            base64::engine::general_purpose::STANDARD.encode(bytes),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes),
            base64::engine::general_purpose::URL_SAFE.encode(bytes),
            URL_SAFE_NO_PAD.encode(bytes),
        ];
        for form in forms {
            let parsed = TokenKey::parse(&form).unwrap_or_else(|e| panic!("{form}: {e}"));
            assert_eq!(parsed.key_id(), key().key_id(), "{form}");
        }
        // Bytes that differ between the two alphabets (0xfb 0xff → "+/" vs "-_").
        let tricky = [0xfb; 32];
        let standard = base64::engine::general_purpose::STANDARD.encode(tricky);
        let url_safe = URL_SAFE_NO_PAD.encode(tricky);
        assert!(standard.contains('+') || standard.contains('/'));
        assert_eq!(
            TokenKey::parse(&standard).unwrap().key_id(),
            TokenKey::parse(&url_safe).unwrap().key_id()
        );
        assert_eq!(
            "0001"
                .repeat(16)
                .parse::<TokenKey>()
                .unwrap()
                .key_id()
                .len(),
            8
        );
    }

    #[test]
    fn key_parsing_rejects_wrong_sizes_and_garbage_with_a_helpful_message() {
        let too_short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        let too_long = base64::engine::general_purpose::STANDARD.encode([1u8; 33]);
        for bad in [
            "",
            "   ",
            "not a key",
            &KEY_HEX[..62],
            &KEY_HEX[..63],
            &too_short,
            &too_long,
            "zz".repeat(32).as_str(),
            "é".repeat(32).as_str(),
        ] {
            match TokenKey::parse(bad) {
                Err(CryptoError::InvalidKey(message)) => {
                    assert!(message.contains("32 bytes"), "{message}");
                    assert!(message.contains("hex"), "{message}");
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        let shown = format!("{:?}", key());
        assert!(shown.contains(key().key_id()));
        assert!(!shown.contains("cipher_key"));
        assert!(!shown.contains("[0, 1, 2"));
    }

    #[test]
    fn wrong_associated_data_fails() {
        let sealed = encrypt_token(&key(), NONCE, TOKEN, AD);
        assert_eq!(
            decrypt_token(&[&key()], &sealed, b"org_2|facebook"),
            Err(CryptoError::DecryptionFailed)
        );
        assert_eq!(
            decrypt_token(&[&key()], &sealed, b""),
            Err(CryptoError::DecryptionFailed)
        );
    }

    #[test]
    fn wrong_key_is_unknown_and_a_forged_key_id_fails_authentication() {
        let sealed = encrypt_token(&key(), NONCE, TOKEN, AD);
        assert_eq!(
            decrypt_token(&[&other_key()], &sealed, AD),
            Err(CryptoError::UnknownKeyId(key().key_id().to_string()))
        );
        assert_eq!(
            decrypt_token(&[], &sealed, AD),
            Err(CryptoError::UnknownKeyId(key().key_id().to_string()))
        );
        // Relabel the envelope with the other key's id: the other key is tried and fails.
        let relabelled = with_part(&sealed, 1, other_key().key_id());
        assert_eq!(
            decrypt_token(&[&other_key()], &relabelled, AD),
            Err(CryptoError::DecryptionFailed)
        );
    }

    #[test]
    fn rotation_decrypts_old_tokens_with_the_previous_key() {
        let (new, old) = (other_key(), key());
        let sealed_by_old = encrypt_token(&old, NONCE, TOKEN, AD);
        let sealed_by_new = encrypt_token(&new, NONCE, TOKEN, AD);
        assert_eq!(
            decrypt_token(&[&new, &old], &sealed_by_old, AD).unwrap(),
            TOKEN
        );
        assert_eq!(
            decrypt_token(&[&new, &old], &sealed_by_new, AD).unwrap(),
            TOKEN
        );
        assert_eq!(sealed_key_id(&sealed_by_old), Some(old.key_id()));
        assert!(matches!(
            decrypt_token(&[&new], &sealed_by_old, AD),
            Err(CryptoError::UnknownKeyId(_))
        ));
    }

    #[test]
    fn tampering_with_any_part_is_rejected() {
        let sealed = encrypt_token(&key(), NONCE, TOKEN, AD);
        let parts: Vec<&str> = sealed.split('.').collect();
        let keys = [&key()];

        assert_eq!(
            decrypt_token(&keys, &with_part(&sealed, 0, "v2"), AD),
            Err(CryptoError::UnsupportedVersion)
        );
        assert_eq!(
            decrypt_token(&keys, &with_part(&sealed, 1, "00000000"), AD),
            Err(CryptoError::UnknownKeyId("00000000".into()))
        );
        assert_eq!(
            decrypt_token(&keys, &with_part(&sealed, 2, &flip_bit(parts[2], 0)), AD),
            Err(CryptoError::DecryptionFailed)
        );
        let ciphertext_len = URL_SAFE_NO_PAD.decode(parts[3]).unwrap().len();
        for byte in [0, TOKEN.len() - 1, TOKEN.len(), ciphertext_len - 1] {
            let tampered = with_part(&sealed, 3, &flip_bit(parts[3], byte));
            assert_eq!(
                decrypt_token(&keys, &tampered, AD),
                Err(CryptoError::DecryptionFailed),
                "byte {byte}"
            );
        }
        // Truncating the tag.
        let mut short = URL_SAFE_NO_PAD.decode(parts[3]).unwrap();
        short.truncate(short.len() - 1);
        let truncated = with_part(&sealed, 3, &URL_SAFE_NO_PAD.encode(short));
        assert_eq!(
            decrypt_token(&keys, &truncated, AD),
            Err(CryptoError::DecryptionFailed)
        );
    }

    #[test]
    fn malformed_sealed_tokens_are_rejected() {
        let sealed = encrypt_token(&key(), NONCE, TOKEN, AD);
        let parts: Vec<&str> = sealed.split('.').collect();
        let cases = [
            String::new(),
            "v1".into(),
            parts[..3].join("."),
            format!("{sealed}.extra"),
            with_part(&sealed, 1, "ABCDEF01"),
            with_part(&sealed, 1, "abc"),
            with_part(&sealed, 2, "AAAA"),
            with_part(&sealed, 2, "!!!!!!!!!!!!!!!!"),
            with_part(&sealed, 3, "AAAA"),
            with_part(&sealed, 3, &format!("{}=", parts[3])),
            format!("{sealed}{}", "A".repeat(MAX_SEALED_LEN)),
        ];
        for case in cases {
            let short: String = case.chars().take(60).collect();
            assert!(
                matches!(
                    decrypt_token(&[&key()], &case, AD),
                    Err(CryptoError::Malformed(_))
                ),
                "{short}"
            );
            assert_eq!(sealed_key_id(&case), None, "{short}");
        }
    }

    #[test]
    fn keyring_opens_old_tokens_and_asks_to_reseal_them() {
        let old = other_key();
        let old_hex = hex::encode([0x42u8; 32]);
        let sealed_old = encrypt_token(&old, NONCE, TOKEN, AD);

        let rotated = TokenKeyring::parse(KEY_HEX, Some(&format!(" {old_hex} ,"))).unwrap();
        assert_eq!(rotated.current().key_id(), key().key_id());
        let opened = rotated.open(&sealed_old, AD).unwrap();
        assert_eq!(opened.plaintext, TOKEN);
        assert!(opened.needs_reseal);

        let resealed = rotated.seal([9; NONCE_LEN], &opened.plaintext, AD);
        assert_eq!(sealed_key_id(&resealed), Some(key().key_id()));
        let reopened = rotated.open(&resealed, AD).unwrap();
        assert_eq!(reopened.plaintext, TOKEN);
        assert!(!reopened.needs_reseal);

        // Once the old key is removed, only re-sealed tokens open.
        let after = TokenKeyring::parse(KEY_HEX, None).unwrap();
        assert_eq!(after.open(&resealed, AD).unwrap().plaintext, TOKEN);
        assert_eq!(
            after.open(&sealed_old, AD),
            Err(CryptoError::UnknownKeyId(old.key_id().to_string()))
        );
        // The associated data still binds a token to its row under a keyring.
        assert_eq!(
            rotated.open(&sealed_old, b"org_2|facebook"),
            Err(CryptoError::DecryptionFailed)
        );
    }

    #[test]
    fn keyring_refuses_a_bad_previous_key_and_names_it() {
        let error = TokenKeyring::parse(KEY_HEX, Some(&format!("{KEY_HEX}, nope"))).unwrap_err();
        match error {
            CryptoError::InvalidKey(reason) => {
                assert!(reason.contains("previous key 2"), "{reason}");
                assert!(!reason.contains("nope"), "the key is not echoed: {reason}");
            }
            other => panic!("expected InvalidKey, got {other:?}"),
        }
        assert!(TokenKeyring::parse("", None).is_err());
        assert!(TokenKeyring::parse(KEY_HEX, Some(" , ")).is_ok());
    }
}
