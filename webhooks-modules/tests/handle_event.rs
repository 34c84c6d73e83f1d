//! `handle_event` against a fake hook table: which hooks fire, with what payload, and which
//! events are refused.

use std::cell::RefCell;
use std::sync::Arc;

use serde_json::{json, Value};
use webhooks_core::event::EventError;
use webhooks_core::{AccountId, Dispatch, Doc, Event, Hook, HookFinder, WebhookModule};
use webhooks_modules::{
    ChannelBridge, ChannelCreate, ChannelDestroy, Mms, Notifications, Object, Parking, Sms,
};

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const OTHER: &str = "fedcba9876543210fedcba9876543210";
const RESELLER: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// A hook table holding the given hooks. `find` answers like KAZOO's `find_webhooks` for one
/// account without ancestors: the account's hooks for the event or `all`. Every question asked
/// is recorded, so tests can say what a module looked up.
struct FakeFinder {
    hooks: Vec<Arc<Hook>>,
    asked: RefCell<Vec<(String, String)>>,
}

impl FakeFinder {
    fn new(hooks: Vec<Hook>) -> Self {
        FakeFinder {
            hooks: hooks.into_iter().map(Arc::new).collect(),
            asked: RefCell::new(Vec::new()),
        }
    }

    fn asked(&self) -> Vec<(String, String)> {
        self.asked.borrow().clone()
    }
}

impl HookFinder for FakeFinder {
    fn find(&self, hook_event: &str, account: &AccountId) -> Vec<Arc<Hook>> {
        self.asked
            .borrow_mut()
            .push((hook_event.to_owned(), account.to_string()));
        self.hooks
            .iter()
            .filter(|h| &h.account_id == account && (h.event == hook_event || h.event == "all"))
            .cloned()
            .collect()
    }

    fn reseller_of(&self, _account: &AccountId) -> Option<AccountId> {
        AccountId::parse(RESELLER).ok()
    }
}

/// A loaded hook; `extra` is merged into a minimal webhook document.
fn hook(id: &str, event: &str, extra: Value) -> Hook {
    let mut doc = json!({"_id": id, "pvt_account_id": ACCOUNT, "uri": "http://example.com/h",
                         "hook": event});
    if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    Hook::from_doc(&Doc::from_value(doc).unwrap(), |_| true).unwrap()
}

fn event(v: Value) -> Event {
    Event::from_value(v).unwrap()
}

fn fired(result: Result<Vec<Dispatch>, EventError>) -> Vec<String> {
    let mut ids: Vec<String> = result
        .expect("event is handled")
        .into_iter()
        .map(|d| d.hook.id.clone())
        .collect();
    ids.sort();
    ids
}

fn call_event(name: &str, extra: Value) -> Event {
    let mut e = json!({
        "Event-Category": "call_event", "Event-Name": name, "Call-ID": "call-1",
        "Channel-Name": "sofia/sipinterface_1/1000@realm", "Timestamp": 63724349409_i64,
        "Custom-Channel-Vars": {"Account-ID": ACCOUNT, "Custom-Thing": "x", "Owner-ID": "o1"}
    });
    if let (Some(m), Some(x)) = (e.as_object_mut(), extra.as_object()) {
        m.extend(x.clone());
    }
    event(e)
}

// ----- channel modules -------------------------------------------------------------------------

#[test]
fn loopback_legs_skip_hooks_that_exclude_internal_legs() {
    let finder = FakeFinder::new(vec![
        hook("keeps-internal", "channel_create", json!({})),
        hook(
            "external-only",
            "channel_create",
            json!({"include_internal_legs": false}),
        ),
        hook(
            "all-external-only",
            "all",
            json!({"include_internal_legs": false}),
        ),
    ]);

    let external = call_event("CHANNEL_CREATE", json!({}));
    assert_eq!(
        fired(ChannelCreate.handle_event(&external, &finder)),
        ["all-external-only", "external-only", "keeps-internal"]
    );

    let by_name = call_event("CHANNEL_CREATE", json!({"Channel-Name": "loopback/1000-a"}));
    assert_eq!(
        fired(ChannelCreate.handle_event(&by_name, &finder)),
        ["keeps-internal"]
    );

    let by_flag = call_event("CHANNEL_CREATE", json!({"Channel-Is-Loopback": "true"}));
    assert_eq!(
        fired(ChannelCreate.handle_event(&by_flag, &finder)),
        ["keeps-internal"]
    );
}

