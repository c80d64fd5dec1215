//! Which bearer tokens the API accepts, and the runtime half of identity-provider sign-in
//! (docs/auth.md).
//!
//! - HS256 tokens are verified with `AUTH_JWT_SECRET` (development and service tokens).
//! - RS256 and ES256 tokens are verified with the provider's keys when `AUTH_JWKS_URL` is set:
//!   the keys are fetched from it and kept in the isolate ([`JwksCache`] has the rules), and the
//!   signature is checked by the runtime's WebCrypto (`crypto.subtle.verify`).
//! - The UI's sign-in: the provider's discovery document (kept per isolate) and the relay of the
//!   code-for-token exchange ([`leadheat_domain::oidc`] says why the API relays it).
//!
//! Everything else (the header, the key's algorithm, the claims and their mapping) is the
//! domain's ([`leadheat_domain::idp`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use leadheat_domain::auth::{
    verify_token as verify_hs256, Algorithm, AuthError, Claims, TokenPolicy,
};
use leadheat_domain::idp::{
    read_token, verify_idp_token, ClaimMapping, IdpPolicy, MappingSettings, SignatureCheck,
    UnverifiedToken, VAR_AUDIENCE, VAR_CF_ACCESS, VAR_DEFAULT_ROLE, VAR_FIXED_ORG, VAR_ISSUER,
    VAR_JWKS_URL, VAR_ORG_CLAIM, VAR_ROLE_CLAIM, VAR_ROLE_MAP,
};
use leadheat_domain::jwks::{
    parse_jwks, ttl_from_cache_control, Jwk, JwksCache, MAX_JWKS_BYTES, REFETCH_COOLDOWN_SECS,
};
use leadheat_domain::oidc::{discovery_url, parse_discovery, Discovery};
use serde_json::json;
use worker::js_sys;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Env, Fetch, Headers, Method, Request, RequestInit, Url};

use crate::config;
use crate::http::Problem;
use crate::platform_api::with_timeout;

/// The header Cloudflare Access puts its signed assertion in, in front of an application.
pub const CF_ACCESS_HEADER: &str = "Cf-Access-Jwt-Assertion";
/// A JWKS fetch slower than this counts as failed.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The identity provider a deployment trusts, from its configuration.
pub struct IdpConfig {
    pub jwks_url: String,
    pub policy: IdpPolicy,
}

/// The identity provider's configuration; `None` when `AUTH_JWKS_URL` is unset (HS256 only).
/// A provider half-configured (an issuer without keys, a role map that does not parse) is a
/// deployment error: 500, with the variable named in the log.
pub fn idp_config(env: &Env) -> Result<Option<IdpConfig>, Problem> {
    let var = |name: &str| config::optional(env, name);
    let Some(jwks_url) = var(VAR_JWKS_URL) else {
        return match var(VAR_ISSUER) {
            Some(_) => Err(Problem::internal(
                "configuration",
                format!("{VAR_ISSUER} is set but {VAR_JWKS_URL} is not"),
            )),
            None => Ok(None),
        };
    };
    let issuer = config::required(env, VAR_ISSUER)?;
    let (org_claim, fixed_org, role_claim, role_map, default_role) = (
        var(VAR_ORG_CLAIM),
        var(VAR_FIXED_ORG),
        var(VAR_ROLE_CLAIM),
        var(VAR_ROLE_MAP),
        var(VAR_DEFAULT_ROLE),
    );
    let mapping = ClaimMapping::from_settings(&MappingSettings {
        org_claim: org_claim.as_deref(),
        fixed_org: fixed_org.as_deref(),
        role_claim: role_claim.as_deref(),
        role_map: role_map.as_deref(),
        default_role: default_role.as_deref(),
    })
    .map_err(|error| Problem::internal("configuration", error))?;
    Ok(Some(IdpConfig {
        jwks_url,
        policy: IdpPolicy {
            issuer,
            audience: var(VAR_AUDIENCE),
            mapping,
        },
    }))
}

