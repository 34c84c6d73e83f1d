//! The embedded default store: one SQLite file, no server to run.
//!
//! The file is `<data_dir>/webhooks.sqlite3`. It is opened in WAL mode with `synchronous=FULL`,
//! so a write is on disk before the call that made it returns: killing the process at any
//! moment (or losing power, on a disk that honours fsync) loses no acknowledged write and leaves
//! a file SQLite can open.
//!
//! rusqlite is blocking, so every call runs on tokio's blocking pool. A file-backed store holds
//! two connections, each behind a mutex: one writes, one reads. SQLite admits a single writer
//! at a time anyway, and in WAL mode a reader sees every committed write and is never blocked
//! by one, so the API's reads (an account per authenticated request) do not queue behind the
//! engine's attempt batches. Every read is an index lookup or a bounded index range, and the
//! engine keeps its hook table in memory rather than asking the store per event. Each write is
//! one `BEGIN IMMEDIATE` transaction, so a revision check and the write it guards are never
//! split. An in-memory store has the one connection only (a second would be another database).

mod attempts;
mod changes;
mod docs;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use webhooks_core::store::{
    AccountStore, AttemptPage, AttemptQuery, AttemptStore, AuthKeyStore, ConfigStore,
    DefinitionStore, FeedPosition, HookChanges, HookStore, StoreError, StoreResult,
};
use webhooks_core::{AccountId, Doc};

/// An SQLite-backed [`Store`](webhooks_core::Store). Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct EmbeddedStore {
    conn: Arc<Mutex<Connection>>,
    /// The read-only connection of a file-backed store; reads use `conn` when absent.
    reader: Option<Arc<Mutex<Connection>>>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// The database's file name inside the data directory (back it up together with its
    /// `-wal` companion, or with SQLite's online backup, never by copying it alone while open).
    pub const FILE_NAME: &'static str = "webhooks.sqlite3";

    /// Opens (creating if needed) the store in `dir`, creating the directory too, and brings the
    /// schema up to date. It blocks on file I/O, so call it at start-up, before serving.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Backend(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join(Self::FILE_NAME);
        let conn = Connection::open(&path).map_err(Fault::from)?;
        Self::init(conn, Some(path))
    }

    /// A private, empty, memory-only store, for tests and for trying the engine out.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(Fault::from)?;
        Self::init(conn, None)
    }

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn init(mut conn: Connection, path: Option<PathBuf>) -> Result<Self, StoreError> {
        schema::configure(&conn, path.is_some())?;
        schema::migrate(&mut conn)?;
        let reader = match &path {
            Some(path) => {
                let reader = Connection::open(path).map_err(Fault::from)?;
                schema::configure_reader(&reader)?;
                Some(Arc::new(Mutex::new(reader)))
            }
            None => None,
        };
        Ok(EmbeddedStore {
            conn: Arc::new(Mutex::new(conn)),
            reader,
            path,
        })
    }

    /// Runs `f` on the blocking pool with the writing connection.
    async fn with_conn<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Fault> + Send + 'static,
    {
        Self::on_blocking_pool(Arc::clone(&self.conn), f).await
    }

    async fn on_blocking_pool<T, F>(conn: Arc<Mutex<Connection>>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, Fault> + Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            // A panic inside a call unwinds through rusqlite's `Transaction`, whose drop rolls
            // back; the connection is then consistent and safe to keep using.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn).map_err(StoreError::from)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }

    /// Runs `f` inside one `BEGIN IMMEDIATE` transaction, committed only if `f` succeeds.
    /// Immediate, so the write lock is taken before `f` reads the revision it will check.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, Fault> + Send + 'static,
    {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Fault> + Send + 'static,
    {
        let conn = Arc::clone(self.reader.as_ref().unwrap_or(&self.conn));
        Self::on_blocking_pool(conn, |conn| f(conn)).await
    }
}

/// Everything that can go wrong inside a call, folded into [`StoreError`] at the boundary:
/// conflicts and misses pass through, everything else is a backend fault (crossbar's 503).
#[derive(Debug, thiserror::Error)]
enum Fault {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot encode document: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("corrupt document in {table} row {key}: {source}")]
    Corrupt {
        table: &'static str,
        key: String,
        source: serde_json::Error,
    },
    /// A document the store cannot key (no usable `_id`, an attempt without account or time).
    /// Callers build these documents themselves, so this is a bug upstream, not user input.
    #[error("unusable document: {0}")]
    BadDoc(String),
    #[error("cannot open store: {0}")]
    Setup(String),
}

/// Parses a stored document, naming the row when it is not a JSON object. Here, beside
/// [`Fault`], because every table's module reads documents back.
fn decode(table: &'static str, key: &str, json: &str) -> Result<Doc, Fault> {
    serde_json::from_str(json).map_err(|source| Fault::Corrupt {
        table,
        key: key.to_owned(),
        source,
    })
}

impl From<Fault> for StoreError {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::Store(e) => e,
            other => StoreError::Backend(other.to_string()),
        }
    }
}

#[async_trait]
impl AccountStore for EmbeddedStore {
    async fn save_account(&self, doc: Doc) -> StoreResult<Doc> {
        self.write(|tx| docs::save_account(tx, doc)).await
    }

    async fn account(&self, id: &AccountId) -> StoreResult<Option<Doc>> {
        let id = id.clone();
        self.read(move |conn| docs::account(conn, &id)).await
    }

