//! The shared half of the four channel modules: KAZOO's `webhooks_channel_util` (spec §5.1).
//!
//! `channel_create`, `channel_answer`, `channel_bridge` and `channel_destroy` differ only in the
//! call event they bind to, their catalogue text and a few extra payload fields; everything else
//! (finding the account, the loopback filter, the payload) lives here, described by a
//! [`ChannelKind`] each module file declares.

use std::sync::Arc;

use serde_json::{Map, Value};
use webhooks_core::event::EventError;
use webhooks_core::{AccountId, Binding, Dispatch, Event, Hook, HookFinder, ModuleMetadata};

use crate::kz_json::{integer, is_true, ne_text, put, sample_events};

/// Custom channel variables KAZOO keeps out of `custom_channel_vars`: the compiled-in default of
/// `system_config/call_command.reserved_ccv_keys` (`?DEFAULT_CCV_KEYS` in
/// `core/kazoo_call/include/kapps_call_command_types.hrl`).
///
/// KAZOO omits `custom_channel_vars` entirely while that config key is unset (spec §16.2), but
/// callflow writes the default into `system_config` the first time it reads it, so a running
/// KAZOO filters with this list. Modules are pure and read no configuration, so we always filter
/// with the default: the payload a KAZOO cluster sends once callflow has run once. The code
/// default is used rather than the schema's (which lacks `Call-Interaction-ID`, `Ecallmgr-Node`
/// and `Fetch-ID`) because the code default is what gets persisted.
pub(crate) const RESERVED_CCV_KEYS: &[&str] = &[
    "Account-ID",
    "Account-Name",
    "Account-Realm",
    "Authorizing-ID",
    "Authorizing-Type",
    "Auto-Answer",
    "Call-Forward",
    "Call-Interaction-ID",
    "Ecallmgr-Node",
    "Call-Waiting-Disabled",
    "Confirm-Cancel-Timeout",
    "Confirm-File",
    "Confirm-Key",
    "Fax-Enabled",
    "Fetch-ID",
    "Loopback-Bowout",
    "Media-Encryption-Enforce-Security",
    "Media-Webrtc",
    "Owner-ID",
    "Presence-ID",
    "RTCP-MUX",
    "Realm",
    "Require-Ignore-Early-Media",
    "Retain-CID",
    "SIP-Invite-Domain",
    "Simplify-Loopback",
    "Username",
];

/// The reseller KAZOO's sample payloads show. Sample events carry no account tree, so samples
/// are built as if the hook table answered this reseller for the sample account.
const SAMPLE_RESELLER_ID: &str = "026f4f0a6d99f9a19b6aa4aa75501d7d";

/// The fields one channel event adds to the common payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extra {
    /// channel_create, channel_answer: the common payload only.
    None,
    /// `original_number`, `other_leg_destination_number`.
    Bridge,
    /// Hangup cause/code and the three durations.
    Destroy,
}

/// What distinguishes one channel module from another.
#[derive(Debug)]
pub(crate) struct ChannelKind {
    /// The hook name (`channel_create`), also the payload's `hook_event`.
    pub hook: &'static str,
    /// The call event's `Event-Name` (`CHANNEL_CREATE`).
    pub event_name: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub extra: Extra,
}

impl ChannelKind {
    /// The catalogue entry; channel hooks take no modifiers.
    pub fn metadata(&self) -> ModuleMetadata {
        ModuleMetadata {
            id: self.hook.to_owned(),
            name: self.name.to_owned(),
            description: self.description.to_owned(),
            modifiers: None,
        }
    }

    /// `callevt` / `call.<EVENT>.*`, answered for (`call_event`, `<EVENT>`).
    pub fn bindings(&self) -> Vec<Binding> {
        vec![Binding::new(
            "callevt",
            &format!("call.{}.*", self.event_name),
            "call_event",
            self.event_name,
        )]
    }

    /// Finds the account's hooks, drops those that exclude internal legs when this leg is a
    /// loopback, and hands every survivor the same payload.
    pub fn handle_event(
        &self,
        event: &Event,
        hooks: &dyn HookFinder,
    ) -> Result<Vec<Dispatch>, EventError> {
        let account = account(event)?;
        let fireable: Vec<Arc<Hook>> = hooks
            .find(self.hook, &account)
            .into_iter()
            .filter(|hook| hook.include_internal_legs || !is_loopback(event))
            .collect();
        if fireable.is_empty() {
            return Ok(Vec::new());
        }
        let payload = self.payload(event, &account, hooks.reseller_of(&account).as_ref());
        Ok(fireable
            .into_iter()
            .map(|hook| Dispatch {
                hook,
                payload: payload.clone(),
            })
            .collect())
    }

