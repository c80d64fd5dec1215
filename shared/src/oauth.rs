//! Connecting platform accounts with an OAuth button instead of a pasted token (docs/connect.md).
//!
//! The flow: an admin asks to connect, the API answers the platform's authorize URL with a signed
//! `state`; the platform sends the browser back to the callback with a `code` and that `state`;
//! the server exchanges the code (with the app secret, never seen by the browser), lists the
//! accounts the person administers, keeps them for a short while as a pending connection, and the
//! admin picks among them. Picking only among listed accounts is the ownership proof.
//!
//! This module holds the pure parts: the `state` (signed, bound to org, user, platform and expiry),
//! the authorize URLs, the token answers, the candidates and the check of a pick.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::ownership::{ListedPage, UnexpectedAnswer};
use crate::signature::hmac_sha256;
use crate::types::{FieldError, Platform};

/// How long a `state` stays valid: the person has this long to finish the platform's dialog.
pub const STATE_TTL_SECONDS: i64 = 600;
// A state is a bearer of the admin's intent: never let it live longer than ten minutes.
const _: () = assert!(STATE_TTL_SECONDS <= 600);
/// How long the listed accounts wait for the admin's pick after the callback.
pub const PENDING_TTL_SECONDS: i64 = 900;
/// The label that derives the state key from the JWT secret: a key of its own, so a signed state
/// can never pass for a bearer token or the other way round.
const STATE_KEY_LABEL: &[u8] = b"leadheat oauth state v1";
/// A longer `state` is refused before any decoding.
const MAX_STATE_LEN: usize = 1024;

/// Meta's permissions for a Facebook connect: pages, their lead forms and messages.
pub const FACEBOOK_SCOPES: &str = "pages_show_list,pages_read_engagement,pages_manage_metadata,\
pages_read_user_content,pages_messaging,leads_retrieval,business_management";
/// Instagram business accounts are reached through their Facebook page, so the Facebook
/// permissions plus Instagram's own.
pub const INSTAGRAM_SCOPES: &str = "pages_show_list,pages_read_engagement,pages_manage_metadata,\
business_management,instagram_basic,instagram_manage_comments,instagram_manage_messages,\
instagram_manage_insights";
/// LinkedIn: the organisations and ad accounts the member administers, their social actions and
/// lead forms.
pub const LINKEDIN_SCOPES: &str =
    "r_organization_admin rw_organization_admin r_organization_social r_ads r_ads_leadgen_automation";

/// The key that signs states, derived from the API's JWT secret.
pub fn state_key(jwt_secret: &[u8]) -> [u8; 32] {
    let mut mac = hmac_sha256(jwt_secret);
    mac.update(STATE_KEY_LABEL);
    mac.finalize().into_bytes().into()
}

/// What a `state` carries through the platform's dialog and back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthState {
    pub org: String,
    pub sub: String,
    pub platform: String,
    /// Random, so two states of the same person never look alike.
    pub nonce: String,
    /// Unix seconds.
    pub exp: i64,
}

impl OAuthState {
    pub fn new(org: &str, sub: &str, platform: Platform, nonce: &str, now_unix: i64) -> Self {
        OAuthState {
            org: org.to_string(),
            sub: sub.to_string(),
            platform: platform.as_str().to_string(),
            nonce: nonce.to_string(),
            exp: now_unix + STATE_TTL_SECONDS,
        }
    }
}

/// Why a `state` was refused: the callback then stores nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StateError {
    #[error("the state is malformed")]
    Malformed,
    #[error("the state's signature does not match")]
    BadSignature,
    #[error("the state has expired; start the connection again")]
    Expired,
    #[error("the state was issued for another platform")]
    OtherPlatform,
}

/// `base64url(json).base64url(HMAC-SHA256(key, first part))`.
pub fn sign_state(key: &[u8], state: &OAuthState) -> String {
    let payload = serde_json::to_vec(state).expect("a state always serialises");
    let body = URL_SAFE_NO_PAD.encode(payload);
    let tag = state_tag(key, &body);
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag))
}

