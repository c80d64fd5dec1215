//! Security suite: privacy. The public tracking endpoint may only fill or create (never
//! overwrite), earns a form's points once a day, caps the leads a site key creates and attributes
//! a long anonymous history in bounded D1 queries; the nightly sweep keeps tracking rows and
//! idempotency keys no longer than documented; an erasure removes the person's traces (stored
//! responses, tracking rows, raw webhook payloads) and stays erased against older events; a
//! LinkedIn DELETED lead action erases what its form supplied; idempotency keys are per user.

use std::time::Duration;

use leadheat_e2e::runner::E2eTest;
use leadheat_e2e::social::{
    connect, connect_page, numeric_id, page_event, post_linkedin, post_meta, rfc3339,
};
use leadheat_e2e::stub::{Mode, Stub};
use leadheat_e2e::{token, unique_org, unique_suffix, unix_now, Resp, Runtime};
use rusqlite::OptionalExtension;
use serde_json::{json, Value};

use super::track;

pub const TESTS: &[E2eTest] = &[
    (
        "privacy_tracking_never_overwrites_an_existing_lead",
        tracking_never_overwrites_an_existing_lead,
    ),
    (
        "privacy_tracking_form_points_count_once_per_type_and_day",
        tracking_form_points_count_once_per_type_and_day,
    ),
    (
        "privacy_tracking_caps_new_leads_per_site_key_and_minute",
        tracking_caps_new_leads_per_site_key_and_minute,
    ),
    (
        "privacy_identifying_after_500_spaced_views_is_bounded_and_attributed",
        identifying_after_500_spaced_views_is_bounded_and_attributed,
    ),
    (
        "privacy_nightly_sweep_prunes_tracking_rows_and_expired_idempotency_keys",
        nightly_sweep_prunes_tracking_rows_and_expired_idempotency_keys,
    ),
    (
        "privacy_an_older_event_cannot_recreate_an_erased_lead_but_a_newer_one_can",
        an_older_event_cannot_recreate_an_erased_lead_but_a_newer_one_can,
    ),
    (
        "privacy_erasure_removes_stored_responses_tracking_rows_and_inbox_payloads",
        erasure_removes_stored_responses_tracking_rows_and_inbox_payloads,
    ),
    (
        "privacy_linkedin_deleted_lead_action_erases_the_form_fields",
        linkedin_deleted_lead_action_erases_the_form_fields,
    ),
    (
        "privacy_a_viewer_cannot_replay_an_admins_idempotency_key",
        a_viewer_cannot_replay_an_admins_idempotency_key,
    ),
];

const WAIT: Duration = Duration::from_secs(60);
const NIGHTLY: &str = "5 0 * * *";

// ---------------------------------------------------------------------------------------------
// Helpers

fn site_key(rt: &Runtime, admin: &str) -> String {
    rt.get("/v1/tracking")
        .bearer(admin)
        .send_empty()
        .expect(200)
        .json()["site_key"]
        .as_str()
        .unwrap()
        .to_string()
}

fn rotate_site_key(rt: &Runtime, admin: &str) -> String {
    rt.post("/v1/tracking/rotate")
        .bearer(admin)
        .send_json(&json!({}))
        .expect(200)
        .json()["site_key"]
        .as_str()
        .unwrap()
        .to_string()
}

fn get_lead(rt: &Runtime, org: &str, id: &str) -> Value {
    rt.get(&format!("/v1/leads/{id}"))
        .bearer(&token(org, "viewer"))
        .send_empty()
        .expect(200)
        .json()
}

fn create_lead(rt: &Runtime, org: &str, body: &Value) -> Value {
    rt.post("/v1/leads")
        .bearer(&token(org, "admin"))
        .send_json(body)
        .expect(201)
        .json()
}

/// A count over every shard (the rows of one org are on its shard, and no trace of an erased
/// person may be on any); `?1` is bound to `param`.
fn count(rt: &Runtime, sql: &str, param: &str) -> i64 {
    rt.query_shards(sql, [param], |row| row.get::<_, i64>(0))
        .into_iter()
        .sum()
}

fn lead_id_by_email(rt: &Runtime, org: &str, email: &str) -> Option<String> {
    rt.org_db(org)
        .query_row(
            "SELECT id FROM leads WHERE org_id = ?1 AND email_normalized = ?2",
            [org, email],
            |row| row.get(0),
        )
        .optional()
        .unwrap()
}

fn lead_id_by_profile(rt: &Runtime, org: &str, platform: &str, user: &str) -> Option<String> {
    rt.org_db(org)
        .query_row(
            "SELECT lead_id FROM social_profiles WHERE org_id = ?1 AND platform = ?2 AND platform_user_id = ?3",
            [org, platform, user],
            |row| row.get(0),
        )
        .optional()
        .unwrap()
}

