//! The CouchDB store: KAZOO's own databases and documents, so the engine can run beside (or
//! instead of) KAZOO's webhooks app on the same cluster.
//!
//! | what | where |
//! |---|---|
//! | webhooks | `webhooks`, with KAZOO's `_design/webhooks` ([`hooks`], [`changes`]) |
//! | accounts | `account/xx/yy/rest` (id = account id), copied into `accounts` ([`accounts`]) |
//! | api keys | `accounts/listing_by_api`, KAZOO's view or the same one of this store's own |
//! | configuration | `system_config/<category>`, `configs_<category>` in the account's db ([`configs`]) |
//! | attempts | the account's MODB `account/xx/yy/rest-YYYYMM` ([`attempts`], [`months`]) |
//! | signing keys | `system_auth/<kid>`, attachment `private_key.pem` ([`auth_keys`]) |
//! | hook definitions | `webhooks_<module>` in the master account's db ([`definitions`]) |
//!
//! Every request goes through couch_rs's client ([`client`]), with a 10 s bound, so a CouchDB
//! that is down or stuck answers [`StoreError::Backend`] (crossbar's 503) rather than hanging.
//! A 409 is a [`StoreError::Conflict`], CouchDB's own revision rule doing the work.
//!
//! CouchDB has no transactions across documents, so what the traits ask to be atomic is done
//! in an order that is safe to repeat: deleting an account buries its hooks first (so none
//! fires for a gone account), then its configuration, then the account document.

mod accounts;
mod attempts;
mod auth_keys;
mod changes;
mod client;
mod config;
mod configs;
mod definitions;
mod hooks;
mod months;
mod names;
mod views;

use std::sync::Arc;

use async_trait::async_trait;
use webhooks_core::store::{
    AccountStore, AttemptPage, AttemptQuery, AttemptStore, AuthKeyStore, ConfigStore,
    DefinitionStore, FeedPosition, HookChanges, HookStore, StoreError, StoreResult,
};
use webhooks_core::{AccountId, Doc};

pub use config::CouchConfig;

use client::Couch;
use names::{ACCOUNTS, SYSTEM_AUTH, SYSTEM_CONFIG, WEBHOOKS};
use views::ApiKeyView;

/// A CouchDB-backed [`Store`](webhooks_core::Store). Cloning is cheap and shares the client.
#[derive(Clone)]
pub struct CouchStore {
    couch: Couch,
    api_key_view: ApiKeyView,
    months: Arc<months::Months>,
}

impl std::fmt::Debug for CouchStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CouchStore").finish_non_exhaustive()
    }
}

impl CouchStore {
    /// Connects, creates `webhooks`, `accounts`, `system_config` and `system_auth` when
    /// missing, and installs the design documents ([`register_views`](Self::register_views)).
    pub async fn connect(config: CouchConfig) -> Result<CouchStore, StoreError> {
        let couch = Couch::new(&config)?;
        for db in [WEBHOOKS, ACCOUNTS, SYSTEM_CONFIG, SYSTEM_AUTH] {
            couch.create_db(db).await?;
        }
        let api_key_view = views::register(&couch).await?;
        Ok(CouchStore {
            couch,
            api_key_view,
            months: Arc::default(),
        })
    }

    /// Installs (or brings up to date) the design documents of the shared databases: KAZOO's
    /// `_design/webhooks` in `webhooks`, and this store's own views where KAZOO has none.
    /// KAZOO's design documents are never overwritten except `webhooks`' own.
    pub async fn register_views(&self) -> Result<(), StoreError> {
        views::register(&self.couch).await.map(drop)
    }
}

/// kazoo_auth's `system_auth/<kid>`, the PEM as its `private_key.pem` attachment.
#[async_trait]
impl AuthKeyStore for CouchStore {
    async fn auth_key(&self, kid: &str) -> StoreResult<Option<Vec<u8>>> {
        auth_keys::get(&self.couch, kid).await
    }

    /// Stores signing key `kid` as kazoo_auth does, replacing the PEM if there was one.
    async fn save_auth_key(&self, kid: &str, pem: &[u8]) -> StoreResult<()> {
        auth_keys::save(&self.couch, kid, pem).await
    }
}