fn state_tag(key: &[u8], body: &str) -> [u8; 32] {
    let mut mac = hmac_sha256(key);
    mac.update(body.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Verifies a `state` (signature in constant time, then expiry and platform).
pub fn verify_state(
    key: &[u8],
    raw: &str,
    platform: Platform,
    now_unix: i64,
) -> Result<OAuthState, StateError> {
    if raw.len() > MAX_STATE_LEN {
        return Err(StateError::Malformed);
    }
    let (body, tag) = raw.split_once('.').ok_or(StateError::Malformed)?;
    let claimed = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| StateError::Malformed)?;
    let expected = state_tag(key, body);
    if claimed.len() != expected.len() || !bool::from(claimed.ct_eq(&expected)) {
        return Err(StateError::BadSignature);
    }
    let payload = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| StateError::Malformed)?;
    let state: OAuthState = serde_json::from_slice(&payload).map_err(|_| StateError::Malformed)?;
    // A state from the future beyond its lifetime was not signed by this code: refuse it too.
    if now_unix >= state.exp || state.exp - now_unix > STATE_TTL_SECONDS {
        return Err(StateError::Expired);
    }
    if state.platform != platform.as_str() {
        return Err(StateError::OtherPlatform);
    }
    Ok(state)
}

/// Percent-encodes everything but the unreserved characters (RFC 3986), for query strings, form
/// bodies and path segments alike.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `name=value&...`, each part percent-encoded.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Where the connect sends the person: Meta's login dialog (Facebook Login for Business when a
/// `config_id` is configured, which then sets the permissions; else the `scope` list), or
/// LinkedIn's authorization page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest<'a> {
    /// Meta: the dialog URL (`https://www.facebook.com/{version}/dialog/oauth`); LinkedIn: the
    /// OAuth base (`https://www.linkedin.com/oauth/v2`).
    pub base: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub state: &'a str,
    /// Meta only: the Facebook Login for Business configuration.
    pub config_id: Option<&'a str>,
}

pub fn authorize_url(platform: Platform, request: &AuthorizeRequest) -> String {
    let base = request.base.trim_end_matches('/');
    match platform {
        Platform::Linkedin => format!(
            "{base}/authorization?{}",
            form_encode(&[
                ("response_type", "code"),
                ("client_id", request.client_id),
                ("redirect_uri", request.redirect_uri),
                ("state", request.state),
                ("scope", LINKEDIN_SCOPES),
            ])
        ),
        _ => {
            let mut pairs = vec![
                ("client_id", request.client_id),
                ("redirect_uri", request.redirect_uri),
                ("state", request.state),
                ("response_type", "code"),
            ];
            match request.config_id {
                Some(config_id) => pairs.push(("config_id", config_id)),
                None if platform == Platform::Instagram => pairs.push(("scope", INSTAGRAM_SCOPES)),
                None => pairs.push(("scope", FACEBOOK_SCOPES)),
            }
            format!("{base}?{}", form_encode(&pairs))
        }
    }
}

/// An access token a platform issued for a code (or in exchange for a short-lived one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: Option<i64>,
}

/// The token endpoint's answer: Graph `oauth/access_token` and LinkedIn `oauth/v2/accessToken`
/// both answer `{"access_token", "expires_in", ...}`.
pub fn parse_issued_token(body: &str) -> Result<IssuedToken, UnexpectedAnswer> {
    let value: Value = serde_json::from_str(body)
        .map_err(|_| UnexpectedAnswer("token endpoint: not JSON".to_string()))?;
    let access_token = value
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.len() <= 4096)
        .ok_or_else(|| UnexpectedAnswer("token endpoint: no access_token".to_string()))?;
    Ok(IssuedToken {
        access_token: access_token.to_string(),
        expires_in: value.get("expires_in").and_then(Value::as_i64),
    })
}

/// An account the admin may pick: never carries a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The request field that lists it (`page_ids`, `account_ids`, `organization_ids`,
    /// `sponsored_account_ids`).
    pub field: String,
    pub id: String,
    pub name: Option<String>,
    /// Meta: the page the account is reached through (a page's own id for a page).
    pub page_id: Option<String>,
}

/// What the pending connection keeps sealed: the person's token and the page tokens Graph derived.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSecrets {
    pub user_token: String,
    /// Page id → page token.
    pub page_tokens: BTreeMap<String, String>,
}

