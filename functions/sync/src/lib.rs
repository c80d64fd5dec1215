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
//! Each invocation stays within a D1 query budget (`leadheat_domain::sync::QueryBudget`,
//! `SYNC_QUERY_BUDGET`): a message is taken only while a full inbox row still fits, and the rest
//! of the batch goes back to the queue unclaimed. Every batch logs a `sync-batch` line with the
//! queries it used.

mod apply;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use leadheat_domain::live::ChangeSource;
use leadheat_domain::sync::{next_status, Claim, Next, Outcome, Policy, QueryBudget};
use leadheat_domain::types::Platform;
use leadheat_edge::http::Problem;
use leadheat_edge::queue::{self, SocialEventMessage};
use leadheat_edge::store::{inbox, integrations};
use leadheat_edge::{clock, config, db, http, live, tokens};
use worker::{
    event, Context, D1Database, Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder, Request,
    Response, Result, ScheduleContext, ScheduledEvent,
};

/// Events the reconciliation re-enqueues per run (the rest wait for the next minute).
const RECONCILE_BATCH: u32 = 500;
/// Processed and ignored events are kept this long (for support and replays), then pruned.
const RETENTION_DAYS: i64 = 30;
/// Events pruned per run at most (keeps each run small; the backlog drains minute by minute).
const PRUNE_BATCH: u32 = 1000;
/// Access tokens re-sealed under the current key per run after a key rotation.
const RESEAL_BATCH: u32 = 100;

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
    let db = match db::database(&env) {
        Ok(db) => db,
        Err(_) => {
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
    let total = messages.len();
    let (mut taken, mut deferred, mut events, mut heaviest) = (0u32, 0usize, 0usize, 0u32);
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
        let now = effective_now(body.as_of.as_deref());
        let result = process(&env, &db, &body.inbox_id, now).await;
        heaviest = heaviest.max(meter.used().wrapping_sub(before));
        match result {
            Ok(processed) => {
                changed_orgs.extend(processed.changed_org);
                events += processed.events;
                message.ack();
            }
            Err(problem) => {
                // The row stays claimed; its lease expires and the reconciliation picks it up,
                // and the queue retries this message meanwhile.
                worker::console_error!("processing {} failed: {}", body.inbox_id, problem.detail);
                message.retry();
            }
        }
    }
    worker::console_log!(
        "{{\"job\":\"sync-batch\",\"messages\":{total},\"taken\":{taken},\"deferred\":{deferred},\"events\":{events},\"queries\":{},\"heaviest\":{heaviest},\"budget\":{}}}",
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

/// The reconciliation: re-enqueues inbox events that are pending and due, or whose lease expired
/// (a consumer died), as of the scheduled time. Then the key rotation sweep re-seals access tokens
/// still sealed by a previous TOKEN_ENCRYPTION_KEY.
#[event(scheduled)]
pub async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let now = clock::from_ms(event.schedule() as i64);
    db::invocation(async {
        if let Err(problem) = reconcile(&env, now).await {
            worker::console_error!("reconciliation failed: {}", problem.detail);
        }
        if let Err(problem) = reseal_tokens(&env, now).await {
            worker::console_error!("re-sealing access tokens failed: {}", problem.detail);
        }
    })
    .await
}

async fn reseal_tokens(env: &Env, now: DateTime<Utc>) -> std::result::Result<(), Problem> {
    let db = db::database(env)?;
    let keyring = tokens::keyring(env)?;
    let sweep = tokens::reseal_sweep(&db, &keyring, RESEAL_BATCH, &clock::rfc3339(now)).await?;
    if sweep != tokens::Sweep::default() {
        worker::console_log!(
            "{{\"job\":\"token-reseal\",\"resealed\":{},\"unreadable\":{}}}",
            sweep.resealed,
            sweep.unreadable
        );
    }
    Ok(())
}

async fn reconcile(env: &Env, now: DateTime<Utc>) -> std::result::Result<(), Problem> {
    let db = db::database(env)?;
    let as_of = clock::rfc3339(now);
    let horizon = clock::rfc3339(now - chrono::Duration::days(RETENTION_DAYS));
    let pruned = inbox::prune(&db, &horizon, PRUNE_BATCH).await?;
    let due = inbox::due(&db, &as_of, RECONCILE_BATCH).await?;
    if due.is_empty() {
        if pruned > 0 {
            worker::console_log!("{{\"job\":\"sync-reconcile\",\"pruned\":{pruned}}}");
        }
        return Ok(());
    }
    let mut sent = 0usize;
    for inbox_id in due {
        match queue::enqueue_as_of(env, &inbox_id, Some(&as_of)).await {
            Ok(()) => sent += 1,
            Err(problem) => worker::console_warn!("re-enqueue failed: {}", problem.detail),
        }
    }
    worker::console_log!(
        "{{\"job\":\"sync-reconcile\",\"as_of\":{as_of:?},\"enqueued\":{sent},\"pruned\":{pruned}}}"
    );
    Ok(())
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

/// Claims the event, applies it, and records the outcome. An `Err` only for storage failures.
///
/// The claim counts the attempt (`leadheat_domain::sync::claim`); an event out of attempts is made
/// dead by the claim itself, so one whose processing never finishes is not claimed forever. The
/// outcome is written only while this consumer still holds its lease.
async fn process(
    env: &Env,
    db: &D1Database,
    inbox_id: &str,
    now: DateTime<Utc>,
) -> std::result::Result<Processed, Problem> {
    let policy = Policy::default();
    let now_text = clock::rfc3339(now);
    let lease = clock::rfc3339(now + policy.lease);
    let Some(event) = claim(db, &policy, inbox_id, &now_text, &lease).await? else {
        // Not due yet, held by another consumer, finished, or given up just now.
        return Ok(Processed::default());
    };
    let Ok(platform) = event.platform.parse::<Platform>() else {
        inbox::mark_dead(db, &event.id, &lease, "unknown platform").await?;
        return Ok(Processed::default());
    };
    let Some((org_id, integration)) = resolve(db, &event, platform, &lease, &now_text).await?
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
                    db,
                    org_id: &org_id,
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
        db, &event.id, &lease, &org_id, platform, &outcome, next, &now_text,
    )
    .await?;
    // Applied, possibly in part (a retry keeps the touchpoints already recorded).
    Ok(Processed {
        changed_org: Some(org_id),
        events: applied,
    })
}

/// Claims a due event as the domain's [`leadheat_domain::sync::claim`] rule says: `Some` when
/// this consumer now holds it (its attempt counted), `None` otherwise, also when the claim gave it
/// up (then it is dead, its integration's last error says why).
async fn claim(
    db: &D1Database,
    policy: &Policy,
    inbox_id: &str,
    now: &str,
    lease: &str,
) -> std::result::Result<Option<inbox::InboxEvent>, Problem> {
    let gave_up = policy.gave_up_unfinished();
    let Some(event) = inbox::claim(db, inbox_id, now, lease, policy.max_attempts, &gave_up).await?
    else {
        return Ok(None);
    };
    if event.status != "dead" {
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
    if let Some(org_id) = &event.org_id {
        integrations::record_error(db, org_id, &event.platform, &gave_up, now).await?;
    }
    Ok(None)
}

/// The org and integration a claimed event is applied for; `None` when it is ignored (no org has
/// connected its account, or the integration was disconnected), which is recorded.
async fn resolve(
    db: &D1Database,
    event: &inbox::InboxEvent,
    platform: Platform,
    lease: &str,
    now: &str,
) -> std::result::Result<Option<(String, integrations::Integration)>, Problem> {
    // Which org: the one recorded at receipt, else the one that has connected the account since.
    let org_id = match (&event.org_id, &event.account_id) {
        (Some(org), _) => Some(org.clone()),
        (None, Some(account)) => {
            integrations::org_for_account(db, platform.as_str(), account).await?
        }
        (None, None) => None,
    };
    let Some(org_id) = org_id else {
        inbox::mark_ignored(
            db,
            &event.id,
            lease,
            now,
            "no org has connected this account",
        )
        .await?;
        return Ok(None);
    };
    if event.org_id.is_none() {
        inbox::set_org(db, &event.id, &org_id).await?;
    }
    let integration = integrations::get(db, &org_id, platform.as_str()).await?;
    let still_connected = match &event.account_id {
        Some(account) => {
            integrations::org_for_account(db, platform.as_str(), account)
                .await?
                .as_deref()
                == Some(org_id.as_str())
        }
        None => true,
    };
    match integration.filter(|i| i.status != "disconnected" && still_connected) {
        Some(integration) => Ok(Some((org_id, integration))),
        None => {
            inbox::mark_ignored(db, &event.id, lease, now, "the integration is disconnected")
                .await?;
            Ok(None)
        }
    }
}

/// Writes an attempt's outcome, if this consumer still holds the lease (a consumer that outlived
/// it leaves the event to the one that claimed it since, or to its give-up).
#[allow(clippy::too_many_arguments)]
async fn record(
    db: &D1Database,
    inbox_id: &str,
    lease: &str,
    org_id: &str,
    platform: Platform,
    outcome: &Outcome,
    next: Next,
    now: &str,
) -> std::result::Result<(), Problem> {
    let held = match &next {
        Next::Processed => inbox::mark_processed(db, inbox_id, lease, now).await?,
        Next::Retry {
            next_attempt_at,
            last_error,
            counted,
        } => {
            let at = clock::rfc3339(*next_attempt_at);
            inbox::schedule_retry(db, inbox_id, lease, &at, last_error, *counted).await?
        }
        Next::Dead { last_error } => inbox::mark_dead(db, inbox_id, lease, last_error).await?,
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
        Next::Processed => integrations::touch_last_event(db, org_id, platform, now).await,
        Next::Retry { last_error, .. } => {
            let error = inbox::truncate(&last_error);
            integrations::record_error(db, org_id, platform, &error, now).await
        }
        Next::Dead { last_error } => match outcome {
            Outcome::TokenInvalid(error) => {
                let error = inbox::truncate(error);
                integrations::mark_needs_token(db, org_id, platform, &error, now).await
            }
            _ => {
                let error = inbox::truncate(&last_error);
                integrations::record_error(db, org_id, platform, &error, now).await
            }
        },
    }
}