    /// The payload of spec §5.1, in `base_hook_event`'s key order.
    ///
    /// Two KAZOO bugs are fixed here: `request` is sent (KAZOO reads the `Request` string as a
    /// JSON object and always drops it, §16.1), and `custom_channel_vars` is always present
    /// (see [`RESERVED_CCV_KEYS`], §16.2). `timestamp` is an integer, as KAZOO's code sends it.
    pub fn payload(
        &self,
        event: &Event,
        account: &AccountId,
        reseller: Option<&AccountId>,
    ) -> Map<String, Value> {
        let ccv = |key: &str| ne_text(event.get("Custom-Channel-Vars").and_then(|c| c.get(key)));
        let field = |key: &str| ne_text(event.get(key));
        let raw = |key: &str| event.get(key).filter(|v| !v.is_null()).cloned();
        // CCVs are read as text first (`true` becomes "true"), then compared with "true",
        // which is `kz_term:is_true(ccv(...))`.
        let ccv_true = |key: &str| ccv(key).as_deref() == Some("true");
        let was_global = ccv_true("Global-Resource");

        let mut p = Map::new();
        // KAZOO writes the resolved account into the CCV before reading it back; `account()`
        // only resolves from the CCV, so the two are the same id.
        p.insert("account_id".into(), account.as_str().into());
        put(&mut p, "authorizing_id", ccv("Authorizing-ID"));
        put(&mut p, "authorizing_type", ccv("Authorizing-Type"));
        put(&mut p, "call_direction", field("Call-Direction"));
        put(
            &mut p,
            "call_forwarded",
            ccv("Call-Forward").map(|v| v == "true"),
        );
        put(&mut p, "call_id", field("Call-ID"));
        put(&mut p, "callee_id_name", field("Callee-ID-Name"));
        put(&mut p, "callee_id_number", field("Callee-ID-Number"));
        put(&mut p, "caller_id_name", field("Caller-ID-Name"));
        put(&mut p, "caller_id_number", field("Caller-ID-Number"));
        put(
            &mut p,
            "custom_channel_vars",
            Some(non_reserved_ccvs(event)),
        );
        put(
            &mut p,
            "custom_application_vars",
            event
                .get("Custom-Application-Vars")
                .filter(|v| v.is_object())
                .cloned(),
        );
        put(
            &mut p,
            "emergency_resource_used",
            Some(ccv_true("Emergency-Resource")),
        );
        put(&mut p, "from", raw("From"));
        put(&mut p, "inception", raw("Inception"));
        put(
            &mut p,
            "local_resource_id",
            if was_global { None } else { ccv("Resource-ID") },
        );
        put(&mut p, "local_resource_used", Some(!was_global));
        put(
            &mut p,
            "is_internal_leg",
            Some(is_true(event.get("Channel-Is-Loopback"))),
        );
        put(&mut p, "other_leg_call_id", field("Other-Leg-Call-ID"));
        put(&mut p, "owner_id", ccv("Owner-ID"));
        put(&mut p, "request", field("Request"));
        put(&mut p, "reseller_id", reseller.map(AccountId::to_string));
        put(&mut p, "timestamp", integer(event.get("Timestamp")));
        put(&mut p, "to", raw("To"));
        put(&mut p, "hook_event", Some(self.hook));
        match self.extra {
            Extra::None => {}
            Extra::Bridge => {
                put(&mut p, "original_number", ccv("Original-Number"));
                put(
                    &mut p,
                    "other_leg_destination_number",
                    field("Other-Leg-Destination-Number"),
                );
            }
            Extra::Destroy => {
                put(&mut p, "hangup_cause", field("Hangup-Cause"));
                put(&mut p, "hangup_code", field("Hangup-Code"));
                put(
                    &mut p,
                    "duration_seconds",
                    integer(event.get("Duration-Seconds")),
                );
                put(
                    &mut p,
                    "ringing_seconds",
                    integer(event.get("Ringing-Seconds")),
                );
                put(
                    &mut p,
                    "billing_seconds",
                    integer(event.get("Billing-Seconds")),
                );
            }
        }
        p
    }

    /// Payloads for the module's sample events (a JSON array of call events).
    pub fn samples(&self, events_json: &str) -> Vec<Value> {
        let reseller = AccountId::parse(SAMPLE_RESELLER_ID).ok();
        sample_events(events_json)
            .iter()
            .filter_map(|event| {
                let account = account(event).ok()?;
                Some(Value::Object(self.payload(
                    event,
                    &account,
                    reseller.as_ref(),
                )))
            })
            .collect()
    }
}

