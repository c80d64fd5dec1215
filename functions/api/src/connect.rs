//! Connecting accounts with the platform's OAuth instead of a pasted token (docs/connect.md):
//! - `POST /v1/integrations/{platform}/connect` (admin): the platform's authorize URL, with a
//!   `state` signed for this org, user and platform that expires in 10 minutes;
//! - `GET /v1/integrations/{platform}/callback?code=&state=` (no bearer: the browser comes back
//!   from the platform, and the signed state says for whom): exchanges the code server-side, lists
//!   the accounts the person administers, keeps them as a pending connection for 15 minutes and
//!   sends the browser to the settings page's picker;
//! - `GET /v1/integrations/{platform}/pending/{id}` (the admin who started it): the candidates,
//!   never a token;
//! - `POST /v1/integrations/{platform}/pending/{id}` with the picked ids: connects them through
//!   the same path as `PUT /v1/integrations/{platform}`, then forgets the pending connection.

use chrono::Duration;
use leadheat_domain::body::{self, Fields};
use leadheat_domain::oauth::{
    authorize_url, connection_token, sign_state, state_key, unlisted_picks, verify_state,
    AuthorizeRequest, Candidate, OAuthState, PendingSecrets, PENDING_TTL_SECONDS,
    STATE_TTL_SECONDS,
};
use leadheat_domain::types::{FieldError, Platform};
use leadheat_edge::connect::{self, OAuthApp};
use leadheat_edge::directory::Directory;
use leadheat_edge::http::{self, Problem};
use leadheat_edge::ownership::ProofFailure;
use leadheat_edge::store::pending_connections::{self, NewPending, PendingConnection};
use leadheat_edge::{clock, config, tokens};
use serde_json::{json, Value};
use worker::{Env, Response};

use crate::context::Ctx;
use crate::integrations::{
    account_fields, connect_accounts, field_of_kind, platform_of, requested_accounts, Proof,
};
use crate::request::ApiRequest;

/// Where the callback sends the browser: the integrations settings page.
const SETTINGS_PAGE: &str = "/app/settings/integrations";

pub async fn start(req: &ApiRequest, ctx: &Ctx, platform: &str) -> Result<Response, Problem> {
    ctx.require_admin()?;
    let platform = platform_of(platform)?;
    let app = oauth_app(&ctx.env, platform)?;
    // Housekeeping where it costs nothing extra: the org's abandoned picks.
    pending_connections::prune_expired(&ctx.tenant, &ctx.now_rfc3339()).await?;
    let key = signing_key(&ctx.env)?;
    let nonce = clock::new_id("n");
    let state = OAuthState::new(
        ctx.org(),
        &ctx.claims.sub,
        platform,
        &nonce,
        ctx.now.timestamp(),
    );
    let signed = sign_state(&key, &state);
    let redirect_uri = redirect_uri(&ctx.env, req, platform);
    let url = authorize_url(
        platform,
        &AuthorizeRequest {
            base: &app.authorize_base,
            client_id: &app.client_id,
            redirect_uri: &redirect_uri,
            state: &signed,
            config_id: app.config_id.as_deref(),
        },
    );
    let expires_at = clock::rfc3339(ctx.now + Duration::seconds(STATE_TTL_SECONDS));
    http::json(
        200,
        &json!({
            "platform": platform.as_str(),
            "authorize_url": url,
            "redirect_uri": redirect_uri,
            "expires_at": expires_at,
        }),
    )
}

