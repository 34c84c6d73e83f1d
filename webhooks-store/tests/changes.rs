//! The hook change feed (`HookStore::hook_changes`) of the embedded store: what a daemon reads
//! to notice hooks another process (the CLI) wrote.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};
use webhooks_core::store::{AccountStore, HookChanges, HookStore, StoreError};
use webhooks_core::{AccountId, Doc};
use webhooks_store::EmbeddedStore;

fn doc(v: Value) -> Doc {
    Doc::from_value(v).expect("test documents are objects")
}

fn account_id(n: u8) -> AccountId {
    AccountId::from_bytes([n; 16])
}

fn hook_doc(id: &str, account: &AccountId) -> Doc {
    doc(json!({
        "_id": id,
        "pvt_type": "webhook",
        "pvt_account_id": account.as_str(),
        "name": id,
        "uri": "http://example.com/hook",
        "hook": "channel_create",
    }))
}

fn tombstone(id: &str, account: &AccountId) -> Doc {
    doc(json!({"_id": id, "pvt_account_id": account.as_str(), "pvt_deleted": true}))
}

fn ids(docs: &[Doc]) -> Vec<&str> {
    docs.iter().map(|d| d.id().unwrap()).collect()
}

async fn changes(store: &EmbeddedStore, since: u64) -> HookChanges {
    store.hook_changes(since, 1000).await.unwrap()
}

/// Follows the feed from `since` with pages of `limit` until it is exhausted, checking that
/// pages are bounded and positions grow; returns every page.
async fn follow(store: &EmbeddedStore, mut since: u64, limit: usize) -> (Vec<HookChanges>, u64) {
    let mut pages = Vec::new();
    for _ in 0..10_000 {
        let page = store.hook_changes(since, limit).await.unwrap();
        assert!(page.docs.len() <= limit, "limit {limit}: {page:?}");
        if page.docs.is_empty() {
            assert_eq!(page.last, since, "an empty page must not move the position");
            return (pages, since);
        }
        assert!(
            page.last > since,
            "positions must grow: {since} -> {}",
            page.last
        );
        since = page.last;
        pages.push(page);
    }
    panic!("the feed did not run dry");
}

// ---- saves ----------------------------------------------------------------------------------

#[tokio::test]
async fn an_empty_store_has_no_changes_and_stays_at_the_given_position() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    assert_eq!(changes(&store, 0).await, HookChanges::default());
    let far = changes(&store, 42).await;
    assert!(far.docs.is_empty());
    assert_eq!(far.last, 42);
    assert!(store.hook_changes(0, 0).await.unwrap().docs.is_empty());
}

#[tokio::test]
async fn saves_updates_and_soft_deletes_appear_in_write_order_at_their_latest_version() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    let a = account_id(1);
    let h1 = store.save_hook(hook_doc("h1", &a)).await.unwrap();
    let h2 = store.save_hook(hook_doc("h2", &a)).await.unwrap();
    store.save_hook(hook_doc("h3", &a)).await.unwrap();
    let mut h1 = h1;
    h1.set("name", "renamed");
    let h1 = store.save_hook(h1).await.unwrap();
    let mut h2 = h2;
    h2.set("pvt_deleted", true);
    let h2 = store.save_hook(h2).await.unwrap();

    let all = changes(&store, 0).await;
    // h3 was written before h1's update and h2's soft delete; each hook appears once.
    assert_eq!(ids(&all.docs), ["h3", "h1", "h2"]);
    assert_eq!(all.docs[1], h1);
    assert_eq!(
        all.docs[2], h2,
        "a soft-deleted hook is listed with its document"
    );
    assert!(all.docs[2].is_deleted());

    // Nothing new since: the position holds.
    let none = changes(&store, all.last).await;
    assert!(none.docs.is_empty());
    assert_eq!(none.last, all.last);
}

#[tokio::test]
async fn a_follower_sees_only_what_was_written_after_its_position() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    let a = account_id(1);
    store.save_hook(hook_doc("old", &a)).await.unwrap();
    let pos = changes(&store, 0).await.last;

    let mut re_enabled = store.save_hook(hook_doc("h1", &a)).await.unwrap();
    re_enabled.set("enabled", true);
    let re_enabled = store.save_hook(re_enabled).await.unwrap();
    let page = changes(&store, pos).await;
    assert_eq!(page.docs, [re_enabled]);
    assert!(page.last > pos);
}

