//! Foundation end-to-end tests: every worker answers through the local runtime, the dev cron route
//! reaches the scoring worker, and a queue message produced by one worker is consumed by another.

use std::time::Duration;

use leadheat_e2e::runner::{run, E2eTest};
use leadheat_e2e::social::{connect_page, numeric_id, page_event, post_meta};
use leadheat_e2e::{unique_org, Runtime};
use serde_json::json;

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
    // The run leaves its record in the directory, stamped with the scheduled time the handler was
    // given.
    let runs: Vec<(String, String)> = rt
        .directory_db()
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
    // A page connected to an org: the webhook worker stores the delivery as pending and enqueues
    // it; only the sync consumer, reached through the queue, turns it into a touchpoint and marks
    // the row processed.
    let org = unique_org("queue");
    let page_id = numeric_id();
    connect_page(rt, &org, &page_id);
    let visitor = numeric_id();
    let body = page_event(
        &page_id,
        json!([{"field": "feed", "value": {
            "item": "reaction", "verb": "add", "reaction_type": "like",
            "post_id": format!("{page_id}_1"), "from": {"id": visitor, "name": "A Visitor"},
            "created_time": 1764000000
        }}]),
    );
    post_meta(rt, "facebook", &body).expect(200);
    let status = rt.wait_for(
        "the sync consumer to process the inbox row",
        Duration::from_secs(30),
        || {
            rt.org_db(&org)
                .query_row(
                    "SELECT status FROM webhook_inbox WHERE platform = 'facebook' AND account_id = ?1",
                    [&page_id],
                    |row| row.get::<_, String>(0),
                )
                .ok()
                .filter(|status| status != "pending" && status != "processing")
        },
    );
    assert_eq!(status, "processed");
    let touchpoints: i64 = rt.org_db(&org)
        .query_row(
            "SELECT COUNT(*) FROM interactions WHERE org_id = ?1 AND type = 'social_like' AND captured_by = 'webhook'",
            [&org],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(touchpoints, 1);
}
