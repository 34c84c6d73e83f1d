//! Delivery attempts: an append-only log per account, listed newest first and pruned by age.
//!
//! Attempts are never updated, so they carry no revision; `seq` (the row id) makes
//! `(created, seq)` unique and totally ordered, which is what lets a listing resume from a
//! cursor without skipping or repeating rows that share a second. Callers get that pair as an
//! opaque [`AttemptCursor`] spelt `at.<created>.<seq>` ([`RowKey::cursor`]).

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{params, params_from_iter, Connection, Transaction};
use webhooks_core::store::{AttemptCursor, AttemptPage, AttemptQuery, StoreError};
use webhooks_core::Doc;

use super::{decode, Fault};

/// An attempt ready to insert: its key columns and its compressed document.
pub(super) struct Row {
    account: String,
    hook: Option<String>,
    created: i64,
    stored: Vec<u8>,
}

/// Encodes a batch for [`insert`]. It needs no connection, so the store runs it before taking
/// the writer: the single writing thread only inserts. Every attempt must name its account
/// (`pvt_account_id`) and creation time (`pvt_created`, gregorian seconds), since listing and
/// pruning key on them; one that does not fails the whole batch rather than being stored where
/// no query would ever find it.
pub(super) fn encode(docs: &[Doc]) -> Result<Vec<Row>, Fault> {
    docs.iter()
        .map(|doc| {
            let account = doc
                .account_id()
                .ok_or_else(|| Fault::BadDoc("attempt has no string pvt_account_id".into()))?;
            let created = doc
                .i64("pvt_created")
                .ok_or_else(|| Fault::BadDoc("attempt has no integer pvt_created".into()))?;
            Ok(Row {
                account: account.to_owned(),
                hook: doc.str("hook_id").map(str::to_owned),
                created,
                stored: compress(&serde_json::to_vec(doc)?),
            })
        })
        .collect()
}

/// Inserts an encoded batch.
pub(super) fn insert(tx: &Transaction<'_>, rows: &[Row]) -> Result<(), Fault> {
    let mut insert = tx.prepare(
        "INSERT INTO attempts (account_id, hook_id, created, doc) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for row in rows {
        insert.execute(params![row.account, row.hook, row.created, row.stored])?;
    }
    Ok(())
}

/// An attempt document as stored: its JSON, LZ4-compressed. Attempts are most of what the
/// store writes under load (every failure, and every success with `log_successful_attempts`),
/// and their request bodies repeat the same keys and encodings: a channel_create attempt of
/// 1,478 bytes is stored in 1,038 (the load harness's `attempts` scenario reports both in its `RESULT` line), so the
/// WAL and the checkpoint write 30% less of them.
fn compress(json: &[u8]) -> Vec<u8> {
    lz4_flex::compress_prepend_size(json)
}

fn decompress(stored: &[u8], seq: i64) -> Result<Doc, Fault> {
    let json = lz4_flex::decompress_size_prepended(stored)
        .map_err(|e| Fault::BadDoc(format!("attempt {seq} cannot be decompressed: {e}")))?;
    serde_json::from_slice(&json).map_err(|source| Fault::Corrupt {
        table: "attempts",
        key: seq.to_string(),
        source,
    })
}

/// Where a row sits in a listing: unique, and the order listings walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RowKey {
    created: i64,
    seq: i64,
}

impl RowKey {
    /// The cursor callers get. Dots, not dashes, between the numbers: `created` may be
    /// negative, and every character is one a URL query carries unescaped.
    fn cursor(self) -> AttemptCursor {
        AttemptCursor::new(format!("at.{}.{}", self.created, self.seq))
    }

    /// The key behind a cursor this store made, or [`StoreError::BadPosition`]. Only the exact
    /// text [`cursor`](Self::cursor) produces is accepted, so a cursor has one spelling.
    fn of_cursor(cursor: &AttemptCursor) -> Result<Self, Fault> {
        let refuse = || Fault::from(StoreError::BadPosition(cursor.as_str().to_owned()));
        let (created, seq) = cursor
            .as_str()
            .strip_prefix("at.")
            .and_then(|rest| rest.split_once('.'))
            .ok_or_else(refuse)?;
        let key = RowKey {
            created: created.parse().map_err(|_| refuse())?,
            seq: seq.parse().map_err(|_| refuse())?,
        };
        if key.cursor() != *cursor {
            return Err(refuse());
        }
        Ok(key)
    }
}

/// One page of a listing. The cursor is inclusive: `start` names the first row to return, and
/// `next` names the first row not returned. Handing `next` back as `start` therefore continues
/// exactly where the page stopped; one extra row is read to learn whether it exists.
pub(super) fn list(conn: &Connection, query: &AttemptQuery) -> Result<AttemptPage, Fault> {
    let start = query.start.as_ref().map(RowKey::of_cursor).transpose()?;
    let (sql, args) = statement(query, start);
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(args))?;
    let mut page = AttemptPage {
        attempts: Vec::with_capacity(query.limit.min(1024)),
        next: None,
    };
    while let Some(row) = rows.next()? {
        let key = RowKey {
            seq: row.get(0)?,
            created: row.get(1)?,
        };
        if page.attempts.len() == query.limit {
            page.next = Some(key.cursor());
            break;
        }
        let doc = match row.get_ref(2)? {
            ValueRef::Blob(stored) => decompress(stored, key.seq)?,
            // Written before attempts were compressed.
            ValueRef::Text(json) => decode(
                "attempts",
                &key.seq.to_string(),
                &String::from_utf8_lossy(json),
            )?,
            _ => {
                return Err(Fault::BadDoc(format!(
                    "attempt {} has no document",
                    key.seq
                )))
            }
        };
        page.attempts.push(doc);
    }
    Ok(page)
}

