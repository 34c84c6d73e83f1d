//! Migrating legacy hooks when the table is loaded (KAZOO does it at load too, §10.4). The
//! rewriting is `webhooks_core::legacy`; this saves the result: the migrated hook over the
//! old revision, then its twin, and the twin only if the first save succeeded.
//!
//! It runs on each document as the start-up load reads the change feed, so the store is read
//! once. A saved migration moves the hook to the end of the feed, where the same load meets it
//! again, migrated.

use webhooks_core::ids::new_doc_id;
use webhooks_core::legacy::{is_legacy, migrate};
use webhooks_core::{Doc, Store, StoreError};

/// What became of one document.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Migration {
    /// Not a legacy hook (or one there is no rewriting for): load it as it is.
    Current,
    /// Rewritten and saved here.
    Migrated,
    /// Another node saved a newer version first.
    Superseded,
}

/// Migrates `doc` when it is a legacy hook. In both `Migrated` and `Superseded` cases the
/// document's newer version is further along the change feed.
pub(crate) async fn migrate_legacy_hook(
    store: &dyn Store,
    doc: &Doc,
) -> Result<Migration, StoreError> {
    if !is_legacy(doc) {
        return Ok(Migration::Current);
    }
    let Some((main, twin)) = migrate(doc, new_doc_id) else {
        return Ok(Migration::Current);
    };
    match store.save_hook(main).await {
        Ok(_) => {
            if let Some(twin) = twin {
                store.save_hook(twin).await?;
            }
            tracing::info!(
                hook = doc.id().unwrap_or_default(),
                from = doc.str("hook").unwrap_or_default(),
                "legacy hook migrated"
            );
            Ok(Migration::Migrated)
        }
        Err(StoreError::Conflict) => Ok(Migration::Superseded),
        Err(e) => Err(e),
    }
}