#[test]
fn channel_modules_look_up_their_lower_case_hook_name() {
    let finder = FakeFinder::new(vec![]);
    let e = call_event("CHANNEL_DESTROY", json!({}));
    assert_eq!(ChannelDestroy.handle_event(&e, &finder), Ok(vec![]));
    assert_eq!(
        finder.asked(),
        [("channel_destroy".to_owned(), ACCOUNT.to_owned())]
    );
}

#[test]
fn channel_payload_carries_request_reseller_and_filtered_ccvs() {
    let finder = FakeFinder::new(vec![hook("h", "channel_bridge", json!({}))]);
    let e = call_event(
        "CHANNEL_BRIDGE",
        json!({"Request": "2000@realm", "Other-Leg-Destination-Number": "+15552345678"}),
    );
    let dispatches = ChannelBridge.handle_event(&e, &finder).unwrap();
    assert_eq!(dispatches.len(), 1);
    let p = &dispatches[0].payload;
    assert_eq!(p["request"], json!("2000@realm"), "KAZOO bug §16.1 fixed");
    assert_eq!(p["reseller_id"], json!(RESELLER));
    assert_eq!(p["timestamp"], json!(63724349409_i64));
    assert_eq!(p["hook_event"], json!("channel_bridge"));
    assert_eq!(p["owner_id"], json!("o1"));
    assert_eq!(p["other_leg_destination_number"], json!("+15552345678"));
    assert_eq!(
        p["custom_channel_vars"],
        json!({"Custom-Thing": "x"}),
        "reserved CCVs (Account-ID, Owner-ID) are filtered"
    );
}

#[test]
fn channel_event_without_account_is_refused() {
    let finder = FakeFinder::new(vec![hook("h", "all", json!({}))]);
    let e = event(json!({"Event-Name": "CHANNEL_CREATE", "Call-ID": "c",
                         "Custom-Channel-Vars": {"Owner-ID": "o"}}));
    assert_eq!(
        ChannelCreate.handle_event(&e, &finder),
        Err(EventError::NoAccount)
    );
    assert!(finder.asked().is_empty());
}

// ----- notifications ---------------------------------------------------------------------------

fn voicemail_new() -> Event {
    event(json!({
        "Event-Category": "notification", "Event-Name": "voicemail_new",
        "App-Name": "callflow", "App-Version": "4.3.0", "Msg-ID": "m1",
        "Account-ID": ACCOUNT, "From-Realm": "r", "From-User": "u", "To-Realm": "r",
        "To-User": "1000", "Voicemail-Box": "b", "Voicemail-ID": "v",
        "Voicemail-Timestamp": 63724414024_i64, "Voicemail-Length": 4580
    }))
}

#[test]
fn notification_hooks_filter_on_custom_data_type() {
    let finder = FakeFinder::new(vec![
        hook(
            "wants-voicemail",
            "notifications",
            json!({"custom_data": {"type": "voicemail_new"}}),
        ),
        hook(
            "wants-everything",
            "notifications",
            json!({"custom_data": {"type": "all"}}),
        ),
        hook(
            "wants-missed-calls",
            "notifications",
            json!({"custom_data": {"type": "missed_call"}}),
        ),
        hook("no-custom-data", "notifications", json!({})),
        hook(
            "custom-data-without-type",
            "notifications",
            json!({"custom_data": {"team": "ops"}}),
        ),
        hook(
            "all-hook",
            "all",
            json!({"custom_data": {"type": "missed_call"}}),
        ),
    ]);
    assert_eq!(
        fired(Notifications.handle_event(&voicemail_new(), &finder)),
        [
            "all-hook",
            "no-custom-data",
            "wants-everything",
            "wants-voicemail"
        ]
    );
    assert_eq!(
        finder.asked(),
        [("notifications".to_owned(), ACCOUNT.to_owned())]
    );
}

#[test]
fn notification_payload_is_the_normalised_message() {
    let finder = FakeFinder::new(vec![hook("h", "notifications", json!({}))]);
    let d = Notifications
        .handle_event(&voicemail_new(), &finder)
        .unwrap();
    let p = &d[0].payload;
    assert_eq!(p["event_name"], json!("voicemail_new"));
    assert_eq!(p["account_id"], json!(ACCOUNT));
    assert_eq!(p["voicemail_length"], json!(4580));
    assert!(p.keys().all(|k| k == &k.to_lowercase() && !k.contains('-')));
}

