//! Hook definitions: the `webhook_meta` documents KAZOO keeps in the master account's database,
//! one per hook module (spec §2.4, §11), and the rule that writes them at start.
//!
//! The engine's own API lists hook types from the [`ModuleRegistry`] in code; these documents
//! are for whoever reads CouchDB instead (KAZOO's crossbar and Monster UI in a shared cluster)
//! and for KAZOO's maintenance commands. [`init`] is what each KAZOO module's `init/0` does,
//! for every registered module: write the module's [`definition`] when it is missing, leave it
//! when its public fields are already the same, else save the [`merge`] of the stored document
//! and the new one, so keys the module no longer has (a removed notification type) survive
//! until a reset deletes the document. Several nodes may start at once: a save that loses the
//! race is another node's write of the same document, and is left to it.

use serde_json::{Map, Value};

use crate::doc::Doc;
use crate::ids::AccountId;
use crate::module::ModuleMetadata;
use crate::registry::ModuleRegistry;
use crate::store::{DefinitionStore, StoreError, StoreResult, DEFINITION_PREFIX};

/// The `pvt_type` of a hook definition.
pub const DEFINITION_TYPE: &str = "webhook_meta";

/// KAZOO's example module: its definition is never written.
const SKEL: &str = "skel";

/// Definitions of hook types KAZOO has since folded into `notifications`; KAZOO deletes them at
/// start (spec §10.4), unless a registered module still has that name.
const LEGACY: [&str; 3] = ["callflow", "inbound_fax", "outbound_fax"];

/// The definition id of a module: `webhooks_<module>`.
pub fn definition_id(module: &str) -> String {
    format!("{DEFINITION_PREFIX}{module}")
}

/// The module a definition id or a module name names: `webhooks_parking` and `parking` are
/// both `parking` (KAZOO's maintenance commands take either).
pub fn module_name(arg: &str) -> &str {
    arg.strip_prefix(DEFINITION_PREFIX).unwrap_or(arg)
}

/// A module's definition as KAZOO's `init/0` builds it: `_id`, `pvt_type`, and the public
/// fields `name`, `description` and, when the module has them, `modifiers`. No `_rev` and no
/// timestamps: [`init_one`] adds what a save needs.
pub fn definition(metadata: &ModuleMetadata) -> Doc {
    let mut doc = Doc::new();
    doc.set("_id", definition_id(&metadata.id));
    doc.set("name", metadata.name.as_str());
    doc.set("description", metadata.description.as_str());
    if let Some(modifiers) = &metadata.modifiers {
        doc.set("modifiers", Value::Object(modifiers.clone()));
    }
    doc.set("pvt_type", DEFINITION_TYPE);
    doc
}

/// KAZOO's recursive merge (`kz_json:merge/2`): every key of `new` over `stored`; where both
/// hold an object the two are merged the same way, otherwise `new`'s value wins (arrays are
/// values, replaced whole). Keys only `stored` has are kept.
pub fn merge(stored: &Map<String, Value>, new: &Map<String, Value>) -> Map<String, Value> {
    let mut out = stored.clone();
    for (key, value) in new {
        let merged = match (out.get(key), value) {
            (Some(Value::Object(old)), Value::Object(value)) => Value::Object(merge(old, value)),
            _ => value.clone(),
        };
        out.insert(key.clone(), merged);
    }
    out
}

/// What [`init_one`] did with a module's definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// There was none; it was saved.
    Created,
    /// The stored one differed; the merge of it and the module's was saved.
    Merged,
    /// The stored one already said what the module says; nothing was written.
    Unchanged,
    /// Another writer saved it between the read and the write (another node starting): left
    /// as that writer made it.
    Raced,
}

impl Written {
    /// Whether this call saved the document.
    pub fn saved(self) -> bool {
        matches!(self, Written::Created | Written::Merged)
    }
}

