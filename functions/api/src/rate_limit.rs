//! The lead API's request rate limits: each authenticated request is charged to its user's and
//! then its org's counter, two Workers Rate Limiting bindings (`[[env.api.ratelimits]]` in
//! wrangler.toml). Which counters, in which order, and the answer beyond a limit are the domain's
//! (`leadheat_domain::rate_limit`); this module only calls the bindings.
//!
//! A binding that is missing or fails lets the request through and logs an error: the limiter
//! protects the API's capacity, and its outage must not become the API's outage.

use leadheat_domain::auth::Claims;
use leadheat_domain::rate_limit::{self as rules, Charge, Limits, Scope};
use leadheat_edge::config;
use leadheat_edge::http::Problem;
use worker::Env;

/// The binding counting each user's requests (key: org and `sub`).
pub const USER_BINDING: &str = "API_USER_RATE_LIMITER";
/// The binding counting each org's requests, all its users together (key: org).
pub const ORG_BINDING: &str = "API_ORG_RATE_LIMITER";

/// Charges the caller's request; 429 with `Retry-After` when a limit refuses it.
pub async fn charge(env: &Env, claims: &Claims) -> Result<(), Problem> {
    for charge in rules::charges(&claims.org, &claims.sub) {
        if !allowed(env, &charge).await {
            let refusal = rules::refusal(&limits(env), charge.scope);
            return Err(Problem::too_many_requests(refusal.detail)
                .with_retry_after(refusal.retry_after_secs));
        }
    }
    Ok(())
}

async fn allowed(env: &Env, charge: &Charge) -> bool {
    let binding = match charge.scope {
        Scope::User => USER_BINDING,
        Scope::Org => ORG_BINDING,
    };
    let outcome = match env.rate_limiter(binding) {
        Ok(limiter) => limiter.limit(charge.key.clone()).await,
        Err(error) => Err(error),
    };
    outcome.map(|o| o.success).unwrap_or_else(|error| {
        worker::console_error!(
            "{{\"level\":\"error\",\"context\":\"rate limit {binding}\",\"error\":{:?}}}",
            error.to_string()
        );
        true
    })
}

/// The limits as the vars state them (for the answer's wording and `Retry-After`); invalid vars
/// are logged and the defaults used.
fn limits(env: &Env) -> Limits {
    let var = |name| config::optional(env, name);
    Limits::from_vars(
        var(rules::PER_USER_VAR).as_deref(),
        var(rules::PER_ORG_VAR).as_deref(),
        var(rules::PERIOD_VAR).as_deref(),
    )
    .unwrap_or_else(|error| {
        worker::console_error!(
            "{{\"level\":\"error\",\"context\":\"configuration\",\"error\":{error:?}}}"
        );
        Limits::default()
    })
}