#[test]
fn notification_missing_a_required_header_is_refused() {
    let finder = FakeFinder::new(vec![hook("h", "all", json!({}))]);
    let mut e = voicemail_new();
    e.0.remove("Voicemail-Box");
    assert_eq!(
        Notifications.handle_event(&e, &finder),
        Err(EventError::MissingHeader("Voicemail-Box".into()))
    );
    let mut e = voicemail_new();
    e.0.insert("Voicemail-ID".into(), Value::Null);
    assert_eq!(
        Notifications.handle_event(&e, &finder),
        Err(EventError::MissingHeader("Voicemail-ID".into()))
    );
    let alert = event(
        json!({"Event-Category": "notification", "Event-Name": "system_alert",
                             "Subject": "s", "Account-ID": ACCOUNT}),
    );
    assert_eq!(
        Notifications.handle_event(&alert, &finder),
        Err(EventError::MissingHeader("Message".into()))
    );
    assert!(
        finder.asked().is_empty(),
        "invalid messages look nothing up"
    );
}

#[test]
fn notification_without_account_is_refused() {
    // system_alert is the notification that requires no Account-ID.
    let finder = FakeFinder::new(vec![hook("h", "all", json!({}))]);
    let alert = event(
        json!({"Event-Category": "notification", "Event-Name": "system_alert",
                             "Message": "m", "Subject": "s"}),
    );
    assert_eq!(
        Notifications.handle_event(&alert, &finder),
        Err(EventError::NoAccount)
    );
    assert!(finder.asked().is_empty());
}

#[test]
fn unknown_notifications_are_nobodys() {
    let finder = FakeFinder::new(vec![hook("h", "all", json!({}))]);
    let e = event(
        json!({"Event-Category": "notification", "Event-Name": "notify_update",
                         "Status": "completed"}),
    );
    assert_eq!(Notifications.handle_event(&e, &finder), Ok(vec![]));
    assert!(finder.asked().is_empty());
}

fn callflow_webhook(hook_doc: Value) -> Event {
    event(json!({
        "Event-Category": "notification", "Event-Name": "webhook",
        "Timestamp": 63724414024_i64,
        "Hook": hook_doc,
        "Data": {"account_id": ACCOUNT, "call_id": "c1", "caller_id_number": "+15555678907",
                 "custom_sip_headers": {"X-Thing": "1"}}
    }))
}

#[test]
fn callflow_webhook_fires_its_own_hook_and_explicit_webhook_subscribers() {
    let finder = FakeFinder::new(vec![
        hook(
            "wants-webhook",
            "notifications",
            json!({"custom_data": {"type": "webhook"}}),
        ),
        hook("all-hook", "all", json!({})),
    ]);
    let e = callflow_webhook(json!({
        "_id": "63724414024", "uri": "http://example.com/cf", "hook": "notifications",
        "http_verb": "get", "retries": 3, "pvt_account_id": ACCOUNT,
        "custom_data": {"from_callflow": "yes"}
    }));
    let dispatches = Notifications.handle_event(&e, &finder).unwrap();
    // The callflow's own hook, then the account hook subscribed to `webhook` (KAZOO fires
    // only the first: bug §16.17). The `all` hook is left out, as in KAZOO.
    let ids: Vec<&str> = dispatches.iter().map(|d| d.hook.id.as_str()).collect();
    assert_eq!(ids, vec!["63724414024", "wants-webhook"]);
    assert_eq!(
        dispatches[1].payload["event_name"],
        json!("webhook"),
        "subscribers get the whole message"
    );
    let d = &dispatches[0];
    assert_eq!(d.hook.id, "63724414024");
    assert_eq!(d.hook.account_id.as_str(), ACCOUNT);
    assert_eq!(d.hook.uri, "http://example.com/cf");
    assert_eq!(d.hook.http_verb.as_str(), "get");
    assert_eq!(d.hook.retries, 3);
    assert_eq!(
        d.hook.custom_data.as_ref().unwrap()["from_callflow"],
        json!("yes")
    );
    assert_eq!(
        Value::Object(d.payload.clone()),
        json!({"account_id": ACCOUNT, "call_id": "c1", "caller_id_number": "+15555678907",
               "custom_sip_headers": {"x_thing": "1"}}),
        "the payload is Data, normalised"
    );
}

