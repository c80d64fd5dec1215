//! Instagram webhooks (`object: "instagram"`): `comments` / `live_comments`, `mentions`,
//! `story_insights` changes and `messaging` (Instagram Direct, shaped like Messenger).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::facebook::{array, compact, messaging, meta_entries};
use super::{id_of, text_of, time_of, Actor, SocialEvent, Touch};
use crate::types::{InteractionType, Platform};

/// The story metrics Instagram reports; every one optional.
pub const STORY_METRICS: [&str; 6] = [
    "impressions",
    "reach",
    "taps_forward",
    "taps_back",
    "exits",
    "replies",
];

pub fn parse(value: &Value, received_at: DateTime<Utc>) -> Vec<SocialEvent> {
    meta_entries(value, |entry, account_id, entry_time| {
        let fallback = entry_time.unwrap_or(received_at);
        let mut events = Vec::new();
        for change in array(entry.get("changes")) {
            let field = change.get("field").and_then(Value::as_str).unwrap_or("");
            let value = change.get("value").unwrap_or(&Value::Null);
            events.push(match field {
                "comments" | "live_comments" => comment(value, account_id, fallback),
                "mentions" => mention(value, account_id, fallback),
                "story_insights" => story_insights(value, fallback),
                other => SocialEvent::ignored(format!("instagram field {other:?} is not handled")),
            });
        }
        events.extend(messaging(entry, Platform::Instagram, account_id, fallback));
        events
    })
}

/// `{id, text, from{id, username}, media{id, media_product_type}, parent_id?}`.
fn comment(value: &Value, account_id: &str, fallback: DateTime<Utc>) -> SocialEvent {
    let Some(id) = id_of(value.get("id")) else {
        return SocialEvent::ignored("comment without an id");
    };
    let from = value.get("from");
    let Some(user) = id_of(from.and_then(|f| f.get("id"))) else {
        return SocialEvent::ignored("comment without an author");
    };
    if user == account_id {
        return SocialEvent::ignored("the account's own comment");
    }
    SocialEvent::Touch(Touch {
        kind: InteractionType::SocialComment,
        platform: Platform::Instagram,
        external_id: format!("comment:{id}"),
        occurred_at: time_of(value.get("timestamp")).unwrap_or(fallback),
        actor: Actor {
            platform_user_id: user,
            name: None,
            handle: text_of(from.and_then(|f| f.get("username"))),
        },
        metadata: compact(json!({
            "comment_id": id,
            "text": text_of(value.get("text")),
            "media_id": id_of(value.get("media").and_then(|m| m.get("id"))),
            "media_product_type": text_of(value.get("media").and_then(|m| m.get("media_product_type"))),
            "parent_id": id_of(value.get("parent_id")),
            "account_id": account_id,
        })),
    })
}

/// `{media_id, comment_id}`: the account was mentioned in a caption or comment. Instagram does
/// not name the author in the payload; when it does (`from`/`username`), it becomes a mention
/// touchpoint, otherwise it is ignored (no one to attribute it to).
fn mention(value: &Value, account_id: &str, fallback: DateTime<Utc>) -> SocialEvent {
    let media_id = id_of(value.get("media_id"));
    let comment_id = id_of(value.get("comment_id"));
    let Some(target) = comment_id.clone().or(media_id.clone()) else {
        return SocialEvent::ignored("mention without media or comment");
    };
    let from = value.get("from");
    let user = id_of(from.and_then(|f| f.get("id")));
    let Some(user) = user else {
        return SocialEvent::ignored("mention whose author the payload does not name");
    };
    SocialEvent::Touch(Touch {
        kind: InteractionType::SocialMention,
        platform: Platform::Instagram,
        external_id: format!("mention:{target}"),
        occurred_at: time_of(value.get("timestamp")).unwrap_or(fallback),
        actor: Actor {
            platform_user_id: user,
            name: None,
            handle: text_of(from.and_then(|f| f.get("username")))
                .or_else(|| text_of(value.get("username"))),
        },
        metadata: compact(
            json!({"media_id": media_id, "comment_id": comment_id, "account_id": account_id}),
        ),
    })
}

/// `{media_id, impressions, reach, taps_forward, taps_back, exits, replies}`.
fn story_insights(value: &Value, fallback: DateTime<Utc>) -> SocialEvent {
    let Some(media_id) = id_of(value.get("media_id")) else {
        return SocialEvent::ignored("story insights without a media_id");
    };
    let metrics: BTreeMap<String, f64> = STORY_METRICS
        .iter()
        .filter_map(|name| {
            let v = value.get(*name)?;
            let number = v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))?;
            number.is_finite().then(|| (name.to_string(), number))
        })
        .collect();
    SocialEvent::StoryMetrics {
        media_id,
        metrics,
        occurred_at: fallback,
    }
}
