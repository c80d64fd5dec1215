//! The platform parsers against realistic fixtures (`tests/fixtures/`): every event kind of each
//! platform, batches, ids as strings or numbers, unknown fields and kinds ignored, echoes ignored.

use chrono::{DateTime, TimeZone, Utc};
use leadheat_domain::lead_forms;
use leadheat_domain::platforms::{parse, SocialEvent, Touch};
use leadheat_domain::types::{InteractionType, Platform};
use serde_json::{json, Value};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn received() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn events(platform: Platform, name: &str) -> Vec<SocialEvent> {
    parse(platform, &fixture(name), received()).expect("fixtures are valid JSON")
}

fn touches(events: &[SocialEvent]) -> Vec<&Touch> {
    events
        .iter()
        .filter_map(|e| match e {
            SocialEvent::Touch(t) => Some(t),
            _ => None,
        })
        .collect()
}

fn ignored(events: &[SocialEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, SocialEvent::Ignored { .. }))
        .count()
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

#[test]
fn facebook_feed_batch() {
    let events = events(Platform::Facebook, "facebook_feed_batch.json");
    assert_eq!(events.len(), 9);
    let touches = touches(&events);
    let summary: Vec<(InteractionType, &str, &str)> = touches
        .iter()
        .map(|t| {
            (
                t.kind,
                t.external_id.as_str(),
                t.actor.platform_user_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                InteractionType::SocialLike,
                "reaction:104567890123456_987654321098765:7234567890123456:love",
                "7234567890123456"
            ),
            (
                InteractionType::SocialComment,
                "comment:987654321098765_1122334455667788",
                "7234567890123456"
            ),
            (
                InteractionType::SocialShare,
                "share:8234567890123457_5566778899",
                "8234567890123457"
            ),
            (
                InteractionType::SocialFollow,
                "follow:104567890123456:9234567890123458",
                "9234567890123458"
            ),
            (
                InteractionType::SocialMention,
                "mention:555_666",
                "6234567890123455"
            ),
        ]
    );
    // Names and times from the payload; numeric ids become strings.
    assert_eq!(touches[0].actor.name.as_deref(), Some("Grace Hopper"));
    assert_eq!(touches[0].occurred_at, at(1764000000));
    assert_eq!(touches[1].metadata["message"], "Do you ship to Canada?");
    assert_eq!(touches[2].actor.name.as_deref(), Some("Alan Turing"));
    assert_eq!(touches[4].actor.name.as_deref(), Some("Ada Lovelace"));
    // The edit, the page's own post, the removal and the unknown field are ignored.
    assert_eq!(ignored(&events), 4);
    for touch in &touches {
        assert_eq!(touch.platform, Platform::Facebook);
    }
}

