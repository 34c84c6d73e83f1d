//! KAZOO's migration of legacy hooks (spec §10.4), run when hooks are loaded.
//!
//! Old KAZOO had hook types `callflow`, `inbound_fax` and `outbound_fax`; today they are
//! `notifications` hooks filtered by type. KAZOO's migration writes the type to a top-level
//! `type` field, which the notifications filter never reads, so migrated hooks fire on every
//! notification of the account (bug §16.18). We write `custom_data.type`, where the filter
//! looks. A fax hook becomes two, as in KAZOO: one for the success notification and one for its
//! `_error` twin, each naming the other in `other_id`.
//!
//! `callflow` maps to the `webhook` notification, the one the callflow `webhook` action
//! publishes (KAZOO writes `type: "callflow"`, a name no notification has).

use serde_json::{Map, Value};

use crate::doc::Doc;

/// The legacy hook names.
pub const LEGACY_HOOKS: &[&str] = &["callflow", "inbound_fax", "outbound_fax"];

/// Is this document a legacy hook that needs migrating?
pub fn is_legacy(doc: &Doc) -> bool {
    doc.str("hook").is_some_and(|h| LEGACY_HOOKS.contains(&h))
}

fn with_type(doc: &Doc, notification: &str) -> Doc {
    let mut d = doc.clone();
    d.set("hook", "notifications");
    let mut cd: Map<String, Value> = d
        .get("custom_data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    cd.insert("type".into(), Value::String(notification.into()));
    d.set("custom_data", Value::Object(cd));
    d
}

/// The migrated document (same id and revision, to be saved over the old one) and, for fax
/// hooks, the new `_error` twin (a new document with `new_id`). `None` if not legacy.
pub fn migrate(doc: &Doc, new_id: impl FnOnce() -> String) -> Option<(Doc, Option<Doc>)> {
    let hook = doc.str("hook")?;
    match hook {
        "callflow" => Some((with_type(doc, "webhook"), None)),
        "inbound_fax" | "outbound_fax" => {
            let twin_id = new_id();
            let original_id = doc.id()?.to_owned();
            let mut main = with_type(doc, hook);
            main.set("other_id", twin_id.as_str());
            let mut twin = with_type(doc, &format!("{hook}_error"));
            twin.remove("_rev");
            twin.set("_id", twin_id.as_str());
            twin.set("other_id", original_id.as_str());
            Some((main, Some(twin)))
        }
        _ => None,
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
    fn callflow_becomes_the_webhook_notification() {
        let d = doc(
            json!({"_id":"a","_rev":"1-x","hook":"callflow","uri":"http://x/","custom_data":{"k":"v"}}),
        );
        let (m, twin) = migrate(&d, || unreachable!()).unwrap();
        assert!(twin.is_none());
        assert_eq!(m.str("hook"), Some("notifications"));
        assert_eq!(
            m.get("custom_data"),
            Some(&json!({"k":"v","type":"webhook"}))
        );
        assert_eq!(m.rev(), Some("1-x"), "saved over the old revision");
        assert!(m.get("type").is_none(), "not KAZOO's top-level type");
    }

    #[test]
    fn fax_hooks_split_into_success_and_error_twins() {
        let d = doc(
            json!({"_id":"a","_rev":"1-x","hook":"inbound_fax","uri":"http://x/","pvt_account_id":"acc"}),
        );
        let (m, twin) = migrate(&d, || "b".into()).unwrap();
        let twin = twin.unwrap();
        assert_eq!(m.get("custom_data"), Some(&json!({"type":"inbound_fax"})));
        assert_eq!(m.str("other_id"), Some("b"));
        assert_eq!(twin.id(), Some("b"));
        assert_eq!(twin.rev(), None);
        assert_eq!(
            twin.get("custom_data"),
            Some(&json!({"type":"inbound_fax_error"}))
        );
        assert_eq!(twin.str("other_id"), Some("a"));
        assert_eq!(twin.str("pvt_account_id"), Some("acc"));
        assert!(!is_legacy(&m) && !is_legacy(&twin) && is_legacy(&d));
    }
}