/// (status, body) of every inbox row of an account, oldest first (an unrouted delivery, for an
/// account no org connected, is `ignored` with no body kept: "").
fn inbox_rows(rt: &Runtime, account: &str) -> Vec<(String, String)> {
    rt.inbox_rows(account)
        .into_iter()
        .map(|row| (row.status, row.body.unwrap_or_default()))
        .collect()
}

fn wait_inbox(
    rt: &Runtime,
    account: &str,
    what: &str,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    rt.wait_for(what, WAIT, || {
        let rows = inbox_rows(rt, account);
        (!rows.is_empty() && done(&rows)).then_some(rows)
    })
}

fn settled(rows: &[(String, String)]) -> bool {
    rows.iter()
        .all(|(status, _)| matches!(status.as_str(), "processed" | "ignored" | "dead"))
}

/// A Facebook comment by `user` on the page, dated `created` (Unix seconds); the delivery's
/// `entry.time` is `envelope_time`, so the same comment can arrive in other bytes.
fn comment_delivery(
    page: &str,
    user: &str,
    comment_id: &str,
    created: i64,
    envelope_time: i64,
) -> Value {
    let mut body = page_event(
        page,
        json!([{"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": format!("{page}_1"),
            "comment_id": comment_id, "message": "How much is it?", "from": {"id": user, "name": "Grace Hopper"},
            "created_time": created}}]),
    );
    body["entry"][0]["time"] = json!(envelope_time);
    body
}

/// The JSON of the runtime's first log line containing every one of `needles`.
fn log_line(rt: &Runtime, needles: &[&str]) -> Option<Value> {
    rt.log()
        .lines()
        .filter(|line| needles.iter().all(|n| line.contains(n)))
        .find_map(|line| serde_json::from_str(&line[line.find('{')?..]).ok())
}

fn assert_rate_limited(resp: &Resp, context: &str) {
    assert_eq!(resp.status, 429, "{context}: {}", resp.body);
    assert!(
        resp.header("Content-Type")
            .is_some_and(|t| t.starts_with("application/problem+json")),
        "{context}: {:?}",
        resp.headers
    );
    let body = resp.json();
    assert!(
        body["type"].as_str().unwrap().ends_with("rate-limited"),
        "{context}: {body}"
    );
    let retry: i64 = resp
        .header("Retry-After")
        .unwrap_or_else(|| panic!("{context}: no Retry-After: {:?}", resp.headers))
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{context}: Retry-After {retry}");
}

// ---------------------------------------------------------------------------------------------
// Tracking

/// Anyone can post to the tracking endpoint: an event naming an existing lead's email fills only
/// what the lead lacks, and neither it nor the visitor's later anonymous events change anything
/// the lead has (its source detail included).
fn tracking_never_overwrites_an_existing_lead(rt: &Runtime) {
    let org = unique_org("priv-fill");
    let admin = token(&org, "admin");
    let key = site_key(rt, &admin);
    let email = format!("ada.{}@example.com", unique_suffix());
    let lead = create_lead(
        rt,
        &org,
        &json!({"first_name": "Ada", "last_name": "Lovelace", "email": email, "phone": "+44 20 7946 0001",
                "company": "Analytical Engines", "source": "referral", "source_detail": {"campaign": "spring"}}),
    );
    let id = lead["id"].as_str().unwrap();
    let visitor = format!("v-fill-{}", unique_suffix());
    let accepted = track(
        rt,
        &key,
        &json!({"visitor_id": visitor, "type": "info_request", "url": "https://evil.test/form",
                "identity": {"email": email.to_uppercase(), "first_name": "Mallory", "last_name": "Evil",
                             "company": "Evil Corp", "phone": "+1 415 555 0199"}}),
    )
    .expect(202)
    .json();
    assert_eq!(accepted["identified"], true);
    for event in [
        json!({"visitor_id": visitor, "type": "page_view", "url": "https://evil.test/"}),
        json!({"visitor_id": visitor, "type": "price_quote"}),
    ] {
        track(rt, &key, &event).expect(202);
    }

    let after = get_lead(rt, &org, id);
    for field in [
        "first_name",
        "last_name",
        "email",
        "phone",
        "company",
        "source",
        "source_detail",
    ] {
        assert_eq!(after[field], lead[field], "{field} changed: {after}");
    }
    // What the lead lacked is filled: the title was empty and stays empty (the form had none).
    assert_eq!(after["title"], Value::Null);
    // The touchpoints were recorded on the lead all the same.
    assert_eq!(
        count(
            rt,
            "SELECT count(*) FROM interactions WHERE lead_id = ?1 AND captured_by = 'tracking'",
            id
        ),
        3,
        "info_request, website_visit, price_quote"
    );

    // A lead that lacks a company gets it filled, and nothing else of it changes.
    let bare_email = format!("bare.{}@example.com", unique_suffix());
    let bare = create_lead(rt, &org, &json!({"first_name": "Bo", "email": bare_email}));
    track(
        rt,
        &key,
        &json!({"visitor_id": format!("{visitor}-2"), "type": "page_view",
                "identity": {"email": bare_email, "first_name": "Mallory", "company": "Filled Ltd"}}),
    )
    .expect(202);
    let filled = get_lead(rt, &org, bare["id"].as_str().unwrap());
    assert_eq!(filled["company"], "Filled Ltd");
    assert_eq!(filled["first_name"], "Bo");
    assert_eq!(filled["source_detail"], bare["source_detail"]);
}

