//! Placing things in the pipeline: a new stage among the others, and a lead in a stage's column.
//! Positions are fractional keys (`leadheat_domain::ranking`): one key between the neighbours,
//! never a renumbering.
//!
//! Every move of a lead, whether `POST /v1/leads/{id}/move` or a `PATCH` of its `stage_id`, takes
//! [`move_lead`]: the guarded move and its `stage_change` touchpoint in one batch, so the
//! touchpoint is written exactly when the move applied, and a failure of either writes nothing.

use chrono::{DateTime, Utc};
use leadheat_domain::ids::prefix;
use leadheat_domain::pipeline::{self as rules, MAX_STAGES};
use leadheat_domain::ranking;
use leadheat_edge::clock;
use leadheat_edge::db::StoreError;
use leadheat_edge::store::leads::LeadRecord;
use leadheat_edge::store::stages::{self, NewStage, Position, StageRow};
use leadheat_edge::tenant::Tenant;

use crate::touchpoints::{self, NewTouchpoint};
use crate::Refused;

/// Where a lead goes: a stage, and optionally the leads it goes between (at the column's end
/// when neither is named).
#[derive(Debug, Clone, Copy)]
pub struct LeadPlacement<'a> {
    pub stage_id: &'a str,
    pub before_lead_id: Option<&'a str>,
    pub after_lead_id: Option<&'a str>,
}

impl<'a> LeadPlacement<'a> {
    /// The end of the stage's column.
    pub fn at_end(stage_id: &'a str) -> LeadPlacement<'a> {
        LeadPlacement {
            stage_id,
            before_lead_id: None,
            after_lead_id: None,
        }
    }
}

/// Moves the lead to `to`, with its `stage_change` touchpoint (by `actor`) in the same batch.
/// Returns the lead as it is after the move.
pub async fn move_lead(
    tenant: &Tenant,
    lead_id: &str,
    to: LeadPlacement<'_>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<LeadRecord, Refused> {
    for (field, neighbour) in [
        ("before_lead_id", to.before_lead_id),
        ("after_lead_id", to.after_lead_id),
    ] {
        if neighbour == Some(lead_id) {
            return Err(Refused::field(
                field,
                "a lead cannot be placed next to itself",
            ));
        }
    }
    let from: Position = stages::position(tenant, lead_id)
        .await?
        .ok_or_else(|| Refused::not_found(format!("no lead {lead_id}")))?;
    if stages::get(tenant, to.stage_id).await?.is_none() {
        return Err(Refused::field(
            "stage_id",
            format!("{} is not a stage of this org", to.stage_id),
        ));
    }
    let rank_key = lead_rank(tenant, lead_id, to).await?;
    let now_text = clock::rfc3339(now);
    let moved =
        stages::move_lead_statement(tenant, lead_id, &from, to.stage_id, &rank_key, &now_text)?;
    let touch = NewTouchpoint::stage_change(
        lead_id,
        from.stage_id.as_deref(),
        Some(to.stage_id),
        actor,
        now,
    );
    match touchpoints::record_after(tenant, moved, touch, now).await? {
        Some(recorded) => Ok(recorded.lead),
        None => Err(Refused::conflict(
            "the lead was moved concurrently; reload and retry",
        )),
    }
}

/// The key that places the lead between its new neighbours in the target column.
async fn lead_rank(
    tenant: &Tenant,
    lead_id: &str,
    to: LeadPlacement<'_>,
) -> Result<String, Refused> {
    let stage_id = to.stage_id;
    let before = neighbour(tenant, stage_id, "before_lead_id", to.before_lead_id).await?;
    let after = neighbour(tenant, stage_id, "after_lead_id", to.after_lead_id).await?;
    // The keys to fit between: (low = the lead it follows, high = the lead it precedes).
    let (low, high) = match (after, before) {
        (Some((low, _)), Some((high, _))) => (Some(low), Some(high)),
        (Some((rank, lead)), None) => {
            let next =
                stages::neighbour_rank(tenant, stage_id, Some((&rank, &lead)), false, lead_id)
                    .await?;
            (Some(rank), next)
        }
        (None, Some((rank, lead))) => {
            let previous =
                stages::neighbour_rank(tenant, stage_id, Some((&rank, &lead)), true, lead_id)
                    .await?;
            (previous, Some(rank))
        }
        (None, None) => {
            let last = stages::neighbour_rank(tenant, stage_id, None, true, lead_id).await?;
            (last, None)
        }
    };
    match (&low, &high) {
        // Two leads share a key (concurrent moves into one gap): nothing fits between; the client
        // retries after reading the board, where the tie is ordered by id.
        (Some(l), Some(h)) if l == h => Err(Refused::conflict(
            "the neighbours share a position; reload the board and retry",
        )),
        _ => rules::key_between(low.as_deref(), high.as_deref())
            .map_err(|e| Refused::Invalid(vec![e])),
    }
}

/// A neighbour's (rank_key, id), which must sit in the target stage (refused, naming `field`,
/// if not).
async fn neighbour(
    tenant: &Tenant,
    stage_id: &str,
    field: &str,
    neighbour_id: Option<&str>,
) -> Result<Option<(String, String)>, Refused> {
    let Some(neighbour_id) = neighbour_id else {
        return Ok(None);
    };
    match stages::position(tenant, neighbour_id).await? {
        Some(Position {
            stage_id: Some(s),
            rank_key: Some(rank),
            id,
        }) if s == stage_id => Ok(Some((rank, id))),
        _ => Err(Refused::field(
            field,
            format!("{neighbour_id} is not a lead in stage {stage_id}"),
        )),
    }
}

/// A stage to create, validated by the caller (name rules, won implies closed).
#[derive(Debug, Clone, Copy)]
pub struct StageRequest<'a> {
    pub name: &'a str,
    pub is_closed: bool,
    pub is_won: bool,
    pub before_stage_id: Option<&'a str>,
    pub after_stage_id: Option<&'a str>,
}

