//! Tests' stand-ins for KAZOO's modules (core cannot depend on `webhooks-modules`): modules
//! that are only a name, optionally with modifiers or samples, enough for the registry, the
//! hook table and validation to know a hook event.

use serde_json::Value;

use crate::event::{Event, EventError};
use crate::module::{Binding, Dispatch, HookFinder, ModuleMetadata, WebhookModule};

/// A module that is a name, its catalogue `modifiers` and its samples; it handles nothing.
pub(crate) struct StandIn {
    pub(crate) id: &'static str,
    pub(crate) modifiers: Option<Value>,
    pub(crate) samples: Vec<Value>,
}

impl StandIn {
    pub(crate) fn named(id: &'static str) -> Self {
        StandIn {
            id,
            modifiers: None,
            samples: Vec::new(),
        }
    }
}

impl WebhookModule for StandIn {
    fn init(&self) -> ModuleMetadata {
        ModuleMetadata {
            id: self.id.into(),
            name: self.id.into(),
            description: String::new(),
            modifiers: self.modifiers.as_ref().and_then(|v| v.as_object().cloned()),
        }
    }
    fn bindings_and_responders(&self) -> Vec<Binding> {
        vec![]
    }
    fn handle_event(&self, _: &Event, _: &dyn HookFinder) -> Result<Vec<Dispatch>, EventError> {
        Ok(vec![])
    }
    fn samples(&self) -> Vec<Value> {
        self.samples.clone()
    }
}
