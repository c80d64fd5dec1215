//! The webhook worker: `/webhooks/facebook`, `/webhooks/instagram`, `/webhooks/linkedin`.
//!
//! It answers the platforms' verification handshakes, checks every delivery's signature on the raw
//! bytes, stores the delivery in the D1 inbox and enqueues it, then answers 200 at once: the
//! platforms disable slow endpoints, so all real work happens in the sync consumer.

use std::collections::BTreeMap;

use leadheat_domain::delivery::{split_delivery, DeliveryError};
use leadheat_domain::handshake::{
    answer_linkedin_challenge, answer_meta_subscription, HandshakeError,
};
use leadheat_domain::ids::prefix;
use leadheat_domain::signature::{
    verify_linkedin_signature, verify_meta_signature, LINKEDIN_SIGNATURE_HEADER,
    META_SIGNATURE_HEADER,
};
use leadheat_domain::types::{FieldError, Platform};
use leadheat_edge::directory::unrouted::{self, Unrouted};
use leadheat_edge::directory::{accounts, Directory, OrgEntry};
use leadheat_edge::http::{self, Problem};
use leadheat_edge::store::inbox::{self, NewInboxEvent};
use leadheat_edge::{clock, config, db, queue};
use serde_json::json;
use worker::{event, Context, Env, Method, Request, Response, Result};

/// Meta's and LinkedIn's deliveries are small; anything near this is not theirs.
const MAX_DELIVERY_BYTES: usize = 1024 * 1024;

#[event(fetch)]
pub async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let platform = match path.trim_end_matches('/') {
        "/webhooks/health" | "/health" => return http::health(),
        "/webhooks/facebook" => Platform::Facebook,
        "/webhooks/instagram" => Platform::Instagram,
        "/webhooks/linkedin" => Platform::Linkedin,
        _ => return Problem::not_found(format!("no webhook at {path}")).into_response(),
    };
    let outcome = match req.method() {
        Method::Get => handshake(&req, &env, platform),
        Method::Post => receive(req, &env, platform).await,
        _ => Err(Problem::method_not_allowed(
            "webhooks accept GET (verification) and POST (events)",
        )),
    };
    http::respond(outcome)
}

/// The verification handshake each platform specifies, answered only in the forms the platforms
/// document (`leadheat_domain::handshake`), so that it never signs or echoes attacker text.
fn handshake(
    req: &Request,
    env: &Env,
    platform: Platform,
) -> std::result::Result<Response, Problem> {
    let url = req.url()?;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    match platform {
        Platform::Linkedin => {
            let secret = config::optional(env, "LINKEDIN_CLIENT_SECRET").unwrap_or_default();
            let answer =
                answer_linkedin_challenge(param("challengeCode").as_deref(), secret.as_bytes())
                    .map_err(handshake_problem)?;
            http::json(
                200,
                &json!({"challengeCode": answer.challenge_code, "challengeResponse": answer.challenge_response}),
            )
        }
        _ => {
            let expected = config::optional(env, "META_VERIFY_TOKEN").unwrap_or_default();
            let challenge = param("hub.challenge");
            let challenge = answer_meta_subscription(
                param("hub.mode").as_deref(),
                param("hub.verify_token").as_deref(),
                challenge.as_deref(),
                &expected,
            )
            .map_err(handshake_problem)?;
            let mut response = Response::ok(challenge)?;
            let headers = response.headers_mut();
            headers.set("Content-Type", "text/plain; charset=utf-8")?;
            headers.set("X-Content-Type-Options", "nosniff")?;
            Ok(response)
        }
    }
}

fn handshake_problem(error: HandshakeError) -> Problem {
    if error == HandshakeError::NotConfigured {
        return Problem::internal("webhook handshake", error);
    }
    let mut problem = match error.status() {
        403 => Problem::forbidden(error.to_string()),
        _ => Problem::bad_request(error.to_string()),
    };
    if let Some(field) = error.field() {
        problem
            .errors
            .push(FieldError::new(field, error.to_string()));
    }
    problem
}

async fn receive(
    req: Request,
    env: &Env,
    platform: Platform,
) -> std::result::Result<Response, Problem> {
    // The delivery's D1 queries are counted, and limited, as one invocation's.
    db::invocation(store_delivery(req, env, platform)).await
}

/// A split that cannot be stored: too large for inbox rows (413), or not a delivery at all (400).
fn delivery_problem(error: DeliveryError) -> Problem {
    match error {
        DeliveryError::EventTooLarge { .. } | DeliveryError::TooManyParts { .. } => Problem::new(
            413,
            "payload-too-large",
            "Payload too large",
            error.to_string(),
        ),
        _ => Problem::bad_request(error.to_string()),
    }
}

