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

/// One account's share of a delivery: what one inbox row stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPart {
    pub dedupe_key: String,
    pub account_id: Option<String>,
    /// The raw body when the delivery is for one account; otherwise this account's entries (or
    /// notifications) in the platform's own envelope.
    pub body: String,
}

/// Splits a signed delivery into one part per account. Meta batches entries of several pages (or
/// Instagram accounts) of the app in one delivery, and LinkedIn batches notifications of several
/// organisations; each account may belong to a different org, so each part is stored, resolved and
/// retried on its own. The dedupe key is the SHA-256 of the part's bytes: a redelivery (the
/// platforms resend the same bytes) maps to the same rows.
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
    if groups.len() <= 1 {
        let account = groups.into_iter().next().and_then(|(a, _)| a);
        return Ok(vec![whole(account)]);
    }
    Ok(groups
        .into_iter()
        .map(|(account_id, list)| {
            let mut part = value.clone();
            part[list_key] = Value::Array(list);
            let text = part.to_string();
            DeliveryPart {
                dedupe_key: hex::encode(Sha256::digest(text.as_bytes())),
                account_id,
                body: text,
            }
        })
        .collect())
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
