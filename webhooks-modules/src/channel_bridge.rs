//! KAZOO's `webhooks_channel_bridge`: two legs were bridged. The payload is the common channel
//! payload (spec §5.1) plus `original_number` and `other_leg_destination_number`.

use serde_json::Value;
use webhooks_core::event::EventError;
use webhooks_core::{Binding, Dispatch, Event, HookFinder, ModuleMetadata, WebhookModule};

use crate::channel::{ChannelKind, Extra};

const KIND: ChannelKind = ChannelKind {
    hook: "channel_bridge",
    event_name: "CHANNEL_BRIDGE",
    name: "Channel Bridge",
    description: "This webhook is triggered when two channels are bridged together, such as two users/devices connected together",
    extra: Extra::Bridge,
};

/// Sample `CHANNEL_BRIDGE` events, one per sample in KAZOO's
/// `webhooks_channel_bridge-samples.json`.
const SAMPLE_EVENTS: &str = include_str!("samples/channel_bridge.json");

/// The `channel_bridge` hook (spec §5.1). The work is done by the shared channel
/// builder (`channel.rs`, KAZOO's `webhooks_channel_util`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ChannelBridge;

impl WebhookModule for ChannelBridge {
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
