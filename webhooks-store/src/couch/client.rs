//! The HTTP side every other file uses: one couch_rs client, database names, and CouchDB's
//! answers folded into [`StoreError`].
//!
//! couch_rs percent-encodes the names it builds itself (`Client::db`), but it prepends its
//! prefix unencoded and offers no call for `_changes` as one page, `_local` documents or
//! attachments. So this file builds every database path itself ([`Couch::db_path`]: the prefix
//! plus the name with `/` spelt `%2F`, as KAZOO's `account%2Fxx%2Fyy%2Frest`) and hands it to
//! couch_rs's `Database` for documents, views and bulk writes, or to `Client::req` (the same
//! pooled reqwest client, with the credentials) for the rest.

use std::time::Duration;

use couch_rs::database::Database;
use couch_rs::error::CouchError;
use couch_rs::types::query::QueryParams;
use serde_json::{json, Value};
use webhooks_core::store::StoreError;
use webhooks_core::Doc;

use super::config::CouchConfig;

/// How long one request may take, connection included. A CouchDB that stopped answering must
/// turn into a [`StoreError::Backend`] (crossbar's 503), not a request that hangs.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A view row: its key, the document id, and the document when asked for.
pub(super) struct Row {
    pub key: Value,
    pub id: String,
    pub value: Value,
    pub doc: Option<Doc>,
}

#[derive(Clone)]
pub(super) struct Couch {
    client: couch_rs::Client,
    prefix: String,
}

impl Couch {
    pub fn new(config: &CouchConfig) -> Result<Couch, StoreError> {
        let (root, username, password) = config.split_credentials()?;
        let client = couch_rs::Client::new_with_timeout(
            &root,
            username.as_deref(),
            password.as_deref(),
            Some(REQUEST_TIMEOUT.as_secs()),
        )
        .map_err(fault)?;
        Ok(Couch {
            client,
            prefix: config.prefix.clone(),
        })
    }

    /// The URL path of database `name` (KAZOO's name, unencoded): prefix and encoded name.
    pub fn db_path(&self, name: &str) -> String {
        let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
        format!("{}{encoded}", self.prefix)
    }

    pub fn db(&self, name: &str) -> Database {
        Database::new(self.db_path(name), self.client.clone())
    }

