//! Storage, behind small traits so any backend (the embedded default today, CouchDB next) is
//! interchangeable; `webhooks_store::contract` is the suite every backend must pass.
//!
//! Documents keep KAZOO's layout (`_id`, `_rev`, `pvt_*`). Revisions follow CouchDB's rule:
//! saving a document whose `_rev` is not the stored one is a [`StoreError::Conflict`]; creating
//! a document that exists is a conflict too. Implementations assign `_rev` on every save, and a
//! 32-hex `_id` to a document saved without one; an `_id` that is not a non-empty string is
//! refused as [`StoreError::Backend`] (callers build documents, so that is a bug upstream).
//!
//! These docs are the contract every backend keeps; `webhooks_store::contract` is the test
//! suite that checks a backend against it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

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
    /// A [`FeedPosition`] or [`AttemptCursor`] this store did not make: garbage, another
    /// backend's, or a token a client edited. The caller's input is wrong, not the store, so
    /// this is not a [`Backend`](Self::Backend) fault; the text is the refused token.
    #[error("not a position this store made: {0:?}")]
    BadPosition(String),
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
    /// [`StoreError::NotFound`] when there was no account document; its webhooks are removed
    /// regardless, so a hook whose account is gone never fires again.
    ///
    /// Its delivery attempts go too, and its id is never used again: saving a new account
    /// (no `_rev`) under a deleted account's id is a [`StoreError::Conflict`], so another
    /// tenant choosing that id on create inherits nothing of the deleted account's.
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
    /// Removes a webhook document for good; [`StoreError::NotFound`] when there was none.
    async fn delete_hook(&self, id: &str) -> StoreResult<()>;
    /// Webhook documents written after `since` (a position a previous call returned, or
    /// [`FeedPosition::beginning`]), soft-deleted ones included, oldest first, at most `limit`;
    /// and the position to ask from next time. Lets a process follow writes made by another
    /// (the CLI, another daemon), like CouchDB's `_changes` feed.
    ///
    /// Positions are opaque, as CouchDB 2's sequences are: a caller keeps the last one (in
    /// memory, or as [`FeedPosition::as_str`] text to rebuild with [`FeedPosition::new`]) and
    /// hands it back, and may compare two for equality, nothing else. A position this store did
    /// not make is refused with [`StoreError::BadPosition`].
    ///
    /// Positions move only forward, though callers cannot see it: a write is never placed at or
    /// before a position a call has already returned, so handing `last` back as `since` neither
    /// repeats nor skips a write. A page with no docs returns `since`
    /// itself as `last`. Each hook appears once, at its latest write, with its current document:
    /// a follower applies the docs in order and is up to date as of `last`. From the beginning,
    /// the feed lists every stored hook, so a follower can start from it alone, without a
    /// separate [`all_hooks`](Self::all_hooks) that could race with writes.
    ///
    /// A hard-deleted hook ([`delete_hook`](Self::delete_hook),
    /// [`delete_account`](AccountStore::delete_account)) appears as the tombstone
    /// `{"_id": id, "pvt_account_id": account, "pvt_deleted": true}`, so a follower that drops
    /// soft-deleted hooks drops it too. A backend keeps tombstones for a bounded window it
    /// documents; a follower that may have fallen further behind than that (stopped for a long
    /// time while the feed moved on) could miss a hard delete, and should start again from the
    /// beginning.
    async fn hook_changes(&self, since: &FeedPosition, limit: usize) -> StoreResult<HookChanges>;
}

/// A position in the webhook change feed ([`HookStore::hook_changes`]): an opaque token the
/// store makes. CouchDB 2+ spells its `_changes` sequences as opaque strings, so no caller may
/// count, order or parse them; this type offers equality and the text, nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FeedPosition(String);

impl FeedPosition {
    /// Before every write: the feed from here lists every stored hook. The same for every
    /// store, so a follower can start without asking one.
    pub fn beginning() -> Self {
        FeedPosition(String::new())
    }

    /// A position from its text: how a store makes one, and how a caller rebuilds one it kept
    /// as [`as_str`](Self::as_str). Nothing is checked here; the store that reads it refuses
    /// text it did not make.
    pub fn new(text: impl Into<String>) -> Self {
        FeedPosition(text.into())
    }

    pub fn is_beginning(&self) -> bool {
        self.0.is_empty()
    }

    /// The text to persist; [`new`](Self::new) turns it back into the same position.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One page of the webhook change feed ([`HookStore::hook_changes`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HookChanges {
    /// Changed hooks, oldest change first, each once, at its latest version (or tombstone).
    pub docs: Vec<Doc>,
    /// The position this page covers up to: pass it as the next call's `since`.
    pub last: FeedPosition,
}

/// Which attempts to list, newest first unless `ascending`. Attempts created in the same second
/// keep the order they were saved in (reversed when newest first).
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
    /// nor skip, even when the attempts before the cursor have been pruned meanwhile. A cursor
    /// this store did not make is refused with [`StoreError::BadPosition`].
    pub start: Option<AttemptCursor>,
}

