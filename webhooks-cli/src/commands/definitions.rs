//! `reset-hook-definitions`, `reset-hook-definition` and `start-module`: the hook definitions
//! (KAZOO's `webhook_meta` documents in the master account, spec §11, §12) that KAZOO's
//! crossbar and Monster UI read the hook types from. Writing them is
//! `webhooks_core::definitions`; these commands choose what to delete and print what happened.

use std::io::Write;

use webhooks_core::config::WebhooksConfig;
use webhooks_core::definitions::{self, definition_id, module_name};
use webhooks_core::store::StoreError;
use webhooks_core::{ModuleRegistry, Store};

use crate::CliError;

/// Deletes every stored definition (every `webhooks_*` id), then writes afresh those of the
/// deleted ones a module writes, dropping keys the modules no longer have. A definition no
/// module writes stays deleted; a module whose definition was not stored stays without one
/// (`start-module` writes it), as in KAZOO, which re-initialises only what it deleted.
///
/// Prints `reinitialized hooks: a, b`. Definitions that could not be deleted end the command
/// with `failed to delete hook definitions: ids` (the rest are reset); a listing that fails
/// resets nothing: `failed to clear old hook definitions: E`.
pub async fn reset_hook_definitions(
    store: &dyn Store,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let registry = registry(store).await?;
    let stored = store
        .definitions()
        .await
        .map_err(CliError::ClearDefinitions)?;
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for id in stored.iter().filter_map(|doc| doc.id()) {
        match store.delete_definition(id).await {
            // Gone already (another operator, another node's reset): as good as deleted.
            Ok(()) | Err(StoreError::NotFound) => deleted.push(id.to_owned()),
            Err(_) => failed.push(id.to_owned()),
        }
    }
    reinitialise(store, &registry, &deleted, out).await?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::DeleteDefinitions(failed))
    }
}

/// Deletes one definition (`webhooks_x` or `x`) and writes it afresh when a module writes it.
/// A definition that is not stored, or cannot be deleted, is `failed to clear hook <id>: E`.
pub async fn reset_hook_definition(
    store: &dyn Store,
    hook: &str,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let registry = registry(store).await?;
    let id = definition_id(module_name(hook));
    store
        .delete_definition(&id)
        .await
        .map_err(|source| CliError::ClearHook {
            id: id.clone(),
            source,
        })?;
    reinitialise(store, &registry, &[id], out).await
}

/// Writes one module's definition (`webhooks_x` or `x`) by the rule of the daemon's start:
/// created when missing, merged into the stored one when it differs (keys the module dropped
/// survive; a reset drops them), left alone when equal.
pub async fn start_module(
    store: &dyn Store,
    module: &str,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let registry = registry(store).await?;
    let name = module_name(module);
    match definitions::init_one(store, &registry, name).await? {
        Some(_) => {
            writeln!(out, "started module {}", definition_id(name))?;
            Ok(())
        }
        None => {
            let known: Vec<String> = registry
                .catalogue()
                .iter()
                .map(|m| definition_id(&m.id))
                .collect();
            Err(CliError::UnknownModule(module.to_owned(), known.join(", ")))
        }
    }
}

/// The modules the daemon runs, with the object types it is configured with (they are part
/// of the `object` module's definition).
async fn registry(store: &dyn Store) -> Result<ModuleRegistry, CliError> {
    let config = WebhooksConfig::from_doc(store.system_config("webhooks").await?.as_ref());
    Ok(webhooks_modules::kazoo_registry(&config.object_types))
}

/// Writes the definitions of the `deleted` ids that a module writes, and says which were
/// written and which stay deleted for want of a module.
async fn reinitialise(
    store: &dyn Store,
    registry: &ModuleRegistry,
    deleted: &[String],
    out: &mut impl Write,
) -> Result<(), CliError> {
    let mut written = Vec::new();
    let mut orphans = Vec::new();
    for id in deleted {
        // `Raced` counts as written: another node wrote the same definition first.
        match definitions::init_one(store, registry, id).await? {
            Some(_) => written.push(id.as_str()),
            None => orphans.push(id.as_str()),
        }
    }
    // KAZOO prints this line even when nothing was stored to reset.
    if !written.is_empty() || orphans.is_empty() {
        writeln!(out, "reinitialized hooks: {}", written.join(", "))?;
    }
    if !orphans.is_empty() {
        writeln!(
            out,
            "deleted hook definitions of unknown modules: {}",
            orphans.join(", ")
        )?;
    }
    Ok(())
}
