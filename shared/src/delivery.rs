//! What the webhook endpoint needs to know of a delivery before storing it: which account it is
//! for and a key that recognises the same delivery when the platform sends it again.
//!
//! Parsing the events inside a delivery is the sync consumer's job (the platform modules); this
//! only peeks at the envelope, and never fails a delivery that is valid JSON.

use serde_json::Value;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::types::Platform;

/// The envelope facts of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Recognises a redelivery: the platforms resend the same bytes when they retry.
    pub dedupe_key: String,
    /// The page, Instagram account or LinkedIn organisation the delivery is for, when it names one.
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeliveryError {
    #[error("the body is not valid JSON: {0}")]
    NotJson(String),
    #[error("{0} is not a platform that sends webhooks")]
    NotSocial(Platform),
    /// One event alone is larger than an inbox row holds.
    #[error(
        "an event of {bytes} bytes is larger than an inbox row holds ({MAX_PART_BYTES} bytes)"
    )]
    EventTooLarge { bytes: usize },
    #[error("the delivery splits into {parts} inbox rows; at most {MAX_PARTS_PER_DELIVERY} are stored per delivery")]
    TooManyParts { parts: usize },
}

/// Describes a signed delivery of `platform`.
pub fn describe_delivery(platform: Platform, body: &[u8]) -> Result<Delivery, DeliveryError> {
    if !platform.is_social() {
        return Err(DeliveryError::NotSocial(platform));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| DeliveryError::NotJson(e.to_string()))?;
    let account_id = match platform {
        Platform::Linkedin => linkedin_account(&value),
        _ => meta_account(&value),
    };
    Ok(Delivery {
        dedupe_key: hex::encode(Sha256::digest(body)),
        account_id,
    })
}

/// The most events one inbox row holds: larger deliveries are split at receipt, so that the sync
/// consumer can always apply one row within its D1 query budget
/// ([`crate::sync::QueryBudget`]). One event is one Meta `changes` or `messaging` item, or one
/// LinkedIn notification.
pub const MAX_EVENTS_PER_PART: usize = 10;

/// The most bytes of one part's body: a part with more is cut into parts of fewer events. The
/// webhook worker stores parts as a JSON array in one statement, where escaping may double a body,
/// and D1 allows 100,000 bytes per statement ([`crate::d1_limits::MAX_STATEMENT_BYTES`]); so one
/// row always fits in one statement with room to spare.
pub const MAX_PART_BYTES: usize = 32 * 1024;

/// The most parts (inbox rows) one delivery may become. It bounds the webhook worker's D1 queries
/// per delivery (the org lookups and the inserts; far under the 1,000 of an invocation) and is far
/// above what a platform batches (Meta sends at most a thousand or so updates per delivery).
pub const MAX_PARTS_PER_DELIVERY: usize = 2000;

const _: () = assert!(
    2 * MAX_PART_BYTES + 4 * 1024 < crate::d1_limits::MAX_STATEMENT_BYTES,
    "a part's row, escaped, fits in one statement"
);

/// One account's share of a delivery (or a slice of it): what one inbox row stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPart {
    pub dedupe_key: String,
    pub account_id: Option<String>,
    /// The raw body when the delivery is for one account and holds at most
    /// [`MAX_EVENTS_PER_PART`] events; otherwise this part's entries (or notifications) in the
    /// platform's own envelope.
    pub body: String,
}

