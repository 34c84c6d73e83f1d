//! The revisioned document tables: accounts, hooks, system and account configuration, hook
//! definitions.
//!
//! All five follow CouchDB's rule, implemented once in [`revise`]: a document without `_rev`
//! creates (and conflicts if the id exists), a document with `_rev` updates only that exact
//! revision, and every save stamps a fresh `_rev`. Writers take the caller's immediate
//! transaction, so the revision read and the write cannot be separated by another writer.

use rusqlite::{params, Connection, OptionalExtension, Params, Transaction};
use serde_json::{Map, Value};
use webhooks_core::definitions;
use webhooks_core::ids::{new_doc_id, random_hex};
use webhooks_core::store::StoreError;
use webhooks_core::{AccountId, Doc};

use super::{changes, decode, Fault};

pub(super) fn save_account(tx: &Transaction<'_>, doc: Doc) -> Result<Doc, Fault> {
    let id = doc_id(&doc)?.unwrap_or_else(new_doc_id);
    let buried: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM account_tombstones WHERE id = ?1",
            [&id],
            |row| row.get(0),
        )
        .optional()?;
    if buried.is_some() {
        // A deleted account's id is never used again.
        return Err(StoreError::Conflict.into());
    }
    let (doc, rev, json) = revise(
        tx,
        "SELECT rev FROM accounts WHERE id = ?1",
        [&id],
        doc,
        &id,
    )?;
    tx.execute(
        "INSERT INTO accounts (id, api_key, rev, doc) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE
         SET api_key = excluded.api_key, rev = excluded.rev, doc = excluded.doc",
        params![id, doc.str("pvt_api_key"), rev, json],
    )?;
    Ok(doc)
}

pub(super) fn account(conn: &Connection, id: &AccountId) -> Result<Option<Doc>, Fault> {
    one(
        conn,
        "accounts",
        "SELECT id, doc FROM accounts WHERE id = ?1",
        [id.as_str()],
    )
}

pub(super) fn accounts(conn: &Connection) -> Result<Vec<Doc>, Fault> {
    many(
        conn,
        "accounts",
        "SELECT id, doc FROM accounts ORDER BY id",
        [],
    )
}

/// Keys are random and unique in practice; should two imported accounts share one anyway, the
/// lowest id wins so the answer is at least the same on every call.
pub(super) fn account_by_api_key(conn: &Connection, key: &str) -> Result<Option<Doc>, Fault> {
    one(
        conn,
        "accounts",
        "SELECT id, doc FROM accounts WHERE api_key = ?1 ORDER BY id LIMIT 1",
        [key],
    )
}

/// Removes the account, its hooks, its config documents and its attempts, and buries its id
/// (`account_tombstones`): the id is never accepted for a new account, so nobody re-creating
/// it could read what the deleted account left.
///
/// The hooks are removed even when the account row is missing (the result is then
/// [`StoreError::NotFound`]): a hook whose account is gone must never fire again, whatever
/// order the deletions happened in. Each removed hook leaves a tombstone in the change feed.
pub(super) fn delete_account(tx: &Transaction<'_>, id: &AccountId) -> Result<bool, Fault> {
    let removed = tx.execute("DELETE FROM accounts WHERE id = ?1", [id.as_str()])?;
    let hooks: Vec<(String, Option<String>)> = {
        let mut stmt = tx.prepare("SELECT id FROM hooks WHERE account_id = ?1 ORDER BY id")?;
        let ids = stmt.query_map([id.as_str()], |row| row.get(0))?;
        ids.map(|hook| Ok((hook?, Some(id.as_str().to_owned()))))
            .collect::<Result<_, rusqlite::Error>>()?
    };
    tx.execute("DELETE FROM hooks WHERE account_id = ?1", [id.as_str()])?;
    changes::bury(tx, &hooks)?;
    tx.execute(
        "DELETE FROM account_config WHERE account_id = ?1",
        [id.as_str()],
    )?;
    super::attempts::delete_account(tx, id)?;
    tx.execute(
        "INSERT OR IGNORE INTO account_tombstones (id) VALUES (?1)",
        [id.as_str()],
    )?;
    Ok(removed > 0)
}

