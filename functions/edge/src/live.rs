//! Telling open sales UI pages that an org's data changed: one notice to the org's live hub (the
//! `LiveHub` Durable Object of the API worker, bound as `LIVE` in every worker that writes), which
//! passes it to the org's open WebSockets. See `leadheat_domain::live` for the protocol.
//!
//! Best effort by design: a notice is sent after the change is committed, and a failure is only
//! logged. Pages also poll `GET /v1/changes`, so a lost notice delays a refresh, never loses one.

use leadheat_domain::live::{ChangeSource, Notice};
use worker::{Env, Headers, Method, Request, RequestInit};

pub const BINDING: &str = "LIVE";
/// The hub's internal paths (reachable only through the binding, never from the internet).
pub const CONNECT_PATH: &str = "/connect";
pub const PUBLISH_PATH: &str = "/publish";
/// Carries the caller's verified [`leadheat_domain::live::Grant`] from the API worker to the hub.
pub const GRANT_HEADER: &str = "Leadheat-Live-Grant";
/// The host part of the URLs sent to the hub; it is never resolved.
pub const HUB_ORIGIN: &str = "https://live.internal";

/// The hub of `org_id`: one object per org, named by the org id.
pub fn hub(env: &Env, org_id: &str) -> worker::Result<worker::Stub> {
    env.durable_object(BINDING)?
        .id_from_name(org_id)?
        .get_stub()
}

/// Notifies the org's open pages; never fails the caller.
pub async fn publish(env: &Env, org_id: &str, source: ChangeSource, at: &str) {
    if let Err(error) = try_publish(env, org_id, source, at).await {
        worker::console_warn!("live notice for org {org_id} not sent: {error}");
    }
}

async fn try_publish(
    env: &Env,
    org_id: &str,
    source: ChangeSource,
    at: &str,
) -> worker::Result<()> {
    let notice = Notice::Changed {
        source,
        at: at.to_string(),
    };
    let headers = Headers::new();
    headers.set("Content-Type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(serde_json::to_string(&notice)?.into()));
    let request = Request::new_with_init(&format!("{HUB_ORIGIN}{PUBLISH_PATH}"), &init)?;
    let response = hub(env, org_id)?.fetch_with_request(request).await?;
    match response.status_code() {
        200..=299 => Ok(()),
        status => Err(worker::Error::RustError(format!(
            "the live hub answered {status}"
        ))),
    }
}
