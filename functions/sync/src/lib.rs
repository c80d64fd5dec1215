//! The social sync worker: consumes the webhook queue, applies each inbox event (leads and
//! touchpoints, lead forms fetched from the platforms), and reconciles the inbox on a cron so an
//! event whose queue message was lost, or whose retry is due, is still processed.
//!
//! Reliability (docs/guarantees.md): the inbox row is the durable state, the queue only a wake-up
//! call. Each message is acked on its own and the handler always returns Ok; an event is claimed
//! with a lease before it is worked on; every attempt's outcome goes through the domain's state
//! machine (`leadheat_domain::sync`): processed, retried with backoff, waiting for a throttle or
//! an open circuit, or dead with its last error (replayable through the API).
//!
//! Sharding: a message names its org and inbox row. The consumer looks the org up in the directory
//! for each message and works on the org's shard through its tenant: a message of an org the
//! directory does not know is acked (logged), one of an org in the middle of a shard move goes
//! back to the queue with a delay, unclaimed (no attempt counted). The cron walks every shard: the
//! re-enqueue, prune and token re-seal limits of a run are spread across the shards
//! ([`Allowance`]), and a shard that fails is logged and skipped.
//!
//! Each invocation stays within a D1 query budget (`leadheat_domain::sync::QueryBudget`,
//! `SYNC_QUERY_BUDGET`): a message is taken only while a full inbox row still fits, and the rest
//! of the batch goes back to the queue unclaimed. Every batch logs a `sync-batch` line with the
//! queries it used.

mod apply;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use leadheat_domain::live::ChangeSource;
use leadheat_domain::sync::{
    next_status, Claim, InboxStatus, IntegrationStatus, Next, Outcome, Policy, QueryBudget,
    INBOX_RETENTION_DAYS,
};
use leadheat_domain::types::Platform;
use leadheat_edge::db::{self, StoreError};
use leadheat_edge::directory::{accounts, Directory};
use leadheat_edge::queue::{self, SocialEventMessage};
use leadheat_edge::store::{inbox, integrations};
use leadheat_edge::tenant::{Shard, Tenant};
use leadheat_edge::{clock, config, http, live, tokens};
use worker::{
    event, Context, Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder, Request, Response,
    Result, ScheduleContext, ScheduledEvent,
};

/// Events the reconciliation re-enqueues per run, over all shards (the rest wait for the next
/// minute).
const RECONCILE_BATCH: u32 = 500;
/// Events pruned per run at most, over all shards (keeps each run small; the backlog drains
/// minute by minute).
const PRUNE_BATCH: u32 = 1000;
/// Access tokens re-sealed under the current key per run after a key rotation, over all shards.
const RESEAL_BATCH: u32 = 100;
/// How long a message of an org in the middle of a shard move waits in the queue before it is
/// delivered again (the move makes the org's tenant unavailable for a moment).
const ORG_MOVING_RETRY_SECONDS: u32 = 10;

#[event(fetch)]
pub async fn fetch(req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    match req.path().as_str() {
        "/health" => http::health(),
        path => {
            http::Problem::not_found(format!("the sync worker serves no {path}")).into_response()
        }
    }
}

/// Each message is acked or retried on its own and the handler always returns Ok: an Err would
/// retry the whole batch, acked messages included.
#[event(queue)]
pub async fn queue(batch: MessageBatch<SocialEventMessage>, env: Env, _ctx: Context) -> Result<()> {
    // One invocation: its D1 queries are counted (and limited) from zero.
    db::invocation(consume(batch, env)).await
}

