//! # webhooks-modules: KAZOO's hook modules
//!
//! KAZOO's webhooks app is a set of `webhooks_*` modules, each turning one family of AMQP events
//! into webhook payloads: call legs created, answered, bridged and destroyed; notifications;
//! document changes; call parking; inbound SMS and MMS. This crate re-implements each of them
//! as one file implementing `webhooks_core`'s [`WebhookModule`] trait, so that a hook receives
//! the payload KAZOO would send it, field for field (spec §5), with KAZOO's bugs fixed where the
//! fix keeps the wire format (each fix is named in the module that makes it).
//!
//! Every module does the same three things: [`init`](WebhookModule::init) returns its catalogue
//! entry (spec §11), [`bindings_and_responders`](WebhookModule::bindings_and_responders) names
//! the exchanges, routing keys and (category, name) pairs it consumes (spec §4), and
//! [`handle_event`](WebhookModule::handle_event) asks a
//! [`HookFinder`](webhooks_core::HookFinder) for the account's hooks, applies the module's own
//! filter and returns one payload per hook. Each also builds its own sample payloads by running
//! that same code over KAZOO-shaped events kept in `src/samples/`.
//!
//! Start with [`kazoo_registry`], then [`ChannelCreate`] (whose work is done by the shared
//! `channel.rs`, KAZOO's `webhooks_channel_util`) and [`Notifications`].
//!
//! The crate is pure: it depends on `webhooks-core` and `serde_json` only, and must stay free of
//! I/O crates (no sockets, files, databases, clocks or randomness). Finding hooks, firing them,
//! retries, `custom_data` merging and the modifiers filter belong to the dispatcher; decoding
//! AMQP (including gzip-encoded MMS) belongs to the transport.

use std::sync::Arc;

use webhooks_core::{ModuleRegistry, WebhookModule};

mod channel;
mod im;
mod kz_json;

mod channel_answer;
mod channel_bridge;
mod channel_create;
mod channel_destroy;
mod mms;
mod notifications;
mod object;
mod parking;
mod sms;

pub use channel_answer::ChannelAnswer;
pub use channel_bridge::ChannelBridge;
pub use channel_create::ChannelCreate;
pub use channel_destroy::ChannelDestroy;
pub use mms::Mms;
pub use notifications::Notifications;
pub use object::Object;
pub use parking::Parking;
pub use sms::Sms;

/// Every module KAZOO ships, in its catalogue order. `object_types` are the types the `object`
/// module offers (`system_config/webhooks.object_types`).
pub fn kazoo_modules(object_types: &[String]) -> Vec<Arc<dyn WebhookModule>> {
    vec![
        Arc::new(ChannelCreate),
        Arc::new(ChannelAnswer),
        Arc::new(ChannelBridge),
        Arc::new(ChannelDestroy),
        Arc::new(Notifications),
        Arc::new(Object::new(object_types.to_vec())),
        Arc::new(Parking),
        Arc::new(Sms),
        Arc::new(Mms),
    ]
}

/// A registry holding [`kazoo_modules`]; register your own modules on top of it.
pub fn kazoo_registry(object_types: &[String]) -> ModuleRegistry {
    let mut registry = ModuleRegistry::new();
    for module in kazoo_modules(object_types) {
        registry.register_arc(module);
    }
    registry
}

/// The modules [`sample_events`] has events for, in catalogue order.
pub const MODULES_WITH_SAMPLE_EVENTS: &[&str] = &[
    "channel_create",
    "channel_answer",
    "channel_bridge",
    "channel_destroy",
    "notifications",
    "object",
    "parking",
];

/// The KAZOO-shaped AMQP events each module builds its samples from, by module id
/// (`channel_create`, `notifications`, ...): realistic input for tests, benchmarks and the
/// examples that publish events. `None` for a module without sample events.
pub fn sample_events(module_id: &str) -> Option<Vec<serde_json::Value>> {
    let text = match module_id {
        "channel_create" => include_str!("samples/channel_create.json"),
        "channel_answer" => include_str!("samples/channel_answer.json"),
        "channel_bridge" => include_str!("samples/channel_bridge.json"),
        "channel_destroy" => include_str!("samples/channel_destroy.json"),
        "notifications" => include_str!("samples/notifications.json"),
        "object" => include_str!("samples/object.json"),
        "parking" => include_str!("samples/parking.json"),
        _ => return None,
    };
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod sample_event_tests {
    #[test]
    fn every_sample_file_parses() {
        for id in super::MODULES_WITH_SAMPLE_EVENTS {
            assert!(!super::sample_events(id).unwrap().is_empty(), "{id}");
        }
        // ... and no other module has any.
        for registered in super::kazoo_registry(&[]).catalogue() {
            let listed = super::MODULES_WITH_SAMPLE_EVENTS.contains(&registered.id.as_str());
            assert_eq!(
                super::sample_events(&registered.id).is_some(),
                listed,
                "{}",
                registered.id
            );
        }
    }
}
