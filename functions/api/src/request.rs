//! A request as the API handlers see it: method, path segments, query and the body, read once
//! (with its size bounded) so idempotency can hash it and handlers can parse it.

use std::collections::HashMap;

use leadheat_edge::http::{self, Problem};
use serde::de::DeserializeOwned;
use worker::{Method, Request};

/// Largest JSON body the API accepts.
pub const MAX_API_BODY_BYTES: usize = 256 * 1024;

pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    /// `scheme://host[:port]` the request came to.
    pub origin: String,
    pub query: HashMap<String, String>,
    pub headers: worker::Headers,
    pub body: Vec<u8>,
}

impl ApiRequest {
    pub async fn read(mut req: Request) -> Result<ApiRequest, Problem> {
        let url = req.url()?;
        let method = req.method();
        let body = match method {
            Method::Get | Method::Head | Method::Options => Vec::new(),
            _ => http::read_body(&mut req, MAX_API_BODY_BYTES).await?,
        };
        Ok(ApiRequest {
            method,
            path: url.path().to_string(),
            origin: url.origin().ascii_serialization(),
            // Repeated parameters keep their last value.
            query: url.query_pairs().into_owned().collect(),
            headers: req.headers().clone(),
            body,
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).ok().flatten()
    }

    /// A query parameter, `None` when absent or empty.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The body parsed as JSON: 415 for another content type, 400 when malformed, 422 when the
    /// shape does not fit.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        let content_type = self
            .header("Content-Type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if !(media_type == "application/json" || media_type.ends_with("+json")) {
            return Err(Problem::unsupported_media_type(
                "send the body as application/json",
            ));
        }
        http::parse_json(&self.body)
    }
}
