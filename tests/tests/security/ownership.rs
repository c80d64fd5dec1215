//! Security suite: connecting an account proves, through the platform's API and with the supplied
//! token, that the token's user administers it; nothing is stored otherwise, and two orgs racing
//! for one account cannot both have it.

use std::thread;

use leadheat_e2e::runner::E2eTest;
use leadheat_e2e::social::{connect, numeric_id, page_event, post_meta};
use leadheat_e2e::stub::{Grant, Stub, StubPage};
use leadheat_e2e::{hmac_sha256, token, unique_org, unique_suffix, Resp, Runtime, META_APP_SECRET};
use serde_json::{json, Value};

pub const TESTS: &[E2eTest] = &[
    (
        "connecting_a_page_the_token_does_not_administer_is_refused",
        connecting_a_page_the_token_does_not_administer_is_refused,
    ),
    (
        "a_page_on_a_later_listing_page_is_found",
        a_page_on_a_later_listing_page_is_found,
    ),
    (
        "a_public_page_the_token_can_read_is_not_proven",
        a_public_page_the_token_can_read_is_not_proven,
    ),
    (
        "a_page_token_proves_only_its_own_page",
        a_page_token_proves_only_its_own_page,
    ),
    (
        "a_token_the_platform_rejects_connects_nothing",
        a_token_the_platform_rejects_connects_nothing,
    ),
    (
        "instagram_accounts_are_proven_through_their_page_or_instagram_login",
        instagram_accounts_are_proven_through_their_page_or_instagram_login,
    ),
    (
        "linkedin_needs_an_approved_administrator_or_a_managing_ad_role",
        linkedin_needs_an_approved_administrator_or_a_managing_ad_role,
    ),
    (
        "two_orgs_racing_for_one_page_exactly_one_wins",
        two_orgs_racing_for_one_page_exactly_one_wins,
    ),
    (
        "graph_calls_carry_appsecret_proof_and_keep_tokens_out_of_urls",
        graph_calls_carry_appsecret_proof_and_keep_tokens_out_of_urls,
    ),
];

fn stub() -> &'static Stub {
    Stub::shared()
}

fn put(rt: &Runtime, org: &str, platform: &str, body: &Value) -> Resp {
    rt.request("PUT", &format!("/v1/integrations/{platform}"))
        .bearer(&token(org, "admin"))
        .send_json(body)
}

/// What the org has stored for its integrations: (connected rows on its shard, account rows in
/// the directory).
fn stored(rt: &Runtime, org: &str) -> (i64, i64) {
    let connected: i64 = rt
        .query_shards(
            "SELECT count(*) FROM integrations WHERE org_id = ?1 AND token_ciphertext IS NOT NULL",
            [org],
            |r| r.get::<_, i64>(0),
        )
        .into_iter()
        .sum();
    let accounts = rt
        .directory_db()
        .query_row(
            "SELECT count(*) FROM integration_accounts WHERE org_id = ?1",
            [org],
            |r| r.get(0),
        )
        .unwrap();
    (connected, accounts)
}

/// Asserts a refusal of status `status` whose problem names `field`, and returns the problem.
fn refused(resp: Resp, status: u16, field: &str, context: &str) -> Value {
    assert_eq!(resp.status, status, "{context}: {}", resp.body);
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.starts_with("application/problem+json")),
        "{context}: problem+json"
    );
    let problem = resp.json();
    let named = problem["errors"]
        .as_array()
        .is_some_and(|errors| errors.iter().any(|e| e["field"] == field));
    assert!(named, "{context}: names {field}: {problem}");
    problem
}

fn connecting_a_page_the_token_does_not_administer_is_refused(rt: &Runtime) {
    let org = unique_org("claim");
    let (mine, theirs) = (numeric_id(), numeric_id());
    let user_token = format!("EAAB-user-{}", unique_suffix());
    stub().grant(
        &user_token,
        Grant::GraphUser {
            user_id: numeric_id(),
            pages: vec![StubPage::new(&mine)],
        },
    );
    // Claiming someone else's page along with one's own: refused whole, naming the page.
    let problem = refused(
        put(
            rt,
            &org,
            "facebook",
            &json!({"page_ids": [mine, theirs], "access_token": user_token}),
        ),
        403,
        "page_ids",
        "a page the token does not administer",
    );
    assert!(
        problem["detail"].as_str().unwrap().contains(&theirs),
        "{problem}"
    );
    assert!(
        !problem["detail"].as_str().unwrap().contains(&mine),
        "{problem}"
    );
    assert_eq!(stored(rt, &org), (0, 0), "nothing is stored");
    // Its own page alone connects.
    let connected = put(
        rt,
        &org,
        "facebook",
        &json!({"page_ids": [mine], "access_token": user_token}),
    )
    .expect(200)
    .json();
    assert_eq!(connected["accounts"]["page_ids"], json!([mine]));
    assert_eq!(stored(rt, &org), (1, 1));
    // The proof asked the platform which pages the user administers.
    assert!(stub()
        .calls("/me/accounts")
        .iter()
        .any(|call| call.bearer() == Some(user_token.as_str())));
}

