//! Hook definitions (KAZOO's `webhook_meta` documents) in the master account's database, where
//! KAZOO's `webhooks_util:init_metadata` writes them and its crossbar reads them (the
//! `webhooks/webhook_meta_listing` view of that database).
//!
//! The database holds the account document and its `configs_*` too, so every call keeps to the
//! `webhooks_*` ids: listing is KAZOO's own id range, reads and deletes of any other id find
//! nothing, and saves of any other id are refused ([`definitions::place`]).

use serde_json::json;
use webhooks_core::definitions::{self, is_definition_id};
use webhooks_core::store::{StoreError, DEFINITION_PREFIX};
use webhooks_core::{AccountId, Doc};

use super::accounts::save_in_account_db;
use super::client::{answer, tombstone, Couch};
use super::names::account_db;

/// The master account `system_config/accounts` names, when its account document exists.
async fn master(couch: &Couch) -> Result<AccountId, StoreError> {
    let config = super::configs::system(couch, "accounts").await?;
    let master = definitions::master_account(config.as_ref())?;
    if super::accounts::get(couch, &master).await?.is_none() {
        return Err(definitions::missing_master(&master));
    }
    Ok(master)
}

/// `_all_docs` of the `webhooks_` ids with their documents (deleted ones are not listed).
/// The range ends past every character an id may hold, not at KAZOO's `webhooks_{`: PouchDB
/// and CouchDB order `_all_docs` differently, and only the prefix matters.
pub(super) async fn all(couch: &Couch) -> Result<Vec<Doc>, StoreError> {
    let db = account_db(&master(couch).await?);
    let path = format!("{}/_all_docs", couch.db_path(&db));
    let body = json!({
        "startkey": DEFINITION_PREFIX,
        "endkey": format!("{DEFINITION_PREFIX}\u{fff0}"),
        "include_docs": true,
    });
    match couch
        .send(couch.req(reqwest::Method::POST, &path).json(&body))
        .await?
    {
        (200, body) => {
            let rows = body["rows"].as_array().cloned().unwrap_or_default();
            let mut docs: Vec<Doc> = rows
                .into_iter()
                .filter(|row| row["id"].as_str().is_some_and(is_definition_id))
                .filter_map(|mut row| Doc::from_value(row["doc"].take()))
                .collect();
            docs.sort_by(|a, b| a.id().cmp(&b.id()));
            Ok(docs)
        }
        (404, _) => Ok(Vec::new()),
        (status, body) => Err(answer(status, &body, &path)),
    }
}

pub(super) async fn get(couch: &Couch, id: &str) -> Result<Option<Doc>, StoreError> {
    let master = master(couch).await?;
    if !is_definition_id(id) {
        return Ok(None);
    }
    couch.get(&account_db(&master), id).await
}

pub(super) async fn save(couch: &Couch, doc: Doc) -> Result<Doc, StoreError> {
    let master = master(couch).await?;
    let doc = definitions::place(doc, &master)?;
    save_in_account_db(couch, &master, doc).await
}

pub(super) async fn delete(couch: &Couch, id: &str) -> Result<(), StoreError> {
    let master = master(couch).await?;
    if !is_definition_id(id) {
        return Err(StoreError::NotFound);
    }
    let db = account_db(&master);
    let doc = couch.get(&db, id).await?.ok_or(StoreError::NotFound)?;
    let rev = doc.rev().unwrap_or_default();
    couch.bulk(&db, vec![tombstone(id, rev, None)]).await
}
