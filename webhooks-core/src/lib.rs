//! # webhooks-core: the domain of a KAZOO-compatible webhooks engine
//!
//! KAZOO publishes call, notification and document-change events; accounts register webhooks
//! that turn those events into HTTP requests. This crate holds the words of that story and
//! nothing that talks to the outside world: no sockets, no files, no databases (its one
//! reach outside is the random source behind new ids). Adapters
//! (`webhooks-store`, `webhooks-amqp`, `webhooks-api`) implement or use its traits.
//!
//! Start reading with:
//! - [`doc::Doc`]: every stored thing (account, webhook, attempt, config) is a KAZOO-style JSON
//!   document with `_id`, `_rev` and `pvt_*` private fields, exactly as KAZOO keeps it in CouchDB.
//! - [`hook::Hook`]: the in-memory record a webhook document becomes when it is loaded (§2.2 of the
//!   spec), and [`validate`] which checks a document the way crossbar does before it is saved.
//! - [`module::WebhookModule`]: the extension point. One implementation per event family
//!   (channel_create, object, notifications, ...) turns an [`event::Event`] into payloads.
//! - [`store::Store`]: where documents live. The embedded store and the CouchDB adapter
//!   (KAZOO's own databases) implement it; both run one contract suite.
//! - [`destination::DestinationPolicy`]: where deliveries may go (the SSRF guard's policy),
//!   checked when a hook is saved and, by the engine, on every delivery.
//! - [`signature`]: Standard Webhooks signatures of a hook's tries, and their verification.

pub mod account;
pub mod config;
pub mod definitions;
pub mod delivery;
pub mod delivery_stats;
pub mod destination;
pub mod doc;
pub mod encode;
pub mod event;
pub mod failures;
pub mod hook;
pub mod ids;
pub mod legacy;
pub mod live;
pub mod module;
pub mod pending;
pub mod reenable;
pub mod registry;
pub mod replay;
pub mod retry;
pub mod signature;
pub mod store;
pub mod table;
mod tag;
#[cfg(test)]
mod test_modules;
pub mod time;
pub mod transport;
pub mod validate;

pub use account::Account;
pub use doc::Doc;
pub use event::Event;
pub use hook::{BodyFormat, Hook, HttpVerb};
pub use ids::AccountId;
pub use module::{
    Binding, Dispatch, EventSink, HookFinder, ModuleMetadata, PublishReport, Settled, WebhookModule,
};
pub use registry::ModuleRegistry;
pub use store::{Store, StoreError};