#[test]
fn callflow_webhook_needs_a_usable_hook_and_data() {
    let finder = FakeFinder::new(vec![]);
    let no_account =
        callflow_webhook(json!({"_id": "1", "uri": "http://x/y", "hook": "notifications"}));
    assert_eq!(
        Notifications.handle_event(&no_account, &finder),
        Err(EventError::NoAccount)
    );
    let no_uri =
        callflow_webhook(json!({"_id": "1", "hook": "notifications", "pvt_account_id": ACCOUNT}));
    assert_eq!(
        Notifications.handle_event(&no_uri, &finder),
        Err(EventError::WrongType("Hook".into()))
    );
    let mut no_data = callflow_webhook(json!({"_id": "1", "uri": "http://x/y",
                                              "hook": "notifications", "pvt_account_id": ACCOUNT}));
    no_data.0.remove("Data");
    assert_eq!(
        Notifications.handle_event(&no_data, &finder),
        Err(EventError::MissingHeader("Data".into()))
    );
}

// ----- object ----------------------------------------------------------------------------------

fn doc_change(action: &str, doc_type: &str, database: &str) -> Event {
    event(json!({
        "Event-Category": "configuration", "Event-Name": action, "ID": "doc-1",
        "Database": database, "Type": doc_type, "Rev": "1-a"
    }))
}

fn account_db() -> String {
    format!(
        "account%2F{}%2F{}%2F{}",
        &ACCOUNT[..2],
        &ACCOUNT[2..4],
        &ACCOUNT[4..]
    )
}

#[test]
fn object_hooks_filter_on_type_and_action() {
    let object_hook = |id: &str, cd: Value| hook(id, "object", json!({"custom_data": cd}));
    let finder = FakeFinder::new(vec![
        object_hook(
            "user-edited",
            json!({"type": "user", "action": "doc_edited"}),
        ),
        object_hook("all-all", json!({"type": "all", "action": "all"})),
        object_hook("user-any", json!({"type": "user", "action": "all"})),
        object_hook("device-any", json!({"type": "device", "action": "all"})),
        object_hook(
            "any-created",
            json!({"type": "all", "action": "doc_created"}),
        ),
        object_hook("type-only", json!({"type": "user"})),
        hook("no-custom-data", "object", json!({})),
        hook(
            "all-hook",
            "all",
            json!({"custom_data": {"type": "device", "action": "doc_created"}}),
        ),
    ]);
    let e = doc_change("doc_edited", "user", &account_db());
    let dispatches = Object::default().handle_event(&e, &finder).unwrap();
    let mut ids: Vec<&str> = dispatches.iter().map(|d| d.hook.id.as_str()).collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "all-all",
            "all-hook",
            "no-custom-data",
            "user-any",
            "user-edited"
        ]
    );
    assert_eq!(
        Value::Object(dispatches[0].payload.clone()),
        json!({"id": "doc-1", "account_id": ACCOUNT, "action": "doc_edited", "type": "user"})
    );

    let created_device = doc_change("doc_created", "device", &format!("{}-202401", account_db()));
    assert_eq!(
        fired(Object::default().handle_event(&created_device, &finder)),
        [
            "all-all",
            "all-hook",
            "any-created",
            "device-any",
            "no-custom-data"
        ]
    );
}

#[test]
fn object_account_comes_from_the_database() {
    let finder = FakeFinder::new(vec![]);
    let account_doc = event(
        json!({"Event-Category": "configuration", "Event-Name": "doc_edited",
                                   "ID": OTHER, "Database": "accounts", "Type": "account"}),
    );
    Object::default()
        .handle_event(&account_doc, &finder)
        .unwrap();
    assert_eq!(finder.asked(), [("object".to_owned(), OTHER.to_owned())]);

    let system = doc_change("doc_edited", "webhook", "webhooks");
    assert_eq!(Object::default().handle_event(&system, &finder), Ok(vec![]));
    assert_eq!(
        finder.asked().len(),
        1,
        "changes outside account dbs look nothing up"
    );
}

