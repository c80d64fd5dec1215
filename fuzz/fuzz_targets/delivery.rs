//! `delivery::describe_delivery` and `delivery::split_delivery` for every platform, on arbitrary
//! bodies.
//!
//! Oracles: never panics; non-social platforms are refused; the dedupe key of a whole delivery is
//! the SHA-256 of its bytes (a redelivery of the same bytes maps to the same inbox row); splitting
//! is deterministic, gives at least one part, each part's key is the SHA-256 of its own body, a
//! single part keeps the raw bytes, every part parses to at most `MAX_EVENTS_PER_PART` events,
//! and an account's parts are adjacent.
#![no_main]

use chrono::{TimeZone, Utc};
use leadheat_domain::delivery::{
    describe_delivery, split_delivery, DeliveryError, MAX_EVENTS_PER_PART,
};
use leadheat_domain::platforms::parse;
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
        let received = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        for part in &parts {
            assert_eq!(
                part.dedupe_key,
                hex::encode(Sha256::digest(part.body.as_bytes()))
            );
            let events = parse(platform, part.body.as_bytes(), received).expect("a part is JSON");
            assert!(events.len() <= MAX_EVENTS_PER_PART, "a part of {} events", events.len());
            assert!(serde_json::from_str::<serde_json::Value>(&part.body).is_ok());
            if let Some(account) = &part.account_id {
                assert!(!account.is_empty());
            }
        }
        if parts.len() == 1 {
            assert_eq!(parts[0].body.as_bytes(), body);
        } else {
            for (i, a) in parts.iter().enumerate() {
                let mut later = parts[i + 1..].iter().skip_while(|b| b.account_id == a.account_id);
                assert!(
                    later.all(|b| b.account_id != a.account_id),
                    "the parts of one account are not adjacent"
                );
            }
        }
    }
});
