//! # webhooks-amqp: the RabbitMQ transport, speaking KAZOO
//!
//! KAZOO's webhooks application is an AMQP consumer: call events, notifications and document
//! changes arrive on KAZOO's exchanges, crossbar asks for re-enables over the bus, and the
//! disabler announces `webhook_disabled` on it (spec §4). This crate is that side of the
//! engine, wire-compatible, so an operator can stop KAZOO's webhooks app and start ours on the
//! same broker. It depends on `webhooks-core` only and talks to the engine through core's
//! traits: [`EventSink`](webhooks_core::EventSink) for events,
//! [`ConfigListener`](webhooks_core::transport::ConfigListener) for configuration, and it is
//! the engine's [`Notifier`](webhooks_core::transport::Notifier).
//!
//! Start with [`AmqpTransport::start`], then:
//! - `connection.rs`: one connection's declarations and consumers, and the reconnect loop;
//! - `shared.rs`: the queue the cluster shares (each event to one node), ack after handover;
//! - `node.rs`: this node's own queue of document change notices;
//! - `reenable.rs` and `notify.rs`: what goes back out;
//! - [`keys`]: KAZOO's exchanges and routing keys, also for whoever publishes to us.
//!
//! Guarantees: an event is acknowledged only after the engine took it, so a crash or a lost
//! connection never loses one (the broker redelivers; a redelivery of an event this node
//! already handed over, whose ack was lost with the connection, is recognised and not handed
//! over again).
//! The shared queue is durable, so events published while no node runs wait for one.

mod config;
mod connection;
pub mod keys;
mod node;
mod notify;
mod reenable;
mod shared;
mod stats;
mod transport;

pub use config::{AmqpConfig, DEFAULT_PREFETCH, DEFAULT_SHARED_QUEUE};
pub use connection::declare_kazoo_exchanges;
pub use keys::{
    call_event_key, doc_change_key, doc_type_update_key, encode_segment, exchanges,
    notification_key, route_for, Route,
};
pub use notify::NOTIFY_PATIENCE;
pub use reenable::APP_VERSION;
pub use stats::AmqpStatsSnapshot;
pub use transport::{AmqpError, AmqpHandle, AmqpTransport};