/// A second `info_request` (or `price_quote`) of the same lead the same UTC day adds no points.
fn tracking_form_points_count_once_per_type_and_day(rt: &Runtime) {
    let org = unique_org("priv-once");
    let key = site_key(rt, &token(&org, "admin"));
    let email = format!("once.{}@example.com", unique_suffix());
    let visitor = format!("v-once-{}", unique_suffix());
    let identified =
        json!({"visitor_id": visitor, "type": "info_request", "identity": {"email": email}});
    track(rt, &key, &identified).expect(202);
    let id = lead_id_by_email(rt, &org, &email).expect("the lead was created");
    let heat = |rt: &Runtime| get_lead(rt, &org, &id)["heat_score"].as_f64().unwrap();
    assert_eq!(heat(rt), 5.0, "one info_request");

    // Again, identified and anonymous, from this and another browser: nothing more.
    track(rt, &key, &identified).expect(202);
    track(
        rt,
        &key,
        &json!({"visitor_id": visitor, "type": "info_request"}),
    )
    .expect(202);
    track(
        rt,
        &key,
        &json!({"visitor_id": format!("{visitor}-b"), "type": "info_request", "identity": {"email": email}}),
    )
    .expect(202);
    assert_eq!(
        heat(rt),
        5.0,
        "later info_requests the same day earn nothing"
    );
    // Another form type counts, once.
    for _ in 0..3 {
        track(
            rt,
            &key,
            &json!({"visitor_id": visitor, "type": "price_quote"}),
        )
        .expect(202);
    }
    assert_eq!(heat(rt), 13.0, "info_request 5 + price_quote 8");
    let forms: Vec<(String, i64)> = rt
        .org_db(&org)
        .prepare("SELECT type, count(*) FROM interactions WHERE lead_id = ?1 AND type IN ('info_request', 'price_quote') GROUP BY type ORDER BY type")
        .unwrap()
        .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        forms,
        [
            ("info_request".to_string(), 1),
            ("price_quote".to_string(), 1)
        ]
    );
    // Every event is still kept as a raw tracking event.
    assert_eq!(
        count(
            rt,
            "SELECT count(*) FROM tracking_events WHERE org_id = ?1 AND kind <> 'page_view'",
            &org
        ),
        7
    );
}

/// The (N+1)th new lead of one site key within a minute is refused with 429 and Retry-After, and
/// nothing of that event is stored; events naming existing leads still go through.
fn tracking_caps_new_leads_per_site_key_and_minute(rt: &Runtime) {
    // NEW_LEADS_PER_SITE_PER_WINDOW (shared/src/tracking.rs).
    const CAP: usize = 20;
    let org = unique_org("priv-cap");
    let key = site_key(rt, &token(&org, "admin"));
    let run = unique_suffix();
    let mut created = Vec::new();
    let mut refused = None;
    // A minute boundary may fall inside the loop; two windows hold at most 2 * CAP.
    for i in 0..=2 * CAP {
        let email = format!("cap{i}.{run}@example.com");
        let visitor = format!("v-cap-{i}-{run}");
        let resp = track(
            rt,
            &key,
            &json!({"visitor_id": visitor, "type": "info_request", "identity": {"email": email}}),
        );
        match resp.status {
            202 => created.push(email),
            429 => {
                refused = Some((resp, email, visitor));
                break;
            }
            other => panic!("event {i}: {other} {}", resp.body),
        }
    }
    let (resp, email, visitor) = refused.expect("no 429 after 2 * CAP + 1 new leads");
    assert!(
        created.len() >= CAP,
        "refused after {} new leads",
        created.len()
    );
    assert_rate_limited(&resp, "the new lead over the cap");
    // Nothing of the refused event was stored.
    assert_eq!(lead_id_by_email(rt, &org, &email), None);
    for table in ["tracking_events", "tracking_visitors"] {
        assert_eq!(
            count(
                rt,
                &format!("SELECT count(*) FROM {table} WHERE visitor_id = ?1"),
                &visitor
            ),
            0,
            "{table}"
        );
    }
    assert_eq!(
        count(rt, "SELECT count(*) FROM leads WHERE org_id = ?1", &org),
        created.len() as i64
    );
    // An identified event for a lead that exists creates nothing: it is not refused.
    track(
        rt,
        &key,
        &json!({"visitor_id": format!("v-cap-known-{run}"), "type": "page_view", "identity": {"email": created[0]}}),
    )
    .expect(202);
}