#[test]
fn object_change_without_id_or_database_is_refused() {
    let finder = FakeFinder::new(vec![]);
    let mut e = doc_change("doc_edited", "user", &account_db());
    e.0.remove("Database");
    assert_eq!(
        Object::default().handle_event(&e, &finder),
        Err(EventError::MissingHeader("Database".into()))
    );
    let mut e = doc_change("doc_edited", "user", &account_db());
    e.0.remove("ID");
    assert_eq!(
        Object::default().handle_event(&e, &finder),
        Err(EventError::MissingHeader("ID".into()))
    );
}

// ----- parking ---------------------------------------------------------------------------------

#[test]
fn parking_fires_every_parking_hook_of_the_account() {
    let finder = FakeFinder::new(vec![
        hook("p", "parking", json!({})),
        hook("a", "all", json!({})),
    ]);
    let e = event(
        json!({"Event-Category": "call_event", "Event-Name": "PARK_RETRIEVED",
                         "Call-ID": "c", "Parking-Slot": "3",
                         "Custom-Channel-Vars": {"Account-ID": ACCOUNT}}),
    );
    let dispatches = Parking.handle_event(&e, &finder).unwrap();
    assert_eq!(dispatches.len(), 2);
    assert_eq!(
        Value::Object(dispatches[0].payload.clone()),
        json!({"event_name": "PARK_RETRIEVED", "call_id": "c", "parking_slot": "3",
               "account_id": ACCOUNT})
    );
}

#[test]
fn parking_needs_a_call_id_and_an_account() {
    let finder = FakeFinder::new(vec![]);
    let no_call = event(json!({"Event-Name": "PARK_PARKED",
                               "Custom-Channel-Vars": {"Account-ID": ACCOUNT}}));
    assert_eq!(
        Parking.handle_event(&no_call, &finder),
        Err(EventError::MissingHeader("Call-ID".into()))
    );
    let no_account = event(json!({"Event-Name": "PARK_PARKED", "Call-ID": "c"}));
    assert_eq!(
        Parking.handle_event(&no_account, &finder),
        Err(EventError::NoAccount)
    );
}

// ----- sms / mms -------------------------------------------------------------------------------

fn inbound(category: &str) -> Event {
    event(json!({
        "Event-Category": category, "Event-Name": "inbound", "Message-ID": "msg-1",
        "Body": "hello", "From": "+15551234567", "To": "+15557654321",
        "Route-Type": "offnet", "Charges": "0.25", "Account-ID": ACCOUNT
    }))
}

#[test]
fn sms_and_mms_payloads_name_their_type() {
    let finder = FakeFinder::new(vec![
        hook("s", "sms", json!({})),
        hook("m", "mms", json!({})),
    ]);
    let sms = Sms.handle_event(&inbound("sms"), &finder).unwrap();
    assert_eq!(fired(Ok(sms.clone())), ["s"]);
    assert_eq!(
        Value::Object(sms[0].payload.clone()),
        json!({"id": "msg-1", "account_id": ACCOUNT, "type": "sms", "from": "+15551234567",
               "to": "+15557654321", "body": "hello", "origin": "offnet", "charges": 0.25})
    );
    let mms = Mms.handle_event(&inbound("mms"), &finder).unwrap();
    assert_eq!(fired(Ok(mms.clone())), ["m"]);
    assert_eq!(mms[0].payload["type"], json!("mms"));
}

#[test]
fn inbound_messages_need_required_headers_and_an_account() {
    let finder = FakeFinder::new(vec![]);
    let mut e = inbound("sms");
    e.0.remove("Body");
    assert_eq!(
        Sms.handle_event(&e, &finder),
        Err(EventError::MissingHeader("Body".into()))
    );
    let mut e = inbound("mms");
    e.0.remove("Account-ID");
    assert_eq!(Mms.handle_event(&e, &finder), Err(EventError::NoAccount));
}

#[test]
fn hooks_of_other_accounts_never_fire() {
    let mut foreign = hook("foreign", "all", json!({}));
    foreign.account_id = AccountId::parse(OTHER).unwrap();
    let finder = FakeFinder::new(vec![foreign]);
    assert_eq!(
        ChannelCreate.handle_event(&call_event("CHANNEL_CREATE", json!({})), &finder),
        Ok(vec![])
    );
    assert_eq!(Sms.handle_event(&inbound("sms"), &finder), Ok(vec![]));
}
