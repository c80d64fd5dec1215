//! The sales UI's OpenID Connect sign-in, as far as the API takes part in it (docs/auth.md).
//!
//! The UI runs Authorization Code with PKCE (RFC 7636) as a public client: it makes the code
//! verifier, sends the browser to the provider's authorization endpoint and gets the code back.
//! The API reads the provider's discovery document (to tell the UI where to send the browser)
//! and relays the code-for-token exchange (`POST /v1/auth/token`), so the page itself only ever
//! talks to its own origin and its strict Content-Security-Policy (`connect-src 'self'`) stays
//! as it is. The relay adds nothing secret: what it sends is what the page asked, plus the
//! public client id.

use serde_json::{Map, Value};

use crate::types::FieldError;

/// The endpoints of a provider's discovery document that the sign-in uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
}

/// Where a provider publishes its discovery document (OpenID Connect Discovery 1.0, section 4).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Reads a discovery document: its `issuer` must be exactly the configured one (section 4.3),
/// and both endpoints absolute http(s) URLs.
pub fn parse_discovery(body: &[u8], issuer: &str) -> Result<Discovery, String> {
    let document: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|_| "the discovery document is not a JSON object".to_string())?;
    if document.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err("the discovery document names another issuer".to_string());
    }
    let endpoint = |name: &str| {
        document
            .get(name)
            .and_then(Value::as_str)
            .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
            .map(str::to_owned)
            .ok_or_else(|| format!("the discovery document has no {name} URL"))
    };
    Ok(Discovery {
        authorization_endpoint: endpoint("authorization_endpoint")?,
        token_endpoint: endpoint("token_endpoint")?,
    })
}

/// What the UI may ask the token endpoint for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenGrant {
    AuthorizationCode {
        code: String,
        redirect_uri: String,
        code_verifier: String,
    },
    RefreshToken {
        refresh_token: String,
    },
}

/// The longest value of any field relayed (codes and refresh tokens are far shorter).
const MAX_FIELD_LEN: usize = 4096;

/// Reads `POST /v1/auth/token`'s JSON body; every problem names its field.
pub fn parse_token_request(body: &Map<String, Value>) -> Result<TokenGrant, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut text = |name: &str| -> String {
        match body.get(name) {
            Some(Value::String(value)) if !value.is_empty() && value.len() <= MAX_FIELD_LEN => {
                value.clone()
            }
            _ => {
                errors.push(FieldError {
                    field: name.to_string(),
                    message: format!(
                        "must be a non-empty string of at most {MAX_FIELD_LEN} characters"
                    ),
                });
                String::new()
            }
        }
    };
    let grant = match body.get("grant_type").and_then(Value::as_str) {
        Some("authorization_code") => {
            let grant = TokenGrant::AuthorizationCode {
                code: text("code"),
                redirect_uri: text("redirect_uri"),
                code_verifier: text("code_verifier"),
            };
            if let TokenGrant::AuthorizationCode { code_verifier, .. } = &grant {
                if !code_verifier.is_empty() && !is_code_verifier(code_verifier) {
                    errors.push(FieldError {
                        field: "code_verifier".to_string(),
                        message: "must be 43 to 128 characters of A-Z, a-z, 0-9, -, ., _ and ~"
                            .to_string(),
                    });
                }
            }
            grant
        }
        Some("refresh_token") => TokenGrant::RefreshToken {
            refresh_token: text("refresh_token"),
        },
        _ => {
            errors.push(FieldError {
                field: "grant_type".to_string(),
                message: "must be authorization_code or refresh_token".to_string(),
            });
            return Err(errors);
        }
    };
    if errors.is_empty() {
        Ok(grant)
    } else {
        Err(errors)
    }
}

