//! `/v1/integrations`: connect an org's Facebook pages, Instagram accounts and LinkedIn
//! organisations / ad accounts with their access token (sealed with TOKEN_ENCRYPTION_KEY, never
//! returned; see `leadheat_edge::tokens`), the status of each platform's sync, and replay of dead events.

use leadheat_domain::body::{self, Fields};
use leadheat_domain::ownership::not_administered_message;
use leadheat_domain::sync::{InboxStatus, IntegrationStatus};
use leadheat_domain::types::{FieldError, Platform};
use leadheat_edge::directory::accounts;
use leadheat_edge::http::{self, Problem};
use leadheat_edge::ownership::{self, ProofFailure};
use leadheat_edge::store::{inbox, integrations, throttles};
use leadheat_edge::{queue, tokens};
use serde_json::{json, Map, Value};
use worker::Response;

use crate::context::Ctx;
use crate::request::ApiRequest;

/// The platforms an org connects, in the order the status lists them.
const PLATFORMS: [Platform; 3] = [Platform::Facebook, Platform::Instagram, Platform::Linkedin];
/// How many dead events the status shows per platform, and a replay re-enqueues at once.
const DEAD_SHOWN: u32 = 20;
const REPLAY_LIMIT: u32 = 500;
const MAX_ACCOUNTS: usize = 100;

pub fn platform_of(raw: &str) -> Result<Platform, Problem> {
    match raw.parse::<Platform>() {
        Ok(platform) if platform.is_social() => Ok(platform),
        _ => Err(Problem::not_found(format!(
            "no integration {raw:?}; expected facebook, instagram or linkedin"
        ))),
    }
}

pub async fn list(_req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    let items = status(ctx, &PLATFORMS).await?;
    http::json(200, &json!({ "items": items }))
}

/// The status entries of `platforms`.
async fn status(ctx: &Ctx, platforms: &[Platform]) -> Result<Vec<Value>, Problem> {
    let rows = integrations::list(&ctx.tenant).await?;
    let accounts = accounts::of_org(&ctx.directory, &ctx.tenant).await?;
    let counts = inbox::counts(&ctx.tenant).await?;
    let dead = inbox::dead_events(&ctx.tenant, DEAD_SHOWN * 3).await?;
    let throttle_rows = throttles::list(&ctx.tenant).await?;
    let mut items = Vec::new();
    for platform in platforms {
        let name = platform.as_str();
        let row = rows.iter().find(|r| r.platform == name);
        let count = |matches: fn(InboxStatus) -> bool| -> i64 {
            counts
                .iter()
                .filter(|c| c.platform == name && matches(c.status))
                .map(|c| c.count)
                .sum()
        };
        let mut account_lists: Map<String, Value> = Map::new();
        for (kind, field) in account_fields(*platform) {
            let ids: Vec<&str> = accounts
                .iter()
                .filter(|a| a.platform == name && a.kind == *kind)
                .map(|a| a.account_id.as_str())
                .collect();
            account_lists.insert(field.to_string(), json!(ids));
        }
        let last_error = match row.and_then(|r| r.last_error.clone()) {
            Some(error) => Some(error),
            None => inbox::last_error(&ctx.tenant, name).await?,
        };
        let throttle = throttle_rows.iter().find(|t| t.platform == name);
        // `not_connected`: the org never connected the platform (no row, so no stored status).
        let status = row.map(|r| r.status);
        let dead_events: Vec<Value> = dead
            .iter()
            .filter(|d| d.platform == name)
            .take(DEAD_SHOWN as usize)
            .map(|d| {
                json!({
                    "id": d.id,
                    "received_at": d.received_at,
                    "attempts": d.attempts,
                    "last_error": d.last_error,
                })
            })
            .collect();
        items.push(json!({
            "platform": name,
            "connected": status == Some(IntegrationStatus::Connected),
            "status": status.map_or("not_connected", IntegrationStatus::as_str),
            "accounts": account_lists,
            "token_set": row.is_some_and(|r| r.token_ciphertext.is_some()),
            "last_event_at": row.and_then(|r| r.last_event_at.clone()),
            "processed": count(|s| s == InboxStatus::Processed),
            "pending": count(InboxStatus::is_open),
            "dead": count(|s| s == InboxStatus::Dead),
            "ignored": count(|s| s == InboxStatus::Ignored),
            "last_error": last_error,
            "last_error_at": row.and_then(|r| r.last_error_at.clone()),
            "metrics": row
                .and_then(|r| serde_json::from_str::<Value>(&r.metrics).ok())
                .unwrap_or_else(|| json!({})),
            "throttle": {
                "blocked_until": throttle.and_then(|t| t.blocked_until.clone()),
                "circuit_open_until": throttle.and_then(|t| t.circuit_open_until.clone()),
                "consecutive_failures": throttle.map_or(0, |t| t.consecutive_failures),
                "last_usage": throttle
                    .and_then(|t| t.last_usage.as_deref())
                    .and_then(|u| serde_json::from_str::<Value>(u).ok()),
            },
            "dead_events": dead_events,
            "created_at": row.map(|r| r.created_at.clone()),
            "updated_at": row.map(|r| r.updated_at.clone()),
        }));
    }
    Ok(items)
}