/// The token a request carries: `Authorization: Bearer`, or else Cloudflare Access's assertion
/// header when `AUTH_CF_ACCESS` is `true`.
pub fn request_token(
    env: &Env,
    bearer: Option<&str>,
    cf_access_assertion: Option<&str>,
) -> Option<String> {
    if let Some(token) = bearer {
        return Some(token.to_owned());
    }
    let accepted = config::optional(env, VAR_CF_ACCESS).is_some_and(|value| value == "true");
    cf_access_assertion
        .map(str::trim)
        .filter(|token| accepted && !token.is_empty())
        .map(str::to_owned)
}

/// Verifies a bearer token by its algorithm: HS256 with `AUTH_JWT_SECRET`, RS256 and ES256 with
/// the identity provider's keys. An algorithm the deployment has no key for is refused (401).
pub async fn verify_token(env: &Env, token: &str, now_unix: i64) -> Result<Claims, Problem> {
    let idp = idp_config(env)?;
    let unverified = read_token(token).map_err(unauthorized)?;
    match (unverified.algorithm, &idp) {
        (Algorithm::Hs256, _) => {
            let secret = match (config::optional(env, "AUTH_JWT_SECRET"), &idp) {
                (Some(secret), _) => secret,
                // Sign-in through the provider only: no HS256 token is good.
                (None, Some(_)) => return Err(unauthorized(AuthError::UnsupportedAlgorithm)),
                (None, None) => config::required(env, "AUTH_JWT_SECRET")?,
            };
            let policy = TokenPolicy {
                issuer: config::optional(env, "AUTH_JWT_ISSUER"),
                audience: config::optional(env, "AUTH_JWT_AUDIENCE"),
                refused_issuer: idp.as_ref().map(|idp| idp.policy.issuer.clone()),
            };
            verify_hs256(token, secret.as_bytes(), now_unix, &policy).map_err(unauthorized)
        }
        (_, None) => Err(unauthorized(AuthError::UnsupportedAlgorithm)),
        (_, Some(idp)) => {
            let key = provider_key(&idp.jwks_url, &unverified, now_unix).await?;
            verify_idp_token(&unverified, &key, &idp.policy, now_unix, webcrypto_verify)
                .await
                .map_err(unauthorized)
        }
    }
}

/// The 401 for a refused token; its detail is safe to show (it never echoes the token).
fn unauthorized(error: AuthError) -> Problem {
    Problem::unauthorized(match error {
        AuthError::Expired => "the token has expired".to_string(),
        other => other.to_string(),
    })
}

thread_local! {
    /// Each provider's keys, by JWKS URL, for the life of the isolate.
    static KEY_SETS: RefCell<HashMap<String, JwksCache>> = RefCell::default();
}

/// Runs `f` on the cache of `url`'s keys.
fn with_cache<T>(url: &str, f: impl FnOnce(&mut JwksCache) -> T) -> T {
    KEY_SETS.with(|sets| f(sets.borrow_mut().entry(url.to_owned()).or_default()))
}

/// The key for `token`: from the cached set, fetching it first when it is due, and once more
/// (at most once per cooldown) when the token's `kid` is unknown, as after a key rotation.
/// 503 when a fetch failed and no cached key fits; 401 when the provider has no such key.
async fn provider_key(url: &str, token: &UnverifiedToken, now_unix: i64) -> Result<Jwk, Problem> {
    let find = |cache: &mut JwksCache| {
        cache
            .set()
            .and_then(|set| set.find(token.kid.as_deref(), token.algorithm))
            .cloned()
    };
    let mut fetch_failed = false;
    if with_cache(url, |cache| cache.due(now_unix)) {
        fetch_failed = !refresh(url, now_unix).await;
    }
    if let Some(key) = with_cache(url, find) {
        return Ok(key);
    }
    if with_cache(url, |cache| cache.may_refetch(now_unix)) {
        fetch_failed = !refresh(url, now_unix).await;
        if let Some(key) = with_cache(url, find) {
            return Ok(key);
        }
    }
    if fetch_failed {
        return Err(provider_unavailable(
            "the identity provider's signing keys could not be fetched; retry shortly",
        ));
    }
    Err(Problem::unauthorized(
        "the token's signing key (kid) is not one of the identity provider's keys",
    ))
}

