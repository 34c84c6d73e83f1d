//! `enable-account-hooks` and `enable-descendant-hooks` (spec §9, KAZOO's
//! `webhooks_util:reenable/2`): switch back on the hooks the disabler switched off.

use std::io::Write;

use webhooks_core::reenable::{account_tree, reenable_account_hooks};
use webhooks_core::{AccountId, Store};

use crate::CliError;

/// Re-enables an account's auto-disabled hooks and prints which, in KAZOO's words.
pub async fn enable_account_hooks(
    store: &dyn Store,
    account: &AccountId,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let load_failed = |source| CliError::LoadHooks {
        account: account.clone(),
        source,
    };
    // `reenable_account_hooks` reports only what it changed; KAZOO tells "no hooks at all"
    // apart from "none to re-enable", which needs the listing first.
    if store
        .hooks_of_account(account)
        .await
        .map_err(load_failed)?
        .is_empty()
    {
        writeln!(out, "account {account} has no webhooks configured")?;
        return Ok(());
    }
    let saved = reenable_account_hooks(store, account).await?;
    if saved.is_empty() {
        writeln!(out, "no hooks to re-enable")?;
        return Ok(());
    }
    let ids: Vec<&str> = saved.iter().filter_map(|doc| doc.id()).collect();
    writeln!(out, "re-enabled {} hooks", saved.len())?;
    writeln!(out, "IDs: {}", ids.join(", "))?;
    Ok(())
}

/// Runs [`enable_account_hooks`] for the account, then for each of its descendants (accounts
/// whose `pvt_tree` names it) in id order, announcing each as KAZOO does.
///
/// An account that does not exist is still checked, like KAZOO, which only reads its
/// descendants view: the answer is then "has no webhooks configured".
pub async fn enable_descendant_hooks(
    store: &dyn Store,
    account: &AccountId,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let tree =
        account_tree(store, account, true)
            .await
            .map_err(|source| CliError::FindDescendants {
                account: account.clone(),
                source,
            })?;
    for id in &tree {
        writeln!(out, "## checking account {id} for hooks to enable ##")?;
        enable_account_hooks(store, id, out).await?;
    }
    Ok(())
}
