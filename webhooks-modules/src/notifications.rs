//! KAZOO's `webhooks_notifications` (spec §5.2): every notification KAZOO publishes (voicemail
//! left, fax received, port request, low balance, ...) becomes a payload for the account's
//! `notifications` hooks whose `custom_data.type` names it (or `all`).
//!
//! The payload is the whole AMQP message normalised (`Account-ID` → `account_id`), so nothing in
//! this file knows the fields of any one notification; what it does know is KAZOO's list of
//! notification definitions: the routing key each is published on, its catalogue text and the
//! headers a valid message must carry.
//!
//! One notification is special: `webhook`, published by the callflow `webhook` action (spec §13),
//! carries its own ad-hoc hook and is fired at that hook, and at the account's hooks that
//! subscribed to `webhook` explicitly (KAZOO never fires those: bug §16.17).

use std::sync::Arc;

use serde_json::{Map, Value};
use webhooks_core::event::{normalize, EventError};
use webhooks_core::hook::HookError;
use webhooks_core::{
    AccountId, Binding, Dispatch, Doc, Event, Hook, HookFinder, ModuleMetadata, WebhookModule,
};

use crate::kz_json::{ne_text, path, require, sample_events};

/// The hook name, and what `find` is asked for.
const HOOK: &str = "notifications";

/// The notification the callflow `webhook` action publishes.
const CALLFLOW_WEBHOOK: &str = "webhook";

/// Sample notifications, one per sample in KAZOO's `webhooks_notifications-samples.json`.
const SAMPLE_EVENTS: &str = include_str!("samples/notifications.json");

/// One of KAZOO's notification definitions (`kapi_notifications:*_definition/0`).
#[derive(Debug)]
struct Definition {
    /// `Event-Name`, and the value `custom_data.type` selects.
    name: &'static str,
    /// Where it is published on the `notifications` exchange.
    routing_key: &'static str,
    friendly_name: &'static str,
    description: &'static str,
    /// Headers a message must carry to be handled; KAZOO drops messages lacking any.
    required: &'static [&'static str],
}

