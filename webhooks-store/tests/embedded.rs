//! Behaviour of the embedded store through the core traits, as the engine and the API use it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use webhooks_core::store::{
    AccountStore, AttemptQuery, AttemptStore, ConfigStore, HookStore, StoreError,
};
use webhooks_core::{AccountId, Doc};
use webhooks_store::EmbeddedStore;

fn doc(v: Value) -> Doc {
    Doc::from_value(v).expect("test documents are objects")
}

fn account_id(n: u8) -> AccountId {
    AccountId::from_bytes([n; 16])
}

fn store() -> EmbeddedStore {
    EmbeddedStore::open_in_memory().unwrap()
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

fn generation(doc: &Doc) -> u64 {
    let rev = doc.rev().expect("saved documents carry _rev");
    let (n, hash) = rev.split_once('-').expect("rev is <n>-<hash>");
    assert_eq!(hash.len(), 32, "{rev}");
    assert!(webhooks_core::ids::is_hex32(hash), "{rev}");
    n.parse().unwrap()
}

fn is_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict))
}

// ---- revisions -------------------------------------------------------------------------------

#[tokio::test]
async fn create_without_id_assigns_hex_id_and_first_revision() {
    let store = store();
    let saved = store
        .save_account(doc(json!({"name": "acme", "ui_metadata": {"x": 1}})))
        .await
        .unwrap();
    let id = saved.id().unwrap().to_owned();
    assert!(webhooks_core::ids::is_hex32(&id), "{id}");
    assert_eq!(generation(&saved), 1);

    let loaded = store
        .account(&AccountId::parse(&id).unwrap())
        .await
        .unwrap();
    assert_eq!(loaded.as_ref(), Some(&saved));
    // Unknown public fields round-trip untouched.
    assert_eq!(saved.get("ui_metadata"), Some(&json!({"x": 1})));
}

#[tokio::test]
async fn update_with_stored_rev_bumps_generation() {
    let store = store();
    let mut d = store
        .save_hook(hook_doc("h1", &account_id(1)))
        .await
        .unwrap();
    for expected in 2..=4 {
        d.set("name", format!("v{expected}"));
        let saved = store.save_hook(d.clone()).await.unwrap();
        assert_eq!(generation(&saved), expected);
        assert_ne!(saved.rev(), d.rev());
        d = saved;
    }
    assert_eq!(store.hook("h1").await.unwrap(), Some(d));
}

#[tokio::test]
async fn creating_an_existing_id_conflicts() {
    let store = store();
    store
        .save_hook(hook_doc("h1", &account_id(1)))
        .await
        .unwrap();
    assert!(is_conflict(
        store.save_hook(hook_doc("h1", &account_id(2))).await
    ));
}

#[tokio::test]
async fn stale_rev_conflicts_and_leaves_the_document_untouched() {
    let store = store();
    let first = store
        .save_hook(hook_doc("h1", &account_id(1)))
        .await
        .unwrap();
    let second = store.save_hook(first.clone()).await.unwrap();

    let mut stale = first.clone();
    stale.set("name", "lost update");
    assert!(is_conflict(store.save_hook(stale).await));
    assert_eq!(store.hook("h1").await.unwrap(), Some(second));
}

#[tokio::test]
async fn updating_a_missing_document_conflicts() {
    let store = store();
    let mut d = hook_doc("h1", &account_id(1));
    d.set("_rev", "3-0123456789abcdef0123456789abcdef");
    assert!(is_conflict(store.save_hook(d).await));
    assert_eq!(store.hook("h1").await.unwrap(), None);
}

#[tokio::test]
async fn non_string_id_is_refused() {
    let store = store();
    let r = store.save_hook(doc(json!({"_id": 7, "name": "x"}))).await;
    assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
}

#[tokio::test]
async fn concurrent_updates_from_one_revision_let_exactly_one_win() {
    let store = store();
    let base = store
        .save_hook(hook_doc("h1", &account_id(1)))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, mut d) = (store.clone(), base.clone());
            d.set("name", format!("writer {i}"));
            tokio::spawn(async move { store.save_hook(d).await })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(generation(&store.hook("h1").await.unwrap().unwrap()), 2);
}

// ---- accounts and hooks ----------------------------------------------------------------------

