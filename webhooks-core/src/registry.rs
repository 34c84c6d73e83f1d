//! The set of registered modules: what hooks exist, their metadata and samples, and which module
//! answers which event.

use std::sync::Arc;

use serde_json::Value;

use crate::module::{Binding, ModuleMetadata, WebhookModule};

struct Registered {
    module: Arc<dyn WebhookModule>,
    metadata: ModuleMetadata,
    /// Asked once at registration: routing an event must not allocate per module.
    bindings: Vec<Binding>,
}

/// Registered modules, in registration order. Cheap to clone (modules are shared).
#[derive(Clone, Default)]
pub struct ModuleRegistry {
    modules: Arc<Vec<Arc<Registered>>>,
}

impl ModuleRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a module, calling its `init` once. A module whose id is already registered
    /// replaces the earlier one (an embedder may override a built-in module).
    pub fn register(mut self, module: impl WebhookModule) -> Self {
        self.register_arc(Arc::new(module));
        self
    }

    pub fn register_arc(&mut self, module: Arc<dyn WebhookModule>) {
        let metadata = module.init();
        let bindings = module.bindings_and_responders();
        let mut list: Vec<Arc<Registered>> = self.modules.as_ref().clone();
        list.retain(|r| r.metadata.id != metadata.id);
        // The hook table matches events by a 64-bit tag of the module id; two ids with one tag
        // (odds about 1 in 2^62 per pair) would receive each other's events.
        let tag = crate::tag::event_tag(&metadata.id);
        if let Some(other) = list
            .iter()
            .find(|r| crate::tag::event_tag(&r.metadata.id) == tag)
        {
            panic!(
                "modules {:?} and {:?} have the same event tag; rename one",
                metadata.id, other.metadata.id
            );
        }
        list.push(Arc::new(Registered {
            module,
            metadata,
            bindings,
        }));
        self.modules = Arc::new(list);
    }

    /// Is `hook` the id of a registered module? (`all` is not a module.)
    pub fn is_available(&self, hook: &str) -> bool {
        self.modules.iter().any(|r| r.metadata.id == hook)
    }

    pub fn metadata(&self, hook: &str) -> Option<&ModuleMetadata> {
        self.modules
            .iter()
            .find(|r| r.metadata.id == hook)
            .map(|r| &r.metadata)
    }

    /// Every module's catalogue entry, in registration order.
    pub fn catalogue(&self) -> Vec<&ModuleMetadata> {
        self.modules.iter().map(|r| &r.metadata).collect()
    }

    /// Hook names a client may use: `all` plus every module id, sorted (crossbar's `hook` enum).
    pub fn hook_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.modules.iter().map(|r| r.metadata.id.clone()).collect();
        names.push("all".into());
        names.sort();
        names.dedup();
        names
    }

    /// Sample ids (`webhooks_<id>`) of modules that have samples, sorted.
    pub fn sample_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .modules
            .iter()
            .filter(|r| !r.module.samples().is_empty())
            .map(|r| format!("webhooks_{}", r.metadata.id))
            .collect();
        ids.sort();
        ids
    }

    /// Samples for a sample id (`webhooks_channel_create`); `None` for an unknown id.
    pub fn samples(&self, sample_id: &str) -> Option<Vec<Value>> {
        let id = sample_id.strip_prefix("webhooks_")?;
        let r = self.modules.iter().find(|r| r.metadata.id == id)?;
        let samples = r.module.samples();
        (!samples.is_empty()).then_some(samples)
    }

    /// All modules, for the dispatcher and the AMQP transport.
    pub fn modules(&self) -> impl Iterator<Item = &Arc<dyn WebhookModule>> {
        self.modules.iter().map(|r| &r.module)
    }

    /// Every module's bindings (what the AMQP transport binds its queue with).
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.modules.iter().flat_map(|r| r.bindings.iter())
    }

    /// The modules whose responders answer an event's (`Event-Category`, `Event-Name`).
    pub fn responders<'a>(
        &'a self,
        category: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Arc<dyn WebhookModule>> + 'a {
        self.modules
            .iter()
            .filter(move |r| r.bindings.iter().any(|b| b.responds_to(category, name)))
            .map(|r| &r.module)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_modules::StandIn;
    use serde_json::json;

    /// A module named `id`, with one sample or none.
    fn fake(id: &'static str, with_sample: bool) -> StandIn {
        StandIn {
            samples: if with_sample {
                vec![json!({"a":1})]
            } else {
                vec![]
            },
            ..StandIn::named(id)
        }
    }

    #[test]
    fn registry_lists_names_and_samples() {
        let r = ModuleRegistry::new()
            .register(fake("zeta", true))
            .register(fake("alpha", false));
        assert_eq!(r.hook_names(), vec!["all", "alpha", "zeta"]);
        assert!(r.is_available("alpha"));
        assert!(!r.is_available("all"));
        assert_eq!(r.sample_ids(), vec!["webhooks_zeta"]);
        assert_eq!(r.samples("webhooks_zeta"), Some(vec![json!({"a":1})]));
        assert_eq!(r.samples("webhooks_alpha"), None);
        assert_eq!(r.samples("zeta"), None);
    }

    #[test]
    fn registering_same_id_replaces() {
        let r = ModuleRegistry::new()
            .register(fake("a", false))
            .register(fake("a", true));
        assert_eq!(r.catalogue().len(), 1);
        assert_eq!(r.sample_ids(), vec!["webhooks_a"]);
    }
}
