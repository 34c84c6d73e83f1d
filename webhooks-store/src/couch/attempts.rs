//! Delivery attempts, where KAZOO keeps them: in the account's monthly database (MODB)
//! `account/xx/yy/rest-YYYYMM`, the month of each attempt's `pvt_created`, listed through the
//! MODB's `_design/webhooks` views (`attempts_by_time_listing`, `attempts_by_hook_listing`).
//!
//! A view row's place is (key, document id), so an attempt's id decides its place among those
//! of the same second: attempts take their ids when they are made
//! ([`webhooks_core::ids::ordered_doc_id`], which grow in that order), and an attempt without
//! one gets one here. A batch written again because the answer to the first write was lost
//! carries the same ids: CouchDB's conflict for those is taken as "already written", so a
//! retried batch never duplicates an attempt. A cursor names a row as
//! `cc.<created>.<hex of the id>`, characters a URL query carries unescaped. PouchDB ignores
//! `startkey_docid`, so a page resumes without it: the rows of the cursor's second are read
//! whole and filtered by id, then the range goes on from the next second.
//!
//! CouchDB cannot list an account's MODBs (and PouchDB's `_all_dbs` mangles their names), so
//! the months this store wrote to are kept in [`super::months`]; a bounded range also visits
//! every month it covers, which finds the MODBs KAZOO itself wrote.
//!
//! A batch is checked whole before anything is written, then saved with one `_bulk_docs` per
//! MODB. CouchDB has no transaction across requests: a batch spanning months that fails
//! half-way keeps the months already written.

use couch_rs::types::query::QueryParams;
use serde_json::{json, Value};
use webhooks_core::store::{AttemptCursor, AttemptPage, AttemptQuery, StoreError};
use webhooks_core::{AccountId, Doc};

use super::client::{tombstone, Couch, Row};
use super::months::Months;
use super::names::{encoded, modb, month_end, month_of, month_start, next_month, Month};

const CURSOR: &str = "cc.";
/// A range of at most this many months is walked month by month, registered or not.
const WALKED_MONTHS: i64 = 24;

/// An attempt checked and placed: its MODB and the document to write there.
struct Placed {
    account: AccountId,
    month: Month,
    doc: Doc,
}

