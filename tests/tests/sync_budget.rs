//! End-to-end tests of the sync consumer's D1 query budget (`leadheat_domain::sync::QueryBudget`)
//! and of the cap on the events of an inbox row (`delivery::MAX_EVENTS_PER_PART`).
//!
//! The runtime's `SYNC_QUERY_BUDGET` is lowered to `RESERVE + 100`, so that one inbox row of ten
//! new people's comments (about 180 queries) leaves too little room for another full row, and the
//! rest of its batch must go back to the queue. Every consumer batch logs a `sync-batch` line
//! (`taken`, `deferred`, `events`, `queries`, `heaviest`, `budget`) that these tests read; they run
//! one at a time on their own runtime, so the lines after a mark belong to the test that set it.
//!
//! - `queries_per_event_stay_within_the_reserve`: measures the queries of single rows of every
//!   costly kind (new and known people's comments, duplicates, Facebook and LinkedIn lead forms)
//!   and checks them against `ROW_QUERIES`, `EVENT_QUERIES` and `RESERVE`; prints the figures.
//! - `a_delivery_over_the_budget_is_applied_once_across_invocations`: one delivery of 60 events
//!   (6 rows, one queue batch): batches stay within the budget, the rest is deferred without an
//!   attempt, and every event ends up as exactly one touchpoint.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use leadheat_domain::delivery::MAX_EVENTS_PER_PART;
use leadheat_domain::sync::QueryBudget;
use leadheat_e2e::runner::{run, E2eTest};
use leadheat_e2e::social::{connect, connect_page, numeric_id, post_linkedin, post_meta};
use leadheat_e2e::stub::Stub;
use leadheat_e2e::{unique_org, unique_suffix, unix_now, Runtime};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(90);

fn budget() -> u32 {
    QueryBudget::RESERVE + 100
}

fn main() {
    let tests: &[E2eTest] = &[
        (
            "queries_per_event_stay_within_the_reserve",
            queries_per_event_stay_within_the_reserve,
        ),
        (
            "a_delivery_over_the_budget_is_applied_once_across_invocations",
            a_delivery_over_the_budget_is_applied_once_across_invocations,
        ),
    ];
    let stub = Stub::shared();
    let runtime = Runtime::start_with_env(&[
        ("META_GRAPH_BASE_URL", &stub.meta_base()),
        ("LINKEDIN_API_BASE_URL", &stub.linkedin_base()),
        ("SYNC_QUERY_BUDGET", &budget().to_string()),
    ]);
    run(runtime, tests)
}

static SERIAL: Mutex<()> = Mutex::new(());

fn stub() -> &'static Stub {
    Stub::shared()
}

/// The tests read the consumer's log lines: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// (status, attempts) of every inbox row of an account, oldest first (a delivery for an account no
/// org connected is ("ignored", 0): see `Runtime::inbox_rows`).
fn inbox_rows(rt: &Runtime, account: &str) -> Vec<(String, i64)> {
    rt.inbox_rows(account)
        .into_iter()
        .map(|row| (row.status, row.attempts))
        .collect()
}

/// A count of the org's rows on its shard.
fn count(rt: &Runtime, sql: &str, org: &str) -> i64 {
    rt.org_db(org).query_row(sql, [org], |r| r.get(0)).unwrap()
}

/// One `sync-batch` log line of the consumer.
#[derive(Debug, Clone)]
struct BatchLine {
    messages: u64,
    taken: u64,
    deferred: u64,
    events: u64,
    queries: u64,
    heaviest: u64,
    budget: u64,
}

fn batch_lines(rt: &Runtime) -> Vec<BatchLine> {
    rt.log()
        .lines()
        .filter(|line| line.starts_with(r#"{"job":"sync-batch""#))
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("a sync-batch line is JSON");
            let n = |key: &str| v[key].as_u64().unwrap_or_else(|| panic!("{key} in {line}"));
            BatchLine {
                messages: n("messages"),
                taken: n("taken"),
                deferred: n("deferred"),
                events: n("events"),
                queries: n("queries"),
                heaviest: n("heaviest"),
                budget: n("budget"),
            }
        })
        .collect()
}

