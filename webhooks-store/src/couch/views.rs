//! Design documents: KAZOO's own (verbatim from its view files, in `views/`), and the two
//! views of this store's own that KAZOO has no equivalent of, in `_design/webhooks_store`.
//!
//! KAZOO keeps a map function as an array of lines; CouchDB wants one string, so the lines
//! are joined on install, as KAZOO's loader does.

use serde_json::{json, Value};
use webhooks_core::store::StoreError;
use webhooks_core::Doc;

use super::client::Couch;
use super::names::{ACCOUNTS, WEBHOOKS};

/// `_design/webhooks` of the `webhooks` database (crossbar_listing, accounts_listing...).
pub(super) const WEBHOOKS_DB_DESIGN: &str = include_str!("views/webhooksdb-webhooks.json");
/// `_design/webhooks` of every MODB (attempts_by_time_listing, attempts_by_hook_listing).
pub(super) const MODB_DESIGN: &str = include_str!("views/modb-webhooks.json");
/// `_design/webhooks` of every account database (webhook_meta_listing).
pub(super) const ACCOUNT_DESIGN: &str = include_str!("views/account-webhooks.json");

/// This store's own design document, in the databases where it needs one.
pub(super) const OWN: &str = "webhooks_store";

/// Every hook of an account, soft-deleted ones too (KAZOO's views skip those, but deleting an
/// account must remove them as well); the value is the revision to delete.
const HOOKS_BY_ACCOUNT: &str = "function(doc) {\n  if (doc.pvt_type != 'webhook') return;\n  emit(doc.pvt_account_id, doc._rev);\n}";

/// KAZOO's `accounts/listing_by_api`, written anew for installs where KAZOO's design document
/// is absent or lacks it: accounts by `pvt_api_key`, deleted ones left out.
const LISTING_BY_API: &str = "function(doc) {\n  if (doc.pvt_type != 'account' || doc.pvt_deleted) return;\n  emit(doc.pvt_api_key, {'account_id': doc.pvt_account_id});\n}";

/// The design document that answers `account_by_api_key`: (design, view).
pub(super) type ApiKeyView = (&'static str, &'static str);

/// Installs what the store's queries need and returns where to look api keys up.
pub(super) async fn register(couch: &Couch) -> Result<ApiKeyView, StoreError> {
    ensure(couch, WEBHOOKS, WEBHOOKS_DB_DESIGN).await?;
    let own = json!({"_id": format!("_design/{OWN}"), "language": "javascript",
        "views": {"hooks_by_account": {"map": HOOKS_BY_ACCOUNT}}});
    ensure_doc(couch, WEBHOOKS, own).await?;
    api_key_view(couch).await
}

/// KAZOO's `accounts/listing_by_api` when its design document has it (never touched), else
/// the same view in this store's own design document.
async fn api_key_view(couch: &Couch) -> Result<ApiKeyView, StoreError> {
    let kazoo = couch.get_raw(ACCOUNTS, "_design/accounts").await?;
    if kazoo.is_some_and(|d| {
        d.get("views")
            .is_some_and(|v| v.get("listing_by_api").is_some())
    }) {
        return Ok(("accounts", "listing_by_api"));
    }
    let own = json!({"_id": format!("_design/{OWN}"), "language": "javascript",
        "views": {"listing_by_api": {"map": LISTING_BY_API}}});
    ensure_doc(couch, ACCOUNTS, own).await?;
    Ok((OWN, "listing_by_api"))
}

/// Installs one of KAZOO's design documents (its JSON file) in `db`.
pub(super) async fn ensure(couch: &Couch, db: &str, file: &str) -> Result<(), StoreError> {
    let design: Value = serde_json::from_str(file).expect("the view files are JSON");
    ensure_doc(couch, db, joined(design)).await
}

/// Creates a design document, or updates it when its views or language differ.
async fn ensure_doc(couch: &Couch, db: &str, design: Value) -> Result<(), StoreError> {
    let mut design = Doc::from_value(design).expect("design documents are objects");
    let id = design.id().expect("design documents have ids").to_owned();
    if let Some(stored) = couch.get_raw(db, &id).await? {
        if stored.get("views") == design.get("views")
            && stored.get("language") == design.get("language")
        {
            return Ok(());
        }
        design.set("_rev", stored.rev().unwrap_or_default());
    }
    match couch.put_raw(db, &id, &design).await {
        // Another process installed it meanwhile: theirs is as good.
        Ok(_) | Err(StoreError::Conflict) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The design document with each map (and reduce) given as lines joined into one string.
fn joined(mut design: Value) -> Value {
    if let Some(views) = design.get_mut("views").and_then(Value::as_object_mut) {
        for view in views.values_mut().filter_map(Value::as_object_mut) {
            for f in view.values_mut() {
                if let Some(lines) = f.as_array() {
                    let text: Vec<&str> = lines.iter().filter_map(Value::as_str).collect();
                    *f = Value::String(text.join("\n"));
                }
            }
        }
    }
    design
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kazoo_view_lines_become_one_function() {
        let design = joined(serde_json::from_str(MODB_DESIGN).unwrap());
        let map = design["views"]["attempts_by_time_listing"]["map"]
            .as_str()
            .unwrap();
        assert!(map.starts_with("function(doc) {\n"), "{map}");
        assert!(map.contains("emit(doc.pvt_created, null);"));
        let design = joined(serde_json::from_str(WEBHOOKS_DB_DESIGN).unwrap());
        assert_eq!(design["views"]["accounts_listing"]["reduce"], "_count");
        assert_eq!(design["_id"], "_design/webhooks");
    }
}