/// The account kinds of a platform and the request/response field that lists each.
pub fn account_fields(platform: Platform) -> &'static [(&'static str, &'static str)] {
    match platform {
        Platform::Facebook => &[("page", "page_ids")],
        Platform::Instagram => &[("instagram_account", "account_ids")],
        _ => &[
            ("organization", "organization_ids"),
            ("sponsored_account", "sponsored_account_ids"),
        ],
    }
}

pub async fn put(req: &ApiRequest, ctx: &Ctx, platform: &str) -> Result<Response, Problem> {
    ctx.require_admin()?;
    let platform = platform_of(platform)?;
    let body: Value = req.json()?;
    let allowed: Vec<&str> = account_fields(platform)
        .iter()
        .map(|(_, f)| *f)
        .chain(["access_token"])
        .collect();
    let (object, mut errors) =
        body::parse(&body, Fields::exactly(&allowed)).map_err(Problem::validation)?;
    let token = match object.get("access_token") {
        Some(Value::String(t)) if !t.trim().is_empty() && t.len() <= 4096 => Some(t.trim()),
        _ => {
            errors.push(FieldError::new(
                "access_token",
                "required: the platform access token (a non-empty string)",
            ));
            None
        }
    };
    let accounts = requested_accounts(platform, object, &mut errors);
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let token = token.expect("validated above");
    connect_accounts(ctx, platform, &accounts, token, Proof::AskPlatform).await
}