/// Posts a delivery of one account that stores `new_rows` rows, waits until the account's
/// `total_rows` rows are processed and the batch lines of the new ones are printed, and returns
/// the lines since the post.
fn deliver(
    rt: &Runtime,
    account: &str,
    total_rows: usize,
    new_rows: usize,
    post: impl FnOnce(&Runtime),
) -> Vec<BatchLine> {
    let mark = batch_lines(rt).len();
    post(rt);
    rt.wait_for("the rows to be processed", WAIT, || {
        let stored = inbox_rows(rt, account);
        (stored.len() == total_rows && stored.iter().all(|r| r.0 == "processed")).then_some(())
    });
    // Each message taken is counted in the line printed once its batch is done.
    rt.wait_for("the batch lines", WAIT, || {
        let lines = batch_lines(rt).split_off(mark);
        let taken: u64 = lines.iter().map(|l| l.taken).sum();
        (taken >= new_rows as u64).then_some(lines)
    })
}

fn comment(page: &str, user: &str, n: usize) -> Value {
    json!({"field": "feed", "value": {"item": "comment", "verb": "add", "post_id": format!("{page}_1"),
        "comment_id": format!("{page}_1_{}", numeric_id()), "message": format!("comment {n}"),
        "from": {"id": user, "name": format!("Person {n}")}, "created_time": unix_now()}})
}

fn page_delivery(page: &str, changes: Vec<Value>) -> Value {
    json!({"object": "page", "entry": [{"id": page, "time": unix_now(), "changes": changes}]})
}

fn standard_fields(email: &str) -> Value {
    json!([
        {"name": "full_name", "values": ["Ada Lovelace"]},
        {"name": "email", "values": [email]},
        {"name": "company_name", "values": ["Analytical Engines Ltd"]}
    ])
}

/// The queries of a delivery of one row (one message, one batch).
fn row_queries(lines: &[BatchLine]) -> u64 {
    assert_eq!(lines.len(), 1, "one batch for one row: {lines:?}");
    assert_eq!(lines[0].taken, 1, "{lines:?}");
    lines[0].queries
}

