//! Outbound calls to the platforms' APIs (Meta Graph, LinkedIn REST) through `fetch`. This module
//! only performs the HTTP exchange and hands back what the reliability rules need (status, body,
//! usage and retry headers); reading them is the domain's job (`leadheat_domain::sync`).
//!
//! Base URLs come from `META_GRAPH_BASE_URL` and `LINKEDIN_API_BASE_URL`, so tests point them at a
//! local stub.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use leadheat_domain::oauth::form_encode;
use leadheat_domain::signature::graph_appsecret_proof;
use worker::{Delay, Env, Fetch, Headers, Method, Request, RequestInit, Url};

use crate::config;

pub const DEFAULT_META_GRAPH_BASE_URL: &str = "https://graph.facebook.com/v25.0";
pub const DEFAULT_LINKEDIN_API_BASE_URL: &str = "https://api.linkedin.com/rest";
pub const DEFAULT_LINKEDIN_OAUTH_BASE_URL: &str = "https://www.linkedin.com/oauth/v2";
/// The LinkedIn REST API version the requests are written against (`LinkedIn-Version`).
pub const LINKEDIN_VERSION: &str = "202601";
/// A call slower than this is abandoned (and counts as a transient failure).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A platform's answer, as far as the sync needs it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// Meta `X-App-Usage`.
    pub app_usage: Option<String>,
    /// Meta `X-Business-Use-Case-Usage`.
    pub business_usage: Option<String>,
    /// `Retry-After`.
    pub retry_after: Option<String>,
}

/// A call that got no answer (network error, timeout): always transient.
#[derive(Debug, Clone)]
pub struct NoAnswer(pub String);

pub fn meta_base_url(env: &Env) -> String {
    config::optional(env, "META_GRAPH_BASE_URL")
        .unwrap_or_else(|| DEFAULT_META_GRAPH_BASE_URL.to_string())
        .trim_end_matches('/')
        .to_string()
}

pub fn linkedin_base_url(env: &Env) -> String {
    config::optional(env, "LINKEDIN_API_BASE_URL")
        .unwrap_or_else(|| DEFAULT_LINKEDIN_API_BASE_URL.to_string())
        .trim_end_matches('/')
        .to_string()
}

/// `GET {META_GRAPH_BASE_URL}/{leadgen_id}?fields=...`: a lead's `field_data`.
pub async fn meta_lead(env: &Env, token: &str, leadgen_id: &str) -> Result<Answer, NoAnswer> {
    graph_get(
        env,
        token,
        &encode_segment(leadgen_id),
        &[(
            "fields",
            "id,created_time,field_data,ad_id,form_id,campaign_id,adset_id",
        )],
    )
    .await
}

/// `GET {META_GRAPH_BASE_URL}/{path}?{query}` as the token's user. The token travels in the
/// `Authorization` header, never in the URL (URLs end up in logs and traces), with the
/// `appsecret_proof` that binds it to this app. `path` must already be percent-encoded.
pub async fn graph_get(
    env: &Env,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
) -> Result<Answer, NoAnswer> {
    let mut url = Url::parse(&format!("{}/{}", meta_base_url(env), path))
        .map_err(|e| NoAnswer(format!("invalid Graph URL: {e}")))?;
    {
        let mut pairs = url.query_pairs_mut();
        for (name, value) in query {
            pairs.append_pair(name, value);
        }
        if let Some(secret) = config::optional(env, "META_APP_SECRET") {
            pairs.append_pair(
                "appsecret_proof",
                &graph_appsecret_proof(token, secret.as_bytes()),
            );
        }
    }
    let bearer = format!("Bearer {token}");
    get(url, &[("Authorization", bearer.as_str())]).await
}

/// `GET {LINKEDIN_API_BASE_URL}/{path}` with the bearer token and LinkedIn's version headers.
pub async fn linkedin_get(env: &Env, token: &str, path: &str) -> Result<Answer, NoAnswer> {
    let url = Url::parse(&format!(
        "{}/{}",
        linkedin_base_url(env),
        path.trim_start_matches('/')
    ))
    .map_err(|e| NoAnswer(format!("invalid LinkedIn URL: {e}")))?;
    let bearer = format!("Bearer {token}");
    get(
        url,
        &[
            ("Authorization", bearer.as_str()),
            ("LinkedIn-Version", LINKEDIN_VERSION),
            ("X-Restli-Protocol-Version", "2.0.0"),
        ],
    )
    .await
}