/// Every definition KAZOO binds the webhooks app to, in `kapi_notifications`' order: all of them
/// except `skel` (an example) and `notify_update` (teletype's delivery receipts).
const DEFINITIONS: &[Definition] = &[
    Definition {
        name: "account_zone_change",
        routing_key: "notifications.account.zone_change",
        friendly_name: "Account Zone Change",
        description: "This event is triggered when an end user requests the home zone of an account is changed",
        required: &["Account-ID", "Zones"],
    },
    Definition {
        name: "bill_reminder",
        routing_key: "notifications.account.reminder",
        friendly_name: "Bill Reminder",
        description: "This event is triggered before a few days before the end of the month to remind account's owners of estimated service plan charges",
        required: &["Account-ID", "Due-Date", "Items", "Timestamp"],
    },
    Definition {
        name: "low_balance",
        routing_key: "notifications.account.low_balance",
        friendly_name: "Account Low Balance",
        description: "This event is triggered when an account is found with a balance below the notification threshold",
        required: &["Account-ID", "Current-Balance"],
    },
    Definition {
        name: "new_account",
        routing_key: "notifications.account.new",
        friendly_name: "New Account",
        description: "This event is triggered when an end user creates a new account",
        required: &["Account-ID"],
    },
    Definition {
        name: "service_added",
        routing_key: "notifications.account.service_added",
        friendly_name: "Service Added",
        description: "This event is triggered when an account's billable quantities change",
        required: &["Account-ID", "Audit-Log", "Items", "Timestamp"],
    },
    Definition {
        name: "topup",
        routing_key: "notifications.account.topup",
        friendly_name: "Automatic Account Top-up",
        description: "This event is triggered when an account automatic top-up is attempted",
        required: &["Account-ID", "Amount", "Response", "Success", "Timestamp"],
    },
    Definition {
        name: "transaction",
        routing_key: "notifications.account.transaction",
        friendly_name: "Transaction Completed",
        description: "This event is triggered when a transaction is attempted",
        required: &["Account-ID", "Amount", "Response", "Success", "Timestamp"],
    },
    Definition {
        name: "inbound_fax",
        routing_key: "notifications.fax.inbound",
        friendly_name: "Successful Fax Reception",
        description: "This event is triggered when a fax is successfully received",
        required: &["Account-ID", "Fax-ID", "From-Realm", "From-User", "To-Realm", "To-User"],
    },
    Definition {
        name: "inbound_fax_error",
        routing_key: "notifications.fax.inbound_error",
        friendly_name: "Fax Reception Error",
        description: "This event is triggered when receiving a fax fails",
        required: &["Account-ID", "From-Realm", "From-User", "To-Realm", "To-User"],
    },
    Definition {
        name: "outbound_fax",
        routing_key: "notifications.fax.outbound",
        friendly_name: "Successful Fax Transmission",
        description: "This event is triggered when a fax is successfully transmitted",
        required: &["Account-ID", "Callee-ID-Number", "Caller-ID-Number", "Fax-ID", "Fax-JobId"],
    },
    Definition {
        name: "outbound_fax_error",
        routing_key: "notifications.fax.outbound_error",
        friendly_name: "Fax Transmission Error",
        description: "This event is triggered when transmitting a fax fails",
        required: &["Fax-ID", "Fax-JobId"],
    },
    Definition {
        name: "outbound_smtp_fax_error",
        routing_key: "notifications.fax.outbound_smtp_error",
        friendly_name: "Invalid Email-to-Fax Email",
        description: "This event is triggered when the received email-to-fax email is invalid",
        required: &["Account-ID", "Fax-From-Email", "Errors", "Timestamp"],
    },
    Definition {
        name: "cnam_request",
        routing_key: "notifications.number.cnam_request",
        friendly_name: "CNAM Update",
        description: "This event is triggered when an end user would like the CNAM for a number changed",
        required: &["Account-ID", "Number", "Cnam"],
    },
    Definition {
        name: "port_cancel",
        routing_key: "notifications.number.port_cancel",
        friendly_name: "Port Cancel",
        description: "This event is triggered when a port request is canceled",
        required: &["Account-ID", "Port-Request-ID"],
    },
    Definition {
        name: "port_comment",
        routing_key: "notifications.number.port_comment",
        friendly_name: "Port Comment",
        description: "This event is triggered when a comment is left on a port request",
        required: &["Account-ID", "Comment", "Port-Request-ID"],
    },
    Definition {
        name: "port_pending",
        routing_key: "notifications.number.port_pending",
        friendly_name: "Port Pending",
        description: "This event is triggered when a port request is accepted and submitted to a carrier",
        required: &["Account-ID", "Port-Request-ID"],
    },
    Definition {
        name: "port_rejected",
        routing_key: "notifications.number.port_rejected",
        friendly_name: "Port Rejected",
        description: "This event is triggered when a port request is rejected",
        required: &["Account-ID", "Port-Request-ID"],
    },
    Definition {
        name: "port_request",
        routing_key: "notifications.number.port_request",
        friendly_name: "Port Request",
        description: "This event is triggered when a port is submitted for processing",
        required: &["Account-ID", "Port-Request-ID"],
    },
    Definition {
        name: "port_scheduled",
        routing_key: "notifications.number.port_scheduled",
        friendly_name: "Port Scheduled",
        description: "This event is triggered when a port is accepted by a carrier and scheduled",
        required: &["Account-ID", "Port-Request-ID"],
    },
    Definition {
        name: "port_unconfirmed",
        routing_key: "notifications.number.port_unconfirmed",
        friendly_name: "Port Unconfirmed",
        description: "This event is triggered when a port is created, prior to submitting",
        required: &["Account-ID", "Port-Request-ID"],
    },
    Definition {
        name: "ported",
        routing_key: "notifications.number.ported",
        friendly_name: "Ported",
        description: "This event is triggered when a port request for number is completed",
        required: &["Account-ID", "Port-Request-ID"],
    },
    Definition {
        name: "denied_emergency_bridge",
        routing_key: "notifications.registration.denied_emergency_bridge",
        friendly_name: "Emergency Call Failed",
        description: "This event is triggered when a call to an number classified as emergency fails",
        required: &["Account-ID", "Call-ID"],
    },
    Definition {
        name: "emergency_bridge",
        routing_key: "notifications.registration.emergency_bridge",
        friendly_name: "Emergency Call Placed",
        description: "This event is triggered when a call to an number classified as emergency is placed",
        required: &["Account-ID", "Call-ID"],
    },
    Definition {
        name: "deregister",
        routing_key: "notifications.sip.deregister",
        friendly_name: "De-Registration",
        description: "This event is triggered when a device fails to re-register and the contact expires",
        required: &["Account-ID", "Realm", "Username"],
    },
    Definition {
        name: "first_occurrence",
        routing_key: "notifications.sip.first_occurrence",
        friendly_name: "Account First Occurrence",
        description: "This event is triggered when an end user registers the first device and/or places the first call on an account",
        required: &["Account-ID", "Occurrence"],
    },
    Definition {
        name: "missed_call",
        routing_key: "notifications.sip.missed_call",
        friendly_name: "Missed Call",
        description: "This event is triggered when an corresponding missed call action in a callflow is invoked",
        required: &["Account-ID", "Call-Bridged", "Call-ID", "Message-Left"],
    },
    Definition {
        name: "register",
        routing_key: "notifications.sip.register",
        friendly_name: "Registration",
        description: "This event is triggered when a device registers but is not currently registered",
        required: &["Account-ID", "Realm", "Username"],
    },
    Definition {
        name: "system_alert",
        routing_key: "notifications.system.alert",
        friendly_name: "System Alert",
        description: "This event is triggered to alert the system administrators",
        required: &["Message", "Subject"],
    },
    Definition {
        name: "customer_update",
        routing_key: "notifications.user.customer_update",
        friendly_name: "Customer Update",
        description: "This event is triggered when the customer update API is used to deliver a message to the account",
        required: &["Account-ID"],
    },
    Definition {
        name: "new_user",
        routing_key: "notifications.user.new",
        friendly_name: "New User",
        description: "This event is triggered when an end user creates a new user",
        required: &["Account-ID", "User-ID"],
    },
    Definition {
        name: "password_recovery",
        routing_key: "notifications.user.password_recovery",
        friendly_name: "Password Recovery",
        description: "This event is triggered when an end user requests a password recovery link",
        required: &["Account-ID", "Email", "Password-Reset-Link"],
    },
    Definition {
        name: "voicemail_full",
        routing_key: "notifications.voicemail.full",
        friendly_name: "Voicemail Box Full",
        description: "This event is triggered any time an attempt to leave a voicemail message is blocked because the voicemail box is full",
        required: &["Account-ID", "Max-Message-Count", "Message-Count", "Voicemail-Box"],
    },
    Definition {
        name: "voicemail_new",
        routing_key: "notifications.voicemail.new",
        friendly_name: "New Voicemail Message",
        description: "This event is triggered any time a voicemail message is left",
        required: &["Account-ID", "From-Realm", "From-User", "To-Realm", "To-User", "Voicemail-Box", "Voicemail-ID", "Voicemail-Timestamp"],
    },
    Definition {
        name: "voicemail_saved",
        routing_key: "notifications.voicemail.saved",
        friendly_name: "Voicemail Message Saved",
        description: "This event is triggered any time a voicemail message is saved in the voicemail box 'new' folder",
        required: &["Account-ID", "From-Realm", "From-User", "To-Realm", "To-User", "Voicemail-Box", "Voicemail-ID", "Voicemail-Timestamp"],
    },
    Definition {
        name: "voicemail_deleted",
        routing_key: "notifications.voicemail.deleted",
        friendly_name: "Voicemail Message Deleted",
        description: "This event is triggered any time a voicemail message is deleted in the voicemail box",
        required: &["Account-ID", "From-Realm", "From-User", "To-Realm", "To-User", "Reason", "Voicemail-Box", "Voicemail-ID", "Voicemail-Timestamp"],
    },
    Definition {
        name: "webhook",
        routing_key: "notifications.webhook.callflow",
        friendly_name: "Callflow Webhook Triggered",
        description: "This event is triggered when a corresponding webhook action in a callflow is reached",
        required: &["Data", "Hook"],
    },
    Definition {
        name: "webhook_disabled",
        routing_key: "notifications.webhook.disabled",
        friendly_name: "Webhook Disabled",
        description: "This event is triggered when a webhook is disabled",
        required: &["Account-ID", "Hook-ID"],
    },
    Definition {
        name: "cf_notification",
        routing_key: "notifications.account.cf_notification",
        friendly_name: "Customer defined notification",
        description: "This event is triggered when an customer want send own notification, as example from callflow",
        required: &["Account-ID", "Template-ID"],
    },
    Definition {
        name: "number_feature_manual_action",
        routing_key: "notifications.account.number_feature_manual_action",
        friendly_name: "Number Feature Manual Action Required",
        description: "This event is triggered when a number feature is activate/deactivated and a manual action is required",
        required: &["Account-ID", "Number", "Feature"],
    },];

