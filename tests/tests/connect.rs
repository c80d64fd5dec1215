//! Connecting accounts with the platforms' login (docs/connect.md), against the stubbed token
//! endpoints and listings: the test plays the browser, taking the `state` and `redirect_uri` from
//! the authorize URL and coming back to the callback with a code the stub issued.
//!
//! The tests run one at a time: one of them ages a pending connection through a writable
//! connection to the org's shard, which would make concurrent runtime writes fail.

use std::time::Duration;

use leadheat_domain::crypto::TokenKeyring;
use leadheat_domain::oauth::{sign_state, state_key, OAuthState};
use leadheat_domain::types::Platform;
use leadheat_e2e::runner::{run_serially, E2eTest};
use leadheat_e2e::stub::{Grant, Stub, StubPage, LINKEDIN_CLIENT_ID, META_APP_ID};
use leadheat_e2e::{token_for_user, unique_org, unique_suffix, unix_now, Runtime, JWT_SECRET};
use rusqlite::Connection;
use serde_json::{json, Value};

/// The key this suite's runtime seals tokens with (set explicitly: a local `.dev.vars` may differ).
const DEV_TOKEN_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

const TESTS: &[E2eTest] = &[
    (
        "facebook_connects_through_the_login_and_the_page_picker",
        facebook_connects_through_the_login_and_the_page_picker,
    ),
    (
        "instagram_connects_through_the_pages_instagram_account",
        instagram_connects_through_the_pages_instagram_account,
    ),
    (
        "linkedin_connects_through_three_legged_oauth",
        linkedin_connects_through_three_legged_oauth,
    ),
    (
        "tampered_expired_or_foreign_states_are_refused_and_store_nothing",
        tampered_expired_or_foreign_states_are_refused_and_store_nothing,
    ),
    (
        "another_user_or_org_cannot_see_or_complete_a_pending_connection",
        another_user_or_org_cannot_see_or_complete_a_pending_connection,
    ),
    (
        "picking_an_account_that_was_not_listed_connects_nothing",
        picking_an_account_that_was_not_listed_connects_nothing,
    ),
    (
        "members_and_viewers_cannot_connect",
        members_and_viewers_cannot_connect,
    ),
    (
        "an_expired_pending_connection_is_gone",
        an_expired_pending_connection_is_gone,
    ),
    (
        "a_declined_login_or_a_refused_code_stores_nothing",
        a_declined_login_or_a_refused_code_stores_nothing,
    ),
];

fn main() {
    let runtime = Runtime::start_with_env(&[
        ("META_APP_ID", META_APP_ID),
        ("LINKEDIN_CLIENT_ID", LINKEDIN_CLIENT_ID),
        ("TOKEN_ENCRYPTION_KEY", DEV_TOKEN_KEY),
        ("TOKEN_ENCRYPTION_KEYS_PREVIOUS", ""),
    ]);
    run_serially(runtime, TESTS);
}

fn stub() -> &'static Stub {
    Stub::shared()
}

/// A response seen without following redirects.
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    fn expect(self, status: u16) -> Answer {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }
}

fn call(
    rt: &Runtime,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let agent = ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_secs(60))
        .build();
    let mut request = agent.request(method, &rt.url(path));
    if let Some(token) = bearer {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    let result = match body {
        Some(body) => request
            .set("Content-Type", "application/json")
            .send_string(&body.to_string()),
        None => request.call(),
    };
    let response = match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("{method} {path} failed at the transport level: {error}"),
    };
    Answer {
        status: response.status(),
        location: response.header("Location").map(str::to_string),
        body: response.into_string().unwrap_or_default(),
    }
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&value[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// A query parameter of a URL (or of a path with a query), decoded.
fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| percent_decode(value))
    })
}

/// An admin's connect of `platform`: the authorize URL.
fn start(rt: &Runtime, org: &str, user: &str, platform: &str) -> String {
    let admin = token_for_user(org, "admin", user);
    let started = call(
        rt,
        "POST",
        &format!("/v1/integrations/{platform}/connect"),
        Some(&admin),
        None,
    )
    .expect(200)
    .json();
    assert_eq!(started["platform"], platform);
    started["authorize_url"].as_str().unwrap().to_string()
}