fn a_page_on_a_later_listing_page_is_found(rt: &Runtime) {
    let org = unique_org("many-pages");
    let pages: Vec<String> = (0..130).map(|_| numeric_id()).collect();
    let user_token = format!("EAAB-agency-{}", unique_suffix());
    stub().grant(
        &user_token,
        Grant::GraphUser {
            user_id: numeric_id(),
            pages: pages.iter().map(|id| StubPage::new(id)).collect(),
        },
    );
    let wanted = [&pages[3], &pages[125]];
    put(
        rt,
        &org,
        "facebook",
        &json!({"page_ids": wanted, "access_token": user_token}),
    )
    .expect(200);
    let listings = stub()
        .calls("/me/accounts")
        .into_iter()
        .filter(|call| call.bearer() == Some(user_token.as_str()))
        .count();
    assert_eq!(listings, 2, "me/accounts was followed to its second page");
}

/// Graph lets any token read a public page's id and name; only its administrators get the page's
/// access token, so a lookup proves nothing without it.
fn a_public_page_the_token_can_read_is_not_proven(rt: &Runtime) {
    let org = unique_org("public-page");
    let public_page = numeric_id();
    stub().add_public_page(&public_page);
    let user_token = format!("EAAB-reader-{}", unique_suffix());
    stub().grant(
        &user_token,
        Grant::GraphUser {
            user_id: numeric_id(),
            pages: vec![StubPage::new(&numeric_id())],
        },
    );
    refused(
        put(
            rt,
            &org,
            "facebook",
            &json!({"page_ids": [public_page], "access_token": user_token}),
        ),
        403,
        "page_ids",
        "a public page",
    );
    assert_eq!(stored(rt, &org), (0, 0));
    // The proof did look the page up, and the answer lacked the page's token.
    assert!(stub()
        .calls(&format!("/graph/v25.0/{public_page}"))
        .iter()
        .any(|call| call.bearer() == Some(user_token.as_str())));
}

fn a_page_token_proves_only_its_own_page(rt: &Runtime) {
    let org = unique_org("page-token");
    let page = numeric_id();
    let page_token = format!("EAAB-page-{}", unique_suffix());
    stub().grant(&page_token, Grant::GraphPage(StubPage::new(&page)));
    refused(
        put(
            rt,
            &org,
            "facebook",
            &json!({"page_ids": [numeric_id()], "access_token": page_token}),
        ),
        403,
        "page_ids",
        "another page with a page token",
    );
    assert_eq!(stored(rt, &org), (0, 0));
    put(
        rt,
        &org,
        "facebook",
        &json!({"page_ids": [page], "access_token": page_token}),
    )
    .expect(200);
}

fn a_token_the_platform_rejects_connects_nothing(rt: &Runtime) {
    let org = unique_org("bad-token");
    for (platform, body) in [
        (
            "facebook",
            json!({"page_ids": [numeric_id()], "access_token": "EAAB-unknown"}),
        ),
        (
            "instagram",
            json!({"account_ids": [numeric_id()], "access_token": "EAAB-unknown"}),
        ),
        (
            "linkedin",
            json!({"organization_ids": [numeric_id()], "access_token": "AQ-unknown"}),
        ),
    ] {
        refused(
            put(rt, &org, platform, &body),
            422,
            "access_token",
            platform,
        );
    }
    assert_eq!(stored(rt, &org), (0, 0));
}

fn instagram_accounts_are_proven_through_their_page_or_instagram_login(rt: &Runtime) {
    let org = unique_org("instagram");
    let (business, stranger) = (numeric_id(), numeric_id());
    let user_token = format!("EAAB-ig-user-{}", unique_suffix());
    stub().grant(
        &user_token,
        Grant::GraphUser {
            user_id: numeric_id(),
            // The page lists its Instagram account only when looked up on its own.
            pages: vec![
                StubPage::new(&numeric_id()),
                StubPage::with_instagram(&numeric_id(), &business),
            ],
        },
    );
    refused(
        put(
            rt,
            &org,
            "instagram",
            &json!({"account_ids": [stranger], "access_token": user_token}),
        ),
        403,
        "account_ids",
        "an account no page of the token has",
    );
    assert_eq!(stored(rt, &org), (0, 0));
    put(
        rt,
        &org,
        "instagram",
        &json!({"account_ids": [business], "access_token": user_token}),
    )
    .expect(200);

    let other_org = unique_org("instagram-login");
    let account = numeric_id();
    let login_token = format!("IGAA-{}", unique_suffix());
    stub().grant(
        &login_token,
        Grant::InstagramLogin {
            account_id: account.clone(),
        },
    );
    put(
        rt,
        &other_org,
        "instagram",
        &json!({"account_ids": [account], "access_token": login_token}),
    )
    .expect(200);
}

