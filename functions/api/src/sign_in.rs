//! What the sales UI needs to sign in (docs/auth.md):
//!
//! - `GET /v1/auth/config` (no auth): the identity provider the UI signs in with (OpenID Connect,
//!   Authorization Code with PKCE, against the issuer's discovery document), when the deployment
//!   has one for the UI (`AUTH_OIDC_CLIENT_ID`), and the development sign-in page when the local
//!   runtime serves one (`DEV_SIGN_IN_PATH`, a binding only `dev/runtime.mjs` sets).
//! - `POST /v1/auth/token` (no auth): relays the UI's code-for-token exchange (or refresh) to the
//!   provider's token endpoint ([`leadheat_domain::oidc`] says why).
//! - `GET /v1/auth/session`: the caller's identity as the API mapped it from the token (a
//!   provider's token names org and role its own way; the UI shows and obeys these).

use leadheat_domain::oidc::{parse_token_request, token_answer, token_error};
use leadheat_edge::http::{self, Problem};
use leadheat_edge::idp::{discovery, idp_config, token_exchange, IdpConfig};
use leadheat_edge::{clock, config};
use serde_json::{json, Map, Value};
use worker::{Env, Response};

use crate::context::Ctx;
use crate::request::ApiRequest;

/// The scopes asked for when `AUTH_OIDC_SCOPE` is unset.
const DEFAULT_SCOPE: &str = "openid profile email";

/// The provider the UI signs in with, and its public client id; `None` without either.
fn ui_provider(env: &Env) -> Result<Option<(IdpConfig, String)>, Problem> {
    Ok(idp_config(env)?.zip(config::optional(env, "AUTH_OIDC_CLIENT_ID")))
}

pub async fn config(env: &Env) -> Result<Response, Problem> {
    let oidc = match ui_provider(env)? {
        Some((idp, client_id)) => {
            let endpoints = discovery(&idp.policy.issuer, clock::now().timestamp()).await?;
            json!({
                "issuer": idp.policy.issuer,
                "client_id": client_id,
                "scope": config::optional(env, "AUTH_OIDC_SCOPE")
                    .unwrap_or_else(|| DEFAULT_SCOPE.to_string()),
                "audience": idp.policy.audience,
                "authorization_endpoint": endpoints.authorization_endpoint,
            })
        }
        None => Value::Null,
    };
    let body = json!({
        "oidc": oidc,
        "dev_sign_in": config::optional(env, "DEV_SIGN_IN_PATH"),
    });
    let mut response = http::json(200, &body)?;
    response.headers_mut().set("Cache-Control", "no-store")?;
    Ok(response)
}

pub fn session(ctx: &Ctx) -> Result<Response, Problem> {
    http::json(200, &ctx.claims)
}

pub async fn token(req: &ApiRequest, env: &Env) -> Result<Response, Problem> {
    let Some((idp, client_id)) = ui_provider(env)? else {
        return Err(Problem::not_found(
            "this deployment has no identity provider for the UI (AUTH_OIDC_CLIENT_ID)",
        ));
    };
    let body: Map<String, Value> = req.json()?;
    let grant = parse_token_request(&body).map_err(Problem::validation)?;
    let endpoints = discovery(&idp.policy.issuer, clock::now().timestamp()).await?;
    let (status, answer) =
        token_exchange(&endpoints.token_endpoint, &grant.form(&client_id)).await?;
    match token_answer(&answer).filter(|_| status == 200) {
        Some(tokens) => {
            let mut response = http::json(200, &tokens)?;
            response.headers_mut().set("Cache-Control", "no-store")?;
            Ok(response)
        }
        None => Err(Problem::bad_request(format!(
            "the identity provider refused: {}",
            token_error(&answer)
        ))),
    }
}