fn queries_per_event_stay_within_the_reserve(rt: &Runtime) {
    let _serial = serial();
    let org = unique_org("budget-measure");
    let page = numeric_id();
    connect_page(rt, &org, &page);
    let n = MAX_EVENTS_PER_PART;
    let mut rows = 0;

    // A row whose only event is ignored: the row's own queries.
    rows += 1;
    let ignored = page_delivery(
        &page,
        vec![json!({"field": "some_future_field", "value": {}})],
    );
    let overhead = row_queries(&deliver(rt, &page, rows, 1, |rt| {
        post_meta(rt, "facebook", &ignored).expect(200);
    }));

    // Ten comments by ten new people: ten leads created.
    let users: Vec<String> = (0..n).map(|_| numeric_id()).collect();
    let comments = |users: &[String]| -> Vec<Value> {
        users
            .iter()
            .enumerate()
            .map(|(i, u)| comment(&page, u, i))
            .collect()
    };
    let first = page_delivery(&page, comments(&users));
    rows += 1;
    let new_people = row_queries(&deliver(rt, &page, rows, 1, |rt| {
        post_meta(rt, "facebook", &first).expect(200);
    }));

    // Ten more comments by the same people: their leads are matched.
    rows += 1;
    let known_people = row_queries(&deliver(rt, &page, rows, 1, |rt| {
        post_meta(rt, "facebook", &page_delivery(&page, comments(&users))).expect(200);
    }));

    // The first ten comments again, in other bytes: all duplicates.
    let mut again = first.clone();
    again["entry"][0]["time"] = json!(unix_now() + 60);
    rows += 1;
    let duplicates = row_queries(&deliver(rt, &page, rows, 1, |rt| {
        post_meta(rt, "facebook", &again).expect(200);
    }));

    // Ten Facebook lead forms, each creating its lead (fetched from the stub Graph API).
    let leadgens: Vec<Value> = (0..n)
        .map(|_| {
            let leadgen_id = numeric_id();
            stub().add_meta_lead(
                &leadgen_id,
                standard_fields(&format!("form.{}@example.com", unique_suffix())),
            );
            json!({"field": "leadgen", "value": {"leadgen_id": leadgen_id, "form_id": "71",
                "ad_id": "61", "page_id": page, "created_time": unix_now()}})
        })
        .collect();
    rows += 1;
    let forms = row_queries(&deliver(rt, &page, rows, 1, |rt| {
        post_meta(rt, "facebook", &page_delivery(&page, leadgens)).expect(200);
    }));

    // One LinkedIn lead form: two API calls (the response and the form's questions).
    let ad_account = numeric_id();
    connect(
        rt,
        &org,
        "linkedin",
        json!({"organization_ids": [numeric_id()], "sponsored_account_ids": [ad_account], "access_token": "AQV-budget"}),
    );
    let response_id = numeric_id();
    let form_id = numeric_id();
    stub().add_linkedin_response(
        &response_id,
        json!({"id": response_id, "submittedAt": unix_now() * 1000,
            "versionedLeadGenFormUrn": format!("urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{form_id},1)"),
            "formResponse": {"answers": [
                {"questionId": 1, "answerDetails": {"textQuestionAnswer": {"answer": "Grace"}}},
                {"questionId": 2, "answerDetails": {"textQuestionAnswer": {"answer": format!("grace.{}@example.org", unique_suffix())}}}
            ]}}),
    );
    stub().add_linkedin_form(
        &form_id,
        json!({"id": form_id, "content": {"questions": [
            {"questionId": 1, "name": "firstName", "predefinedField": "FIRST_NAME"},
            {"questionId": 2, "name": "email", "predefinedField": "EMAIL"}
        ]}}),
    );
    let linkedin_form = row_queries(&deliver(rt, &ad_account, 1, 1, |rt| {
        post_linkedin(
            rt,
            &json!({"type": "LEAD_ACTION", "leadAction": "CREATED",
                "leadGenFormResponse": format!("urn:li:leadGenFormResponse:{response_id}"),
                "owner": {"sponsoredAccount": format!("urn:li:sponsoredAccount:{ad_account}")},
                "occurredAt": unix_now() * 1000}),
        )
        .expect(200);
    }));

    let per_event = |total: u64, events: usize| (total - overhead) as f64 / events as f64;
    let figures = [
        ("comment by a new person", per_event(new_people, n)),
        ("comment by a known person", per_event(known_people, n)),
        ("duplicate comment", per_event(duplicates, n)),
        ("Facebook lead form, new lead", per_event(forms, n)),
        ("LinkedIn lead form, new lead", per_event(linkedin_form, 1)),
    ];
    println!("D1 queries of a row besides its events: {overhead}");
    for (what, figure) in &figures {
        println!("D1 queries per event, {what}: {figure:.1}");
    }
    println!(
        "D1 queries of whole rows: 10 new people {new_people}, 10 known {known_people}, \
         10 duplicates {duplicates}, 10 Facebook forms {forms}, 1 LinkedIn form {linkedin_form}"
    );

    assert!(
        overhead <= QueryBudget::ROW_QUERIES as u64,
        "a row costs {overhead} queries besides its events, more than ROW_QUERIES"
    );
    for (what, figure) in figures {
        assert!(
            figure <= QueryBudget::EVENT_QUERIES as f64,
            "{what}: {figure} queries, more than EVENT_QUERIES"
        );
    }
    for total in [new_people, known_people, duplicates, forms, linkedin_form] {
        assert!(
            total <= QueryBudget::RESERVE as u64,
            "a row of {total} queries"
        );
    }
    // The figures were taken from the right rows: every event became one touchpoint.
    assert_eq!(
        count(
            rt,
            "SELECT COUNT(*) FROM interactions WHERE org_id = ?1 AND type = 'social_comment'",
            &org
        ),
        2 * n as i64
    );
    assert_eq!(
        count(
            rt,
            "SELECT COUNT(*) FROM interactions WHERE org_id = ?1 AND type = 'info_request'",
            &org
        ),
        n as i64 + 1
    );
}