pub(super) fn save_hook(tx: &Transaction<'_>, doc: Doc) -> Result<Doc, Fault> {
    let id = doc_id(&doc)?.unwrap_or_else(new_doc_id);
    let (doc, rev, json) = revise(tx, "SELECT rev FROM hooks WHERE id = ?1", [&id], doc, &id)?;
    let seq = changes::next_seq(tx)?;
    tx.execute(
        "INSERT INTO hooks (id, account_id, deleted, rev, doc, seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE
         SET account_id = excluded.account_id, deleted = excluded.deleted,
             rev = excluded.rev, doc = excluded.doc, seq = excluded.seq",
        params![id, doc.account_id(), doc.is_deleted(), rev, json, seq],
    )?;
    changes::revive(tx, &id)?;
    Ok(doc)
}

pub(super) fn hook(conn: &Connection, id: &str) -> Result<Option<Doc>, Fault> {
    one(
        conn,
        "hooks",
        "SELECT id, doc FROM hooks WHERE id = ?1",
        [id],
    )
}

pub(super) fn hooks_of_account(conn: &Connection, account: &AccountId) -> Result<Vec<Doc>, Fault> {
    many(
        conn,
        "hooks",
        "SELECT id, doc FROM hooks WHERE account_id = ?1 AND deleted = 0 ORDER BY id",
        [account.as_str()],
    )
}

pub(super) fn all_hooks(conn: &Connection) -> Result<Vec<Doc>, Fault> {
    many(
        conn,
        "hooks",
        "SELECT id, doc FROM hooks WHERE deleted = 0 ORDER BY id",
        [],
    )
}

/// Leaves a tombstone in the change feed, naming the account the hook belonged to.
pub(super) fn delete_hook(tx: &Transaction<'_>, id: &str) -> Result<bool, Fault> {
    let account: Option<Option<String>> = tx
        .query_row("SELECT account_id FROM hooks WHERE id = ?1", [id], |row| {
            row.get(0)
        })
        .optional()?;
    let Some(account) = account else {
        return Ok(false);
    };
    tx.execute("DELETE FROM hooks WHERE id = ?1", [id])?;
    changes::bury(tx, &[(id.to_owned(), account)])?;
    Ok(true)
}

pub(super) fn system_config(conn: &Connection, category: &str) -> Result<Option<Doc>, Fault> {
    one(
        conn,
        "system_config",
        "SELECT category, doc FROM system_config WHERE category = ?1",
        [category],
    )
}

/// The category is the key; the document's `_id` is set to it, as KAZOO names the documents of
/// its `system_config` database.
pub(super) fn save_system_config(
    tx: &Transaction<'_>,
    category: &str,
    doc: Doc,
) -> Result<Doc, Fault> {
    let (doc, rev, json) = revise(
        tx,
        "SELECT rev FROM system_config WHERE category = ?1",
        [category],
        doc,
        category,
    )?;
    tx.execute(
        "INSERT INTO system_config (category, rev, doc) VALUES (?1, ?2, ?3)
         ON CONFLICT (category) DO UPDATE SET rev = excluded.rev, doc = excluded.doc",
        params![category, rev, json],
    )?;
    Ok(doc)
}

pub(super) fn account_config(
    conn: &Connection,
    account: &AccountId,
    category: &str,
) -> Result<Option<Doc>, Fault> {
    one(
        conn,
        "account_config",
        "SELECT account_id || '/' || category, doc FROM account_config
         WHERE account_id = ?1 AND category = ?2",
        [account.as_str(), category],
    )
}