/// 500 anonymous page views, each its own 30-minute session, then the visitor identifies: one
/// request that attributes all 500 as website_visit touchpoints in a bounded number of D1 queries
/// (500 touchpoints one by one cost ~5,500, past D1's 1,000 per invocation).
fn identifying_after_500_spaced_views_is_bounded_and_attributed(rt: &Runtime) {
    const VIEWS: i64 = 500;
    // Far below D1's 1,000 queries per invocation; measured: about 30 (plus what concurrent
    // requests in the same isolate add to the meter).
    const QUERY_BOUND: u64 = 150;
    let org = unique_org("priv-500");
    let admin = token(&org, "admin");
    let visitor = format!("v-500-{}", unique_suffix());
    let now = unix_now();
    let view_time = |i: i64| rfc3339(now - (i + 1) * 31 * 60);
    let mut key = site_key(rt, &admin);
    for i in 0..VIEWS {
        // 120 events per visitor and site key per minute: a new site key every 100 views.
        if i > 0 && i % 100 == 0 {
            key = rotate_site_key(rt, &admin);
        }
        track(
            rt,
            &key,
            &json!({"visitor_id": visitor, "type": "page_view", "url": format!("https://acme.test/p{i}"),
                    "occurred_at": view_time(i)}),
        )
        .expect(202);
    }
    let email = format!("long.{}@example.com", unique_suffix());
    let accepted = track(
        rt,
        &key,
        &json!({"visitor_id": visitor, "type": "info_request", "identity": {"email": email}}),
    )
    .expect(202)
    .json();
    assert_eq!(accepted["identified"], true);
    let event_id = accepted["event_id"].as_str().unwrap();

    let id = lead_id_by_email(rt, &org, &email).expect("the lead exists");
    let visits: Vec<(String, String, String)> = rt
        .org_db(&org)
        .prepare("SELECT occurred_at, external_id, metadata FROM interactions WHERE lead_id = ?1 AND type = 'website_visit' ORDER BY occurred_at DESC")
        .unwrap()
        .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        visits.len(),
        VIEWS as usize,
        "one visit per 30-minute session"
    );
    for (i, (occurred_at, external_id, metadata)) in visits.iter().enumerate() {
        assert_eq!(occurred_at, &view_time(i as i64));
        assert_eq!(external_id, &format!("visit:{visitor}:{occurred_at}"));
        let metadata: Value = serde_json::from_str(metadata).unwrap();
        assert_eq!(metadata["url"], format!("https://acme.test/p{i}"));
        assert_eq!(metadata["session_start"], occurred_at.as_str());
    }
    // 500 visits of 2 points and the info_request's 5.
    let lead = get_lead(rt, &org, &id);
    assert_eq!(lead["heat_score"], json!(1005), "{lead}");
    assert_eq!(lead["heat_level"], "HOT");
    assert_eq!(
        count(
            rt,
            "SELECT count(*) FROM tracking_events WHERE visitor_id = ?1 AND attributed = 0",
            &visitor
        ),
        0
    );
    let last_touch: String = rt
        .org_db(&org)
        .query_row(
            "SELECT last_visit_touch_at FROM tracking_visitors WHERE visitor_id = ?1",
            [&visitor],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(last_touch, view_time(0));

    let line = rt.wait_for("the attribution's log line", WAIT, || {
        log_line(rt, &["\"job\":\"tracking-attribution\"", event_id])
    });
    assert_eq!(line["views"], VIEWS, "{line}");
    assert_eq!(line["visits"], VIEWS, "{line}");
    let queries = line["queries"].as_u64().unwrap();
    println!("identifying after {VIEWS} views: {queries} D1 queries");
    assert!(queries <= QUERY_BOUND, "{queries} D1 queries: {line}");
}