/// Where an attempt listing resumes: an opaque token the store makes ([`AttemptPage::next`])
/// and takes back ([`AttemptQuery::start`]). Crossbar hands it to clients as `next_start_key`
/// and receives it as `start_key`, so it must survive a trip through their hands as text: a
/// store spells it in characters a URL query carries unescaped, since clients paste it back
/// as they got it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AttemptCursor(String);

impl AttemptCursor {
    /// A cursor from its text: how a store makes one, and how a caller rebuilds one a client
    /// sent back. Nothing is checked here; the store refuses text it did not make.
    pub fn new(text: impl Into<String>) -> Self {
        AttemptCursor(text.into())
    }

    /// The text to hand out; [`new`](Self::new) turns it back into the same cursor.
    pub fn as_str(&self) -> &str {
        &self.0
    }
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
    /// Every attempt needs a string `pvt_account_id` and an integer `pvt_created` (listing and
    /// pruning key on them); a batch with one that lacks them is refused whole, as
    /// [`StoreError::Backend`].
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

/// The RSA keys auth tokens are signed with (KAZOO's `system_auth` database: a document per
/// key id with the key as its `private_key.pem` attachment). A token's `kid` header names the
/// key; the public half, which checks the signature, is derived from the private one.
#[async_trait]
pub trait AuthKeyStore: Send + Sync {
    /// The PEM private key stored under `kid`, byte for byte as saved.
    async fn auth_key(&self, kid: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Stores `pem` under `kid`, replacing any key stored there before (a key is rotated by
    /// saving a new one under its id, or by pointing the system at a new id).
    async fn save_auth_key(&self, kid: &str, pem: &[u8]) -> StoreResult<()>;
}

/// Hook definitions: KAZOO's `webhook_meta` documents, one per hook module, `_id`
/// `webhooks_<module>` (`webhooks_channel_create`), kept in the master account's database,
/// where KAZOO's crossbar and Monster UI read the list of hook types. The master account is
/// the one `system_config/accounts` names in `master_account_id`; without it (unset, or an
/// account that does not exist) every call is a [`StoreError::Backend`] saying so.
///
/// Only ids starting with [`DEFINITION_PREFIX`] are definitions: the master account's database
/// holds other documents (the account itself, its `configs_*`), which these calls never list,
/// read, overwrite or delete. [`crate::definitions`] writes the documents; this trait only
/// keeps them.
#[async_trait]
pub trait DefinitionStore: Send + Sync {
    /// Every stored definition (every `webhooks_*` id), ordered by id ascending.
    async fn definitions(&self) -> StoreResult<Vec<Doc>>;
    /// A definition by id; `None` for an id that is not a definition's.
    async fn definition(&self, id: &str) -> StoreResult<Option<Doc>>;
    /// Creates (no `_rev`) or updates (the stored `_rev`) a definition under the revision rule
    /// (a deleted definition may be created again). The `_id` is required and must start
    /// with [`DEFINITION_PREFIX`], else [`StoreError::Backend`]. The store names the master
    /// account in `pvt_account_id` and its database (KAZOO's encoded name,
    /// `account%2Fxx%2Fyy%2F...`) in `pvt_account_db`, and keeps every other field as given.
    async fn save_definition(&self, doc: Doc) -> StoreResult<Doc>;
    /// Removes a definition for good; [`StoreError::NotFound`] when there was none.
    async fn delete_definition(&self, id: &str) -> StoreResult<()>;
}

/// How every hook definition's `_id` starts (`webhooks_` + the module's id).
pub const DEFINITION_PREFIX: &str = "webhooks_";

/// Everything the engine stores.
pub trait Store:
    AccountStore + HookStore + AttemptStore + ConfigStore + AuthKeyStore + DefinitionStore + 'static
{
}
impl<
        T: AccountStore
            + HookStore
            + AttemptStore
            + ConfigStore
            + AuthKeyStore
            + DefinitionStore
            + 'static,
    > Store for T
{
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_is_rebuilt_from_its_text() {
        let kept = FeedPosition::new("opaque-17");
        assert_eq!(FeedPosition::new(kept.as_str()), kept);
        assert_eq!(
            FeedPosition::new(FeedPosition::beginning().as_str()),
            FeedPosition::beginning()
        );
        assert!(FeedPosition::default().is_beginning());
        assert!(!kept.is_beginning());
    }

    /// Persisted (by a follower) or sent (to a client) as a plain JSON string, not an object.
    #[test]
    fn positions_and_cursors_serialize_as_their_text() {
        let position = FeedPosition::new("p-1");
        assert_eq!(serde_json::to_value(&position).unwrap(), "p-1");
        let back: FeedPosition = serde_json::from_value("p-1".into()).unwrap();
        assert_eq!(back, position);
        let cursor = AttemptCursor::new("c-2");
        assert_eq!(serde_json::to_value(&cursor).unwrap(), "c-2");
        let back: AttemptCursor = serde_json::from_value("c-2".into()).unwrap();
        assert_eq!(back, cursor);
    }
}
