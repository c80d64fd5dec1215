//! `signature::verify_meta_signature` and `verify_linkedin_signature` with arbitrary header values,
//! bodies and secrets.
//!
//! Oracles: never panics; anything accepted really is the HMAC of the body under one of the
//! non-empty secrets (LinkedIn: of `hmacsha256=` + body); a signed body verifies (with and without
//! LinkedIn's optional prefix, in either hex case) and the same header over another body, under
//! another secret, or under the other platform's scheme does not.
#![no_main]

use arbitrary::Arbitrary;
use hmac::{Hmac, Mac};
use leadheat_domain::signature::{
    linkedin_challenge_response, sign_linkedin, sign_meta, verify_linkedin_signature,
    verify_meta_signature, SignatureError,
};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

#[derive(Debug, Arbitrary)]
struct Input {
    header: Option<String>,
    body: Vec<u8>,
    meta_secret: Vec<u8>,
    instagram_secret: Vec<u8>,
    linkedin_secret: Vec<u8>,
    extra: u8,
}

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// The hex digits a header carries once its scheme prefix is removed, lower-cased.
fn claimed_hex(header: &str, prefix: &str, prefix_required: bool) -> Option<String> {
    let value = header.trim();
    let rest = match value.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => &value[prefix.len()..],
        _ if prefix_required => return None,
        _ => value,
    };
    Some(rest.to_ascii_lowercase())
}

fuzz_target!(|input: Input| {
    let Input {
        header,
        body,
        meta_secret,
        instagram_secret,
        linkedin_secret,
        extra,
    } = input;
    let header = header.as_deref();

    // Arbitrary headers: anything accepted must be a genuine signature.
    let secrets: [&[u8]; 2] = [&meta_secret, &instagram_secret];
    if verify_meta_signature(header, &body, &secrets).is_ok() {
        let claimed =
            claimed_hex(header.unwrap(), "sha256=", true).expect("accepted without sha256=");
        let genuine = secrets
            .iter()
            .filter(|s| !s.is_empty())
            .any(|s| hmac_hex(s, &[&body]) == claimed);
        assert!(genuine, "meta accepted a forged signature {header:?}");
    }
    if verify_linkedin_signature(header, &body, &linkedin_secret).is_ok() {
        let claimed = claimed_hex(header.unwrap(), "hmacsha256=", false).unwrap();
        assert!(!linkedin_secret.is_empty());
        assert_eq!(
            hmac_hex(&linkedin_secret, &[b"hmacsha256=", &body]),
            claimed,
            "linkedin accepted a forged signature"
        );
    }
    let _ = linkedin_challenge_response(header.unwrap_or_default(), &linkedin_secret);

    // Round trips and near misses.
    let mut other_body = body.clone();
    other_body.push(extra);
    if !meta_secret.is_empty() {
        let signed = sign_meta(&body, &meta_secret);
        assert_eq!(
            verify_meta_signature(Some(&signed), &body, &[&meta_secret]),
            Ok(())
        );
        assert_eq!(
            verify_meta_signature(Some(&signed.to_ascii_uppercase()), &body, &[&meta_secret]),
            Ok(())
        );
        // Instagram: either configured secret is accepted.
        assert_eq!(
            verify_meta_signature(Some(&signed), &body, &[b"", &meta_secret]),
            Ok(())
        );
        assert_eq!(
            verify_meta_signature(Some(&signed), &other_body, &[&meta_secret]),
            Err(SignatureError::Mismatch)
        );
        // Truncated header.
        assert_eq!(
            verify_meta_signature(Some(&signed[..signed.len() - 1]), &body, &[&meta_secret]),
            Err(SignatureError::Malformed)
        );
        // Without the mandatory prefix.
        assert_eq!(
            verify_meta_signature(Some(&signed[7..]), &body, &[&meta_secret]),
            Err(SignatureError::Malformed)
        );
        // A Meta signature is never a LinkedIn one (the signed bytes differ).
        assert!(verify_linkedin_signature(Some(&signed[7..]), &body, &meta_secret).is_err());
        let mut other_secret = meta_secret.clone();
        other_secret.push(extra | 1);
        assert_eq!(
            verify_meta_signature(Some(&signed), &body, &[&other_secret]),
            Err(SignatureError::Mismatch)
        );
    }
    if !linkedin_secret.is_empty() {
        let signed = sign_linkedin(&body, &linkedin_secret);
        assert_eq!(
            verify_linkedin_signature(Some(&signed), &body, &linkedin_secret),
            Ok(())
        );
        let prefixed = format!("hmacsha256={signed}");
        assert_eq!(
            verify_linkedin_signature(Some(&prefixed), &body, &linkedin_secret),
            Ok(())
        );
        assert_eq!(
            verify_linkedin_signature(Some(&signed), &other_body, &linkedin_secret),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_linkedin_signature(Some(&signed[1..]), &body, &linkedin_secret),
            Err(SignatureError::Malformed)
        );
        // The LinkedIn secret's signature on a Meta endpoint: wrong secret and wrong scheme.
        let as_meta = format!("sha256={signed}");
        assert!(verify_meta_signature(Some(&as_meta), &body, &[&linkedin_secret]).is_err());
    }
    // Empty secrets never verify anything.
    assert!(verify_meta_signature(header, &body, &[b"", b""]).is_err());
    assert!(verify_linkedin_signature(header, &body, b"").is_err());
});
