//! Proof that an access token's user administers the platform accounts an org asks to connect.
//!
//! Connecting an account routes its webhook events to the org and lets the sync spend the token,
//! so an admin must not be able to claim a page, Instagram account or LinkedIn organisation they
//! do not run. The worker asks the platform with the supplied token; this module reads the
//! answers and decides which requested accounts are proven:
//! - Facebook page: the page token's `GET /me` is the page, or the page is in `GET /me/accounts`.
//! - Instagram account: `GET /me` is the account (Instagram Login), or it is the
//!   `instagram_business_account` of a page the token administers
//!   (`GET /{page-id}?fields=id,name,access_token,instagram_business_account`).
//! - LinkedIn organisation: an `organizationAcls` element with role `ADMINISTRATOR` and state
//!   `APPROVED`. Sponsored (ad) account: an `adAccountUsers` element for the account with any role
//!   but the read-only `VIEWER`.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::platforms::urn_id;

/// Pages of `me/accounts`, `organizationAcls` or `adAccountUsers` read at most: 10 × 100 entries.
pub const MAX_LISTING_PAGES: usize = 10;
/// Entries asked for per listing page.
pub const LISTING_PAGE_SIZE: usize = 100;
/// Pages looked up one by one for their Instagram account, at most, per connect.
pub const MAX_PAGE_LOOKUPS: usize = 25;

/// LinkedIn ad account roles that may not connect the account: they only read.
const READ_ONLY_AD_ROLES: [&str; 1] = ["VIEWER"];

/// The accounts an org asks to connect, and those proven so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// (request field, account id), in request order.
    requested: Vec<(&'static str, String)>,
    proven: BTreeSet<(&'static str, String)>,
}

impl Claim {
    pub fn new(requested: Vec<(&'static str, String)>) -> Claim {
        Claim {
            requested,
            proven: BTreeSet::new(),
        }
    }

    /// Marks `id` proven for the accounts listed in `field`, if it was requested there.
    pub fn prove(&mut self, field: &'static str, id: &str) {
        if self.requested.iter().any(|(f, a)| *f == field && a == id) {
            self.proven.insert((field, id.to_string()));
        }
    }

    /// Marks a page the token administers proven, with its Instagram business account.
    pub fn prove_page(&mut self, page: &ManagedPage) {
        self.prove("page_ids", &page.id);
        if let Some(account) = &page.instagram_business_account {
            self.prove("account_ids", account);
        }
    }

    /// Whether an account of `field` still awaits its proof.
    pub fn wants(&self, field: &'static str) -> bool {
        self.missing().iter().any(|(f, _)| *f == field)
    }

    /// The requested accounts not proven yet, in request order.
    pub fn missing(&self) -> Vec<(&'static str, String)> {
        self.requested
            .iter()
            .filter(|entry| !self.proven.contains(*entry))
            .cloned()
            .collect()
    }

    pub fn is_complete(&self) -> bool {
        self.missing().is_empty()
    }
}

/// A platform answer that is not the shape its documentation gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnexpectedAnswer(pub String);

fn parse(body: &str, what: &str) -> Result<Value, UnexpectedAnswer> {
    serde_json::from_str(body).map_err(|_| UnexpectedAnswer(format!("{what}: not JSON")))
}

/// An id that may be a JSON string or number.
fn id_at(value: &Value, key: &str) -> Option<String> {
    match value.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `GET /me?fields=id,name`: the id of whoever the token speaks for (a user, a page, or an
/// Instagram account under Instagram Login).
pub fn graph_me_id(body: &str) -> Result<String, UnexpectedAnswer> {
    id_at(&parse(body, "Graph me")?, "id")
        .ok_or_else(|| UnexpectedAnswer("Graph me: no id".to_string()))
}

/// A page the token administers, as `me/accounts` or a page lookup report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedPage {
    pub id: String,
    pub instagram_business_account: Option<String>,
}

/// A page of `me/accounts` with what a person picking it sees, and the page's own token (Graph
/// derives it from the user token that listed it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPage {
    pub page: ManagedPage,
    pub name: Option<String>,
    pub access_token: Option<String>,
    /// The `username` of the page's Instagram business account, when the listing expanded it.
    pub instagram_username: Option<String>,
}

/// One page of `GET /me/accounts`: the pages, and the cursor of the next page when there is one.
pub fn graph_managed_pages(
    body: &str,
) -> Result<(Vec<ManagedPage>, Option<String>), UnexpectedAnswer> {
    let (listed, next) = graph_listed_pages(body)?;
    Ok((listed.into_iter().map(|listed| listed.page).collect(), next))
}

/// [`graph_managed_pages`] with each page's name, token and Instagram username.
pub fn graph_listed_pages(
    body: &str,
) -> Result<(Vec<ListedPage>, Option<String>), UnexpectedAnswer> {
    let value = parse(body, "Graph me/accounts")?;
    let data = value
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| UnexpectedAnswer("Graph me/accounts: no data list".to_string()))?;
    let text = |value: &Value, key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let pages = data
        .iter()
        .filter_map(|entry| {
            Some(ListedPage {
                page: managed_page(entry)?,
                name: text(entry, "name"),
                access_token: text(entry, "access_token"),
                instagram_username: entry
                    .get("instagram_business_account")
                    .and_then(|account| text(account, "username")),
            })
        })
        .collect();
    // Graph gives `paging.next` only when there is a further page; its cursor is `after`.
    let next = value
        .get("paging")
        .filter(|paging| paging.get("next").is_some())
        .and_then(|paging| paging.pointer("/cursors/after"))
        .and_then(Value::as_str)
        .filter(|cursor| !cursor.is_empty())
        .map(str::to_string);
    Ok((pages, next))
}

/// `GET /{page-id}?fields=id,name,access_token,instagram_business_account`: the page as its
/// administrator sees it, or `None` when the answer holds no page `access_token`. Graph gives a
/// page's token only to a token that administers the page, while a public page's id and name
/// may be readable by anyone, so the token is the proof.
pub fn graph_page(body: &str) -> Result<Option<ManagedPage>, UnexpectedAnswer> {
    let value = parse(body, "Graph page")?;
    let page =
        managed_page(&value).ok_or_else(|| UnexpectedAnswer("Graph page: no id".to_string()))?;
    let administered = value
        .get("access_token")
        .and_then(Value::as_str)
        .is_some_and(|token| !token.is_empty());
    Ok(administered.then_some(page))
}

fn managed_page(value: &Value) -> Option<ManagedPage> {
    Some(ManagedPage {
        id: id_at(value, "id")?,
        instagram_business_account: value
            .get("instagram_business_account")
            .and_then(|account| id_at(account, "id")),
    })
}

/// One page of a LinkedIn finder (`elements`), and whether a further page may exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedinListing {
    /// Ids of the accounts the elements grant.
    pub ids: Vec<String>,
    pub more: bool,
}