/// The accounts a connect body lists (`page_ids`, ...), as (id, kind), each error pushed to
/// `errors`: ids that are not ids, none at all, or too many.
pub fn requested_accounts(
    platform: Platform,
    object: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Vec<(String, &'static str)> {
    let mut accounts: Vec<(String, &'static str)> = Vec::new();
    for (kind, field) in account_fields(platform) {
        match object.get(*field) {
            None | Some(Value::Null) => {}
            Some(Value::Array(values)) => {
                for (i, value) in values.iter().enumerate() {
                    match account_id(value) {
                        Some(id) => {
                            if !accounts.iter().any(|(a, _)| *a == id) {
                                accounts.push((id, kind));
                            }
                        }
                        None => errors.push(FieldError::new(
                            format!("{field}[{i}]"),
                            "must be a non-empty id (string or number)",
                        )),
                    }
                }
            }
            Some(_) => errors.push(FieldError::new(*field, "must be an array of ids")),
        }
    }
    if accounts.is_empty() && errors.is_empty() {
        let fields: Vec<&str> = account_fields(platform).iter().map(|(_, f)| *f).collect();
        errors.push(FieldError::new(
            fields[0],
            format!("connect at least one account ({})", fields.join(" or ")),
        ));
    }
    if accounts.len() > MAX_ACCOUNTS {
        errors.push(FieldError::new(
            account_fields(platform)[0].1,
            format!("at most {MAX_ACCOUNTS} accounts per platform"),
        ));
    }
    accounts
}

/// How a connect knows that the token administers the accounts.
pub enum Proof {
    /// Ask the platform with the token (`leadheat_edge::ownership`): the `PUT` with a raw token.
    AskPlatform,
    /// The accounts were picked among those the platform listed for this token (the OAuth
    /// connect, docs/connect.md): that listing was the proof.
    Listed,
}

/// Connects `accounts` ((id, kind)) of `platform` with `token`: the one path of the `PUT` and of
/// the OAuth pick. Refuses accounts another org holds (409), proves ownership when asked, seals
/// the token, claims the accounts in the directory and stores the integration. Answers the
/// platform's status entry.
pub async fn connect_accounts(
    ctx: &Ctx,
    platform: Platform,
    accounts: &[(String, &'static str)],
    token: &str,
    proof: Proof,
) -> Result<Response, Problem> {
    let ids: Vec<String> = accounts.iter().map(|(id, _)| id.clone()).collect();
    let taken =
        accounts::taken_by_others(&ctx.directory, &ctx.tenant, platform.as_str(), &ids).await?;
    if !taken.is_empty() {
        return Err(already_connected(&taken));
    }

    if let Proof::AskPlatform = proof {
        let requested = accounts
            .iter()
            .map(|(id, kind)| (field_of_kind(platform, kind), id.clone()))
            .collect();
        ownership::prove(&ctx.env, platform, token, requested)
            .await
            .map_err(|failure| proof_problem(platform, failure))?;
    }

    let keyring = tokens::keyring(&ctx.env)?;
    let sealed = tokens::seal(&keyring, ctx.org(), platform.as_str(), token);
    let now = ctx.now_rfc3339();
    // The accounts first, in the directory (all or none): another org that connected one of them
    // since the check above keeps it. Then the token on the org's shard; if that write fails, the
    // accounts route to an integration that is not connected, whose events are ignored until a
    // retried connect succeeds.
    let claimed = accounts::replace(
        &ctx.directory,
        &ctx.tenant,
        platform.as_str(),
        accounts,
        &now,
    )
    .await;
    if let Err(error) = claimed {
        let taken =
            accounts::taken_by_others(&ctx.directory, &ctx.tenant, platform.as_str(), &ids).await?;
        return Err(if taken.is_empty() {
            error.into()
        } else {
            already_connected(&taken)
        });
    }
    integrations::connect(
        &ctx.tenant,
        platform.as_str(),
        &sealed,
        keyring.current().key_id(),
        &now,
    )
    .await?;
    let mut items = status(ctx, &[platform]).await?;
    http::json(200, &items.remove(0))
}

fn already_connected(taken: &[String]) -> Problem {
    Problem::conflict(format!(
        "already connected by another organisation: {}",
        taken.join(", ")
    ))
}

/// The request field that lists accounts of `kind`.
pub fn field_of_kind(platform: Platform, kind: &str) -> &'static str {
    account_fields(platform)
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("account_ids", |(_, field)| *field)
}

/// The answer when the token could not be shown to administer the accounts; nothing is stored.
pub fn proof_problem(platform: Platform, failure: ProofFailure) -> Problem {
    match failure {
        ProofFailure::TokenRejected(why) => Problem::field(
            "access_token",
            format!("the platform rejected this access token ({why})"),
        ),
        ProofFailure::Refused(why) => Problem::field(
            "access_token",
            format!("the platform refused the ownership check for this token ({why})"),
        ),
        ProofFailure::NotAdministered(missing) => {
            let errors: Vec<FieldError> = missing
                .iter()
                .map(|(field, id)| {
                    FieldError::new(*field, not_administered_message(platform.as_str(), id))
                })
                .collect();
            let ids: Vec<&str> = missing.iter().map(|(_, id)| id.as_str()).collect();
            Problem::ownership_not_proven(
                errors,
                format!(
                    "the access token does not administer: {}; nothing was connected",
                    ids.join(", ")
                ),
            )
        }
        ProofFailure::Unavailable(why) => Problem::new(
            503,
            "platform-unavailable",
            "Platform unavailable",
            format!("could not check account ownership with the platform; try again ({why})"),
        ),
    }
}

/// An account id from a string, a number, or a LinkedIn URN (`urn:li:organization:123`).
fn account_id(value: &Value) -> Option<String> {
    let raw = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) if n.is_u64() => n.to_string(),
        _ => return None,
    };
    let id = if raw.starts_with("urn:") {
        raw.rsplit(':').next().unwrap_or("").to_string()
    } else {
        raw
    };
    (!id.is_empty() && id.len() <= 200 && !id.chars().any(char::is_whitespace)).then_some(id)
}

pub async fn delete(_req: &ApiRequest, ctx: &Ctx, platform: &str) -> Result<Response, Problem> {
    ctx.require_admin()?;
    let platform = platform_of(platform)?;
    accounts::release(&ctx.directory, &ctx.tenant, platform.as_str()).await?;
    integrations::disconnect(&ctx.tenant, platform.as_str(), &ctx.now_rfc3339()).await?;
    http::no_content()
}

pub async fn replay(_req: &ApiRequest, ctx: &Ctx, platform: &str) -> Result<Response, Problem> {
    ctx.require_admin()?;
    let platform = platform_of(platform)?;
    let ids = inbox::replay_dead(&ctx.tenant, platform.as_str(), REPLAY_LIMIT).await?;
    let mut enqueued = 0;
    for id in &ids {
        // A failed send leaves the event pending: the sync's reconciliation enqueues it.
        if queue::enqueue(&ctx.env, ctx.org(), id).await.is_ok() {
            enqueued += 1;
        }
    }
    http::json(
        200,
        &json!({
            "platform": platform.as_str(),
            "replayed": ids.len(),
            "enqueued": enqueued,
            "ids": ids,
        }),
    )
}
