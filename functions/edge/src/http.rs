//! HTTP conventions every worker shares: RFC 9457 problem+json errors, bounded JSON bodies, CORS.

use leadheat_domain::types::FieldError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use worker::{Headers, Request, Response, Result};

use crate::db::StoreError;

/// The base of every problem `type` URI; the slug after it is stable and documented in the README.
pub const PROBLEM_BASE: &str = "https://leadheat.dev/problems/";

/// Default cap on request bodies; routes that need more or less pass their own.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// An RFC 9457 problem: the one error shape of every Leadheat response.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub status: u16,
    /// Stable slug, e.g. `validation`, appended to [`PROBLEM_BASE`].
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// The offending fields of a validation problem.
    pub errors: Vec<FieldError>,
    /// Seconds for the `Retry-After` header (429 and 503 answers).
    pub retry_after_secs: Option<u32>,
}

impl Problem {
    pub fn new(
        status: u16,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            status,
            slug,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
        }
    }

    /// Adds `Retry-After: <seconds>` to the answer.
    pub fn with_retry_after(self, seconds: u32) -> Problem {
        Problem {
            retry_after_secs: Some(seconds),
            ..self
        }
    }

    /// Names the offending fields of a problem other than a validation one (e.g. a 409).
    pub fn with_errors(self, errors: Vec<FieldError>) -> Problem {
        Problem { errors, ..self }
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(400, "bad-request", "Bad request", detail)
    }

    pub fn malformed_json(detail: impl Into<String>) -> Problem {
        Problem::new(400, "malformed-json", "Malformed JSON body", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(401, "unauthorized", "Authentication required", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(403, "forbidden", "Not allowed", detail)
    }

    /// 403 naming each account (field by field) the caller did not show it administers.
    pub fn ownership_not_proven(errors: Vec<FieldError>, detail: impl Into<String>) -> Problem {
        Problem::new(403, "ownership-not-proven", "Ownership not proven", detail)
            .with_errors(errors)
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(404, "not-found", "Not found", detail)
    }

    pub fn method_not_allowed(detail: impl Into<String>) -> Problem {
        Problem::new(405, "method-not-allowed", "Method not allowed", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(409, "conflict", "Conflict", detail)
    }

    pub fn precondition_failed(detail: impl Into<String>) -> Problem {
        Problem::new(412, "precondition-failed", "Precondition failed", detail)
    }

    pub fn payload_too_large(limit: usize) -> Problem {
        Problem::new(
            413,
            "payload-too-large",
            "Payload too large",
            format!("the body exceeds {limit} bytes"),
        )
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Problem {
        Problem::new(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            detail,
        )
    }

    pub fn too_many_requests(detail: impl Into<String>) -> Problem {
        Problem::new(429, "rate-limited", "Too many requests", detail)
    }

    /// 422 naming every offending field.
    pub fn validation(errors: Vec<FieldError>) -> Problem {
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        let detail = format!("invalid fields: {}", fields.join(", "));
        Problem {
            errors,
            ..Problem::new(422, "validation", "Validation failed", detail)
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> Problem {
        Problem::validation(vec![FieldError {
            field: field.to_string(),
            message: message.into(),
        }])
    }

    /// A failure of ours. The detail is generic on purpose: SQL and stack traces stay in the log.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Problem {
        worker::console_error!(
            "{{\"level\":\"error\",\"context\":{:?},\"error\":{:?}}}",
            context,
            error.to_string()
        );
        Problem::new(
            500,
            "internal",
            "Internal error",
            "an internal error occurred; it has been logged",
        )
    }

    pub fn body(&self) -> Value {
        let mut body = json!({
            "type": format!("{PROBLEM_BASE}{}", self.slug),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        });
        if !self.errors.is_empty() {
            body["errors"] = json!(self
                .errors
                .iter()
                .map(|e| json!({"field": e.field, "message": e.message}))
                .collect::<Vec<_>>());
        }
        body
    }

    pub fn into_response(self) -> Result<Response> {
        let mut response = Response::from_json(&self.body())?.with_status(self.status);
        response
            .headers_mut()
            .set("Content-Type", "application/problem+json")?;
        if let Some(seconds) = self.retry_after_secs {
            response
                .headers_mut()
                .set("Retry-After", &seconds.to_string())?;
        }
        Ok(response)
    }
}

/// Seconds a client waits before retrying a request for an org in the middle of a shard move.
const ORG_MOVING_RETRY_SECS: u32 = 5;

/// The HTTP answer to each store outcome.
impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Problem {
        match error {
            StoreError::NotFound(what) => Problem::not_found(what),
            StoreError::Conflict(what) => Problem::conflict(what),
            StoreError::Invalid { field, message } => Problem::field(&field, message),
            StoreError::OrgMoving { .. } => Problem::new(
                503,
                "org-moving",
                "Organisation is moving",
                "this organisation's data is being moved to another database; retry in a few seconds",
            )
            .with_retry_after(ORG_MOVING_RETRY_SECS),
            StoreError::Backend { context, detail } => Problem::internal(&context, detail),
        }
    }
}

impl From<worker::Error> for Problem {
    fn from(error: worker::Error) -> Problem {
        Problem::internal("runtime", error)
    }
}

/// Turns a handler's outcome into the response: problems become problem+json.
pub fn respond(outcome: std::result::Result<Response, Problem>) -> Result<Response> {
    match outcome {
        Ok(response) => Ok(response),
        Err(problem) => problem.into_response(),
    }
}

/// A JSON response with the given status.
pub fn json<T: Serialize>(status: u16, body: &T) -> std::result::Result<Response, Problem> {
    Ok(Response::from_json(body)?.with_status(status))
}

/// A score as JSON: whole numbers as integers (`16`, not `16.0`), like the lead JSON.
pub fn compact_number(value: f64) -> Value {
    // The domain's serializer is the one rule for this; the value serializer cannot fail on a
    // number, so the fallback is never taken.
    leadheat_domain::types::serialize_compact_f64(&value, serde_json::value::Serializer)
        .unwrap_or(Value::Null)
}

/// 204 No Content.
pub fn no_content() -> std::result::Result<Response, Problem> {
    Ok(Response::empty()?.with_status(204))
}

/// The body every health route answers with.
pub fn health() -> Result<Response> {
    Response::from_json(&json!({"status": "ok"}))
}

/// Reads the raw body, refusing more than `limit` bytes with 413. A declared `Content-Length` is
/// checked before anything is read (the runtime holds the body to it); a body without one
/// (`Transfer-Encoding: chunked`) is read chunk by chunk and reading stops, with 413, as soon as
/// it passes the limit, so an endless upload costs at most `limit` bytes of memory.
pub async fn read_body(req: &mut Request, limit: usize) -> std::result::Result<Vec<u8>, Problem> {
    let declared = req
        .headers()
        .get("Content-Length")?
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => Err(Problem::payload_too_large(limit)),
        Some(_) => {
            let bytes = req.bytes().await?;
            if bytes.len() > limit {
                return Err(Problem::payload_too_large(limit));
            }
            Ok(bytes)
        }
        None => read_stream_capped(req, limit).await,
    }
}

/// Reads a body of unknown length until its end or until it passes `limit` (then cancels the
/// rest of the upload and answers 413).
async fn read_stream_capped(
    req: &mut Request,
    limit: usize,
) -> std::result::Result<Vec<u8>, Problem> {
    use worker::wasm_bindgen::JsCast;
    use worker::wasm_bindgen_futures::JsFuture;
    use worker::web_sys::ReadableStreamDefaultReader;

    let Some(stream) = req.inner().body() else {
        return Ok(Vec::new());
    };
    let reader = ReadableStreamDefaultReader::new(&stream)
        .map_err(|e| Problem::internal("request body reader", format!("{e:?}")))?;
    let mut body = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| {
            Problem::bad_request(format!("the request body could not be read: {e:?}"))
        })?;
        let done = worker::js_sys::Reflect::get(&chunk, &"done".into())
            .map(|v| v.is_truthy())
            .unwrap_or(true);
        if done {
            return Ok(body);
        }
        let value = worker::js_sys::Reflect::get(&chunk, &"value".into())
            .ok()
            .and_then(|v| v.dyn_into::<worker::js_sys::Uint8Array>().ok());
        let Some(bytes) = value else {
            continue;
        };
        if body.len() + bytes.length() as usize > limit {
            // Stops the upload; not awaited, so the answer does not wait for the client.
            let _ = reader.cancel();
            return Err(Problem::payload_too_large(limit));
        }
        let start = body.len();
        body.resize(start + bytes.length() as usize, 0);
        bytes.copy_to(&mut body[start..]);
    }
}

