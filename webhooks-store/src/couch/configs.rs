//! Configuration documents: `system_config/<category>`, and `configs_<category>` in the
//! account's database.

use webhooks_core::store::StoreError;
use webhooks_core::{AccountId, Doc};

use super::accounts::save_in_account_db;
use super::client::Couch;
use super::names::{account_db, SYSTEM_CONFIG};

pub(super) async fn system(couch: &Couch, category: &str) -> Result<Option<Doc>, StoreError> {
    couch.get(SYSTEM_CONFIG, category).await
}

pub(super) async fn save_system(
    couch: &Couch,
    category: &str,
    mut doc: Doc,
) -> Result<Doc, StoreError> {
    doc.set("_id", category);
    couch.save(SYSTEM_CONFIG, doc).await
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
