//! Ordering keys (`ranking::between`, `is_valid_key`) on arbitrary neighbours.
//!
//! Oracles: never panics; fails only on invalid keys or out-of-order neighbours; a key made is
//! valid and strictly between its neighbours; repeated inserts at one spot keep working (until
//! the documented MAX_KEY_LEN, reported below as the limit it is).
#![no_main]

use arbitrary::Arbitrary;
use leadheat_domain::ranking::{between, is_valid_key, RankError, MAX_KEY_LEN};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    before: Option<String>,
    after: Option<String>,
    /// Further inserts: false = just after `before`, true = just before `after`.
    steps: Vec<bool>,
}

fn check(before: Option<&str>, after: Option<&str>) -> Option<String> {
    let result = between(before, after);
    let valid = before.is_none_or(is_valid_key) && after.is_none_or(is_valid_key);
    match &result {
        Ok(key) => {
            assert!(valid);
            assert!(
                is_valid_key(key) || key.len() > MAX_KEY_LEN,
                "between({before:?}, {after:?}) made invalid key {key:?}"
            );
            assert!(!key.ends_with('0'));
            if let Some(b) = before {
                assert!(
                    b < key.as_str(),
                    "between({before:?}, {after:?}) = {key:?} is not after"
                );
            }
            if let Some(a) = after {
                assert!(
                    key.as_str() < a,
                    "between({before:?}, {after:?}) = {key:?} is not before"
                );
            }
        }
        Err(RankError::InvalidKey(_)) => assert!(!valid),
        Err(RankError::OutOfOrder(a, b)) => assert!(valid && a >= b),
    }
    result.ok()
}

fuzz_target!(|input: Input| {
    let Some(mut key) = check(input.before.as_deref(), input.after.as_deref()) else {
        return;
    };
    let mut before = input.before.clone();
    let mut after = input.after.clone();
    for step in input.steps.into_iter().take(64) {
        if key.len() > MAX_KEY_LEN {
            break;
        }
        if step {
            after = Some(key.clone());
        } else {
            before = Some(key.clone());
        }
        key = check(before.as_deref(), after.as_deref()).expect("a key fits between any two");
    }
});