fn linkedin_needs_an_approved_administrator_or_a_managing_ad_role(rt: &Runtime) {
    let org = unique_org("linkedin-claim");
    let [admin_of, requested, poster, manages, views] = [(); 5].map(|_| numeric_id());
    let member_token = format!("AQ-member-{}", unique_suffix());
    let role =
        |id: &str, role: &str, state: &str| (id.to_string(), role.to_string(), state.to_string());
    stub().grant(
        &member_token,
        Grant::LinkedinMember {
            organizations: vec![
                role(&admin_of, "ADMINISTRATOR", "APPROVED"),
                role(&requested, "ADMINISTRATOR", "REQUESTED"),
                role(&poster, "RECRUITING_POSTER", "APPROVED"),
            ],
            ad_accounts: vec![
                (manages.clone(), "ACCOUNT_MANAGER".to_string()),
                (views.clone(), "VIEWER".to_string()),
            ],
        },
    );
    for (field, id) in [
        ("organization_ids", &requested),
        ("organization_ids", &poster),
        ("sponsored_account_ids", &views),
    ] {
        refused(
            put(
                rt,
                &org,
                "linkedin",
                &json!({field: [id], "access_token": member_token}),
            ),
            403,
            field,
            id,
        );
    }
    assert_eq!(stored(rt, &org), (0, 0));
    let connected = put(
        rt,
        &org,
        "linkedin",
        &json!({"organization_ids": [format!("urn:li:organization:{admin_of}")], "sponsored_account_ids": [manages], "access_token": member_token}),
    )
    .expect(200)
    .json();
    assert_eq!(connected["accounts"]["organization_ids"], json!([admin_of]));
    assert_eq!(
        connected["accounts"]["sponsored_account_ids"],
        json!([manages])
    );
}

fn two_orgs_racing_for_one_page_exactly_one_wins(rt: &Runtime) {
    for round in 0..4 {
        let page = numeric_id();
        let orgs = [unique_org("race-a"), unique_org("race-b")];
        // Both admins genuinely administer the page: only the first connect may have it.
        let answers: Vec<u16> = thread::scope(|scope| {
            let racers: Vec<_> = orgs
                .iter()
                .map(|org| {
                    let page = page.clone();
                    scope.spawn(move || {
                        let body =
                            json!({"page_ids": [page], "access_token": format!("EAAB-race-{org}")});
                        stub().grant_connect_body("facebook", &body);
                        put(rt, org, "facebook", &body).status
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let mut sorted = answers.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [200, 409], "round {round}: {answers:?}");
        let winner = &orgs[answers.iter().position(|s| *s == 200).unwrap()];
        let loser = &orgs[answers.iter().position(|s| *s == 409).unwrap()];
        let owner: String = rt
            .directory_db()
            .query_row(
                "SELECT org_id FROM integration_accounts WHERE platform = 'facebook' AND account_id = ?1",
                [&page],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(&owner, winner, "round {round}");
        assert_eq!(
            stored(rt, loser),
            (0, 0),
            "round {round}: the loser stored nothing"
        );
    }
}

fn graph_calls_carry_appsecret_proof_and_keep_tokens_out_of_urls(rt: &Runtime) {
    let org = unique_org("proof");
    let page = numeric_id();
    let page_token = format!("EAAB-proof-{}", unique_suffix());
    connect(
        rt,
        &org,
        "facebook",
        json!({"page_ids": [page], "access_token": page_token}),
    );
    // The sync's lead fetch goes the same way.
    let leadgen_id = numeric_id();
    stub().add_meta_lead(
        &leadgen_id,
        json!([{"name": "email", "values": [format!("proof.{}@example.com", unique_suffix())]}]),
    );
    post_meta(
        rt,
        "facebook",
        &page_event(
            &page,
            json!([{"field": "leadgen", "value": {"leadgen_id": leadgen_id, "page_id": page, "form_id": "71", "created_time": 1764000000}}]),
        ),
    )
    .expect(200);
    let lead_fetch = rt.wait_for("the lead fetch", std::time::Duration::from_secs(30), || {
        stub().calls(&leadgen_id).into_iter().next()
    });
    let proof = hex::encode(hmac_sha256(
        META_APP_SECRET.as_bytes(),
        page_token.as_bytes(),
    ));
    let calls: Vec<_> = stub()
        .calls("/graph/")
        .into_iter()
        .filter(|call| call.bearer() == Some(page_token.as_str()))
        .collect();
    assert!(calls.len() >= 2, "the proof and the lead fetch: {calls:?}");
    assert!(calls.iter().any(|call| call.target.contains(&leadgen_id)));
    for call in calls.iter().chain([&lead_fetch]) {
        assert!(
            !call.target.contains(&page_token),
            "a token in a URL: {call:?}"
        );
        assert_eq!(call.query_param("access_token"), None, "{call:?}");
        assert_eq!(
            call.query_param("appsecret_proof"),
            Some(proof.clone()),
            "{call:?}"
        );
    }
}
