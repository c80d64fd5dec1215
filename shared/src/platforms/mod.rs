//! What a webhook delivery means, platform by platform: each module turns a platform's payload into
//! a list of [`SocialEvent`]s, the one vocabulary the sync consumer acts on.
//!
//! Parsing never fails on content it does not know: unknown fields are skipped, unknown event kinds
//! become [`SocialEvent::Ignored`] with a reason, ids arrive as strings or numbers. It fails only
//! when the body is not JSON at all (a permanent error: retrying cannot fix it).

pub mod facebook;
pub mod instagram;
pub mod linkedin;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use crate::types::{InteractionType, Platform};

/// Who did something on a platform: the social profile a lead is matched on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub platform_user_id: String,
    pub name: Option<String>,
    pub handle: Option<String>,
}

/// A lead form submission whose answers must be fetched from the platform's API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeadFormRef {
    pub platform: Platform,
    /// Facebook `leadgen_id`; LinkedIn lead form response id (the last part of its URN).
    pub leadgen_id: String,
    pub form_id: Option<String>,
    pub ad_id: Option<String>,
    /// Campaign (LinkedIn sponsored campaign, or Meta ad group / ad set) when the payload names it.
    pub campaign_id: Option<String>,
    /// The Facebook page, or the LinkedIn owner (organization or sponsored account) of the form.
    pub page_id: Option<String>,
    pub created_time: Option<DateTime<Utc>>,
}

impl LeadFormRef {
    /// The touchpoint external id: one info request per submission, whatever the deliveries.
    pub fn external_id(&self) -> String {
        format!("leadgen:{}", self.leadgen_id)
    }
}

/// A touchpoint carried by the payload itself (no API call needed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Touch {
    pub kind: InteractionType,
    pub platform: Platform,
    /// Derived from the platform's own event ids, so every delivery of the event maps to it.
    pub external_id: String,
    pub occurred_at: DateTime<Utc>,
    pub actor: Actor,
    pub metadata: Value,
}

/// One thing a delivery says happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SocialEvent {
    /// A lead form was submitted; its answers are fetched from the platform.
    LeadForm(LeadFormRef),
    /// A like, comment, share, follow, mention or message by someone.
    Touch(Touch),
    /// The member deleted a LinkedIn lead form response: erase what it gave us.
    LinkedInLeadDeleted { response_id: String },
    /// Aggregate metrics of an Instagram story (no viewer identities); every metric optional.
    StoryMetrics {
        media_id: String,
        metrics: BTreeMap<String, f64>,
        occurred_at: DateTime<Utc>,
    },
    /// Understood and deliberately not acted on (echoes, removals, unknown kinds, ...).
    Ignored { reason: String },
}

impl SocialEvent {
    pub fn ignored(reason: impl Into<String>) -> SocialEvent {
        SocialEvent::Ignored {
            reason: reason.into(),
        }
    }

    /// Whether acting on it needs the platform's API (and so the org's token and rate limits).
    pub fn needs_api(&self) -> bool {
        matches!(self, SocialEvent::LeadForm(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("the delivery is not valid JSON: {0}")]
    NotJson(String),
    #[error("{0} deliveries are not parsed here")]
    NotSocial(Platform),
}

/// Parses one stored delivery of `platform`. `received_at` dates events that carry no time.
pub fn parse(
    platform: Platform,
    body: &[u8],
    received_at: DateTime<Utc>,
) -> Result<Vec<SocialEvent>, ParseError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    match platform {
        Platform::Facebook => Ok(facebook::parse(&value, received_at)),
        Platform::Instagram => Ok(instagram::parse(&value, received_at)),
        Platform::Linkedin => Ok(linkedin::parse(&value, received_at)),
        other => Err(ParseError::NotSocial(other)),
    }
}

/// Meta and LinkedIn send ids as strings or numbers; empty strings are no id.
pub fn id_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A non-empty string field.
pub fn text_of(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A platform time: Unix seconds or milliseconds (as number or numeric string), or RFC 3339 /
/// Meta's `2016-06-10T12:07:38+0000`.
pub fn time_of(value: Option<&Value>) -> Option<DateTime<Utc>> {
    match value? {
        Value::Number(n) => unix_time(n.as_f64()?),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(number) = s.parse::<f64>() {
                return unix_time(number);
            }
            DateTime::parse_from_rfc3339(s)
                .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z"))
                .ok()
                .map(|t| t.with_timezone(&Utc))
        }
        _ => None,
    }
}

/// Seconds or milliseconds since the epoch: anything above 10^11 is taken as milliseconds
/// (10^11 seconds is in the year 5138).
fn unix_time(number: f64) -> Option<DateTime<Utc>> {
    if !number.is_finite() || number <= 0.0 {
        return None;
    }
    let millis = if number > 1e11 {
        number
    } else {
        number * 1000.0
    };
    Utc.timestamp_millis_opt(millis as i64).single()
}

/// The last segment of a URN (`urn:li:organization:123` → `123`); for compound URNs such as
/// `urn:li:comment:(urn:li:activity:1,2)`, the whole URN is kept.
pub fn urn_id(urn: &str) -> Option<String> {
    let urn = urn.trim();
    if urn.is_empty() {
        return None;
    }
    if urn.ends_with(')') {
        return Some(urn.to_string());
    }
    urn.rsplit(':')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_come_as_strings_or_numbers() {
        assert_eq!(id_of(Some(&json!("123"))), Some("123".into()));
        assert_eq!(
            id_of(Some(&json!(17841400000000000u64))),
            Some("17841400000000000".into())
        );
        assert_eq!(id_of(Some(&json!(""))), None);
        assert_eq!(id_of(Some(&json!(null))), None);
        assert_eq!(id_of(None), None);
    }

    #[test]
    fn times_in_seconds_millis_and_text() {
        let expected = Utc.with_ymd_and_hms(2025, 11, 24, 16, 0, 0).unwrap();
        assert_eq!(time_of(Some(&json!(1764000000))), Some(expected));
        assert_eq!(time_of(Some(&json!(1764000000000u64))), Some(expected));
        assert_eq!(time_of(Some(&json!("1764000000"))), Some(expected));
        assert_eq!(
            time_of(Some(&json!("2025-11-24T16:00:00+0000"))),
            Some(expected)
        );
        assert_eq!(
            time_of(Some(&json!("2025-11-24T16:00:00Z"))),
            Some(expected)
        );
        assert_eq!(time_of(Some(&json!("yesterday"))), None);
        assert_eq!(time_of(Some(&json!(-5))), None);
    }

    #[test]
    fn urn_ids() {
        assert_eq!(
            urn_id("urn:li:organization:2414183"),
            Some("2414183".into())
        );
        assert_eq!(
            urn_id("urn:li:comment:(urn:li:activity:1,2)"),
            Some("urn:li:comment:(urn:li:activity:1,2)".into())
        );
        assert_eq!(urn_id(""), None);
    }

    #[test]
    fn invalid_json_is_a_parse_error_and_other_platforms_are_refused() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert!(matches!(
            parse(Platform::Facebook, b"{", now),
            Err(ParseError::NotJson(_))
        ));
        assert_eq!(
            parse(Platform::Email, b"{}", now),
            Err(ParseError::NotSocial(Platform::Email))
        );
        assert_eq!(parse(Platform::Facebook, b"{}", now), Ok(vec![]));
    }
}
