//! KAZOO's `webhooks_sms`: an SMS arrived from a carrier for one of the account's numbers.

use serde_json::Value;
use webhooks_core::event::EventError;
use webhooks_core::{Binding, Dispatch, Event, HookFinder, ModuleMetadata, WebhookModule};

use crate::im::ImKind;

const KIND: ImKind = ImKind {
    hook: "sms",
    name: "SMS",
    description: "Receive notifications when sms is received",
};

/// The `sms` hook (spec §5.5).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sms;

impl WebhookModule for Sms {
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

    /// None: KAZOO ships no `webhooks_sms` sample file, and `GET /v2/webhooks/samples` lists
    /// exactly the modules that have samples, so serving one would change that list.
    fn samples(&self) -> Vec<Value> {
        Vec::new()
    }
}