/// The platform's redirect back. A state that does not verify answers 400 and stores nothing;
/// after that, every outcome sends the browser to the settings page (with `pending=` or `error=`).
pub async fn callback(req: &ApiRequest, env: Env, platform: &str) -> Result<Response, Problem> {
    let platform = platform_of(platform)?;
    let now = clock::now();
    let raw_state = req
        .query("state")
        .ok_or_else(|| bad_field("state", "required: the state of the connect"))?;
    let state = verify_state(&signing_key(&env)?, raw_state, platform, now.timestamp())
        .map_err(|error| bad_field("state", error.to_string()))?;
    if let Some(error) = req.query("error") {
        // The person declined, or the platform refused the request.
        return redirect_to_settings(platform, &[("error", error)]);
    }
    let code = req
        .query("code")
        .filter(|code| code.len() <= 2048)
        .ok_or_else(|| bad_field("code", "required: the platform's authorization code"))?;
    let app = oauth_app(&env, platform)?;
    let redirect_uri = redirect_uri(&env, req, platform);
    let listed = match exchange_and_list(&env, platform, &app, code, &redirect_uri).await {
        Ok(listed) => listed,
        Err(failure) => {
            worker::console_warn!("{} connect for {} failed: {failure:?}", platform, state.org);
            return redirect_to_settings(platform, &[("error", failure_slug(&failure))]);
        }
    };
    let tenant = Directory::open(&env)?
        .ensure_tenant(&state.org, now)
        .await?;
    let (candidates, secrets) = listed;
    let id = clock::new_id("pend");
    let keyring = tokens::keyring(&env)?;
    let secrets_json =
        serde_json::to_string(&secrets).map_err(|e| Problem::internal("pending", e))?;
    let sealed = tokens::seal_pending(&keyring, &state.org, &id, &secrets_json);
    let candidates_json =
        serde_json::to_string(&candidates).map_err(|e| Problem::internal("pending", e))?;
    pending_connections::insert(
        &tenant,
        &NewPending {
            id: &id,
            user_id: &state.sub,
            platform: platform.as_str(),
            candidates: &candidates_json,
            secrets_ciphertext: &sealed,
            token_key_id: keyring.current().key_id(),
            expires_at: &clock::rfc3339(now + Duration::seconds(PENDING_TTL_SECONDS)),
            now: &clock::rfc3339(now),
        },
    )
    .await?;
    redirect_to_settings(platform, &[("pending", &id)])
}

async fn exchange_and_list(
    env: &Env,
    platform: Platform,
    app: &OAuthApp,
    code: &str,
    redirect_uri: &str,
) -> Result<(Vec<Candidate>, PendingSecrets), ProofFailure> {
    let token = connect::exchange_code(env, platform, app, code, redirect_uri).await?;
    connect::candidates(env, platform, &token).await
}

/// What the settings page is told when the callback could not list the accounts.
fn failure_slug(failure: &ProofFailure) -> &'static str {
    match failure {
        ProofFailure::TokenRejected(_) | ProofFailure::Refused(_) => "exchange_refused",
        ProofFailure::NotAdministered(_) => "not_administered",
        ProofFailure::Unavailable(_) => "platform_unavailable",
    }
}

pub async fn get_pending(
    _req: &ApiRequest,
    ctx: &Ctx,
    platform: &str,
    id: &str,
) -> Result<Response, Problem> {
    let (platform, row, candidates) = pending_of_caller(ctx, platform, id).await?;
    let shown: Vec<Value> = candidates
        .iter()
        .map(|c| json!({"field": c.field, "id": c.id, "name": c.name}))
        .collect();
    http::json(
        200,
        &json!({
            "id": row.id,
            "platform": platform.as_str(),
            "fields": account_fields(platform).iter().map(|(_, f)| *f).collect::<Vec<_>>(),
            "candidates": shown,
            "expires_at": row.expires_at,
            "created_at": row.created_at,
        }),
    )
}

pub async fn complete_pending(
    req: &ApiRequest,
    ctx: &Ctx,
    platform: &str,
    id: &str,
) -> Result<Response, Problem> {
    let (platform, row, candidates) = pending_of_caller(ctx, platform, id).await?;
    let body: Value = req.json()?;
    let fields: Vec<&str> = account_fields(platform).iter().map(|(_, f)| *f).collect();
    let (object, mut errors) =
        body::parse(&body, Fields::exactly(&fields)).map_err(Problem::validation)?;
    let accounts = requested_accounts(platform, object, &mut errors);
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let picked: Vec<(&str, String)> = accounts
        .iter()
        .map(|(id, kind)| (field_of_kind(platform, kind), id.clone()))
        .collect();
    let unlisted = unlisted_picks(&candidates, &picked);
    if !unlisted.is_empty() {
        return Err(not_listed(unlisted));
    }
    let keyring = tokens::keyring(&ctx.env)?;
    let secrets: PendingSecrets =
        tokens::open_pending(&keyring, ctx.org(), &row.id, &row.secrets_ciphertext)
            .ok()
            .and_then(|json| serde_json::from_str(&json).ok())
            .ok_or_else(|| {
                Problem::internal("pending connection", "the sealed secrets do not open")
            })?;
    let token = connection_token(&candidates, &picked, &secrets);
    let response = connect_accounts(ctx, platform, &accounts, token, Proof::Listed).await?;
    pending_connections::delete(&ctx.tenant, &row.id).await?;
    Ok(response)
}