/// The document's `_id` becomes `configs_<category>`, its name in KAZOO's account database.
pub(super) fn save_account_config(
    tx: &Transaction<'_>,
    account: &AccountId,
    category: &str,
    doc: Doc,
) -> Result<Doc, Fault> {
    let (doc, rev, json) = revise(
        tx,
        "SELECT rev FROM account_config WHERE account_id = ?1 AND category = ?2",
        [account.as_str(), category],
        doc,
        &format!("configs_{category}"),
    )?;
    tx.execute(
        "INSERT INTO account_config (account_id, category, rev, doc) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (account_id, category) DO UPDATE SET rev = excluded.rev, doc = excluded.doc",
        params![account.as_str(), category, rev, json],
    )?;
    Ok(doc)
}

/// The master account, which hook definitions belong to: named by `system_config/accounts`
/// and present, else the [`StoreError::Backend`] every store words the same way.
fn master(conn: &Connection) -> Result<AccountId, Fault> {
    let config = system_config(conn, "accounts")?;
    let master = definitions::master_account(config.as_ref())?;
    if account(conn, &master)?.is_none() {
        return Err(definitions::missing_master(&master).into());
    }
    Ok(master)
}

pub(super) fn definitions(conn: &Connection) -> Result<Vec<Doc>, Fault> {
    master(conn)?;
    many(
        conn,
        "hook_definitions",
        "SELECT id, doc FROM hook_definitions ORDER BY id",
        [],
    )
}

pub(super) fn definition(conn: &Connection, id: &str) -> Result<Option<Doc>, Fault> {
    master(conn)?;
    one(
        conn,
        "hook_definitions",
        "SELECT id, doc FROM hook_definitions WHERE id = ?1",
        [id],
    )
}

/// Only `webhooks_*` ids are taken ([`definitions::place`]), so the table holds nothing else.
pub(super) fn save_definition(tx: &Transaction<'_>, doc: Doc) -> Result<Doc, Fault> {
    let doc = definitions::place(doc, &master(tx)?)?;
    let id = doc.id().unwrap_or_default().to_owned();
    let (doc, rev, json) = revise(
        tx,
        "SELECT rev FROM hook_definitions WHERE id = ?1",
        [&id],
        doc,
        &id,
    )?;
    tx.execute(
        "INSERT INTO hook_definitions (id, rev, doc) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET rev = excluded.rev, doc = excluded.doc",
        params![id, rev, json],
    )?;
    Ok(doc)
}

pub(super) fn delete_definition(tx: &Transaction<'_>, id: &str) -> Result<bool, Fault> {
    master(tx)?;
    Ok(tx.execute("DELETE FROM hook_definitions WHERE id = ?1", [id])? > 0)
}

/// Applies the revision rule to `doc` against the row `select_rev` finds, and stamps `_id` and
/// the new `_rev`. Returns the stamped document, its new revision and its JSON text.
fn revise(
    tx: &Transaction<'_>,
    select_rev: &str,
    key: impl Params,
    doc: Doc,
    id: &str,
) -> Result<(Doc, String, String), Fault> {
    let stored: Option<String> = tx.query_row(select_rev, key, |row| row.get(0)).optional()?;
    let rev = next_rev(doc_rev(&doc)?, stored.as_deref())?;
    let doc = stamp(doc, id, &rev);
    let json = serde_json::to_string(&doc)?;
    Ok((doc, rev, json))
}

/// CouchDB's rule: create when neither side has a revision, update when both agree, conflict
/// otherwise (an update of a missing document is a conflict too, as in CouchDB, because the
/// caller's view of the document is stale either way).
fn next_rev(given: Option<&str>, stored: Option<&str>) -> Result<String, Fault> {
    let generation = match (given, stored) {
        (None, None) => 0,
        (Some(given), Some(stored)) if given == stored => rev_generation(stored)?,
        _ => return Err(StoreError::Conflict.into()),
    };
    // CouchDB digests the body for the hash; only its uniqueness matters here, so it is 16
    // random bytes, in the same 32-hex shape.
    Ok(format!("{}-{}", generation + 1, random_hex(16)))
}

