//! Following hook writes made by other processes.
//!
//! The API updates the hook table itself, but the maintenance CLI (or another daemon on the
//! same store) writes documents directly. The store's change feed (`HookStore::hook_changes`,
//! CouchDB's `_changes` for CouchDB) lists every hook written since a position; the engine
//! loads the table from it at start and then polls it every second, applying each change as
//! KAZOO's listener applies a `doc_edited` notice: the table follows and the hook's failure
//! count starts over.

use std::sync::Arc;
use std::time::Duration;

use webhooks_core::failures::FailureTracker;
use webhooks_core::table::HookTable;
use webhooks_core::{AccountId, Doc, ModuleRegistry, Store, StoreError};

/// Changes read per store call.
pub(crate) const PAGE: usize = 10_000;

/// Reads the whole feed from `since`; returns the documents and the position after them.
pub(crate) async fn read_all(
    store: &dyn Store,
    mut since: u64,
) -> Result<(Vec<Doc>, u64), StoreError> {
    let mut docs = Vec::new();
    loop {
        let page = store.hook_changes(since, PAGE).await?;
        let n = page.docs.len();
        docs.extend(page.docs);
        since = page.last;
        if n < PAGE {
            return Ok((docs, since));
        }
    }
}

/// Polls the feed every `every`, applying changes to the table.
pub(crate) async fn follow(
    store: Arc<dyn Store>,
    registry: ModuleRegistry,
    hooks: Arc<HookTable>,
    failures: Arc<FailureTracker>,
    mut since: u64,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        match read_all(store.as_ref(), since).await {
            Ok((docs, last)) => {
                for doc in &docs {
                    hooks.apply_doc(doc, &registry);
                    if let (Some(a), Some(id)) = (doc.account_id(), doc.id()) {
                        if let Ok(a) = AccountId::parse(a) {
                            failures.flush_hook(&a, id);
                        }
                    }
                }
                if !docs.is_empty() {
                    tracing::debug!(changes = docs.len(), "hook changes applied");
                }
                since = last;
            }
            Err(e) => tracing::warn!(error = %e, "reading hook changes failed"),
        }
    }
}
