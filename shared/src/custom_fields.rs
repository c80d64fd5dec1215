//! Custom fields: the org's definitions (key, label, type, options, required) and the validation
//! of a lead's values against them. Every problem names `custom_fields.<key>`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::body::{self, Fields};
use crate::leads::{is_http_url, normalize_email};
use crate::types::{FieldError, FieldType};

pub const MAX_KEY_LEN: usize = 50;
pub const MAX_LABEL_LEN: usize = 100;
pub const MAX_OPTIONS: usize = 100;
pub const MAX_OPTION_LEN: usize = 100;
pub const MAX_TEXT_VALUE_LEN: usize = 5000;
/// Definitions one org may have at most. Every lead write validates its values against all of
/// them, and every list filter may name one, so their number stays bounded.
pub const MAX_DEFINITIONS_PER_ORG: usize = 100;

/// The problem of a definition refused because the org already has
/// [`MAX_DEFINITIONS_PER_ORG`]: it names the `key` that could not be added.
pub fn too_many_definitions(key: &str) -> FieldError {
    FieldError::new(
        "key",
        format!(
            "cannot add {key:?}: an organisation has at most {MAX_DEFINITIONS_PER_ORG} custom fields; delete one first"
        ),
    )
}

/// One definition as stored and returned (without its id and times).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub options: Vec<String>,
    pub required: bool,
}

/// A validated definition update: any of label, options, required (key and type are fixed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldDefPatch {
    pub label: Option<String>,
    pub options: Option<Vec<String>>,
    pub required: Option<bool>,
}

/// Whether `key` is a valid custom field key: `[a-z][a-z0-9_]*`, at most 50 characters. Keys are
/// also used in JSON paths and query parameters (`cf.<key>`), which is why they are this strict.
pub fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some('a'..='z'))
        && key.len() <= MAX_KEY_LEN
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

/// The fields of a definition's create and update bodies.
const DEFINITION_FIELDS: Fields<'static> =
    Fields::exactly(&["key", "label", "type", "options", "required"]);

/// Validates a create body `{"key","label","type","options"?,"required"?}`.
pub fn parse_definition(body: &Value) -> Result<FieldDef, Vec<FieldError>> {
    let (object, mut errors) = body::parse(body, DEFINITION_FIELDS)?;
    let key = match object.get("key").and_then(Value::as_str) {
        Some(key) if is_valid_key(key) => key.to_string(),
        _ => {
            errors.push(FieldError::new(
                "key",
                "is required: lowercase letters, digits and _, starting with a letter, at most 50 characters",
            ));
            String::new()
        }
    };
    let label = match object.get("label") {
        None | Some(Value::Null) => key.clone(),
        Some(value) => parse_label(value, &mut errors).unwrap_or_default(),
    };
    let field_type = match object.get("type").and_then(Value::as_str) {
        Some(text) => match text.parse::<FieldType>() {
            Ok(field_type) => Some(field_type),
            Err(error) => {
                errors.push(FieldError::new("type", error.to_string()));
                None
            }
        },
        None => {
            errors.push(FieldError::new(
                "type",
                format!("is required: one of {}", FieldType::WIRE_NAMES.join(", ")),
            ));
            None
        }
    };
    let options = match object.get("options") {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => parse_options(value, &mut errors).unwrap_or_default(),
    };
    let required = match object.get("required") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(required)) => *required,
        Some(_) => {
            errors.push(FieldError::new("required", "must be a boolean"));
            false
        }
    };
    if let Some(field_type) = field_type {
        check_options_fit(field_type, &options, &mut errors);
    }
    match (errors.is_empty(), field_type) {
        (true, Some(field_type)) => Ok(FieldDef {
            key,
            label,
            field_type,
            options,
            required,
        }),
        _ => Err(errors),
    }
}

