//! Opaque keyset cursors: base64url (no padding) of a small JSON object naming the ordering the
//! cursor belongs to (`s`), the sort key value(s) of the last row of a page (`k`) and its id.
//!
//! Decoding is strict: a cursor that is not base64url, not that JSON shape, made for another
//! ordering or too long is refused with a message naming what is wrong, so a client never pages
//! from a silently wrong position.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest accepted encoded cursor.
pub const MAX_CURSOR_LEN: usize = 2048;

/// The position after which the next page starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// The ordering the cursor was made for (e.g. `-heat_score`, `timeline`).
    #[serde(rename = "s")]
    pub sort: String,
    /// The sort key value(s) of the last row: strings, integers or null (floats travel as strings,
    /// which parse back exactly).
    #[serde(rename = "k")]
    pub key: Vec<Value>,
    /// The last row's id, the tiebreaker.
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("the cursor is too long")]
    TooLong,
    #[error("the cursor is not valid base64url")]
    NotBase64,
    #[error("the cursor is malformed; use the next_cursor of a previous page unchanged")]
    Malformed,
    #[error("the cursor belongs to another ordering ({found}); repeat the same sort and filters")]
    WrongSort { found: String },
}

impl Cursor {
    pub fn new(sort: impl Into<String>, key: Vec<Value>, id: impl Into<String>) -> Self {
        Self {
            sort: sort.into(),
            key,
            id: id.into(),
        }
    }

    /// The opaque string handed to clients.
    pub fn encode(&self) -> String {
        // Serializing strings, numbers and nulls cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Decodes any well-formed cursor.
    pub fn decode(encoded: &str) -> Result<Cursor, CursorError> {
        if encoded.len() > MAX_CURSOR_LEN {
            return Err(CursorError::TooLong);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded.as_bytes())
            .map_err(|_| CursorError::NotBase64)?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
        let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Null);
        if cursor.id.is_empty() || cursor.key.len() > 4 || !cursor.key.iter().all(scalar) {
            return Err(CursorError::Malformed);
        }
        Ok(cursor)
    }

    /// Decodes a cursor that must belong to `sort` and carry `key_len` key values.
    pub fn decode_for(encoded: &str, sort: &str, key_len: usize) -> Result<Cursor, CursorError> {
        let cursor = Self::decode(encoded)?;
        if cursor.sort != sort {
            return Err(CursorError::WrongSort { found: cursor.sort });
        }
        if cursor.key.len() != key_len {
            return Err(CursorError::Malformed);
        }
        Ok(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn round_trip_and_opaque_alphabet() {
        let cursor = Cursor::new("-heat_score", vec![json!(12.5)], "lead_01");
        let encoded = cursor.encode();
        assert!(encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Cursor::decode(&encoded).unwrap(), cursor);
        assert_eq!(
            Cursor::decode_for(&encoded, "-heat_score", 1).unwrap(),
            cursor
        );
    }

    #[test]
    fn strict_decoding() {
        assert_eq!(Cursor::decode("!!!"), Err(CursorError::NotBase64));
        assert_eq!(
            Cursor::decode(&URL_SAFE_NO_PAD.encode("{}")),
            Err(CursorError::Malformed)
        );
        let extra = URL_SAFE_NO_PAD.encode(r#"{"s":"x","k":[],"id":"a","z":1}"#);
        assert_eq!(Cursor::decode(&extra), Err(CursorError::Malformed));
        let nested = URL_SAFE_NO_PAD.encode(r#"{"s":"x","k":[[1]],"id":"a"}"#);
        assert_eq!(Cursor::decode(&nested), Err(CursorError::Malformed));
        let encoded = Cursor::new("created_at", vec![json!("2026")], "a").encode();
        assert!(matches!(
            Cursor::decode_for(&encoded, "-created_at", 1),
            Err(CursorError::WrongSort { .. })
        ));
        assert_eq!(
            Cursor::decode_for(&encoded, "created_at", 2),
            Err(CursorError::Malformed)
        );
        assert_eq!(Cursor::decode(&"a".repeat(3000)), Err(CursorError::TooLong));
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            ".{0,20}".prop_map(Value::from),
        ]
    }

    proptest! {
        #[test]
        fn any_cursor_round_trips(sort in "[-a-z_]{1,20}", key in prop::collection::vec(scalar(), 0..3), id in ".{1,40}") {
            let cursor = Cursor::new(sort, key, id);
            prop_assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        }

        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,200}") {
            let _ = Cursor::decode(&s);
        }
    }
}