/// The scoring worker's nightly run deletes tracking events past 90 days, visitors idle for 400
/// days and idempotency keys past 24 hours, and keeps everything younger. Its own runtime: the
/// nightly run at future times rescores and sweeps every org of its database.
fn nightly_sweep_prunes_tracking_rows_and_expired_idempotency_keys(_shared: &Runtime) {
    let rt = Runtime::start();
    let org = unique_org("priv-sweep");
    let admin = token(&org, "admin");
    let key = site_key(&rt, &admin);
    let now = unix_now();
    let day = 86_400;
    let (kept, idle) = (
        format!("v-kept-{}", unique_suffix()),
        format!("v-idle-{}", unique_suffix()),
    );
    for (visitor, at) in [
        (&kept, now - 20 * day),
        (&kept, now),
        (&idle, now - 20 * day),
    ] {
        track(
            &rt,
            &key,
            &json!({"visitor_id": visitor, "type": "page_view", "occurred_at": rfc3339(at)}),
        )
        .expect(202);
    }
    let idem_key = format!("sweep-{}", unique_suffix());
    rt.post("/v1/leads")
        .bearer(&admin)
        .header("Idempotency-Key", &idem_key)
        .send_json(&json!({"first_name": "Kept"}))
        .expect(201);
    let events = |visitor: &str| {
        count(
            &rt,
            "SELECT count(*) FROM tracking_events WHERE visitor_id = ?1",
            visitor,
        )
    };
    let visitor_rows = |visitor: &str| {
        count(
            &rt,
            "SELECT count(*) FROM tracking_visitors WHERE visitor_id = ?1",
            visitor,
        )
    };
    let keys = || {
        count(
            &rt,
            "SELECT count(*) FROM idempotency_keys WHERE idem_key = ?1",
            &idem_key,
        )
    };
    let fire = |at: i64| {
        rt.fire_cron("scoring", Some(NIGHTLY), Some(&rfc3339(at)))
            .expect(200);
        rt.wait_for("the retention line", WAIT, || {
            log_line(&rt, &["\"job\":\"retention\"", &rfc3339(at)])
        })
    };

    // Twelve hours on: everything is within its retention.
    let line = fire(now + day / 2);
    assert_eq!((events(&kept), events(&idle)), (2, 1), "{line}");
    assert_eq!(keys(), 1, "{line}");

    // 80 days on: events older than 90 days (the two of 20 days ago) and the key are gone.
    let line = fire(now + 80 * day);
    assert_eq!((events(&kept), events(&idle)), (1, 0), "{line}");
    assert_eq!(keys(), 0, "{line}");
    assert_eq!(line["tracking_events"], 2, "{line}");
    assert_eq!(line["idempotency_keys"], 1, "{line}");
    assert_eq!((visitor_rows(&kept), visitor_rows(&idle)), (1, 1), "{line}");

    // 390 days on: the visitor last seen 20 days ago has been idle for 410 days; the other 390.
    let line = fire(now + 390 * day);
    assert_eq!((visitor_rows(&kept), visitor_rows(&idle)), (1, 0), "{line}");
    assert_eq!(line["tracking_visitors"], 1, "{line}");
    assert_eq!(line["finished"], true, "{line}");
}

// ---------------------------------------------------------------------------------------------
// Erasure

