//! `cursor::Cursor::decode` / `decode_for` on arbitrary strings, and the encode/decode round trip
//! of arbitrary cursors.
//!
//! Oracles: never panics; a decoded cursor re-encodes to a string that decodes to the same cursor
//! and respects the documented shape (non-empty id, at most 4 scalar key values, bounded length);
//! `decode_for` agrees with `decode`; every cursor this crate makes (strings, integers, nulls)
//! round-trips exactly and uses only the base64url alphabet.
#![no_main]

use arbitrary::Arbitrary;
use leadheat_domain::cursor::{Cursor, CursorError, MAX_CURSOR_LEN};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[derive(Debug, Arbitrary)]
enum Key {
    Text(String),
    Int(i64),
    Unsigned(u64),
    Null,
}

#[derive(Debug, Arbitrary)]
struct Input {
    raw: String,
    sort: String,
    key: Vec<Key>,
    id: String,
    key_len: u8,
}

fuzz_target!(|input: Input| {
    // Arbitrary strings.
    match Cursor::decode(&input.raw) {
        Ok(cursor) => {
            assert!(input.raw.len() <= MAX_CURSOR_LEN);
            assert!(!cursor.id.is_empty() && cursor.key.len() <= 4);
            assert!(cursor
                .key
                .iter()
                .all(|v| matches!(v, Value::String(_) | Value::Number(_) | Value::Null)));
            let again = cursor.encode();
            assert_eq!(
                Cursor::decode(&again).as_ref(),
                Ok(&cursor),
                "re-encoding changed it"
            );
            let key_len = cursor.key.len();
            assert_eq!(
                Cursor::decode_for(&input.raw, &cursor.sort, key_len).as_ref(),
                Ok(&cursor)
            );
            if cursor.sort != input.sort {
                assert!(matches!(
                    Cursor::decode_for(&input.raw, &input.sort, key_len),
                    Err(CursorError::WrongSort { .. })
                ));
            }
        }
        Err(_) => {
            assert!(Cursor::decode_for(&input.raw, &input.sort, input.key_len as usize).is_err())
        }
    }

    // Round trip of cursors as the list handlers make them.
    let key: Vec<Value> = input
        .key
        .into_iter()
        .take(4)
        .map(|k| match k {
            Key::Text(s) => Value::from(s),
            Key::Int(i) => Value::from(i),
            Key::Unsigned(u) => Value::from(u),
            Key::Null => Value::Null,
        })
        .collect();
    let cursor = Cursor::new(input.sort.clone(), key, input.id.clone());
    let encoded = cursor.encode();
    assert!(encoded
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    match Cursor::decode(&encoded) {
        Ok(decoded) => assert_eq!(decoded, cursor),
        Err(CursorError::TooLong) => assert!(encoded.len() > MAX_CURSOR_LEN),
        Err(CursorError::Malformed) => assert!(cursor.id.is_empty()),
        Err(other) => panic!("an encoded cursor failed to decode: {other:?}"),
    }
});