async fn store_delivery(
    mut req: Request,
    env: &Env,
    platform: Platform,
) -> std::result::Result<Response, Problem> {
    let body = http::read_body(&mut req, MAX_DELIVERY_BYTES).await?;
    verify_signature(&req, env, platform, &body)?;
    // One inbox row per account (a Meta or LinkedIn batch may span accounts of several orgs), per
    // MAX_EVENTS_PER_PART events (so the sync consumer applies a row within its query budget) and
    // per MAX_PART_BYTES (so a row fits in a D1 statement).
    let parts = split_delivery(platform, &body).map_err(delivery_problem)?;

    let directory = Directory::open(env)?;
    let now = clock::rfc3339(clock::now());
    // The orgs of all the delivery's accounts, in a few chunked lookups (not one per account:
    // a delivery may span hundreds of pages, and D1 allows 1,000 queries per invocation).
    let mut accounts: Vec<String> = parts.iter().filter_map(|p| p.account_id.clone()).collect();
    accounts.sort();
    accounts.dedup();
    let org_of = accounts::routes(&directory, platform.as_str(), &accounts).await?;
    let ids: Vec<String> = parts
        .iter()
        .map(|_| clock::new_id(prefix::INBOX_EVENT))
        .collect();
    // Parts by org (each org's go to its shard's inbox in one batch); parts of accounts no org
    // has connected are recorded as unrouted (and still answered 200, so the platform keeps the
    // subscription).
    let mut by_org: BTreeMap<&str, (&OrgEntry, Vec<NewInboxEvent>)> = BTreeMap::new();
    let mut unrouted = Vec::new();
    for (part, id) in parts.iter().zip(&ids) {
        match part.account_id.as_ref().and_then(|a| org_of.get(a)) {
            Some(org) => by_org
                .entry(&org.id)
                .or_insert((org, Vec::new()))
                .1
                .push(NewInboxEvent {
                    id,
                    platform: platform.as_str(),
                    dedupe_key: &part.dedupe_key,
                    account_id: part.account_id.as_deref(),
                    body: &part.body,
                    received_at: &now,
                }),
            None => unrouted.push(Unrouted {
                platform: platform.as_str(),
                dedupe_key: &part.dedupe_key,
                account_id: part.account_id.as_deref(),
                received_at: &now,
            }),
        }
    }
    let mut stored_count = 0;
    let mut duplicates = 0;
    let mut to_enqueue: Vec<(String, String)> = Vec::new();
    for (org_id, (org, rows)) in &by_org {
        // An org in the middle of a shard move is answered 503: the platform redelivers later,
        // and the delivery then lands on the org's new shard.
        let tenant = directory.tenant_of(org)?;
        let stored = inbox::insert_all(&tenant, rows).await?;
        for (row, stored) in rows.iter().zip(stored) {
            if stored {
                stored_count += 1;
                to_enqueue.push((org_id.to_string(), row.id.to_string()));
            } else {
                duplicates += 1;
            }
        }
    }
    let recorded = unrouted::record_all(&directory, &unrouted).await?;
    let ignored = recorded.iter().filter(|new| **new).count();
    stored_count += ignored;
    duplicates += recorded.len() - ignored;
    // If this send fails, the rows stay pending and the sync worker's reconciliation enqueues
    // them; the platform still gets its 200, so it does not redeliver needlessly.
    if let Err(problem) = queue::enqueue_all(env, &to_enqueue).await {
        worker::console_warn!(
            "enqueue failed for {} events, reconciliation will pick them up: {}",
            to_enqueue.len(),
            problem.detail
        );
    }
    http::json(
        200,
        &json!({
            "received": true,
            "stored": stored_count,
            "duplicates": duplicates,
            "ignored": ignored,
            "duplicate": stored_count == 0 && duplicates > 0,
        }),
    )
}

fn verify_signature(
    req: &Request,
    env: &Env,
    platform: Platform,
    body: &[u8],
) -> std::result::Result<(), Problem> {
    let outcome = match platform {
        Platform::Linkedin => {
            let header = req.headers().get(LINKEDIN_SIGNATURE_HEADER)?;
            let secret = config::optional(env, "LINKEDIN_CLIENT_SECRET").unwrap_or_default();
            verify_linkedin_signature(header.as_deref(), body, secret.as_bytes())
        }
        _ => {
            let header = req.headers().get(META_SIGNATURE_HEADER)?;
            let meta = config::optional(env, "META_APP_SECRET").unwrap_or_default();
            // Instagram events may be signed with either app's secret (docs/webhooks.md).
            let instagram = match platform {
                Platform::Instagram => {
                    config::optional(env, "INSTAGRAM_APP_SECRET").unwrap_or_default()
                }
                _ => String::new(),
            };
            verify_meta_signature(
                header.as_deref(),
                body,
                &[meta.as_bytes(), instagram.as_bytes()],
            )
        }
    };
    outcome.map_err(|error| Problem::unauthorized(format!("webhook signature rejected: {error}")))
}
