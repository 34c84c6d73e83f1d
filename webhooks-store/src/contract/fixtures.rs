//! The documents and small procedures the contract cases share. Public so that a backend's own
//! tests (files, processes, servers) can build the same documents.

use serde_json::{json, Value};
use webhooks_core::store::{
    AttemptQuery, AttemptStore, FeedPosition, HookChanges, HookStore, StoreError,
};
use webhooks_core::{AccountId, Doc};

pub fn doc(v: Value) -> Doc {
    Doc::from_value(v).expect("test documents are objects")
}

/// A fixed account id per `n`, so cases can name "account 1" and "account 2".
pub fn account_id(n: u8) -> AccountId {
    AccountId::from_bytes([n; 16])
}

pub fn hook_doc(id: &str, account: &AccountId) -> Doc {
    doc(json!({
        "_id": id,
        "pvt_type": "webhook",
        "pvt_account_id": account.as_str(),
        "name": id,
        "uri": "http://example.com/hook",
        "hook": "channel_create",
    }))
}

/// What the change feed shows for a hard-deleted hook.
pub fn tombstone(id: &str, account: &AccountId) -> Doc {
    doc(json!({"_id": id, "pvt_account_id": account.as_str(), "pvt_deleted": true}))
}

pub fn ids(docs: &[Doc]) -> Vec<&str> {
    docs.iter().map(|d| d.id().unwrap()).collect()
}

/// The `<n>` of a saved document's `<n>-<32 hex>` revision, checking the hash's shape.
pub fn generation(doc: &Doc) -> u64 {
    let rev = doc.rev().expect("saved documents carry _rev");
    let (n, hash) = rev.split_once('-').expect("rev is <n>-<hash>");
    assert_eq!(hash.len(), 32, "{rev}");
    assert!(webhooks_core::ids::is_hex32(hash), "{rev}");
    n.parse().unwrap()
}

pub fn is_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict))
}

// ---- the change feed -------------------------------------------------------------------------

/// One page of at most 1000 changes since `since`.
pub async fn changes(store: &impl HookStore, since: &FeedPosition) -> HookChanges {
    store.hook_changes(since, 1000).await.unwrap()
}

/// Follows the feed from `since` with pages of `limit` until it is exhausted, checking that
/// pages are bounded, that an empty page keeps the position and a full one moves it; returns
/// every non-empty page and the position the feed ran dry at.
pub async fn follow(
    store: &impl HookStore,
    mut since: FeedPosition,
    limit: usize,
) -> (Vec<HookChanges>, FeedPosition) {
    let mut pages = Vec::new();
    for _ in 0..10_000 {
        let page = store.hook_changes(&since, limit).await.unwrap();
        assert!(page.docs.len() <= limit, "limit {limit}: {page:?}");
        if page.docs.is_empty() {
            assert_eq!(page.last, since, "an empty page must not move the position");
            return (pages, since);
        }
        assert_ne!(
            page.last, since,
            "a page with changes must move the position"
        );
        since = page.last.clone();
        pages.push(page);
    }
    panic!("the feed did not run dry");
}

// ---- attempts --------------------------------------------------------------------------------

pub fn attempt(account: &AccountId, hook: &str, created: i64, n: usize) -> Doc {
    doc(json!({
        "pvt_type": "webhook_attempt",
        "pvt_account_id": account.as_str(),
        "pvt_created": created,
        "hook_id": hook,
        "result": "failure",
        "n": n,
    }))
}

/// The `n` of each attempt, in listing order.
pub fn ns(docs: &[Doc]) -> Vec<usize> {
    docs.iter().map(|d| d.i64("n").unwrap() as usize).collect()
}

/// Every attempt of `account`, newest first, in one page.
pub fn query(account: &AccountId) -> AttemptQuery {
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

/// A seeded attempt: its `n`, `pvt_created` and hook, in insertion order.
pub type SeededAttempt = (usize, i64, &'static str);

/// 60 attempts of account 1 over only 7 distinct seconds (ties are the hard case for cursors),
/// alternating between two hooks, saved in three batches; plus noise from account 2.
pub async fn seed_attempts(store: &impl AttemptStore) -> Vec<SeededAttempt> {
    let a = account_id(1);
    let rows: Vec<SeededAttempt> = (0..60)
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
pub fn expected(
    rows: &[SeededAttempt],
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
pub async fn all_pages(store: &impl AttemptStore, mut q: AttemptQuery) -> Vec<Vec<usize>> {
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
