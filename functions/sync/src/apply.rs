//! Applying the parsed events of one inbox row for one org: leads are matched or created and
//! touchpoints recorded through the same code path the Lead API uses (`lead_matching`,
//! `touchpoints`), lead forms are fetched from the platform under its rate limits.
//!
//! An event about an erased person that occurred before the erasure (a redelivery, a replayed
//! dead event, a row the reconciliation enqueues again) is dropped: it neither re-creates the lead
//! nor adds a touchpoint (`lead_matching::erased_after`). An event that occurred after the erasure
//! is the person coming back and creates a new lead.

use chrono::{DateTime, Utc};
use leadheat_domain::lead_forms::{self, FormAnswers};
use leadheat_domain::leads::{LeadInput, SocialProfileInput};
use leadheat_domain::platforms::linkedin::{self, FormField};
use leadheat_domain::platforms::{LeadFormRef, SocialEvent, Touch};
use leadheat_domain::sync::{
    classify_linkedin, classify_meta, Classified, Gate, IntegrationStatus, Outcome, Policy,
};
use leadheat_domain::types::{CapturedBy, Platform, Source};
use leadheat_edge::db::StoreError;
use leadheat_edge::platform_api::{self, Answer, NoAnswer};
use leadheat_edge::store::integrations::{self, Integration};
use leadheat_edge::store::{interactions, leads, throttles};
use leadheat_edge::tenant::Tenant;
use leadheat_edge::{clock, tokens};
use leadheat_usecases::forms::{self, Submission};
use leadheat_usecases::lead_matching::{erased_after, match_or_create};
use leadheat_usecases::touchpoints::{self, NewTouchpoint};
use serde_json::{json, Map, Value};
use worker::Env;

/// One row's processing context.
pub struct Run<'a> {
    pub env: &'a Env,
    /// The org on its shard: every row read or written here is the org's.
    pub tenant: &'a Tenant,
    pub platform: Platform,
    pub integration: &'a Integration,
    pub policy: &'a Policy,
    pub now: DateTime<Utc>,
    /// The decrypted token, once needed.
    pub token: Option<String>,
}

/// Why applying stopped: an outcome for the state machine.
type Stop = Outcome;

/// A storage failure while applying is transient, whatever the store reported (a backend
/// failure, a conflict that persisted, a row gone with a concurrent change): the event is retried.
fn internal(error: StoreError) -> Stop {
    Outcome::Transient {
        error: format!("internal error: {error}"),
        retry_after: None,
    }
}