/// The caller's pending connection: 404 when it is unknown, another platform's, or another
/// user's (it holds that user's token); 410 once expired.
async fn pending_of_caller(
    ctx: &Ctx,
    platform: &str,
    id: &str,
) -> Result<(Platform, PendingConnection, Vec<Candidate>), Problem> {
    ctx.require_admin()?;
    let platform = platform_of(platform)?;
    let row = pending_connections::get(&ctx.tenant, platform.as_str(), id)
        .await?
        .filter(|row| row.user_id == ctx.claims.sub)
        .ok_or_else(|| Problem::not_found(format!("no pending {platform} connection {id}")))?;
    if row.expires_at <= ctx.now_rfc3339() {
        return Err(Problem::new(
            410,
            "connection-expired",
            "Connection expired",
            format!(
                "the accounts listed by this connection were kept {} minutes; connect again",
                PENDING_TTL_SECONDS / 60
            ),
        ));
    }
    let candidates: Vec<Candidate> = serde_json::from_str(&row.candidates)
        .map_err(|e| Problem::internal("pending connection candidates", e))?;
    Ok((platform, row, candidates))
}

/// A 400 naming the query parameter at fault.
fn bad_field(field: &str, message: impl Into<String>) -> Problem {
    let message = message.into();
    Problem {
        errors: vec![FieldError::new(field, message.clone())],
        ..Problem::bad_request(format!("{field}: {message}"))
    }
}

/// Picking an account the connection did not list would skip the ownership proof.
fn not_listed(errors: Vec<FieldError>) -> Problem {
    Problem::ownership_not_proven(
        errors,
        "pick only accounts this connection listed; nothing was connected",
    )
}

fn oauth_app(env: &Env, platform: Platform) -> Result<OAuthApp, Problem> {
    connect::app(env, platform).map_err(|missing| {
        Problem::new(
            503,
            "connect-not-configured",
            "Connect not configured",
            format!("connecting {platform} with its login is not configured here ({missing} is not set); PUT /v1/integrations/{platform} with an access token still works"),
        )
    })
}

/// The key that signs states: derived from `AUTH_JWT_SECRET` under a label of its own.
fn signing_key(env: &Env) -> Result<[u8; 32], Problem> {
    Ok(state_key(
        config::required(env, "AUTH_JWT_SECRET")?.as_bytes(),
    ))
}

/// The callback URL the platform sends the browser to: under `PUBLIC_BASE_URL` when set (it must
/// be registered with the platform's app), else under the origin the request came to.
fn redirect_uri(env: &Env, req: &ApiRequest, platform: Platform) -> String {
    let base = config::optional(env, "PUBLIC_BASE_URL").unwrap_or_else(|| req.origin.clone());
    format!(
        "{}/v1/integrations/{}/callback",
        base.trim_end_matches('/'),
        platform.as_str()
    )
}

fn redirect_to_settings(platform: Platform, query: &[(&str, &str)]) -> Result<Response, Problem> {
    let mut pairs = vec![("platform", platform.as_str())];
    pairs.extend_from_slice(query);
    let location = format!(
        "{SETTINGS_PAGE}?{}",
        leadheat_domain::oauth::form_encode(&pairs)
    );
    let mut response = Response::empty()?.with_status(303);
    let headers = response.headers_mut();
    headers.set("Location", &location)?;
    headers.set("Cache-Control", "no-store")?;
    // The callback URL carried the platform's code: never pass it on as a referrer.
    headers.set("Referrer-Policy", "no-referrer")?;
    Ok(response)
}
