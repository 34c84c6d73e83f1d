//! KAZOO-style JSON documents.
//!
//! KAZOO keeps everything as schemaless CouchDB documents: `_id`, `_rev`, public fields chosen by
//! the client (unknown ones included, clients such as Monster UI rely on `ui_metadata` coming
//! back), and private `pvt_*` fields the server owns. [`Doc`] is that object plus the few
//! accessors every layer needs; keeping the whole object (not a typed struct) is what lets unknown
//! fields round-trip untouched and will let a CouchDB adapter store KAZOO's exact layout.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A CouchDB revision (`<generation>-<hash>`), kept small: the generation and a 64-bit digest
/// of the rest. Every save raises the generation by one, so of two revisions of one document
/// the higher generation is the newer; two with the same generation and different digests are
/// siblings of a conflict, neither older.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Revision {
    pub generation: u64,
    digest: u64,
}

impl Revision {
    pub fn parse(rev: &str) -> Option<Revision> {
        use std::hash::BuildHasher;
        let (generation, rest) = rev.split_once('-')?;
        Some(Revision {
            generation: generation.parse().ok()?,
            digest: foldhash::fast::FixedState::with_seed(0).hash_one(rest),
        })
    }

    /// Whether a document at this revision is already reflected by one at `known`: the same
    /// revision, or an older generation.
    pub fn is_superseded_by(&self, known: &Revision) -> bool {
        self.generation < known.generation || self == known
    }
}

/// A JSON document in KAZOO's layout.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Doc(pub Map<String, Value>);

impl Doc {
    pub fn new() -> Self {
        Doc(Map::new())
    }

    /// Wraps a JSON value; anything but an object is refused.
    pub fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Object(m) => Some(Doc(m)),
            _ => None,
        }
    }

    /// What a hard-deleted document leaves in a change feed: its id, its owner (when known)
    /// and `pvt_deleted`, no revision (so a follower always applies it).
    pub fn tombstone(id: &str, account: Option<&str>) -> Self {
        let mut doc = Doc::new();
        doc.set("_id", id);
        if let Some(account) = account {
            doc.set("pvt_account_id", account);
        }
        doc.set("pvt_deleted", true);
        doc
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }

    pub fn id(&self) -> Option<&str> {
        self.str("_id")
    }

    pub fn rev(&self) -> Option<&str> {
        self.str("_rev")
    }

    /// `_rev` read as a [`Revision`]; `None` when missing or not CouchDB-shaped.
    pub fn revision(&self) -> Option<Revision> {
        self.rev().and_then(Revision::parse)
    }

    /// Stamps `pvt_modified` with now, as every server-side edit does.
    pub fn touch(&mut self) {
        self.set("pvt_modified", crate::time::now_gregorian());
    }

    pub fn pvt_type(&self) -> Option<&str> {
        self.str("pvt_type")
    }

    pub fn account_id(&self) -> Option<&str> {
        self.str("pvt_account_id")
    }

    /// Soft-deleted documents (`pvt_deleted: true`) are invisible to the API.
    pub fn is_deleted(&self) -> bool {
        self.0.get("pvt_deleted").and_then(Value::as_bool) == Some(true)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.0.get(key).and_then(Value::as_bool)
    }

    pub fn i64(&self, key: &str) -> Option<i64> {
        self.0.get(key).and_then(Value::as_i64)
    }

    pub fn set(&mut self, key: &str, v: impl Into<Value>) {
        self.0.insert(key.to_owned(), v.into());
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.0.remove(key)
    }

    /// The fields a client owns: everything but `_*` and `pvt_*` keys.
    pub fn public(&self) -> Map<String, Value> {
        self.0
            .iter()
            .filter(|(k, _)| is_public_key(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The fields the server owns: `_*` and `pvt_*` keys.
    pub fn private(&self) -> Map<String, Value> {
        self.0
            .iter()
            .filter(|(k, _)| !is_public_key(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Replaces all public fields with `public`, keeping private fields (crossbar's POST).
    pub fn replace_public(&mut self, public: Map<String, Value>) {
        self.0.retain(|k, _| !is_public_key(k));
        for (k, v) in public {
            if is_public_key(&k) {
                self.0.insert(k, v);
            }
        }
    }

    /// The document as crossbar returns it: public fields plus `id`.
    pub fn to_api(&self) -> Map<String, Value> {
        let mut out = self.public();
        if let Some(id) = self.id() {
            out.insert("id".into(), Value::String(id.to_owned()));
        }
        out
    }
}

/// Private keys start with `_` or `pvt_`; the rest belong to the client.
pub fn is_public_key(k: &str) -> bool {
    !(k.starts_with('_') || k.starts_with("pvt_"))
}

impl From<Map<String, Value>> for Doc {
    fn from(m: Map<String, Value>) -> Self {
        Doc(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Doc {
        Doc::from_value(v).unwrap()
    }

    #[test]
    fn public_and_private_split_on_prefix() {
        let d = doc(
            json!({"_id":"x","_rev":"1-a","pvt_type":"webhook","name":"n","ui_metadata":{"a":1}}),
        );
        assert_eq!(
            d.public(),
            json!({"name":"n","ui_metadata":{"a":1}})
                .as_object()
                .unwrap()
                .clone()
        );
        assert_eq!(d.private().len(), 3);
    }

    #[test]
    fn replace_public_keeps_private_fields() {
        let mut d = doc(json!({"_id":"x","pvt_account_id":"a","name":"old","gone":true}));
        d.replace_public(
            json!({"name":"new","pvt_sneaky":1})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(
            d.into_value(),
            json!({"_id":"x","pvt_account_id":"a","name":"new"})
        );
    }

    #[test]
    fn to_api_adds_id() {
        let d = doc(json!({"_id":"x","pvt_type":"webhook","name":"n"}));
        assert_eq!(Value::Object(d.to_api()), json!({"name":"n","id":"x"}));
    }
}