impl Run<'_> {
    /// Applies every event in order and stops at the first failure. Everything applied is
    /// idempotent (external ids), so a retry re-applies earlier events as no-ops.
    pub async fn apply_all(&mut self, events: &[SocialEvent]) -> Outcome {
        for event in events {
            let result = match event {
                SocialEvent::Touch(touch) => self.touch(touch).await.map_err(internal),
                SocialEvent::LeadForm(form) => self.lead_form(form).await,
                SocialEvent::LinkedInLeadDeleted { response_id } => {
                    self.lead_deleted(response_id).await.map_err(internal)
                }
                SocialEvent::StoryMetrics {
                    media_id,
                    metrics,
                    occurred_at,
                } => {
                    let mut value: Map<String, Value> =
                        metrics.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                    value.insert("updated_at".into(), json!(clock::rfc3339(*occurred_at)));
                    integrations::put_metrics(
                        self.tenant,
                        self.platform.as_str(),
                        "story_insights",
                        media_id,
                        Value::Object(value),
                        &clock::rfc3339(self.now),
                    )
                    .await
                    .map_err(internal)
                }
                SocialEvent::Ignored { .. } => Ok(()),
            };
            if let Err(outcome) = result {
                return outcome;
            }
        }
        Outcome::Ok
    }

    /// A like, comment, share, follow, mention or message: the actor's lead (matched on the social
    /// profile) gets the touchpoint.
    async fn touch(&self, touch: &Touch) -> Result<(), StoreError> {
        let mut input = LeadInput::new(Source::of_platform(touch.platform));
        if let Some(name) = &touch.actor.name {
            let (first, last) = split_name(name);
            input.first_name = first;
            input.last_name = last;
        }
        input.social_profiles.push(SocialProfileInput {
            platform: touch.platform,
            platform_user_id: touch.actor.platform_user_id.clone(),
            handle: touch.actor.handle.clone(),
            url: None,
        });
        if erased_after(self.tenant, &input, touch.occurred_at).await? {
            return Ok(());
        }
        let (lead, _) = match_or_create(self.tenant, input, self.now).await?;
        touchpoints::record(
            self.tenant,
            NewTouchpoint {
                lead_id: lead.id,
                kind: touch.kind,
                platform: touch.platform,
                occurred_at: touch.occurred_at,
                captured_by: CapturedBy::Webhook,
                external_id: Some(touch.external_id.clone()),
                metadata: touch.metadata.clone(),
            },
            self.now,
        )
        .await?;
        Ok(())
    }

    /// A lead form: fetch the answers (unless this submission is already recorded), match or create
    /// the lead, record an `info_request` touchpoint with the form, ad and campaign as source detail.
    async fn lead_form(&mut self, form: &LeadFormRef) -> Result<(), Stop> {
        let external_id = form.external_id();
        if interactions::by_external_id(self.tenant, form.platform, &external_id)
            .await
            .map_err(internal)?
            .is_some()
        {
            return Ok(());
        }
        let (answers, mut detail) = match form.platform {
            Platform::Linkedin => self.fetch_linkedin_form(form).await?,
            _ => self.fetch_meta_lead(form).await?,
        };
        for (key, value) in [
            ("form_id", &form.form_id),
            ("ad_id", &form.ad_id),
            ("campaign", &form.campaign_id),
            ("page", &form.page_id),
        ] {
            if let Some(value) = value {
                detail.entry(key.to_string()).or_insert(json!(value));
            }
        }
        detail.insert("leadgen_id".into(), json!(form.leadgen_id));

        let submission = Submission {
            platform: form.platform,
            external_id,
            occurred_at: form.created_time.unwrap_or(self.now),
            answers: &answers,
            detail,
        };
        forms::record_submission(self.tenant, submission, self.now)
            .await
            .map_err(internal)?;
        Ok(())
    }

    /// `GET {META_GRAPH_BASE_URL}/{leadgen_id}` → `field_data`.
    async fn fetch_meta_lead(
        &mut self,
        form: &LeadFormRef,
    ) -> Result<(FormAnswers, Map<String, Value>), Stop> {
        let token = self.token().await?;
        self.gate().await?;
        let answer = platform_api::meta_lead(self.env, &token, &form.leadgen_id).await;
        let body = self
            .judge(answer, |policy, a, now| {
                classify_meta(
                    policy,
                    a.status,
                    a.app_usage.as_deref(),
                    a.business_usage.as_deref(),
                    &a.body,
                    now,
                )
            })
            .await?;
        let lead: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let mut detail = Map::new();
        for (key, field) in [
            ("form_id", "form_id"),
            ("ad_id", "ad_id"),
            ("campaign", "campaign_id"),
        ] {
            if let Some(value) = leadheat_domain::platforms::id_of(lead.get(field)) {
                detail.insert(key.into(), json!(value));
            }
        }
        Ok((lead_forms::from_meta_field_data(&lead), detail))
    }

    /// `GET {LINKEDIN_API_BASE_URL}/leadFormResponses/{id}`, then the form's questions
    /// (`GET /leadForms/{form_id}`) to name the answers.
    async fn fetch_linkedin_form(
        &mut self,
        form: &LeadFormRef,
    ) -> Result<(FormAnswers, Map<String, Value>), Stop> {
        let token = self.token().await?;
        self.gate().await?;
        let path = format!(
            "leadFormResponses/{}",
            platform_api::encode_segment(&form.leadgen_id)
        );
        let answer = platform_api::linkedin_get(self.env, &token, &path).await;
        let body = self.judge(answer, linkedin_classifier).await?;
        let response: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let form_id = form.form_id.clone().or_else(|| {
            response
                .get("versionedLeadGenFormUrn")
                .or_else(|| response.get("leadGenForm"))
                .and_then(Value::as_str)
                .and_then(linkedin::form_id)
        });
        let mut detail = Map::new();
        let questions = match &form_id {
            Some(id) => {
                detail.insert("form_id".into(), json!(id));
                self.gate().await?;
                let path = format!("leadForms/{}", platform_api::encode_segment(id));
                let answer = platform_api::linkedin_get(self.env, &token, &path).await;
                let body = self.judge(answer, linkedin_classifier).await?;
                serde_json::from_str::<Value>(&body).ok()
            }
            None => None,
        };
        if let Some(campaign) = response
            .get("leadMetadata")
            .and_then(|m| m.get("sponsoredLeadMetadata"))
            .and_then(|m| m.get("campaign"))
            .and_then(Value::as_str)
            .and_then(leadheat_domain::platforms::urn_id)
        {
            detail.insert("campaign".into(), json!(campaign));
        }
        Ok((
            lead_forms::from_linkedin_response(&response, questions.as_ref()),
            detail,
        ))
    }

    /// The org's access token, decrypted (a missing or undecryptable one is a token failure).
    async fn token(&mut self) -> Result<String, Stop> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        if self.integration.status == IntegrationStatus::NeedsToken {
            return Err(Outcome::TokenInvalid(
                "the integration needs a new access token".into(),
            ));
        }
        let Some(sealed) = &self.integration.token_ciphertext else {
            return Err(Outcome::TokenInvalid("no access token is stored".into()));
        };
        let keyring = tokens::keyring(self.env).map_err(|_| Outcome::Transient {
            error:
                "TOKEN_ENCRYPTION_KEY or TOKEN_ENCRYPTION_KEYS_PREVIOUS is missing or malformed \
                    (details in the worker log)"
                    .into(),
            retry_after: None,
        })?;
        let token = tokens::open(self.tenant, &keyring, self.platform.as_str(), sealed)
            .await
            .map_err(|e| {
                Outcome::TokenInvalid(format!("the stored token cannot be decrypted: {e}"))
            })?;
        self.token = Some(token.clone());
        Ok(token)
    }

    /// Waits (defers the event) while the platform throttles this org or its circuit is open.
    async fn gate(&self) -> Result<(), Stop> {
        let throttle = throttles::get(self.tenant, self.platform.as_str())
            .await
            .map_err(internal)?;
        match throttle.gate(self.now) {
            Gate::Proceed => Ok(()),
            Gate::Wait { until, reason } => Err(Outcome::Deferred { reason, until }),
        }
    }

    /// Reads an answer: updates the throttle state, returns the body on success.
    async fn judge(
        &self,
        answer: Result<Answer, NoAnswer>,
        classify: impl Fn(&Policy, &Answer, DateTime<Utc>) -> Classified,
    ) -> Result<String, Stop> {
        let (classified, body) = match answer {
            Ok(answer) => (classify(self.policy, &answer, self.now), answer.body),
            Err(NoAnswer(error)) => (
                Classified {
                    failure: Some(Outcome::Transient {
                        error: format!("{} API: {error}", self.platform),
                        retry_after: None,
                    }),
                    call: leadheat_domain::sync::CallResult::Failure,
                    usage: None,
                },
                String::new(),
            ),
        };
        let throttle = throttles::get(self.tenant, self.platform.as_str())
            .await
            .map_err(internal)?;
        let next = throttle.after(self.policy, &classified.call, self.now);
        if next != throttle || classified.usage.is_some() {
            throttles::put(
                self.tenant,
                self.platform.as_str(),
                &next,
                classified.usage.as_ref(),
                self.now,
            )
            .await
            .map_err(internal)?;
        }
        match classified.failure {
            Some(outcome) => Err(outcome),
            None => Ok(body),
        }
    }

    /// A LinkedIn member deleted their lead form response: the lead's fields that the form
    /// supplied (and still hold its values) are cleared, and the answers are erased from the
    /// touchpoint that holds them (the touchpoint stays, with its points).
    async fn lead_deleted(&self, response_id: &str) -> Result<(), StoreError> {
        let external_id = format!("leadgen:{response_id}");
        let now = clock::rfc3339(self.now);
        let form =
            interactions::by_external_id(self.tenant, Platform::Linkedin, &external_id).await?;
        if let Some(form) = form {
            self.clear_form_fields(&form.lead_id, &form.metadata["form_answers"])
                .await?;
        }
        interactions::erase_form_answers(
            self.tenant,
            Platform::Linkedin.as_str(),
            &external_id,
            &now,
        )
        .await
    }

    /// Clears the fields of the lead that `answers` (a form's answers) supplied.
    async fn clear_form_fields(&self, lead_id: &str, answers: &Value) -> Result<(), StoreError> {
        let Some(lead) = leads::get(self.tenant, lead_id).await? else {
            return Ok(());
        };
        let fields = linkedin::fields_supplied_by_form(answers, |field| match field {
            FormField::FirstName => lead.first_name.clone(),
            FormField::LastName => lead.last_name.clone(),
            FormField::Email => lead.email.clone(),
            FormField::Phone => lead.phone.clone(),
            FormField::Company => lead.company.clone(),
            FormField::Title => lead.title.clone(),
        });
        leads::clear_form_fields(self.tenant, lead_id, &fields, self.now).await?;
        Ok(())
    }
}

fn linkedin_classifier(policy: &Policy, answer: &Answer, now: DateTime<Utc>) -> Classified {
    classify_linkedin(
        policy,
        answer.status,
        answer.retry_after.as_deref(),
        &answer.body,
        now,
    )
}

/// "Ada Lovelace" → (Ada, Lovelace); one word is a first name.
fn split_name(name: &str) -> (Option<String>, Option<String>) {
    let mut parts = name.trim().splitn(2, char::is_whitespace);
    let first = parts.next().filter(|s| !s.is_empty()).map(str::to_string);
    let last = parts
        .next()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    (first, last)
}