/// Fetches the key set into the cache; `false` when that failed (the failure is logged and the
/// keys already held stay).
async fn refresh(url: &str, now_unix: i64) -> bool {
    match fetch_key_set(url).await {
        Ok((set, ttl)) => {
            with_cache(url, |cache| cache.fetched(set, ttl, now_unix));
            true
        }
        Err(error) => {
            worker::console_error!(
                "{{\"level\":\"error\",\"context\":\"jwks\",\"url\":{:?},\"error\":{:?}}}",
                url,
                error
            );
            with_cache(url, |cache| cache.failed(now_unix));
            false
        }
    }
}

async fn fetch_key_set(url: &str) -> Result<(leadheat_domain::jwks::JwkSet, i64), String> {
    let (status, body, cache_control) = send(url, Method::Get, None).await?;
    if status != 200 {
        return Err(format!("status {status}"));
    }
    let set = parse_jwks(&body).map_err(|e| e.to_string())?;
    Ok((set, ttl_from_cache_control(cache_control.as_deref())))
}

/// Checks a signature with the runtime's WebCrypto; any failure to import the key or to verify
/// counts as a bad signature (and is logged).
async fn webcrypto_verify(check: SignatureCheck<'_>) -> bool {
    match subtle_verify(check).await {
        Ok(valid) => valid,
        Err(error) => {
            worker::console_error!(
                "{{\"level\":\"error\",\"context\":\"webcrypto\",\"error\":{:?}}}",
                format!("{error:?}")
            );
            false
        }
    }
}

async fn subtle_verify(check: SignatureCheck<'_>) -> Result<bool, JsValue> {
    let (import_algorithm, verify_algorithm) = match check.algorithm {
        Algorithm::Rs256 => (
            json!({"name": "RSASSA-PKCS1-v1_5", "hash": "SHA-256"}),
            json!({"name": "RSASSA-PKCS1-v1_5"}),
        ),
        Algorithm::Es256 => (
            json!({"name": "ECDSA", "namedCurve": "P-256"}),
            json!({"name": "ECDSA", "hash": "SHA-256"}),
        ),
        Algorithm::Hs256 => return Ok(false),
    };
    let object = |value: serde_json::Value| -> Result<js_sys::Object, JsValue> {
        Ok(js_sys::JSON::parse(&value.to_string())?.unchecked_into())
    };
    let subtle = js_sys::global()
        .unchecked_into::<worker::web_sys::WorkerGlobalScope>()
        .crypto()?
        .subtle();
    let usages = js_sys::Array::of1(&JsValue::from_str("verify"));
    let key = JsFuture::from(subtle.import_key_with_object(
        "jwk",
        &object(check.key.to_jwk())?,
        &object(import_algorithm)?,
        false,
        &usages,
    )?)
    .await?;
    let valid = JsFuture::from(subtle.verify_with_object_and_u8_array_and_u8_array(
        &object(verify_algorithm)?,
        &key.unchecked_into(),
        check.signature,
        check.message,
    )?)
    .await?;
    Ok(valid.as_bool() == Some(true))
}

/// How long an isolate keeps a provider's discovery document (its endpoints rarely move).
const DISCOVERY_TTL_SECS: i64 = 60 * 60;

thread_local! {
    /// Each issuer's discovery document and when it was read.
    static DISCOVERIES: RefCell<HashMap<String, (Discovery, i64)>> = RefCell::default();
}