/// Writes every registered module's definition by KAZOO's rule (see the module docs) and
/// deletes the legacy definitions KAZOO deletes at start (`webhooks_callflow`,
/// `webhooks_inbound_fax`, `webhooks_outbound_fax`) unless a registered module has that name.
/// Returns the ids this call saved, in registration order (not those left unchanged, nor those
/// another node saved first).
///
/// The daemon calls it once at start, after the master account exists; without one the store
/// answers [`StoreError::Backend`] (KAZOO logs "master account not available" and goes on,
/// which a caller may do too: nothing else depends on these documents). The first store error
/// ends the call; definitions already written stay written, and calling again is safe.
pub async fn init(
    store: &(impl DefinitionStore + ?Sized),
    registry: &ModuleRegistry,
) -> StoreResult<Vec<String>> {
    for legacy in LEGACY {
        if registry.is_available(legacy) {
            continue;
        }
        match store.delete_definition(&definition_id(legacy)).await {
            Ok(()) | Err(StoreError::NotFound) | Err(StoreError::Conflict) => {}
            Err(e) => return Err(e),
        }
    }
    let mut written = Vec::new();
    for metadata in registry.catalogue() {
        if let Some(outcome) = init_one(store, registry, &metadata.id).await? {
            if outcome.saved() {
                written.push(definition_id(&metadata.id));
            }
        }
    }
    Ok(written)
}

/// Writes one module's definition by KAZOO's rule. `module` is the module's id, with or without
/// the `webhooks_` prefix. `None` when the registry has no such module (or it is KAZOO's
/// example module, `skel`, whose definition is never written): nothing is written.
pub async fn init_one(
    store: &(impl DefinitionStore + ?Sized),
    registry: &ModuleRegistry,
    module: &str,
) -> StoreResult<Option<Written>> {
    let module = module_name(module);
    let Some(metadata) = registry.metadata(module).filter(|_| module != SKEL) else {
        return Ok(None);
    };
    let new = definition(metadata);
    let now = crate::time::now_gregorian();
    let (mut doc, outcome) = match store.definition(&definition_id(module)).await? {
        None => {
            let mut doc = new;
            doc.set("pvt_created", now);
            (doc, Written::Created)
        }
        Some(stored) => {
            if stored.public() == new.public() {
                return Ok(Some(Written::Unchanged));
            }
            let merged = Doc(merge(&stored.0, &new.0));
            // A stored definition holding keys the module dropped differs from the module's
            // forever, and merging changes nothing: KAZOO saves it again at every start, which
            // only bumps the revision (and races other nodes); this leaves it.
            if merged.public() == stored.public() && stored.pvt_type() == Some(DEFINITION_TYPE) {
                return Ok(Some(Written::Unchanged));
            }
            (merged, Written::Merged)
        }
    };
    doc.set("pvt_modified", now);
    match store.save_definition(doc).await {
        Ok(_) => Ok(Some(outcome)),
        Err(StoreError::Conflict) => Ok(Some(Written::Raced)),
        Err(e) => Err(e),
    }
}

/// The master account `system_config/accounts` names (`master_account_id`): where a store keeps
/// definitions. A store reads the config document and hands it here, so every store words a
/// missing master account the same way.
pub fn master_account(accounts_config: Option<&Doc>) -> StoreResult<AccountId> {
    let named = accounts_config.and_then(|doc| doc.str("master_account_id"));
    let Some(named) = named else {
        return Err(StoreError::Backend(
            "no master account: system_config/accounts has no master_account_id \
             (hook definitions live in the master account)"
                .into(),
        ));
    };
    AccountId::parse(named).map_err(|_| {
        StoreError::Backend(format!(
            "no master account: system_config/accounts names {named:?}, not an account id"
        ))
    })
}

/// The error of a store whose configured master account has no account document.
pub fn missing_master(master: &AccountId) -> StoreError {
    StoreError::Backend(format!(
        "no master account: {master}, named by system_config/accounts, does not exist"
    ))
}

