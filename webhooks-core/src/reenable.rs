//! Re-enabling auto-disabled hooks (spec §9), shared by the API's bulk PATCH and the CLI.
//!
//! Only hooks the disabler switched off (`enabled: false` with `pvt_disabled_message`) are
//! touched; a hook an admin disabled by hand stays disabled.

use crate::doc::Doc;
use crate::hook::doc_is_auto_disabled;
use crate::ids::AccountId;
use crate::store::{HookStore, StoreError, StoreResult};

/// Clears the auto-disable marker on a document; returns false when there was none.
pub fn clear_auto_disable(doc: &mut Doc) -> bool {
    if !doc_is_auto_disabled(doc) {
        return false;
    }
    doc.set("enabled", true);
    doc.remove("pvt_disabled_message");
    doc.set("pvt_modified", crate::time::now_gregorian());
    true
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
