//! Re-enabling auto-disabled hooks (spec §9), shared by the API's bulk PATCH, crossbar's
//! re-enable request over AMQP (the engine) and the CLI.
//!
//! Only hooks the disabler switched off (`enabled: false` with `pvt_disabled_message`) are
//! touched; a hook an admin disabled by hand stays disabled.

use crate::account::Account;
use crate::doc::Doc;
use crate::hook::doc_is_auto_disabled;
use crate::ids::AccountId;
use crate::store::{AccountStore, HookStore, Store, StoreError, StoreResult};

/// Clears the auto-disable marker on a document; returns false when there was none.
pub fn clear_auto_disable(doc: &mut Doc) -> bool {
    if !doc_is_auto_disabled(doc) {
        return false;
    }
    doc.set("enabled", true);
    doc.remove("pvt_disabled_message");
    doc.touch();
    true
}

/// `account` and, with `descendants`, every account whose tree names it, in id order. An
/// account that does not exist is still listed: KAZOO only reads its descendants.
pub async fn account_tree(
    store: &dyn AccountStore,
    account: &AccountId,
    descendants: bool,
) -> StoreResult<Vec<AccountId>> {
    let mut tree = vec![account.clone()];
    if descendants {
        let mut below: Vec<AccountId> = store
            .accounts()
            .await?
            .iter()
            .filter_map(Account::from_doc)
            .filter(|a| a.is_descendant_of(account))
            .map(|a| a.id)
            .collect();
        below.sort();
        tree.extend(below);
    }
    Ok(tree)
}

/// Re-enables the auto-disabled hooks of `account` (and of its descendants); returns, per
/// account in [`account_tree`] order, the documents saved. The caller applies them to the
/// running engine, if any.
pub async fn reenable_tree(
    store: &dyn Store,
    account: &AccountId,
    descendants: bool,
) -> StoreResult<Vec<(AccountId, Vec<Doc>)>> {
    let mut done = Vec::new();
    for a in account_tree(store, account, descendants).await? {
        let saved = reenable_account_hooks(store, &a).await?;
        done.push((a, saved));
    }
    Ok(done)
}

/// Re-enables every auto-disabled hook of one account; returns the re-enabled hooks' saved
/// documents. A hook edited concurrently is re-read and retried once.
pub async fn reenable_account_hooks(
    store: &dyn HookStore,
    account: &AccountId,
) -> StoreResult<Vec<Doc>> {
    let mut done = Vec::new();
    for mut doc in store.hooks_of_account(account).await? {
        if !clear_auto_disable(&mut doc) {
            continue;
        }
        match store.save_hook(doc.clone()).await {
            Ok(saved) => done.push(saved),
            Err(StoreError::Conflict) => {
                let Some(id) = doc.id() else { continue };
                if let Some(mut fresh) = store.hook(id).await? {
                    if clear_auto_disable(&mut fresh) {
                        done.push(store.save_hook(fresh).await?);
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