#[async_trait]
impl AccountStore for CouchStore {
    async fn save_account(&self, doc: Doc) -> StoreResult<Doc> {
        accounts::save(&self.couch, doc).await
    }

    async fn account(&self, id: &AccountId) -> StoreResult<Option<Doc>> {
        accounts::get(&self.couch, id).await
    }

    async fn accounts(&self) -> StoreResult<Vec<Doc>> {
        accounts::all(&self.couch).await
    }

    async fn account_by_api_key(&self, key: &str) -> StoreResult<Option<Doc>> {
        accounts::by_api_key(&self.couch, self.api_key_view, key).await
    }

    /// The id stays buried as CouchDB's own tombstone of the `accounts` copy (kept through
    /// compaction; only a `_purge` would free the id again).
    async fn delete_account(&self, id: &AccountId) -> StoreResult<()> {
        hooks::bury_account(&self.couch, id).await?;
        attempts::delete_account(&self.couch, &self.months, id).await?;
        accounts::delete(&self.couch, id).await
    }
}

#[async_trait]
impl HookStore for CouchStore {
    async fn save_hook(&self, doc: Doc) -> StoreResult<Doc> {
        hooks::save(&self.couch, doc).await
    }

    async fn hook(&self, id: &str) -> StoreResult<Option<Doc>> {
        hooks::get(&self.couch, id).await
    }

    async fn hooks_of_account(&self, account: &AccountId) -> StoreResult<Vec<Doc>> {
        hooks::of_account(&self.couch, account).await
    }

    async fn all_hooks(&self) -> StoreResult<Vec<Doc>> {
        hooks::all(&self.couch).await
    }

    async fn delete_hook(&self, id: &str) -> StoreResult<()> {
        hooks::delete(&self.couch, id).await
    }

    async fn hook_changes(&self, since: &FeedPosition, limit: usize) -> StoreResult<HookChanges> {
        changes::since(&self.couch, since, limit).await
    }
}

#[async_trait]
impl AttemptStore for CouchStore {
    async fn save_attempts(&self, docs: Arc<[Doc]>) -> StoreResult<()> {
        attempts::save(&self.couch, &self.months, &docs).await
    }

    async fn attempts(&self, query: AttemptQuery) -> StoreResult<AttemptPage> {
        attempts::list(&self.couch, &self.months, query).await
    }

    async fn prune_attempts(&self, before: i64) -> StoreResult<u64> {
        attempts::prune(&self.couch, &self.months, before).await
    }
}

#[async_trait]
impl ConfigStore for CouchStore {
    async fn system_config(&self, category: &str) -> StoreResult<Option<Doc>> {
        configs::system(&self.couch, category).await
    }

    async fn save_system_config(&self, category: &str, doc: Doc) -> StoreResult<Doc> {
        configs::save_system(&self.couch, category, doc).await
    }

    async fn account_config(
        &self,
        account: &AccountId,
        category: &str,
    ) -> StoreResult<Option<Doc>> {
        configs::account(&self.couch, account, category).await
    }

    async fn save_account_config(
        &self,
        account: &AccountId,
        category: &str,
        doc: Doc,
    ) -> StoreResult<Doc> {
        configs::save_account(&self.couch, account, category, doc).await
    }
}

/// KAZOO's `webhook_meta` documents in the master account's database (the account
/// `system_config/accounts` names in `master_account_id`).
#[async_trait]
impl DefinitionStore for CouchStore {
    async fn definitions(&self) -> StoreResult<Vec<Doc>> {
        definitions::all(&self.couch).await
    }

    async fn definition(&self, id: &str) -> StoreResult<Option<Doc>> {
        definitions::get(&self.couch, id).await
    }

    async fn save_definition(&self, doc: Doc) -> StoreResult<Doc> {
        definitions::save(&self.couch, doc).await
    }

    async fn delete_definition(&self, id: &str) -> StoreResult<()> {
        definitions::delete(&self.couch, id).await
    }
}
