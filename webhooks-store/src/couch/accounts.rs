//! Account documents, where KAZOO keeps them: in the account's own database
//! (`account/xx/yy/rest`, document id = account id), created on demand, and a copy in the
//! `accounts` database, which KAZOO's account views (api keys, trees) read.
//!
//! The two copies have revisions of their own. The account database's is the one callers see
//! and send back; the copy is brought in step after each save by reading its current revision
//! and writing over it, so an edit made to the copy alone (by KAZOO) never blocks ours.
//! [`all`] lists the copies: their `_rev` is the copy's, so re-read an account with [`get`]
//! before saving it.

use couch_rs::types::query::QueryParams;
use serde_json::json;
use webhooks_core::store::StoreError;
use webhooks_core::{AccountId, Doc};

use super::client::{tombstone, with_id, Couch};
use super::names::{account_db, ACCOUNTS};
use super::views::{self, ApiKeyView};

/// Saving the copy in `accounts` races only with other writers of the same account; a few
/// rounds of read-then-write settle it.
const COPY_ROUNDS: usize = 5;

pub(super) async fn save(couch: &Couch, doc: Doc) -> Result<Doc, StoreError> {
    let doc = with_id(doc)?;
    let id = doc.id().unwrap_or_default();
    let account = AccountId::parse(id)
        .map_err(|e| StoreError::Backend(format!("an account id must be 32 hex: {e}")))?;
    if doc.rev().is_none() && was_deleted(couch, &account).await? {
        // A deleted account's id is never used again (CouchDB would revive the document).
        return Err(StoreError::Conflict);
    }
    let saved = save_in_account_db(couch, &account, doc).await?;
    copy_to_accounts(couch, &saved).await?;
    Ok(saved)
}

/// Saves a document in the account's database, creating the database (as KAZOO does, with
/// its `_design/webhooks`) when it is missing.
pub(super) async fn save_in_account_db(
    couch: &Couch,
    account: &AccountId,
    doc: Doc,
) -> Result<Doc, StoreError> {
    let db = account_db(account);
    match couch.save(&db, doc.clone()).await {
        Err(StoreError::NotFound) => {
            if couch.create_db(&db).await? {
                views::ensure(couch, &db, views::ACCOUNT_DESIGN).await?;
            }
            couch.save(&db, doc).await
        }
        other => other,
    }
}

async fn copy_to_accounts(couch: &Couch, saved: &Doc) -> Result<(), StoreError> {
    let id = saved.id().unwrap_or_default();
    for _ in 0..COPY_ROUNDS {
        let mut copy = saved.clone();
        match couch.get(ACCOUNTS, id).await? {
            Some(current) => copy.set("_rev", current.rev().unwrap_or_default()),
            None => drop(copy.remove("_rev")),
        }
        match couch.save(ACCOUNTS, copy).await {
            Err(StoreError::Conflict) => continue,
            other => return other.map(drop),
        }
    }
    Err(StoreError::Backend(format!(
        "the copy of account {id} in {ACCOUNTS} kept changing"
    )))
}

/// Whether the account's copy in `accounts` was deleted: CouchDB keeps a deleted document's
/// tombstone, and `_all_docs` by key lists it with `deleted: true` (a never-written id is an
/// `error` row instead). A plain GET cannot tell them apart on every server: PouchDB answers
/// `missing` for both.
async fn was_deleted(couch: &Couch, account: &AccountId) -> Result<bool, StoreError> {
    let path = format!("{}/_all_docs", couch.db_path(ACCOUNTS));
    let req = couch
        .req(reqwest::Method::POST, &path)
        .json(&json!({"keys": [account.as_str()]}));
    match couch.send(req).await? {
        (200, body) => Ok(body["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|row| row["value"]["deleted"] == true)),
        (404, _) => Ok(false),
        (status, body) => Err(super::client::answer(status, &body, &path)),
    }
}

pub(super) async fn get(couch: &Couch, account: &AccountId) -> Result<Option<Doc>, StoreError> {
    couch.get(&account_db(account), account.as_str()).await
}

/// The copies in `accounts`, by id, design documents left out.
pub(super) async fn all(couch: &Couch) -> Result<Vec<Doc>, StoreError> {
    let all = couch
        .db(ACCOUNTS)
        .get_all_raw()
        .await
        .map_err(super::client::fault)?;
    Ok(all.rows.into_iter().filter_map(Doc::from_value).collect())
}

/// The account with this api key, read from its own database (the copy if that is gone).
pub(super) async fn by_api_key(
    couch: &Couch,
    view: ApiKeyView,
    key: &str,
) -> Result<Option<Doc>, StoreError> {
    let params = QueryParams {
        key: Some(json!(key)),
        include_docs: Some(true),
        limit: Some(1),
        ..QueryParams::default()
    };
    let Some(row) = couch.view(ACCOUNTS, view.0, view.1, params).await?.pop() else {
        return Ok(None);
    };
    let own = match AccountId::parse(&row.id) {
        Ok(account) => get(couch, &account).await?,
        Err(_) => None,
    };
    Ok(own.or(row.doc))
}

/// Deletes the account document (both copies) and its `configs_*` documents; the database
/// stays, since in a KAZOO cluster it holds more than this engine's documents.
/// [`StoreError::NotFound`] when neither copy existed.
pub(super) async fn delete(couch: &Couch, account: &AccountId) -> Result<(), StoreError> {
    let db = account_db(account);
    let configs = couch.all_ids(&db, "configs_", "configs_\u{fff0}").await?;
    let configs = configs
        .iter()
        .map(|r| tombstone(&r.id, r.value.as_str().unwrap_or_default(), None))
        .collect();
    couch.bulk(&db, configs).await?;
    let own = delete_doc(couch, &db, account.as_str()).await?;
    let copy = delete_doc(couch, ACCOUNTS, account.as_str()).await?;
    if own || copy {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// Deletes a document at its current revision; `false` when there was none.
async fn delete_doc(couch: &Couch, db: &str, id: &str) -> Result<bool, StoreError> {
    let Some(doc) = couch.get(db, id).await? else {
        return Ok(false);
    };
    let rev = doc.rev().unwrap_or_default();
    couch
        .bulk(db, vec![tombstone(id, rev, doc.account_id())])
        .await?;
    Ok(true)
}