/// Facebook pages, or the Instagram business accounts of those pages, from a `me/accounts`
/// listing; and the page tokens to keep sealed.
pub fn meta_candidates(
    platform: Platform,
    pages: &[ListedPage],
) -> (Vec<Candidate>, BTreeMap<String, String>) {
    let mut candidates = Vec::new();
    let mut page_tokens = BTreeMap::new();
    for listed in pages {
        let page_id = listed.page.id.clone();
        let candidate = match platform {
            Platform::Instagram => {
                let Some(account) = &listed.page.instagram_business_account else {
                    continue;
                };
                Candidate {
                    field: "account_ids".to_string(),
                    id: account.clone(),
                    name: listed.instagram_username.clone().or_else(|| {
                        listed
                            .name
                            .as_ref()
                            .map(|page| format!("Instagram account of {page}"))
                    }),
                    page_id: Some(page_id.clone()),
                }
            }
            _ => Candidate {
                field: "page_ids".to_string(),
                id: page_id.clone(),
                name: listed.name.clone(),
                page_id: Some(page_id.clone()),
            },
        };
        if candidates.iter().any(|c: &Candidate| c.id == candidate.id) {
            continue;
        }
        if let Some(token) = &listed.access_token {
            page_tokens.insert(page_id, token.clone());
        }
        candidates.push(candidate);
    }
    (candidates, page_tokens)
}

/// LinkedIn organisations and sponsored accounts (the ids the ownership listings granted).
pub fn linkedin_candidates(organizations: &[String], ad_accounts: &[String]) -> Vec<Candidate> {
    let entry = |field: &str, id: &String| Candidate {
        field: field.to_string(),
        id: id.clone(),
        name: None,
        page_id: None,
    };
    let mut candidates: Vec<Candidate> = Vec::new();
    for candidate in organizations
        .iter()
        .map(|id| entry("organization_ids", id))
        .chain(
            ad_accounts
                .iter()
                .map(|id| entry("sponsored_account_ids", id)),
        )
    {
        if !candidates.contains(&candidate) {
            candidates.push(candidate);
        }
    }
    candidates
}

/// The picked accounts that were not listed, each named by its place in the request
/// (`page_ids[1]`): connecting them would skip the ownership proof.
pub fn unlisted_picks(candidates: &[Candidate], picked: &[(&str, String)]) -> Vec<FieldError> {
    let mut positions: BTreeMap<&str, usize> = BTreeMap::new();
    let mut errors = Vec::new();
    for (field, id) in picked {
        let position = positions.entry(field).or_insert(0);
        let listed = candidates.iter().any(|c| c.field == *field && c.id == *id);
        if !listed {
            errors.push(FieldError::new(
                format!("{field}[{position}]"),
                format!("{id} is not among the accounts this connection listed; pick one of them"),
            ));
        }
        *position += 1;
    }
    errors
}