/// The platform's redirect back to the callback with `code` and the authorize URL's state.
fn come_back(rt: &Runtime, platform: &str, authorize_url: &str, code: &str) -> Answer {
    let state = param(authorize_url, "state").expect("the authorize URL has a state");
    let redirect = param(authorize_url, "redirect_uri").expect("and a redirect_uri");
    assert_eq!(
        redirect,
        rt.url(&format!("/v1/integrations/{platform}/callback")),
        "the platform sends the browser back to this API's callback"
    );
    callback(
        rt,
        platform,
        &format!("code={code}&state={}", encode(&state)),
    )
}

fn callback(rt: &Runtime, platform: &str, query: &str) -> Answer {
    call(
        rt,
        "GET",
        &format!("/v1/integrations/{platform}/callback?{query}"),
        None,
        None,
    )
}

fn encode(value: &str) -> String {
    leadheat_domain::oauth::percent_encode(value)
}

/// The pending id of a callback's redirect to the settings page.
fn pending_id(answer: &Answer, platform: &str) -> String {
    assert_eq!(
        answer.status, 303,
        "the callback redirects; body: {}",
        answer.body
    );
    let location = answer.location.clone().expect("a Location");
    assert!(
        location.starts_with(&format!(
            "/app/settings/integrations?platform={platform}&pending="
        )),
        "{location}"
    );
    param(&location, "pending").unwrap()
}

/// Start, come back with a fresh code for `user_token`, and the pending connection's id.
fn pending_for(rt: &Runtime, org: &str, user: &str, platform: &str, user_token: &str) -> String {
    let url = start(rt, org, user, platform);
    let code = format!("code-{}", unique_suffix());
    stub().add_oauth_code(&code, user_token);
    pending_id(&come_back(rt, platform, &url, &code), platform)
}

fn pending_path(platform: &str, id: &str) -> String {
    format!("/v1/integrations/{platform}/pending/{id}")
}

/// The org's sealed token for `platform`, opened with the development key.
fn stored_token(rt: &Runtime, org: &str, platform: &str) -> Option<String> {
    let sealed: Option<String> = rt
        .query_shards(
            "SELECT token_ciphertext FROM integrations WHERE org_id = ?1 AND platform = ?2",
            [org, platform],
            |r| r.get::<_, Option<String>>(0),
        )
        .into_iter()
        .flatten()
        .next();
    let keyring = TokenKeyring::parse(DEV_TOKEN_KEY, None).unwrap();
    sealed.map(|sealed| {
        keyring
            .open(&sealed, format!("{org}|{platform}").as_bytes())
            .expect("the stored token opens with the development key")
            .plaintext
    })
}

fn pending_rows(rt: &Runtime, org: &str) -> i64 {
    rt.query_shards(
        "SELECT count(*) FROM pending_connections WHERE org_id = ?1",
        [org],
        |r| r.get::<_, i64>(0),
    )
    .into_iter()
    .sum()
}