async fn consume(batch: MessageBatch<SocialEventMessage>, env: Env) -> Result<()> {
    let directory = match Directory::open(&env) {
        Ok(directory) => directory,
        Err(error) => {
            worker::console_error!("the directory is unavailable: {error}");
            batch.retry_all();
            return Ok(());
        }
    };
    let messages = match batch.messages() {
        Ok(messages) => messages,
        Err(error) => {
            worker::console_error!("undecodable queue batch: {error}");
            batch.ack_all();
            return Ok(());
        }
    };
    // D1's queries per invocation are bounded: a message is taken only while a full row still
    // fits the budget; the rest go back to the queue unclaimed (no attempt counted).
    let budget = QueryBudget::from_var(config::optional(&env, "SYNC_QUERY_BUDGET").as_deref());
    let meter = db::QueryMeter::start();
    let later = QueueRetryOptionsBuilder::new()
        .with_delay_seconds(QueryBudget::RETRY_DELAY_SECONDS)
        .build();
    let after_move = QueueRetryOptionsBuilder::new()
        .with_delay_seconds(ORG_MOVING_RETRY_SECONDS)
        .build();
    let total = messages.len();
    let (mut taken, mut deferred, mut events, mut heaviest) = (0u32, 0usize, 0usize, 0u32);
    let (mut moving, mut unknown_org) = (0usize, 0usize);
    let mut changed_orgs = BTreeSet::new();
    for message in messages {
        if !budget.may_claim(meter.used(), taken) {
            message.retry_with_options(&later);
            deferred += 1;
            continue;
        }
        taken += 1;
        let before = meter.used();
        let body = message.body();
        let result = handle(&env, &directory, body).await;
        heaviest = heaviest.max(meter.used().wrapping_sub(before));
        match result {
            Ok(Some(processed)) => {
                changed_orgs.extend(processed.changed_org);
                events += processed.events;
                message.ack();
            }
            Ok(None) => {
                // Its org was deleted (or never existed): nothing can hold its row any more.
                worker::console_warn!(
                    "{{\"job\":\"sync\",\"inbox_id\":{:?},\"org_id\":{:?},\"acked\":\"the org is unknown\"}}",
                    body.inbox_id,
                    body.org_id
                );
                unknown_org += 1;
                message.ack();
            }
            Err(StoreError::OrgMoving { .. }) => {
                // Unclaimed: the row is untouched (no attempt counted) and waits for the move.
                moving += 1;
                message.retry_with_options(&after_move);
            }
            Err(error) => {
                // The row stays claimed; its lease expires and the reconciliation picks it up,
                // and the queue retries this message meanwhile.
                worker::console_error!("processing {} failed: {error}", body.inbox_id);
                message.retry();
            }
        }
    }
    worker::console_log!(
        "{{\"job\":\"sync-batch\",\"messages\":{total},\"taken\":{taken},\"deferred\":{deferred},\"moving\":{moving},\"unknown_org\":{unknown_org},\"events\":{events},\"queries\":{},\"heaviest\":{heaviest},\"budget\":{}}}",
        meter.used(),
        budget.limit
    );
    // One notice per org per batch, after its changes are committed.
    let at = clock::rfc3339(clock::now());
    for org_id in changed_orgs {
        live::publish(&env, &org_id, ChangeSource::Social, &at).await;
    }
    Ok(())
}

/// One message: its org's tenant, then its row. `Ok(None)` when the directory does not know the
/// org; [`StoreError::OrgMoving`] when the org is being moved to another shard (nothing claimed).
async fn handle(
    env: &Env,
    directory: &Directory,
    message: &SocialEventMessage,
) -> std::result::Result<Option<Processed>, StoreError> {
    let Some(tenant) = directory.tenant(&message.org_id).await? else {
        return Ok(None);
    };
    let now = effective_now(message.as_of.as_deref());
    process(env, directory, &tenant, &message.inbox_id, now)
        .await
        .map(Some)
}

/// The reconciliation: re-enqueues inbox events that are pending and due, or whose lease expired
/// (a consumer died), as of the scheduled time, on every shard. Then the key rotation sweep
/// re-seals access tokens still sealed by a previous TOKEN_ENCRYPTION_KEY.
#[event(scheduled)]
pub async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let now = clock::from_ms(event.schedule() as i64);
    db::invocation(async {
        let directory = match Directory::open(&env) {
            Ok(directory) => directory,
            Err(error) => {
                worker::console_error!(
                    "reconciliation failed: the directory is unavailable: {error}"
                );
                return;
            }
        };
        let shards = shards(&directory, now);
        reconcile(&env, &shards, now).await;
        reseal_tokens(&env, &shards, now).await;
    })
    .await
}

/// The shards bound to this worker, starting at a different one each minute (so that the share
/// a run's first shards leave unused goes to each shard in turn); one whose binding fails is
/// logged and left out.
fn shards(directory: &Directory, now: DateTime<Utc>) -> Vec<Shard> {
    let count = directory.shard_count();
    let first = rotation(count, now);
    (0..count)
        .map(|i| (first + i) % count)
        .filter_map(|index| match directory.shard(index) {
            Ok(shard) => Some(shard),
            Err(error) => {
                worker::console_error!("shard {index} is skipped: {error}");
                None
            }
        })
        .collect()
}

/// The shard a run at `now` starts at: the next one each minute.
fn rotation(count: u32, now: DateTime<Utc>) -> u32 {
    if count == 0 {
        return 0;
    }
    (now.timestamp().div_euclid(60).rem_euclid(count as i64)) as u32
}