/// A path segment with everything but unreserved characters percent-encoded.
pub fn encode_segment(value: &str) -> String {
    leadheat_domain::oauth::percent_encode(value)
}

/// `GET {META_GRAPH_BASE_URL}/oauth/access_token?{query}`: Graph's token endpoint (a code for a
/// user token, or a short-lived user token for a long-lived one). The app secret travels in the
/// query, as Graph asks, on a server-to-server call.
pub async fn graph_token(env: &Env, query: &[(&str, &str)]) -> Result<Answer, NoAnswer> {
    let url = format!(
        "{}/oauth/access_token?{}",
        meta_base_url(env),
        form_encode(query)
    );
    let url = Url::parse(&url).map_err(|e| NoAnswer(format!("invalid Graph URL: {e}")))?;
    get(url, &[]).await
}

/// `POST {LINKEDIN_OAUTH_BASE_URL}/accessToken` with a form body: LinkedIn's token endpoint.
pub async fn linkedin_token(env: &Env, form: &[(&str, &str)]) -> Result<Answer, NoAnswer> {
    let url = format!("{}/accessToken", linkedin_oauth_base_url(env));
    let url = Url::parse(&url).map_err(|e| NoAnswer(format!("invalid LinkedIn URL: {e}")))?;
    send(
        Method::Post,
        url,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(form_encode(form)),
    )
    .await
}

/// LinkedIn's OAuth pages and token endpoint (`LINKEDIN_OAUTH_BASE_URL`).
pub fn linkedin_oauth_base_url(env: &Env) -> String {
    config::optional(env, "LINKEDIN_OAUTH_BASE_URL")
        .unwrap_or_else(|| DEFAULT_LINKEDIN_OAUTH_BASE_URL.to_string())
        .trim_end_matches('/')
        .to_string()
}

async fn get(url: Url, headers: &[(&str, &str)]) -> Result<Answer, NoAnswer> {
    send(Method::Get, url, headers, None).await
}

async fn send(
    method: Method,
    url: Url,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Result<Answer, NoAnswer> {
    let request_headers = Headers::new();
    request_headers
        .set("Accept", "application/json")
        .map_err(|e| NoAnswer(e.to_string()))?;
    for (name, value) in headers {
        request_headers
            .set(name, value)
            .map_err(|e| NoAnswer(e.to_string()))?;
    }
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(request_headers);
    if let Some(body) = body {
        init.with_body(Some(body.into()));
    }
    let request = Request::new_with_init(url.as_str(), &init)
        .map_err(|e| NoAnswer(format!("building the request: {e}")))?;
    let fetch = Fetch::Request(request);
    let response = with_timeout(fetch.send(), CALL_TIMEOUT)
        .await
        .ok_or_else(|| NoAnswer(format!("no answer within {}s", CALL_TIMEOUT.as_secs())))?;
    let mut response = response.map_err(|e| NoAnswer(format!("network error: {e}")))?;
    let header = |name: &str| response.headers().get(name).ok().flatten();
    let app_usage = header("X-App-Usage");
    let business_usage = header("X-Business-Use-Case-Usage");
    let retry_after = header("Retry-After");
    let status = response.status_code();
    let body = with_timeout(response.text(), CALL_TIMEOUT)
        .await
        .ok_or_else(|| NoAnswer("the answer's body did not arrive in time".to_string()))?
        .map_err(|e| NoAnswer(format!("reading the answer: {e}")))?;
    Ok(Answer {
        status,
        body,
        app_usage,
        business_usage,
        retry_after,
    })
}

/// Runs `future` for at most `timeout`; `None` when the time ran out first.
pub(crate) async fn with_timeout<T>(
    future: impl Future<Output = T>,
    timeout: Duration,
) -> Option<T> {
    let mut future = pin!(future);
    let mut delay = pin!(Delay::from(timeout));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(value) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(value));
        }
        if delay.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}
