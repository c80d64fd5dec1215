//! Foundation end-to-end tests: every worker answers through the local runtime, the dev cron route
//! reaches the scoring worker, and a queue message produced by one worker is consumed by another.

use std::time::Duration;

use leadheat_e2e::runner::{run, E2eTest};
use leadheat_e2e::{meta_signature, unique_suffix, Runtime, META_APP_SECRET};
use rusqlite::{Connection, OpenFlags};

fn main() {
    let tests: &[E2eTest] = &[
        (
            "health_routes_of_every_worker",
            health_routes_of_every_worker,
        ),
        ("unknown_route_answers_404", unknown_route_answers_404),
        (
            "dev_cron_route_fires_the_scoring_worker",
            dev_cron_route_fires_the_scoring_worker,
        ),
        (
            "queue_round_trip_from_webhook_to_sync_consumer",
            queue_round_trip_from_webhook_to_sync_consumer,
        ),
    ];
    run(Runtime::start(), tests)
}

fn db(runtime: &Runtime) -> Connection {
    Connection::open_with_flags(runtime.database_path(), OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("the local D1 file opens read-only")
}

fn health_routes_of_every_worker(rt: &Runtime) {
    for path in [
        "/v1/health",
        "/webhooks/health",
        "/__dev/workers/scoring/health",
        "/__dev/workers/sync/health",
    ] {
        let response = rt.get(path).send_empty().expect(200);
        assert_eq!(
            response.json(),
            serde_json::json!({"status": "ok"}),
            "{path}"
        );
    }
}

fn unknown_route_answers_404(rt: &Runtime) {
    assert_eq!(rt.get("/nowhere").send_empty().status, 404);
    assert_eq!(rt.post("/__dev/cron/nosuchworker").send_empty().status, 404);
}

fn dev_cron_route_fires_the_scoring_worker(rt: &Runtime) {
    let time = "2026-03-04T05:06:07Z";
    let fired = rt
        .fire_cron("scoring", Some("*/15 * * * *"), Some(time))
        .expect(200)
        .json();
    assert_eq!(fired["outcome"], "ok", "{fired}");
    // The run leaves its record in D1, stamped with the scheduled time the handler was given.
    let runs: Vec<(String, String)> = db(rt)
        .prepare("SELECT cron, started_at FROM job_runs WHERE job = 'scoring' ORDER BY started_at")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        runs.contains(&(
            "*/15 * * * *".to_string(),
            "2026-03-04T05:06:07.000Z".to_string()
        )),
        "job_runs: {runs:?}"
    );
}

fn queue_round_trip_from_webhook_to_sync_consumer(rt: &Runtime) {
    // A page no org has connected: the webhook stores and enqueues it, the sync consumer picks it
    // up from the queue and records it as ignored.
    let page_id = u64::from_str_radix(&unique_suffix()[..12], 16)
        .unwrap()
        .to_string();
    let body = serde_json::json!({
        "object": "page",
        "entry": [{"id": page_id, "time": 1764000000, "changes": [{"field": "feed", "value": {
            "item": "reaction", "verb": "add", "reaction_type": "like", "post_id": format!("{page_id}_1"),
            "from": {"id": "123", "name": "A Visitor"}, "created_time": 1764000000
        }}]}]
    })
    .to_string();
    rt.post("/webhooks/facebook")
        .header("Content-Type", "application/json")
        .header(
            "X-Hub-Signature-256",
            &meta_signature(META_APP_SECRET, body.as_bytes()),
        )
        .send_bytes(body.as_bytes())
        .expect(200);
    let status = rt.wait_for(
        "the sync consumer to process the inbox row",
        Duration::from_secs(30),
        || {
            db(rt)
            .query_row(
                "SELECT status FROM webhook_inbox WHERE platform = 'facebook' AND account_id = ?1",
                [&page_id],
                |row| row.get::<_, String>(0),
            )
            .ok()
            .filter(|status| status != "pending")
        },
    );
    assert_eq!(status, "ignored");
}