/// The provider's endpoints, from its discovery document (kept for an hour per isolate). 503 when
/// the document cannot be read.
pub async fn discovery(issuer: &str, now_unix: i64) -> Result<Discovery, Problem> {
    let cached = DISCOVERIES.with(|cache| {
        cache
            .borrow()
            .get(issuer)
            .filter(|(_, read_at)| now_unix.saturating_sub(*read_at) < DISCOVERY_TTL_SECS)
            .map(|(discovery, _)| discovery.clone())
    });
    if let Some(discovery) = cached {
        return Ok(discovery);
    }
    let read = async {
        let (status, body, _) = send(&discovery_url(issuer), Method::Get, None).await?;
        if status != 200 {
            return Err(format!("status {status}"));
        }
        parse_discovery(&body, issuer)
    };
    match read.await {
        Ok(discovery) => {
            DISCOVERIES.with(|cache| {
                cache
                    .borrow_mut()
                    .insert(issuer.to_owned(), (discovery.clone(), now_unix))
            });
            Ok(discovery)
        }
        Err(error) => {
            worker::console_error!(
                "{{\"level\":\"error\",\"context\":\"oidc-discovery\",\"issuer\":{:?},\"error\":{:?}}}",
                issuer,
                error
            );
            Err(provider_unavailable(
                "the identity provider's discovery document could not be read; retry shortly",
            ))
        }
    }
}

/// Posts `form` to the provider's token endpoint; the answer's status and body, or 503 when the
/// provider does not answer.
pub async fn token_exchange(
    token_endpoint: &str,
    form: &[(&str, String)],
) -> Result<(u16, Vec<u8>), Problem> {
    let mut body = Url::parse("http://form.invalid/").expect("a constant URL parses");
    body.query_pairs_mut().extend_pairs(form);
    let encoded = body.query().unwrap_or_default().to_owned();
    send(token_endpoint, Method::Post, Some(encoded))
        .await
        .map(|(status, body, _)| (status, body))
        .map_err(|error| {
            worker::console_error!(
                "{{\"level\":\"error\",\"context\":\"oidc-token\",\"error\":{:?}}}",
                error
            );
            provider_unavailable("the identity provider's token endpoint did not answer; retry")
        })
}

fn provider_unavailable(detail: &str) -> Problem {
    Problem::new(
        503,
        "identity-provider-unavailable",
        "Identity provider unavailable",
        detail,
    )
    .with_retry_after(REFETCH_COOLDOWN_SECS as u32)
}

/// One request to the provider (JSON answer expected), with [`FETCH_TIMEOUT`] for the answer and
/// its body, read up to [`MAX_JWKS_BYTES`]: the status, the body and its `Cache-Control`.
async fn send(
    url: &str,
    method: Method,
    form: Option<String>,
) -> Result<(u16, Vec<u8>, Option<String>), String> {
    let headers = Headers::new();
    headers
        .set("Accept", "application/json")
        .map_err(|e| e.to_string())?;
    let mut init = RequestInit::new();
    if let Some(form) = form {
        headers
            .set("Content-Type", "application/x-www-form-urlencoded")
            .map_err(|e| e.to_string())?;
        init.with_body(Some(JsValue::from_str(&form)));
    }
    init.with_method(method).with_headers(headers);
    let request = Request::new_with_init(url, &init).map_err(|e| format!("the URL: {e}"))?;
    let mut response = with_timeout(Fetch::Request(request).send(), FETCH_TIMEOUT)
        .await
        .ok_or("no answer in time")?
        .map_err(|e| format!("network error: {e}"))?;
    let cache_control = response.headers().get("Cache-Control").ok().flatten();
    let body = with_timeout(response.bytes(), FETCH_TIMEOUT)
        .await
        .ok_or("the body did not arrive in time")?
        .map_err(|e| format!("reading the body: {e}"))?;
    if body.len() > MAX_JWKS_BYTES {
        return Err(format!("the answer is larger than {MAX_JWKS_BYTES} bytes"));
    }
    Ok((response.status_code(), body, cache_control))
}