/// Creates a stage where the request places it (after the last stage by default). Returns its
/// position in the pipeline and its row.
pub async fn create_stage(
    tenant: &Tenant,
    request: StageRequest<'_>,
    now: DateTime<Utc>,
) -> Result<(usize, StageRow), Refused> {
    let existing = stages::list(tenant).await?;
    if existing.len() >= MAX_STAGES {
        return Err(Refused::conflict(format!(
            "an org has at most {MAX_STAGES} stages"
        )));
    }
    let rank_key = stage_rank(&existing, request.before_stage_id, request.after_stage_id)?;
    let id = clock::new_id(prefix::STAGE);
    let created = stages::create(
        tenant,
        &NewStage {
            id: &id,
            name: request.name,
            rank_key: &rank_key,
            is_closed: request.is_closed,
            is_won: request.is_won,
            now: &clock::rfc3339(now),
        },
    )
    .await?;
    if !created {
        return Err(Refused::conflict(format!(
            "a stage named \"{}\" already exists",
            request.name
        )));
    }
    stages::list(tenant)
        .await?
        .into_iter()
        .enumerate()
        .find(|(_, s)| s.id == id)
        .ok_or_else(|| Refused::not_found("the new stage"))
}

/// The key of a new stage placed before and/or after existing ones (`existing` in pipeline
/// order), or after the last one.
fn stage_rank(
    existing: &[StageRow],
    before: Option<&str>,
    after: Option<&str>,
) -> Result<String, Refused> {
    let index_of = |field: &str, id: Option<&str>| -> Result<Option<usize>, Refused> {
        match id {
            None => Ok(None),
            Some(id) => existing
                .iter()
                .position(|s| s.id == id)
                .map(Some)
                .ok_or_else(|| Refused::field(field, format!("{id} is not a stage of this org"))),
        }
    };
    let before = index_of("before_stage_id", before)?;
    let after = index_of("after_stage_id", after)?;
    let key = |i: usize| existing[i].rank_key.as_str();
    let (low, high) = match (after, before) {
        (Some(a), Some(b)) if a >= b => {
            return Err(Refused::field(
                "before_stage_id",
                "after_stage_id must come before before_stage_id",
            ))
        }
        (Some(a), Some(b)) => (Some(key(a)), Some(key(b))),
        (Some(a), None) => (
            Some(key(a)),
            existing.get(a + 1).map(|s| s.rank_key.as_str()),
        ),
        (None, Some(b)) => (b.checked_sub(1).map(key), Some(key(b))),
        (None, None) => (existing.last().map(|s| s.rank_key.as_str()), None),
    };
    // Keys between existing stages always exist; a failure is a bug, not the caller's input.
    ranking::between(low, high).map_err(|e| Refused::Store(StoreError::backend("ranking", e)))
}