pub(super) async fn save(couch: &Couch, months: &Months, docs: &[Doc]) -> Result<(), StoreError> {
    let placed = docs.iter().map(place).collect::<Result<Vec<_>, _>>()?;
    let mut groups: Vec<(AccountId, Month, Vec<Value>)> = Vec::new();
    for p in placed {
        match groups
            .iter_mut()
            .find(|g| g.0 == p.account && g.1 == p.month)
        {
            Some(group) => group.2.push(p.doc.into_value()),
            None => groups.push((p.account, p.month, vec![p.doc.into_value()])),
        }
    }
    for (account, month, docs) in groups {
        months.ensure(couch, &account, month).await?;
        let db = modb(&account, month);
        match couch.bulk_once(&db, docs.clone()).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => {
                // Pruned by another process since this one created it: create it again.
                months.forget(&account, month);
                months.ensure(couch, &account, month).await?;
                couch.bulk_once(&db, docs).await?;
            }
            // The server is down or refused the batch: the caller keeps it and tries again.
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Checks an attempt's keys and gives it its id and `pvt_account_db`.
fn place(doc: &Doc) -> Result<Placed, StoreError> {
    let bad = |why: &str| StoreError::Backend(format!("unusable attempt: {why}"));
    let account = doc
        .account_id()
        .ok_or_else(|| bad("no string pvt_account_id"))?;
    let account = AccountId::parse(account).map_err(|e| bad(&e.to_string()))?;
    let created = doc
        .i64("pvt_created")
        .ok_or_else(|| bad("no integer pvt_created"))?;
    let month = month_of(created);
    let mut doc = doc.clone();
    match doc.get("_id") {
        None => doc.set("_id", webhooks_core::ids::ordered_doc_id()),
        Some(Value::String(id)) if !id.is_empty() => {}
        Some(_) => return Err(bad("_id is not a string")),
    }
    doc.set("pvt_account_db", encoded(&modb(&account, month)));
    Ok(Placed {
        account,
        month,
        doc,
    })
}

// ---- listing ---------------------------------------------------------------------------------

/// Where a listing resumes: a row's second and document id.
struct Cursor {
    created: i64,
    id: String,
}

impl Cursor {
    fn text(&self) -> AttemptCursor {
        let hex = webhooks_core::ids::hex(self.id.as_bytes());
        AttemptCursor::new(format!("{CURSOR}{}.{hex}", self.created))
    }

    fn parse(cursor: &AttemptCursor) -> Result<Cursor, StoreError> {
        let bad = || StoreError::BadPosition(cursor.as_str().to_owned());
        let rest = cursor.as_str().strip_prefix(CURSOR).ok_or_else(bad)?;
        let (created, hex) = rest.split_once('.').ok_or_else(bad)?;
        let created = created.parse().map_err(|_| bad())?;
        let id = unhex(hex).ok_or_else(bad)?;
        Ok(Cursor { created, id })
    }
}

fn unhex(hex: &str) -> Option<String> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// A row read back: its second, id and document.
struct Found {
    created: i64,
    id: String,
    doc: Doc,
}

pub(super) async fn list(
    couch: &Couch,
    months: &Months,
    q: AttemptQuery,
) -> Result<AttemptPage, StoreError> {
    let mut cursor = q.start.as_ref().map(Cursor::parse).transpose()?;
    let (from, to) = match &cursor {
        Some(c) if q.ascending => (q.created_from.max(c.created), q.created_to),
        Some(c) => (q.created_from, q.created_to.min(c.created)),
        None => (q.created_from, q.created_to),
    };
    let mut found: Vec<Found> = Vec::new();
    if from <= to {
        for month in visited(couch, months, &q.account, from, to, q.ascending).await? {
            let need = q.limit + 1 - found.len();
            let db = modb(&q.account, month);
            let (lo, hi) = (from.max(month_start(month)), to.min(month_end(month) - 1));
            found.extend(in_month(couch, &db, &q, lo, hi, cursor.take(), need).await?);
            if found.len() > q.limit {
                break;
            }
        }
    }
    let next = found.get(q.limit).map(|f| {
        Cursor {
            created: f.created,
            id: f.id.clone(),
        }
        .text()
    });
    found.truncate(q.limit);
    let attempts = found.into_iter().map(|f| f.doc).collect();
    Ok(AttemptPage { attempts, next })
}

/// The months to read, in listing order: those registered for the account, plus every month
/// of a bounded range.
async fn visited(
    couch: &Couch,
    months: &Months,
    account: &AccountId,
    from: i64,
    to: i64,
    ascending: bool,
) -> Result<Vec<Month>, StoreError> {
    let (first, last) = (month_of(from), month_of(to));
    let mut all = months.of_account(couch, account).await?;
    all.retain(|m| (first..=last).contains(m));
    if (last / 100 - first / 100) * 12 + (last % 100 - first % 100) < WALKED_MONTHS {
        let mut m = first;
        while m <= last {
            all.push(m);
            m = next_month(m);
        }
    }
    all.sort_unstable();
    all.dedup();
    if !ascending {
        all.reverse();
    }
    Ok(all)
}

/// Up to `need` rows of one MODB within `[lo, hi]`, in listing order, starting at `cursor`
/// when it falls in this month.
async fn in_month(
    couch: &Couch,
    db: &str,
    q: &AttemptQuery,
    lo: i64,
    hi: i64,
    cursor: Option<Cursor>,
    need: usize,
) -> Result<Vec<Found>, StoreError> {
    let mut out = Vec::new();
    let (mut lo, mut hi) = (lo, hi);
    if let Some(c) = cursor {
        // The cursor's own second, from its row on; then the range past that second.
        let tie = |id: &str| {
            if q.ascending {
                id >= c.id.as_str()
            } else {
                id <= c.id.as_str()
            }
        };
        let rows = range(couch, db, q, c.created, c.created, None).await?;
        out.extend(rows.into_iter().filter(|f| tie(&f.id)).take(need));
        let past = if q.ascending {
            c.created.checked_add(1).map(|s| lo = s)
        } else {
            c.created.checked_sub(1).map(|s| hi = s)
        };
        if past.is_none() || out.len() >= need {
            return Ok(out);
        }
    }
    if lo <= hi {
        out.extend(range(couch, db, q, lo, hi, Some(need - out.len())).await?);
    }
    Ok(out)
}

/// The rows of `[lo, hi]` in listing order (at most `limit`); none when the MODB is missing.
async fn range(
    couch: &Couch,
    db: &str,
    q: &AttemptQuery,
    lo: i64,
    hi: i64,
    limit: Option<usize>,
) -> Result<Vec<Found>, StoreError> {
    let (view, lo_key, hi_key) = match &q.hook {
        Some(hook) => (
            "attempts_by_hook_listing",
            json!([hook, lo]),
            json!([hook, hi]),
        ),
        None => ("attempts_by_time_listing", json!(lo), json!(hi)),
    };
    let (start, end) = if q.ascending {
        (lo_key, hi_key)
    } else {
        (hi_key, lo_key)
    };
    let params = QueryParams {
        start_key: Some(start),
        end_key: Some(end),
        descending: Some(!q.ascending),
        include_docs: Some(true),
        limit: limit.map(|l| l as u64),
        ..QueryParams::default()
    };
    let rows = couch.view_if_db(db, "webhooks", view, params).await?;
    Ok(rows
        .unwrap_or_default()
        .into_iter()
        .filter_map(found)
        .collect())
}

fn found(row: Row) -> Option<Found> {
    let created = match &row.key {
        Value::Array(key) => key.get(1)?.as_i64()?,
        key => key.as_i64()?,
    };
    Some(Found {
        created,
        id: row.id,
        doc: row.doc?,
    })
}

// ---- pruning ---------------------------------------------------------------------------------

/// Deletes attempts created before `before`: a month wholly before it goes with its MODB
/// when the MODB holds nothing but attempts and design documents (in a KAZOO cluster it also
/// holds CDRs and more, which are not this store's to delete), else attempt by attempt.
pub(super) async fn prune(couch: &Couch, months: &Months, before: i64) -> Result<u64, StoreError> {
    let mut pruned = 0;
    for (account, month) in months.all(couch).await? {
        if month_start(month) >= before {
            continue;
        }
        let db = modb(&account, month);
        if month_end(month) <= before {
            pruned += prune_month(couch, &db).await?;
            months.remove(couch, &account, month).await?;
        } else {
            pruned += delete_attempts(couch, &db, Some(before - 1)).await?;
        }
    }
    Ok(pruned)
}

/// Deletes every attempt of an account (the account is being deleted): each of its months
/// is emptied as pruning empties one, and leaves the registry.
pub(super) async fn delete_account(
    couch: &Couch,
    months: &Months,
    account: &AccountId,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for month in months.of_account(couch, account).await? {
        deleted += prune_month(couch, &modb(account, month)).await?;
        months.remove(couch, account, month).await?;
    }
    Ok(deleted)
}

/// Empties a whole month: drops the MODB if it holds only attempts, else deletes them.
async fn prune_month(couch: &Couch, db: &str) -> Result<u64, StoreError> {
    let attempts = count(couch, db).await?;
    let designs = couch.all_ids(db, "_design/", "_design0").await?.len() as u64;
    let Some(docs) = couch.doc_count(db).await? else {
        return Ok(0);
    };
    if docs <= attempts + designs {
        couch.delete_db(db).await?;
        Ok(attempts)
    } else {
        delete_attempts(couch, db, None).await
    }
}

async fn count(couch: &Couch, db: &str) -> Result<u64, StoreError> {
    let path = format!(
        "{}/_design/webhooks/_view/attempts_by_time_listing",
        couch.db_path(db)
    );
    let req = couch
        .req(reqwest::Method::GET, &path)
        .query(&[("limit", "0")]);
    match couch.send(req).await? {
        (200, body) => Ok(body["total_rows"].as_u64().unwrap_or(0)),
        (404, _) => Ok(0),
        (status, body) => Err(super::client::answer(status, &body, &path)),
    }
}

/// Deletes the attempts of one MODB created at or before `until` (all when `None`).
async fn delete_attempts(couch: &Couch, db: &str, until: Option<i64>) -> Result<u64, StoreError> {
    let params = QueryParams {
        end_key: until.map(|u| json!(u)),
        include_docs: Some(true),
        ..QueryParams::default()
    };
    let rows = couch
        .view_if_db(db, "webhooks", "attempts_by_time_listing", params)
        .await?
        .unwrap_or_default();
    let tombstones: Vec<Value> = rows
        .iter()
        .filter_map(|r| r.doc.as_ref())
        .map(|d| {
            tombstone(
                d.id().unwrap_or_default(),
                d.rev().unwrap_or_default(),
                None,
            )
        })
        .collect();
    let n = tombstones.len() as u64;
    couch.bulk(db, tombstones).await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_stay_url_safe() {
        let c = Cursor {
            created: -5,
            id: "a b/é".into(),
        };
        let text = c.text();
        assert!(text
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)));
        let back = Cursor::parse(&text).unwrap();
        assert_eq!((back.created, back.id.as_str()), (-5, "a b/é"));
        for forged in ["cc.1.zz", "cc.x.61", "at.1.61", "cc.1."] {
            assert!(
                Cursor::parse(&AttemptCursor::new(forged)).is_err(),
                "{forged}"
            );
        }
    }
}
