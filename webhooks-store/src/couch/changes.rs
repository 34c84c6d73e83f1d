//! The hook change feed: `_changes` of the `webhooks` database, read one page at a time.
//!
//! A position is `couch.` followed by the text of CouchDB's `last_seq` (PouchDB counts with
//! integers, CouchDB 2+ with opaque strings; either is kept as it came). Tombstones keep the
//! fields the deleting write gave them (`pvt_account_id`), so a hard delete shows as
//! [`Doc::tombstone`] naming its account. Tombstones last as long as CouchDB keeps them:
//! until the database is purged or compacted away, which CouchDB never does by itself.
//!
//! Longpoll and continuous feeds are not used: PouchDB Server ignores `timeout` in both when
//! nothing changes, so a follower polls with the normal feed instead.

use serde_json::Value;
use webhooks_core::store::{FeedPosition, HookChanges, StoreError};
use webhooks_core::Doc;

use super::client::{answer, Couch};
use super::names::WEBHOOKS;

const PREFIX: &str = "couch.";

pub(super) async fn since(
    couch: &Couch,
    since: &FeedPosition,
    limit: usize,
) -> Result<HookChanges, StoreError> {
    let mut seq = sequence(since)?;
    let mut docs = Vec::new();
    // Design documents are skipped, so a full page of them is read past until `limit` hooks
    // are found or the feed runs dry: an empty page then really means nothing is new.
    while docs.len() < limit {
        let asked = limit - docs.len();
        let page = page(couch, &seq, asked, since).await?;
        let rows = page["results"].as_array().cloned().unwrap_or_default();
        docs.extend(rows.iter().filter_map(change_doc));
        seq = seq_text(&page["last_seq"]).unwrap_or(seq);
        if rows.len() < asked {
            break;
        }
    }
    let last = if docs.is_empty() {
        since.clone()
    } else {
        FeedPosition::new(format!("{PREFIX}{seq}"))
    };
    Ok(HookChanges { docs, last })
}

/// CouchDB's `since` for a position this store made.
fn sequence(position: &FeedPosition) -> Result<String, StoreError> {
    if position.is_beginning() {
        return Ok("0".into());
    }
    match position.as_str().strip_prefix(PREFIX) {
        Some(seq) if !seq.is_empty() => Ok(seq.to_owned()),
        _ => Err(StoreError::BadPosition(position.as_str().to_owned())),
    }
}

async fn page(
    couch: &Couch,
    seq: &str,
    limit: usize,
    position: &FeedPosition,
) -> Result<Value, StoreError> {
    let path = format!("{}/_changes", couch.db_path(WEBHOOKS));
    let limit = limit.to_string();
    let query = [("since", seq), ("include_docs", "true"), ("limit", &limit)];
    let req = couch.req(reqwest::Method::GET, &path).query(&query);
    match couch.send(req).await? {
        (200, body) => Ok(body),
        // A sequence CouchDB cannot read: someone edited the position's text.
        (400, _) => Err(StoreError::BadPosition(position.as_str().to_owned())),
        (status, body) => Err(answer(status, &body, &path)),
    }
}

fn seq_text(seq: &Value) -> Option<String> {
    match seq {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What a change row shows the follower: the hook, or the tombstone of a deleted one.
fn change_doc(row: &Value) -> Option<Doc> {
    let id = row["id"].as_str()?;
    if id.starts_with("_design/") {
        return None;
    }
    let doc = row.get("doc").cloned().and_then(Doc::from_value);
    if row["deleted"].as_bool() == Some(true) {
        let account = doc.as_ref().and_then(Doc::account_id);
        return Some(Doc::tombstone(id, account));
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_its_own_positions_are_read() {
        assert_eq!(sequence(&FeedPosition::beginning()).unwrap(), "0");
        assert_eq!(
            sequence(&FeedPosition::new("couch.12-g1AA")).unwrap(),
            "12-g1AA"
        );
        for forged in ["12", "couch.", "at.1.2"] {
            assert!(matches!(
                sequence(&FeedPosition::new(forged)),
                Err(StoreError::BadPosition(_))
            ));
        }
    }
}
