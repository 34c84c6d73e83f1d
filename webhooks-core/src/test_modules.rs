//! Tests' stand-ins for KAZOO's modules (core cannot depend on `webhooks-modules`): modules
//! that only have a name, enough for the registry and the hook table to know a hook event.

use crate::event::{Event, EventError};
use crate::module::{Binding, Dispatch, HookFinder, ModuleMetadata, WebhookModule};
use crate::registry::ModuleRegistry;

/// A module that is only a name.
struct Named(&'static str);

impl WebhookModule for Named {
    fn init(&self) -> ModuleMetadata {
        ModuleMetadata {
            id: self.0.into(),
            name: self.0.into(),
            description: String::new(),
            modifiers: None,
        }
    }
    fn bindings_and_responders(&self) -> Vec<Binding> {
        vec![]
    }
    fn handle_event(&self, _: &Event, _: &dyn HookFinder) -> Result<Vec<Dispatch>, EventError> {
        Ok(vec![])
    }
}

/// A registry knowing these hook events.
pub(crate) fn registry_of(ids: &[&'static str]) -> ModuleRegistry {
    ids.iter()
        .fold(ModuleRegistry::new(), |r, id| r.register(Named(id)))
}
