//! The org's members: recorded from each authenticated request's token, listed for the UI's owner
//! pickers and filters (`GET /v1/members`, any role).
//!
//! Recording is cheap: this isolate remembers whom it has written and skips them until their
//! sighting is a day old or their name, email or role changed (`leadheat_domain::members`); the
//! store's write is itself conditional on the same rule, so other isolates add no rows written.

use std::cell::RefCell;
use std::collections::HashMap;

use leadheat_domain::auth::bearer_token;
use leadheat_domain::members::{
    needs_write, profile_from_claims, refresh_cutoff, verified_token_payload, Profile, Sighting,
};
use leadheat_edge::clock;
use leadheat_edge::http::{self, Problem};
use leadheat_edge::store::members::{self as store, Seen};
use serde_json::json;
use worker::Response;

use crate::context::Ctx;
use crate::request::ApiRequest;

/// Sightings this isolate remembers before it starts over (memory stays bounded).
const REMEMBERED: usize = 10_000;

thread_local! {
    /// The last sighting written per (org, user).
    static WRITTEN: RefCell<HashMap<(String, String), Sighting>> = RefCell::new(HashMap::new());
}

/// Records the caller as a member of their org when due. Never fails the request: a member row
/// is a convenience of the UI (an org being moved between shards refuses writes for a moment).
pub async fn record_seen(req: &ApiRequest, ctx: &Ctx) {
    // The token the request was authenticated with: the bearer, else Cloudflare Access's header.
    let authorization = req.header("Authorization");
    let access = req.header(leadheat_edge::idp::CF_ACCESS_HEADER);
    let profile = bearer_token(authorization.as_deref())
        .or(access.as_deref())
        .and_then(verified_token_payload)
        .map(|payload| profile_from_claims(&payload))
        .unwrap_or_default();
    let key = (ctx.org().to_string(), ctx.claims.sub.clone());
    let last = WRITTEN.with(|written| written.borrow().get(&key).cloned());
    if !needs_write(last.as_ref(), &profile, ctx.claims.role, ctx.now) {
        return;
    }
    let Profile { name, email } = &profile;
    let now = ctx.now_rfc3339();
    let refresh_before = clock::rfc3339(refresh_cutoff(ctx.now));
    let seen = Seen {
        user_id: &ctx.claims.sub,
        name: name.as_deref(),
        email: email.as_deref(),
        role: ctx.claims.role.as_str(),
        now: &now,
        refresh_before: &refresh_before,
    };
    match store::record(&ctx.tenant, &seen).await {
        Ok(_) => WRITTEN.with(|written| {
            let mut written = written.borrow_mut();
            if written.len() >= REMEMBERED {
                written.clear();
            }
            let sighting = Sighting {
                profile,
                role: ctx.claims.role,
                at: ctx.now,
            };
            written.insert(key, sighting);
        }),
        Err(error) => worker::console_warn!("members: recording {} failed: {error}", ctx.org()),
    }
}

/// `GET /v1/members`: every member of the caller's org, by name.
pub async fn list(_req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    let items = store::list(&ctx.tenant).await?;
    http::json(200, &json!({ "items": items }))
}
