//! KAZOO's `webhooks_object` (spec §5.3): a document was created, edited or deleted in one of
//! an account's databases. Hooks choose an object type and an action through `custom_data`
//! (`{"type": "user", "action": "doc_edited"}`, either may be `all`).
//!
//! The events are the datastore's change notices on the `configuration` exchange. They carry no
//! document body, so the payload is just what changed: `{id, account_id, action, type}`.

use std::sync::Arc;

use serde_json::{Map, Value};
use webhooks_core::config::DEFAULT_OBJECT_TYPES;
use webhooks_core::event::EventError;
use webhooks_core::ids::is_hex32;
use webhooks_core::{
    AccountId, Binding, Dispatch, Event, Hook, HookFinder, ModuleMetadata, WebhookModule,
};

use crate::kz_json::{ne_text, put, sample_events};

/// The hook name, and what `find` is asked for.
const HOOK: &str = "object";

/// The actions a hook may select, after `all` (`?DOC_ACTIONS`).
const ACTIONS: &[&str] = &["doc_created", "doc_edited", "doc_deleted"];

/// Crossbar's bulk re-enable request travels on the same exchange and reaches this module's `#`
/// binding; it is not a document change.
const REENABLE_REQUEST: &str = "doc_type_update";

/// Sample change notices, one per sample in KAZOO's `webhooks_object-samples.json`.
const SAMPLE_EVENTS: &str = include_str!("samples/object.json");

/// The `object` hook. It owns the object types offered in its catalogue entry
/// (`system_config/webhooks.object_types`); they shape crossbar's validation of
/// `custom_data.type`, not which changes fire (an `all` hook sees every type, §16.19).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    object_types: Vec<String>,
}

impl Object {
    /// An object module whose catalogue entry offers `object_types` (after `all`).
    pub fn new(object_types: Vec<String>) -> Self {
        Object { object_types }
    }

    /// The payload: `{id, account_id, action, type}`.
    fn payload(event: &Event, id: &str, account: &AccountId, action: &str) -> Map<String, Value> {
        let mut p = Map::new();
        p.insert("id".into(), id.into());
        p.insert("account_id".into(), account.as_str().into());
        p.insert("action".into(), action.into());
        put(&mut p, "type", ne_text(event.get("Type")));
        p
    }

    /// What a change notice says: (id, account, action), or `None` for a change that belongs
    /// to no account.
    fn parse(event: &Event) -> Result<Option<(String, AccountId, String)>, EventError> {
        let id = event.required_str("ID")?;
        let database = event.required_str("Database")?;
        let action = event.required_str("Event-Name")?;
        Ok(account_of(database, id).map(|a| (id.to_owned(), a, action.to_owned())))
    }
}

impl Default for Object {
    /// KAZOO's default object types.
    fn default() -> Self {
        Object::new(DEFAULT_OBJECT_TYPES.iter().map(|t| t.to_string()).collect())
    }
}

/// A modifier as KAZOO writes it: `{"type": "array", "description": .., "items": ["all", ..]}`.
fn array_modifier<'a>(description: &str, items: impl Iterator<Item = &'a str>) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), "array".into());
    m.insert("description".into(), description.into());
    m.insert(
        "items".into(),
        Value::Array(
            std::iter::once("all")
                .chain(items)
                .map(Value::from)
                .collect(),
        ),
    );
    Value::Object(m)
}

/// The account whose database changed: the account (or monthly) database's name, or, for the
/// `accounts` database, the changed account document itself. Changes anywhere else (system
/// databases, `webhooks`, number databases) belong to no account and fire nothing.
fn account_of(database: &str, id: &str) -> Option<AccountId> {
    if database == "accounts" {
        return AccountId::parse(id).ok();
    }
    let raw = account_db_id(database)?;
    AccountId::parse(&raw).ok()
}

/// The account id in an account or MODB database name, in any of KAZOO's spellings:
/// `account/xx/yy/rest`, `account%2Fxx%2Fyy%2Frest`, `account%2fxx%2fyy%2frest`, the bare
/// 32-character id, each optionally followed by the `-YYYYMM` month suffix (`kzs_util`'s
/// `account` and `modb` classifications).
fn account_db_id(database: &str) -> Option<String> {
    let unsuffixed = strip_month(database).unwrap_or(database);
    let joined = ["account/", "account%2F", "account%2f"]
        .iter()
        .find_map(|prefix| {
            let sep = &prefix[7..];
            let rest = unsuffixed.strip_prefix(prefix)?;
            let parts: Vec<&str> = rest.split(sep).collect();
            match parts.as_slice() {
                [a, b, c] if a.len() == 2 && b.len() == 2 && c.len() == 28 => {
                    Some(format!("{a}{b}{c}"))
                }
                _ => None,
            }
        })
        .or_else(|| Some(unsuffixed.to_owned()))?;
    is_hex32(&joined).then_some(joined)
}

/// `name-YYYYMM` → `name`; `None` without a month suffix.
fn strip_month(database: &str) -> Option<&str> {
    let (name, suffix) = database.rsplit_once('-')?;
    (suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_digit())).then_some(name)
}

/// KAZOO's `match_action_type`: `all` hooks take every change; an `object` hook without
/// `custom_data` too; otherwise both `custom_data.action` and `custom_data.type` must be present
/// and each equal the change's or `all` (a hook lacking either never fires, §16.15).
fn wants(hook: &Hook, action: &str, doc_type: Option<&str>) -> bool {
    if hook.event != HOOK {
        return true;
    }
    let Some(cd) = &hook.custom_data else {
        return true;
    };
    let (Some(want_action), Some(want_type)) = (ne_text(cd.get("action")), ne_text(cd.get("type")))
    else {
        return false;
    };
    (want_action == "all" || want_action == action)
        && (want_type == "all" || Some(want_type.as_str()) == doc_type)
}