/// The account a call event belongs to: `Custom-Channel-Vars.Account-ID`.
///
/// KAZOO falls back to looking the dialled number up in its number database; modules have no
/// database, so an event without a (well-formed) account id is refused with
/// [`EventError::NoAccount`]. The transport, which may have a number directory, can fill the CCV
/// in before handing the event over.
pub(crate) fn account(event: &Event) -> Result<AccountId, EventError> {
    event
        .ccv("Account-ID")
        .and_then(|a| AccountId::parse(a).ok())
        .ok_or(EventError::NoAccount)
}

/// A leg KAZOO calls internal: a `loopback/` channel or one flagged `Channel-Is-Loopback`.
pub(crate) fn is_loopback(event: &Event) -> bool {
    event
        .str("Channel-Name")
        .is_some_and(|n| n.starts_with("loopback/"))
        || is_true(event.get("Channel-Is-Loopback"))
}

/// The CCV object minus [`RESERVED_CCV_KEYS`], keys in their original case.
fn non_reserved_ccvs(event: &Event) -> Value {
    let ccvs = event
        .get("Custom-Channel-Vars")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !RESERVED_CCV_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    Value::Object(ccvs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KIND: ChannelKind = ChannelKind {
        hook: "channel_destroy",
        event_name: "CHANNEL_DESTROY",
        name: "n",
        description: "d",
        extra: Extra::Destroy,
    };

    fn event(v: Value) -> Event {
        Event::from_value(v).unwrap()
    }

    fn acct() -> AccountId {
        AccountId::parse("0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn payload_casts_freeswitch_strings_like_kazoo() {
        let e = event(json!({
            "Timestamp": "63724349409",
            "Duration-Seconds": "6",
            "Hangup-Code": "sip:200",
            "Channel-Is-Loopback": "true",
            "Request": "1000@realm",
            "Custom-Channel-Vars": {"Account-ID": "0123456789abcdef0123456789abcdef",
                                    "Call-Forward": "true", "Emergency-Resource": "true",
                                    "Global-Resource": "true", "Resource-ID": "r1"}
        }));
        let p = KIND.payload(&e, &acct(), None);
        assert_eq!(p["timestamp"], json!(63724349409_i64));
        assert_eq!(p["duration_seconds"], json!(6));
        assert_eq!(p["hangup_code"], json!("sip:200"));
        assert_eq!(p["is_internal_leg"], json!(true));
        assert_eq!(p["call_forwarded"], json!(true));
        assert_eq!(p["emergency_resource_used"], json!(true));
        assert_eq!(p["local_resource_used"], json!(false));
        assert_eq!(p["request"], json!("1000@realm"));
        assert!(
            !p.contains_key("local_resource_id"),
            "global resources have no local id"
        );
        assert!(!p.contains_key("reseller_id"));
        assert_eq!(
            p["custom_channel_vars"],
            json!({"Emergency-Resource": "true", "Global-Resource": "true", "Resource-ID": "r1"})
        );
    }

    #[test]
    fn absent_fields_are_missing_keys_not_nulls() {
        let e = event(
            json!({"Custom-Channel-Vars": {"Account-ID": "0123456789abcdef0123456789abcdef"},
                             "Call-ID": "", "From": null}),
        );
        let p = KIND.payload(&e, &acct(), None);
        for k in [
            "call_id",
            "from",
            "call_forwarded",
            "hangup_cause",
            "timestamp",
        ] {
            assert!(!p.contains_key(k), "{k} should be omitted");
        }
        assert_eq!(p["local_resource_used"], json!(true));
        assert_eq!(p["emergency_resource_used"], json!(false));
        assert_eq!(p["is_internal_leg"], json!(false));
        assert_eq!(p["custom_channel_vars"], json!({}));
        assert_eq!(p["hook_event"], json!("channel_destroy"));
    }

    #[test]
    fn loopback_is_the_channel_name_or_the_flag() {
        assert!(is_loopback(&event(json!({"Channel-Name": "loopback/x-a"}))));
        assert!(is_loopback(&event(json!({"Channel-Is-Loopback": true}))));
        assert!(!is_loopback(&event(
            json!({"Channel-Name": "sofia/loopback/x"})
        )));
    }

    #[test]
    fn malformed_account_ids_are_no_account() {
        let e = event(json!({"Custom-Channel-Vars": {"Account-ID": "ABC"}}));
        assert_eq!(account(&e), Err(EventError::NoAccount));
    }
}
