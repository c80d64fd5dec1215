//! Automatic matching (deduplication): a new lead whose normalized email, phone or any social
//! profile already belongs to a lead of the org is merged into that lead instead of duplicating
//! it. Used by the API's create, the social sync consumer (lead forms) and website tracking.
//!
//! Race safety: social profiles are UNIQUE per org, so a concurrent create with the same profile
//! fails its batch and re-matches. Email and phone are not unique in the schema (two leads may
//! share one until merged), so after creating, a lead looks for an OLDER lead with the same email
//! or phone and, if one appeared concurrently, merges itself into it: both racers converge on the
//! oldest lead.
//!
//! Erased people stay erased: [`erased_after`] tells whether an event about `input` occurred
//! before the latest erasure of one of its identities (`leadheat_domain::suppression`); the sync
//! consumer then drops the event instead of matching or creating anything.

use chrono::{DateTime, Utc};
use leadheat_domain::leads::LeadInput;
use leadheat_domain::suppression::{self, Identity};

use crate::touchpoints;
use leadheat_edge::db::Constraint;
use leadheat_edge::db::StoreError;
use leadheat_edge::store::leads::{self, Fill, LeadRecord};
use leadheat_edge::store::{social_profiles, stages, suppressions};
use leadheat_edge::tenant::Tenant;

/// How a lead was found or made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOutcome {
    Created,
    /// An existing lead matched; `by` is `email`, `phone` or `social_profile`.
    Matched {
        by: &'static str,
    },
}

impl MatchOutcome {
    /// `created`, `email`, `phone` or `social_profile` (the `Leadheat-Match` header's value).
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOutcome::Created => "created",
            MatchOutcome::Matched { by } => by,
        }
    }

    pub fn created(self) -> bool {
        self == MatchOutcome::Created
    }
}

const MAX_ATTEMPTS: usize = 4;

/// Finds the org's lead matching `input` (filling its empty fields, adding new tags and social
/// profiles) or creates it (in the org's first stage, after its last lead, unless
/// `input.stage_id` names a stage of the org: an unknown one is a 422 on `stage_id`).
pub async fn match_or_create(
    tenant: &Tenant,
    input: LeadInput,
    now: DateTime<Utc>,
) -> Result<(LeadRecord, MatchOutcome), StoreError> {
    for _ in 0..MAX_ATTEMPTS {
        if let Some((id, by)) = find_match(tenant, &input).await? {
            let lead = fill_existing(tenant, &id, &input, now).await?;
            return Ok((lead, MatchOutcome::Matched { by }));
        }
        match create(tenant, &input, now).await? {
            Some(lead) => return settle_concurrent_duplicate(tenant, lead, &input, now).await,
            // A concurrent create took one of the social profiles: match again.
            None => continue,
        }
    }
    Err(StoreError::Conflict(
        "the lead kept conflicting with concurrent writes; retry the request".to_string(),
    ))
}

/// The matching lead's id and what matched, preferring email, then phone, then social profiles.
pub async fn find_match(
    tenant: &Tenant,
    input: &LeadInput,
) -> Result<Option<(String, &'static str)>, StoreError> {
    if let Some(email) = input.email_normalized() {
        if let Some(id) = leads::first_with(tenant, leads::Contact::Email(&email)).await? {
            return Ok(Some((id, "email")));
        }
    }
    if let Some(phone) = input.phone_normalized() {
        if let Some(id) = leads::first_with(tenant, leads::Contact::Phone(&phone)).await? {
            return Ok(Some((id, "phone")));
        }
    }
    for profile in &input.social_profiles {
        if let Some(id) =
            social_profiles::find_lead(tenant, profile.platform.as_str(), &profile.platform_user_id)
                .await?
        {
            return Ok(Some((id, "social_profile")));
        }
    }
    Ok(None)
}

