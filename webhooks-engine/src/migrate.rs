//! Migrating legacy hooks when the table is loaded (KAZOO does it at load too, §10.4). The
//! rewriting is `webhooks_core::legacy`; this saves the result: the migrated hook over the
//! old revision, then its twin, and the twin only if the first save succeeded.

use rand::RngCore;
use webhooks_core::legacy::{is_legacy, migrate};
use webhooks_core::{Store, StoreError};

fn new_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    webhooks_core::ids::hex32(b)
}

/// Migrates every legacy hook in the store; returns how many documents were rewritten.
pub(crate) async fn migrate_legacy_hooks(store: &dyn Store) -> Result<usize, StoreError> {
    let mut migrated = 0;
    for doc in store.all_hooks().await?.into_iter().filter(is_legacy) {
        let Some((main, twin)) = migrate(&doc, new_id) else {
            continue;
        };
        match store.save_hook(main).await {
            Ok(_) => {
                migrated += 1;
                if let Some(twin) = twin {
                    store.save_hook(twin).await?;
                }
                tracing::info!(
                    hook = doc.id().unwrap_or_default(),
                    from = doc.str("hook").unwrap_or_default(),
                    "legacy hook migrated"
                );
            }
            // Another node migrated it first.
            Err(StoreError::Conflict) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(migrated)
}
