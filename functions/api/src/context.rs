//! Who is calling: the verified JWT claims, their org on its shard (placed on the least-loaded
//! shard with its defaults on first sight)
//! and what their role allows. Every authenticated request is also charged to its user's and org's
//! rate limits here, before it touches D1.

use chrono::{DateTime, Utc};
use leadheat_domain::auth::{bearer_token, Claims};
use leadheat_domain::types::Role;
use leadheat_edge::clock;
use leadheat_edge::directory::Directory;
use leadheat_edge::http::Problem;
use leadheat_edge::idp;
use leadheat_edge::tenant::Tenant;
use leadheat_usecases::Refused;
use worker::Env;

use crate::rate_limit;
use crate::request::ApiRequest;

/// Everything an authenticated handler needs.
pub struct Ctx {
    pub env: Env,
    pub directory: Directory,
    /// The caller's org on its shard: every read and write of the request goes through it.
    pub tenant: Tenant,
    pub claims: Claims,
    /// The request's clock, read once so every write of a request carries the same instant.
    pub now: DateTime<Utc>,
}

impl Ctx {
    /// Verifies the bearer token (or Cloudflare Access's assertion, when the deployment accepts
    /// it) and makes sure the caller's org exists.
    pub async fn authenticate(req: &ApiRequest, env: Env) -> Result<Ctx, Problem> {
        let header = req.header("Authorization");
        let assertion = req.header(idp::CF_ACCESS_HEADER);
        let token = idp::request_token(&env, bearer_token(header.as_deref()), assertion.as_deref());
        Ctx::authenticate_token(token.as_deref(), env).await
    }

    /// Verifies a token however it arrived (a bearer header, or a WebSocket subprotocol), and
    /// charges the request to the caller's rate limits (429 beyond them).
    pub async fn authenticate_token(token: Option<&str>, env: Env) -> Result<Ctx, Problem> {
        let now = clock::now();
        let token = token.ok_or_else(|| {
            Problem::unauthorized("send a bearer token: Authorization: Bearer <JWT>")
        })?;
        let claims = idp::verify_token(&env, token, now.timestamp()).await?;
        rate_limit::charge(&env, &claims).await?;
        let directory = Directory::open(&env)?;
        let tenant = directory.ensure_tenant(&claims.org, now).await?;
        Ok(Ctx {
            env,
            directory,
            tenant,
            claims,
            now,
        })
    }

    pub fn org(&self) -> &str {
        &self.claims.org
    }

    pub fn now_rfc3339(&self) -> String {
        clock::rfc3339(self.now)
    }

    /// Members and admins write leads and touchpoints; viewers only read.
    pub fn require_writer(&self) -> Result<(), Problem> {
        if self.claims.role.can_write_leads() {
            Ok(())
        } else {
            Err(Problem::forbidden("viewers have read-only access"))
        }
    }

    /// Scoring, stages, custom field definitions and integrations are the admins'.
    pub fn require_admin(&self) -> Result<(), Problem> {
        if self.claims.role == Role::Admin {
            Ok(())
        } else {
            Err(Problem::forbidden("only admins can change this"))
        }
    }
}

/// The HTTP answer to an operation the use cases refused.
pub fn refused(refusal: Refused) -> Problem {
    match refusal {
        Refused::Store(error) => error.into(),
        Refused::Invalid(errors) => Problem::validation(errors),
        Refused::Stale { expected, current } => Problem::precondition_failed(format!(
            "the lead changed: If-Match has version {expected} but the current version is {current}; reload and retry"
        )),
    }
}