fn directory_accounts(rt: &Runtime, org: &str) -> Vec<(String, String)> {
    let conn = rt.directory_db();
    let mut statement = conn
        .prepare(
            "SELECT kind, account_id FROM integration_accounts WHERE org_id = ?1 \
             ORDER BY kind, account_id",
        )
        .unwrap();
    statement
        .query_map([org], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn status_of(rt: &Runtime, org: &str, platform: &str) -> Value {
    let token = token_for_user(org, "admin", "reader");
    let list = call(rt, "GET", "/v1/integrations", Some(&token), None)
        .expect(200)
        .json();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["platform"] == platform)
        .cloned()
        .unwrap()
}

fn facebook_connects_through_the_login_and_the_page_picker(rt: &Runtime) {
    let org = unique_org("oauthfb");
    let suffix = unique_suffix();
    let (shop, blog) = (format!("81{suffix}"), format!("82{suffix}"));
    let user_token = format!("fb-user-{suffix}");
    stub().grant(
        &user_token,
        Grant::GraphUser {
            user_id: format!("u{suffix}"),
            pages: vec![StubPage::new(&shop), StubPage::new(&blog)],
        },
    );

    let url = start(rt, &org, "ada", "facebook");
    assert!(
        url.starts_with(&format!("{}?", stub().meta_dialog())),
        "{url}"
    );
    assert_eq!(param(&url, "client_id").as_deref(), Some(META_APP_ID));
    assert_eq!(param(&url, "response_type").as_deref(), Some("code"));
    assert!(param(&url, "scope").unwrap().contains("pages_show_list"));

    let code = format!("code-{suffix}");
    stub().add_oauth_code(&code, &user_token);
    let answer = come_back(rt, "facebook", &url, &code);
    let id = pending_id(&answer, "facebook");

    // The code was exchanged server-side with the app secret and the same redirect_uri, then for
    // a long-lived token, which listed the pages.
    let exchange = stub().calls(&format!("code={code}"));
    assert_eq!(exchange.len(), 1, "one exchange of the code");
    assert_eq!(
        exchange[0].query_param("redirect_uri"),
        param(&url, "redirect_uri")
    );
    let listings: Vec<_> = stub()
        .calls("me/accounts")
        .into_iter()
        .filter(|c| c.bearer() == Some(user_token.as_str()))
        .collect();
    assert!(
        !listings.is_empty(),
        "the long-lived token listed the pages"
    );

    let admin = token_for_user(&org, "admin", "ada");
    let pending = call(
        rt,
        "GET",
        &pending_path("facebook", &id),
        Some(&admin),
        None,
    )
    .expect(200);
    assert!(
        !pending.body.contains("token"),
        "no token in the candidates: {}",
        pending.body
    );
    let pending = pending.json();
    let ids: Vec<&str> = pending["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [shop.as_str(), blog.as_str()]);
    assert_eq!(pending["candidates"][0]["field"], "page_ids");
    assert_eq!(pending["candidates"][0]["name"], format!("Page {shop}"));

    let connected = call(
        rt,
        "POST",
        &pending_path("facebook", &id),
        Some(&admin),
        Some(&json!({"page_ids": [shop]})),
    )
    .expect(200);
    assert!(!connected.body.contains("page-token"), "{}", connected.body);
    let connected = connected.json();
    assert_eq!(connected["connected"], true);
    assert_eq!(connected["accounts"]["page_ids"], json!([shop]));

    // One page picked: its own page token is what is sealed.
    assert_eq!(
        stored_token(rt, &org, "facebook").as_deref(),
        Some(format!("page-token-{shop}").as_str())
    );
    assert_eq!(
        directory_accounts(rt, &org),
        vec![("page".to_string(), shop.clone())]
    );
    let status = status_of(rt, &org, "facebook");
    assert_eq!(status["connected"], true);
    assert_eq!(status["token_set"], true);
    // The pick consumed the pending connection.
    assert_eq!(pending_rows(rt, &org), 0);
    call(
        rt,
        "GET",
        &pending_path("facebook", &id),
        Some(&admin),
        None,
    )
    .expect(404);
}

fn instagram_connects_through_the_pages_instagram_account(rt: &Runtime) {
    let org = unique_org("oauthig");
    let suffix = unique_suffix();
    let (page, account) = (format!("83{suffix}"), format!("178{suffix}"));
    let user_token = format!("ig-user-{suffix}");
    stub().grant(
        &user_token,
        Grant::GraphUser {
            user_id: format!("u{suffix}"),
            pages: vec![
                StubPage::with_instagram(&page, &account),
                StubPage::new(&format!("84{suffix}")),
            ],
        },
    );
    let url = start(rt, &org, "grace", "instagram");
    assert!(param(&url, "scope").unwrap().contains("instagram_basic"));
    let code = format!("code-{suffix}");
    stub().add_oauth_code(&code, &user_token);
    let id = pending_id(&come_back(rt, "instagram", &url, &code), "instagram");
    let admin = token_for_user(&org, "admin", "grace");
    let pending = call(
        rt,
        "GET",
        &pending_path("instagram", &id),
        Some(&admin),
        None,
    )
    .expect(200)
    .json();
    assert_eq!(
        pending["candidates"],
        json!([{"field": "account_ids", "id": account, "name": format!("Instagram account of Page {page}")}]),
        "only the pages' Instagram business accounts are offered"
    );
    let connected = call(
        rt,
        "POST",
        &pending_path("instagram", &id),
        Some(&admin),
        Some(&json!({"account_ids": [account]})),
    )
    .expect(200)
    .json();
    assert_eq!(connected["accounts"]["account_ids"], json!([account]));
    assert_eq!(
        stored_token(rt, &org, "instagram").as_deref(),
        Some(format!("page-token-{page}").as_str()),
        "the account's page token"
    );
    assert_eq!(
        directory_accounts(rt, &org),
        vec![("instagram_account".to_string(), account)]
    );
}

fn linkedin_connects_through_three_legged_oauth(rt: &Runtime) {
    let org = unique_org("oauthli");
    let suffix = unique_suffix();
    let member_token = format!("li-member-{suffix}");
    let (admin_org, requested_org) = (format!("91{suffix}"), format!("92{suffix}"));
    let (managed, viewed) = (format!("51{suffix}"), format!("52{suffix}"));
    stub().grant(
        &member_token,
        Grant::LinkedinMember {
            organizations: vec![
                (admin_org.clone(), "ADMINISTRATOR".into(), "APPROVED".into()),
                (requested_org, "ADMINISTRATOR".into(), "REQUESTED".into()),
            ],
            ad_accounts: vec![
                (managed.clone(), "CAMPAIGN_MANAGER".into()),
                (viewed.clone(), "VIEWER".into()),
            ],
        },
    );
    let url = start(rt, &org, "linus", "linkedin");
    assert!(
        url.starts_with(&format!(
            "{}/authorization?response_type=code&client_id={LINKEDIN_CLIENT_ID}&",
            stub().linkedin_oauth_base()
        )),
        "{url}"
    );
    assert!(param(&url, "scope")
        .unwrap()
        .contains("r_organization_admin"));
    let code = format!("code-{suffix}");
    stub().add_oauth_code(&code, &member_token);
    let id = pending_id(&come_back(rt, "linkedin", &url, &code), "linkedin");

    let exchange: Vec<_> = stub()
        .calls("oauth/v2/accessToken")
        .into_iter()
        .filter(|c| c.body.contains(&code))
        .collect();
    assert_eq!(exchange.len(), 1);
    assert_eq!(exchange[0].method, "POST");
    assert!(
        exchange[0].body.contains("client_secret=") && !exchange[0].target.contains("secret"),
        "the secret travels in the form body, not the URL"
    );

    let admin = token_for_user(&org, "admin", "linus");
    let pending = call(
        rt,
        "GET",
        &pending_path("linkedin", &id),
        Some(&admin),
        None,
    )
    .expect(200)
    .json();
    let candidates: Vec<(String, String)> = pending["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap().to_string(),
                c["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        candidates,
        vec![
            ("organization_ids".to_string(), admin_org.clone()),
            ("sponsored_account_ids".to_string(), managed.clone()),
        ],
        "approved administrator roles and non-viewer ad roles only"
    );
    // The viewer's ad account was not listed.
    let refused = call(
        rt,
        "POST",
        &pending_path("linkedin", &id),
        Some(&admin),
        Some(&json!({"organization_ids": [admin_org], "sponsored_account_ids": [viewed]})),
    )
    .expect(403)
    .json();
    assert_eq!(refused["errors"][0]["field"], "sponsored_account_ids[0]");
    call(
        rt,
        "POST",
        &pending_path("linkedin", &id),
        Some(&admin),
        Some(&json!({"organization_ids": [admin_org], "sponsored_account_ids": [managed]})),
    )
    .expect(200);
    assert_eq!(stored_token(rt, &org, "linkedin"), Some(member_token));
    assert_eq!(
        directory_accounts(rt, &org),
        vec![
            ("organization".to_string(), admin_org),
            ("sponsored_account".to_string(), managed),
        ]
    );
}

fn tampered_expired_or_foreign_states_are_refused_and_store_nothing(rt: &Runtime) {
    let org = unique_org("oauthstate");
    let suffix = unique_suffix();
    let user_token = format!("fb-user-{suffix}");
    stub().grant(
        &user_token,
        Grant::GraphUser {
            user_id: format!("u{suffix}"),
            pages: vec![StubPage::new(&format!("85{suffix}"))],
        },
    );
    let url = start(rt, &org, "ada", "facebook");
    let state = param(&url, "state").unwrap();
    let code = format!("code-{suffix}");
    stub().add_oauth_code(&code, &user_token);

    let refused = |platform: &str, state: &str| {
        let answer = callback(
            rt,
            platform,
            &format!("code={code}&state={}", encode(state)),
        );
        assert_eq!(answer.status, 400, "{state}: {}", answer.body);
        let problem = answer.json();
        assert_eq!(problem["errors"][0]["field"], "state", "{problem}");
        problem["detail"].as_str().unwrap().to_string()
    };
    // One character of the signature changed.
    let (body, tag) = state.split_once('.').unwrap();
    let flipped = if tag.starts_with('A') { "B" } else { "A" };
    refused("facebook", &format!("{body}.{flipped}{}", &tag[1..]));
    // Another org (or user) in the payload, with the original signature.
    let key = state_key(JWT_SECRET.as_bytes());
    let now = unix_now();
    let other = sign_state(
        b"not the deployment's key",
        &OAuthState::new("someone-else", "ada", Platform::Facebook, "n", now),
    );
    let (other_body, _) = other.split_once('.').unwrap();
    refused("facebook", &format!("{other_body}.{tag}"));
    // Expired: signed with the right key ten minutes and a second ago.
    let mut old = OAuthState::new(&org, "ada", Platform::Facebook, "n", now - 601);
    old.exp = now - 1;
    assert!(refused("facebook", &sign_state(&key, &old)).contains("expired"));
    // A Facebook state at the LinkedIn callback.
    assert!(refused("linkedin", &state).contains("another platform"));
    // No state at all.
    let missing = callback(rt, "facebook", &format!("code={code}"));
    assert_eq!(missing.status, 400, "{}", missing.body);

    assert_eq!(
        stub().call_count(&format!("code={code}")),
        0,
        "the code was never exchanged"
    );
    assert_eq!(pending_rows(rt, &org), 0);
    // The genuine state still works (and is the control of this test).
    pending_id(&come_back(rt, "facebook", &url, &code), "facebook");
    assert_eq!(pending_rows(rt, &org), 1);
}

fn another_user_or_org_cannot_see_or_complete_a_pending_connection(rt: &Runtime) {
    let org = unique_org("oauthowner");
    let other_org = unique_org("oauthother");
    let suffix = unique_suffix();
    let page = format!("86{suffix}");
    let user_token = format!("fb-user-{suffix}");
    stub().grant(
        &user_token,
        Grant::GraphUser {
            user_id: format!("u{suffix}"),
            pages: vec![StubPage::new(&page)],
        },
    );
    let id = pending_for(rt, &org, "ada", "facebook", &user_token);
    let path = pending_path("facebook", &id);
    let pick = json!({"page_ids": [page]});
    for intruder in [
        token_for_user(&org, "admin", "bob"),
        token_for_user(&other_org, "admin", "ada"),
    ] {
        call(rt, "GET", &path, Some(&intruder), None).expect(404);
        call(rt, "POST", &path, Some(&intruder), Some(&pick)).expect(404);
    }
    assert_eq!(stored_token(rt, &org, "facebook"), None);
    assert_eq!(stored_token(rt, &other_org, "facebook"), None);
    assert!(directory_accounts(rt, &other_org).is_empty());
    // The pending connection is another platform's under the LinkedIn path.
    let owner = token_for_user(&org, "admin", "ada");
    call(
        rt,
        "GET",
        &pending_path("linkedin", &id),
        Some(&owner),
        None,
    )
    .expect(404);
    call(rt, "GET", &path, Some(&owner), None).expect(200);
}

fn picking_an_account_that_was_not_listed_connects_nothing(rt: &Runtime) {
    let org = unique_org("oauthpick");
    let suffix = unique_suffix();
    let page = format!("87{suffix}");
    let user_token = format!("fb-user-{suffix}");
    stub().grant(
        &user_token,
        Grant::GraphUser {
            user_id: format!("u{suffix}"),
            pages: vec![StubPage::new(&page)],
        },
    );
    let id = pending_for(rt, &org, "ada", "facebook", &user_token);
    let path = pending_path("facebook", &id);
    let admin = token_for_user(&org, "admin", "ada");
    let refused = call(
        rt,
        "POST",
        &path,
        Some(&admin),
        Some(&json!({"page_ids": [page, "someone-elses-page"]})),
    )
    .expect(403)
    .json();
    assert_eq!(
        refused["type"],
        "https://leadheat.dev/problems/ownership-not-proven"
    );
    assert_eq!(refused["errors"].as_array().unwrap().len(), 1);
    assert_eq!(refused["errors"][0]["field"], "page_ids[1]");
    // A token cannot be slipped in, and a pick must name accounts.
    let invalid = call(
        rt,
        "POST",
        &path,
        Some(&admin),
        Some(&json!({"page_ids": [page], "access_token": "EAAB"})),
    )
    .expect(422)
    .json();
    assert_eq!(invalid["errors"][0]["field"], "access_token");
    let empty = call(
        rt,
        "POST",
        &path,
        Some(&admin),
        Some(&json!({"page_ids": []})),
    )
    .expect(422)
    .json();
    assert_eq!(empty["errors"][0]["field"], "page_ids");
    assert_eq!(stored_token(rt, &org, "facebook"), None);
    assert!(directory_accounts(rt, &org).is_empty());
    assert_eq!(pending_rows(rt, &org), 1, "the admin can still pick");
}

fn members_and_viewers_cannot_connect(rt: &Runtime) {
    let org = unique_org("oauthroles");
    let suffix = unique_suffix();
    let user_token = format!("fb-user-{suffix}");
    stub().grant(
        &user_token,
        Grant::GraphUser {
            user_id: format!("u{suffix}"),
            pages: vec![StubPage::new(&format!("88{suffix}"))],
        },
    );
    let id = pending_for(rt, &org, "ada", "facebook", &user_token);
    for role in ["member", "viewer"] {
        // The same user id with a lesser role.
        let lesser = token_for_user(&org, role, "ada");
        call(
            rt,
            "POST",
            "/v1/integrations/facebook/connect",
            Some(&lesser),
            None,
        )
        .expect(403);
        call(
            rt,
            "GET",
            &pending_path("facebook", &id),
            Some(&lesser),
            None,
        )
        .expect(403);
        call(
            rt,
            "POST",
            &pending_path("facebook", &id),
            Some(&lesser),
            Some(&json!({"page_ids": [format!("88{suffix}")]})),
        )
        .expect(403);
    }
    assert_eq!(stored_token(rt, &org, "facebook"), None);
    call(rt, "POST", "/v1/integrations/facebook/connect", None, None).expect(401);
}

fn an_expired_pending_connection_is_gone(rt: &Runtime) {
    let org = unique_org("oauthexpiry");
    let suffix = unique_suffix();
    let page = format!("89{suffix}");
    let user_token = format!("fb-user-{suffix}");
    stub().grant(
        &user_token,
        Grant::GraphUser {
            user_id: format!("u{suffix}"),
            pages: vec![StubPage::new(&page)],
        },
    );
    let id = pending_for(rt, &org, "ada", "facebook", &user_token);
    let conn = Connection::open(rt.org_db_path(&org)).expect("the local D1 file opens writable");
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let aged = conn
        .execute(
            "UPDATE pending_connections SET expires_at = '2020-01-01T00:00:00.000Z' WHERE id = ?1",
            [&id],
        )
        .unwrap();
    assert_eq!(aged, 1);
    drop(conn);
    let admin = token_for_user(&org, "admin", "ada");
    let path = pending_path("facebook", &id);
    let gone = call(rt, "GET", &path, Some(&admin), None)
        .expect(410)
        .json();
    assert_eq!(
        gone["type"],
        "https://leadheat.dev/problems/connection-expired"
    );
    call(
        rt,
        "POST",
        &path,
        Some(&admin),
        Some(&json!({"page_ids": [page]})),
    )
    .expect(410);
    assert_eq!(stored_token(rt, &org, "facebook"), None);
    // The next connect of the org clears it away.
    start(rt, &org, "ada", "facebook");
    assert_eq!(pending_rows(rt, &org), 0);
}

fn a_declined_login_or_a_refused_code_stores_nothing(rt: &Runtime) {
    let org = unique_org("oauthdecline");
    let url = start(rt, &org, "ada", "facebook");
    let state = encode(&param(&url, "state").unwrap());
    let declined = callback(
        rt,
        "facebook",
        &format!("error=access_denied&error_reason=user_denied&state={state}"),
    )
    .expect(303);
    assert_eq!(
        declined.location.as_deref(),
        Some("/app/settings/integrations?platform=facebook&error=access_denied")
    );
    let unknown = callback(rt, "facebook", &format!("code=never-issued&state={state}")).expect(303);
    assert_eq!(
        unknown.location.as_deref(),
        Some("/app/settings/integrations?platform=facebook&error=exchange_refused")
    );
    assert_eq!(pending_rows(rt, &org), 0);
}