#[tokio::test]
async fn account_is_found_by_its_current_api_key() {
    let store = store();
    let id = account_id(1);
    let saved = store
        .save_account(doc(
            json!({"_id": id.as_str(), "name": "a", "pvt_api_key": "k1"}),
        ))
        .await
        .unwrap();
    store
        .save_account(doc(
            json!({"_id": account_id(2).as_str(), "pvt_api_key": "other"}),
        ))
        .await
        .unwrap();
    let found = store.account_by_api_key("k1").await.unwrap().unwrap();
    assert_eq!(found.id(), Some(id.as_str()));

    let mut rotated = saved;
    rotated.set("pvt_api_key", "k2");
    store.save_account(rotated).await.unwrap();
    assert_eq!(store.account_by_api_key("k1").await.unwrap(), None);
    assert_eq!(
        store.account_by_api_key("k2").await.unwrap().unwrap().id(),
        Some(id.as_str())
    );
}

#[tokio::test]
async fn accounts_lists_every_account() {
    let store = store();
    for n in [3, 1, 2] {
        store
            .save_account(doc(json!({"_id": account_id(n).as_str()})))
            .await
            .unwrap();
    }
    let ids: Vec<String> = store
        .accounts()
        .await
        .unwrap()
        .iter()
        .map(|d| d.id().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = [1, 2, 3].map(|n| account_id(n).to_string()).into();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn hook_listings_exclude_soft_deleted_and_sort_by_id() {
    let store = store();
    let (a, b) = (account_id(1), account_id(2));
    for id in ["h3", "h1", "h2"] {
        store.save_hook(hook_doc(id, &a)).await.unwrap();
    }
    store.save_hook(hook_doc("hb", &b)).await.unwrap();
    let mut gone = store.hook("h2").await.unwrap().unwrap();
    gone.set("pvt_deleted", true);
    store.save_hook(gone).await.unwrap();

    let ids = |docs: Vec<Doc>| -> Vec<String> {
        docs.iter().map(|d| d.id().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(store.hooks_of_account(&a).await.unwrap()), ["h1", "h3"]);
    assert_eq!(ids(store.all_hooks().await.unwrap()), ["h1", "h3", "hb"]);
    // Fetched by id, a soft-deleted hook is still there for the caller to judge.
    assert!(store.hook("h2").await.unwrap().unwrap().is_deleted());
}

#[tokio::test]
async fn undeleting_a_hook_lists_it_again() {
    let store = store();
    let a = account_id(1);
    let mut d = hook_doc("h1", &a);
    d.set("pvt_deleted", true);
    let mut d = store.save_hook(d).await.unwrap();
    assert!(store.hooks_of_account(&a).await.unwrap().is_empty());
    d.remove("pvt_deleted");
    store.save_hook(d).await.unwrap();
    assert_eq!(store.hooks_of_account(&a).await.unwrap().len(), 1);
}

#[tokio::test]
async fn delete_hook_removes_it_for_good() {
    let store = store();
    store
        .save_hook(hook_doc("h1", &account_id(1)))
        .await
        .unwrap();
    store.delete_hook("h1").await.unwrap();
    assert_eq!(store.hook("h1").await.unwrap(), None);
    assert!(matches!(
        store.delete_hook("h1").await,
        Err(StoreError::NotFound)
    ));
    // The id is free again: creating it is not a conflict.
    store
        .save_hook(hook_doc("h1", &account_id(1)))
        .await
        .unwrap();
}

#[tokio::test]
async fn delete_account_removes_its_hooks_and_config_but_not_others() {
    let store = store();
    let (a, b) = (account_id(1), account_id(2));
    for id in [&a, &b] {
        store
            .save_account(doc(json!({"_id": id.as_str()})))
            .await
            .unwrap();
        store
            .save_account_config(id, "webhooks", doc(json!({"attempt_failure_count": 3})))
            .await
            .unwrap();
    }
    store.save_hook(hook_doc("a1", &a)).await.unwrap();
    store.save_hook(hook_doc("a2", &a)).await.unwrap();
    store.save_hook(hook_doc("b1", &b)).await.unwrap();

    store.delete_account(&a).await.unwrap();

    assert_eq!(store.account(&a).await.unwrap(), None);
    assert_eq!(store.hook("a1").await.unwrap(), None);
    assert_eq!(store.hook("a2").await.unwrap(), None);
    assert_eq!(store.account_config(&a, "webhooks").await.unwrap(), None);
    assert!(store.account(&b).await.unwrap().is_some());
    assert!(store.hook("b1").await.unwrap().is_some());
    assert!(store
        .account_config(&b, "webhooks")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn delete_of_missing_account_is_not_found_but_still_removes_orphan_hooks() {
    let store = store();
    let a = account_id(1);
    store.save_hook(hook_doc("orphan", &a)).await.unwrap();
    assert!(matches!(
        store.delete_account(&a).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.hook("orphan").await.unwrap(), None);
}

// ---- configuration ---------------------------------------------------------------------------

#[tokio::test]
async fn system_config_follows_the_revision_rule() {
    let store = store();
    assert_eq!(store.system_config("webhooks").await.unwrap(), None);
    let saved = store
        .save_system_config("webhooks", doc(json!({"log_successful_attempts": true})))
        .await
        .unwrap();
    assert_eq!(saved.id(), Some("webhooks"));
    assert_eq!(generation(&saved), 1);

    assert!(is_conflict(
        store
            .save_system_config("webhooks", doc(json!({"log_successful_attempts": false})))
            .await
    ));
    let mut next = saved.clone();
    next.set("log_successful_attempts", false);
    let updated = store.save_system_config("webhooks", next).await.unwrap();
    assert_eq!(generation(&updated), 2);
    assert_eq!(
        store.system_config("webhooks").await.unwrap(),
        Some(updated)
    );
    assert!(is_conflict(
        store.save_system_config("webhooks", saved).await
    ));
    assert_eq!(store.system_config("crossbar").await.unwrap(), None);
}

#[tokio::test]
async fn account_config_is_per_account_and_category() {
    let store = store();
    let (a, b) = (account_id(1), account_id(2));
    let saved = store
        .save_account_config(&a, "webhooks", doc(json!({"attempt_failure_count": 9})))
        .await
        .unwrap();
    assert_eq!(saved.id(), Some("configs_webhooks"));
    assert_eq!(store.account_config(&b, "webhooks").await.unwrap(), None);
    assert_eq!(store.account_config(&a, "crossbar").await.unwrap(), None);
    assert!(is_conflict(
        store
            .save_account_config(&a, "webhooks", doc(json!({})))
            .await
    ));
    // The same category for another account is a separate document.
    store
        .save_account_config(&b, "webhooks", doc(json!({"attempt_failure_count": 1})))
        .await
        .unwrap();
    assert_eq!(
        store.account_config(&a, "webhooks").await.unwrap(),
        Some(saved)
    );
}

// ---- attempts --------------------------------------------------------------------------------

fn attempt(account: &AccountId, hook: &str, created: i64, n: usize) -> Doc {
    doc(json!({
        "pvt_type": "webhook_attempt",
        "pvt_account_id": account.as_str(),
        "pvt_created": created,
        "hook_id": hook,
        "result": "failure",
        "n": n,
    }))
}

fn ns(docs: &[Doc]) -> Vec<usize> {
    docs.iter().map(|d| d.i64("n").unwrap() as usize).collect()
}

fn query(account: &AccountId) -> AttemptQuery {
    AttemptQuery {
        account: account.clone(),
        hook: None,
        created_from: i64::MIN,
        created_to: i64::MAX,
        ascending: false,
        limit: 1000,
        start: None,
    }
}

/// 60 attempts of account 1 over only 7 distinct seconds (ties are the hard case for cursors),
/// alternating between two hooks, saved in three batches; plus noise from account 2.
/// Returns (n, created, hook) in insertion order.
async fn seed_attempts(store: &EmbeddedStore) -> Vec<(usize, i64, &'static str)> {
    let a = account_id(1);
    let rows: Vec<(usize, i64, &'static str)> = (0..60)
        .map(|n| {
            let created = 1000 + ((n * 5) % 7) as i64;
            (n, created, if n % 2 == 0 { "h1" } else { "h2" })
        })
        .collect();
    for chunk in rows.chunks(20) {
        let batch: Vec<Doc> = chunk
            .iter()
            .map(|&(n, created, hook)| attempt(&a, hook, created, n))
            .collect();
        store.save_attempts(batch.into()).await.unwrap();
        store
            .save_attempts(vec![attempt(&account_id(2), "h1", 1003, 999)].into())
            .await
            .unwrap();
    }
    rows
}

/// Expected listing order: by created, ties by insertion order; newest first unless ascending.
fn expected(
    rows: &[(usize, i64, &str)],
    ascending: bool,
    keep: impl Fn(i64, &str) -> bool,
) -> Vec<usize> {
    let mut out: Vec<(i64, usize)> = rows
        .iter()
        .filter(|(_, created, hook)| keep(*created, hook))
        .map(|&(n, created, _)| (created, n))
        .collect();
    out.sort();
    if !ascending {
        out.reverse();
    }
    out.into_iter().map(|(_, n)| n).collect()
}

/// Follows `next` cursors until the listing ends; returns every page's `n`s.
async fn all_pages(store: &EmbeddedStore, mut q: AttemptQuery) -> Vec<Vec<usize>> {
    let mut pages = Vec::new();
    for _ in 0..1000 {
        let page = store.attempts(q.clone()).await.unwrap();
        assert!(page.attempts.len() <= q.limit);
        pages.push(ns(&page.attempts));
        match page.next {
            Some(cursor) => q.start = Some(cursor),
            None => return pages,
        }
    }
    panic!("paging did not terminate");
}

#[tokio::test]
async fn attempts_list_newest_first_unless_ascending() {
    let store = store();
    let rows = seed_attempts(&store).await;
    let a = account_id(1);

    let page = store.attempts(query(&a)).await.unwrap();
    assert_eq!(ns(&page.attempts), expected(&rows, false, |_, _| true));
    assert_eq!(page.next, None);

    let page = store
        .attempts(AttemptQuery {
            ascending: true,
            ..query(&a)
        })
        .await
        .unwrap();
    assert_eq!(ns(&page.attempts), expected(&rows, true, |_, _| true));
}

#[tokio::test]
async fn attempts_are_returned_as_stored() {
    let store = store();
    let a = account_id(1);
    let stored = attempt(&a, "h1", 5, 0);
    store
        .save_attempts(vec![stored.clone()].into())
        .await
        .unwrap();
    let page = store.attempts(query(&a)).await.unwrap();
    assert_eq!(page.attempts, vec![stored]);
}

#[tokio::test]
async fn cursor_paging_visits_every_attempt_exactly_once() {
    let store = store();
    let rows = seed_attempts(&store).await;
    let a = account_id(1);
    for ascending in [false, true] {
        let want = expected(&rows, ascending, |_, _| true);
        for limit in [1, 4, 7, 59, 60, 61] {
            let pages = all_pages(
                &store,
                AttemptQuery {
                    ascending,
                    limit,
                    ..query(&a)
                },
            )
            .await;
            // Every page but the last is full, and the last is not empty.
            let (last, full) = pages.split_last().unwrap();
            assert!(full.iter().all(|p| p.len() == limit), "limit {limit}");
            assert!(!last.is_empty() || pages.len() == 1, "limit {limit}");
            assert_eq!(pages.concat(), want, "ascending {ascending} limit {limit}");
        }
    }
}

#[tokio::test]
async fn next_is_none_exactly_when_nothing_remains() {
    let store = store();
    seed_attempts(&store).await;
    let q = AttemptQuery {
        limit: 60,
        ..query(&account_id(1))
    };
    assert_eq!(store.attempts(q.clone()).await.unwrap().next, None);
    let page = store
        .attempts(AttemptQuery { limit: 59, ..q })
        .await
        .unwrap();
    let next = page.next.expect("one attempt remains");
    // The cursor names the oldest attempt, the one the page stopped before.
    assert_eq!(next.created, 1000);
}

#[tokio::test]
async fn hook_filter_and_time_range_narrow_the_listing() {
    let store = store();
    let rows = seed_attempts(&store).await;
    let a = account_id(1);

    let q = AttemptQuery {
        hook: Some("h2".into()),
        created_from: 1002,
        created_to: 1004,
        ..query(&a)
    };
    let want = expected(&rows, false, |c, h| h == "h2" && (1002..=1004).contains(&c));
    assert!(!want.is_empty());
    let page = store.attempts(q.clone()).await.unwrap();
    assert_eq!(ns(&page.attempts), want);

    let pages = all_pages(&store, AttemptQuery { limit: 3, ..q }).await;
    assert_eq!(pages.concat(), want);

    let only_edge = store
        .attempts(AttemptQuery {
            created_from: 1006,
            created_to: 1006,
            ..query(&a)
        })
        .await
        .unwrap();
    assert_eq!(
        ns(&only_edge.attempts),
        expected(&rows, false, |c, _| c == 1006)
    );
}

#[tokio::test]
async fn other_accounts_attempts_are_invisible() {
    let store = store();
    seed_attempts(&store).await;
    let page = store.attempts(query(&account_id(2))).await.unwrap();
    assert_eq!(ns(&page.attempts), [999, 999, 999]);
    assert!(store
        .attempts(query(&account_id(3)))
        .await
        .unwrap()
        .attempts
        .is_empty());
}

#[tokio::test]
async fn prune_deletes_only_older_attempts_and_counts_them() {
    let store = store();
    let rows = seed_attempts(&store).await;
    let older = rows.iter().filter(|r| r.1 < 1003).count() as u64;
    // Account 2's three attempts are at 1003 and stay.
    assert_eq!(store.prune_attempts(1003).await.unwrap(), older);
    let page = store.attempts(query(&account_id(1))).await.unwrap();
    assert_eq!(ns(&page.attempts), expected(&rows, false, |c, _| c >= 1003));
    assert_eq!(store.prune_attempts(1003).await.unwrap(), 0);
}

#[tokio::test]
async fn an_unkeyable_attempt_fails_the_whole_batch() {
    let store = store();
    let a = account_id(1);
    let bad = doc(json!({"pvt_account_id": a.as_str(), "hook_id": "h1"}));
    let r = store
        .save_attempts(vec![attempt(&a, "h1", 1, 0), bad].into())
        .await;
    assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
    assert!(store.attempts(query(&a)).await.unwrap().attempts.is_empty());
}

#[tokio::test]
async fn a_cursor_survives_pruning_of_the_rows_before_it() {
    let store = store();
    let rows = seed_attempts(&store).await;
    let a = account_id(1);
    let q = AttemptQuery {
        ascending: true,
        limit: 10,
        ..query(&a)
    };
    let first = store.attempts(q.clone()).await.unwrap();
    store.prune_attempts(1001).await.unwrap();
    let rest = all_pages(
        &store,
        AttemptQuery {
            start: first.next,
            ..q
        },
    )
    .await;
    let mut seen = ns(&first.attempts);
    seen.extend(rest.concat());
    assert_eq!(seen, expected(&rows, true, |_, _| true));
}

// ---- files -----------------------------------------------------------------------------------

/// A file-backed store reads through a second connection: every write is visible to the read
/// that follows it, while attempt batches are being written meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_each_write_at_once_while_batches_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let a = account_id(1);
    let writer = {
        let store = store.clone();
        let a = a.clone();
        tokio::spawn(async move {
            for n in 0..20i64 {
                let batch: Vec<Doc> = (0..200)
                    .map(|i| attempt(&a, "h1", n, (n * 200 + i) as usize))
                    .collect();
                store.save_attempts(batch.into()).await.unwrap();
            }
        })
    };
    let mut hook = store.save_hook(hook_doc("h1", &a)).await.unwrap();
    for n in 0..50 {
        hook.set("name", format!("edit {n}"));
        hook = store.save_hook(hook).await.unwrap();
        assert_eq!(store.hook("h1").await.unwrap().as_ref(), Some(&hook));
        let changes = store.hook_changes(0, 10).await.unwrap();
        assert_eq!(changes.docs.last(), Some(&hook), "{n}");
    }
    writer.await.unwrap();
    let mut q = query(&a);
    q.limit = 10_000;
    assert_eq!(store.attempts(q).await.unwrap().attempts.len(), 4000);
}

#[tokio::test]
async fn documents_survive_reopening_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let a = account_id(1);
    let (hook, config) = {
        let store = EmbeddedStore::open(&data).unwrap();
        assert_eq!(
            store.path(),
            Some(data.join(EmbeddedStore::FILE_NAME).as_path())
        );
        store
            .save_account(doc(json!({"_id": a.as_str(), "pvt_api_key": "k"})))
            .await
            .unwrap();
        store
            .save_attempts(vec![attempt(&a, "h1", 7, 0)].into())
            .await
            .unwrap();
        (
            store.save_hook(hook_doc("h1", &a)).await.unwrap(),
            store
                .save_system_config("webhooks", doc(json!({"x": 1})))
                .await
                .unwrap(),
        )
    };
    let store = EmbeddedStore::open(&data).unwrap();
    assert_eq!(store.hook("h1").await.unwrap(), Some(hook.clone()));
    assert_eq!(store.system_config("webhooks").await.unwrap(), Some(config));
    assert!(store.account_by_api_key("k").await.unwrap().is_some());
    assert_eq!(store.attempts(query(&a)).await.unwrap().attempts.len(), 1);
    // Revisions carry on from the stored one.
    assert_eq!(generation(&store.save_hook(hook).await.unwrap()), 2);
}

/// Attempts are stored compressed; rows an earlier build wrote as plain JSON text still read,
/// in their place in the listing.
#[tokio::test]
async fn attempts_stored_as_text_by_an_earlier_build_still_list() {
    let dir = tempfile::tempdir().unwrap();
    let a = account_id(1);
    let old = attempt(&a, "h1", 100, 1);
    drop(EmbeddedStore::open(dir.path()).unwrap());
    rusqlite::Connection::open(dir.path().join(EmbeddedStore::FILE_NAME))
        .unwrap()
        .execute(
            "INSERT INTO attempts (account_id, hook_id, created, doc) VALUES (?1, 'h1', 100, ?2)",
            rusqlite::params![a.as_str(), serde_json::to_string(&old).unwrap()],
        )
        .unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let new = attempt(&a, "h1", 200, 2);
    store.save_attempts(vec![new.clone()].into()).await.unwrap();
    let compressed: Vec<u8> = rusqlite::Connection::open(store.path().unwrap())
        .unwrap()
        .query_row("SELECT doc FROM attempts WHERE created = 200", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(compressed.len() < serde_json::to_vec(&new).unwrap().len() + 16);
    assert_eq!(
        store.attempts(query(&a)).await.unwrap().attempts,
        vec![new, old]
    );
}

#[test]
fn a_file_from_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(EmbeddedStore::open(dir.path()).unwrap());
    let file = dir.path().join(EmbeddedStore::FILE_NAME);
    rusqlite::Connection::open(&file)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    match EmbeddedStore::open(dir.path()) {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("newer"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_file_is_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    drop(EmbeddedStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(EmbeddedStore::FILE_NAME)).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

// ---- crash safety ----------------------------------------------------------------------------

/// Set for the child process of `killed_writer_loses_no_committed_write`: its data directory.
const CRASH_DIR_ENV: &str = "WEBHOOKS_STORE_CRASH_TEST_DIR";
/// Bounds on the child, in case the parent never kills it.
const CHILD_MAX_WRITES: usize = 20_000;
const CHILD_MAX_TIME: Duration = Duration::from_secs(60);
/// The parent kills the child once this many writes are acknowledged (or after the timeout):
/// enough for the WAL to pass its 1000-page auto-checkpoint, so checkpoints are exercised too.
const KILL_AFTER: usize = 800;
const PARENT_WAIT: Duration = Duration::from_secs(60);

fn crash_hook(n: usize) -> Doc {
    let mut d = hook_doc(&format!("crash{n:06}"), &account_id(1));
    // Several pages per document, so commits span many writes and WAL checkpoints happen.
    d.set(
        "custom_data",
        json!({ "pad": "x".repeat(6000), "n": n.to_string() }),
    );
    d
}

/// Not a test on its own: the writer process `killed_writer_loses_no_committed_write` starts
/// and kills. It prints `committed <n>` only after `save_hook` returned, i.e. after the commit.
#[test]
#[ignore = "child process of killed_writer_loses_no_committed_write"]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = EmbeddedStore::open(&dir).unwrap();
        let started = Instant::now();
        for n in 0..CHILD_MAX_WRITES {
            if started.elapsed() > CHILD_MAX_TIME {
                break;
            }
            store.save_hook(crash_hook(n)).await.unwrap();
            println!("committed {n}");
        }
    });
}

#[test]
fn killed_writer_loses_no_committed_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_writer_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Read the child's acknowledgements on a thread so the wait below can time out.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("committed ") {
                if tx.send(n.parse::<usize>().unwrap()).is_err() {
                    break;
                }
            }
        }
    });
    let mut committed = Vec::new();
    let deadline = Instant::now() + PARENT_WAIT;
    while committed.len() < KILL_AFTER {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(n) => committed.push(n),
            Err(_) => break,
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no flush, no checkpoint.
    child.wait().unwrap();
    // Acknowledgements already in the pipe when the child died count too.
    committed.extend(rx.iter());
    reader.join().unwrap();
    assert!(!committed.is_empty(), "the writer never committed anything");
    assert!(
        committed.len() < CHILD_MAX_WRITES,
        "the writer finished before it was killed"
    );

    let file = dir.path().join(EmbeddedStore::FILE_NAME);
    let check: String = rusqlite::Connection::open(&file)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");

    let store = EmbeddedStore::open(dir.path()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        for &n in &committed {
            let want = crash_hook(n);
            let got = store
                .hook(want.id().unwrap())
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("committed write {n} was lost"));
            assert_eq!(got.get("custom_data"), want.get("custom_data"));
        }
    });
}
