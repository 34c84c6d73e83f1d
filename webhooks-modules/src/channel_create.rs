//! KAZOO's `webhooks_channel_create`: a new call leg exists. The payload is the common channel
//! payload (spec §5.1) with `hook_event: "channel_create"`.

use serde_json::Value;
use webhooks_core::event::EventError;
use webhooks_core::{Binding, Dispatch, Event, HookFinder, ModuleMetadata, WebhookModule};

use crate::channel::{ChannelKind, Extra};

const KIND: ChannelKind = ChannelKind {
    hook: "channel_create",
    event_name: "CHANNEL_CREATE",
    name: "Channel Create",
    description: "This webhook is triggered when a new channel is created",
    extra: Extra::None,
};

/// Sample `CHANNEL_CREATE` events, one per sample in KAZOO's
/// `webhooks_channel_create-samples.json`.
const SAMPLE_EVENTS: &str = include_str!("samples/channel_create.json");

/// The `channel_create` hook (spec §5.1). The work is done by the shared channel
/// builder (`channel.rs`, KAZOO's `webhooks_channel_util`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ChannelCreate;

impl WebhookModule for ChannelCreate {
    fn init(&self) -> ModuleMetadata {
        KIND.metadata()
    }

    fn bindings_and_responders(&self) -> Vec<Binding> {
        KIND.bindings()
    }

    fn handle_event(
        &self,
        event: &Event,
        hooks: &dyn HookFinder,
    ) -> Result<Vec<Dispatch>, EventError> {
        KIND.handle_event(event, hooks)
    }

    fn samples(&self) -> Vec<Value> {
        KIND.samples(SAMPLE_EVENTS)
    }
}