/// After DELETE, the same comment delivered again in other bytes (a redelivery, or the
/// reconciliation's retry) does not bring the person back; a comment made after the erasure does:
/// the person came back.
fn an_older_event_cannot_recreate_an_erased_lead_but_a_newer_one_can(rt: &Runtime) {
    let org = unique_org("priv-erase");
    let page = numeric_id();
    connect_page(rt, &org, &page);
    let user = numeric_id();
    let comment = format!("{page}_1_{}", numeric_id());
    let written = unix_now() - 60;
    post_meta(
        rt,
        "facebook",
        &comment_delivery(&page, &user, &comment, written, written),
    )
    .expect(200);
    wait_inbox(rt, &page, "the comment processed", |rows| {
        rows[0].0 == "processed"
    });
    let id = lead_id_by_profile(rt, &org, "facebook", &user).expect("the commenter is a lead");
    rt.request("DELETE", &format!("/v1/leads/{id}"))
        .bearer(&token(&org, "member"))
        .send_empty()
        .expect(204);
    assert_eq!(lead_id_by_profile(rt, &org, "facebook", &user), None);
    // The same comment, in another envelope.
    post_meta(
        rt,
        "facebook",
        &comment_delivery(&page, &user, &comment, written, unix_now() + 7),
    )
    .expect(200);
    let rows = wait_inbox(rt, &page, "the redelivery processed", |rows| {
        rows.len() == 2 && settled(rows)
    });
    assert_eq!(rows[1].0, "processed", "{rows:?}");
    assert_eq!(
        lead_id_by_profile(rt, &org, "facebook", &user),
        None,
        "an older event re-created the erased lead"
    );
    assert_eq!(
        count(
            rt,
            "SELECT count(*) FROM interactions WHERE org_id = ?1",
            &org
        ),
        0
    );
    assert_eq!(
        count(rt, "SELECT count(*) FROM leads WHERE org_id = ?1", &org),
        0
    );

    // Only hashes are kept.
    let suppressions = count(
        rt,
        "SELECT count(*) FROM erasure_suppressions WHERE org_id = ?1",
        &org,
    );
    assert!(suppressions >= 1);
    assert_eq!(
        count(
            rt,
            "SELECT count(*) FROM erasure_suppressions WHERE instr(identity_hash, ?1) > 0",
            &user
        ),
        0
    );

    // A new comment, written after the erasure: the person came back.
    let later = unix_now() + 5;
    let new_comment = format!("{page}_1_{}", numeric_id());
    post_meta(
        rt,
        "facebook",
        &comment_delivery(&page, &user, &new_comment, later, later),
    )
    .expect(200);
    wait_inbox(rt, &page, "the new comment processed", |rows| {
        rows.len() == 3 && settled(rows)
    });
    let back = lead_id_by_profile(rt, &org, "facebook", &user).expect("the person came back");
    assert_ne!(back, id);
    assert_eq!(
        count(
            rt,
            "SELECT count(*) FROM interactions WHERE lead_id = ?1",
            &back
        ),
        1,
        "only the new comment"
    );
}