/// The `<n>` of a `<n>-<hash>` revision.
fn rev_generation(rev: &str) -> Result<u64, Fault> {
    rev.split_once('-')
        .and_then(|(n, _)| n.parse().ok())
        .ok_or_else(|| Fault::BadDoc(format!("stored _rev {rev:?} is not <n>-<hash>")))
}

/// Puts `_id` and `_rev` first, where CouchDB shows them, and the other fields in their order.
fn stamp(doc: Doc, id: &str, rev: &str) -> Doc {
    let mut out = Map::with_capacity(doc.0.len() + 2);
    out.insert("_id".into(), Value::String(id.to_owned()));
    out.insert("_rev".into(), Value::String(rev.to_owned()));
    out.extend(doc.0.into_iter().filter(|(k, _)| k != "_id" && k != "_rev"));
    Doc(out)
}

/// The caller's `_id`, if any. A non-string `_id` is refused rather than replaced, since
/// replacing it would silently create a second document.
fn doc_id(doc: &Doc) -> Result<Option<String>, Fault> {
    match doc.get("_id") {
        None => Ok(None),
        Some(Value::String(id)) if !id.is_empty() => Ok(Some(id.clone())),
        Some(other) => Err(Fault::BadDoc(format!(
            "_id must be a non-empty string, got {other}"
        ))),
    }
}

fn doc_rev(doc: &Doc) -> Result<Option<&str>, Fault> {
    match doc.get("_rev") {
        None => Ok(None),
        Some(Value::String(rev)) => Ok(Some(rev)),
        Some(other) => Err(Fault::BadDoc(format!("_rev must be a string, got {other}"))),
    }
}

fn one(
    conn: &Connection,
    table: &'static str,
    sql: &str,
    key: impl Params,
) -> Result<Option<Doc>, Fault> {
    let row: Option<(String, String)> = conn
        .query_row(sql, key, |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    row.map(|(key, json)| decode(table, &key, &json))
        .transpose()
}

fn many(
    conn: &Connection,
    table: &'static str,
    sql: &str,
    key: impl Params,
) -> Result<Vec<Doc>, Fault> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(key, |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    rows.map(|row| {
        let (key, json) = row?;
        decode(table, &key, &json)
    })
    .collect()
}

pub(super) fn auth_key(conn: &Connection, kid: &str) -> Result<Option<Vec<u8>>, Fault> {
    Ok(conn
        .query_row("SELECT pem FROM auth_keys WHERE kid = ?1", [kid], |row| {
            row.get(0)
        })
        .optional()?)
}

pub(super) fn save_auth_key(tx: &Transaction<'_>, kid: &str, pem: &[u8]) -> Result<(), Fault> {
    tx.execute(
        "INSERT INTO auth_keys (kid, pem) VALUES (?1, ?2) \
         ON CONFLICT (kid) DO UPDATE SET pem = excluded.pem",
        params![kid, pem],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_starts_at_generation_one() {
        let rev = next_rev(None, None).unwrap();
        assert!(rev.starts_with("1-"), "{rev}");
        assert_eq!(rev.len(), 34);
    }

    #[test]
    fn update_bumps_the_stored_generation() {
        let rev = next_rev(Some("41-abc"), Some("41-abc")).unwrap();
        assert!(rev.starts_with("42-"), "{rev}");
    }

    #[test]
    fn every_mismatch_is_a_conflict() {
        for (given, stored) in [
            (None, Some("1-a")),
            (Some("1-a"), None),
            (Some("1-a"), Some("2-b")),
        ] {
            assert!(
                matches!(
                    next_rev(given, stored),
                    Err(Fault::Store(StoreError::Conflict))
                ),
                "{given:?} vs {stored:?}"
            );
        }
    }

    #[test]
    fn stamp_puts_id_and_rev_first_and_keeps_field_order() {
        let doc = Doc::from_value(serde_json::json!({"b": 1, "_rev": "old", "a": 2})).unwrap();
        let keys: Vec<String> = stamp(doc, "x", "2-y").0.keys().cloned().collect();
        assert_eq!(keys, ["_id", "_rev", "b", "a"]);
    }
}
