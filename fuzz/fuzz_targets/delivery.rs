//! `delivery::describe_delivery` and `delivery::split_delivery` for every platform, on arbitrary
//! bodies.
//!
//! Oracles: never panics; non-social platforms are refused; the dedupe key of a whole delivery is
//! the SHA-256 of its bytes (a redelivery of the same bytes maps to the same inbox row); splitting
//! is deterministic, gives at least one part, each part's key is the SHA-256 of its own body, a
//! single part keeps the raw bytes, and parts of a multi-account delivery are valid JSON naming
//! distinct accounts.
#![no_main]

use leadheat_domain::delivery::{describe_delivery, split_delivery, DeliveryError};
use leadheat_domain::types::Platform;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|body: &[u8]| {
    for &platform in Platform::ALL {
        let described = describe_delivery(platform, body);
        let split = split_delivery(platform, body);
        if !platform.is_social() {
            assert_eq!(described, Err(DeliveryError::NotSocial(platform)));
            assert_eq!(split, Err(DeliveryError::NotSocial(platform)));
            continue;
        }
        if let Ok(delivery) = &described {
            assert_eq!(delivery.dedupe_key, hex::encode(Sha256::digest(body)));
            assert!(split.is_ok(), "described but not split: {split:?}");
        }
        let Ok(parts) = split else { continue };
        assert!(!parts.is_empty());
        assert_eq!(Ok(&parts), split_delivery(platform, body).as_ref());
        for part in &parts {
            assert_eq!(
                part.dedupe_key,
                hex::encode(Sha256::digest(part.body.as_bytes()))
            );
            assert!(serde_json::from_str::<serde_json::Value>(&part.body).is_ok());
            if let Some(account) = &part.account_id {
                assert!(!account.is_empty());
            }
        }
        if parts.len() == 1 {
            assert_eq!(parts[0].body.as_bytes(), body);
        } else {
            for (i, a) in parts.iter().enumerate() {
                for b in &parts[i + 1..] {
                    assert_ne!(a.account_id, b.account_id, "two parts for one account");
                }
            }
        }
    }
});
