//! Hook definitions ([`DefinitionStore`]): KAZOO's `webhook_meta` documents, `webhooks_<module>`
//! in the master account, under the revision rule, and nothing else of the master's.
//!
//! [`DefinitionStore`]: webhooks_core::store::DefinitionStore

use serde_json::json;
use webhooks_core::store::StoreError;
use webhooks_core::{AccountId, Doc, Store};

use super::fixtures::{account_id, doc, generation, ids, is_conflict};

/// Makes account 9 the master account, as KAZOO names it: an account document and
/// `system_config/accounts` `master_account_id`.
pub(crate) async fn with_master<S: Store>(store: &S) -> AccountId {
    let master = account_id(9);
    store
        .save_account(doc(json!({
            "_id": master.as_str(), "pvt_type": "account", "name": "master", "pvt_tree": [],
        })))
        .await
        .unwrap();
    store
        .save_system_config(
            "accounts",
            doc(json!({"master_account_id": master.as_str()})),
        )
        .await
        .unwrap();
    master
}

fn definition(module: &str) -> Doc {
    doc(json!({
        "_id": format!("webhooks_{module}"),
        "pvt_type": "webhook_meta",
        "name": module,
        "description": format!("the {module} hook"),
        "modifiers": {"type": {"type": "array", "items": ["all", module]}},
    }))
}

fn is_backend<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Backend(_)))
}

pub async fn definitions_need_a_master_account<S: Store>(store: S) {
    assert!(is_backend(store.definitions().await));
    assert!(is_backend(store.save_definition(definition("sms")).await));
    // Named, but without an account document.
    let master = account_id(9);
    store
        .save_system_config(
            "accounts",
            doc(json!({"master_account_id": master.as_str()})),
        )
        .await
        .unwrap();
    match store.save_definition(definition("sms")).await {
        Err(StoreError::Backend(why)) => assert!(why.contains(master.as_str()), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(is_backend(store.definition("webhooks_sms").await));
    assert!(is_backend(store.delete_definition("webhooks_sms").await));
}

pub async fn a_definition_is_saved_read_listed_and_deleted<S: Store>(store: S) {
    let master = with_master(&store).await;
    let sms = store.save_definition(definition("sms")).await.unwrap();
    let mms = store.save_definition(definition("mms")).await.unwrap();
    assert_eq!(generation(&sms), 1);
    assert_eq!(sms.id(), Some("webhooks_sms"));
    // Every field as given, plus where it lives: the master account and its database.
    assert_eq!(sms.account_id(), Some(master.as_str()));
    assert_eq!(
        sms.str("pvt_account_db"),
        Some(master.db_name().replace('/', "%2F").as_str())
    );
    let mut given = sms.clone();
    for key in ["_rev", "pvt_account_id", "pvt_account_db"] {
        given.remove(key);
    }
    assert_eq!(given, definition("sms"));

    assert_eq!(
        store.definition("webhooks_sms").await.unwrap(),
        Some(sms.clone())
    );
    assert_eq!(store.definition("webhooks_nope").await.unwrap(), None);
    let all = store.definitions().await.unwrap();
    assert_eq!(ids(&all), ["webhooks_mms", "webhooks_sms"]);
    assert_eq!(all[0], mms);

    let mut edited = sms.clone();
    edited.set("name", "SMS");
    let edited = store.save_definition(edited).await.unwrap();
    assert_eq!(generation(&edited), 2);
    assert_eq!(
        store
            .definition("webhooks_sms")
            .await
            .unwrap()
            .unwrap()
            .str("name"),
        Some("SMS")
    );

    store.delete_definition("webhooks_sms").await.unwrap();
    assert_eq!(store.definition("webhooks_sms").await.unwrap(), None);
    assert_eq!(ids(&store.definitions().await.unwrap()), ["webhooks_mms"]);
    assert!(matches!(
        store.delete_definition("webhooks_sms").await,
        Err(StoreError::NotFound)
    ));
}

/// A reset deletes a definition and writes it again, without a revision.
pub async fn a_deleted_definition_is_created_again<S: Store>(store: S) {
    with_master(&store).await;
    store.save_definition(definition("sms")).await.unwrap();
    store.delete_definition("webhooks_sms").await.unwrap();
    let again = store.save_definition(definition("sms")).await.unwrap();
    assert_eq!(store.definition("webhooks_sms").await.unwrap(), Some(again));
}

pub async fn a_stale_definition_revision_conflicts<S: Store>(store: S) {
    with_master(&store).await;
    let first = store.save_definition(definition("sms")).await.unwrap();
    let mut second = first.clone();
    second.set("name", "second");
    let second = store.save_definition(second).await.unwrap();

    let mut stale = first.clone();
    stale.set("name", "stale");
    assert!(is_conflict(store.save_definition(stale).await));
    // Creating one that exists is a conflict too (two nodes writing it at start).
    assert!(is_conflict(store.save_definition(definition("sms")).await));
    assert_eq!(
        store.definition("webhooks_sms").await.unwrap(),
        Some(second)
    );
}

/// The master account's database holds more than definitions (KAZOO's layout): none of it is
/// listed, read, overwritten or deleted through these calls.
pub async fn only_webhooks_ids_are_definitions<S: Store>(store: S) {
    let master = with_master(&store).await;
    store
        .save_account_config(
            &master,
            "webhooks",
            doc(json!({"attempt_failure_count": 3})),
        )
        .await
        .unwrap();
    store.save_definition(definition("sms")).await.unwrap();

    for id in [
        json!("configs_webhooks"),
        json!(master.as_str()),
        json!("webhooks"),
        json!("webhooks_"),
        json!(7),
    ] {
        let mut other = definition("sms");
        other.set("_id", id.clone());
        assert!(is_backend(store.save_definition(other).await), "{id}");
    }
    let mut no_id = definition("sms");
    no_id.remove("_id");
    assert!(is_backend(store.save_definition(no_id).await));

    assert_eq!(ids(&store.definitions().await.unwrap()), ["webhooks_sms"]);
    for id in ["configs_webhooks", master.as_str()] {
        assert_eq!(store.definition(id).await.unwrap(), None, "{id}");
        assert!(
            matches!(store.delete_definition(id).await, Err(StoreError::NotFound)),
            "{id}"
        );
    }
    assert!(store.account(&master).await.unwrap().is_some());
    let config = store.account_config(&master, "webhooks").await.unwrap();
    assert_eq!(config.unwrap().i64("attempt_failure_count"), Some(3));
}