/// Validates an update body against the current definition and returns the updated definition.
pub fn parse_definition_patch(
    body: &Value,
    current: &FieldDef,
) -> Result<FieldDef, Vec<FieldError>> {
    // What a definition's JSON also carries is accepted and ignored, so a client can send back
    // what it read.
    let fields = DEFINITION_FIELDS.ignoring(&["id", "created_at", "updated_at"]);
    let (object, mut errors) = body::parse(body, fields)?;
    if let Some(key) = object.get("key") {
        if key.as_str() != Some(current.key.as_str()) {
            errors.push(FieldError::new("key", "cannot be changed"));
        }
    }
    if let Some(field_type) = object.get("type") {
        if field_type.as_str() != Some(current.field_type.as_str()) {
            errors.push(FieldError::new(
                "type",
                "cannot be changed; create a new field instead",
            ));
        }
    }
    let mut patch = FieldDefPatch::default();
    if let Some(value) = object.get("label") {
        patch.label = parse_label(value, &mut errors);
    }
    if let Some(value) = object.get("options") {
        patch.options = if value.is_null() {
            Some(Vec::new())
        } else {
            parse_options(value, &mut errors)
        };
    }
    match object.get("required") {
        None => {}
        Some(Value::Bool(required)) => patch.required = Some(*required),
        Some(_) => errors.push(FieldError::new("required", "must be a boolean")),
    }
    let updated = FieldDef {
        key: current.key.clone(),
        label: patch.label.unwrap_or_else(|| current.label.clone()),
        field_type: current.field_type,
        options: patch.options.unwrap_or_else(|| current.options.clone()),
        required: patch.required.unwrap_or(current.required),
    };
    check_options_fit(updated.field_type, &updated.options, &mut errors);
    if errors.is_empty() {
        Ok(updated)
    } else {
        Err(errors)
    }
}

/// Checks and normalizes values against the definitions. Unknown keys and wrong types are errors;
/// `null` values are kept as `null` (a patch uses them to remove a key). Emails are lower-cased,
/// numbers kept as JSON numbers, multiselect values deduplicated.
pub fn validate_values(
    values: &Map<String, Value>,
    defs: &[FieldDef],
) -> Result<Map<String, Value>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut out = Map::new();
    for (key, value) in values {
        let field = format!("custom_fields.{key}");
        let Some(def) = defs.iter().find(|d| &d.key == key) else {
            errors.push(FieldError::new(
                field,
                "unknown custom field; define it first",
            ));
            continue;
        };
        if value.is_null() {
            out.insert(key.clone(), Value::Null);
            continue;
        }
        match validate_value(value, def) {
            Ok(normalized) => {
                out.insert(key.clone(), normalized);
            }
            Err(message) => errors.push(FieldError::new(field, message)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The most bytes a lead's custom field values may take, as stored JSON. One row of D1 is written
/// in one statement of at most 100 KB, and a stored idempotent response repeats the lead, so the
/// values stay well under that: a few long text fields fit, a hundred of them do not.
pub const MAX_VALUES_BYTES: usize = 16 * 1024;

/// Refuses values whose stored JSON exceeds [`MAX_VALUES_BYTES`], naming `custom_fields`.
pub fn check_values_size(values: &Map<String, Value>) -> Result<(), FieldError> {
    let bytes = Value::Object(values.clone()).to_string().len();
    if bytes <= MAX_VALUES_BYTES {
        Ok(())
    } else {
        Err(FieldError::new(
            "custom_fields",
            format!(
                "the values take {bytes} bytes; a lead's custom fields may take at most {MAX_VALUES_BYTES}"
            ),
        ))
    }
}

/// Errors for every required definition without a (non-null) value in `values`.
pub fn missing_required(values: &Map<String, Value>, defs: &[FieldDef]) -> Vec<FieldError> {
    defs.iter()
        .filter(|def| def.required && values.get(&def.key).is_none_or(Value::is_null))
        .map(|def| FieldError::new(format!("custom_fields.{}", def.key), "is required"))
        .collect()
}

/// Applies validated patch values to the current ones: `null` removes a key.
pub fn apply_patch(current: &Map<String, Value>, patch: &Map<String, Value>) -> Map<String, Value> {
    let mut out = current.clone();
    for (key, value) in patch {
        if value.is_null() {
            out.remove(key);
        } else {
            out.insert(key.clone(), value.clone());
        }
    }
    out
}

/// One value checked against its definition, normalized.
pub fn validate_value(value: &Value, def: &FieldDef) -> Result<Value, String> {
    match def.field_type {
        FieldType::Text => match value.as_str() {
            Some(text) if text.chars().count() <= MAX_TEXT_VALUE_LEN => Ok(Value::from(text)),
            Some(_) => Err("must be at most 5000 characters".into()),
            None => Err("must be a string (text)".into()),
        },
        FieldType::Number => match value.as_f64() {
            Some(number) if number.is_finite() && value.is_number() => Ok(value.clone()),
            _ => Err("must be a number".into()),
        },
        FieldType::Date => match value.as_str() {
            Some(text)
                if text.len() == 10 && NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok() =>
            {
                Ok(Value::from(text))
            }
            _ => Err("must be a date YYYY-MM-DD".into()),
        },
        FieldType::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            _ => Err("must be a boolean".into()),
        },
        FieldType::Select => match value.as_str() {
            Some(text) if def.options.iter().any(|o| o == text) => Ok(Value::from(text)),
            _ => Err(format!("must be one of: {}", def.options.join(", "))),
        },
        FieldType::Multiselect => {
            let Some(items) = value.as_array() else {
                return Err(format!("must be an array of: {}", def.options.join(", ")));
            };
            let mut chosen: Vec<String> = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(text) if def.options.iter().any(|o| o == text) => {
                        if !chosen.iter().any(|c| c == text) {
                            chosen.push(text.to_string());
                        }
                    }
                    _ => return Err(format!("must be an array of: {}", def.options.join(", "))),
                }
            }
            Ok(Value::from(chosen))
        }
        FieldType::Url => match value.as_str() {
            Some(text) if is_http_url(text) => Ok(Value::from(text)),
            _ => Err("must be an http(s) URL".into()),
        },
        FieldType::Email => match value.as_str().map(normalize_email) {
            Some(Ok(email)) => Ok(Value::from(email)),
            _ => Err("must be an email address".into()),
        },
    }
}