impl WebhookModule for Object {
    /// Modifiers `type` (`all` + the object types) and `action` (`all` + the three actions).
    fn init(&self) -> ModuleMetadata {
        let mut modifiers = Map::new();
        modifiers.insert(
            "type".into(),
            array_modifier(
                "A list of object types to handle",
                self.object_types.iter().map(String::as_str),
            ),
        );
        modifiers.insert(
            "action".into(),
            array_modifier(
                "A list of object actions to handle",
                ACTIONS.iter().copied(),
            ),
        );
        ModuleMetadata {
            id: HOOK.into(),
            name: "Object".into(),
            description:
                "Receive notifications when objects (like JSON document objects) in Kazoo are changed"
                    .into(),
            modifiers: Some(modifiers),
        }
    }

    /// Everything on `configuration` (`#`), answered for (`configuration`, `*`), as in KAZOO.
    fn bindings_and_responders(&self) -> Vec<Binding> {
        vec![Binding::new("configuration", "#", "configuration", "*")]
    }

    /// Validates the notice (`ID`, `Database`), finds the account from the database and fires
    /// the hooks whose type/action filter matches. Database events (`db_created`, ...) pass
    /// through like document events, with type `database`, as in KAZOO (§16.19).
    ///
    /// Crossbar's re-enable request (`doc_type_update`) is not a change notice: KAZOO crashes on
    /// it (§16.27); here it yields nothing, so it is not counted as a malformed event.
    fn handle_event(
        &self,
        event: &Event,
        hooks: &dyn HookFinder,
    ) -> Result<Vec<Dispatch>, EventError> {
        if event.name() == Some(REENABLE_REQUEST) {
            return Ok(Vec::new());
        }
        let Some((id, account, action)) = Self::parse(event)? else {
            return Ok(Vec::new());
        };
        let doc_type = ne_text(event.get("Type"));
        let wanted: Vec<Arc<Hook>> = hooks
            .find(HOOK, &account)
            .into_iter()
            .filter(|h| wants(h, &action, doc_type.as_deref()))
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let payload = Self::payload(event, &id, &account, &action);
        Ok(wanted
            .into_iter()
            .map(|hook| Dispatch {
                hook,
                payload: payload.clone(),
            })
            .collect())
    }

    fn samples(&self) -> Vec<Value> {
        sample_events(SAMPLE_EVENTS)
            .iter()
            .filter_map(|e| {
                let (id, account, action) = Self::parse(e).ok()??;
                Some(Value::Object(Self::payload(e, &id, &account, &action)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "0e10f9365fb2383d0fa65e907bfe4cb3";

    #[test]
    fn account_comes_from_every_account_db_spelling() {
        for db in [
            "account/0e/10/f9365fb2383d0fa65e907bfe4cb3",
            "account%2F0e%2F10%2Ff9365fb2383d0fa65e907bfe4cb3",
            "account%2f0e%2f10%2ff9365fb2383d0fa65e907bfe4cb3",
            "account/0e/10/f9365fb2383d0fa65e907bfe4cb3-202401",
            "account%2F0e%2F10%2Ff9365fb2383d0fa65e907bfe4cb3-201905",
            "0e10f9365fb2383d0fa65e907bfe4cb3",
        ] {
            assert_eq!(
                account_of(db, "doc").map(|a| a.to_string()),
                Some(A.to_owned()),
                "{db}"
            );
        }
    }

    #[test]
    fn accounts_db_uses_the_doc_id_and_other_dbs_have_no_account() {
        assert_eq!(
            account_of("accounts", A).map(|a| a.to_string()),
            Some(A.into())
        );
        assert_eq!(account_of("accounts", "_design/x"), None);
        for db in [
            "webhooks",
            "system_config",
            "numbers%2F%2B1555",
            "account/0e/10/f9365fb2383d0fa65e907bfe4cb3-2024",
            "account/0e/10/f9365fb2383d0fa65e907bfe4cb3-provisioner",
            "account/0e/10/f9365fb2383d0fa65e907bfe4cb",
        ] {
            assert_eq!(account_of(db, A), None, "{db}");
        }
    }

    #[test]
    fn catalogue_modifiers_list_all_first() {
        let meta = Object::new(vec!["user".into(), "device".into()]).init();
        assert_eq!(
            Value::Object(meta.modifiers.unwrap()),
            json!({
                "type": {"type": "array", "description": "A list of object types to handle",
                         "items": ["all", "user", "device"]},
                "action": {"type": "array", "description": "A list of object actions to handle",
                           "items": ["all", "doc_created", "doc_edited", "doc_deleted"]}
            })
        );
    }

    #[test]
    fn reenable_requests_are_not_changes() {
        let e = Event::from_value(json!({"Event-Category": "configuration",
            "Event-Name": "doc_type_update", "Type": "webhook", "Action": "account"}))
        .unwrap();
        struct NoHooks;
        impl HookFinder for NoHooks {
            fn find(&self, _: &str, _: &AccountId) -> Vec<Arc<Hook>> {
                unreachable!("a re-enable request never looks hooks up")
            }
        }
        assert_eq!(Object::default().handle_event(&e, &NoHooks), Ok(vec![]));
    }
}
