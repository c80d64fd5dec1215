//! LinkedIn webhooks: Lead Sync notifications (`type: "LEAD_ACTION"`) and organisation social
//! action notifications (`type: "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS"`, batched in
//! `notifications`). Sales Navigator accepts no new partners, so these are the LinkedIn sources.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::facebook::{array, compact};
use super::{id_of, text_of, time_of, urn_id, Actor, LeadFormRef, SocialEvent, Touch};
use crate::leads::{normalize_email, normalize_phone};
use crate::types::{InteractionType, Platform};

pub const LEAD_ACTION: &str = "LEAD_ACTION";
pub const SOCIAL_ACTIONS: &str = "ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS";

pub fn parse(value: &Value, received_at: DateTime<Utc>) -> Vec<SocialEvent> {
    let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
    if kind == LEAD_ACTION || (kind.is_empty() && value.get("leadAction").is_some()) {
        return vec![lead_action(value, received_at)];
    }
    if kind == SOCIAL_ACTIONS || value.get("notifications").is_some() {
        return array(value.get("notifications"))
            .iter()
            .map(|n| social_action(n, received_at))
            .collect();
    }
    vec![SocialEvent::ignored(format!(
        "linkedin notification type {kind:?} is not handled"
    ))]
}

/// The owner of a lead notification: `{"sponsoredAccount": URN}` or `{"organization": URN}` (or,
/// in older payloads, the URN itself).
pub fn owner_id(owner: Option<&Value>) -> Option<String> {
    let owner = owner?;
    if let Some(urn) = owner.as_str() {
        return urn_id(urn);
    }
    ["sponsoredAccount", "organization", "event"]
        .iter()
        .find_map(|key| owner.get(*key).and_then(Value::as_str).and_then(urn_id))
}

/// The form id of `urn:li:leadGenForm:123` or `urn:li:versionedLeadGenForm:(urn:li:leadGenForm:123,4)`.
pub fn form_id(urn: &str) -> Option<String> {
    let inner = urn
        .split_once('(')
        .map_or(urn, |(_, rest)| rest.split(',').next().unwrap_or(rest));
    urn_id(inner.trim_end_matches(')'))
}

fn lead_action(value: &Value, received_at: DateTime<Utc>) -> SocialEvent {
    let Some(response_id) = value
        .get("leadGenFormResponse")
        .and_then(Value::as_str)
        .and_then(urn_id)
    else {
        return SocialEvent::ignored("lead notification without a leadGenFormResponse");
    };
    match value
        .get("leadAction")
        .and_then(Value::as_str)
        .unwrap_or("CREATED")
    {
        "CREATED" => SocialEvent::LeadForm(LeadFormRef {
            platform: Platform::Linkedin,
            leadgen_id: response_id,
            form_id: value
                .get("leadGenForm")
                .and_then(Value::as_str)
                .and_then(form_id),
            ad_id: None,
            campaign_id: value
                .get("associatedEntity")
                .and_then(|e| e.get("campaign").or_else(|| e.get("sponsoredCampaign")))
                .and_then(Value::as_str)
                .and_then(urn_id),
            page_id: owner_id(value.get("owner")),
            created_time: time_of(value.get("occurredAt")).or(Some(received_at)),
        }),
        "DELETED" => SocialEvent::LinkedInLeadDeleted { response_id },
        other => SocialEvent::ignored(format!("lead action {other:?} is not handled")),
    }
}

/// A lead field a lead form fills, under the answer key the form's touchpoint keeps it
/// (`metadata.form_answers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormField {
    FirstName,
    LastName,
    Email,
    Phone,
    Company,
    Title,
}

impl FormField {
    pub const ALL: [FormField; 6] = [
        FormField::FirstName,
        FormField::LastName,
        FormField::Email,
        FormField::Phone,
        FormField::Company,
        FormField::Title,
    ];

    /// The key of `form_answers` holding this field's answer.
    pub fn answer_key(self) -> &'static str {
        match self {
            FormField::FirstName => "first_name",
            FormField::LastName => "last_name",
            FormField::Email => "email",
            FormField::Phone => "phone_number",
            FormField::Company => "company_name",
            FormField::Title => "job_title",
        }
    }

    fn same_value(self, answer: &str, current: &str) -> bool {
        match self {
            FormField::Email => match (normalize_email(answer), normalize_email(current)) {
                (Ok(a), Ok(b)) => a == b,
                _ => answer.trim() == current.trim(),
            },
            FormField::Phone => match (normalize_phone(answer), normalize_phone(current)) {
                (Ok(a), Ok(b)) => a == b,
                _ => answer.trim() == current.trim(),
            },
            _ => answer.trim() == current.trim(),
        }
    }
}

/// What a member's deletion of a lead form response (`leadAction: DELETED`) erases from the lead:
/// every field whose current value is still the one the form supplied (emails compared
/// normalised, phones by their digits), returned with that current value so the write can clear
/// it only if nobody changed it since. A field someone edited to another value is the lead's own
/// and stays.
pub fn fields_supplied_by_form(
    answers: &Value,
    current: impl Fn(FormField) -> Option<String>,
) -> Vec<(FormField, String)> {
    FormField::ALL
        .into_iter()
        .filter_map(|field| {
            let answer = answers.get(field.answer_key()).and_then(Value::as_str)?;
            let value = current(field)?;
            field.same_value(answer, &value).then_some((field, value))
        })
        .collect()
}

