//! Custom field definitions and values (`custom_fields::parse_definition`,
//! `parse_definition_patch`, `validate_values`, `validate_value`, `missing_required`,
//! `apply_patch`) on arbitrary JSON.
//!
//! The input is `{"defs": [definition bodies...], "values": {...}, "patch": {...}}` (any part may
//! be missing or wrong). Oracles: never panics; accepted definitions respect the limits; validated
//! values re-validate to themselves (normalisation is idempotent); every error names
//! `custom_fields.<key>`; applying a patch never keeps a null.
#![no_main]

#[path = "common.rs"]
mod common;

use leadheat_domain::custom_fields::{
    apply_patch, is_valid_key, missing_required, parse_definition, parse_definition_patch,
    validate_value, validate_values, FieldDef, MAX_LABEL_LEN, MAX_OPTIONS,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Some(body) = common::json(data) else {
        return;
    };
    let empty = Map::new();
    let mut defs: Vec<FieldDef> = Vec::new();
    let def_bodies: Vec<Value> = match body.get("defs") {
        Some(Value::Array(items)) => items.clone(),
        _ => vec![body.clone()],
    };
    for def_body in def_bodies.iter().take(32) {
        if let Ok(def) = parse_definition(def_body) {
            assert!(is_valid_key(&def.key));
            assert!(def.label.chars().count() <= MAX_LABEL_LEN);
            assert!(def.options.len() <= MAX_OPTIONS);
            // The stored form reads back as the same definition.
            let stored = serde_json::to_value(&def).unwrap();
            let back: FieldDef = serde_json::from_value(stored).unwrap();
            assert_eq!(back, def);
            if let Some(patch) = body.get("patch") {
                if let Ok(updated) = parse_definition_patch(patch, &def) {
                    assert_eq!(updated.key, def.key);
                    assert_eq!(updated.field_type, def.field_type);
                }
            }
            defs.push(def);
        }
    }

    let values = body
        .get("values")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    match validate_values(values, &defs) {
        Ok(valid) => {
            assert_eq!(valid.len(), values.len());
            assert_eq!(
                validate_values(&valid, &defs).as_ref(),
                Ok(&valid),
                "not idempotent"
            );
            for (key, value) in &valid {
                if let Some(def) = defs.iter().find(|d| &d.key == key) {
                    if !value.is_null() {
                        assert_eq!(validate_value(value, def).as_ref(), Ok(value));
                    }
                }
            }
            let merged = apply_patch(&empty, &valid);
            assert!(merged.values().all(|v| !v.is_null()));
            for error in missing_required(&merged, &defs) {
                assert!(error.field.starts_with("custom_fields."));
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            assert!(errors.iter().all(|e| e.field.starts_with("custom_fields.")));
        }
    }
    // Every value against every definition, one by one.
    for def in defs.iter().take(8) {
        for value in values.values().take(8) {
            if let Ok(normalized) = validate_value(value, def) {
                assert_eq!(validate_value(&normalized, def).as_ref(), Ok(&normalized));
            }
        }
    }
});
