//! Loading the demo workspace into an empty org: the domain's plan (`leadheat_domain::demo`)
//! written through the same operations as real writes (lead matching, the set-based touchpoint
//! insert and the rescore that website attribution uses), so the heat, levels, pipeline and
//! dashboard it shows are computed as for real data.

use chrono::{DateTime, Utc};
use leadheat_domain::demo::{self, DemoLead};
use leadheat_domain::ids::prefix;
use leadheat_domain::scoring::{points_for, ScoringConfig};
use leadheat_domain::types::{CapturedBy, HeatLevel};
use leadheat_edge::clock;
use leadheat_edge::store::heat;
use leadheat_edge::store::interactions::{self, NewInteractionRow};
use leadheat_edge::store::leads as leads_store;
use leadheat_edge::store::stages::{self, StageRow};
use leadheat_edge::tenant::Tenant;

use crate::lead_matching;
use crate::touchpoints;
use crate::Refused;

/// What loading the demo wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loaded {
    pub leads: usize,
    pub touchpoints: usize,
    pub hot: usize,
}

/// What every demo lead is written with.
struct Context<'a> {
    stages: &'a [StageRow],
    config: &'a ScoringConfig,
    user: &'a str,
    now: DateTime<Utc>,
}

/// Marks a demo touchpoint in its metadata.
const DEMO_METADATA: &str = r#"{"demo":true}"#;

/// Writes the demo leads (owned, in part, by `user`) and their touchpoints as of `now`. Refused
/// with a conflict when the org already has a lead: demo data never mixes with real data.
pub async fn load(tenant: &Tenant, user: &str, now: DateTime<Utc>) -> Result<Loaded, Refused> {
    if leads_store::any(tenant).await? {
        return Err(Refused::conflict(
            "the workspace already has leads; demo data is only loaded into an empty workspace",
        ));
    }
    let stages = stages::list(tenant).await?;
    let (config, _) = touchpoints::scoring_config(tenant).await?;
    let context = Context {
        stages: &stages,
        config: &config,
        user,
        now,
    };
    let mut loaded = Loaded::default();
    for lead in demo::plan(now) {
        let level = write_lead(tenant, lead, &context, &mut loaded).await?;
        loaded.leads += 1;
        loaded.hot += usize::from(level == HeatLevel::Hot);
    }
    Ok(loaded)
}

/// One demo lead, its touchpoints in one set-based insert, then its heat computed once from
/// them (the path a visitor's attributed page views take); its level afterwards.
async fn write_lead(
    tenant: &Tenant,
    lead: DemoLead,
    context: &Context<'_>,
    loaded: &mut Loaded,
) -> Result<HeatLevel, Refused> {
    let mut input = lead.input;
    let last_stage = context.stages.len().saturating_sub(1);
    input.stage_id = context
        .stages
        .get(lead.stage_index.min(last_stage))
        .map(|stage| stage.id.clone());
    if lead.owned {
        input.owner_id = Some(context.user.to_string());
    }
    let (created, _) = lead_matching::match_or_create(tenant, input, context.now).await?;
    if lead.touches.is_empty() {
        return Ok(created.heat_level);
    }
    let created_at = clock::rfc3339(context.now);
    let values: Vec<(String, String, String)> = lead
        .touches
        .iter()
        .enumerate()
        .map(|(n, touch)| {
            (
                clock::new_id(prefix::INTERACTION),
                format!("demo:{}:{n}", created.id),
                clock::rfc3339(touch.occurred_at),
            )
        })
        .collect();
    let rows: Vec<NewInteractionRow> = lead
        .touches
        .iter()
        .zip(&values)
        .map(
            |(touch, (id, external_id, occurred_at))| NewInteractionRow {
                id,
                lead_id: &created.id,
                kind: touch.kind,
                platform: touch.platform,
                occurred_at,
                captured_by: CapturedBy::Manual,
                points: points_for(touch.kind, context.config) as f64,
                external_id,
                metadata: DEMO_METADATA,
                created_at: &created_at,
            },
        )
        .collect();
    // The touchpoints are written outside the lead's heat state: it is flagged in the same batch
    // and rebuilt from them just below, as for attributed website visits.
    tenant
        .batch(vec![
            interactions::insert_many_statement(tenant, &rows)?,
            heat::flag_for_rebuild_statement(tenant, &created.id)?,
        ])
        .await?;
    loaded.touchpoints += rows.len();
    let heat = touchpoints::rescore(tenant, &created.id, context.now).await?;
    Ok(heat.map_or(created.heat_level, |heat| heat.level))
}
