//! Connection settings and schema migrations, applied every time the file is opened.

use std::time::Duration;

use rusqlite::Connection;

use super::Fault;

/// How long a statement waits for another process's lock (the CLI opening the same file while
/// the daemon runs) before failing with `SQLITE_BUSY`. Within one process writes go through
/// one connection and reads through another, which in WAL mode never wait for each other, so
/// this covers cross-process contention (and the moment a crashed writer's WAL is recovered).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema, one entry per version: entry `n` takes the file from `user_version` `n` to
/// `n + 1`. Entries are never edited once released; a change is a new entry, so a file written
/// by any earlier build is brought forward in order.
///
/// Each document table keeps the whole KAZOO document as JSON text in `doc`, plus the few
/// fields queries filter on copied into columns at save time. `rev` is the document's `_rev`,
/// kept as a column so the revision check on save does not have to parse the stored JSON.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE accounts (
    id      TEXT PRIMARY KEY NOT NULL,
    api_key TEXT,
    rev     TEXT NOT NULL,
    doc     TEXT NOT NULL
);
CREATE INDEX accounts_by_api_key ON accounts (api_key);

CREATE TABLE hooks (
    id         TEXT PRIMARY KEY NOT NULL,
    account_id TEXT,
    deleted    INTEGER NOT NULL,
    rev        TEXT NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX hooks_by_account ON hooks (account_id, id);

-- AUTOINCREMENT: a pruned `seq` is never handed out again, so a listing cursor can never come
-- to point at a different attempt than the one it was taken from.
CREATE TABLE attempts (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    hook_id    TEXT,
    created    INTEGER NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX attempts_by_time ON attempts (account_id, created, seq);
CREATE INDEX attempts_by_hook ON attempts (account_id, hook_id, created, seq);
-- Pruning deletes by age across all accounts.
CREATE INDEX attempts_by_age ON attempts (created);

CREATE TABLE system_config (
    category TEXT PRIMARY KEY NOT NULL,
    rev      TEXT NOT NULL,
    doc      TEXT NOT NULL
);

CREATE TABLE account_config (
    account_id TEXT NOT NULL,
    category   TEXT NOT NULL,
    rev        TEXT NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (account_id, category)
);
"#,
    // 2: the hook change feed (see `changes.rs` for why it is a position per hook plus tombstones
    // rather than a log). Hooks stored before it existed get distinct positions in storage order:
    // no follower can hold a position from before this migration, so their order does not matter,
    // only that every one of them is listed from 0.
    r#"
ALTER TABLE hooks ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE hooks SET seq = rowid;
CREATE UNIQUE INDEX hooks_by_seq ON hooks (seq);

CREATE TABLE hook_tombstones (
    hook_id    TEXT PRIMARY KEY NOT NULL,
    account_id TEXT,
    seq        INTEGER NOT NULL UNIQUE
);

-- The last position handed out. A counter of its own, not MAX(seq) over the two tables, so a
-- position stays used even after the row that held it is deleted or moves on.
CREATE TABLE hook_clock (
    id  INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO hook_clock (id, seq) SELECT 1, COALESCE(MAX(seq), 0) FROM hooks;
"#,
    // 3: token signing keys (KAZOO's `system_auth` key documents), the PEM as stored.
    r#"
CREATE TABLE auth_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    pem BLOB NOT NULL
);
"#,
    // 4: ids of deleted accounts, never handed out again: a client may choose an account's id
    // on create, and a re-created id would inherit whatever still names it (tokens, logs).
    r#"
CREATE TABLE account_tombstones (
    id TEXT PRIMARY KEY NOT NULL
);
"#,
    // 5: hook definitions (KAZOO's `webhook_meta` documents of the master account's database),
    // by their `webhooks_<module>` id.
    r#"
CREATE TABLE hook_definitions (
    id  TEXT PRIMARY KEY NOT NULL,
    rev TEXT NOT NULL,
    doc TEXT NOT NULL
);
"#,
];

/// Sets the per-connection pragmas. `file_backed` is false for in-memory databases, which have
/// no journal to put in WAL mode.
pub(super) fn configure(conn: &Connection, file_backed: bool) -> Result<(), Fault> {
    // WAL: readers never block the writer and a commit is one append to the log, which is
    // atomic under a crash. Some filesystems (network mounts) cannot host the WAL's shared
    // memory and SQLite then silently keeps the old journal; refuse instead, since the
    // durability story below is written for WAL.
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if file_backed && !mode.eq_ignore_ascii_case("wal") {
        return Err(Fault::Setup(format!(
            "could not switch the journal to WAL (got {mode:?})"
        )));
    }
    // FULL (not WAL's usual NORMAL): every commit is fsynced before it returns, so a write the
    // API has acknowledged survives power loss too, not only a killed process.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Off by default in SQLite for backward compatibility. No table declares a foreign key (the
    // planned CouchDB adapter could not enforce one, and every adapter must accept the same
    // writes);
    // enforcement is on so that any REFERENCES clause a migration adds is honoured rather than
    // silently ignored.
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Checkpoint (copy the WAL back into the database file) every 10 000 pages rather than
    // SQLite's 1 000: an index page that several attempt batches change in a row is then
    // copied once, not once per batch. The WAL grows to about 40 MiB between checkpoints.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    Ok(())
}

/// See [`configure`].
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// Sets up the second connection a file-backed store reads through. It never writes (SQLite
/// refuses to, `query_only`), so it needs none of the writer's durability settings; WAL mode is
/// a property of the file, already set by the writer.
pub(super) fn configure_reader(conn: &Connection) -> Result<(), Fault> {
    conn.pragma_update(None, "query_only", true)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(())
}

/// Brings the schema to the newest version, one migration per transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), Fault> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let newest = MIGRATIONS.len() as i64;
    if current > newest {
        // A newer build wrote this file; its tables may mean things this build does not know.
        return Err(Fault::Setup(format!(
            "database schema version {current} is newer than this build supports ({newest})"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
