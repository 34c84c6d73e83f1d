//! KAZOO's `webhooks_channel_answer`: a call leg was answered. The payload is the common channel
//! payload (spec §5.1) with `hook_event: "channel_answer"`.

use serde_json::Value;
use webhooks_core::event::EventError;
use webhooks_core::{Binding, Dispatch, Event, HookFinder, ModuleMetadata, WebhookModule};

use crate::channel::{ChannelKind, Extra};

const KIND: ChannelKind = ChannelKind {
    hook: "channel_answer",
    event_name: "CHANNEL_ANSWER",
    name: "Channel Answer",
    description: "This webhook is triggered when a channel establishes two-way audio, such as a voicemail box or the called party answering",
    extra: Extra::None,
};

/// Sample `CHANNEL_ANSWER` events, one per sample in KAZOO's
/// `webhooks_channel_answer-samples.json`.
const SAMPLE_EVENTS: &str = include_str!("samples/channel_answer.json");

/// The `channel_answer` hook (spec §5.1). The work is done by the shared channel
/// builder (`channel.rs`, KAZOO's `webhooks_channel_util`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ChannelAnswer;

impl WebhookModule for ChannelAnswer {
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