/// The token the integration keeps for a pick. Meta: when every picked account is reached through
/// one page, that page's token (it speaks for the page and, derived from a long-lived user token,
/// does not expire); for several pages the long-lived user token, which reaches them all.
/// LinkedIn: the member's token.
pub fn connection_token<'a>(
    candidates: &[Candidate],
    picked: &[(&str, String)],
    secrets: &'a PendingSecrets,
) -> &'a str {
    let mut pages: Vec<&str> = picked
        .iter()
        .filter_map(|(field, id)| {
            candidates
                .iter()
                .find(|c| c.field == *field && c.id == *id)
                .and_then(|c| c.page_id.as_deref())
        })
        .collect();
    pages.sort_unstable();
    pages.dedup();
    match pages.as_slice() {
        [page] => secrets
            .page_tokens
            .get(*page)
            .map_or(secrets.user_token.as_str(), String::as_str),
        _ => &secrets.user_token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::graph_listed_pages;

    const KEY: &[u8] = b"state-key";
    const NOW: i64 = 1_780_000_000;

    fn signed(platform: Platform) -> String {
        sign_state(KEY, &OAuthState::new("acme", "u1", platform, "n1", NOW))
    }

    #[test]
    fn a_signed_state_verifies_within_its_lifetime_for_its_platform() {
        let raw = signed(Platform::Facebook);
        let state = verify_state(KEY, &raw, Platform::Facebook, NOW + 30).unwrap();
        assert_eq!(
            (state.org.as_str(), state.sub.as_str()),
            ("acme", "u1"),
            "org and user travel in the state"
        );
        assert_eq!(state.exp, NOW + STATE_TTL_SECONDS);
    }

    #[test]
    fn expired_tampered_foreign_and_other_platform_states_are_refused() {
        let raw = signed(Platform::Facebook);
        assert_eq!(
            verify_state(KEY, &raw, Platform::Facebook, NOW + STATE_TTL_SECONDS),
            Err(StateError::Expired)
        );
        assert_eq!(
            verify_state(KEY, &raw, Platform::Linkedin, NOW),
            Err(StateError::OtherPlatform)
        );
        assert_eq!(
            verify_state(b"another key", &raw, Platform::Facebook, NOW),
            Err(StateError::BadSignature)
        );
        // Another org in the payload, the old signature kept.
        let (_, tag) = raw.split_once('.').unwrap();
        let forged = OAuthState::new("evil", "u1", Platform::Facebook, "n1", NOW);
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            verify_state(
                KEY,
                &format!("{forged_body}.{tag}"),
                Platform::Facebook,
                NOW
            ),
            Err(StateError::BadSignature)
        );
        for junk in ["", "abc", "a.b.c", "!!.??", &"x".repeat(2000)] {
            assert!(
                verify_state(KEY, junk, Platform::Facebook, NOW).is_err(),
                "{junk}"
            );
        }
        // Signed with a lifetime beyond ours: not one we issued.
        let mut long = OAuthState::new("acme", "u1", Platform::Facebook, "n", NOW);
        long.exp = NOW + 86_400;
        assert_eq!(
            verify_state(KEY, &sign_state(KEY, &long), Platform::Facebook, NOW),
            Err(StateError::Expired)
        );
    }

    #[test]
    fn the_state_key_is_derived_apart_from_the_jwt_secret() {
        let key = state_key(b"jwt-secret");
        assert_ne!(&key[..], b"jwt-secret");
        assert_eq!(key, state_key(b"jwt-secret"));
        assert_ne!(key, state_key(b"other-secret"));
    }

    #[test]
    fn authorize_urls_carry_client_redirect_state_and_permissions() {
        let request = AuthorizeRequest {
            base: "https://www.facebook.com/v25.0/dialog/oauth",
            client_id: "123",
            redirect_uri: "https://app.example/v1/integrations/facebook/callback",
            state: "s.t",
            config_id: None,
        };
        let url = authorize_url(Platform::Facebook, &request);
        assert!(url.starts_with("https://www.facebook.com/v25.0/dialog/oauth?client_id=123&"));
        assert!(url.contains(
            "redirect_uri=https%3A%2F%2Fapp.example%2Fv1%2Fintegrations%2Ffacebook%2Fcallback"
        ));
        assert!(url.contains("state=s.t&response_type=code&scope=pages_show_list%2C"));
        assert!(url.contains("leads_retrieval"));
        let instagram = authorize_url(Platform::Instagram, &request);
        assert!(instagram.contains("instagram_manage_comments"));
        let business = authorize_url(
            Platform::Facebook,
            &AuthorizeRequest {
                config_id: Some("cfg9"),
                ..request.clone()
            },
        );
        assert!(business.ends_with("&config_id=cfg9") && !business.contains("scope="));
        let linkedin = authorize_url(
            Platform::Linkedin,
            &AuthorizeRequest {
                base: "https://www.linkedin.com/oauth/v2/",
                ..request
            },
        );
        assert!(linkedin.starts_with(
            "https://www.linkedin.com/oauth/v2/authorization?response_type=code&client_id=123&"
        ));
        assert!(linkedin.contains("scope=r_organization_admin%20rw_organization_admin"));
    }

    #[test]
    fn token_answers_are_read_and_errors_refused() {
        let token = parse_issued_token(
            r#"{"access_token":"EAAB","token_type":"bearer","expires_in":5183944}"#,
        )
        .unwrap();
        assert_eq!(token.access_token, "EAAB");
        assert_eq!(token.expires_in, Some(5_183_944));
        assert!(parse_issued_token(r#"{"error":{"code":100}}"#).is_err());
        assert!(parse_issued_token(r#"{"access_token":""}"#).is_err());
        assert!(parse_issued_token("<html>").is_err());
    }

    fn listing() -> Vec<ListedPage> {
        let body = r#"{"data":[
            {"id":"p1","name":"Shop","access_token":"pt1","instagram_business_account":{"id":"ig1","username":"shop"}},
            {"id":"p2","name":"Blog","access_token":"pt2"}
        ]}"#;
        graph_listed_pages(body).unwrap().0
    }

    #[test]
    fn meta_candidates_are_pages_or_their_instagram_accounts_without_tokens() {
        let (pages, tokens) = meta_candidates(Platform::Facebook, &listing());
        assert_eq!(
            pages.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["p1", "p2"]
        );
        assert_eq!(pages[0].name.as_deref(), Some("Shop"));
        assert_eq!(tokens.get("p2").map(String::as_str), Some("pt2"));
        let serialized = serde_json::to_string(&pages).unwrap();
        assert!(!serialized.contains("pt1"), "candidates never carry tokens");
        let (accounts, tokens) = meta_candidates(Platform::Instagram, &listing());
        assert_eq!(accounts.len(), 1);
        assert_eq!(
            (accounts[0].field.as_str(), accounts[0].id.as_str()),
            ("account_ids", "ig1")
        );
        assert_eq!(accounts[0].name.as_deref(), Some("shop"));
        assert_eq!(accounts[0].page_id.as_deref(), Some("p1"));
        assert!(!tokens.contains_key("p2"), "only the pages offered");
    }

    #[test]
    fn a_pick_outside_the_listing_is_named_by_its_place() {
        let (candidates, _) = meta_candidates(Platform::Facebook, &listing());
        let picked = vec![
            ("page_ids", "p1".to_string()),
            ("page_ids", "p9".to_string()),
        ];
        let errors = unlisted_picks(&candidates, &picked);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "page_ids[1]");
        assert!(unlisted_picks(&candidates, &picked[..1]).is_empty());
        // The right id under the wrong field is not listed either.
        assert_eq!(
            unlisted_picks(&candidates, &[("account_ids", "p1".to_string())]).len(),
            1
        );
    }

    #[test]
    fn one_page_keeps_its_page_token_several_keep_the_user_token() {
        let (candidates, page_tokens) = meta_candidates(Platform::Facebook, &listing());
        let secrets = PendingSecrets {
            user_token: "user".to_string(),
            page_tokens,
        };
        let one = [("page_ids", "p2".to_string())];
        assert_eq!(connection_token(&candidates, &one, &secrets), "pt2");
        let both = [
            ("page_ids", "p1".to_string()),
            ("page_ids", "p2".to_string()),
        ];
        assert_eq!(connection_token(&candidates, &both, &secrets), "user");
        let (accounts, _) = meta_candidates(Platform::Instagram, &listing());
        let ig = [("account_ids", "ig1".to_string())];
        assert_eq!(connection_token(&accounts, &ig, &secrets), "pt1");
        let linkedin = linkedin_candidates(&["o1".to_string()], &["a1".to_string()]);
        let picked = [("organization_ids", "o1".to_string())];
        assert_eq!(connection_token(&linkedin, &picked, &secrets), "user");
    }

    #[test]
    fn linkedin_candidates_list_organizations_then_ad_accounts_once() {
        let candidates =
            linkedin_candidates(&["o1".to_string(), "o1".to_string()], &["a1".to_string()]);
        assert_eq!(
            candidates
                .iter()
                .map(|c| (c.field.as_str(), c.id.as_str()))
                .collect::<Vec<_>>(),
            [("organization_ids", "o1"), ("sponsored_account_ids", "a1")]
        );
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("a b/c?d=é~"), "a%20b%2Fc%3Fd%3D%C3%A9~");
        assert_eq!(form_encode(&[("a", "1 2"), ("b&", "x")]), "a=1%202&b%26=x");
    }
}
