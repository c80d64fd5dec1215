//! Connecting accounts through OAuth (docs/connect.md): each platform's app credentials, the
//! server-side exchange of the platform's code for a token, and the listing of the accounts the
//! token's person administers. The rules and the reading of the answers are
//! `leadheat_domain::oauth`; nothing is stored here.

use leadheat_domain::oauth::{
    linkedin_candidates, meta_candidates, parse_issued_token, Candidate, PendingSecrets,
};
use leadheat_domain::types::Platform;
use worker::Env;

use crate::config;
use crate::ownership::{self, judge_linkedin, judge_meta, unexpected, ProofFailure};
use crate::platform_api;

/// Meta's login dialog when `META_OAUTH_DIALOG_URL` is unset (the Graph version of
/// `META_GRAPH_BASE_URL`'s default).
pub const DEFAULT_META_OAUTH_DIALOG_URL: &str = "https://www.facebook.com/v25.0/dialog/oauth";

/// A platform's OAuth app, as configured.
pub struct OAuthApp {
    pub client_id: String,
    client_secret: String,
    /// Meta: the dialog URL; LinkedIn: the OAuth base (`.../authorization` is the page).
    pub authorize_base: String,
    /// Meta: the Facebook Login for Business configuration, when there is one.
    pub config_id: Option<String>,
}

/// The configured app of `platform`, or the name of the first missing variable.
pub fn app(env: &Env, platform: Platform) -> Result<OAuthApp, &'static str> {
    let need = |name: &'static str| config::optional(env, name).ok_or(name);
    match platform {
        Platform::Linkedin => Ok(OAuthApp {
            client_id: need("LINKEDIN_CLIENT_ID")?,
            client_secret: need("LINKEDIN_CLIENT_SECRET")?,
            authorize_base: platform_api::linkedin_oauth_base_url(env),
            config_id: None,
        }),
        _ => Ok(OAuthApp {
            client_id: need("META_APP_ID")?,
            client_secret: need("META_APP_SECRET")?,
            authorize_base: config::optional(env, "META_OAUTH_DIALOG_URL")
                .unwrap_or_else(|| DEFAULT_META_OAUTH_DIALOG_URL.to_string()),
            config_id: config::optional(env, "META_LOGIN_CONFIG_ID"),
        }),
    }
}

/// Exchanges the callback's `code` for the person's token. Meta's user token is then exchanged
/// for a long-lived one, so the page tokens derived from it do not expire.
pub async fn exchange_code(
    env: &Env,
    platform: Platform,
    app: &OAuthApp,
    code: &str,
    redirect_uri: &str,
) -> Result<String, ProofFailure> {
    let secret = app.client_secret.as_str();
    let client_id = app.client_id.as_str();
    if platform == Platform::Linkedin {
        let answer = platform_api::linkedin_token(
            env,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("client_id", client_id),
                ("client_secret", secret),
            ],
        )
        .await;
        let body = judge_linkedin(answer)?;
        return Ok(parse_issued_token(&body).map_err(unexpected)?.access_token);
    }
    let answer = platform_api::graph_token(
        env,
        &[
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("client_secret", secret),
            ("code", code),
        ],
    )
    .await;
    let short = parse_issued_token(&judge_meta(answer)?).map_err(unexpected)?;
    let answer = platform_api::graph_token(
        env,
        &[
            ("grant_type", "fb_exchange_token"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("fb_exchange_token", &short.access_token),
        ],
    )
    .await;
    Ok(parse_issued_token(&judge_meta(answer)?)
        .map_err(unexpected)?
        .access_token)
}

/// The accounts `token`'s person may connect on `platform`, and the secrets to keep sealed
/// until the pick: Facebook pages (or their Instagram business accounts) with their page tokens
/// from `me/accounts`; LinkedIn organisations and ad accounts.
pub async fn candidates(
    env: &Env,
    platform: Platform,
    token: &str,
) -> Result<(Vec<Candidate>, PendingSecrets), ProofFailure> {
    let (candidates, page_tokens) = match platform {
        Platform::Linkedin => {
            let (organizations, ad_accounts) = ownership::linkedin_accounts(env, token).await?;
            (
                linkedin_candidates(&organizations, &ad_accounts),
                Default::default(),
            )
        }
        _ => meta_candidates(platform, &ownership::listed_pages(env, token).await?),
    };
    let secrets = PendingSecrets {
        user_token: token.to_string(),
        page_tokens,
    };
    Ok((candidates, secrets))
}