/// `GET /organizationAcls?q=roleAssignee&role=ADMINISTRATOR&state=APPROVED`: organisations the
/// member administers. Each element is checked again, whatever the query asked for.
pub fn linkedin_administered_organizations(
    body: &str,
    page_size: usize,
) -> Result<LinkedinListing, UnexpectedAnswer> {
    linkedin_listing(body, page_size, "organizationAcls", |element| {
        let approved_admin = element.get("role").and_then(Value::as_str) == Some("ADMINISTRATOR")
            && element.get("state").and_then(Value::as_str) == Some("APPROVED");
        approved_admin
            .then(|| element.get("organization").and_then(Value::as_str))
            .flatten()
            .and_then(urn_id)
    })
}

/// `GET /adAccountUsers?q=authenticatedUser`: ad accounts the member may manage.
pub fn linkedin_managed_ad_accounts(
    body: &str,
    page_size: usize,
) -> Result<LinkedinListing, UnexpectedAnswer> {
    linkedin_listing(body, page_size, "adAccountUsers", |element| {
        let role = element.get("role").and_then(Value::as_str)?;
        if READ_ONLY_AD_ROLES.contains(&role) {
            return None;
        }
        element
            .get("account")
            .and_then(Value::as_str)
            .and_then(urn_id)
    })
}

fn linkedin_listing(
    body: &str,
    page_size: usize,
    what: &str,
    grant: impl Fn(&Value) -> Option<String>,
) -> Result<LinkedinListing, UnexpectedAnswer> {
    let value = parse(body, what)?;
    let elements = value
        .get("elements")
        .and_then(Value::as_array)
        .ok_or_else(|| UnexpectedAnswer(format!("{what}: no elements list")))?;
    let ids = elements.iter().filter_map(grant).collect();
    // Rest.li paging: `paging.total` when given, else a full page suggests another.
    let more = match value.pointer("/paging/total").and_then(Value::as_u64) {
        Some(total) => {
            let start = value
                .pointer("/paging/start")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            start + (elements.len() as u64) < total
        }
        None => elements.len() >= page_size,
    };
    Ok(LinkedinListing { ids, more })
}

