//! KAZOO's `webhooks_mms`: an MMS arrived from a carrier for one of the account's numbers.
//!
//! MMS bodies may arrive gzip content-encoded; decoding them is the transport's job, so this
//! module only ever sees the decoded JSON message.

use serde_json::Value;
use webhooks_core::event::EventError;
use webhooks_core::{Binding, Dispatch, Event, HookFinder, ModuleMetadata, WebhookModule};

use crate::im::ImKind;

const KIND: ImKind = ImKind {
    hook: "mms",
    name: "MMS",
    description: "Receive notifications when mms is received",
};

/// The `mms` hook (spec §5.5).
#[derive(Debug, Clone, Copy, Default)]
pub struct Mms;

impl WebhookModule for Mms {
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

    /// None: KAZOO ships no `webhooks_mms` sample file, and `GET /v2/webhooks/samples` lists
    /// exactly the modules that have samples, so serving one would change that list.
    fn samples(&self) -> Vec<Value> {
        Vec::new()
    }
}
