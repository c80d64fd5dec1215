//! Request bodies that are JSON objects, read the same way by every handler: a body that is not
//! an object is one error on `body`, and every field the request does not know is its own error
//! with one message, listing the fields it does know:
//! `{"field": "nickname", "message": "unknown field; expected one of: first_name, last_name"}`.
//!
//! Checking the fields happens here; checking their values is each request's own validation.

use serde_json::{Map, Value};

use crate::types::FieldError;

/// The message of a body that is not a JSON object (its field is `body`).
pub const NOT_AN_OBJECT: &str = "must be a JSON object";

/// The fields a JSON object may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields<'a> {
    /// What the request reads, in the order the error message lists them.
    pub expected: &'a [&'a str],
    /// Accepted and ignored, never listed: what a response carries and a client may send back
    /// unchanged (`id`, `created_at`, ...).
    pub ignored: &'a [&'a str],
}

impl<'a> Fields<'a> {
    /// Exactly these fields, none ignored.
    pub const fn exactly(expected: &'a [&'a str]) -> Self {
        Self {
            expected,
            ignored: &[],
        }
    }

    /// These fields, and `ignored` accepted without effect.
    pub const fn ignoring(self, ignored: &'a [&'a str]) -> Self {
        Self {
            expected: self.expected,
            ignored,
        }
    }

    fn knows(&self, key: &str) -> bool {
        self.expected.contains(&key) || self.ignored.contains(&key)
    }
}

/// The message every unknown field gets.
pub fn unknown_field_message(expected: &[&str]) -> String {
    format!("unknown field; expected one of: {}", expected.join(", "))
}

/// The body as a JSON object, or the one error saying it is not one.
pub fn object(body: &Value) -> Result<&Map<String, Value>, FieldError> {
    body.as_object()
        .ok_or_else(|| FieldError::new("body", NOT_AN_OBJECT))
}

/// One error per field of `object` that `fields` does not know, in the object's key order. A
/// nested object names its fields under `prefix` (`social_profiles[0]` gives
/// `social_profiles[0].nickname`); the body itself has an empty prefix.
pub fn unknown_fields(
    object: &Map<String, Value>,
    fields: Fields<'_>,
    prefix: &str,
) -> Vec<FieldError> {
    object
        .keys()
        .filter(|key| !fields.knows(key))
        .map(|key| {
            let field = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            FieldError::new(field, unknown_field_message(fields.expected))
        })
        .collect()
}

/// A body read by [`parse`]: the object, and the errors of its unknown fields.
pub type Parsed<'v> = (&'v Map<String, Value>, Vec<FieldError>);

/// Reads a request body: the object, and the errors of its unknown fields (empty when every field
/// is known), for the caller to report together with its own; `Err` when it is not an object.
pub fn parse<'v>(body: &'v Value, fields: Fields<'_>) -> Result<Parsed<'v>, Vec<FieldError>> {
    let object = object(body).map_err(|error| vec![error])?;
    Ok((object, unknown_fields(object, fields, "")))
}

/// [`parse`] for a body owned by the caller: the object, or every error (not an object, or its
/// unknown fields) at once.
pub fn into_object(body: Value, fields: Fields<'_>) -> Result<Map<String, Value>, Vec<FieldError>> {
    match body {
        Value::Object(object) => {
            let errors = unknown_fields(&object, fields, "");
            if errors.is_empty() {
                Ok(object)
            } else {
                Err(errors)
            }
        }
        _ => Err(vec![FieldError::new("body", NOT_AN_OBJECT)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LEAD: Fields<'static> = Fields::exactly(&["first_name", "last_name"]);

    #[test]
    fn a_body_that_is_not_an_object_is_one_error_on_body() {
        for body in [json!([1]), json!("x"), json!(3), json!(null), json!(true)] {
            let errors = parse(&body, LEAD).unwrap_err();
            assert_eq!(errors, [FieldError::new("body", "must be a JSON object")]);
            assert_eq!(into_object(body, LEAD).unwrap_err(), errors);
        }
    }

    #[test]
    fn every_unknown_field_is_reported_with_the_expected_ones() {
        let body = json!({"first_name": "Ada", "nickname": "A", "age": 36});
        let (object, errors) = parse(&body, LEAD).unwrap();
        assert_eq!(object.len(), 3);
        let message = "unknown field; expected one of: first_name, last_name";
        assert_eq!(
            errors,
            [
                FieldError::new("age", message),
                FieldError::new("nickname", message)
            ]
        );
        assert_eq!(into_object(body, LEAD).unwrap_err(), errors);
    }

    #[test]
    fn known_and_ignored_fields_pass_and_ignored_ones_are_not_listed() {
        let fields = LEAD.ignoring(&["id", "created_at"]);
        let body = json!({"first_name": "Ada", "id": "lead_1", "created_at": "x"});
        let (_, errors) = parse(&body, fields).unwrap();
        assert!(errors.is_empty());
        assert_eq!(into_object(body.clone(), fields).unwrap().len(), 3);
        let (_, errors) = parse(&json!({"updated_at": "x"}), fields).unwrap();
        assert_eq!(
            errors,
            [FieldError::new(
                "updated_at",
                "unknown field; expected one of: first_name, last_name"
            )]
        );
        assert!(parse(&json!({}), LEAD).unwrap().1.is_empty());
    }

    #[test]
    fn nested_objects_name_their_fields_under_the_prefix() {
        let profile = json!({"platform": "facebook", "nickname": "x"});
        let errors = unknown_fields(
            profile.as_object().unwrap(),
            Fields::exactly(&["platform", "url"]),
            "social_profiles[2]",
        );
        assert_eq!(
            errors,
            [FieldError::new(
                "social_profiles[2].nickname",
                "unknown field; expected one of: platform, url"
            )]
        );
    }
}