/// The problem text for accounts the token could not be shown to administer.
pub fn not_administered_message(platform: &str, id: &str) -> String {
    match platform {
        "facebook" => format!(
            "the access token does not administer page {id}: it is neither the page's own token \
             nor a user token with the page in me/accounts"
        ),
        "instagram" => format!(
            "the access token does not administer Instagram account {id}: it is not the \
             instagram_business_account of a page the token administers, nor the token's own account"
        ),
        _ => format!(
            "the access token's member does not administer {id} (organizationAcls: an APPROVED \
             ADMINISTRATOR role; adAccountUsers: a role other than VIEWER)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_complete_only_when_every_requested_account_is_proven() {
        let mut claim = Claim::new(vec![
            ("page_ids", "1".to_string()),
            ("page_ids", "2".to_string()),
        ]);
        assert!(claim.wants("page_ids"));
        claim.prove("page_ids", "2");
        claim.prove("page_ids", "3");
        claim.prove("account_ids", "1");
        assert_eq!(claim.missing(), vec![("page_ids", "1".to_string())]);
        assert!(!claim.is_complete());
        claim.prove("page_ids", "1");
        assert!(claim.is_complete());
        assert!(!claim.wants("page_ids"));
    }

    #[test]
    fn a_managed_page_proves_itself_and_its_instagram_account() {
        let mut claim = Claim::new(vec![
            ("page_ids", "1".to_string()),
            ("account_ids", "9".to_string()),
        ]);
        claim.prove_page(&ManagedPage {
            id: "1".into(),
            instagram_business_account: Some("9".into()),
        });
        assert!(claim.is_complete());
        // An account is proven only in the field that asked for it.
        let mut claim = Claim::new(vec![("account_ids", "1".to_string())]);
        claim.prove_page(&ManagedPage {
            id: "1".into(),
            instagram_business_account: None,
        });
        assert!(!claim.is_complete());
    }

    #[test]
    fn graph_me_reads_string_and_number_ids() {
        assert_eq!(graph_me_id(r#"{"id":"123","name":"Acme"}"#).unwrap(), "123");
        assert_eq!(graph_me_id(r#"{"id":123}"#).unwrap(), "123");
        assert!(graph_me_id(r#"{"name":"x"}"#).is_err());
        assert!(graph_me_id("<html>").is_err());
    }

    #[test]
    fn managed_pages_and_their_next_cursor() {
        let body = r#"{"data":[{"id":"11","name":"A","access_token":"t","tasks":["MANAGE"]},
            {"id":"12","instagram_business_account":{"id":"99"}},{"name":"no id"}],
            "paging":{"cursors":{"before":"b","after":"c2"},"next":"https://graph/next"}}"#;
        let (pages, next) = graph_managed_pages(body).unwrap();
        assert_eq!(
            pages,
            vec![
                ManagedPage {
                    id: "11".into(),
                    instagram_business_account: None
                },
                ManagedPage {
                    id: "12".into(),
                    instagram_business_account: Some("99".into())
                },
            ]
        );
        assert_eq!(next.as_deref(), Some("c2"));
        let last = r#"{"data":[],"paging":{"cursors":{"before":"b","after":"c3"}}}"#;
        assert_eq!(graph_managed_pages(last).unwrap().1, None);
        assert!(graph_managed_pages(r#"{"error":{"code":190}}"#).is_err());
    }

    #[test]
    fn a_page_lookup_proves_administration_only_with_the_page_token() {
        let admin = r#"{"id":"12","name":"P","access_token":"EAAP","instagram_business_account":{"id":"99"}}"#;
        assert_eq!(
            graph_page(admin).unwrap(),
            Some(ManagedPage {
                id: "12".into(),
                instagram_business_account: Some("99".into())
            })
        );
        // A public page read by a token that does not administer it.
        assert_eq!(graph_page(r#"{"id":"12","name":"P"}"#).unwrap(), None);
        assert_eq!(
            graph_page(r#"{"id":"12","access_token":""}"#).unwrap(),
            None
        );
        assert!(graph_page(r#"{"name":"P"}"#).is_err());
    }

    #[test]
    fn only_approved_administrators_prove_an_organization() {
        let body = r#"{"elements":[
            {"organization":"urn:li:organization:1","role":"ADMINISTRATOR","state":"APPROVED"},
            {"organization":"urn:li:organization:2","role":"ADMINISTRATOR","state":"REQUESTED"},
            {"organization":"urn:li:organization:3","role":"RECRUITING_POSTER","state":"APPROVED"},
            {"organization":"urn:li:organization:4","role":"ADMINISTRATOR","state":"REVOKED"}],
            "paging":{"start":0,"count":100,"total":4}}"#;
        let listing = linkedin_administered_organizations(body, 100).unwrap();
        assert_eq!(listing.ids, vec!["1".to_string()]);
        assert!(!listing.more);
    }

    #[test]
    fn viewers_do_not_prove_an_ad_account() {
        let body = r#"{"elements":[
            {"account":"urn:li:sponsoredAccount:7","role":"ACCOUNT_MANAGER"},
            {"account":"urn:li:sponsoredAccount:8","role":"VIEWER"},
            {"account":"urn:li:sponsoredAccount:9"}]}"#;
        let listing = linkedin_managed_ad_accounts(body, 100).unwrap();
        assert_eq!(listing.ids, vec!["7".to_string()]);
        assert!(!listing.more);
    }

    #[test]
    fn linkedin_paging_without_a_total_follows_full_pages() {
        let full = r#"{"elements":[{"account":"urn:li:sponsoredAccount:1","role":"ACCOUNT_MANAGER"},
            {"account":"urn:li:sponsoredAccount:2","role":"CAMPAIGN_MANAGER"}]}"#;
        assert!(linkedin_managed_ad_accounts(full, 2).unwrap().more);
        let with_total = r#"{"elements":[{"organization":"urn:li:organization:1","role":"ADMINISTRATOR","state":"APPROVED"}],
            "paging":{"start":100,"count":100,"total":150}}"#;
        assert!(
            linkedin_administered_organizations(with_total, 100)
                .unwrap()
                .more
        );
        assert!(linkedin_administered_organizations(r#"{"message":"x"}"#, 100).is_err());
    }
}