/// Checks a definition's `_id` and names the master account in it, as every store saves it:
/// `pvt_account_id`, and `pvt_account_db` spelt as KAZOO writes database names (`%2F`).
pub fn place(mut doc: Doc, master: &AccountId) -> StoreResult<Doc> {
    match doc.id() {
        Some(id) if is_definition_id(id) => {}
        _ => {
            return Err(StoreError::Backend(format!(
                "a hook definition's _id must be a string {DEFINITION_PREFIX}<module>, got {}",
                doc.get("_id").map_or("none".to_owned(), Value::to_string)
            )));
        }
    }
    doc.set("pvt_account_id", master.as_str());
    doc.set("pvt_account_db", master.db_name().replace('/', "%2F"));
    Ok(doc)
}

/// Whether `id` may name a definition (the only ids the store calls read or delete).
pub fn is_definition_id(id: &str) -> bool {
    id.starts_with(DEFINITION_PREFIX) && id.len() > DEFINITION_PREFIX.len()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::future::Future;
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::test_modules::StandIn;

    /// Runs a future that never waits: the fake store below answers at once.
    fn now<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => panic!("the fake store never waits"),
        }
    }

    /// Definitions in memory under the revision rule, counting saves; `race` makes the next
    /// save lose to another writer.
    #[derive(Default)]
    struct Fake {
        docs: Mutex<BTreeMap<String, Doc>>,
        saves: Mutex<usize>,
        race: Mutex<bool>,
    }

    impl Fake {
        fn put(&self, v: Value) {
            let doc = Doc::from_value(v).unwrap();
            let id = doc.id().unwrap().to_owned();
            self.docs.lock().unwrap().insert(id, doc);
        }
        fn get(&self, id: &str) -> Option<Doc> {
            self.docs.lock().unwrap().get(id).cloned()
        }
        fn saves(&self) -> usize {
            *self.saves.lock().unwrap()
        }
    }

    #[async_trait::async_trait]
    impl DefinitionStore for Fake {
        async fn definitions(&self) -> StoreResult<Vec<Doc>> {
            Ok(self.docs.lock().unwrap().values().cloned().collect())
        }
        async fn definition(&self, id: &str) -> StoreResult<Option<Doc>> {
            Ok(self.get(id))
        }
        async fn save_definition(&self, doc: Doc) -> StoreResult<Doc> {
            if std::mem::take(&mut *self.race.lock().unwrap()) {
                return Err(StoreError::Conflict);
            }
            let master = AccountId::from_bytes([1; 16]);
            let mut doc = place(doc, &master)?;
            let id = doc.id().unwrap().to_owned();
            let mut docs = self.docs.lock().unwrap();
            let stored = docs.get(&id).and_then(|d| d.rev().map(str::to_owned));
            if stored.as_deref() != doc.rev() {
                return Err(StoreError::Conflict);
            }
            let generation = stored.map_or(0, |r| r[..r.find('-').unwrap()].parse().unwrap());
            doc.set("_rev", format!("{}-x", generation + 1));
            docs.insert(id, doc.clone());
            *self.saves.lock().unwrap() += 1;
            Ok(doc)
        }
        async fn delete_definition(&self, id: &str) -> StoreResult<()> {
            match self.docs.lock().unwrap().remove(id) {
                Some(_) => Ok(()),
                None => Err(StoreError::NotFound),
            }
        }
    }

    fn module(id: &'static str, modifiers: Option<Value>) -> StandIn {
        StandIn {
            modifiers,
            ..StandIn::named(id)
        }
    }

    fn registry() -> ModuleRegistry {
        ModuleRegistry::new()
            .register(module("parking", None))
            .register(module(
                "notifications",
                Some(
                    json!({"type": {"type": "object", "items": {"all": {"friendly_name": "All"}}}}),
                ),
            ))
    }

    #[test]
    fn a_definition_is_kazoos_webhook_meta_document() {
        let metadata = ModuleMetadata {
            id: "object".into(),
            name: "Object".into(),
            description: "Objects change".into(),
            modifiers: json!({"action": {"type": "array"}}).as_object().cloned(),
        };
        assert_eq!(
            definition(&metadata).into_value(),
            json!({"_id": "webhooks_object", "name": "Object", "description": "Objects change",
                   "modifiers": {"action": {"type": "array"}}, "pvt_type": "webhook_meta"})
        );
        let plain = ModuleMetadata {
            modifiers: None,
            ..metadata
        };
        assert!(definition(&plain).get("modifiers").is_none());
        // The catalogue's `id` is the API's, made from the document id; it is not stored.
        assert!(definition(&plain).get("id").is_none());
    }

    #[test]
    fn merge_is_recursive_and_the_new_side_wins() {
        let stored =
            json!({"a": 1, "gone": true, "m": {"x": 1, "old": 2, "arr": [1, 2]}, "s": {"k": 1}});
        let new = json!({"a": 2, "m": {"x": 9, "arr": [3]}, "s": "flat", "n": 1});
        let merged = merge(stored.as_object().unwrap(), new.as_object().unwrap());
        assert_eq!(
            Value::Object(merged),
            json!({"a": 2, "gone": true, "m": {"x": 9, "old": 2, "arr": [3]}, "s": "flat", "n": 1})
        );
    }

    #[test]
    fn module_names_are_taken_with_or_without_the_prefix() {
        assert_eq!(module_name("webhooks_parking"), "parking");
        assert_eq!(module_name("parking"), "parking");
        assert_eq!(definition_id("parking"), "webhooks_parking");
        assert!(is_definition_id("webhooks_parking"));
        assert!(!is_definition_id("webhooks_"));
        assert!(!is_definition_id("configs_webhooks"));
    }

    #[test]
    fn init_writes_missing_definitions_once() {
        let store = Fake::default();
        let written = now(init(&store, &registry())).unwrap();
        assert_eq!(written, ["webhooks_parking", "webhooks_notifications"]);
        let parking = store.get("webhooks_parking").unwrap();
        assert_eq!(parking.pvt_type(), Some("webhook_meta"));
        assert_eq!(parking.str("name"), Some("parking"));
        assert!(parking.i64("pvt_created").is_some() && parking.i64("pvt_modified").is_some());
        assert_eq!(
            parking.account_id(),
            Some(AccountId::from_bytes([1; 16]).as_str())
        );

        // A second start finds them equal and writes nothing.
        assert_eq!(
            now(init(&store, &registry())).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(store.saves(), 2);
    }

    #[test]
    fn a_changed_module_is_merged_into_its_stored_definition_keeping_stale_keys() {
        let store = Fake::default();
        store.put(json!({
            "_id": "webhooks_notifications", "_rev": "3-a", "pvt_type": "webhook_meta",
            "pvt_created": 7, "name": "Old name", "ui": "kept",
            "modifiers": {"type": {"type": "object", "items": {"removed_type": {"friendly_name": "R"}}}},
        }));
        let written = now(init_one(&store, &registry(), "webhooks_notifications")).unwrap();
        assert_eq!(written, Some(Written::Merged));
        let doc = store.get("webhooks_notifications").unwrap();
        assert_eq!(doc.rev(), Some("4-x"));
        assert_eq!(doc.str("name"), Some("notifications"));
        assert_eq!(doc.str("ui"), Some("kept"));
        assert_eq!(doc.i64("pvt_created"), Some(7));
        assert_eq!(
            doc.get("modifiers").unwrap()["type"]["items"],
            json!({"removed_type": {"friendly_name": "R"}, "all": {"friendly_name": "All"}})
        );

        // The stale keys keep it different from the module's, but merging again changes
        // nothing: it is not saved again.
        let again = now(init_one(&store, &registry(), "notifications")).unwrap();
        assert_eq!(again, Some(Written::Unchanged));
        assert_eq!(store.saves(), 1);
    }

    #[test]
    fn equal_public_fields_are_left_alone_whatever_the_private_ones() {
        let store = Fake::default();
        store.put(
            json!({"_id": "webhooks_parking", "_rev": "1-a", "pvt_type": "webhook_meta",
                         "pvt_account_id": "elsewhere", "name": "parking", "description": ""}),
        );
        assert_eq!(
            now(init_one(&store, &registry(), "parking")).unwrap(),
            Some(Written::Unchanged)
        );
        assert_eq!(store.get("webhooks_parking").unwrap().rev(), Some("1-a"));
    }

    #[test]
    fn losing_the_race_to_another_node_is_not_an_error() {
        let store = Fake::default();
        *store.race.lock().unwrap() = true;
        assert_eq!(
            now(init_one(&store, &registry(), "parking")).unwrap(),
            Some(Written::Raced)
        );
        // init leaves the raced one out of what it wrote and goes on with the rest.
        let store = Fake::default();
        *store.race.lock().unwrap() = true;
        assert_eq!(
            now(init(&store, &registry())).unwrap(),
            ["webhooks_notifications"]
        );
    }

    #[test]
    fn unknown_modules_and_skel_are_never_written() {
        let store = Fake::default();
        let registry = registry().register(module("skel", None));
        assert_eq!(now(init_one(&store, &registry, "nope")).unwrap(), None);
        assert_eq!(
            now(init_one(&store, &registry, "webhooks_skel")).unwrap(),
            None
        );
        let written = now(init(&store, &registry)).unwrap();
        assert!(
            !written.contains(&"webhooks_skel".to_owned()),
            "{written:?}"
        );
        assert!(store.get("webhooks_skel").is_none());
    }

    #[test]
    fn init_deletes_kazoos_legacy_definitions() {
        let store = Fake::default();
        for legacy in ["webhooks_callflow", "webhooks_inbound_fax"] {
            store.put(json!({"_id": legacy, "_rev": "1-a", "name": legacy}));
        }
        store.put(json!({"_id": "webhooks_custom", "_rev": "1-a", "name": "custom"}));
        now(init(&store, &registry())).unwrap();
        assert!(store.get("webhooks_callflow").is_none());
        assert!(store.get("webhooks_inbound_fax").is_none());
        // Other unknown definitions wait for a reset.
        assert!(store.get("webhooks_custom").is_some());
        // A registered module of a legacy name keeps its definition.
        let registry = registry().register(module("callflow", None));
        now(init(&store, &registry)).unwrap();
        assert!(store.get("webhooks_callflow").is_some());
    }

    #[test]
    fn place_names_the_master_and_refuses_other_ids() {
        let master = AccountId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let doc = Doc::from_value(json!({"_id": "webhooks_sms", "name": "SMS"})).unwrap();
        let placed = place(doc, &master).unwrap();
        assert_eq!(placed.account_id(), Some(master.as_str()));
        assert_eq!(
            placed.str("pvt_account_db"),
            Some("account%2F01%2F23%2F456789abcdef0123456789abcdef")
        );
        for id in [json!("configs_webhooks"), json!("webhooks_"), json!(7)] {
            let doc = Doc::from_value(json!({"_id": id})).unwrap();
            assert!(matches!(place(doc, &master), Err(StoreError::Backend(_))));
        }
        assert!(matches!(
            place(Doc::new(), &master),
            Err(StoreError::Backend(_))
        ));
    }

    /// The daemon runs it on a spawned task, through `&dyn Store`.
    #[test]
    fn init_is_send_behind_a_trait_object() {
        fn send<T: Send>(_: &T) {}
        let store = Fake::default();
        let store: &dyn DefinitionStore = &store;
        let registry = registry();
        send(&init(store, &registry));
    }

    #[test]
    fn a_missing_master_account_is_named_in_the_error() {
        let e = master_account(None).unwrap_err();
        assert!(e.to_string().contains("master_account_id"), "{e}");
        let bad = Doc::from_value(json!({"master_account_id": "nope"})).unwrap();
        assert!(master_account(Some(&bad))
            .unwrap_err()
            .to_string()
            .contains("nope"));
        let good =
            Doc::from_value(json!({"master_account_id": "0123456789abcdef0123456789abcdef"}))
                .unwrap();
        assert_eq!(
            master_account(Some(&good)).unwrap().as_str(),
            "0123456789abcdef0123456789abcdef"
        );
    }
}