fn social_action(n: &Value, received_at: DateTime<Utc>) -> SocialEvent {
    let action = n.get("action").and_then(Value::as_str).unwrap_or("");
    let kind = match action {
        "LIKE" => InteractionType::SocialLike,
        "COMMENT" => InteractionType::SocialComment,
        "SHARE" => InteractionType::SocialShare,
        "SHARE_MENTION" => InteractionType::SocialMention,
        other => return SocialEvent::ignored(format!("social action {other:?} is not handled")),
    };
    let organization = n
        .get("organizationalEntity")
        .and_then(Value::as_str)
        .and_then(urn_id);
    let Some(actor_urn) = actor_urn(n, action) else {
        return SocialEvent::ignored(format!("{action} notification without an actor"));
    };
    if organization.is_some() && urn_id(&actor_urn) == organization {
        return SocialEvent::ignored("the organisation's own activity");
    }
    let source_post = text_of(n.get("sourcePost"));
    let activity = text_of(n.get("generatedActivity"));
    let notification_id = id_of(n.get("notificationId"));
    let actor_id = urn_id(&actor_urn).unwrap_or_else(|| actor_urn.clone());
    // The platform's ids of the action itself, so every notification of it maps to one touchpoint.
    let external_id = match (kind, &activity, &source_post, &notification_id) {
        (InteractionType::SocialLike, _, Some(post), _) => format!("like:{post}:{actor_id}"),
        (InteractionType::SocialMention, _, Some(post), _) => format!("mention:{post}"),
        (_, Some(activity), _, _) => format!("{}:{activity}", action.to_ascii_lowercase()),
        (_, _, _, Some(id)) => format!("notification:{id}"),
        _ => return SocialEvent::ignored(format!("{action} notification without ids")),
    };
    let text = n
        .get("decoratedGeneratedActivity")
        .and_then(|d| d.get("comment").or_else(|| d.get("share")))
        .and_then(|c| text_of(c.get("text")).or_else(|| text_of(c.get("message"))));
    SocialEvent::Touch(Touch {
        kind,
        platform: Platform::Linkedin,
        external_id,
        occurred_at: time_of(n.get("lastModifiedAt")).unwrap_or(received_at),
        actor: Actor {
            platform_user_id: actor_id,
            name: None,
            handle: None,
        },
        metadata: compact(json!({
            "action": action,
            "notification_id": notification_id,
            "source_post": source_post,
            "generated_activity": activity,
            "text": text,
            "actor_urn": actor_urn,
            "organization_id": organization,
        })),
    })
}

/// Who acted: the notification's `actor`, else the owner of the generated activity (the comment
/// or share), else, for shares and mentions, the author of the source post.
fn actor_urn(n: &Value, action: &str) -> Option<String> {
    if let Some(actor) = text_of(n.get("actor")) {
        return Some(actor);
    }
    let decorated = n.get("decoratedGeneratedActivity");
    for key in ["comment", "share", "like", "reaction"] {
        if let Some(item) = decorated.and_then(|d| d.get(key)) {
            for field in ["owner", "actor", "author", "created"] {
                let value = item.get(field);
                let urn = text_of(value).or_else(|| text_of(value.and_then(|v| v.get("actor"))));
                if urn.is_some() {
                    return urn;
                }
            }
        }
    }
    if matches!(action, "SHARE" | "SHARE_MENTION") {
        let post = n.get("decoratedSourcePost");
        return text_of(post.and_then(|p| p.get("owner")))
            .or_else(|| text_of(post.and_then(|p| p.get("author"))));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_response_erases_only_what_it_still_supplies() {
        let answers = json!({"first_name": "Linus", "last_name": "Torvalds", "email": "Linus@Kernel.org",
            "phone_number": "+1 (415) 555-0100", "company_name": "Kernel Inc", "companySize": "50-200"});
        let current = |field: FormField| match field {
            FormField::FirstName => Some("Linus".to_string()),
            // Edited since the form: the lead's own now.
            FormField::LastName => Some("Benedict Torvalds".to_string()),
            FormField::Email => Some("linus@kernel.org".to_string()),
            FormField::Phone => Some("+14155550100".to_string()),
            FormField::Company => None,
            FormField::Title => Some("Maintainer".to_string()),
        };
        let fields: Vec<FormField> = fields_supplied_by_form(&answers, current)
            .into_iter()
            .map(|(field, _)| field)
            .collect();
        assert_eq!(
            fields,
            [FormField::FirstName, FormField::Email, FormField::Phone]
        );
        let with_values = fields_supplied_by_form(&answers, current);
        assert_eq!(with_values[1].1, "linus@kernel.org");
        assert!(fields_supplied_by_form(&json!({}), current).is_empty());
        assert!(fields_supplied_by_form(&Value::Null, current).is_empty());
    }

    #[test]
    fn deleted_lead_actions_are_parsed() {
        let event = parse(
            &json!({"type": "LEAD_ACTION", "leadAction": "DELETED",
                "leadGenFormResponse": "urn:li:leadGenFormResponse:abc-1"}),
            DateTime::<Utc>::MIN_UTC,
        );
        assert_eq!(
            event,
            vec![SocialEvent::LinkedInLeadDeleted {
                response_id: "abc-1".into()
            }]
        );
    }
}
