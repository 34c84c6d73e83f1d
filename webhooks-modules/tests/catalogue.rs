//! What the modules tell the rest of the engine: catalogue entries (spec §11) and AMQP
//! bindings (spec §4.1, §4.4), exactly as KAZOO declares them.

use serde_json::{json, Value};
use webhooks_core::{Binding, WebhookModule};
use webhooks_modules::{kazoo_modules, kazoo_registry, Notifications, Object};

fn types(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn registry_holds_kazoos_modules_in_catalogue_order() {
    let registry = kazoo_registry(&types(&["user"]));
    let ids: Vec<&str> = registry.catalogue().iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "channel_create",
            "channel_answer",
            "channel_bridge",
            "channel_destroy",
            "notifications",
            "object",
            "parking",
            "sms",
            "mms"
        ]
    );
    assert_eq!(kazoo_modules(&[]).len(), 9);
    assert!(registry.hook_names().contains(&"all".to_owned()));
}

#[test]
fn catalogue_names_and_descriptions_are_kazoos() {
    let registry = kazoo_registry(&types(&["user"]));
    let expect = [
        ("channel_create", "Channel Create", "This webhook is triggered when a new channel is created"),
        ("channel_answer", "Channel Answer", "This webhook is triggered when a channel establishes two-way audio, such as a voicemail box or the called party answering"),
        ("channel_bridge", "Channel Bridge", "This webhook is triggered when two channels are bridged together, such as two users/devices connected together"),
        ("channel_destroy", "Channel Destroy", "This webhook is triggered when a channel is destroyed, usually as a result of a hangup"),
        ("notifications", "Notifications Webhook", "Fire a webhook when a notification event is triggered in Kazoo"),
        ("object", "Object", "Receive notifications when objects (like JSON document objects) in Kazoo are changed"),
        ("parking", "Call Parking", "Events when calls get parked/retrieved"),
        ("sms", "SMS", "Receive notifications when sms is received"),
        ("mms", "MMS", "Receive notifications when mms is received"),
    ];
    for (id, name, description) in expect {
        let meta = registry.metadata(id).expect(id);
        assert_eq!(meta.name, name, "{id}");
        assert_eq!(meta.description, description, "{id}");
        let has_modifiers = matches!(id, "notifications" | "object");
        assert_eq!(meta.modifiers.is_some(), has_modifiers, "{id}");
    }
}

#[test]
fn object_catalogue_offers_the_configured_types() {
    let meta = Object::new(types(&["account", "user"])).init();
    assert_eq!(
        meta.to_json(),
        json!({
            "id": "object",
            "name": "Object",
            "description": "Receive notifications when objects (like JSON document objects) in Kazoo are changed",
            "modifiers": {
                "type": {"type": "array", "description": "A list of object types to handle",
                         "items": ["all", "account", "user"]},
                "action": {"type": "array", "description": "A list of object actions to handle",
                           "items": ["all", "doc_created", "doc_edited", "doc_deleted"]}
            }
        })
    );
    let default_items = Object::default().init().modifiers.unwrap()["type"]["items"].clone();
    assert_eq!(
        default_items,
        json!([
            "all",
            "account",
            "callflow",
            "device",
            "faxbox",
            "media",
            "user",
            "vmbox",
            "fax",
            "mailbox_message",
            "call_recording"
        ])
    );
}