/// Where a notification's account id may be, first found wins (`kapi_notifications:account_id`).
const ACCOUNT_ID_PATHS: &[&[&str]] = &[
    &["account_id"],
    &["account", "_id"],
    &["pvt_account_id"],
    &["_id"],
    &["id"],
    &["Account-ID"],
    &["details", "account_id"],
    &["Details", "Account-ID"],
    &["details", "custom_channel_vars", "account_id"],
    &["Details", "Custom-Channel-Vars", "Account-ID"],
];

/// The `notifications` hook.
#[derive(Debug, Clone, Copy, Default)]
pub struct Notifications;

impl Notifications {
    /// The payload every account hook receives: the message, normalised.
    fn payload(event: &Event) -> Map<String, Value> {
        match normalize(&Value::Object(event.0.clone())) {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// The callflow `webhook` notification: fire `Data` (normalised) at the hook the callflow
    /// built (`Hook`). Account `notifications` hooks whose `custom_data.type` is exactly
    /// `webhook` get the whole message (as KAZOO's sample shows it): KAZOO offers that type in
    /// its catalogue but never fires it (§16.17). `all` hooks are left out, as in KAZOO, so
    /// their traffic does not change.
    fn callflow_webhook(
        event: &Event,
        hooks: &dyn HookFinder,
    ) -> Result<Vec<Dispatch>, EventError> {
        let hook_doc = event
            .get("Hook")
            .and_then(Value::as_object)
            .cloned()
            .map(Doc::from)
            .ok_or_else(|| EventError::WrongType("Hook".into()))?;
        let hook = Hook::from_doc(&hook_doc, |name| name == HOOK).map_err(|e| match e {
            HookError::NoAccount => EventError::NoAccount,
            _ => EventError::WrongType("Hook".into()),
        })?;
        let data = event
            .get("Data")
            .filter(|d| d.is_object())
            .ok_or_else(|| EventError::WrongType("Data".into()))?;
        let payload = match normalize(data) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let account = hook.account_id.clone();
        let mut out = vec![Dispatch {
            hook: Arc::new(hook),
            payload,
        }];
        let subscribed: Vec<Arc<Hook>> = hooks
            .find(HOOK, &account)
            .into_iter()
            .filter(|h| {
                h.event == HOOK
                    && h.custom_data
                        .as_ref()
                        .and_then(|cd| ne_text(cd.get("type")))
                        .is_some_and(|t| t == CALLFLOW_WEBHOOK)
            })
            .collect();
        if !subscribed.is_empty() {
            let message = Self::payload(event);
            out.extend(subscribed.into_iter().map(|hook| Dispatch {
                hook,
                payload: message.clone(),
            }));
        }
        Ok(out)
    }
}

/// KAZOO's `match_action_type`: `all` hooks take every notification; a `notifications` hook
/// without `custom_data` too; otherwise `custom_data.type` must be the event name or `all`.
///
/// A `custom_data` lacking `type` matches nothing, as in KAZOO (§16.15): crossbar refuses such
/// hooks, so one can only come from a hand-edited document, and firing it for every notification
/// would be the surprising reading.
fn wants(hook: &Hook, event_name: &str) -> bool {
    if hook.event != HOOK {
        return true;
    }
    match &hook.custom_data {
        None => true,
        Some(cd) => ne_text(cd.get("type")).is_some_and(|t| t == event_name || t == "all"),
    }
}

/// The notification's account: the first of [`ACCOUNT_ID_PATHS`] that is present. Like KAZOO,
/// the first present value decides, even when it is not a usable id.
fn account(event: &Event) -> Result<AccountId, EventError> {
    ACCOUNT_ID_PATHS
        .iter()
        .find_map(|p| path(&event.0, p).filter(|v| !v.is_null()))
        .and_then(Value::as_str)
        .and_then(|a| AccountId::parse(a).ok())
        .ok_or(EventError::NoAccount)
}

impl WebhookModule for Notifications {
    /// `modifiers.type` lists every notification (and `all`) with its friendly name and
    /// description, keys sorted: crossbar validates `custom_data.type` against these keys.
    fn init(&self) -> ModuleMetadata {
        let mut types: Vec<(&str, &str, &str)> = DEFINITIONS
            .iter()
            .map(|d| (d.name, d.friendly_name, d.description))
            .collect();
        types.push((
            "all",
            "All",
            "This event is triggered for any notification events",
        ));
        types.sort_by_key(|(name, _, _)| *name);
        let items: Map<String, Value> = types
            .into_iter()
            .map(|(name, friendly_name, description)| {
                let mut item = Map::new();
                item.insert("friendly_name".into(), friendly_name.into());
                item.insert("description".into(), description.into());
                (name.to_owned(), Value::Object(item))
            })
            .collect();
        let mut type_modifier = Map::new();
        type_modifier.insert("type".into(), "object".into());
        type_modifier.insert("items".into(), Value::Object(items));
        let mut modifiers = Map::new();
        modifiers.insert("type".into(), Value::Object(type_modifier));
        ModuleMetadata {
            id: HOOK.into(),
            name: "Notifications Webhook".into(),
            description: "Fire a webhook when a notification event is triggered in Kazoo".into(),
            modifiers: Some(modifiers),
        }
    }

    /// One routing key per notification; every one answers (`notification`, `*`) as in KAZOO.
    fn bindings_and_responders(&self) -> Vec<Binding> {
        DEFINITIONS
            .iter()
            .map(|d| Binding::new("notifications", d.routing_key, "notification", "*"))
            .collect()
    }

    /// Validates the message against its definition, then either fires the callflow's ad-hoc
    /// hook (`webhook`) or the account's matching hooks.
    ///
    /// A notification KAZOO's webhooks app does not bind to (`notify_update`, `skel`) is a valid
    /// message for someone else: it yields no dispatch rather than an error.
    fn handle_event(
        &self,
        event: &Event,
        hooks: &dyn HookFinder,
    ) -> Result<Vec<Dispatch>, EventError> {
        let name = event.required_str("Event-Name")?;
        let Some(definition) = DEFINITIONS.iter().find(|d| d.name == name) else {
            return Ok(Vec::new());
        };
        for header in definition.required {
            require(event, header)?;
        }
        if name == CALLFLOW_WEBHOOK {
            return Self::callflow_webhook(event, hooks);
        }
        let account = account(event)?;
        let wanted: Vec<Arc<Hook>> = hooks
            .find(HOOK, &account)
            .into_iter()
            .filter(|h| wants(h, name))
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let payload = Self::payload(event);
        Ok(wanted
            .into_iter()
            .map(|hook| Dispatch {
                hook,
                payload: payload.clone(),
            })
            .collect())
    }

    /// The normalised message for each sample notification. For `webhook` this is the whole
    /// message, as KAZOO's sample file shows it, although the callflow's hook receives only its
    /// `Data`.
    fn samples(&self) -> Vec<Value> {
        sample_events(SAMPLE_EVENTS)
            .iter()
            .map(|e| Value::Object(Self::payload(e)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn catalogue_lists_all_and_every_definition_sorted() {
        let meta = Notifications.init();
        let items = meta.modifiers.unwrap()["type"]["items"].clone();
        let keys: Vec<&String> = items.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), DEFINITIONS.len() + 1);
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys are sorted");
        assert_eq!(
            items["all"],
            json!({"friendly_name": "All",
                   "description": "This event is triggered for any notification events"})
        );
        assert_eq!(
            items["voicemail_deleted"]["description"],
            json!("This event is triggered any time a voicemail message is deleted in the voicemail box")
        );
    }

    #[test]
    fn account_is_the_first_present_path() {
        let a = "0123456789abcdef0123456789abcdef";
        let e = Event::from_value(json!({"Details": {"Account-ID": a}})).unwrap();
        assert_eq!(account(&e).unwrap().as_str(), a);
        let e = Event::from_value(json!({"Account-ID": "not-an-id", "Details": {"Account-ID": a}}))
            .unwrap();
        assert_eq!(account(&e), Err(EventError::NoAccount));
    }

    #[test]
    fn every_sample_event_passes_its_definition() {
        let events = sample_events(SAMPLE_EVENTS);
        assert_eq!(events.len(), 36);
        for e in &events {
            let def = DEFINITIONS
                .iter()
                .find(|d| Some(d.name) == e.name())
                .expect("sample event names a definition");
            for h in def.required {
                assert_eq!(require(e, h), Ok(()), "{} lacks {h}", def.name);
            }
        }
    }
}