fn parse_label(value: &Value, errors: &mut Vec<FieldError>) -> Option<String> {
    match value.as_str().map(str::trim) {
        Some(label) if !label.is_empty() && label.chars().count() <= MAX_LABEL_LEN => {
            Some(label.to_string())
        }
        _ => {
            errors.push(FieldError::new(
                "label",
                "must be a non-empty string of at most 100 characters",
            ));
            None
        }
    }
}

fn parse_options(value: &Value, errors: &mut Vec<FieldError>) -> Option<Vec<String>> {
    let Some(items) = value.as_array() else {
        errors.push(FieldError::new("options", "must be an array of strings"));
        return None;
    };
    let before = errors.len();
    let mut options: Vec<String> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match item.as_str().map(str::trim) {
            Some(text) if !text.is_empty() && text.chars().count() <= MAX_OPTION_LEN => {
                if options.iter().any(|o| o == text) {
                    errors.push(FieldError::new(
                        format!("options[{index}]"),
                        "is a duplicate",
                    ));
                } else {
                    options.push(text.to_string());
                }
            }
            _ => errors.push(FieldError::new(
                format!("options[{index}]"),
                "must be a non-empty string of at most 100 characters",
            )),
        }
    }
    if options.len() > MAX_OPTIONS {
        errors.push(FieldError::new("options", "at most 100 options"));
    }
    (errors.len() == before).then_some(options)
}