fn a_delivery_over_the_budget_is_applied_once_across_invocations(rt: &Runtime) {
    let _serial = serial();
    let org = unique_org("budget-defer");
    let page = numeric_id();
    connect_page(rt, &org, &page);
    // 60 comments by 60 new people: 6 rows of 10, enqueued together (one queue batch), each row
    // about 180 queries; the budget leaves room for one full row after the first.
    let events = 6 * MAX_EVENTS_PER_PART;
    let rows = events.div_ceil(MAX_EVENTS_PER_PART);
    let changes: Vec<Value> = (0..events)
        .map(|i| comment(&page, &numeric_id(), i))
        .collect();
    let body = page_delivery(&page, changes).to_string();
    let lines = deliver(rt, &page, rows, rows, |rt| {
        let stored = leadheat_e2e::social::post_meta_bytes(rt, "facebook", body.as_bytes())
            .expect(200)
            .json();
        assert_eq!(stored["stored"], rows, "{stored}");
    });
    println!("sync-batch lines: {lines:#?}");

    // Every batch stayed within the budget (a batch's first message is always taken), no row
    // cost more than the reserve, and the budget held some messages back.
    let budget = budget() as u64;
    for line in &lines {
        assert_eq!(line.budget, budget, "{line:?}");
        assert_eq!(line.taken + line.deferred, line.messages, "{line:?}");
        assert!(
            line.queries <= budget || line.taken == 1,
            "a batch took {} messages and used {} queries, over the budget of {budget}: {lines:#?}",
            line.taken,
            line.queries
        );
        assert!(
            line.heaviest <= QueryBudget::RESERVE as u64,
            "a row of {} queries: {line:?}",
            line.heaviest
        );
    }
    assert!(
        lines.iter().any(|l| l.deferred > 0),
        "nothing was deferred: {lines:#?}"
    );
    assert_eq!(
        lines.iter().map(|l| l.events).sum::<u64>(),
        events as u64,
        "{lines:#?}"
    );

    // Each row was claimed once: deferring counted no attempt.
    let stored = inbox_rows(rt, &page);
    assert_eq!(stored.len(), rows);
    assert!(
        stored.iter().all(|r| r == &("processed".to_string(), 1)),
        "{stored:?}"
    );
    // Every event exactly once.
    assert_eq!(
        count(
            rt,
            "SELECT COUNT(*) FROM interactions WHERE org_id = ?1 AND type = 'social_comment'",
            &org
        ),
        events as i64
    );
    assert_eq!(
        count(
            rt,
            "SELECT COUNT(DISTINCT external_id) FROM interactions WHERE org_id = ?1",
            &org
        ),
        events as i64
    );
    assert_eq!(
        count(rt, "SELECT COUNT(*) FROM leads WHERE org_id = ?1", &org),
        events as i64
    );

    // The same bytes again: recognised part by part, nothing new stored.
    let again = leadheat_e2e::social::post_meta_bytes(rt, "facebook", body.as_bytes())
        .expect(200)
        .json();
    assert_eq!(again["stored"], 0, "{again}");
    assert_eq!(again["duplicates"], rows, "{again}");
    assert_eq!(inbox_rows(rt, &page).len(), rows);
}
