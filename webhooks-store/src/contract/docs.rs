//! Revisioned documents: CouchDB's revision rule, accounts, hooks and configuration.

use std::sync::Arc;

use serde_json::json;
use webhooks_core::store::StoreError;
use webhooks_core::{AccountId, Doc, Store};

use super::fixtures::{account_id, attempt, doc, generation, hook_doc, is_conflict, ns, query};

// ---- revisions -------------------------------------------------------------------------------

pub async fn create_without_id_assigns_hex_id_and_first_revision<S: Store>(store: S) {
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

pub async fn update_with_stored_rev_bumps_generation<S: Store>(store: S) {
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

pub async fn creating_an_existing_id_conflicts<S: Store>(store: S) {
    store
        .save_hook(hook_doc("h1", &account_id(1)))
        .await
        .unwrap();
    assert!(is_conflict(
        store.save_hook(hook_doc("h1", &account_id(2))).await
    ));
}

pub async fn stale_rev_conflicts_and_leaves_the_document_untouched<S: Store>(store: S) {
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

pub async fn updating_a_missing_document_conflicts<S: Store>(store: S) {
    let mut d = hook_doc("h1", &account_id(1));
    d.set("_rev", "3-0123456789abcdef0123456789abcdef");
    assert!(is_conflict(store.save_hook(d).await));
    assert_eq!(store.hook("h1").await.unwrap(), None);
}

pub async fn non_string_id_is_refused<S: Store>(store: S) {
    let r = store.save_hook(doc(json!({"_id": 7, "name": "x"}))).await;
    assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
}

pub async fn concurrent_updates_from_one_revision_let_exactly_one_win<S: Store>(store: S) {
    let store = Arc::new(store);
    let base = store
        .save_hook(hook_doc("h1", &account_id(1)))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, mut d) = (Arc::clone(&store), base.clone());
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

/// Account documents carry `pvt_type: account`, as every writer of them sets it: KAZOO's
/// `accounts/listing_by_api`, which a CouchDB store answers this with, indexes only those.
pub async fn account_is_found_by_its_current_api_key<S: Store>(store: S) {
    let id = account_id(1);
    let saved = store
        .save_account(doc(json!({
            "_id": id.as_str(), "pvt_type": "account", "name": "a", "pvt_api_key": "k1"
        })))
        .await
        .unwrap();
    store
        .save_account(doc(json!({
            "_id": account_id(2).as_str(), "pvt_type": "account", "pvt_api_key": "other"
        })))
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

pub async fn accounts_lists_every_account<S: Store>(store: S) {
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

pub async fn hook_listings_exclude_soft_deleted_and_sort_by_id<S: Store>(store: S) {
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

pub async fn undeleting_a_hook_lists_it_again<S: Store>(store: S) {
    let a = account_id(1);
    let mut d = hook_doc("h1", &a);
    d.set("pvt_deleted", true);
    let mut d = store.save_hook(d).await.unwrap();
    assert!(store.hooks_of_account(&a).await.unwrap().is_empty());
    d.remove("pvt_deleted");
    store.save_hook(d).await.unwrap();
    assert_eq!(store.hooks_of_account(&a).await.unwrap().len(), 1);
}

pub async fn delete_hook_removes_it_for_good<S: Store>(store: S) {
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

pub async fn delete_account_removes_its_hooks_and_config_but_not_others<S: Store>(store: S) {
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

pub async fn delete_account_removes_its_attempts_and_its_id_is_never_reused<S: Store>(store: S) {
    let (a, b) = (account_id(1), account_id(2));
    let now = webhooks_core::time::now_gregorian();
    for id in [&a, &b] {
        store
            .save_account(doc(json!({"_id": id.as_str()})))
            .await
            .unwrap();
    }
    let batch: Vec<Doc> = (0..3)
        .map(|n| attempt(&a, "a1", now - n as i64, n))
        .chain([attempt(&b, "b1", now, 9)])
        .collect();
    store.save_attempts(batch.into()).await.unwrap();

    store.delete_account(&a).await.unwrap();

    let left = store.attempts(query(&a)).await.unwrap();
    assert!(left.attempts.is_empty(), "{:?}", left.attempts);
    assert_eq!(ns(&store.attempts(query(&b)).await.unwrap().attempts), [9]);
    // Whoever creates an account under the deleted id gets a conflict, not its leftovers.
    assert!(is_conflict(
        store
            .save_account(doc(json!({"_id": a.as_str(), "name": "squatter"})))
            .await
    ));
    assert_eq!(store.account(&a).await.unwrap(), None);
    // Other ids are unaffected.
    assert!(store
        .save_account(doc(json!({"_id": account_id(3).as_str()})))
        .await
        .is_ok());
}

pub async fn delete_of_missing_account_is_not_found_but_still_removes_orphan_hooks<S: Store>(
    store: S,
) {
    let a = account_id(1);
    store.save_hook(hook_doc("orphan", &a)).await.unwrap();
    assert!(matches!(
        store.delete_account(&a).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.hook("orphan").await.unwrap(), None);
}

// ---- configuration ---------------------------------------------------------------------------

pub async fn system_config_follows_the_revision_rule<S: Store>(store: S) {
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

pub async fn account_config_is_per_account_and_category<S: Store>(store: S) {
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