/// Splits a signed delivery into parts of one account, at most [`MAX_EVENTS_PER_PART`] events and
/// at most [`MAX_PART_BYTES`] bytes each (a part over the bytes is cut into parts of fewer events;
/// a single event over them is refused, as is a delivery of more than
/// [`MAX_PARTS_PER_DELIVERY`] parts). Meta batches entries of several pages (or Instagram accounts) of the app in one
/// delivery, and LinkedIn batches notifications of several organisations; each account may belong
/// to a different org, so each part is stored, resolved and retried on its own. An account with
/// more events than a part holds gets several parts, in order; a Meta entry with more changes or
/// messages than fit is cut into copies of the entry, each with a run of its items.
///
/// The dedupe key is the SHA-256 of the part's bytes. Splitting is deterministic, so a redelivery
/// (the platforms resend the same bytes) maps to the same rows.
pub fn split_delivery(platform: Platform, body: &[u8]) -> Result<Vec<DeliveryPart>, DeliveryError> {
    if !platform.is_social() {
        return Err(DeliveryError::NotSocial(platform));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| DeliveryError::NotJson(e.to_string()))?;
    let raw = std::str::from_utf8(body).map_err(|e| DeliveryError::NotJson(e.to_string()))?;
    let (list_key, account_of): (&str, fn(&Value) -> Option<String>) = match platform {
        Platform::Linkedin => ("notifications", |n: &Value| {
            n.get("organizationalEntity")
                .and_then(Value::as_str)
                .and_then(urn_tail)
        }),
        _ => ("entry", |e: &Value| e.get("id").and_then(id_string)),
    };
    let whole = |account_id: Option<String>| DeliveryPart {
        dedupe_key: hex::encode(Sha256::digest(body)),
        account_id,
        body: raw.to_string(),
    };
    let Some(items) = value.get(list_key).and_then(Value::as_array) else {
        if raw.len() > MAX_PART_BYTES {
            return Err(DeliveryError::EventTooLarge { bytes: raw.len() });
        }
        let account = match platform {
            Platform::Linkedin => linkedin_account(&value),
            _ => meta_account(&value),
        };
        return Ok(vec![whole(account)]);
    };
    let mut groups: Vec<(Option<String>, Vec<Value>)> = Vec::new();
    for item in items {
        let account = account_of(item);
        match groups.iter_mut().find(|(a, _)| *a == account) {
            Some((_, list)) => list.push(item.clone()),
            None => groups.push((account, vec![item.clone()])),
        }
    }
    let fits = |list: &[Value]| events_in(platform, list) <= MAX_EVENTS_PER_PART;
    if groups.len() <= 1 && groups.iter().all(|(_, list)| fits(list)) && raw.len() <= MAX_PART_BYTES
    {
        let account = groups.into_iter().next().and_then(|(a, _)| a);
        return Ok(vec![whole(account)]);
    }
    let mut parts = Vec::new();
    for (account_id, list) in groups {
        let slices = if fits(&list) {
            vec![list]
        } else {
            slice(platform, list, MAX_EVENTS_PER_PART)
        };
        for slice in slices {
            let envelope = Envelope {
                platform,
                value: &value,
                list_key,
                account_id: &account_id,
            };
            envelope.push_parts(slice, &mut parts)?;
        }
        if parts.len() > MAX_PARTS_PER_DELIVERY {
            return Err(DeliveryError::TooManyParts { parts: parts.len() });
        }
    }
    Ok(parts)
}

/// What a part repeats of its delivery: the envelope around its run of items.
struct Envelope<'a> {
    platform: Platform,
    value: &'a Value,
    list_key: &'a str,
    account_id: &'a Option<String>,
}

impl Envelope<'_> {
    /// The part of these items, or, when its body is over [`MAX_PART_BYTES`], the parts of runs
    /// of half as many events, and so on.
    fn push_parts(
        &self,
        items: Vec<Value>,
        parts: &mut Vec<DeliveryPart>,
    ) -> Result<(), DeliveryError> {
        let mut part = self.value.clone();
        part[self.list_key] = Value::Array(items);
        let text = part.to_string();
        if text.len() > MAX_PART_BYTES {
            let Value::Array(items) = part[self.list_key].take() else {
                unreachable!("the list was just set");
            };
            let events = events_in(self.platform, &items);
            if events <= 1 {
                return Err(DeliveryError::EventTooLarge { bytes: text.len() });
            }
            for half in slice(self.platform, items, events.div_ceil(2)) {
                self.push_parts(half, parts)?;
            }
            return Ok(());
        }
        parts.push(DeliveryPart {
            dedupe_key: hex::encode(Sha256::digest(text.as_bytes())),
            account_id: self.account_id.clone(),
            body: text,
        });
        Ok(())
    }
}

/// The events items of a Meta entry yield when parsed: its `changes`, then its `messaging`. An
/// entry without an account id yields one `Ignored` event whatever it holds, so it has none here.
const META_EVENT_LISTS: [&str; 2] = ["changes", "messaging"];

