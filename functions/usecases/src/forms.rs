//! A lead form submission (Facebook and Instagram lead ads, LinkedIn lead gen forms) turned into a
//! lead and its `info_request` touchpoint. The mapping of answers is the domain's
//! (`leadheat_domain::lead_forms::form_lead`); fetching the answers from the platform is the sync
//! worker's.

use chrono::{DateTime, Utc};
use leadheat_domain::lead_forms::{form_lead, FormAnswers};
use leadheat_domain::types::{CapturedBy, InteractionType, Platform};
use leadheat_edge::db::StoreError;
use leadheat_edge::tenant::Tenant;
use serde_json::{Map, Value};

use crate::lead_matching::{erased_after, match_or_create};
use crate::touchpoints::{self, NewTouchpoint};

/// One submission with its answers fetched.
pub struct Submission<'a> {
    pub platform: Platform,
    /// The touchpoint's external id: one touchpoint per submission, however often it is delivered.
    pub external_id: String,
    pub occurred_at: DateTime<Utc>,
    pub answers: &'a FormAnswers,
    /// Form, ad, campaign and page ids: the lead's source detail and the touchpoint's metadata.
    pub detail: Map<String, Value>,
}

/// What became of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// On this lead (created, or matched and filled).
    Lead(String),
    /// The person was erased after the submission: nothing is recorded.
    Erased,
}

/// Matches or creates the lead and records the submission on it, unless its person was erased
/// after it.
pub async fn record_submission(
    tenant: &Tenant,
    submission: Submission<'_>,
    now: DateTime<Utc>,
) -> Result<Recorded, StoreError> {
    let lead = form_lead(
        submission.answers,
        submission.platform,
        submission.detail.clone(),
    );
    if erased_after(tenant, &lead.input, submission.occurred_at).await? {
        return Ok(Recorded::Erased);
    }
    let (record, _) = match_or_create(tenant, lead.input, now).await?;
    let mut metadata = submission.detail;
    metadata.insert("form_answers".into(), lead.answers);
    touchpoints::record(
        tenant,
        NewTouchpoint {
            lead_id: record.id.clone(),
            kind: InteractionType::InfoRequest,
            platform: submission.platform,
            occurred_at: submission.occurred_at,
            captured_by: CapturedBy::Sync,
            external_id: Some(submission.external_id),
            metadata: Value::Object(metadata),
        },
        now,
    )
    .await?;
    Ok(Recorded::Lead(record.id))
}
