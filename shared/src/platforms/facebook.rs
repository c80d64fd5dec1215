//! Facebook Page webhooks (`object: "page"`): `leadgen`, `feed` and `mention` changes, and
//! Messenger `messaging` events. The Meta envelope and Messenger parsing are shared with Instagram.
//!
//! Envelope: `{"object":"page","entry":[{"id":PAGE,"time":T,"changes":[{"field","value"}]}
//! | {"id":PAGE,"time":T,"messaging":[...]}]}`; Meta batches many entries (and pages) in one delivery.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{id_of, text_of, time_of, Actor, LeadFormRef, SocialEvent, Touch};
use crate::types::{InteractionType, Platform};

/// Every event of a Facebook delivery, entry by entry, in order.
pub fn parse(value: &Value, received_at: DateTime<Utc>) -> Vec<SocialEvent> {
    meta_entries(value, |entry, page_id, entry_time| {
        let occurred_fallback = entry_time.unwrap_or(received_at);
        let mut events = Vec::new();
        for change in array(entry.get("changes")) {
            let field = change.get("field").and_then(Value::as_str).unwrap_or("");
            let value = change.get("value").unwrap_or(&Value::Null);
            events.push(match field {
                "leadgen" => leadgen(value, page_id),
                "feed" => feed(value, page_id, occurred_fallback),
                "mention" => mention(value, page_id, occurred_fallback),
                other => SocialEvent::ignored(format!("facebook field {other:?} is not handled")),
            });
        }
        events.extend(messaging(
            entry,
            Platform::Facebook,
            page_id,
            occurred_fallback,
        ));
        events
    })
}

/// Walks the `entry` array of a Meta delivery, calling `each` with the entry, its account id and
/// its time. Entries without an id are skipped with an `Ignored` event.
pub(crate) fn meta_entries(
    value: &Value,
    mut each: impl FnMut(&Value, &str, Option<DateTime<Utc>>) -> Vec<SocialEvent>,
) -> Vec<SocialEvent> {
    let mut events = Vec::new();
    for entry in array(value.get("entry")) {
        match id_of(entry.get("id")) {
            Some(account) => events.extend(each(entry, &account, time_of(entry.get("time")))),
            None => events.push(SocialEvent::ignored("entry without an account id")),
        }
    }
    events
}

