//! Platform access tokens at rest: sealed under the current `TOKEN_ENCRYPTION_KEY`, opened with it
//! or with a previous key listed in `TOKEN_ENCRYPTION_KEYS_PREVIOUS` during a rotation, and
//! re-sealed under the current key whenever an old one opened them (on use, and by the sync
//! worker's minute sweep), so the previous key can be removed once no row names it.

use leadheat_domain::crypto::{CryptoError, TokenKeyring};
use worker::Env;

use crate::db::StoreError;
use crate::http::Problem;
use crate::store::integrations;
use crate::tenant::{Shard, Tenant};
use crate::{clock, config};

/// The configured keys; a missing or malformed key is a deployment error.
pub fn keyring(env: &Env) -> Result<TokenKeyring, Problem> {
    let current = config::required(env, "TOKEN_ENCRYPTION_KEY")?;
    let previous = config::optional(env, "TOKEN_ENCRYPTION_KEYS_PREVIOUS");
    TokenKeyring::parse(&current, previous.as_deref())
        .map_err(|e| Problem::internal("TOKEN_ENCRYPTION_KEY", e))
}

/// What a sealed token is bound to: its org and platform, so a token copied into another row
/// does not open.
pub fn associated_data(org_id: &str, platform: &str) -> String {
    format!("{org_id}|{platform}")
}

/// Seals an org's token for `platform` under the current key, with a fresh random nonce.
pub fn seal(keyring: &TokenKeyring, org_id: &str, platform: &str, token: &str) -> String {
    keyring.seal(
        clock::random_bytes(),
        token,
        associated_data(org_id, platform).as_bytes(),
    )
}

/// What a pending connection's secrets are bound to: its org and its own id.
fn pending_associated_data(org_id: &str, pending_id: &str) -> String {
    format!("{org_id}|pending|{pending_id}")
}

/// Seals a pending connection's secrets (docs/connect.md) under the current key.
pub fn seal_pending(
    keyring: &TokenKeyring,
    org_id: &str,
    pending_id: &str,
    secrets: &str,
) -> String {
    keyring.seal(
        clock::random_bytes(),
        secrets,
        pending_associated_data(org_id, pending_id).as_bytes(),
    )
}

/// Opens a pending connection's secrets. They live 15 minutes, so they are never re-sealed: a
/// key rotation in between only needs the previous key configured, as it is anyway.
pub fn open_pending(
    keyring: &TokenKeyring,
    org_id: &str,
    pending_id: &str,
    sealed: &str,
) -> Result<String, CryptoError> {
    let aad = pending_associated_data(org_id, pending_id);
    Ok(keyring.open(sealed, aad.as_bytes())?.plaintext)
}

/// Opens an integration's token; one sealed by a previous key is stored again under the current
/// key (best effort: the token is returned either way).
pub async fn open(
    tenant: &Tenant,
    keyring: &TokenKeyring,
    platform: &str,
    sealed: &str,
) -> Result<String, CryptoError> {
    let org_id = tenant.org_id();
    let opened = keyring.open(sealed, associated_data(org_id, platform).as_bytes())?;
    if opened.needs_reseal {
        let resealed = seal(keyring, org_id, platform, &opened.plaintext);
        let key_id = keyring.current().key_id();
        if let Err(problem) =
            integrations::reseal_token(tenant, platform, sealed, &resealed, key_id).await
        {
            worker::console_warn!("re-sealing the {platform} token of {org_id} failed: {problem}");
        }
    }
    Ok(opened.plaintext)
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    pub resealed: u32,
    /// Tokens no configured key opens (their integration will ask for a new token when used).
    pub unreadable: u32,
}

/// Re-seals up to `limit` tokens still sealed by another key than the current one. A token no
/// configured key opens marks its integration as needing a new token (as its next use would), so
/// the sweep does not pick it again.
pub async fn reseal_sweep(
    shard: &Shard,
    keyring: &TokenKeyring,
    limit: u32,
    now: &str,
) -> Result<Sweep, StoreError> {
    let mut sweep = Sweep::default();
    let rows = integrations::sealed_by_other_keys(shard, keyring.current().key_id(), limit).await?;
    for row in rows {
        let tenant = shard.tenant_of_row(&row.org_id);
        let org_id = tenant.org_id();
        let aad = associated_data(org_id, &row.platform);
        match keyring.open(&row.token_ciphertext, aad.as_bytes()) {
            Ok(opened) => {
                let resealed = seal(keyring, org_id, &row.platform, &opened.plaintext);
                if integrations::reseal_token(
                    &tenant,
                    &row.platform,
                    &row.token_ciphertext,
                    &resealed,
                    keyring.current().key_id(),
                )
                .await?
                {
                    sweep.resealed += 1;
                }
            }
            Err(error) => {
                let reason = format!("the stored token cannot be decrypted: {error}");
                integrations::mark_needs_token(&tenant, &row.platform, &reason, now).await?;
                sweep.unreadable += 1;
            }
        }
    }
    Ok(sweep)
}