#[test]
fn notifications_catalogue_has_every_type_with_kazoos_text() {
    let meta = Notifications.init();
    let modifiers = Value::Object(meta.modifiers.unwrap());
    assert_eq!(modifiers["type"]["type"], json!("object"));
    let items = modifiers["type"]["items"].as_object().unwrap();
    let friendly: Vec<(&str, &str)> = items
        .iter()
        .map(|(k, v)| (k.as_str(), v["friendly_name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        friendly,
        [
            ("account_zone_change", "Account Zone Change"),
            ("all", "All"),
            ("bill_reminder", "Bill Reminder"),
            ("cf_notification", "Customer defined notification"),
            ("cnam_request", "CNAM Update"),
            ("customer_update", "Customer Update"),
            ("denied_emergency_bridge", "Emergency Call Failed"),
            ("deregister", "De-Registration"),
            ("emergency_bridge", "Emergency Call Placed"),
            ("first_occurrence", "Account First Occurrence"),
            ("inbound_fax", "Successful Fax Reception"),
            ("inbound_fax_error", "Fax Reception Error"),
            ("low_balance", "Account Low Balance"),
            ("missed_call", "Missed Call"),
            ("new_account", "New Account"),
            ("new_user", "New User"),
            (
                "number_feature_manual_action",
                "Number Feature Manual Action Required"
            ),
            ("outbound_fax", "Successful Fax Transmission"),
            ("outbound_fax_error", "Fax Transmission Error"),
            ("outbound_smtp_fax_error", "Invalid Email-to-Fax Email"),
            ("password_recovery", "Password Recovery"),
            ("port_cancel", "Port Cancel"),
            ("port_comment", "Port Comment"),
            ("port_pending", "Port Pending"),
            ("port_rejected", "Port Rejected"),
            ("port_request", "Port Request"),
            ("port_scheduled", "Port Scheduled"),
            ("port_unconfirmed", "Port Unconfirmed"),
            ("ported", "Ported"),
            ("register", "Registration"),
            ("service_added", "Service Added"),
            ("system_alert", "System Alert"),
            ("topup", "Automatic Account Top-up"),
            ("transaction", "Transaction Completed"),
            ("voicemail_deleted", "Voicemail Message Deleted"),
            ("voicemail_full", "Voicemail Box Full"),
            ("voicemail_new", "New Voicemail Message"),
            ("voicemail_saved", "Voicemail Message Saved"),
            ("webhook", "Callflow Webhook Triggered"),
            ("webhook_disabled", "Webhook Disabled"),
        ]
    );
    assert_eq!(
        items["voicemail_new"]["description"],
        json!("This event is triggered any time a voicemail message is left")
    );
}

fn keys(module: &dyn WebhookModule) -> Vec<(String, String, String, String)> {
    module
        .bindings_and_responders()
        .into_iter()
        .map(|b: Binding| (b.exchange, b.routing_key, b.category, b.name))
        .collect()
}

fn row(e: &str, k: &str, c: &str, n: &str) -> (String, String, String, String) {
    (e.into(), k.into(), c.into(), n.into())
}

#[test]
fn bindings_are_kazoos() {
    let m = kazoo_modules(&[]);
    assert_eq!(
        keys(m[0].as_ref()),
        [row(
            "callevt",
            "call.CHANNEL_CREATE.*",
            "call_event",
            "CHANNEL_CREATE"
        )]
    );
    assert_eq!(
        keys(m[1].as_ref()),
        [row(
            "callevt",
            "call.CHANNEL_ANSWER.*",
            "call_event",
            "CHANNEL_ANSWER"
        )]
    );
    assert_eq!(
        keys(m[2].as_ref()),
        [row(
            "callevt",
            "call.CHANNEL_BRIDGE.*",
            "call_event",
            "CHANNEL_BRIDGE"
        )]
    );
    assert_eq!(
        keys(m[3].as_ref()),
        [row(
            "callevt",
            "call.CHANNEL_DESTROY.*",
            "call_event",
            "CHANNEL_DESTROY"
        )]
    );
    assert_eq!(
        keys(m[5].as_ref()),
        [row("configuration", "#", "configuration", "*")]
    );
    assert_eq!(
        keys(m[6].as_ref()),
        [
            row("callevt", "call.PARK_PARKED.*", "call_event", "PARK_PARKED"),
            row(
                "callevt",
                "call.PARK_RETRIEVED.*",
                "call_event",
                "PARK_RETRIEVED"
            ),
            row(
                "callevt",
                "call.PARK_ABANDONED.*",
                "call_event",
                "PARK_ABANDONED"
            ),
        ]
    );
    assert_eq!(
        keys(m[7].as_ref()),
        [row("im", "sms.inbound.offnet.*", "sms", "inbound")]
    );
    assert_eq!(
        keys(m[8].as_ref()),
        [row("im", "mms.inbound.offnet.*", "mms", "inbound")]
    );
}

#[test]
fn notification_routing_keys_are_kazoos() {
    let bindings = Notifications.bindings_and_responders();
    assert!(bindings
        .iter()
        .all(|b| b.exchange == "notifications" && b.category == "notification" && b.name == "*"));
    let mut routing: Vec<&str> = bindings.iter().map(|b| b.routing_key.as_str()).collect();
    routing.sort();
    assert_eq!(
        routing,
        [
            "notifications.account.cf_notification",
            "notifications.account.low_balance",
            "notifications.account.new",
            "notifications.account.number_feature_manual_action",
            "notifications.account.reminder",
            "notifications.account.service_added",
            "notifications.account.topup",
            "notifications.account.transaction",
            "notifications.account.zone_change",
            "notifications.fax.inbound",
            "notifications.fax.inbound_error",
            "notifications.fax.outbound",
            "notifications.fax.outbound_error",
            "notifications.fax.outbound_smtp_error",
            "notifications.number.cnam_request",
            "notifications.number.port_cancel",
            "notifications.number.port_comment",
            "notifications.number.port_pending",
            "notifications.number.port_rejected",
            "notifications.number.port_request",
            "notifications.number.port_scheduled",
            "notifications.number.port_unconfirmed",
            "notifications.number.ported",
            "notifications.registration.denied_emergency_bridge",
            "notifications.registration.emergency_bridge",
            "notifications.sip.deregister",
            "notifications.sip.first_occurrence",
            "notifications.sip.missed_call",
            "notifications.sip.register",
            "notifications.system.alert",
            "notifications.user.customer_update",
            "notifications.user.new",
            "notifications.user.password_recovery",
            "notifications.voicemail.deleted",
            "notifications.voicemail.full",
            "notifications.voicemail.new",
            "notifications.voicemail.saved",
            "notifications.webhook.callflow",
            "notifications.webhook.disabled",
        ]
    );
}