pub(crate) fn array(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// Messenger (and Instagram messaging) events of one entry: messages from people become
/// `direct_message` touchpoints; echoes of the account's own messages, deliveries, reads and
/// other kinds are ignored.
pub(crate) fn messaging(
    entry: &Value,
    platform: Platform,
    account_id: &str,
    occurred_fallback: DateTime<Utc>,
) -> Vec<SocialEvent> {
    array(entry.get("messaging"))
        .iter()
        .map(|event| {
            let Some(message) = event.get("message").filter(|m| m.is_object()) else {
                return SocialEvent::ignored("messaging event that is not a message");
            };
            if message.get("is_echo").and_then(Value::as_bool) == Some(true) {
                return SocialEvent::ignored("echo of the account's own message");
            }
            if message.get("is_deleted").and_then(Value::as_bool) == Some(true) {
                return SocialEvent::ignored("deleted message");
            }
            let Some(sender) = id_of(event.get("sender").and_then(|s| s.get("id"))) else {
                return SocialEvent::ignored("message without a sender");
            };
            if sender == account_id {
                return SocialEvent::ignored("message sent by the account itself");
            }
            let Some(mid) = id_of(message.get("mid")) else {
                return SocialEvent::ignored("message without a mid");
            };
            SocialEvent::Touch(Touch {
                kind: InteractionType::DirectMessage,
                platform,
                external_id: format!("message:{mid}"),
                occurred_at: time_of(event.get("timestamp")).unwrap_or(occurred_fallback),
                actor: Actor {
                    platform_user_id: sender,
                    name: None,
                    handle: text_of(event.get("sender").and_then(|s| s.get("username"))),
                },
                metadata: compact(json!({
                    "mid": mid,
                    "text": text_of(message.get("text")),
                    "has_attachments": message.get("attachments").is_some().then_some(true),
                    "account_id": account_id,
                })),
            })
        })
        .collect()
}

/// A `leadgen` change: `{leadgen_id, page_id, form_id, ad_id, adgroup_id, created_time}`.
fn leadgen(value: &Value, page_id: &str) -> SocialEvent {
    let Some(leadgen_id) = id_of(value.get("leadgen_id")) else {
        return SocialEvent::ignored("leadgen change without a leadgen_id");
    };
    SocialEvent::LeadForm(LeadFormRef {
        platform: Platform::Facebook,
        leadgen_id,
        form_id: id_of(value.get("form_id")),
        ad_id: id_of(value.get("ad_id")).or_else(|| id_of(value.get("adgroup_id"))),
        campaign_id: id_of(value.get("campaign_id")),
        page_id: id_of(value.get("page_id")).or_else(|| Some(page_id.to_string())),
        created_time: time_of(value.get("created_time")),
    })
}

/// A `feed` change: reactions and likes, comments, shares and page likes (follows). Removals,
/// edits, the page's own activity and posts are ignored.
fn feed(value: &Value, page_id: &str, occurred_fallback: DateTime<Utc>) -> SocialEvent {
    let item = value.get("item").and_then(Value::as_str).unwrap_or("");
    let verb = value.get("verb").and_then(Value::as_str).unwrap_or("add");
    if verb != "add" {
        return SocialEvent::ignored(format!("feed {item} with verb {verb:?}"));
    }
    let from = value.get("from");
    let Some(user) = id_of(from.and_then(|f| f.get("id"))).or_else(|| id_of(value.get("user_id")))
    else {
        return SocialEvent::ignored(format!("feed {item} without an author"));
    };
    if user == page_id {
        return SocialEvent::ignored("the page's own activity");
    }
    let actor = Actor {
        platform_user_id: user.clone(),
        name: text_of(from.and_then(|f| f.get("name"))),
        handle: None,
    };
    let occurred_at = time_of(value.get("created_time")).unwrap_or(occurred_fallback);
    let post_id = id_of(value.get("post_id"));
    let comment_id = id_of(value.get("comment_id"));
    let touch = |kind, external_id: String, metadata: Value| {
        SocialEvent::Touch(Touch {
            kind,
            platform: Platform::Facebook,
            external_id,
            occurred_at,
            actor: actor.clone(),
            metadata: compact(metadata),
        })
    };
    match item {
        // A like is the "like" reaction: both items map to one external id, so Meta sending
        // both for one click still makes one touchpoint.
        "reaction" | "like" if post_id.is_some() || comment_id.is_some() => {
            let reaction = text_of(value.get("reaction_type"))
                .unwrap_or_else(|| "like".to_string())
                .to_ascii_lowercase();
            let target = comment_id.clone().or(post_id.clone()).unwrap_or_default();
            touch(
                InteractionType::SocialLike,
                format!("reaction:{target}:{user}:{reaction}"),
                json!({"post_id": post_id, "comment_id": comment_id, "reaction_type": reaction, "page_id": page_id}),
            )
        }
        // A like of the page itself (no post): a follow.
        "like" | "follow" | "fan" => touch(
            InteractionType::SocialFollow,
            format!("follow:{page_id}:{user}"),
            json!({"page_id": page_id}),
        ),
        "comment" => match comment_id.clone() {
            Some(id) => touch(
                InteractionType::SocialComment,
                format!("comment:{id}"),
                json!({
                    "post_id": post_id,
                    "comment_id": id,
                    "parent_id": id_of(value.get("parent_id")),
                    "message": text_of(value.get("message")),
                    "page_id": page_id,
                }),
            ),
            None => SocialEvent::ignored("comment without a comment_id"),
        },
        "share" => match id_of(value.get("share_id")).or(post_id.clone()) {
            Some(id) => touch(
                InteractionType::SocialShare,
                format!("share:{id}"),
                json!({"post_id": post_id, "share_id": id_of(value.get("share_id")), "link": text_of(value.get("link")), "page_id": page_id}),
            ),
            None => SocialEvent::ignored("share without an id"),
        },
        other => SocialEvent::ignored(format!("feed item {other:?} is not handled")),
    }
}

/// A `mention` change: the page was mentioned in a post or comment.
fn mention(value: &Value, page_id: &str, occurred_fallback: DateTime<Utc>) -> SocialEvent {
    if value.get("verb").and_then(Value::as_str).unwrap_or("add") != "add" {
        return SocialEvent::ignored("mention that is not an addition");
    }
    let Some(user) = id_of(value.get("sender_id")) else {
        return SocialEvent::ignored("mention without a sender");
    };
    let Some(target) = id_of(value.get("comment_id")).or_else(|| id_of(value.get("post_id")))
    else {
        return SocialEvent::ignored("mention without a post or comment");
    };
    SocialEvent::Touch(Touch {
        kind: InteractionType::SocialMention,
        platform: Platform::Facebook,
        external_id: format!("mention:{target}"),
        occurred_at: time_of(value.get("created_time")).unwrap_or(occurred_fallback),
        actor: Actor {
            platform_user_id: user,
            name: text_of(value.get("sender_name")),
            handle: None,
        },
        metadata: compact(
            json!({"post_id": id_of(value.get("post_id")), "comment_id": id_of(value.get("comment_id")), "page_id": page_id}),
        ),
    })
}

/// Drops null members of a metadata object.
pub(crate) fn compact(mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        map.retain(|_, v| !v.is_null());
    }
    value
}