/// Whether an event about `input` that occurred at `occurred_at` is older than the latest erasure
/// of one of its identities (email, phone, social profiles): then it must not re-create the
/// person. One query (none when the input has no identity).
pub async fn erased_after(
    tenant: &Tenant,
    input: &LeadInput,
    occurred_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let org_id = tenant.org_id();
    let mut identities = Vec::new();
    if let Some(email) = &input.email {
        identities.push(Identity::Email(email));
    }
    if let Some(phone) = &input.phone {
        identities.push(Identity::Phone(phone));
    }
    for profile in &input.social_profiles {
        identities.push(Identity::Profile {
            platform: profile.platform.as_str(),
            user_id: &profile.platform_user_id,
        });
    }
    let hashes = suppression::identity_hashes(org_id, &identities);
    let latest = suppressions::latest_erasure(tenant, &hashes)
        .await?
        .and_then(|at| DateTime::parse_from_rfc3339(&at).ok())
        .map(|at| at.with_timezone(&Utc));
    Ok(suppression::suppresses(latest, occurred_at))
}

/// Fills an existing lead's empty fields from `input` (never overwriting a value), adding new
/// tags and social profiles; a no-op (no version bump) when it adds nothing.
pub async fn fill_existing(
    tenant: &Tenant,
    id: &str,
    input: &LeadInput,
    now: DateTime<Utc>,
) -> Result<LeadRecord, StoreError> {
    let lead = leads::require(tenant, id).await?;
    let fill = Fill::from_input(input);
    let mut statements = Vec::new();
    if fill.changes(&lead) {
        statements.extend(leads::fill_statements(tenant, id, &fill, now)?);
    }
    for profile in &input.social_profiles {
        let known = lead.social_profiles.iter().any(|p| {
            p.platform == profile.platform.as_str()
                && p.platform_user_id == profile.platform_user_id
        });
        if !known {
            statements.push(social_profiles::insert_statement(
                tenant, id, profile, now, true,
            )?);
        }
    }
    if statements.is_empty() {
        return Ok(lead);
    }
    tenant.batch(statements).await?;
    leads::require(tenant, id).await
}

/// Inserts the lead; `None` when a social profile was taken concurrently.
async fn create(
    tenant: &Tenant,
    input: &LeadInput,
    now: DateTime<Utc>,
) -> Result<Option<LeadRecord>, StoreError> {
    let stage_id = match &input.stage_id {
        Some(stage_id) => {
            if !stages::exists(tenant, stage_id).await? {
                return Err(StoreError::invalid("stage_id", "unknown stage"));
            }
            Some(stage_id.clone())
        }
        None => stages::first_id(tenant).await?,
    };
    let rank = match &stage_id {
        Some(stage_id) => Some(leads::rank_at_end(tenant, stage_id).await?),
        None => None,
    };
    let stage = stage_id.as_deref().zip(rank.as_deref());
    let id = leads::new_lead_id();
    let statements = leads::insert_statements(tenant, &id, input, stage, now)?;
    match tenant.try_batch(statements).await? {
        Ok(_) => leads::get(tenant, &id).await,
        Err(Constraint::Unique) => Ok(None),
        Err(Constraint::ForeignKey) => Err(StoreError::invalid("stage_id", "unknown stage")),
        Err(Constraint::Check) => Err(StoreError::backend(
            "lead insert",
            "CHECK constraint failed",
        )),
    }
}

/// After a create: if an older lead with the same email or phone appeared concurrently, merge the
/// new lead into it (the oldest wins, so concurrent creators converge on one lead).
async fn settle_concurrent_duplicate(
    tenant: &Tenant,
    lead: LeadRecord,
    input: &LeadInput,
    now: DateTime<Utc>,
) -> Result<(LeadRecord, MatchOutcome), StoreError> {
    let (email, phone) = (input.email_normalized(), input.phone_normalized());
    if email.is_none() && phone.is_none() {
        return Ok((lead, MatchOutcome::Created));
    }
    let older =
        leads::older_with_email_or_phone(tenant, &lead.id, email.as_deref(), phone.as_deref())
            .await?;
    let Some(older) = older else {
        return Ok((lead, MatchOutcome::Created));
    };
    let Some(target) = leads::get(tenant, &older.id).await? else {
        return Ok((lead, MatchOutcome::Created));
    };
    leads::merge(tenant, &target, &lead, now).await?;
    touchpoints::rescore(tenant, &target.id, now).await?;
    let by = if older.by_email { "email" } else { "phone" };
    Ok((
        leads::require(tenant, &target.id).await?,
        MatchOutcome::Matched { by },
    ))
}