/// A run's limit spread over the shards it visits in turn: each shard may use an equal part of
/// what the shards before it left, so no shard takes more than its share while others are
/// waiting, and a shard with less work (or one that failed) leaves its part to the next ones.
/// The total never exceeds the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Allowance {
    remaining: u32,
    shards_left: u32,
}

impl Allowance {
    fn new(limit: u32, shards: usize) -> Allowance {
        Allowance {
            remaining: limit,
            shards_left: shards as u32,
        }
    }

    /// The next shard's part (rounded up, so a limit below the number of shards still reaches
    /// the first shards of the run; the rotation lets each shard be first in turn).
    fn take(&mut self) -> u32 {
        if self.shards_left == 0 {
            return 0;
        }
        let part = self.remaining.div_ceil(self.shards_left);
        self.shards_left -= 1;
        part
    }

    /// What the shard given `part` actually used (at most its part).
    fn used(&mut self, used: u32, part: u32) {
        self.remaining -= used.min(part).min(self.remaining);
    }
}

async fn reconcile(env: &Env, shards: &[Shard], now: DateTime<Utc>) {
    let as_of = clock::rfc3339(now);
    let horizon = clock::rfc3339(now - chrono::Duration::days(INBOX_RETENTION_DAYS));
    let mut prune_allowance = Allowance::new(PRUNE_BATCH, shards.len());
    let mut due_allowance = Allowance::new(RECONCILE_BATCH, shards.len());
    let (mut pruned, mut found, mut sent, mut failed) = (0u64, 0usize, 0usize, 0usize);
    for shard in shards {
        let index = shard.index();
        let part = prune_allowance.take();
        if part > 0 {
            match inbox::prune(shard, &horizon, part).await {
                Ok(count) => {
                    pruned += count;
                    prune_allowance.used(u32::try_from(count).unwrap_or(u32::MAX), part);
                }
                Err(error) => {
                    worker::console_error!("pruning the inbox of shard {index} failed: {error}");
                    failed += 1;
                }
            }
        }
        let part = due_allowance.take();
        if part == 0 {
            continue;
        }
        let due = match inbox::due(shard, &as_of, part).await {
            Ok(due) => due,
            Err(error) => {
                worker::console_error!("reconciliation of shard {index} failed: {error}");
                failed += 1;
                continue;
            }
        };
        due_allowance.used(u32::try_from(due.len()).unwrap_or(u32::MAX), part);
        found += due.len();
        for event in due {
            match queue::enqueue_as_of(env, &event.org_id, &event.id, Some(&as_of)).await {
                Ok(()) => sent += 1,
                Err(problem) => worker::console_warn!(
                    "re-enqueue of {} (org {}) failed: {}",
                    event.id,
                    event.org_id,
                    problem.detail
                ),
            }
        }
    }
    if found == 0 && failed == 0 {
        if pruned > 0 {
            worker::console_log!("{{\"job\":\"sync-reconcile\",\"pruned\":{pruned}}}");
        }
        return;
    }
    worker::console_log!(
        "{{\"job\":\"sync-reconcile\",\"as_of\":{as_of:?},\"shards\":{},\"failed\":{failed},\"enqueued\":{sent},\"pruned\":{pruned}}}",
        shards.len()
    );
}

async fn reseal_tokens(env: &Env, shards: &[Shard], now: DateTime<Utc>) {
    let keyring = match tokens::keyring(env) {
        Ok(keyring) => keyring,
        Err(problem) => {
            worker::console_error!("re-sealing access tokens failed: {}", problem.detail);
            return;
        }
    };
    let now = clock::rfc3339(now);
    let mut allowance = Allowance::new(RESEAL_BATCH, shards.len());
    let mut total = tokens::Sweep::default();
    for shard in shards {
        let part = allowance.take();
        if part == 0 {
            continue;
        }
        match tokens::reseal_sweep(shard, &keyring, part, &now).await {
            Ok(sweep) => {
                allowance.used(sweep.resealed + sweep.unreadable, part);
                total.resealed += sweep.resealed;
                total.unreadable += sweep.unreadable;
            }
            Err(error) => worker::console_error!(
                "re-sealing the access tokens of shard {} failed: {error}",
                shard.index()
            ),
        }
    }
    if total != tokens::Sweep::default() {
        worker::console_log!(
            "{{\"job\":\"token-reseal\",\"resealed\":{},\"unreadable\":{}}}",
            total.resealed,
            total.unreadable
        );
    }
}

