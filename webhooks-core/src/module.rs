//! The extension point: [`WebhookModule`].
//!
//! A module is one event family (channel_create, object, notifications, ...). Like KAZOO's
//! `webhooks_*` modules it does three things:
//! - [`init`](WebhookModule::init): describe itself for the catalogue (`GET /v2/webhooks`);
//! - [`bindings_and_responders`](WebhookModule::bindings_and_responders): say which AMQP
//!   messages it wants (exchange, routing key) and which (category, name) pairs it answers;
//! - [`handle_event`](WebhookModule::handle_event): turn one event into payloads for the hooks
//!   that should receive it.
//!
//! Modules are pure: they read the event and the hook table through [`HookFinder`] and return
//! [`Dispatch`]es. Firing, retries, custom_data merge and the modifier filter are the
//! dispatcher's job, the same for every module.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::event::{Event, EventError};
use crate::hook::Hook;
use crate::ids::AccountId;

/// A module's catalogue entry, as `GET /v2/webhooks` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleMetadata {
    /// The hook name clients put in `hook` (`channel_create`); the metadata doc id is
    /// `webhooks_<id>`.
    pub id: String,
    pub name: String,
    pub description: String,
    /// Modifiers clients must set in `custom_data` (see spec §3.5), as KAZOO's JSON.
    pub modifiers: Option<Map<String, Value>>,
}

impl ModuleMetadata {
    /// The catalogue item: `{id, name, description[, modifiers]}`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), Value::String(self.id.clone()));
        m.insert("name".into(), Value::String(self.name.clone()));
        m.insert(
            "description".into(),
            Value::String(self.description.clone()),
        );
        if let Some(mods) = &self.modifiers {
            m.insert("modifiers".into(), Value::Object(mods.clone()));
        }
        Value::Object(m)
    }
}

/// One AMQP binding plus the responder it feeds: messages published on `exchange` with
/// `routing_key` are bound to the shared queue, and those whose (`Event-Category`,
/// `Event-Name`) match (`category`, `name`) reach the module. `"*"` matches any name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub exchange: String,
    pub routing_key: String,
    pub category: String,
    pub name: String,
}

impl Binding {
    pub fn new(exchange: &str, routing_key: &str, category: &str, name: &str) -> Self {
        Binding {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            category: category.into(),
            name: name.into(),
        }
    }

    /// Does an event with this category and name reach the responder?
    pub fn responds_to(&self, category: &str, name: &str) -> bool {
        self.category == category && (self.name == "*" || self.name == name)
    }
}

/// What a module sees of the hook table.
pub trait HookFinder {
    /// KAZOO's `find_webhooks(event, account)` (spec §6.1): the account's hooks for `hook_event`
    /// or `all`, then every ancestor's `include_subaccounts` hooks, root first.
    fn find(&self, hook_event: &str, account: &AccountId) -> Vec<Arc<Hook>>;

    /// The reseller of an account, for payloads that carry `reseller_id`.
    fn reseller_of(&self, _account: &AccountId) -> Option<AccountId> {
        None
    }
}

/// One payload for one hook.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    pub hook: Arc<Hook>,
    pub payload: Map<String, Value>,
}

/// An event family. Implement it to add your own hook type (see `examples/custom_module.rs`).
pub trait WebhookModule: Send + Sync + 'static {
    /// The catalogue entry. Called once, when the module is registered.
    fn init(&self) -> ModuleMetadata;

    /// The AMQP bindings the module needs and the responders they feed.
    fn bindings_and_responders(&self) -> Vec<Binding>;

    /// Turns an event into payloads for the matching hooks. An `Err` is a malformed event
    /// (logged and counted by the caller); `Ok(vec![])` is a valid event nobody wants.
    fn handle_event(
        &self,
        event: &Event,
        hooks: &dyn HookFinder,
    ) -> Result<Vec<Dispatch>, EventError>;

    /// Sample payloads for `GET /v2/webhooks/samples/webhooks_<id>`, built by the module itself.
    fn samples(&self) -> Vec<Value> {
        Vec::new()
    }
}

/// What publishing one event did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Deliveries queued (one per hook that will be fired).
    pub dispatched: usize,
    /// Why nothing was dispatched, when the event was dropped on purpose (no account, no
    /// module answers it).
    pub dropped: Option<&'static str>,
}

/// Where events go in: the engine implements it; the API's `POST /v2/events` and the AMQP
/// transport call it.
#[async_trait::async_trait]
pub trait EventSink: Send + Sync {
    /// Takes one KAZOO event. Waits while the engine is saturated (backpressure). An `Err` is a
    /// malformed event, or [`EventError::Stopped`]: the engine is shutting down and did not
    /// take it.
    async fn publish(&self, event: Event) -> Result<PublishReport, EventError>;

    /// [`publish`](Self::publish), and a future that completes once every delivery of the
    /// event is settled: finished (sent, or failed for good) or, if it is to be tried again,
    /// its retry kept where this node's death cannot take it. A transport that can hold the
    /// event meanwhile (the AMQP shared queue, unacknowledged) waits for it before letting
    /// go, so a node that dies mid-delivery leaves the event to another node rather than to
    /// its own restart. The default settles at once.
    async fn publish_held(&self, event: Event) -> Result<(PublishReport, Settled), EventError> {
        let report = self.publish(event).await?;
        Ok((report, Box::pin(std::future::ready(()))))
    }
}

/// Completes once an event's deliveries are settled (see [`EventSink::publish_held`]).
pub type Settled = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