#[tokio::test]
async fn a_conflicting_save_is_not_a_change() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    let first = store
        .save_hook(hook_doc("h1", &account_id(1)))
        .await
        .unwrap();
    store.save_hook(first.clone()).await.unwrap();
    let pos = changes(&store, 0).await.last;
    assert!(matches!(
        store.save_hook(first).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(changes(&store, pos).await.docs, []);
}

// ---- paging ---------------------------------------------------------------------------------

#[tokio::test]
async fn paging_with_small_limits_covers_every_hook_exactly_once() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    let (a, b) = (account_id(1), account_id(2));
    // 12 hooks, then updates, soft deletes and hard deletes scattered over them, so that
    // positions are interleaved between the live rows and the tombstones.
    for n in 0..12 {
        let account = if n % 2 == 0 { &a } else { &b };
        store
            .save_hook(hook_doc(&format!("h{n:02}"), account))
            .await
            .unwrap();
    }
    for n in [3, 7, 0, 3] {
        let mut d = store.hook(&format!("h{n:02}")).await.unwrap().unwrap();
        d.set("name", format!("v{n}"));
        store.save_hook(d).await.unwrap();
    }
    let mut soft = store.hook("h05").await.unwrap().unwrap();
    soft.set("pvt_deleted", true);
    store.save_hook(soft).await.unwrap();
    store.delete_hook("h08").await.unwrap();
    store.delete_hook("h01").await.unwrap();
    store.save_hook(hook_doc("h12", &a)).await.unwrap();

    let everything = changes(&store, 0).await;
    // Untouched hooks in creation order, then each touched hook at its last write.
    let want = [
        "h02", "h04", "h06", "h09", "h10", "h11", "h07", "h00", "h03", "h05", "h08", "h01", "h12",
    ];
    assert_eq!(ids(&everything.docs), want);

    for limit in [1, 2, 3, 5, 12, 13, 14] {
        let (pages, end) = follow(&store, 0, limit).await;
        let (last_page, full) = pages.split_last().unwrap();
        assert!(full.iter().all(|p| p.docs.len() == limit), "limit {limit}");
        assert_eq!(last_page.last, end);
        assert_eq!(end, everything.last, "limit {limit}");
        let docs: Vec<Doc> = pages.into_iter().flat_map(|p| p.docs).collect();
        assert_eq!(docs, everything.docs, "limit {limit}");
    }
}

/// The daemon's use: apply pages to a table while another writer keeps going. However the
/// writes fall between pages, the table ends up equal to the store.
#[tokio::test]
async fn a_follower_applying_pages_between_writes_converges_on_the_store() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    let a = account_id(1);
    let mut table: BTreeMap<String, Doc> = BTreeMap::new();
    let mut since = 0;
    for step in 0..60usize {
        let id = format!("h{:02}", step % 9);
        match (step % 5, store.hook(&id).await.unwrap()) {
            (4, Some(_)) => store.delete_hook(&id).await.unwrap(),
            (_, Some(mut d)) => {
                d.set("name", format!("step {step}"));
                d.set("pvt_deleted", step % 7 == 0);
                store.save_hook(d).await.unwrap();
            }
            (_, None) => {
                store.save_hook(hook_doc(&id, &a)).await.unwrap();
            }
        }
        // One small page per write: the follower lags behind, then catches up at the end.
        let page = store.hook_changes(since, 1).await.unwrap();
        apply(&mut table, &page);
        since = page.last;
    }
    let (rest, _) = follow(&store, since, 2).await;
    for page in &rest {
        apply(&mut table, page);
    }
    let stored: BTreeMap<String, Doc> = store
        .all_hooks()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.id().unwrap().to_owned(), d))
        .collect();
    assert!(!stored.is_empty());
    assert_eq!(table, stored);
}

fn apply(table: &mut BTreeMap<String, Doc>, page: &HookChanges) {
    for d in &page.docs {
        let id = d.id().unwrap().to_owned();
        if d.is_deleted() {
            table.remove(&id);
        } else {
            table.insert(id, d.clone());
        }
    }
}

// ---- hard deletes ---------------------------------------------------------------------------