/// The consumer's clock: the runtime's, or the reconciliation's scheduled time when later.
fn effective_now(as_of: Option<&str>) -> DateTime<Utc> {
    let now = clock::now();
    as_of
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .map_or(now, |t| t.max(now))
}

/// What processing one message did.
#[derive(Debug, Default)]
struct Processed {
    /// The org whose data it changed, if the row was applied.
    changed_org: Option<String>,
    /// The parsed events of the row (0 when it was not applied).
    events: usize,
}

/// Claims the org's event, applies it, and records the outcome. An `Err` only for storage
/// failures.
///
/// The claim counts the attempt (`leadheat_domain::sync::claim`); an event out of attempts is made
/// dead by the claim itself, so one whose processing never finishes is not claimed forever. The
/// outcome is written only while this consumer still holds its lease.
async fn process(
    env: &Env,
    directory: &Directory,
    tenant: &Tenant,
    inbox_id: &str,
    now: DateTime<Utc>,
) -> std::result::Result<Processed, StoreError> {
    let policy = Policy::default();
    let now_text = clock::rfc3339(now);
    let lease = clock::rfc3339(now + policy.lease);
    let Some(event) = claim(tenant, &policy, inbox_id, &now_text, &lease).await? else {
        // Not due yet, held by another consumer, finished, or given up just now.
        return Ok(Processed::default());
    };
    let Ok(platform) = event.platform.parse::<Platform>() else {
        inbox::mark_dead(tenant, &event.id, &lease, "unknown platform").await?;
        return Ok(Processed::default());
    };
    let Some(integration) = resolve(directory, tenant, &event, platform, &lease, &now_text).await?
    else {
        return Ok(Processed::default());
    };

    let received_at = DateTime::parse_from_rfc3339(&event.received_at)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    let mut applied = 0;
    let outcome =
        match leadheat_domain::platforms::parse(platform, event.body.as_bytes(), received_at) {
            Err(error) => Outcome::Permanent(error.to_string()),
            Ok(events) => {
                applied = events.len();
                let mut run = apply::Run {
                    env,
                    tenant,
                    platform,
                    integration: &integration,
                    policy: &policy,
                    now,
                    token: None,
                };
                run.apply_all(&events).await
            }
        };

    let attempts = event.attempts.max(1) as u32;
    let next = next_status(&policy, attempts, &outcome, now, clock::random_bytes());
    record(
        tenant, &event.id, &lease, platform, &outcome, next, &now_text,
    )
    .await?;
    // Applied, possibly in part (a retry keeps the touchpoints already recorded).
    Ok(Processed {
        changed_org: Some(tenant.org_id().to_string()),
        events: applied,
    })
}

/// Claims a due event as the domain's [`leadheat_domain::sync::claim`] rule says: `Some` when
/// this consumer now holds it (its attempt counted), `None` otherwise, also when the claim gave it
/// up (then it is dead, its integration's last error says why).
async fn claim(
    tenant: &Tenant,
    policy: &Policy,
    inbox_id: &str,
    now: &str,
    lease: &str,
) -> std::result::Result<Option<inbox::InboxEvent>, StoreError> {
    let gave_up = policy.gave_up_unfinished();
    let Some(event) =
        inbox::claim(tenant, inbox_id, now, lease, policy.max_attempts, &gave_up).await?
    else {
        return Ok(None);
    };
    if event.status != InboxStatus::Dead {
        return Ok(Some(event));
    }
    debug_assert!(matches!(
        leadheat_domain::sync::claim(policy, event.attempts.max(0) as u32),
        Claim::GiveUp { .. }
    ));
    worker::console_warn!(
        "{{\"job\":\"sync\",\"inbox_id\":{:?},\"dead\":\"out of attempts at claim\",\"attempts\":{}}}",
        event.id,
        event.attempts
    );
    integrations::record_error(tenant, &event.platform, &gave_up, now).await?;
    Ok(None)
}

