//! Configuration documents: `system_config/<category>`, and `configs_<category>` in the
//! account's database.
//!
//! KAZOO keeps a system config's settings under `default` (and a node's own overrides under
//! the node's name, `kazoo_apps@host`), not at the top of the document. Callers see the
//! settings at the top, as every other store gives them: reading lifts `default` up, saving
//! puts the settings back under it. Node sections stay where they are, untouched.

use webhooks_core::store::StoreError;
use webhooks_core::{AccountId, Doc};

use super::accounts::save_in_account_db;
use super::client::Couch;
use super::names::{account_db, SYSTEM_CONFIG};

pub(super) async fn system(couch: &Couch, category: &str) -> Result<Option<Doc>, StoreError> {
    Ok(couch.get(SYSTEM_CONFIG, category).await?.map(lift_default))
}

pub(super) async fn save_system(
    couch: &Couch,
    category: &str,
    mut doc: Doc,
) -> Result<Doc, StoreError> {
    doc.set("_id", category);
    if doc.pvt_type().is_none() {
        doc.set("pvt_type", "config");
    }
    let saved = couch.save(SYSTEM_CONFIG, lower_into_default(doc)).await?;
    Ok(lift_default(saved))
}

/// A node's own section is named after the node (`name@host`).
fn is_node_section(key: &str) -> bool {
    key.contains('@')
}

fn is_setting(key: &str) -> bool {
    !key.starts_with('_') && !key.starts_with("pvt_") && !is_node_section(key)
}

/// KAZOO's layout → the caller's: `default`'s settings at the top.
fn lift_default(mut doc: Doc) -> Doc {
    if let Some(serde_json::Value::Object(default)) = doc.remove("default") {
        for (key, value) in default {
            doc.0.entry(key).or_insert(value);
        }
    }
    doc
}

/// The caller's layout → KAZOO's: every setting under `default`.
fn lower_into_default(doc: Doc) -> Doc {
    let (settings, mut rest): (serde_json::Map<_, _>, serde_json::Map<_, _>) =
        doc.0.into_iter().partition(|(key, _)| is_setting(key));
    rest.insert("default".into(), serde_json::Value::Object(settings));
    Doc(rest)
}

pub(super) async fn account(
    couch: &Couch,
    account: &AccountId,
    category: &str,
) -> Result<Option<Doc>, StoreError> {
    couch.get(&account_db(account), &doc_id(category)).await
}

pub(super) async fn save_account(
    couch: &Couch,
    account: &AccountId,
    category: &str,
    mut doc: Doc,
) -> Result<Doc, StoreError> {
    doc.set("_id", doc_id(category));
    save_in_account_db(couch, account, doc).await
}

fn doc_id(category: &str) -> String {
    format!("configs_{category}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_live_under_default_and_node_sections_stay_put() {
        let kazoo = Doc::from_value(json!({
            "_id": "webhooks", "_rev": "3-a", "pvt_type": "config",
            "default": {"attempt_failure_count": 4},
            "kazoo_apps@host": {"attempt_failure_count": 9},
        }))
        .unwrap();
        let lifted = lift_default(kazoo.clone());
        assert_eq!(lifted.i64("attempt_failure_count"), Some(4));
        assert!(lifted.get("default").is_none());
        assert_eq!(lower_into_default(lifted), kazoo);
    }
}