/// DELETE removes the person's stored idempotent responses, their website visitors and raw
/// events, and the raw webhook payloads naming them: processed ones at once; an unprocessed (dead)
/// one is kept until it is replayed and processed (its events for the erased person dropped, the
/// other person's applied), then scrubbed by the nightly sweep.
fn erasure_removes_stored_responses_tracking_rows_and_inbox_payloads(rt: &Runtime) {
    let org = unique_org("priv-traces");
    let admin = token(&org, "admin");
    let page = numeric_id();
    connect_page(rt, &org, &page);
    let user = numeric_id();
    let email = format!("erase.{}@example.com", unique_suffix());

    // The lead, created with an idempotency key; another lead's stored response stays.
    let (key, other_key) = (
        format!("erase-{}", unique_suffix()),
        format!("keep-{}", unique_suffix()),
    );
    let lead = rt
        .post("/v1/leads")
        .bearer(&admin)
        .header("Idempotency-Key", &key)
        .send_json(&json!({"first_name": "Grace", "email": email,
            "social_profiles": [{"platform": "facebook", "platform_user_id": user}]}))
        .expect(201)
        .json();
    let id = lead["id"].as_str().unwrap().to_string();
    rt.post("/v1/leads")
        .bearer(&admin)
        .header("Idempotency-Key", &other_key)
        .send_json(&json!({"first_name": "Other"}))
        .expect(201);

    // Their browsing: anonymous, then identified, then more.
    let site = site_key(rt, &admin);
    let visitor = format!("v-erase-{}", unique_suffix());
    track(
        rt,
        &site,
        &json!({"visitor_id": visitor, "type": "page_view"}),
    )
    .expect(202);
    track(
        rt,
        &site,
        &json!({"visitor_id": visitor, "type": "info_request", "identity": {"email": email}}),
    )
    .expect(202);
    track(
        rt,
        &site,
        &json!({"visitor_id": visitor, "type": "page_view"}),
    )
    .expect(202);

    // A processed comment by them, and a dead delivery holding another comment by them and a lead
    // form of someone else (whose fetch fails for good).
    let written = unix_now() - 60;
    let comment = format!("{page}_1_{}", numeric_id());
    post_meta(
        rt,
        "facebook",
        &comment_delivery(&page, &user, &comment, written, written),
    )
    .expect(200);
    wait_inbox(rt, &page, "the comment processed", |rows| {
        rows[0].0 == "processed"
    });
    let leadgen = numeric_id();
    Stub::shared().set_mode(&leadgen, Mode::Permanent);
    let mixed = page_event(
        &page,
        json!([
            {"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": format!("{page}_1"),
                "comment_id": format!("{page}_1_{}", numeric_id()), "message": "Still there?",
                "from": {"id": user, "name": "Grace Hopper"}, "created_time": written}},
            {"field": "leadgen", "value": {"leadgen_id": leadgen, "page_id": page, "form_id": "7100000000002",
                "created_time": written}}
        ]),
    );
    post_meta(rt, "facebook", &mixed).expect(200);
    wait_inbox(rt, &page, "the mixed delivery dead", |rows| {
        rows.len() == 2 && rows[1].0 == "dead"
    });
    assert!(
        count(
            rt,
            "SELECT count(*) FROM interactions WHERE lead_id = ?1",
            &id
        ) >= 3
    );

    rt.request("DELETE", &format!("/v1/leads/{id}"))
        .bearer(&admin)
        .send_empty()
        .expect(204);

    // Stored responses naming the lead are gone; the other one stays.
    assert_eq!(
        count(
            rt,
            "SELECT count(*) FROM idempotency_keys WHERE idem_key = ?1",
            &key
        ),
        0
    );
    assert_eq!(
        count(
            rt,
            "SELECT count(*) FROM idempotency_keys WHERE idem_key = ?1",
            &other_key
        ),
        1
    );
    assert_eq!(
        count(
            rt,
            "SELECT count(*) FROM idempotency_keys WHERE instr(response_body, ?1) > 0",
            &id
        ),
        0
    );
    // Their visitor and its raw events are gone.
    for table in ["tracking_events", "tracking_visitors"] {
        assert_eq!(
            count(
                rt,
                &format!("SELECT count(*) FROM {table} WHERE visitor_id = ?1"),
                &visitor
            ),
            0,
            "{table}"
        );
    }
    // The processed payload is scrubbed; the dead one is kept, whole, for its replay.
    let rows = inbox_rows(rt, &page);
    assert_eq!(rows[0].0, "processed");
    assert!(
        !rows[0].1.contains(&user),
        "a processed payload still names them: {}",
        rows[0].1
    );
    assert_eq!(rows[1].0, "dead");
    assert!(rows[1].1.contains(&user) && rows[1].1.contains(&leadgen));

    // The dead delivery is replayed once its form can be fetched: the other person's lead is
    // created, the erased person's older comment is dropped.
    let other_email = format!("other.{}@example.com", unique_suffix());
    Stub::shared().add_meta_lead(
        &leadgen,
        json!([{"name": "full_name", "values": ["Alan Turing"]}, {"name": "email", "values": [other_email]}]),
    );
    Stub::shared().set_mode(&leadgen, Mode::Normal);
    rt.post("/v1/integrations/facebook/replay")
        .bearer(&admin)
        .send_empty()
        .expect(200);
    wait_inbox(rt, &page, "the replayed delivery processed", |rows| {
        rows.len() == 2 && rows[1].0 == "processed"
    });
    assert!(
        lead_id_by_email(rt, &org, &other_email).is_some(),
        "the other person's form is applied"
    );
    assert_eq!(lead_id_by_profile(rt, &org, "facebook", &user), None);
    assert_eq!(lead_id_by_email(rt, &org, &email), None);

    // The nightly sweep scrubs it now that it is processed (fired at the real time: the sweep
    // has nothing else to prune in this runtime).
    rt.fire_cron("scoring", Some(NIGHTLY), Some(&rfc3339(unix_now())))
        .expect(200);
    let rows = rt.wait_for("the replayed payload scrubbed", WAIT, || {
        let rows = inbox_rows(rt, &page);
        (!rows[1].1.contains(&user)).then_some(rows)
    });
    assert_eq!(rows[1].0, "processed");
    assert_eq!(
        count(
            rt,
            "SELECT count(*) FROM erasure_inbox_scrubs WHERE org_id = ?1",
            &org
        ),
        0
    );
}