/// The integration a claimed event of the org is applied for; `None` when it is ignored (its
/// account is no longer routed to the org, or the integration was disconnected since receipt),
/// which is recorded.
async fn resolve(
    directory: &Directory,
    tenant: &Tenant,
    event: &inbox::InboxEvent,
    platform: Platform,
    lease: &str,
    now: &str,
) -> std::result::Result<Option<integrations::Integration>, StoreError> {
    // The row is the org's (it was claimed through the org's tenant); its account must still be.
    if let Some(account) = &event.account_id {
        let routed = accounts::org_for_account(directory, platform.as_str(), account).await?;
        if routed.as_deref() != Some(tenant.org_id()) {
            inbox::mark_ignored(
                tenant,
                &event.id,
                lease,
                now,
                "the account was disconnected",
            )
            .await?;
            return Ok(None);
        }
    }
    let integration = integrations::get(tenant, platform.as_str()).await?;
    match integration.filter(|i| i.status != IntegrationStatus::Disconnected) {
        Some(integration) => Ok(Some(integration)),
        None => {
            inbox::mark_ignored(
                tenant,
                &event.id,
                lease,
                now,
                "the integration is disconnected",
            )
            .await?;
            Ok(None)
        }
    }
}

/// Writes an attempt's outcome, if this consumer still holds the lease (a consumer that outlived
/// it leaves the event to the one that claimed it since, or to its give-up).
async fn record(
    tenant: &Tenant,
    inbox_id: &str,
    lease: &str,
    platform: Platform,
    outcome: &Outcome,
    next: Next,
    now: &str,
) -> std::result::Result<(), StoreError> {
    let held = match &next {
        Next::Processed => inbox::mark_processed(tenant, inbox_id, lease, now).await?,
        Next::Retry {
            next_attempt_at,
            last_error,
            counted,
        } => {
            let at = clock::rfc3339(*next_attempt_at);
            inbox::schedule_retry(tenant, inbox_id, lease, &at, last_error, *counted).await?
        }
        Next::Dead { last_error } => inbox::mark_dead(tenant, inbox_id, lease, last_error).await?,
    };
    if !held {
        worker::console_warn!(
            "{{\"job\":\"sync\",\"inbox_id\":{inbox_id:?},\"outcome\":\"dropped: the lease expired\"}}"
        );
        return Ok(());
    }
    let platform = platform.as_str();
    // The integration keeps the same readable excerpt as the row.
    match next {
        Next::Processed => integrations::touch_last_event(tenant, platform, now).await,
        Next::Retry { last_error, .. } => {
            let error = inbox::truncate(&last_error);
            integrations::record_error(tenant, platform, &error, now).await
        }
        Next::Dead { last_error } => match outcome {
            Outcome::TokenInvalid(error) => {
                let error = inbox::truncate(error);
                integrations::mark_needs_token(tenant, platform, &error, now).await
            }
            _ => {
                let error = inbox::truncate(&last_error);
                integrations::record_error(tenant, platform, &error, now).await
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts an allowance hands out when each shard uses `wants` (capped at its part).
    fn spread(limit: u32, wants: &[u32]) -> Vec<u32> {
        let mut allowance = Allowance::new(limit, wants.len());
        wants
            .iter()
            .map(|&want| {
                let part = allowance.take();
                let used = want.min(part);
                allowance.used(used, part);
                used
            })
            .collect()
    }

    #[test]
    fn busy_shards_share_the_limit_equally() {
        assert_eq!(spread(500, &[1000, 1000]), vec![250, 250]);
        assert_eq!(spread(500, &[1000, 1000, 1000]), vec![167, 167, 166]);
        assert_eq!(spread(100, &[1000; 4]), vec![25; 4]);
    }

    #[test]
    fn what_a_shard_leaves_goes_to_the_next_ones() {
        assert_eq!(spread(500, &[0, 1000]), vec![0, 500]);
        assert_eq!(spread(500, &[10, 1000, 1000]), vec![10, 245, 245]);
        // A failing shard uses nothing.
        assert_eq!(spread(100, &[1000, 0, 1000]), vec![34, 0, 66]);
    }

    #[test]
    fn the_total_never_exceeds_the_limit() {
        for limit in [0, 1, 2, 7, 100, 500, 1000] {
            for shards in 1..=9usize {
                let used = spread(limit, &vec![u32::MAX; shards]);
                assert_eq!(used.iter().sum::<u32>(), limit, "{limit} over {shards}");
                let (max, min) = (used.iter().max().unwrap(), used.iter().min().unwrap());
                assert!(max - min <= 1, "{used:?}");
            }
        }
    }

    #[test]
    fn each_minute_starts_at_the_next_shard() {
        let at = |minute: i64| DateTime::from_timestamp(minute * 60 + 59, 0).unwrap();
        assert_eq!(
            (0..5).map(|m| rotation(3, at(m))).collect::<Vec<_>>(),
            vec![0, 1, 2, 0, 1]
        );
        assert_eq!(rotation(1, at(7)), 0);
        assert_eq!(rotation(0, at(7)), 0);
    }
}