    async fn accounts(&self) -> StoreResult<Vec<Doc>> {
        self.read(docs::accounts).await
    }

    async fn account_by_api_key(&self, key: &str) -> StoreResult<Option<Doc>> {
        let key = key.to_owned();
        self.read(move |conn| docs::account_by_api_key(conn, &key))
            .await
    }

    /// [`StoreError::NotFound`] when there was no account row; its hooks and config documents
    /// are removed regardless.
    async fn delete_account(&self, id: &AccountId) -> StoreResult<()> {
        let id = id.clone();
        let existed = self.write(move |tx| docs::delete_account(tx, &id)).await?;
        found(existed)
    }
}

#[async_trait]
impl HookStore for EmbeddedStore {
    async fn save_hook(&self, doc: Doc) -> StoreResult<Doc> {
        self.write(|tx| docs::save_hook(tx, doc)).await
    }

    async fn hook(&self, id: &str) -> StoreResult<Option<Doc>> {
        let id = id.to_owned();
        self.read(move |conn| docs::hook(conn, &id)).await
    }

    async fn hooks_of_account(&self, account: &AccountId) -> StoreResult<Vec<Doc>> {
        let account = account.clone();
        self.read(move |conn| docs::hooks_of_account(conn, &account))
            .await
    }

    async fn all_hooks(&self) -> StoreResult<Vec<Doc>> {
        self.read(docs::all_hooks).await
    }

    /// [`StoreError::NotFound`] when there was no such document.
    async fn delete_hook(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        found(self.write(move |tx| docs::delete_hook(tx, &id)).await?)
    }

    /// Tombstones of hard-deleted hooks are kept while fewer than 100 000 hook writes follow
    /// them (`changes::TOMBSTONE_WINDOW`, where the design is explained). Positions are spelt
    /// `seq-<n>` (`changes::position`), never as a bare number.
    async fn hook_changes(&self, since: &FeedPosition, limit: usize) -> StoreResult<HookChanges> {
        let since = since.clone();
        self.read(move |conn| changes::list(conn, since, limit))
            .await
    }
}

#[async_trait]
impl AttemptStore for EmbeddedStore {
    async fn save_attempts(&self, batch: Arc<[Doc]>) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        // Encoding (JSON, then LZ4) is most of the CPU an attempt costs; done here, outside
        // the writer's lock, it overlaps another batch's insert instead of lengthening it.
        let rows = tokio::task::spawn_blocking(move || attempts::encode(&batch))
            .await
            .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
            .map_err(StoreError::from)?;
        self.write(move |tx| attempts::insert(tx, &rows)).await
    }

    async fn attempts(&self, query: AttemptQuery) -> StoreResult<AttemptPage> {
        self.read(move |conn| attempts::list(conn, &query)).await
    }

    async fn prune_attempts(&self, before: i64) -> StoreResult<u64> {
        self.write(move |tx| attempts::prune(tx, before)).await
    }
}

#[async_trait]
impl ConfigStore for EmbeddedStore {
    async fn system_config(&self, category: &str) -> StoreResult<Option<Doc>> {
        let category = category.to_owned();
        self.read(move |conn| docs::system_config(conn, &category))
            .await
    }

    async fn save_system_config(&self, category: &str, doc: Doc) -> StoreResult<Doc> {
        let category = category.to_owned();
        self.write(move |tx| docs::save_system_config(tx, &category, doc))
            .await
    }

    async fn account_config(
        &self,
        account: &AccountId,
        category: &str,
    ) -> StoreResult<Option<Doc>> {
        let (account, category) = (account.clone(), category.to_owned());
        self.read(move |conn| docs::account_config(conn, &account, &category))
            .await
    }

    async fn save_account_config(
        &self,
        account: &AccountId,
        category: &str,
        doc: Doc,
    ) -> StoreResult<Doc> {
        let (account, category) = (account.clone(), category.to_owned());
        self.write(move |tx| docs::save_account_config(tx, &account, &category, doc))
            .await
    }
}

#[async_trait]
impl AuthKeyStore for EmbeddedStore {
    async fn auth_key(&self, kid: &str) -> StoreResult<Option<Vec<u8>>> {
        let kid = kid.to_owned();
        self.read(move |conn| docs::auth_key(conn, &kid)).await
    }

    async fn save_auth_key(&self, kid: &str, pem: &[u8]) -> StoreResult<()> {
        let (kid, pem) = (kid.to_owned(), pem.to_vec());
        self.write(move |tx| docs::save_auth_key(tx, &kid, &pem))
            .await
    }
}

/// Definitions need the master account (`system_config/accounts`), as in KAZOO's layout where
/// they live in its database; each is stamped with it ([`webhooks_core::definitions::place`]).
#[async_trait]
impl DefinitionStore for EmbeddedStore {
    async fn definitions(&self) -> StoreResult<Vec<Doc>> {
        self.read(docs::definitions).await
    }

    async fn definition(&self, id: &str) -> StoreResult<Option<Doc>> {
        let id = id.to_owned();
        self.read(move |conn| docs::definition(conn, &id)).await
    }

    async fn save_definition(&self, doc: Doc) -> StoreResult<Doc> {
        self.write(|tx| docs::save_definition(tx, doc)).await
    }

    /// [`StoreError::NotFound`] when there was no such definition.
    async fn delete_definition(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        found(
            self.write(move |tx| docs::delete_definition(tx, &id))
                .await?,
        )
    }
}

fn found(existed: bool) -> StoreResult<()> {
    if existed {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}