/// A member deletes their LinkedIn lead form response (`leadAction: DELETED`): the lead's fields
/// the form supplied are erased, with the form's answers on its touchpoint; a field set by hand
/// since stays.
fn linkedin_deleted_lead_action_erases_the_form_fields(rt: &Runtime) {
    let org = unique_org("priv-li");
    let ad_account = numeric_id();
    connect(
        rt,
        &org,
        "linkedin",
        json!({"sponsored_account_ids": [ad_account], "access_token": format!("AQV-priv-{ad_account}")}),
    );
    let response_id = format!("{}-{}", numeric_id(), numeric_id());
    let form_id = numeric_id();
    let email = format!("linus.{}@example.org", unique_suffix());
    Stub::shared().add_linkedin_response(
        &response_id,
        json!({"id": response_id, "submittedAt": unix_now() * 1000, "leadType": "SPONSORED",
            "versionedLeadGenFormUrn": format!("urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{form_id},1)"),
            "formResponse": {"answers": [
                {"questionId": 1, "answerDetails": {"textQuestionAnswer": {"answer": "Linus"}}},
                {"questionId": 2, "answerDetails": {"textQuestionAnswer": {"answer": "Torvalds"}}},
                {"questionId": 3, "answerDetails": {"textQuestionAnswer": {"answer": email}}},
                {"questionId": 4, "answerDetails": {"textQuestionAnswer": {"answer": "Kernel Inc"}}},
                {"questionId": 5, "answerDetails": {"textQuestionAnswer": {"answer": "50-200"}}}
            ]}}),
    );
    Stub::shared().add_linkedin_form(
        &form_id,
        json!({"id": form_id, "content": {"questions": [
            {"questionId": 1, "name": "firstName", "predefinedField": "FIRST_NAME"},
            {"questionId": 2, "name": "lastName", "predefinedField": "LAST_NAME"},
            {"questionId": 3, "name": "email", "predefinedField": "EMAIL"},
            {"questionId": 4, "name": "company", "predefinedField": "COMPANY_NAME"},
            {"questionId": 5, "name": "companySize"}
        ]}}),
    );
    let action = |kind: &str| {
        json!({"type": "LEAD_ACTION", "leadAction": kind,
            "leadGenFormResponse": format!("urn:li:leadGenFormResponse:{response_id}"),
            "leadGenForm": format!("urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{form_id},1)"),
            "owner": {"sponsoredAccount": format!("urn:li:sponsoredAccount:{ad_account}")},
            "leadType": "SPONSORED", "occurredAt": unix_now() * 1000})
    };
    post_linkedin(rt, &action("CREATED")).expect(200);
    wait_inbox(rt, &ad_account, "the form processed", |rows| {
        rows[0].0 == "processed"
    });
    let id = lead_id_by_email(rt, &org, &email).expect("the form's lead");
    let lead = get_lead(rt, &org, &id);
    assert_eq!(
        (lead["first_name"].clone(), lead["company"].clone()),
        (json!("Linus"), json!("Kernel Inc"))
    );
    // A sales rep sets the title by hand, and corrects the last name.
    rt.request("PATCH", &format!("/v1/leads/{id}"))
        .bearer(&token(&org, "member"))
        .header("If-Match", &lead["version"].to_string())
        .send_json(&json!({"title": "Maintainer", "last_name": "Benedict Torvalds"}))
        .expect(200);

    post_linkedin(rt, &action("DELETED")).expect(200);
    wait_inbox(rt, &ad_account, "the deletion processed", |rows| {
        rows.len() == 2 && rows[1].0 == "processed"
    });
    let after = get_lead(rt, &org, &id);
    for field in ["first_name", "email", "company"] {
        assert_eq!(after[field], Value::Null, "{field} kept: {after}");
    }
    assert_eq!(after["title"], "Maintainer", "{after}");
    assert_eq!(after["last_name"], "Benedict Torvalds", "{after}");
    assert_eq!(lead_id_by_email(rt, &org, &email), None);
    let metadata: String = rt
        .org_db(&org)
        .query_row(
            "SELECT metadata FROM interactions WHERE lead_id = ?1 AND external_id = ?2",
            [&id, &format!("leadgen:{response_id}")],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        !metadata.contains(&email) && !metadata.contains("Kernel Inc"),
        "{metadata}"
    );
}

// ---------------------------------------------------------------------------------------------
// Idempotency

/// An Idempotency-Key is its user's: a viewer (or a member) sending an admin's key and body runs
/// their own request and never receives the admin's stored 2xx.
fn a_viewer_cannot_replay_an_admins_idempotency_key(rt: &Runtime) {
    let org = unique_org("priv-idem");
    let key = format!("shared-{}", unique_suffix());
    let body = json!({"first_name": "Secret", "company": "Admin Only Ltd"});
    let send = |role: &str| {
        rt.post("/v1/leads")
            .bearer(&token(&org, role))
            .header("Idempotency-Key", &key)
            .send_json(&body)
    };
    let first = send("admin").expect(201);
    let created = first.json();
    // The admin's own retry is replayed.
    let again = send("admin").expect(201);
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(again.json()["id"], created["id"]);

    let viewer = send("viewer");
    assert_eq!(viewer.status, 403, "{}", viewer.body);
    assert_eq!(viewer.header("Idempotent-Replayed"), None);
    assert!(
        !viewer.body.contains(created["id"].as_str().unwrap()),
        "{}",
        viewer.body
    );

    let member = send("member").expect(201);
    assert_eq!(member.header("Idempotent-Replayed"), None);
    assert_ne!(
        member.json()["id"],
        created["id"],
        "the admin's response was replayed"
    );
}