/// RFC 7636 section 4.1: 43 to 128 unreserved characters.
fn is_code_verifier(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

impl TokenGrant {
    /// The form the token endpoint receives (`application/x-www-form-urlencoded` fields).
    pub fn form(&self, client_id: &str) -> Vec<(&'static str, String)> {
        let mut form = vec![("client_id", client_id.to_owned())];
        match self {
            TokenGrant::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => form.extend([
                ("grant_type", "authorization_code".to_owned()),
                ("code", code.clone()),
                ("redirect_uri", redirect_uri.clone()),
                ("code_verifier", code_verifier.clone()),
            ]),
            TokenGrant::RefreshToken { refresh_token } => form.extend([
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", refresh_token.clone()),
            ]),
        }
        form
    }
}

/// The fields of a token endpoint's successful answer that the UI gets: the tokens and their
/// lifetime, nothing else. `None` when the answer has no access token.
pub fn token_answer(body: &[u8]) -> Option<Value> {
    let answer: Map<String, Value> = serde_json::from_slice(body).ok()?;
    answer.get("access_token")?.as_str()?;
    let kept: Map<String, Value> = answer
        .into_iter()
        .filter(|(name, _)| {
            matches!(
                name.as_str(),
                "access_token"
                    | "id_token"
                    | "refresh_token"
                    | "expires_in"
                    | "token_type"
                    | "scope"
            )
        })
        .collect();
    Some(Value::Object(kept))
}

/// A token endpoint's error answer (RFC 6749 section 5.2) as one line for the UI.
pub fn token_error(body: &[u8]) -> String {
    let answer: Map<String, Value> = serde_json::from_slice(body).unwrap_or_default();
    let text = |name: &str| answer.get(name).and_then(Value::as_str).map(str::to_owned);
    match (text("error"), text("error_description")) {
        (Some(error), Some(description)) => format!("{error}: {description}"),
        (Some(error), None) => error,
        _ => "the identity provider refused the token request".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "https://tenant.auth0.test/";

    #[test]
    fn discovery_url_has_one_slash() {
        assert_eq!(
            discovery_url(ISSUER),
            "https://tenant.auth0.test/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://clerk.test"),
            "https://clerk.test/.well-known/openid-configuration"
        );
    }

    #[test]
    fn discovery_needs_the_same_issuer_and_both_endpoints() {
        let good = json!({"issuer": ISSUER, "authorization_endpoint": "https://tenant.auth0.test/authorize",
                          "token_endpoint": "https://tenant.auth0.test/oauth/token", "jwks_uri": "x"});
        assert_eq!(
            parse_discovery(good.to_string().as_bytes(), ISSUER),
            Ok(Discovery {
                authorization_endpoint: "https://tenant.auth0.test/authorize".into(),
                token_endpoint: "https://tenant.auth0.test/oauth/token".into(),
            })
        );
        let mut other = good.clone();
        other["issuer"] = json!("https://tenant.auth0.test");
        assert!(parse_discovery(other.to_string().as_bytes(), ISSUER).is_err());
        let mut no_token = good.clone();
        no_token.as_object_mut().unwrap().remove("token_endpoint");
        assert!(parse_discovery(no_token.to_string().as_bytes(), ISSUER).is_err());
        let mut script = good;
        script["authorization_endpoint"] = json!("javascript:alert(1)");
        assert!(parse_discovery(script.to_string().as_bytes(), ISSUER).is_err());
        assert!(parse_discovery(b"[]", ISSUER).is_err());
    }

    fn request(body: Value) -> Result<TokenGrant, Vec<FieldError>> {
        parse_token_request(body.as_object().unwrap())
    }

    fn fields(result: Result<TokenGrant, Vec<FieldError>>) -> Vec<String> {
        result.unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_code_exchange_needs_code_redirect_and_a_valid_verifier() {
        let verifier = "a".repeat(43);
        let grant = request(json!({"grant_type": "authorization_code", "code": "c1",
            "redirect_uri": "http://127.0.0.1:8787/app/", "code_verifier": verifier}))
        .unwrap();
        assert_eq!(
            grant.form("leadheat-ui"),
            vec![
                ("client_id", "leadheat-ui".to_string()),
                ("grant_type", "authorization_code".to_string()),
                ("code", "c1".to_string()),
                ("redirect_uri", "http://127.0.0.1:8787/app/".to_string()),
                ("code_verifier", verifier),
            ]
        );
        assert_eq!(
            fields(request(json!({"grant_type": "authorization_code"}))),
            ["code", "redirect_uri", "code_verifier"]
        );
        for bad in ["short", &"a".repeat(129), &format!("{}!", "a".repeat(43))] {
            let result = request(json!({"grant_type": "authorization_code", "code": "c",
                "redirect_uri": "r", "code_verifier": bad}));
            assert_eq!(fields(result), ["code_verifier"], "{bad}");
        }
    }

    #[test]
    fn a_refresh_needs_its_token_and_other_grants_are_refused() {
        let grant = request(json!({"grant_type": "refresh_token", "refresh_token": "r1"})).unwrap();
        assert_eq!(
            grant.form("ui"),
            vec![
                ("client_id", "ui".to_string()),
                ("grant_type", "refresh_token".to_string()),
                ("refresh_token", "r1".to_string()),
            ]
        );
        assert_eq!(
            fields(request(
                json!({"grant_type": "refresh_token", "refresh_token": 5})
            )),
            ["refresh_token"]
        );
        for grant_type in [json!("client_credentials"), json!("password"), json!(null)] {
            assert_eq!(
                fields(request(json!({"grant_type": grant_type}))),
                ["grant_type"]
            );
        }
    }

    #[test]
    fn token_answers_keep_the_tokens_only() {
        let answer = json!({"access_token": "a", "id_token": "i", "refresh_token": "r",
            "expires_in": 300, "token_type": "Bearer", "scope": "openid", "debug": "secret stuff"});
        let kept = token_answer(answer.to_string().as_bytes()).unwrap();
        assert_eq!(
            kept,
            json!({"access_token": "a", "id_token": "i", "refresh_token": "r",
                   "expires_in": 300, "token_type": "Bearer", "scope": "openid"})
        );
        assert_eq!(token_answer(br#"{"id_token":"i"}"#), None);
        assert_eq!(token_answer(b"not json"), None);
        assert_eq!(
            token_error(br#"{"error":"invalid_grant","error_description":"PKCE check failed"}"#),
            "invalid_grant: PKCE check failed"
        );
        assert_eq!(
            token_error(b"<html>"),
            "the identity provider refused the token request"
        );
    }
}