#[test]
fn facebook_leadgen_with_string_and_numeric_ids() {
    let events = events(Platform::Facebook, "facebook_leadgen.json");
    let forms: Vec<_> = events
        .iter()
        .map(|e| match e {
            SocialEvent::LeadForm(f) => f.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(forms.len(), 2);
    assert_eq!(forms[0].leadgen_id, "444444444444");
    assert_eq!(forms[0].form_id.as_deref(), Some("1234567890123456"));
    assert_eq!(forms[0].ad_id.as_deref(), Some("120210000000000001"));
    assert_eq!(forms[0].page_id.as_deref(), Some("104567890123456"));
    assert_eq!(forms[0].created_time, Some(at(1764000000)));
    assert_eq!(forms[0].external_id(), "leadgen:444444444444");
    assert_eq!(forms[1].leadgen_id, "444444444445");
    assert_eq!(forms[1].form_id.as_deref(), Some("1234567890123456"));
    assert_eq!(forms[1].ad_id, None);
}

#[test]
fn messenger_messages_but_not_echoes_deliveries_or_reads() {
    let events = events(Platform::Facebook, "facebook_messenger.json");
    assert_eq!(events.len(), 5);
    let touches = touches(&events);
    assert_eq!(touches.len(), 2);
    assert_eq!(touches[0].kind, InteractionType::DirectMessage);
    assert!(touches[0].external_id.starts_with("message:m_AG5Hz2Uq"));
    assert_eq!(touches[0].actor.platform_user_id, "2923456789012345");
    assert_eq!(
        touches[0].occurred_at,
        Utc.timestamp_millis_opt(1764000000100).unwrap()
    );
    assert_eq!(
        touches[0].metadata["text"],
        "Hi! Is the blue model still available?"
    );
    assert_eq!(touches[1].external_id, "message:m_photo_1");
    assert_eq!(touches[1].metadata["has_attachments"], true);
    assert_eq!(ignored(&events), 3);
}

#[test]
fn instagram_comments_mentions_and_story_insights() {
    let events = events(Platform::Instagram, "instagram_changes.json");
    assert_eq!(events.len(), 7);
    let touches = touches(&events);
    assert_eq!(touches.len(), 2);
    assert_eq!(touches[0].kind, InteractionType::SocialComment);
    assert_eq!(touches[0].external_id, "comment:17865799348089039");
    assert_eq!(touches[0].actor.handle.as_deref(), Some("katherine.j"));
    assert_eq!(touches[0].metadata["media_id"], "17900000000000001");
    assert_eq!(touches[0].occurred_at, at(1764000000));
    assert_eq!(touches[1].kind, InteractionType::SocialMention);
    assert_eq!(touches[1].external_id, "mention:17894227972186121");
    assert_eq!(touches[1].actor.platform_user_id, "17841406666666666");
    let metrics: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SocialEvent::StoryMetrics {
                media_id, metrics, ..
            } => Some((media_id.clone(), metrics.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(metrics.len(), 2);
    assert_eq!(metrics[0].0, "18023345989012587");
    assert_eq!(metrics[0].1["impressions"], 444.0);
    assert_eq!(metrics[0].1["replies"], 0.0);
    assert_eq!(metrics[0].1.len(), 6);
    // Every metric is optional, numeric strings accepted.
    assert_eq!(metrics[1].1.len(), 1);
    assert_eq!(metrics[1].1["reach"], 12.0);
    // Own comment, authorless mention, unknown field.
    assert_eq!(ignored(&events), 3);
}

#[test]
fn instagram_messages_ignore_echoes_and_deletions() {
    let events = events(Platform::Instagram, "instagram_messaging.json");
    let touches = touches(&events);
    assert_eq!(touches.len(), 1);
    assert_eq!(touches[0].kind, InteractionType::DirectMessage);
    assert_eq!(touches[0].platform, Platform::Instagram);
    assert_eq!(touches[0].actor.platform_user_id, "1234567890123456");
    assert_eq!(ignored(&events), 2);
}

#[test]
fn linkedin_lead_actions() {
    let created = events(Platform::Linkedin, "linkedin_lead_created.json");
    match &created[..] {
        [SocialEvent::LeadForm(form)] => {
            assert_eq!(form.platform, Platform::Linkedin);
            assert_eq!(form.leadgen_id, "3f5a6b3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b-4");
            assert_eq!(form.form_id.as_deref(), Some("9876543"));
            assert_eq!(form.page_id.as_deref(), Some("522529623"));
            assert_eq!(form.campaign_id.as_deref(), Some("212345678"));
            assert_eq!(
                form.created_time,
                Some(Utc.timestamp_millis_opt(1764000000000).unwrap())
            );
        }
        other => panic!("{other:?}"),
    }
    let deleted = events(Platform::Linkedin, "linkedin_lead_deleted.json");
    assert_eq!(
        deleted,
        [SocialEvent::LinkedInLeadDeleted {
            response_id: "3f5a6b3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b-4".into()
        }]
    );
}

#[test]
fn linkedin_social_actions() {
    let events = events(Platform::Linkedin, "linkedin_social_actions.json");
    assert_eq!(events.len(), 6);
    let touches = touches(&events);
    let summary: Vec<(InteractionType, &str, &str)> = touches
        .iter()
        .map(|t| {
            (
                t.kind,
                t.external_id.as_str(),
                t.actor.platform_user_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                InteractionType::SocialLike,
                "like:urn:li:share:6968214839120048128:yrZCpj2ZYQ",
                "yrZCpj2ZYQ"
            ),
            (
                InteractionType::SocialComment,
                "comment:urn:li:comment:(urn:li:activity:6968214840000000000,6968230000000000000)",
                "abcDEF123"
            ),
            (
                InteractionType::SocialShare,
                "share:urn:li:share:6968240000000000000",
                "ghiJKL456"
            ),
            (
                InteractionType::SocialMention,
                "mention:urn:li:share:6968250000000000000",
                "mnoPQR789"
            ),
        ]
    );
    assert_eq!(touches[1].metadata["text"], "Looking forward to the launch");
    assert_eq!(
        touches[0].occurred_at,
        Utc.timestamp_millis_opt(1764000000000).unwrap()
    );
    // ADMIN_COMMENT and the organisation's own like.
    assert_eq!(ignored(&events), 2);
}

#[test]
fn unknown_objects_and_kinds_never_fail() {
    for platform in [Platform::Facebook, Platform::Instagram, Platform::Linkedin] {
        for body in [
            json!({}),
            json!({"object": "page", "entry": "nope"}),
            json!({"object": "page", "entry": [{"time": 1}, {"id": null}, 7, {"id": "1", "changes": [null, {"field": 3}]}]}),
            json!({"type": "SOMETHING_NEW", "payload": {}}),
            json!([1, 2, 3]),
        ] {
            let parsed = parse(platform, body.to_string().as_bytes(), received());
            let events = parsed.unwrap_or_else(|e| panic!("{platform} {body}: {e}"));
            assert!(touches(&events).is_empty(), "{platform} {body}: {events:?}");
        }
    }
}

#[test]
fn graph_lead_maps_to_standard_fields() {
    let lead: Value = serde_json::from_slice(&fixture("meta_graph_lead.json")).unwrap();
    let answers = lead_forms::from_meta_field_data(&lead);
    assert_eq!(answers.first_name.as_deref(), Some("Ada"));
    assert_eq!(answers.last_name.as_deref(), Some("Lovelace"));
    assert_eq!(answers.email.as_deref(), Some("ada@example.com"));
    assert_eq!(answers.phone.as_deref(), Some("+442079460958"));
    assert_eq!(answers.company.as_deref(), Some("Analytical Engines Ltd"));
    assert_eq!(answers.title.as_deref(), Some("Head of Research"));
    assert_eq!(
        answers.custom["when_are_you_looking_to_buy?"],
        json!("within_3_months")
    );
    assert_eq!(answers.custom["interests"], json!(["widgets", "gadgets"]));
}

#[test]
fn linkedin_response_maps_through_the_form_questions() {
    let response: Value =
        serde_json::from_slice(&fixture("linkedin_lead_form_response.json")).unwrap();
    let form: Value = serde_json::from_slice(&fixture("linkedin_lead_form.json")).unwrap();
    let answers = lead_forms::from_linkedin_response(&response, Some(&form));
    assert_eq!(answers.first_name.as_deref(), Some("Linus"));
    assert_eq!(answers.last_name.as_deref(), Some("Torvalds"));
    assert_eq!(answers.email.as_deref(), Some("linus@example.org"));
    assert_eq!(answers.phone.as_deref(), Some("+1 503 555 0100"));
    assert_eq!(answers.company.as_deref(), Some("Kernel Inc"));
    assert_eq!(answers.title.as_deref(), Some("Maintainer"));
    assert_eq!(answers.custom["teamSize"], json!([2]));
}

mod properties {
    use super::*;
    use chrono::Duration;
    use leadheat_domain::delivery::split_delivery;
    use leadheat_domain::sync::{next_status, Next, Outcome, Policy};
    use proptest::prelude::*;

    /// Arbitrary JSON, biased towards the shapes the parsers look into.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[a-z_:0-9]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            let keys = prop_oneof![
                Just("entry".to_string()),
                Just("changes".to_string()),
                Just("messaging".to_string()),
                Just("field".to_string()),
                Just("value".to_string()),
                Just("id".to_string()),
                Just("from".to_string()),
                Just("item".to_string()),
                Just("message".to_string()),
                Just("notifications".to_string()),
                Just("type".to_string()),
                Just("action".to_string()),
                "[a-z]{1,6}",
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(keys, inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn parsers_never_panic_on_any_json(value in json_value()) {
            let bytes = value.to_string();
            for platform in [Platform::Facebook, Platform::Instagram, Platform::Linkedin] {
                prop_assert!(parse(platform, bytes.as_bytes(), received()).is_ok());
                prop_assert!(split_delivery(platform, bytes.as_bytes()).is_ok());
            }
        }

        #[test]
        fn parsers_never_panic_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            for platform in [Platform::Facebook, Platform::Instagram, Platform::Linkedin] {
                let _ = parse(platform, &bytes, received());
                let _ = split_delivery(platform, &bytes);
            }
        }

        #[test]
        fn transient_failures_retry_later_until_the_bound(attempts in 1u32..20, jitter in any::<[u8; 4]>()) {
            let policy = Policy::default();
            let outcome = Outcome::Transient { error: "HTTP 503".into(), retry_after: None };
            match next_status(&policy, attempts, &outcome, received(), jitter) {
                Next::Retry { next_attempt_at, counted, .. } => {
                    prop_assert!(attempts < policy.max_attempts);
                    prop_assert!(counted);
                    prop_assert!(next_attempt_at > received());
                    prop_assert!(next_attempt_at <= received() + policy.max_delay);
                }
                Next::Dead { .. } => prop_assert!(attempts >= policy.max_attempts),
                Next::Processed => prop_assert!(false, "a failure is never processed"),
            }
        }

        #[test]
        fn waits_never_count_and_never_go_back_in_time(minutes in -60i64..600, attempts in 0u32..50) {
            let policy = Policy::default();
            let until = received() + Duration::minutes(minutes);
            let next = next_status(&policy, attempts, &Outcome::Deferred { reason: "circuit".into(), until }, received(), [0; 4]);
            match next {
                Next::Retry { next_attempt_at, counted, .. } => {
                    prop_assert!(!counted);
                    prop_assert!(next_attempt_at >= received());
                    prop_assert!(next_attempt_at >= until);
                }
                other => prop_assert!(false, "{other:?}"),
            }
        }
    }
}
