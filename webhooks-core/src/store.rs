//! Storage, behind small traits so the embedded default and CouchDB are interchangeable.
//!
//! Documents keep KAZOO's layout (`_id`, `_rev`, `pvt_*`). Revisions follow CouchDB's rule:
//! saving a document whose `_rev` is not the stored one is a [`StoreError::Conflict`]; creating
//! a document that exists is a conflict too. Implementations assign `_rev` on every save.

use async_trait::async_trait;

use crate::doc::Doc;
use crate::ids::AccountId;

/// Errors every store may return.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The `_rev` did not match the stored revision (or the doc already exists on create).
    #[error("document update conflict")]
    Conflict,
    #[error("document not found")]
    NotFound,
    /// The backend failed (I/O, corruption, server error). Crossbar answers 503 for these.
    #[error("datastore fault: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Accounts and their api keys.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates (no `_rev`) or updates (matching `_rev`) an account document; returns it saved.
    async fn save_account(&self, doc: Doc) -> StoreResult<Doc>;
    async fn account(&self, id: &AccountId) -> StoreResult<Option<Doc>>;
    /// Every account document (the tree is rebuilt from these at start).
    async fn accounts(&self) -> StoreResult<Vec<Doc>>;
    /// The account whose `pvt_api_key` is `key`.
    async fn account_by_api_key(&self, key: &str) -> StoreResult<Option<Doc>>;
    /// Removes an account document and every webhook it owns, atomically.
    async fn delete_account(&self, id: &AccountId) -> StoreResult<()>;
}

/// Webhook documents (KAZOO's `webhooks` database).
#[async_trait]
pub trait HookStore: Send + Sync {
    async fn save_hook(&self, doc: Doc) -> StoreResult<Doc>;
    /// A webhook document by id, soft-deleted ones included (callers decide what to show).
    async fn hook(&self, id: &str) -> StoreResult<Option<Doc>>;
    /// An account's webhook documents that are not soft-deleted, ordered by id ascending.
    async fn hooks_of_account(&self, account: &AccountId) -> StoreResult<Vec<Doc>>;
    /// Every webhook document that is not soft-deleted (the hook table loads these).
    async fn all_hooks(&self) -> StoreResult<Vec<Doc>>;
    /// Removes a webhook document for good.
    async fn delete_hook(&self, id: &str) -> StoreResult<()>;
    /// Webhook documents written after `since` (a position a previous call returned, 0 for the
    /// beginning), soft-deleted ones included, oldest first, at most `limit`; and the position
    /// to ask from next time. Lets a process follow writes made by another (the CLI, another
    /// daemon), like CouchDB's `_changes` feed.
    ///
    /// Positions only grow: every write gets a higher one than any write before it, and a write
    /// is never given a position at or below one a call has already returned, so handing `last`
    /// back as `since` neither repeats nor skips a write. Each hook appears once, at its latest
    /// write, with its current document: a follower applies the docs in order and is up to date
    /// as of `last`. From 0, the feed lists every stored hook, so a follower can start from it
    /// alone, without a separate [`all_hooks`](Self::all_hooks) that could race with writes.
    ///
    /// A hard-deleted hook ([`delete_hook`](Self::delete_hook),
    /// [`delete_account`](AccountStore::delete_account)) appears as the tombstone
    /// `{"_id": id, "pvt_account_id": account, "pvt_deleted": true}`, so a follower that drops
    /// soft-deleted hooks drops it too. A backend keeps tombstones for a bounded window it
    /// documents; a follower that may have fallen further behind than that (stopped for a long
    /// time while positions moved on) could miss a hard delete, and should start again from 0.
    async fn hook_changes(&self, since: u64, limit: usize) -> StoreResult<HookChanges>;
}

/// One page of the webhook change feed ([`HookStore::hook_changes`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HookChanges {
    /// Changed hooks, oldest change first, each once, at its latest version (or tombstone).
    pub docs: Vec<Doc>,
    /// The position this page covers up to: pass it as the next call's `since`.
    pub last: u64,
}

/// Which attempts to list, newest first unless `ascending`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptQuery {
    pub account: AccountId,
    pub hook: Option<String>,
    /// Inclusive range of `pvt_created`, gregorian seconds.
    pub created_from: i64,
    pub created_to: i64,
    pub ascending: bool,
    /// At most this many.
    pub limit: usize,
    /// Start at this cursor (inclusive): a previous page's `next`, so pages neither overlap
    /// nor skip.
    pub start: Option<AttemptCursor>,
}

/// A position in an attempt listing: (created, sequence) is unique and totally ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AttemptCursor {
    pub created: i64,
    pub seq: i64,
}

/// One page of attempts plus where the next page starts (the first row not returned).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttemptPage {
    pub attempts: Vec<Doc>,
    pub next: Option<AttemptCursor>,
}

/// Delivery attempts (KAZOO keeps them in the account's monthly database).
#[async_trait]
pub trait AttemptStore: Send + Sync {
    /// Saves a batch in one transaction, all or nothing. The batch is shared, not owned, so a
    /// caller that retries after an error hands the same documents again without copying them.
    async fn save_attempts(&self, docs: std::sync::Arc<[Doc]>) -> StoreResult<()>;
    async fn attempts(&self, query: AttemptQuery) -> StoreResult<AttemptPage>;
    /// Deletes attempts created before `before` (gregorian seconds); returns how many.
    async fn prune_attempts(&self, before: i64) -> StoreResult<u64>;
}

/// Configuration documents: `system_config/<category>` and per-account `configs_<category>`.
#[async_trait]
pub trait ConfigStore: Send + Sync {
    /// The system config document of a category (`webhooks`, `crossbar`, ...).
    async fn system_config(&self, category: &str) -> StoreResult<Option<Doc>>;
    async fn save_system_config(&self, category: &str, doc: Doc) -> StoreResult<Doc>;
    /// An account's config document of a category (KAZOO's `configs_<category>`).
    async fn account_config(&self, account: &AccountId, category: &str)
        -> StoreResult<Option<Doc>>;
    async fn save_account_config(
        &self,
        account: &AccountId,
        category: &str,
        doc: Doc,
    ) -> StoreResult<Doc>;
}

/// Everything the engine stores.
pub trait Store: AccountStore + HookStore + AttemptStore + ConfigStore + 'static {}
impl<T: AccountStore + HookStore + AttemptStore + ConfigStore + 'static> Store for T {}
