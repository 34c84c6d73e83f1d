//! Webhook documents in the `webhooks` database, stored as callers built them (they write the
//! `pvt_*` fields). Listings go through KAZOO's `webhooks/crossbar_listing` (key
//! `[account, id]`, soft-deleted hooks left out).

use couch_rs::types::query::QueryParams;
use serde_json::{json, Value};
use webhooks_core::store::StoreError;
use webhooks_core::{AccountId, Doc};

use super::client::{tombstone, with_id, Couch};
use super::names::WEBHOOKS;
use super::views::OWN;

pub(super) async fn save(couch: &Couch, doc: Doc) -> Result<Doc, StoreError> {
    couch.save(WEBHOOKS, with_id(doc)?).await
}

pub(super) async fn get(couch: &Couch, id: &str) -> Result<Option<Doc>, StoreError> {
    couch.get(WEBHOOKS, id).await
}

pub(super) async fn of_account(couch: &Couch, account: &AccountId) -> Result<Vec<Doc>, StoreError> {
    let a = account.as_str();
    listing(couch, json!([a]), json!([a, {}])).await
}

pub(super) async fn all(couch: &Couch) -> Result<Vec<Doc>, StoreError> {
    listing(couch, Value::Null, json!([{}])).await
}

async fn listing(couch: &Couch, from: Value, to: Value) -> Result<Vec<Doc>, StoreError> {
    let params = QueryParams {
        start_key: Some(from),
        end_key: Some(to),
        include_docs: Some(true),
        ..QueryParams::default()
    };
    let rows = couch
        .view(WEBHOOKS, "webhooks", "crossbar_listing", params)
        .await?;
    Ok(rows.into_iter().filter_map(|r| r.doc).collect())
}

/// Deletes a hook, leaving a tombstone that names its account for the change feed.
pub(super) async fn delete(couch: &Couch, id: &str) -> Result<(), StoreError> {
    let doc = get(couch, id).await?.ok_or(StoreError::NotFound)?;
    let rev = doc.rev().unwrap_or_default();
    couch
        .bulk(WEBHOOKS, vec![tombstone(id, rev, doc.account_id())])
        .await
}

/// Deletes every hook of an account, soft-deleted ones too, in id order.
pub(super) async fn bury_account(couch: &Couch, account: &AccountId) -> Result<(), StoreError> {
    let params = QueryParams {
        key: Some(json!(account.as_str())),
        ..QueryParams::default()
    };
    let rows = couch
        .view(WEBHOOKS, OWN, "hooks_by_account", params)
        .await?;
    let tombstones = rows
        .iter()
        .map(|r| {
            tombstone(
                &r.id,
                r.value.as_str().unwrap_or_default(),
                Some(account.as_str()),
            )
        })
        .collect();
    couch.bulk(WEBHOOKS, tombstones).await
}
