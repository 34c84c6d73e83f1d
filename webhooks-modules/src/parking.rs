//! KAZOO's `webhooks_parking` (spec §5.4): callflow's park action parked, retrieved or abandoned
//! a call. The payload is the park event itself, trimmed of AMQP plumbing and normalised.

use std::sync::Arc;

use serde_json::{Map, Value};
use webhooks_core::event::{normalize, EventError};
use webhooks_core::{
    AccountId, Binding, Dispatch, Event, Hook, HookFinder, ModuleMetadata, WebhookModule,
};

use crate::kz_json::{require, sample_events};

/// The hook name, and what `find` is asked for.
const HOOK: &str = "parking";

/// The park events callflow publishes on `callevt`.
const EVENTS: &[&str] = &["PARK_PARKED", "PARK_RETRIEVED", "PARK_ABANDONED"];

/// Headers that describe the message rather than the parked call; KAZOO strips them (and the
/// CCVs, whose account id is lifted to the top level) before normalising.
const STRIPPED: &[&str] = &[
    "Node",
    "Msg-ID",
    "App-Version",
    "App-Name",
    "Event-Category",
    "Custom-Channel-Vars",
];

/// Sample park events, one per sample in KAZOO's `webhooks_parking-samples.json`.
const SAMPLE_EVENTS: &str = include_str!("samples/parking.json");

/// The `parking` hook.
#[derive(Debug, Clone, Copy, Default)]
pub struct Parking;

impl Parking {
    /// The parked call's account: `Custom-Channel-Vars.Account-ID` (no number lookup).
    fn account(event: &Event) -> Result<AccountId, EventError> {
        event
            .ccv("Account-ID")
            .and_then(|a| AccountId::parse(a).ok())
            .ok_or(EventError::NoAccount)
    }

    /// The event with `Account-ID` added and [`STRIPPED`] removed, normalised: `call_id`,
    /// `caller_id_number`, `parking_slot` (a string, as callflow publishes it), `event_name`, ...
    fn payload(event: &Event, account: &AccountId) -> Map<String, Value> {
        let mut message = event.0.clone();
        message.insert("Account-ID".into(), account.as_str().into());
        message.retain(|k, _| !STRIPPED.contains(&k.as_str()));
        match normalize(&Value::Object(message)) {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

impl WebhookModule for Parking {
    fn init(&self) -> ModuleMetadata {
        ModuleMetadata {
            id: HOOK.into(),
            name: "Call Parking".into(),
            description: "Events when calls get parked/retrieved".into(),
            modifiers: None,
        }
    }

    /// `callevt` / `call.<EVENT>.*` for each park event, answered for (`call_event`, `<EVENT>`).
    fn bindings_and_responders(&self) -> Vec<Binding> {
        EVENTS
            .iter()
            .map(|name| Binding::new("callevt", &format!("call.{name}.*"), "call_event", name))
            .collect()
    }

    /// A call event must carry `Call-ID` (`kapi_call:event_v`); every `parking` (and `all`) hook
    /// of the account receives the payload, there is no filter.
    fn handle_event(
        &self,
        event: &Event,
        hooks: &dyn HookFinder,
    ) -> Result<Vec<Dispatch>, EventError> {
        require(event, "Call-ID")?;
        let account = Self::account(event)?;
        let found: Vec<Arc<Hook>> = hooks.find(HOOK, &account);
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let payload = Self::payload(event, &account);
        Ok(found
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
                let account = Self::account(e).ok()?;
                Some(Value::Object(Self::payload(e, &account)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_strips_plumbing_and_lifts_the_account() {
        let a = AccountId::parse("5a2d994fbae69b1d6b01eb9f0e7dfe62").unwrap();
        let e = Event::from_value(json!({
            "Call-ID": "c", "Event-Name": "PARK_RETRIEVED", "Parking-Slot": "2",
            "Server-ID": "q", "Node": "n", "Msg-ID": "m", "App-Name": "callflow",
            "App-Version": "4", "Event-Category": "call_event",
            "Custom-Channel-Vars": {"Account-ID": a.as_str()}
        }))
        .unwrap();
        assert_eq!(
            Value::Object(Parking::payload(&e, &a)),
            json!({"call_id": "c", "event_name": "PARK_RETRIEVED", "parking_slot": "2",
                   "server_id": "q", "account_id": a.as_str()})
        );
    }
}