fn meta_event_items(entry: &Value) -> Vec<(&'static str, &Value)> {
    if entry.get("id").and_then(id_string).is_none() {
        return Vec::new();
    }
    META_EVENT_LISTS
        .iter()
        .flat_map(|key| {
            entry
                .get(*key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(move |item| (*key, item))
        })
        .collect()
}

/// The events an item of the list stands for (at least one: an entry without changes still
/// takes a place in a part).
fn events_of(platform: Platform, item: &Value) -> usize {
    match platform {
        Platform::Linkedin => 1,
        _ => meta_event_items(item).len().max(1),
    }
}

fn events_in(platform: Platform, list: &[Value]) -> usize {
    list.iter().map(|item| events_of(platform, item)).sum()
}

/// Cuts one account's items into runs of at most `max_events` events, keeping their order. A Meta
/// entry whose events do not fit in the current run continues in the next one as a copy of the
/// entry (every field but `changes` and `messaging`) carrying the remaining items.
fn slice(platform: Platform, list: Vec<Value>, max_events: usize) -> Vec<Vec<Value>> {
    let mut slices = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    let mut used = 0;
    for item in list {
        let events = match platform {
            Platform::Linkedin => Vec::new(),
            _ => meta_event_items(&item),
        };
        if events.is_empty() {
            if used == max_events {
                slices.push(std::mem::take(&mut current));
                used = 0;
            }
            current.push(item);
            used += 1;
            continue;
        }
        let mut shell = item.clone();
        if let Some(object) = shell.as_object_mut() {
            for key in META_EVENT_LISTS {
                object.remove(key);
            }
        }
        let mut piece: Option<Value> = None;
        for (key, event) in events {
            if used == max_events {
                current.extend(piece.take());
                slices.push(std::mem::take(&mut current));
                used = 0;
            }
            let copy = piece.get_or_insert_with(|| shell.clone());
            match copy.get_mut(key).and_then(Value::as_array_mut) {
                Some(items) => items.push(event.clone()),
                None => copy[key] = Value::Array(vec![event.clone()]),
            }
            used += 1;
        }
        current.extend(piece);
    }
    if !current.is_empty() {
        slices.push(current);
    }
    slices
}

fn urn_tail(urn: &str) -> Option<String> {
    urn.rsplit(':')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Meta batches entries of one object type; every entry of a delivery belongs to the same app,
/// and the first entry's `id` (page or Instagram account) names the account.
fn meta_account(value: &Value) -> Option<String> {
    value
        .get("entry")?
        .as_array()?
        .first()?
        .get("id")
        .and_then(id_string)
}

/// LinkedIn notifications name the organisation as a URN (`urn:li:organization:123`): at the top
/// level, in the first of a batch of `notifications`, or, for Lead Sync, as the `owner`
/// (`{"sponsoredAccount": URN}` or `{"organization": URN}`).
fn linkedin_account(value: &Value) -> Option<String> {
    if let Some(urn) = value.get("organizationalEntity").and_then(Value::as_str) {
        return urn_tail(urn);
    }
    if let Some(first) = value
        .get("notifications")
        .and_then(Value::as_array)
        .and_then(|list| list.first())
    {
        return first
            .get("organizationalEntity")
            .and_then(Value::as_str)
            .and_then(urn_tail);
    }
    let owner = value.get("owner")?;
    if let Some(urn) = owner.as_str() {
        return urn_tail(urn);
    }
    ["sponsoredAccount", "organization"]
        .iter()
        .find_map(|key| owner.get(*key).and_then(Value::as_str).and_then(urn_tail))
}

/// Meta sends ids as strings or as numbers.
pub fn id_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platforms::{self, SocialEvent};
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;
    use serde_json::json;

    fn events(platform: Platform, body: &str) -> Vec<SocialEvent> {
        let received = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        platforms::parse(platform, body.as_bytes(), received).unwrap()
    }

    /// Every part's events, in part order.
    fn events_of_parts(platform: Platform, parts: &[DeliveryPart]) -> Vec<SocialEvent> {
        parts
            .iter()
            .flat_map(|p| events(platform, &p.body))
            .collect()
    }

    fn comment(page: &str, n: usize) -> Value {
        json!({"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": format!("{page}_1"),
            "comment_id": format!("{page}_1_{n}"), "from": {"id": format!("9{n}"), "name": "Ann Lee"}, "created_time": 1_700_000_000 + n}})
    }

    fn message(n: usize) -> Value {
        json!({"sender": {"id": format!("8{n}")}, "recipient": {"id": "1"}, "timestamp": 1_700_000_000_000u64 + n as u64,
            "message": {"mid": format!("m{n}"), "text": "hi"}})
    }

    #[test]
    fn meta_delivery_names_the_first_entry_and_hashes_the_bytes() {
        let body = br#"{"object":"page","entry":[{"id":"123","time":1,"changes":[]}]}"#;
        let delivery = describe_delivery(Platform::Facebook, body).unwrap();
        assert_eq!(delivery.account_id.as_deref(), Some("123"));
        assert_eq!(delivery.dedupe_key, hex::encode(Sha256::digest(body)));
    }

    #[test]
    fn numeric_ids_become_strings() {
        let body = br#"{"object":"instagram","entry":[{"id":17841400000000000,"time":1}]}"#;
        let delivery = describe_delivery(Platform::Instagram, body).unwrap();
        assert_eq!(delivery.account_id.as_deref(), Some("17841400000000000"));
    }

    #[test]
    fn linkedin_delivery_names_the_organization() {
        let body = br#"{"type":"ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS","organizationalEntity":"urn:li:organization:2414183"}"#;
        let delivery = describe_delivery(Platform::Linkedin, body).unwrap();
        assert_eq!(delivery.account_id.as_deref(), Some("2414183"));
    }

    #[test]
    fn a_delivery_without_account_is_still_described() {
        let delivery = describe_delivery(Platform::Facebook, b"{}").unwrap();
        assert_eq!(delivery.account_id, None);
    }

    #[test]
    fn invalid_json_and_non_social_platforms_are_refused() {
        assert!(matches!(
            describe_delivery(Platform::Facebook, b"{"),
            Err(DeliveryError::NotJson(_))
        ));
        assert_eq!(
            describe_delivery(Platform::Email, b"{}"),
            Err(DeliveryError::NotSocial(Platform::Email))
        );
    }

    #[test]
    fn a_single_account_delivery_is_one_part_with_the_raw_body() {
        let body = br#"{"object":"page","entry":[{"id":"1","time":1},{"id":1,"time":2}]}"#;
        let parts = split_delivery(Platform::Facebook, body).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].account_id.as_deref(), Some("1"));
        assert_eq!(parts[0].body.as_bytes(), body);
        assert_eq!(parts[0].dedupe_key, hex::encode(Sha256::digest(body)));
    }

    #[test]
    fn a_multi_account_delivery_splits_per_account_deterministically() {
        let body = br#"{"object":"page","entry":[{"id":"1","time":1},{"id":"2","time":2},{"id":"1","time":3}]}"#;
        let parts = split_delivery(Platform::Facebook, body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].account_id.as_deref(), Some("1"));
        assert_eq!(parts[1].account_id.as_deref(), Some("2"));
        let first: Value = serde_json::from_str(&parts[0].body).unwrap();
        assert_eq!(first["entry"].as_array().unwrap().len(), 2);
        assert_eq!(first["object"], "page");
        assert_ne!(parts[0].dedupe_key, parts[1].dedupe_key);
        assert_eq!(parts, split_delivery(Platform::Facebook, body).unwrap());
    }

    #[test]
    fn a_delivery_of_at_most_a_part_of_events_is_kept_whole() {
        let changes: Vec<Value> = (0..MAX_EVENTS_PER_PART).map(|n| comment("1", n)).collect();
        let body = json!({"object": "page", "entry": [{"id": "1", "time": 1, "changes": changes}]})
            .to_string();
        let parts = split_delivery(Platform::Facebook, body.as_bytes()).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].body, body);
        assert_eq!(
            parts[0].dedupe_key,
            hex::encode(Sha256::digest(body.as_bytes()))
        );
    }

    #[test]
    fn a_large_single_account_delivery_is_cut_into_parts_in_order() {
        // 23 changes and 2 messages in one entry, then an entry of 4 changes: 29 events.
        let first: Vec<Value> = (0..23).map(|n| comment("1", n)).collect();
        let second: Vec<Value> = (23..27).map(|n| comment("1", n)).collect();
        let body = json!({"object": "page", "entry": [
            {"id": "1", "time": 1_700_000_000, "extra": {"kept": true}, "changes": first, "messaging": [message(1), message(2)]},
            {"id": 1, "time": 1_700_000_100, "changes": second},
        ]})
        .to_string();
        let parts = split_delivery(Platform::Facebook, body.as_bytes()).unwrap();
        let sizes: Vec<usize> = parts
            .iter()
            .map(|p| events(Platform::Facebook, &p.body).len())
            .collect();
        assert_eq!(sizes, [10, 10, 9]);
        assert_eq!(
            events_of_parts(Platform::Facebook, &parts),
            events(Platform::Facebook, &body)
        );
        for part in &parts {
            assert_eq!(part.account_id.as_deref(), Some("1"));
            assert_eq!(
                part.dedupe_key,
                hex::encode(Sha256::digest(part.body.as_bytes()))
            );
            let value: Value = serde_json::from_str(&part.body).unwrap();
            assert_eq!(value["object"], "page");
        }
        // The cut entry's copies keep its other fields; the third part holds the end of the
        // first entry (3 changes, 2 messages) and the whole second one.
        let third: Value = serde_json::from_str(&parts[2].body).unwrap();
        let entries = third["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["extra"], json!({"kept": true}));
        assert_eq!(entries[0]["time"], 1_700_000_000);
        assert_eq!(entries[0]["changes"].as_array().unwrap().len(), 3);
        assert_eq!(entries[0]["messaging"].as_array().unwrap().len(), 2);
        assert_eq!(entries[1]["changes"].as_array().unwrap().len(), 4);
        // Distinct keys, and the same bytes split the same way (a redelivery is recognised).
        let keys: std::collections::BTreeSet<_> = parts.iter().map(|p| &p.dedupe_key).collect();
        assert_eq!(keys.len(), parts.len());
        assert_eq!(
            parts,
            split_delivery(Platform::Facebook, body.as_bytes()).unwrap()
        );
    }

    #[test]
    fn large_accounts_of_a_batch_are_cut_and_small_ones_kept() {
        let big: Vec<Value> = (0..12).map(|n| comment("1", n)).collect();
        let body = json!({"object": "page", "entry": [
            {"id": "1", "time": 1, "changes": big},
            {"id": "2", "time": 2, "changes": [comment("2", 1)]},
        ]})
        .to_string();
        let parts = split_delivery(Platform::Facebook, body.as_bytes()).unwrap();
        let accounts: Vec<_> = parts.iter().map(|p| p.account_id.as_deref()).collect();
        assert_eq!(accounts, [Some("1"), Some("1"), Some("2")]);
        // The small account's part is what it was before parts were capped.
        let mut expected: Value = serde_json::from_str(&body).unwrap();
        expected["entry"] = json!([expected["entry"][1].clone()]);
        assert_eq!(parts[2].body, expected.to_string());
    }

    #[test]
    fn linkedin_notifications_are_cut_into_parts() {
        let notifications: Vec<Value> = (0..MAX_EVENTS_PER_PART + 2)
            .map(|n| json!({"action": "LIKE", "organizationalEntity": "urn:li:organization:5",
                "sourcePost": format!("urn:li:share:{n}"), "actor": format!("urn:li:person:p{n}"), "notificationId": n}))
            .collect();
        let body = json!({"type": "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS", "notifications": notifications})
            .to_string();
        let parts = split_delivery(Platform::Linkedin, body.as_bytes()).unwrap();
        let sizes: Vec<usize> = parts
            .iter()
            .map(|p| events(Platform::Linkedin, &p.body).len())
            .collect();
        assert_eq!(sizes, [MAX_EVENTS_PER_PART, 2]);
        assert_eq!(
            events_of_parts(Platform::Linkedin, &parts),
            events(Platform::Linkedin, &body)
        );
    }

    /// A Meta delivery: entries of a few accounts (or none), each with some changes and messages.
    fn meta_delivery() -> impl Strategy<Value = String> {
        let entry = (
            prop::option::of(0u8..3),
            0usize..30,
            0usize..6,
            any::<bool>(),
        )
            .prop_map(|(account, changes, messages, numeric)| {
                let mut entry = json!({"time": 1_700_000_000});
                if let Some(account) = account {
                    entry["id"] = if numeric {
                        json!(account as u64 + 1)
                    } else {
                        json!((account + 1).to_string())
                    };
                }
                let page = account.map_or(0, |a| a + 1).to_string();
                if changes > 0 {
                    entry["changes"] =
                        json!((0..changes).map(|n| comment(&page, n)).collect::<Vec<_>>());
                }
                if messages > 0 {
                    entry["messaging"] = json!((0..messages).map(message).collect::<Vec<_>>());
                }
                entry
            });
        prop::collection::vec(entry, 0..6)
            .prop_map(|entries| json!({"object": "page", "entry": entries}).to_string())
    }

    fn sorted(events: Vec<SocialEvent>) -> Vec<String> {
        let mut all: Vec<String> = events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        all.sort();
        all
    }

    proptest! {
        #[test]
        fn parts_hold_at_most_a_part_of_events_and_every_event_once(body in meta_delivery()) {
            let parts = split_delivery(Platform::Facebook, body.as_bytes()).unwrap();
            prop_assert!(!parts.is_empty());
            for part in &parts {
                prop_assert!(events(Platform::Facebook, &part.body).len() <= MAX_EVENTS_PER_PART);
                prop_assert_eq!(&part.dedupe_key, &hex::encode(Sha256::digest(part.body.as_bytes())));
            }
            let whole = events(Platform::Facebook, &body);
            prop_assert_eq!(sorted(events_of_parts(Platform::Facebook, &parts)), sorted(whole.clone()));
            let accounts: std::collections::BTreeSet<_> = parts.iter().map(|p| &p.account_id).collect();
            if accounts.len() == 1 {
                // One account: the parts replay the delivery's events in its order.
                prop_assert_eq!(events_of_parts(Platform::Facebook, &parts), whole);
            }
            prop_assert_eq!(&parts, &split_delivery(Platform::Facebook, body.as_bytes()).unwrap());
        }
    }

    fn long_comment(page: &str, n: usize, bytes: usize) -> Value {
        let mut change = comment(page, n);
        change["value"]["message"] = json!("x".repeat(bytes));
        change
    }

    #[test]
    fn parts_over_the_byte_limit_are_cut_into_smaller_parts() {
        // One page, 10 comments of 8 KB: 80 KB in one part would be too large for a statement.
        let changes: Vec<Value> = (0..10).map(|n| long_comment("7", n, 8000)).collect();
        let body = json!({"object": "page", "entry": [{"id": "7", "time": 1, "changes": changes}]})
            .to_string();
        let parts = split_delivery(Platform::Facebook, body.as_bytes()).unwrap();
        assert!(parts.len() > 1, "{} parts", parts.len());
        for part in &parts {
            assert!(part.body.len() <= MAX_PART_BYTES, "{}", part.body.len());
            assert_eq!(part.account_id.as_deref(), Some("7"));
        }
        assert_eq!(
            events_of_parts(Platform::Facebook, &parts),
            events(Platform::Facebook, &body)
        );
        // Deterministic, so a redelivery maps to the same rows.
        assert_eq!(
            parts,
            split_delivery(Platform::Facebook, body.as_bytes()).unwrap()
        );
    }

    #[test]
    fn a_single_event_over_the_byte_limit_is_refused() {
        let changes = vec![long_comment("7", 1, MAX_PART_BYTES)];
        let body = json!({"object": "page", "entry": [{"id": "7", "time": 1, "changes": changes}]})
            .to_string();
        assert!(matches!(
            split_delivery(Platform::Facebook, body.as_bytes()),
            Err(DeliveryError::EventTooLarge { .. })
        ));
        let odd = json!({"object": "page", "note": "y".repeat(MAX_PART_BYTES)}).to_string();
        assert!(matches!(
            split_delivery(Platform::Facebook, odd.as_bytes()),
            Err(DeliveryError::EventTooLarge { .. })
        ));
    }

    #[test]
    fn a_delivery_of_too_many_parts_is_refused_and_many_pages_are_fine() {
        let entries = |pages: usize| -> String {
            let entries: Vec<Value> = (0..pages)
                .map(|p| json!({"id": (p + 1).to_string(), "time": 1, "changes": [comment(&p.to_string(), 1)]}))
                .collect();
            json!({"object": "page", "entry": entries}).to_string()
        };
        let parts = split_delivery(Platform::Facebook, entries(600).as_bytes()).unwrap();
        assert_eq!(parts.len(), 600);
        assert!(matches!(
            split_delivery(
                Platform::Facebook,
                entries(MAX_PARTS_PER_DELIVERY + 1).as_bytes()
            ),
            Err(DeliveryError::TooManyParts { .. })
        ));
    }

    #[test]
    fn linkedin_batches_split_by_organization_and_lead_sync_names_its_owner() {
        let body = br#"{"type":"ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS","notifications":[{"organizationalEntity":"urn:li:organization:5"},{"organizationalEntity":"urn:li:organization:6"}]}"#;
        let parts = split_delivery(Platform::Linkedin, body).unwrap();
        let accounts: Vec<_> = parts
            .iter()
            .map(|p| p.account_id.clone().unwrap())
            .collect();
        assert_eq!(accounts, ["5", "6"]);
        let lead = br#"{"type":"LEAD_ACTION","owner":{"sponsoredAccount":"urn:li:sponsoredAccount:522529623"},"leadGenFormResponse":"urn:li:leadGenFormResponse:x"}"#;
        let parts = split_delivery(Platform::Linkedin, lead).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].account_id.as_deref(), Some("522529623"));
    }
}
