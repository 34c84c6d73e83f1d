//! # webhooks-amqp: the RabbitMQ transport, speaking KAZOO
//!
//! KAZOO's webhooks application is an AMQP consumer: call events, notifications and document
//! changes arrive on KAZOO's exchanges, crossbar asks for re-enables over the bus, and the
//! disabler announces `webhook_disabled` on it (spec §4). This crate is that side of the
//! engine, wire-compatible, so an operator can stop KAZOO's webhooks app and start ours on the
//! same broker. It depends on `webhooks-core` only and talks to the engine through core's
//! traits: [`EventSink`](webhooks_core::EventSink) for events,
//! [`ConfigListener`](webhooks_core::transport::ConfigListener) for configuration, and it is
//! the engine's [`Notifier`](webhooks_core::transport::Notifier) and
//! [`FailureShare`](webhooks_core::transport::FailureShare).
//!
//! Live streams (KAZOO's blackhole, the websockets crate) need the events their browsers
//! subscribed to on the node holding the socket, not on whichever node the shared queue picks:
//! the handle is their [`NodeBinder`](webhooks_core::transport::NodeBinder), binding this
//! node's own queue to what they ask for (again after every reconnect), and what arrives there
//! goes to the [`EventTap`](webhooks_core::transport::EventTap) set with
//! [`AmqpHandle::set_event_tap`].
//!
//! Start with [`AmqpTransport::start`]; a message is followed from the top down, and no file
//! imports one above it:
//! - `transport.rs`: puts the parts together; the [`AmqpHandle`] the daemon holds (shutdown,
//!   publish, the engine's `Notifier` and `FailureShare`, the live streams' `NodeBinder` and
//!   event tap);
//! - `connection.rs`: the supervisor: opens a session (a connection, its consumers and its
//!   publishing channel), serves it, winds it down, reconnects with backoff;
//! - `declare.rs`: what each connection declares, binds and consumes;
//! - `shared.rs`: the queue the cluster shares (each event to one node): handover to the
//!   engine, ack after, cancel and wind-down; `redelivery.rs`: recognising the redelivery of
//!   a message already handed over;
//! - `node.rs`: this node's own queue of document change notices, of the failed tries other
//!   nodes share and of what live streams asked for, handed to the event tap;
//!   `node_bindings.rs`: binding that queue to what live streams ask for, in order, on every
//!   connection; `failures.rs`: sharing this node's failed tries, in batches, so every node
//!   counts every failure towards auto-disable;
//! - `reenable.rs`: crossbar's re-enable requests, answered through `publisher.rs`: what goes
//!   back out (replies, notifications), on whatever connection is current;
//! - leaves that import nothing of the above: `ending.rs` (how a session ends), `error.rs`,
//!   `message.rs` (decoding a delivery), `config.rs`, `stats.rs`, and [`keys`]: KAZOO's
//!   exchanges and routing keys, also for whoever publishes to us.
//!
//! Guarantees: an event is acknowledged only after the engine took it, so a crash or a lost
//! connection never loses one (the broker redelivers; a redelivery of an event this node
//! already handed over, whose ack was lost with the connection, is recognised and not handed
//! over again).
//! The shared queue is durable, so events published while no node runs wait for one.
//! Live streams get no such guarantee, as in KAZOO: this node's own queue goes with its
//! connection, and what is published to it while the connection is down is not seen.

mod config;
mod connection;
mod declare;
mod ending;
mod error;
mod failures;
pub mod keys;
mod message;
mod node;
mod node_bindings;
mod publisher;
mod redelivery;
mod reenable;
mod shared;
mod stats;
mod transport;

pub use config::{AmqpConfig, DEFAULT_PREFETCH, DEFAULT_SHARED_QUEUE};
pub use declare::declare_kazoo_exchanges;
pub use error::AmqpError;
pub use keys::{
    call_event_key, doc_change_key, doc_type_update_key, encode_segment, exchanges,
    notification_key, route_for, Route,
};
pub use publisher::NOTIFY_PATIENCE;
pub use reenable::APP_VERSION;
pub use stats::AmqpStatsSnapshot;
pub use transport::{AmqpHandle, AmqpTransport};
