//! Connecting accounts: proves, with the supplied token and through the platform's API, that the
//! token's user administers every account an org asks to connect (the rules and the reading of
//! the answers are `leadheat_domain::ownership`). Nothing is stored here.

use leadheat_domain::ownership::{
    graph_listed_pages, graph_me_id, graph_page, linkedin_administered_organizations,
    linkedin_managed_ad_accounts, Claim, LinkedinListing, ListedPage, ManagedPage,
    UnexpectedAnswer, LISTING_PAGE_SIZE, MAX_LISTING_PAGES, MAX_PAGE_LOOKUPS,
};
use leadheat_domain::sync::{classify_linkedin, classify_meta, Outcome, Policy};
use leadheat_domain::types::Platform;
use worker::Env;

use crate::clock;
use crate::platform_api::{self, encode_segment, Answer, NoAnswer};

/// Why the proof did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofFailure {
    /// The platform rejected the token itself (Graph code 190, LinkedIn 401).
    TokenRejected(String),
    /// The token is valid, but these (request field, account id) are not administered by it.
    NotAdministered(Vec<(&'static str, String)>),
    /// The platform refused a call for another reason than the token (a permission the token
    /// lacks, an unknown object).
    Refused(String),
    /// The platform could not be asked (down, throttled, unexpected answer): try again later.
    Unavailable(String),
}

/// Proves that `token` administers every account in `requested` ((request field, id) pairs).
pub async fn prove(
    env: &Env,
    platform: Platform,
    token: &str,
    requested: Vec<(&'static str, String)>,
) -> Result<(), ProofFailure> {
    let mut claim = Claim::new(requested);
    match platform {
        Platform::Linkedin => prove_linkedin(env, token, &mut claim).await?,
        _ => prove_meta(env, token, &mut claim).await?,
    }
    if claim.is_complete() {
        Ok(())
    } else {
        Err(ProofFailure::NotAdministered(claim.missing()))
    }
}

/// Facebook pages and Instagram accounts: `me`, then `me/accounts`, then pages looked up one by
/// one (for their `instagram_business_account`, or when the listing did not show them).
async fn prove_meta(env: &Env, token: &str, claim: &mut Claim) -> Result<(), ProofFailure> {
    let me = graph_me_id(&graph(env, token, "me", &[("fields", "id,name")]).await?)
        .map_err(unexpected)?;
    // A page token speaks as its page; an Instagram Login token as its account.
    claim.prove("page_ids", &me);
    claim.prove("account_ids", &me);
    if claim.is_complete() {
        return Ok(());
    }
    let listed = match managed_pages(env, token).await {
        Ok(pages) => pages,
        // A page (or Instagram) token has no `me/accounts`.
        Err(ProofFailure::Refused(_)) => Vec::new(),
        Err(other) => return Err(other),
    };
    for page in &listed {
        claim.prove_page(page);
    }
    for id in pages_to_look_up(claim, &listed, &me) {
        if claim.is_complete() {
            break;
        }
        if let Some(page) = look_up_page(env, token, &id).await? {
            claim.prove_page(&page);
        }
    }
    Ok(())
}

/// Pages worth a lookup of their own, at most [`MAX_PAGE_LOOKUPS`]: while Instagram accounts are
/// unproven, the managed pages whose account the listing did not give (or the token's own page);
/// then requested pages the listing did not show.
fn pages_to_look_up(claim: &Claim, listed: &[ManagedPage], me: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    if claim.wants("account_ids") {
        if listed.is_empty() {
            ids.push(me.to_string());
        }
        ids.extend(
            listed
                .iter()
                .filter(|page| page.instagram_business_account.is_none())
                .map(|page| page.id.clone()),
        );
    }
    ids.extend(
        claim
            .missing()
            .into_iter()
            .filter(|(field, _)| *field == "page_ids")
            .map(|(_, id)| id),
    );
    let mut seen = std::collections::BTreeSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    ids.truncate(MAX_PAGE_LOOKUPS);
    ids
}

/// `GET /{page-id}?fields=id,name,access_token,instagram_business_account`: the page when the
/// token administers it (Graph refuses, or leaves out the page's token, otherwise).
async fn look_up_page(
    env: &Env,
    token: &str,
    page_id: &str,
) -> Result<Option<ManagedPage>, ProofFailure> {
    let lookup = graph(
        env,
        token,
        &encode_segment(page_id),
        &[("fields", "id,name,access_token,instagram_business_account")],
    )
    .await;
    match lookup {
        Ok(body) => {
            let page = graph_page(&body).map_err(unexpected)?;
            Ok(page.filter(|page| page.id == page_id))
        }
        Err(ProofFailure::Refused(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Every page of `me/accounts`, up to the listing bound.
async fn managed_pages(env: &Env, token: &str) -> Result<Vec<ManagedPage>, ProofFailure> {
    let listed = listed_pages(env, token).await?;
    Ok(listed.into_iter().map(|listed| listed.page).collect())
}

/// Every page of `me/accounts` with its name, page token and Instagram business account (and
/// that account's username), up to the listing bound.
pub async fn listed_pages(env: &Env, token: &str) -> Result<Vec<ListedPage>, ProofFailure> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    let limit = LISTING_PAGE_SIZE.to_string();
    for _ in 0..MAX_LISTING_PAGES {
        let mut query = vec![
            (
                "fields",
                "id,name,access_token,tasks,instagram_business_account{id,username}",
            ),
            ("limit", limit.as_str()),
        ];
        if let Some(cursor) = &after {
            query.push(("after", cursor.as_str()));
        }
        let body = graph(env, token, "me/accounts", &query).await?;
        let (found, next) = graph_listed_pages(&body).map_err(unexpected)?;
        pages.extend(found);
        match next {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    Ok(pages)
}

/// The LinkedIn organisations the member administers (an APPROVED ADMINISTRATOR role) and the
/// sponsored accounts they manage (any role but VIEWER).
pub async fn linkedin_accounts(
    env: &Env,
    token: &str,
) -> Result<(Vec<String>, Vec<String>), ProofFailure> {
    let organizations = linkedin_listing(
        env,
        token,
        ORGANIZATION_FINDER,
        linkedin_administered_organizations,
    )
    .await?;
    let ad_accounts =
        linkedin_listing(env, token, AD_ACCOUNT_FINDER, linkedin_managed_ad_accounts).await?;
    Ok((organizations, ad_accounts))
}

const ORGANIZATION_FINDER: &str =
    "organizationAcls?q=roleAssignee&role=ADMINISTRATOR&state=APPROVED";
const AD_ACCOUNT_FINDER: &str = "adAccountUsers?q=authenticatedUser";

/// LinkedIn organisations (`organizationAcls`) and sponsored accounts (`adAccountUsers`).
async fn prove_linkedin(env: &Env, token: &str, claim: &mut Claim) -> Result<(), ProofFailure> {
    if claim.wants("organization_ids") {
        let finder = ORGANIZATION_FINDER;
        for id in linkedin_listing(env, token, finder, linkedin_administered_organizations).await? {
            claim.prove("organization_ids", &id);
        }
    }
    if claim.wants("sponsored_account_ids") {
        let finder = AD_ACCOUNT_FINDER;
        for id in linkedin_listing(env, token, finder, linkedin_managed_ad_accounts).await? {
            claim.prove("sponsored_account_ids", &id);
        }
    }
    Ok(())
}

async fn linkedin_listing(
    env: &Env,
    token: &str,
    finder: &str,
    read: fn(&str, usize) -> Result<LinkedinListing, UnexpectedAnswer>,
) -> Result<Vec<String>, ProofFailure> {
    let mut ids = Vec::new();
    for page in 0..MAX_LISTING_PAGES {
        let path = format!(
            "{finder}&start={}&count={LISTING_PAGE_SIZE}",
            page * LISTING_PAGE_SIZE
        );
        let body = judge_linkedin(platform_api::linkedin_get(env, token, &path).await)?;
        let listing = read(&body, LISTING_PAGE_SIZE).map_err(unexpected)?;
        ids.extend(listing.ids);
        if !listing.more {
            break;
        }
    }
    Ok(ids)
}

async fn graph(
    env: &Env,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
) -> Result<String, ProofFailure> {
    judge_meta(platform_api::graph_get(env, token, path, query).await)
}

/// A Graph answer read by the sync's rules: the body, or why the call failed.
pub(crate) fn judge_meta(answer: Result<Answer, NoAnswer>) -> Result<String, ProofFailure> {
    judge(answer, |a| {
        classify_meta(
            &Policy::default(),
            a.status,
            a.app_usage.as_deref(),
            a.business_usage.as_deref(),
            &a.body,
            clock::now(),
        )
        .failure
    })
}

/// A LinkedIn answer read by the sync's rules: the body, or why the call failed.
pub(crate) fn judge_linkedin(answer: Result<Answer, NoAnswer>) -> Result<String, ProofFailure> {
    judge(answer, |a| {
        classify_linkedin(
            &Policy::default(),
            a.status,
            a.retry_after.as_deref(),
            &a.body,
            clock::now(),
        )
        .failure
    })
}

/// The body of a successful answer, or why the proof cannot go on.
fn judge(
    answer: Result<Answer, NoAnswer>,
    classify: impl Fn(&Answer) -> Option<Outcome>,
) -> Result<String, ProofFailure> {
    let answer = answer.map_err(|NoAnswer(why)| ProofFailure::Unavailable(why))?;
    match classify(&answer) {
        None => Ok(answer.body),
        Some(Outcome::TokenInvalid(why)) => Err(ProofFailure::TokenRejected(why)),
        Some(Outcome::Permanent(why)) => Err(ProofFailure::Refused(why)),
        Some(Outcome::Transient { error, .. } | Outcome::RateLimited { error, .. }) => {
            Err(ProofFailure::Unavailable(error))
        }
        Some(Outcome::Deferred { reason, .. }) => Err(ProofFailure::Unavailable(reason)),
        Some(Outcome::Ok) => Ok(answer.body),
    }
}

pub(crate) fn unexpected(error: UnexpectedAnswer) -> ProofFailure {
    ProofFailure::Unavailable(error.0)
}
