//! The checks every platform parser target shares (included with `#[path]`).
#![allow(dead_code)]

use leadheat_domain::lead_forms::FormAnswers;
use leadheat_domain::platforms::{self, facebook, instagram, linkedin, ParseError, SocialEvent};
use leadheat_domain::types::Platform;

use crate::common;

/// Parses `body` as a delivery of `platform` and checks what comes out.
///
/// Oracles: never panics; fails only on bodies that are not JSON; deterministic; agrees with the
/// platform module's own entry point; every touchpoint is for this platform, has a non-empty
/// external id (the dedupe key) and an actor; every lead form has an id; events serialise.
pub fn check(platform: Platform, body: &[u8]) {
    let now = common::now();
    let parsed = platforms::parse(platform, body, now);
    let value = common::json(body);
    let events = match (parsed, &value) {
        (Ok(events), Some(_)) => events,
        (Err(ParseError::NotJson(_)), None) => return,
        (other, value) => panic!("parse gave {other:?} for JSON {value:?}"),
    };
    let value = value.unwrap();
    let direct = match platform {
        Platform::Facebook => facebook::parse(&value, now),
        Platform::Instagram => instagram::parse(&value, now),
        Platform::Linkedin => linkedin::parse(&value, now),
        _ => unreachable!(),
    };
    assert_eq!(
        events, direct,
        "parse is not deterministic or disagrees with the module"
    );
    for event in &events {
        match event {
            SocialEvent::Touch(touch) => {
                assert_eq!(touch.platform, platform);
                assert!(!touch.external_id.is_empty());
                assert!(!touch.actor.platform_user_id.trim().is_empty());
            }
            SocialEvent::LeadForm(form) => {
                assert_eq!(form.platform, platform);
                assert!(!form.leadgen_id.trim().is_empty());
                assert!(form.external_id().starts_with("leadgen:"));
            }
            SocialEvent::LinkedInLeadDeleted { response_id } => {
                assert_eq!(platform, Platform::Linkedin);
                assert!(!response_id.is_empty());
            }
            SocialEvent::StoryMetrics {
                media_id, metrics, ..
            } => {
                assert_eq!(platform, Platform::Instagram);
                assert!(!media_id.is_empty());
                assert!(metrics.values().all(|m| m.is_finite()));
            }
            SocialEvent::Ignored { .. } => {}
        }
        let _ = event.needs_api();
        serde_json::to_string(event).expect("events serialise");
    }
}

/// Mapped form answers: standard fields are trimmed and non-empty; everything serialises.
pub fn check_answers(answers: &FormAnswers) {
    for field in [
        &answers.first_name,
        &answers.last_name,
        &answers.email,
        &answers.phone,
        &answers.company,
        &answers.title,
    ]
    .into_iter()
    .flatten()
    {
        assert!(
            !field.is_empty() && field.trim() == field,
            "untrimmed answer {field:?}"
        );
    }
    serde_json::to_string(answers).expect("answers serialise");
}
