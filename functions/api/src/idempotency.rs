//! `Idempotency-Key` on authenticated POSTs: the first response to a key is stored and replayed
//! (same status and body, `Idempotent-Replayed: true`) for the same request; the same key with
//! another request is refused with 422. Server errors are not stored, so a retry runs again. Keys
//! are remembered for 24 hours (an older row is never served, and the scoring worker's nightly
//! sweep deletes it).
//!
//! Keys are the user's: each is stored under the org AND the token's `sub`, and the request hash
//! covers the caller's role. Another user sending the same key (a viewer replaying an admin's)
//! runs their own request and never sees the first user's response.
//!
//! The key is claimed in D1 before the work runs, so two concurrent requests with one key cannot
//! both run it: the second sees the claim and gets 409 until the first has answered.

use std::future::Future;

use leadheat_domain::idempotency::{self as rules, Decision};
use leadheat_edge::clock;
use leadheat_edge::http::Problem;
use leadheat_edge::store::idempotency::{self as store, Claim};
use worker::{Headers, Response, ResponseBody};

use crate::context::Ctx;
use crate::request::ApiRequest;

pub async fn guarded(
    req: &ApiRequest,
    ctx: &Ctx,
    key: &str,
    work: impl Future<Output = Result<Response, Problem>>,
) -> Result<Response, Problem> {
    rules::validate_key(key).map_err(|e| Problem::validation(vec![e]))?;
    let method = req.method.to_string();
    let hash = rules::request_hash(ctx.claims.role.as_str(), &method, &req.path, &req.body);
    let now = ctx.now_rfc3339();
    let cutoff = clock::rfc3339(rules::expiry_cutoff(ctx.now));
    let claim = Claim {
        user_id: &ctx.claims.sub,
        key,
        method: &method,
        path: &req.path,
        request_hash: &hash,
        now: &now,
        cutoff: &cutoff,
    };
    let claimed = store::claim(&ctx.tenant, &claim).await?;

    if !claimed {
        let row = store::get(&ctx.tenant, &ctx.claims.sub, key, &cutoff).await?;
        return match rules::decide(row.as_ref().map(|r| r.request_hash.as_str()), &hash) {
            Decision::Mismatch => Err(Problem::new(
                422,
                "idempotency-key-mismatch",
                "Idempotency key reused",
                "this Idempotency-Key was already used for a different request (method, path or body); use a new key",
            )),
            Decision::Replay => match row.and_then(|r| r.status_code.zip(r.response_body)) {
                Some((status, body)) => replay(status as u16, body),
                None => Err(Problem::new(
                    409,
                    "idempotency-key-in-flight",
                    "Request in progress",
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                )),
            },
            // The row expired between the claim and the read: run as new (rare; not stored).
            Decision::Execute => work.await,
        };
    }

    let mut outcome = work.await;
    let (status, body) = match &mut outcome {
        Ok(response) => {
            let body = match response.body() {
                ResponseBody::Body(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                ResponseBody::Empty => String::new(),
                // A streamed body is teed so the client still gets all of it.
                ResponseBody::Stream(_) => response.cloned()?.text().await?,
            };
            (response.status_code(), body)
        }
        Err(problem) => (problem.status, problem.body().to_string()),
    };
    if rules::should_store(status) {
        store::complete(&ctx.tenant, &claim, status, &body).await?;
    } else {
        store::release(&ctx.tenant, &claim).await?;
    }
    outcome
}

/// The stored response again, marked as a replay.
fn replay(status: u16, body: String) -> Result<Response, Problem> {
    let headers = Headers::new();
    headers.set("Idempotent-Replayed", "true")?;
    let response = if body.is_empty() {
        Response::empty()?
    } else {
        let content_type = if status >= 400 {
            "application/problem+json"
        } else {
            "application/json"
        };
        headers.set("Content-Type", content_type)?;
        Response::from_bytes(body.into_bytes())?
    };
    Ok(response.with_status(status).with_headers(headers))
}
