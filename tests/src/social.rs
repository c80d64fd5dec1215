//! Helpers for the social webhook tests (`tests/tests/webhooks.rs`, `tests/tests/load.rs`): numeric
//! platform ids, RFC 3339 times, signed Meta and LinkedIn deliveries, connecting an org's accounts
//! and firing the sync reconciliation at a chosen time.

use serde_json::{json, Value};

use crate::stub::Stub;
use crate::{
    linkedin_signature, meta_signature, token, unique_suffix, unix_now, Resp, Runtime,
    LINKEDIN_CLIENT_SECRET, META_APP_SECRET,
};

/// A numeric id no other test uses (pages, users, leadgen ids).
pub fn numeric_id() -> String {
    let suffix = unique_suffix();
    let tail = &suffix[suffix.len().saturating_sub(13)..];
    u64::from_str_radix(tail, 16).unwrap().to_string()
}

/// RFC 3339 (UTC, milliseconds) of Unix seconds.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Posts a Facebook or Instagram delivery signed with the Meta app secret.
pub fn post_meta(rt: &Runtime, platform: &str, body: &Value) -> Resp {
    post_meta_bytes(rt, platform, body.to_string().as_bytes())
}

/// Posts these exact bytes as a Facebook or Instagram delivery signed with the Meta app secret.
pub fn post_meta_bytes(rt: &Runtime, platform: &str, bytes: &[u8]) -> Resp {
    rt.post(&format!("/webhooks/{platform}"))
        .header("Content-Type", "application/json")
        .header(
            "X-Hub-Signature-256",
            &meta_signature(META_APP_SECRET, bytes),
        )
        .send_bytes(bytes)
}

/// Posts a LinkedIn delivery signed with the client secret.
pub fn post_linkedin(rt: &Runtime, body: &Value) -> Resp {
    post_linkedin_bytes(rt, body.to_string().as_bytes())
}

/// Posts these exact bytes as a LinkedIn delivery signed with the client secret.
pub fn post_linkedin_bytes(rt: &Runtime, bytes: &[u8]) -> Resp {
    rt.post("/webhooks/linkedin")
        .header("Content-Type", "application/json")
        .header(
            "X-LI-Signature",
            &linkedin_signature(LINKEDIN_CLIENT_SECRET, bytes),
        )
        .send_bytes(bytes)
}

/// Connects the org's accounts of `platform` (`PUT /v1/integrations/{platform}` as an admin),
/// after making the body's token one that administers them in the shared stub platform APIs
/// (the API proves ownership through them).
pub fn connect(rt: &Runtime, org: &str, platform: &str, body: Value) -> Value {
    Stub::shared().grant_connect_body(platform, &body);
    rt.request("PUT", &format!("/v1/integrations/{platform}"))
        .bearer(&token(org, "admin"))
        .send_json(&body)
        .expect(200)
        .json()
}

/// Connects one Facebook page with the token `EAAB-token-{org}`.
pub fn connect_page(rt: &Runtime, org: &str, page: &str) {
    connect(
        rt,
        org,
        "facebook",
        json!({"page_ids": [page], "access_token": format!("EAAB-token-{org}")}),
    );
}

/// A Facebook page delivery of one entry with these `changes`.
pub fn page_event(page: &str, changes: Value) -> Value {
    json!({"object": "page", "entry": [{"id": page, "time": unix_now(), "changes": changes}]})
}

/// Fires the sync reconciliation as of `seconds_ahead` from now.
pub fn fire_sync(rt: &Runtime, seconds_ahead: i64) {
    fire_sync_at(rt, unix_now() + seconds_ahead);
}

/// Fires the sync reconciliation as of the Unix time `at`; the consumer's clock for the events it
/// enqueues is then at least `at`, so backoffs and throttles before it are over.
pub fn fire_sync_at(rt: &Runtime, at: i64) {
    let fired = rt
        .fire_cron("sync", None, Some(&rfc3339(at)))
        .expect(200)
        .json();
    assert_eq!(fired["outcome"], "ok", "{fired}");
}
