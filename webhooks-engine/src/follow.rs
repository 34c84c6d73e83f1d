//! The hook change feed: how the hook table is loaded at start and then kept up with writes
//! made by other processes.
//!
//! The API applies its own writes at once, but the maintenance CLI (or another daemon on the
//! same store) writes documents directly. The store's change feed (`HookStore::hook_changes`,
//! modelled on CouchDB's `_changes`) lists every hook written since a position. [`load`] builds
//! the table from it, a page at a time, and [`follow`] then polls it (every 250 ms by default), handing each
//! change to `LiveHooks::apply_doc` as KAZOO's listener applies a `doc_edited` notice. A change
//! the API (or anyone) already applied is recognised by its revision and not applied twice.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use webhooks_core::live::LiveHooks;
use webhooks_core::store::FeedPosition;
use webhooks_core::table::TableLoader;
use webhooks_core::{Account, Doc, Store, StoreError};

use crate::migrate::{migrate_legacy_hook, Migration};

/// Changes read per store call.
const PAGE: usize = 10_000;

/// What the start-up load did.
pub(crate) struct Loaded {
    /// The feed position reached: following starts exactly there.
    pub(crate) position: FeedPosition,
    /// Documents that could not become hooks.
    pub(crate) skipped: usize,
    /// Legacy hooks migrated on the way.
    pub(crate) migrated: usize,
}

/// Loads the table from the feed, a page at a time, migrating legacy hooks on the way. Only
/// one page of documents is in memory at once.
pub(crate) async fn load(
    store: &dyn Store,
    accounts: &[Account],
    hooks: &LiveHooks,
) -> Result<Loaded, StoreError> {
    let mut loader = TableLoader::new(accounts);
    let (mut since, mut migrated) = (FeedPosition::beginning(), 0);
    loop {
        let page = store.hook_changes(&since, PAGE).await?;
        let n = page.docs.len();
        // A migration (ours or another node's) put newer documents past this page: read on.
        let mut moved = false;
        for doc in &page.docs {
            match migrate_legacy_hook(store, doc).await? {
                Migration::Current => loader.add(doc, hooks.registry()),
                Migration::Migrated => (migrated, moved) = (migrated + 1, true),
                Migration::Superseded => moved = true,
            }
        }
        since = page.last;
        if n < PAGE && !moved {
            let skipped = hooks.load(loader);
            return Ok(Loaded {
                position: since,
                skipped,
                migrated,
            });
        }
    }
}

/// Reads the whole feed from `since`; returns the documents and the position after them.
async fn read_all(
    store: &dyn Store,
    mut since: FeedPosition,
) -> Result<(Vec<Doc>, FeedPosition), StoreError> {
    let mut docs = Vec::new();
    loop {
        let page = store.hook_changes(&since, PAGE).await?;
        let n = page.docs.len();
        docs.extend(page.docs);
        since = page.last;
        if n < PAGE {
            return Ok((docs, since));
        }
    }
}

/// Polls the feed every `every` from `since`, applying changes, until `stop`.
pub(crate) async fn follow(
    store: Arc<dyn Store>,
    hooks: Arc<LiveHooks>,
    mut since: FeedPosition,
    every: Duration,
    stop: CancellationToken,
) {
    // The store may be down for a while (CouchDB restarting): say so once, not every poll.
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match read_all(store.as_ref(), since.clone()).await {
            Ok((docs, last)) => {
                let applied = docs
                    .iter()
                    .filter(|doc| {
                        matches!(
                            hooks.apply_doc(doc),
                            webhooks_core::live::Applied::Applied { .. }
                        )
                    })
                    .count();
                if !docs.is_empty() {
                    tracing::debug!(
                        changes = docs.len(),
                        applied,
                        "hook changes read from the feed"
                    );
                }
                since = last;
                if std::mem::take(&mut failing) {
                    tracing::info!("reading hook changes works again");
                }
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "reading hook changes failed; retrying every poll");
            }
            Err(_) => {}
        }
    }
}
