//! Lead validation (`leads::parse_create`, `leads::parse_patch`) and the matching-key normalisers
//! (`normalize_email`, `normalize_phone`, `is_http_url`, `normalize_tags`) on arbitrary bodies.
//!
//! Oracles: never panics; an accepted lead respects every documented limit (lengths, counts, no
//! control characters, at least one identifying field) and its email / phone have matching keys;
//! normalisers are idempotent; validation errors name a field.
#![no_main]

#[path = "common.rs"]
mod common;

use leadheat_domain::leads::{
    is_http_url, normalize_email, normalize_phone, normalize_tags, parse_create, parse_patch,
    union_tags, Change, MAX_EMAIL_LEN, MAX_PHONE_DIGITS, MAX_SOCIAL_PROFILES, MAX_TAGS,
    MAX_TAG_LEN, MAX_TEXT_LEN, MAX_URL_LEN,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn check_text(text: &Option<String>) {
    if let Some(text) = text {
        assert!(!text.is_empty() && text.trim() == text);
        assert!(text.chars().count() <= MAX_TEXT_LEN);
        assert!(!text.chars().any(char::is_control));
    }
}

fn check_change(change: &Change<String>) {
    if let Change::Set(text) = change {
        check_text(&Some(text.clone()));
    }
}

fn check_string(raw: &str) {
    if let Ok(email) = normalize_email(raw) {
        assert!(email.len() <= MAX_EMAIL_LEN && email.contains('@'));
        assert_eq!(
            normalize_email(&email).as_deref(),
            Ok(email.as_str()),
            "email not idempotent"
        );
    }
    if let Ok(phone) = normalize_phone(raw) {
        let digits = phone.trim_start_matches('+');
        assert!(digits.bytes().all(|b| b.is_ascii_digit()) && digits.len() <= MAX_PHONE_DIGITS);
        assert_eq!(
            normalize_phone(&phone).as_deref(),
            Ok(phone.as_str()),
            "phone not idempotent"
        );
    }
    if is_http_url(raw) {
        assert!(raw.len() <= MAX_URL_LEN && raw.starts_with("http"));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_string(text);
    }
    let Some(body) = common::json(data) else {
        return;
    };

    match parse_create(&body) {
        Ok(lead) => {
            for text in [
                &lead.first_name,
                &lead.last_name,
                &lead.company,
                &lead.title,
                &lead.stage_id,
                &lead.owner_id,
            ] {
                check_text(text);
            }
            assert!(
                lead.first_name.is_some()
                    || lead.last_name.is_some()
                    || lead.email.is_some()
                    || lead.phone.is_some()
                    || lead.company.is_some()
                    || !lead.social_profiles.is_empty(),
                "a lead without any identifying field was accepted"
            );
            if lead.email.is_some() {
                assert!(lead.email_normalized().is_some());
            }
            if lead.phone.is_some() {
                assert!(lead.phone_normalized().is_some());
            }
            assert!(lead.tags.len() <= MAX_TAGS);
            for tag in &lead.tags {
                assert!(!tag.is_empty() && tag.chars().count() <= MAX_TAG_LEN);
            }
            assert!(lead.social_profiles.len() <= MAX_SOCIAL_PROFILES);
            for profile in &lead.social_profiles {
                assert!(!profile.platform_user_id.trim().is_empty());
            }
            assert!(lead.custom_fields.values().all(|v| !v.is_null()));
            assert_eq!(union_tags(&lead.tags, &lead.tags), lead.tags);
        }
        // (An unknown empty key is reported under the field name "", which is what it is.)
        Err(errors) => assert!(!errors.is_empty()),
    }
    match parse_patch(&body) {
        Ok(patch) => {
            for change in [
                &patch.first_name,
                &patch.last_name,
                &patch.company,
                &patch.title,
                &patch.stage_id,
                &patch.owner_id,
            ] {
                check_change(change);
            }
            if let Change::Set(email) = &patch.email {
                assert!(normalize_email(email).is_ok());
            }
            if let Change::Set(phone) = &patch.phone {
                assert!(normalize_phone(phone).is_ok());
            }
            let _ = patch.is_empty();
        }
        // (An unknown empty key is reported under the field name "", which is what it is.)
        Err(errors) => assert!(!errors.is_empty()),
    }

    if let Value::Array(values) = &body {
        if let Ok(tags) = normalize_tags(values, "tags") {
            assert_eq!(
                normalize_tags(
                    &tags
                        .iter()
                        .map(|t| Value::from(t.as_str()))
                        .collect::<Vec<_>>(),
                    "tags"
                ),
                Ok(tags.clone())
            );
        }
    }
    let mut texts = Vec::new();
    common::strings(&body, &mut texts);
    for text in texts.iter().take(64) {
        check_string(text);
    }
});
