//! KAZOO's `webhooks_channel_destroy`: a call leg hung up. The payload is the common channel
//! payload (spec §5.1) plus the hangup cause and code and the leg's duration, ringing and billing
//! seconds.

use serde_json::Value;
use webhooks_core::event::EventError;
use webhooks_core::{Binding, Dispatch, Event, HookFinder, ModuleMetadata, WebhookModule};

use crate::channel::{ChannelKind, Extra};

const KIND: ChannelKind = ChannelKind {
    hook: "channel_destroy",
    event_name: "CHANNEL_DESTROY",
    name: "Channel Destroy",
    description:
        "This webhook is triggered when a channel is destroyed, usually as a result of a hangup",
    extra: Extra::Destroy,
};

/// Sample `CHANNEL_DESTROY` events, one per sample in KAZOO's
/// `webhooks_channel_destroy-samples.json`.
const SAMPLE_EVENTS: &str = include_str!("samples/channel_destroy.json");

/// The `channel_destroy` hook (spec §5.1). The work is done by the shared channel
/// builder (`channel.rs`, KAZOO's `webhooks_channel_util`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ChannelDestroy;

impl WebhookModule for ChannelDestroy {
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