/// The listing's SQL and its parameters, resuming at `start`. Only fixed fragments are chosen
/// here; every value travels as a parameter.
fn statement(query: &AttemptQuery, start: Option<RowKey>) -> (String, Vec<SqlValue>) {
    let (order, from_cursor) = if query.ascending {
        ("ASC", ">=")
    } else {
        ("DESC", "<=")
    };
    // The index is named, not left to the planner: without statistics SQLite picks the time
    // index for a per-hook listing too, then filters a whole account's history by hook. With
    // `INDEXED BY`, a plan that cannot use the index fails to prepare instead of going slow.
    let index = if query.hook.is_some() {
        "attempts_by_hook"
    } else {
        "attempts_by_time"
    };
    let mut sql = format!(
        "SELECT seq, created, doc FROM attempts INDEXED BY {index}
         WHERE account_id = ? AND created >= ? AND created <= ?"
    );
    let mut args = vec![
        SqlValue::Text(query.account.as_str().to_owned()),
        SqlValue::Integer(query.created_from),
        SqlValue::Integer(query.created_to),
    ];
    if let Some(hook) = &query.hook {
        sql.push_str(" AND hook_id = ?");
        args.push(SqlValue::Text(hook.clone()));
    }
    if let Some(start) = start {
        // A row-value comparison, which SQLite turns into a range scan on the index.
        sql.push_str(&format!(" AND (created, seq) {from_cursor} (?, ?)"));
        args.push(SqlValue::Integer(start.created));
        args.push(SqlValue::Integer(start.seq));
    }
    sql.push_str(&format!(" ORDER BY created {order}, seq {order} LIMIT ?"));
    let fetch = query.limit.saturating_add(1);
    args.push(SqlValue::Integer(i64::try_from(fetch).unwrap_or(i64::MAX)));
    (sql, args)
}

/// Deletes every attempt created before `before`, across all accounts.
pub(super) fn prune(tx: &Transaction<'_>, before: i64) -> Result<u64, Fault> {
    let removed = tx.execute("DELETE FROM attempts WHERE created < ?1", [before])?;
    Ok(removed as u64)
}

/// Deletes every attempt of an account (the account is being deleted).
pub(super) fn delete_account(
    tx: &Transaction<'_>,
    account: &webhooks_core::AccountId,
) -> Result<u64, Fault> {
    let removed = tx.execute(
        "DELETE FROM attempts WHERE account_id = ?1",
        [account.as_str()],
    )?;
    Ok(removed as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::schema;
    use webhooks_core::AccountId;

    /// A listing must read rows in index order, however large the account's history: a plan
    /// that sorts ("USE TEMP B-TREE FOR ORDER BY") would read every matching row per page.
    fn assert_walks_index(query: &AttemptQuery, start: Option<RowKey>, index: &str) {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn).unwrap();
        let (sql, args) = statement(query, start);
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let mut rows = stmt.query(params_from_iter(args)).unwrap();
        let mut plan = String::new();
        while let Some(row) = rows.next().unwrap() {
            plan.push_str(&row.get::<_, String>(3).unwrap());
            plan.push('\n');
        }
        assert!(plan.contains(index), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    fn query(hook: Option<&str>, ascending: bool) -> AttemptQuery {
        AttemptQuery {
            account: AccountId::from_bytes([1; 16]),
            hook: hook.map(str::to_owned),
            created_from: 0,
            created_to: 100,
            ascending,
            limit: 10,
            start: None,
        }
    }

    const KEY: Option<RowKey> = Some(RowKey {
        created: 50,
        seq: 7,
    });

    #[test]
    fn account_listing_walks_the_time_index() {
        for (ascending, start) in [(false, None), (false, KEY), (true, KEY)] {
            assert_walks_index(&query(None, ascending), start, "attempts_by_time");
        }
    }

    #[test]
    fn hook_listing_walks_the_hook_index() {
        for (ascending, start) in [(false, None), (false, KEY), (true, KEY)] {
            assert_walks_index(&query(Some("h"), ascending), start, "attempts_by_hook");
        }
    }

    #[test]
    fn a_cursor_reads_back_as_the_key_it_was_made_from() {
        for (created, seq) in [(63_900_000_000, 1), (0, 0), (-5, 3), (i64::MIN, i64::MAX)] {
            let key = RowKey { created, seq };
            assert_eq!(RowKey::of_cursor(&key.cursor()).unwrap(), key);
        }
    }

    #[test]
    fn a_cursor_this_store_did_not_spell_is_refused() {
        // The last is the `<created>-<seq>` spelling of earlier builds.
        for text in [
            "", "at.", "at.1", "at.1.", "at.1.2.3", "at.+1.2", "at.01.2", "1000-42",
        ] {
            assert!(
                matches!(
                    RowKey::of_cursor(&AttemptCursor::new(text)),
                    Err(Fault::Store(StoreError::BadPosition(t))) if t == text
                ),
                "{text}"
            );
        }
    }
}