fn check_options_fit(field_type: FieldType, options: &[String], errors: &mut Vec<FieldError>) {
    let choice = matches!(field_type, FieldType::Select | FieldType::Multiselect);
    if choice && options.is_empty() {
        errors.push(FieldError::new(
            "options",
            "select and multiselect fields need options",
        ));
    } else if !choice && !options.is_empty() {
        errors.push(FieldError::new(
            "options",
            "only select and multiselect fields have options",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn definition_bodies_name_unknown_fields_and_accept_what_a_definition_carries() {
        let message = "unknown field; expected one of: key, label, type, options, required";
        let errors =
            parse_definition(&json!({"key": "segment", "type": "text", "colour": 1})).unwrap_err();
        assert_eq!(errors, [FieldError::new("colour", message)]);
        let current = parse_definition(&json!({"key": "segment", "type": "text"})).unwrap();
        let sent_back = json!({"id": "cf_1", "key": "segment", "label": "Segment", "type": "text",
                               "created_at": "x", "updated_at": "y"});
        assert!(parse_definition_patch(&sent_back, &current).is_ok());
        let errors = parse_definition_patch(&json!({"colour": 1}), &current).unwrap_err();
        assert_eq!(errors, [FieldError::new("colour", message)]);
        assert_eq!(
            parse_definition(&json!([])).unwrap_err(),
            [FieldError::new("body", "must be a JSON object")]
        );
    }

    fn def(key: &str, field_type: FieldType, options: &[&str], required: bool) -> FieldDef {
        FieldDef {
            key: key.into(),
            label: key.into(),
            field_type,
            options: options.iter().map(|o| o.to_string()).collect(),
            required,
        }
    }

    fn defs() -> Vec<FieldDef> {
        vec![
            def("budget", FieldType::Number, &[], true),
            def("start", FieldType::Date, &[], false),
            def("vip", FieldType::Boolean, &[], false),
            def("tier", FieldType::Select, &["gold", "silver"], false),
            def("langs", FieldType::Multiselect, &["en", "fr"], false),
            def("site", FieldType::Url, &[], false),
            def("billing", FieldType::Email, &[], false),
            def("notes", FieldType::Text, &[], false),
        ]
    }

    fn fields(errors: &[FieldError]) -> Vec<String> {
        errors.iter().map(|e| e.field.clone()).collect()
    }

    #[test]
    fn good_values_pass_and_are_normalized() {
        let values = json!({"budget": 12.5, "start": "2026-02-28", "vip": true, "tier": "gold",
            "langs": ["fr", "en", "fr"], "site": "https://acme.test", "billing": "AP@Acme.Test",
            "notes": "hi"});
        let out = validate_values(values.as_object().unwrap(), &defs()).unwrap();
        assert_eq!(out["langs"], json!(["fr", "en"]));
        assert_eq!(out["billing"], json!("ap@acme.test"));
        assert!(missing_required(&out, &defs()).is_empty());
    }

    #[test]
    fn each_type_rejects_the_wrong_shape() {
        let bad = json!({"budget": "12", "start": "2026-02-30", "vip": "yes", "tier": "bronze",
            "langs": "en", "site": "acme.test", "billing": "nope", "notes": 5, "colour": "red"});
        let errors = validate_values(bad.as_object().unwrap(), &defs()).unwrap_err();
        let mut names = fields(&errors);
        names.sort();
        assert_eq!(
            names,
            [
                "custom_fields.billing",
                "custom_fields.budget",
                "custom_fields.colour",
                "custom_fields.langs",
                "custom_fields.notes",
                "custom_fields.site",
                "custom_fields.start",
                "custom_fields.tier",
                "custom_fields.vip"
            ]
        );
    }

    #[test]
    fn required_and_patch() {
        let empty = Map::new();
        assert_eq!(
            fields(&missing_required(&empty, &defs())),
            ["custom_fields.budget"]
        );
        let current = json!({"budget": 1, "tier": "gold"});
        let patch = json!({"tier": null, "vip": false});
        let merged = apply_patch(current.as_object().unwrap(), patch.as_object().unwrap());
        assert_eq!(Value::Object(merged), json!({"budget": 1, "vip": false}));
    }

    #[test]
    fn definitions_are_validated() {
        let ok = parse_definition(&json!({"key": "tier", "label": "Tier", "type": "select",
            "options": ["a", "b"], "required": true}))
        .unwrap();
        assert_eq!(ok.field_type, FieldType::Select);
        let errors = parse_definition(&json!({"key": "Bad Key", "type": "colour"})).unwrap_err();
        assert_eq!(fields(&errors), ["key", "type"]);
        let errors = parse_definition(&json!({"key": "tier", "type": "select"})).unwrap_err();
        assert_eq!(fields(&errors), ["options"]);
        let errors =
            parse_definition(&json!({"key": "n", "type": "number", "options": ["x"]})).unwrap_err();
        assert_eq!(fields(&errors), ["options"]);
        let updated =
            parse_definition_patch(&json!({"label": "Level", "required": false}), &ok).unwrap();
        assert_eq!((updated.label.as_str(), updated.required), ("Level", false));
        let errors = parse_definition_patch(&json!({"type": "text"}), &ok).unwrap_err();
        assert_eq!(fields(&errors), ["type"]);
        assert!(is_valid_key("a_1") && !is_valid_key("1a") && !is_valid_key("a-b"));
    }

    #[test]
    fn the_definition_cap_is_documented_and_its_problem_names_the_key() {
        assert_eq!(MAX_DEFINITIONS_PER_ORG, 100);
        let error = too_many_definitions("region");
        assert_eq!(error.field, "key");
        assert!(error.message.contains("\"region\""), "{}", error.message);
        assert!(error.message.contains("100"), "{}", error.message);
    }

    #[test]
    fn values_are_capped_by_their_stored_size() {
        let mut values = Map::new();
        values.insert(
            "notes".into(),
            Value::from("x".repeat(MAX_VALUES_BYTES - 20)),
        );
        assert_eq!(check_values_size(&values), Ok(()));
        values.insert("more".into(), Value::from("y".repeat(100)));
        let error = check_values_size(&values).unwrap_err();
        assert_eq!(error.field, "custom_fields");
    }
}
