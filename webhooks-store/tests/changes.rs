//! The hook change feed of the embedded store where it goes beyond the contract suite
//! (`tests/contract.rs`): several stores on one file, as the daemon and the CLI are, and files
//! written before the feed existed.

use std::collections::HashSet;

use webhooks_core::store::{FeedPosition, HookChanges, HookStore};
use webhooks_core::Doc;
use webhooks_store::contract::fixtures::{account_id, changes, follow, hook_doc, ids, tombstone};
use webhooks_store::EmbeddedStore;

fn beginning() -> FeedPosition {
    FeedPosition::beginning()
}

/// A follower whose position is ahead of the file (the file was restored from an older
/// backup) sees nothing new and keeps its position, rather than failing.
#[tokio::test]
async fn a_position_ahead_of_the_file_reads_as_nothing_new() {
    let ahead = EmbeddedStore::open_in_memory().unwrap();
    for id in ["h1", "h2", "h3"] {
        ahead.save_hook(hook_doc(id, &account_id(1))).await.unwrap();
    }
    let far = changes(&ahead, &beginning()).await.last;
    let behind = EmbeddedStore::open_in_memory().unwrap();
    let page = changes(&behind, &far).await;
    assert!(page.docs.is_empty());
    assert_eq!(page.last, far);
}

// ---- other processes ------------------------------------------------------------------------

#[tokio::test]
async fn a_second_open_of_the_directory_sees_the_firsts_writes() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = EmbeddedStore::open(dir.path()).unwrap();
    let cli = EmbeddedStore::open(dir.path()).unwrap();
    let a = account_id(1);

    let disabled = daemon.save_hook(hook_doc("h1", &a)).await.unwrap();
    let pos = changes(&daemon, &beginning()).await.last;

    let mut re_enabled = cli.hook("h1").await.unwrap().unwrap();
    assert_eq!(re_enabled, disabled);
    re_enabled.set("enabled", true);
    let re_enabled = cli.save_hook(re_enabled).await.unwrap();
    let page = changes(&daemon, &pos).await;
    assert_eq!(page.docs, [re_enabled]);

    cli.delete_hook("h1").await.unwrap();
    let page = changes(&daemon, &page.last).await;
    assert_eq!(page.docs, [tombstone("h1", &a)]);

    // Positions are shared by both: the daemon's own write comes after the CLI's.
    daemon.save_hook(hook_doc("h2", &a)).await.unwrap();
    assert_eq!(ids(&changes(&cli, &page.last).await.docs), ["h2"]);
}

/// Two writers on their own connections race while a third follows with small pages: positions
/// are taken in commit order, so the follower never steps past a write it has not seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_misses_nothing_while_two_processes_write() {
    const PER_WRITER: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let follower = EmbeddedStore::open(dir.path()).unwrap();
    let writers: Vec<_> = (0..2u8)
        .map(|w| {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            tokio::spawn(async move {
                for n in 0..PER_WRITER {
                    let id = format!("w{w}-{n:02}");
                    store
                        .save_hook(hook_doc(&id, &account_id(w + 1)))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();

    let mut seen = HashSet::new();
    let mut since = beginning();
    loop {
        // Checked before reading, so the pass after the last write drains everything.
        let done = writers.iter().all(|w| w.is_finished());
        let (pages, end) = follow(&follower, since, 3).await;
        for d in pages.into_iter().flat_map(|p| p.docs) {
            assert!(
                seen.insert(d.id().unwrap().to_owned()),
                "{d:?} listed twice"
            );
        }
        since = end;
        if done {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(seen.len(), 2 * PER_WRITER);
}

// ---- migration ------------------------------------------------------------------------------

/// The schema as version 1 (the first release, before the change feed) created it, verbatim
/// for the tables this test fills; the rest of version 1 is irrelevant to hooks.
const SCHEMA_V1: &str = r#"
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

CREATE TABLE attempts (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    hook_id    TEXT,
    created    INTEGER NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX attempts_by_time ON attempts (account_id, created, seq);
CREATE INDEX attempts_by_hook ON attempts (account_id, hook_id, created, seq);
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
"#;

/// Writes a version-1 file holding `hooks` the way version 1 stored them.
fn create_v1_file(dir: &std::path::Path, hooks: &[Doc]) {
    let conn = rusqlite::Connection::open(dir.join(EmbeddedStore::FILE_NAME)).unwrap();
    conn.execute_batch(SCHEMA_V1).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    for d in hooks {
        conn.execute(
            "INSERT INTO hooks (id, account_id, deleted, rev, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                d.id().unwrap(),
                d.account_id(),
                d.is_deleted(),
                d.rev().unwrap(),
                serde_json::to_string(d).unwrap()
            ],
        )
        .unwrap();
    }
}

fn user_version(dir: &std::path::Path) -> i64 {
    rusqlite::Connection::open(dir.join(EmbeddedStore::FILE_NAME))
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_version_1_file_is_migrated_in_place_and_lists_its_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let a = account_id(1);
    let old: Vec<Doc> = ["b", "a", "c"]
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let mut d = hook_doc(id, &a);
            d.set(
                "_rev",
                format!("{}-0123456789abcdef0123456789abcdef", n + 1),
            );
            d.set("pvt_deleted", *id == "c");
            d
        })
        .collect();
    create_v1_file(dir.path(), &old);

    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert!(user_version(dir.path()) > 1);
    let all = changes(&store, &beginning()).await;
    // Every pre-existing hook, soft-deleted included, each once, exactly as stored.
    let mut listed = all.docs.clone();
    listed.sort_by(|x, y| x.id().cmp(&y.id()));
    let mut want = old.clone();
    want.sort_by(|x, y| x.id().cmp(&y.id()));
    assert_eq!(listed, want);

    // Writes after the migration come after every migrated hook.
    let mut b = store.hook("b").await.unwrap().unwrap();
    b.set("name", "after");
    let b = store.save_hook(b).await.unwrap();
    store.delete_hook("a").await.unwrap();
    let page = changes(&store, &all.last).await;
    assert_eq!(page.docs, [b, tombstone("a", &a)]);

    // Reopening does not migrate again or disturb positions.
    drop(store);
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert!(changes(&store, &page.last).await.docs.is_empty());
    assert_eq!(
        ids(&changes(&store, &beginning()).await.docs),
        ["c", "b", "a"]
    );
}

#[tokio::test]
async fn an_empty_version_1_file_starts_the_feed_at_the_beginning() {
    let dir = tempfile::tempdir().unwrap();
    create_v1_file(dir.path(), &[]);
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(changes(&store, &beginning()).await, HookChanges::default());
    store
        .save_hook(hook_doc("h1", &account_id(1)))
        .await
        .unwrap();
    assert_eq!(ids(&changes(&store, &beginning()).await.docs), ["h1"]);
    // The migration started the clock at 0, so the first write took position 1.
    let clock: i64 = rusqlite::Connection::open(dir.path().join(EmbeddedStore::FILE_NAME))
        .unwrap()
        .query_row("SELECT seq FROM hook_clock", [], |r| r.get(0))
        .unwrap();
    assert_eq!(clock, 1);
}
