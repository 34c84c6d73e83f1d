//! `set-failure-expiry` and `set-disable-threshold`: the disabler's window and threshold
//! (spec §2.6, §8), system-wide or for one account.

use std::io::Write;

use webhooks_core::store::StoreError;
use webhooks_core::{AccountId, Store};

use crate::CliError;

/// The configuration category both settings live in (`system_config/webhooks`,
/// `configs_webhooks` in the account).
const CATEGORY: &str = "webhooks";
const EXPIRY_KEY: &str = "attempt_failure_expiry_ms";
const COUNT_KEY: &str = "attempt_failure_count";

/// How often a save that lost a race with another writer (the daemon persisting a default,
/// another operator) is re-read and retried before giving up.
const CONFLICT_ATTEMPTS: usize = 5;

/// Sets `attempt_failure_expiry_ms`.
///
/// Only non-negative integers are taken: the engine reads the value as unsigned and would
/// silently fall back to the default for anything else, so a negative value is refused with
/// KAZOO's message instead of being written and ignored.
pub async fn set_failure_expiry(
    store: &dyn Store,
    account: Option<&AccountId>,
    ms: &str,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let ms: u64 = ms.parse().map_err(|_| CliError::BadExpiry)?;
    set_key(store, account, EXPIRY_KEY, ms).await?;
    match account {
        None => writeln!(out, "set default expiry for failure attempts to {ms}ms")?,
        Some(account) => writeln!(
            out,
            "set default expiry for failure attempts to {ms}ms on account {account}"
        )?,
    }
    Ok(())
}

/// Sets `attempt_failure_count`. The engine reads it as a 32-bit count, so larger values are
/// refused rather than written and wrapped. KAZOO's message does not name the account, even
/// when one was given; neither does this one.
pub async fn set_disable_threshold(
    store: &dyn Store,
    account: Option<&AccountId>,
    count: &str,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let count: u32 = count.parse().map_err(|_| CliError::BadCount)?;
    set_key(store, account, COUNT_KEY, u64::from(count)).await?;
    writeln!(
        out,
        "set default count of failed attempts to disable hook to {count}"
    )?;
    Ok(())
}

/// Writes one key into the system document (no account) or the account's document, keeping
/// every other key. Creates the document when there is none.
async fn set_key(
    store: &dyn Store,
    account: Option<&AccountId>,
    key: &str,
    value: u64,
) -> Result<(), CliError> {
    if let Some(account) = account {
        if store.account(account).await?.is_none() {
            return Err(CliError::UnknownAccount(account.clone()));
        }
    }
    for _ in 0..CONFLICT_ATTEMPTS {
        let current = match account {
            None => store.system_config(CATEGORY).await?,
            Some(account) => store.account_config(account, CATEGORY).await?,
        };
        let mut doc = current.unwrap_or_default();
        doc.set(key, value);
        let saved = match account {
            None => store.save_system_config(CATEGORY, doc).await,
            Some(account) => store.save_account_config(account, CATEGORY, doc).await,
        };
        match saved {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}