/// Parses JSON bytes into `T`, mapping serde's errors to a 400 (syntax) or 422 (shape) problem.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, Problem> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Problem::malformed_json(format!("the body is not valid JSON: {e}")))?;
    serde_json::from_value(value).map_err(|e| Problem::field("body", e.to_string()))
}

/// CORS headers for browser callers. The API is bearer-token authenticated (no cookies), so any
/// origin may call it; credentials are never allowed.
pub fn add_cors(headers: &Headers) -> Result<()> {
    headers.set("Access-Control-Allow-Origin", "*")?;
    headers.set(
        "Access-Control-Allow-Methods",
        "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    )?;
    headers.set(
        "Access-Control-Allow-Headers",
        "Authorization, Content-Type, Idempotency-Key, If-Match",
    )?;
    headers.set(
        "Access-Control-Expose-Headers",
        "ETag, Location, Idempotent-Replayed, Leadheat-Match",
    )?;
    headers.set("Access-Control-Max-Age", "86400")?;
    Ok(())
}

/// The variable that turns on [`add_server_timing`]: `on` in development and tests, unset (off)
/// in production, where a response has no business describing the database's work.
pub const SERVER_TIMING_VAR: &str = "DEV_SERVER_TIMING";

/// Reports an invocation's D1 usage in a `Server-Timing` header, as two metrics whose
/// descriptions are counts: `d1-queries;desc="5", d1-rows-read;desc="12"`.
pub fn add_server_timing(headers: &Headers, usage: &crate::db::Usage) -> Result<()> {
    headers.set(
        "Server-Timing",
        &format!(
            "d1-queries;desc=\"{}\", d1-rows-read;desc=\"{}\"",
            usage.queries(),
            usage.rows_read()
        ),
    )
}
