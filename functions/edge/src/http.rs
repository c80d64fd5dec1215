//! JSON responses shared by the workers.

use serde::Serialize;
use worker::{Response, Result};

/// A JSON response with the given status.
pub fn json<T: Serialize>(status: u16, body: &T) -> Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

/// The body every health route answers with.
pub fn health() -> Result<Response> {
    json(200, &serde_json::json!({"status": "ok"}))
}