#[tokio::test]
async fn hard_deletes_appear_as_tombstones_naming_the_account() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    let (a, b) = (account_id(1), account_id(2));
    store
        .save_account(doc(json!({"_id": b.as_str()})))
        .await
        .unwrap();
    store.save_hook(hook_doc("ha", &a)).await.unwrap();
    store.save_hook(hook_doc("hb2", &b)).await.unwrap();
    store.save_hook(hook_doc("hb1", &b)).await.unwrap();
    store.save_hook(hook_doc("keep", &a)).await.unwrap();
    let pos = changes(&store, 0).await.last;

    store.delete_hook("ha").await.unwrap();
    store.delete_account(&b).await.unwrap();
    let page = changes(&store, pos).await;
    // One tombstone per removed hook; an account's hooks in id order.
    assert_eq!(
        page.docs,
        [
            tombstone("ha", &a),
            tombstone("hb1", &b),
            tombstone("hb2", &b)
        ]
    );

    // From the beginning, the survivors and the tombstones, each once.
    assert_eq!(
        ids(&changes(&store, 0).await.docs),
        ["keep", "ha", "hb1", "hb2"]
    );

    // Nothing removed, nothing recorded.
    assert!(matches!(
        store.delete_hook("ha").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(changes(&store, page.last).await.docs, []);
}

#[tokio::test]
async fn hooks_of_a_missing_account_are_still_buried() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    let a = account_id(1);
    store.save_hook(hook_doc("orphan", &a)).await.unwrap();
    let pos = changes(&store, 0).await.last;
    assert!(matches!(
        store.delete_account(&a).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(changes(&store, pos).await.docs, [tombstone("orphan", &a)]);
}

#[tokio::test]
async fn a_recreated_hook_replaces_its_tombstone() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    let a = account_id(1);
    store.save_hook(hook_doc("h1", &a)).await.unwrap();
    store.delete_hook("h1").await.unwrap();
    let pos = changes(&store, 0).await.last;
    let again = store.save_hook(hook_doc("h1", &a)).await.unwrap();
    assert_eq!(
        changes(&store, pos).await.docs,
        std::slice::from_ref(&again)
    );
    assert_eq!(changes(&store, 0).await.docs, [again]);
}

// ---- other processes ------------------------------------------------------------------------

#[tokio::test]
async fn a_second_open_of_the_directory_sees_the_firsts_writes() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = EmbeddedStore::open(dir.path()).unwrap();
    let cli = EmbeddedStore::open(dir.path()).unwrap();
    let a = account_id(1);

    let disabled = daemon.save_hook(hook_doc("h1", &a)).await.unwrap();
    let pos = changes(&daemon, 0).await.last;

    let mut re_enabled = cli.hook("h1").await.unwrap().unwrap();
    assert_eq!(re_enabled, disabled);
    re_enabled.set("enabled", true);
    let re_enabled = cli.save_hook(re_enabled).await.unwrap();
    let page = changes(&daemon, pos).await;
    assert_eq!(page.docs, [re_enabled]);

    cli.delete_hook("h1").await.unwrap();
    let page = changes(&daemon, page.last).await;
    assert_eq!(page.docs, [tombstone("h1", &a)]);

    // Positions are shared by both: the daemon's own write comes after the CLI's.
    daemon.save_hook(hook_doc("h2", &a)).await.unwrap();
    assert_eq!(ids(&changes(&cli, page.last).await.docs), ["h2"]);
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
    let mut since = 0;
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
    let all = changes(&store, 0).await;
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
    let page = changes(&store, all.last).await;
    assert_eq!(page.docs, [b, tombstone("a", &a)]);

    // Reopening does not migrate again or disturb positions.
    drop(store);
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert!(changes(&store, page.last).await.docs.is_empty());
    assert_eq!(ids(&changes(&store, 0).await.docs), ["c", "b", "a"]);
}

#[tokio::test]
async fn an_empty_version_1_file_starts_the_feed_at_the_beginning() {
    let dir = tempfile::tempdir().unwrap();
    create_v1_file(dir.path(), &[]);
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(changes(&store, 0).await, HookChanges::default());
    store
        .save_hook(hook_doc("h1", &account_id(1)))
        .await
        .unwrap();
    assert_eq!(changes(&store, 0).await.last, 1);
}
