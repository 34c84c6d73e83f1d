//! The hook change feed ([`HookStore::hook_changes`]): what a daemon reads to notice hooks
//! another process wrote. Positions are opaque here: cases keep them, hand them back and
//! compare them for equality, nothing else.
//!
//! [`HookStore::hook_changes`]: webhooks_core::store::HookStore::hook_changes

use std::collections::BTreeMap;

use serde_json::json;
use webhooks_core::store::{FeedPosition, HookChanges, StoreError};
use webhooks_core::{Doc, Store};

use super::fixtures::{account_id, changes, doc, follow, hook_doc, ids, tombstone};

// ---- saves ----------------------------------------------------------------------------------

pub async fn an_empty_store_has_no_changes_and_stays_at_the_beginning<S: Store>(store: S) {
    let start = FeedPosition::beginning();
    assert_eq!(changes(&store, &start).await, HookChanges::default());
    assert!(store.hook_changes(&start, 0).await.unwrap().docs.is_empty());
}

pub async fn saves_updates_and_soft_deletes_appear_in_write_order_at_their_latest_version<
    S: Store,
>(
    store: S,
) {
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

    let all = changes(&store, &FeedPosition::beginning()).await;
    // h3 was written before h1's update and h2's soft delete; each hook appears once.
    assert_eq!(ids(&all.docs), ["h3", "h1", "h2"]);
    assert_eq!(all.docs[1], h1);
    assert_eq!(
        all.docs[2], h2,
        "a soft-deleted hook is listed with its document"
    );
    assert!(all.docs[2].is_deleted());

    // Nothing new since: the position holds.
    let none = changes(&store, &all.last).await;
    assert!(none.docs.is_empty());
    assert_eq!(none.last, all.last);
}

pub async fn a_follower_sees_only_what_was_written_after_its_position<S: Store>(store: S) {
    let a = account_id(1);
    store.save_hook(hook_doc("old", &a)).await.unwrap();
    let pos = changes(&store, &FeedPosition::beginning()).await.last;

    let mut re_enabled = store.save_hook(hook_doc("h1", &a)).await.unwrap();
    re_enabled.set("enabled", true);
    let re_enabled = store.save_hook(re_enabled).await.unwrap();
    let page = changes(&store, &pos).await;
    assert_eq!(page.docs, [re_enabled]);
    assert_ne!(page.last, pos);
}

pub async fn a_conflicting_save_is_not_a_change<S: Store>(store: S) {
    let first = store
        .save_hook(hook_doc("h1", &account_id(1)))
        .await
        .unwrap();
    store.save_hook(first.clone()).await.unwrap();
    let pos = changes(&store, &FeedPosition::beginning()).await.last;
    assert!(matches!(
        store.save_hook(first).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(changes(&store, &pos).await.docs, []);
}

// ---- positions --------------------------------------------------------------------------------

/// A follower that persists its position as text (or JSON) and rebuilds it after a restart
/// continues exactly where it stopped.
pub async fn a_position_kept_as_text_resumes_the_feed<S: Store>(store: S) {
    let a = account_id(1);
    store.save_hook(hook_doc("h1", &a)).await.unwrap();
    let kept = changes(&store, &FeedPosition::beginning()).await.last;
    let h2 = store.save_hook(hook_doc("h2", &a)).await.unwrap();

    let from_text = FeedPosition::new(kept.as_str().to_owned());
    let json = serde_json::to_string(&kept).unwrap();
    let from_json: FeedPosition = serde_json::from_str(&json).unwrap();
    for rebuilt in [from_text, from_json] {
        assert_eq!(rebuilt, kept);
        assert_eq!(
            changes(&store, &rebuilt).await,
            changes(&store, &kept).await
        );
        assert_eq!(
            changes(&store, &rebuilt).await.docs,
            std::slice::from_ref(&h2)
        );
    }
}

pub async fn a_position_the_store_did_not_make_is_refused<S: Store>(store: S) {
    store
        .save_hook(hook_doc("h1", &account_id(1)))
        .await
        .unwrap();
    let forged = FeedPosition::new("not a position");
    match store.hook_changes(&forged, 10).await {
        Err(StoreError::BadPosition(text)) => assert_eq!(text, forged.as_str()),
        other => panic!("expected BadPosition, got {other:?}"),
    }
}

// ---- paging ---------------------------------------------------------------------------------

pub async fn paging_with_small_limits_covers_every_hook_exactly_once<S: Store>(store: S) {
    let (a, b) = (account_id(1), account_id(2));
    // 12 hooks, then updates, soft deletes and hard deletes scattered over them, so that
    // positions are interleaved between the live hooks and the tombstones.
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

    let everything = changes(&store, &FeedPosition::beginning()).await;
    // Untouched hooks in creation order, then each touched hook at its last write.
    let want = [
        "h02", "h04", "h06", "h09", "h10", "h11", "h07", "h00", "h03", "h05", "h08", "h01", "h12",
    ];
    assert_eq!(ids(&everything.docs), want);

    for limit in [1, 2, 3, 5, 12, 13, 14] {
        let (pages, end) = follow(&store, FeedPosition::beginning(), limit).await;
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
pub async fn a_follower_applying_pages_between_writes_converges_on_the_store<S: Store>(store: S) {
    let a = account_id(1);
    let mut table: BTreeMap<String, Doc> = BTreeMap::new();
    let mut since = FeedPosition::beginning();
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
        let page = store.hook_changes(&since, 1).await.unwrap();
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

/// What a follower does with a page: soft-deleted hooks and tombstones leave its table.
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

pub async fn hard_deletes_appear_as_tombstones_naming_the_account<S: Store>(store: S) {
    let (a, b) = (account_id(1), account_id(2));
    store
        .save_account(doc(json!({"_id": b.as_str()})))
        .await
        .unwrap();
    store.save_hook(hook_doc("ha", &a)).await.unwrap();
    store.save_hook(hook_doc("hb2", &b)).await.unwrap();
    store.save_hook(hook_doc("hb1", &b)).await.unwrap();
    store.save_hook(hook_doc("keep", &a)).await.unwrap();
    let pos = changes(&store, &FeedPosition::beginning()).await.last;

    store.delete_hook("ha").await.unwrap();
    store.delete_account(&b).await.unwrap();
    let page = changes(&store, &pos).await;
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
        ids(&changes(&store, &FeedPosition::beginning()).await.docs),
        ["keep", "ha", "hb1", "hb2"]
    );

    // Nothing removed, nothing recorded.
    assert!(matches!(
        store.delete_hook("ha").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(changes(&store, &page.last).await.docs, []);
}

pub async fn hooks_of_a_missing_account_are_still_buried<S: Store>(store: S) {
    let a = account_id(1);
    store.save_hook(hook_doc("orphan", &a)).await.unwrap();
    let pos = changes(&store, &FeedPosition::beginning()).await.last;
    assert!(matches!(
        store.delete_account(&a).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(changes(&store, &pos).await.docs, [tombstone("orphan", &a)]);
}

pub async fn a_recreated_hook_replaces_its_tombstone<S: Store>(store: S) {
    let a = account_id(1);
    store.save_hook(hook_doc("h1", &a)).await.unwrap();
    store.delete_hook("h1").await.unwrap();
    let pos = changes(&store, &FeedPosition::beginning()).await.last;
    let again = store.save_hook(hook_doc("h1", &a)).await.unwrap();
    assert_eq!(
        changes(&store, &pos).await.docs,
        std::slice::from_ref(&again)
    );
    assert_eq!(
        changes(&store, &FeedPosition::beginning()).await.docs,
        [again]
    );
}