    /// A request to `path` under the server root (a database path and what follows it).
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.req(method, path, None)
    }

    /// Sends a request and reads its JSON answer, whatever the status.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Result<(u16, Value), StoreError> {
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(unreachable)?;
        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// Creates a database; `true` when it was created, `false` when it existed.
    pub async fn create_db(&self, name: &str) -> Result<bool, StoreError> {
        let path = self.db_path(name);
        match self.send(self.req(reqwest::Method::PUT, &path)).await? {
            (201 | 202, _) => Ok(true),
            (412, _) => Ok(false),
            (status, body) => Err(answer(status, &body, &path)),
        }
    }

    /// Deletes a database; `false` when there was none.
    pub async fn delete_db(&self, name: &str) -> Result<bool, StoreError> {
        let path = self.db_path(name);
        match self.send(self.req(reqwest::Method::DELETE, &path)).await? {
            (200 | 202, _) => Ok(true),
            (404, _) => Ok(false),
            (status, body) => Err(answer(status, &body, &path)),
        }
    }

    /// A document, `None` when it (or its database) does not exist.
    pub async fn get(&self, db: &str, id: &str) -> Result<Option<Doc>, StoreError> {
        match self.db(db).get::<Value>(id).await {
            Ok(v) => Ok(Doc::from_value(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(fault(e)),
        }
    }

    /// A document at a raw path inside `db` (`_design/x`, `_local/x`), which couch_rs would
    /// encode into one segment.
    pub async fn get_raw(&self, db: &str, path: &str) -> Result<Option<Doc>, StoreError> {
        let full = format!("{}/{path}", self.db_path(db));
        match self.send(self.req(reqwest::Method::GET, &full)).await? {
            (200, body) => Ok(Doc::from_value(body)),
            (404, _) => Ok(None),
            (status, body) => Err(answer(status, &body, &full)),
        }
    }

    /// Writes a raw-path document (design and `_local` documents); returns its new `_rev`.
    pub async fn put_raw(&self, db: &str, path: &str, doc: &Doc) -> Result<String, StoreError> {
        let full = format!("{}/{path}", self.db_path(db));
        let req = self.req(reqwest::Method::PUT, &full).json(doc);
        match self.send(req).await? {
            (201 | 202, body) => Ok(body["rev"].as_str().unwrap_or_default().to_owned()),
            (status, body) => Err(answer(status, &body, &full)),
        }
    }

    /// Creates or updates a document under CouchDB's revision rule; returns it with its
    /// `_id` and new `_rev`.
    pub async fn save(&self, db: &str, doc: Doc) -> Result<Doc, StoreError> {
        let mut value = doc.into_value();
        self.db(db).save(&mut value).await.map_err(fault)?;
        Ok(Doc::from_value(value).expect("saved from an object"))
    }

    /// Writes documents in one `_bulk_docs` request; the first refusal is the error.
    pub async fn bulk(&self, db: &str, docs: Vec<Value>) -> Result<(), StoreError> {
        self.bulk_docs(db, docs, false).await
    }

    /// Writes new documents, each under an id given once: a document whose id is taken
    /// (a conflict) was written by an earlier try of the same batch and counts as written.
    pub async fn bulk_once(&self, db: &str, docs: Vec<Value>) -> Result<(), StoreError> {
        self.bulk_docs(db, docs, true).await
    }

    async fn bulk_docs(
        &self,
        db: &str,
        mut docs: Vec<Value>,
        conflict_is_written: bool,
    ) -> Result<(), StoreError> {
        if docs.is_empty() {
            return Ok(());
        }
        let results = self.db(db).bulk_docs(&mut docs).await.map_err(fault)?;
        results
            .into_iter()
            .try_for_each(|r| match r.map_err(fault) {
                Err(StoreError::Conflict) if conflict_is_written => Ok(()),
                r => r.map(drop),
            })
    }

    /// Rows of a view, JSON query parameters as CouchDB names them (`startkey`, `limit`...).
    pub async fn view(
        &self,
        db: &str,
        design: &str,
        view: &str,
        params: QueryParams<Value>,
    ) -> Result<Vec<Row>, StoreError> {
        let rows = self
            .db(db)
            .query_raw(design, view, Some(params))
            .await
            .map_err(fault)?
            .rows;
        Ok(rows
            .into_iter()
            .map(|r| Row {
                key: r.key,
                id: r.id.unwrap_or_default(),
                value: r.value,
                doc: r.doc.and_then(Doc::from_value),
            })
            .collect())
    }

    /// Rows of a view, or `None` when the database does not exist.
    pub async fn view_if_db(
        &self,
        db: &str,
        design: &str,
        view: &str,
        params: QueryParams<Value>,
    ) -> Result<Option<Vec<Row>>, StoreError> {
        match self.view(db, design, view, params).await {
            Err(StoreError::NotFound) => Ok(None),
            other => other.map(Some),
        }
    }

    /// How many documents (design documents included) a database holds; `None` without it.
    pub async fn doc_count(&self, db: &str) -> Result<Option<u64>, StoreError> {
        let path = self.db_path(db);
        match self.send(self.req(reqwest::Method::GET, &path)).await? {
            (200, body) => Ok(Some(body["doc_count"].as_u64().unwrap_or(u64::MAX))),
            (404, _) => Ok(None),
            (status, body) => Err(answer(status, &body, &path)),
        }
    }

    /// `_all_docs` rows (no documents) between two ids, both inclusive.
    pub async fn all_ids(&self, db: &str, from: &str, to: &str) -> Result<Vec<Row>, StoreError> {
        let path = format!("{}/_all_docs", self.db_path(db));
        let body = json!({"startkey": from, "endkey": to});
        match self
            .send(self.req(reqwest::Method::POST, &path).json(&body))
            .await?
        {
            (200, body) => Ok(rows(&body)),
            (404, _) => Ok(Vec::new()),
            (status, body) => Err(answer(status, &body, &path)),
        }
    }
}

/// The rows of a `_all_docs` answer, with `value.rev` as the value.
fn rows(body: &Value) -> Vec<Row> {
    body["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| Row {
            key: r["key"].clone(),
            id: r["id"].as_str().unwrap_or_default().to_owned(),
            value: r["value"]["rev"].clone(),
            doc: None,
        })
        .collect()
}

/// The document with a string `_id`, a new 32-hex one when it had none.
pub(super) fn with_id(mut doc: Doc) -> Result<Doc, StoreError> {
    match doc.get("_id") {
        None => doc.set("_id", webhooks_core::ids::new_doc_id()),
        Some(Value::String(id)) if !id.is_empty() => {}
        Some(other) => {
            return Err(StoreError::Backend(format!(
                "unusable document _id {other}"
            )));
        }
    }
    Ok(doc)
}

/// A tombstone for `id` at `rev` that keeps the owner, so the change feed can name it.
pub(super) fn tombstone(id: &str, rev: &str, account: Option<&str>) -> Value {
    let mut doc = json!({"_id": id, "_rev": rev, "_deleted": true, "pvt_deleted": true});
    if let Some(account) = account {
        doc["pvt_account_id"] = account.into();
    }
    doc
}

/// A couch_rs error as the store reports it: 409 is a conflict, 404 a miss (callers turn it
/// into `None` where the contract says so), anything else (refused connection, timeout, 5xx)
/// a backend fault.
pub(super) fn fault(e: CouchError) -> StoreError {
    match e.status().map(|s| s.as_u16()) {
        Some(409) => StoreError::Conflict,
        Some(404) => StoreError::NotFound,
        _ => StoreError::Backend(format!("couchdb: {e}")),
    }
}

/// A status CouchDB answered that the caller did not expect.
pub(super) fn answer(status: u16, body: &Value, path: &str) -> StoreError {
    match status {
        409 => StoreError::Conflict,
        404 => StoreError::NotFound,
        _ => StoreError::Backend(format!("couchdb answered {status} for {path}: {body}")),
    }
}

fn unreachable(e: reqwest::Error) -> StoreError {
    StoreError::Backend(format!("couchdb unreachable: {e}"))
}
