//! # webhooks-websockets: live events over websockets (KAZOO's blackhole)
//!
//! Browsers and operator consoles open a websocket, authenticate with the REST API's token,
//! and subscribe to bindings such as `call.CHANNEL_CREATE.*` or `object.doc_edited.user`; the
//! events the engine already consumes are then pushed to them as they happen. The protocol is
//! KAZOO blackhole's (`../shared/spec/kazoo-blackhole.md`), so Monster UI's `monster.socket.js`
//! works unchanged.
//!
//! Read in this order:
//! - [`protocol`]: the frames (client messages, `reply`, `event`);
//! - [`bindings`]: what a binding means: its subscription keys and the AMQP bindings it needs;
//!   [`routing`]: the key an event is dispatched under, and topic matching; [`normalize`]: the
//!   payload as blackhole sends it;
//! - [`Hub`]: every socket of the node, their subscriptions, the fan-out into bounded
//!   per-socket outboxes, and the node-queue bindings counted per subscription;
//! - `session.rs`: one socket's message pipeline (rate, authenticate, validate, authorise,
//!   limits, command); `socket.rs`: the listener and each connection's I/O;
//! - [`rest`]: crossbar's `/v2/websockets` views; [`Tapped`]: events published to this node
//!   directly reach the hub too.
//!
//! The daemon (`webhooks-server`) mounts it all; an embedder does the same with [`Hub::new`],
//! [`socket::router`], [`rest::routes`] and [`Tapped`]. Events come in through core's
//! `EventTap` (the hub implements it) and the node's queue is bound through core's
//! `NodeBinder` (the AMQP transport implements it), so this crate knows neither RabbitMQ nor
//! the engine.

pub mod bindings;
mod config;
mod hub;
pub mod normalize;
mod outbox;
pub mod protocol;
pub mod rest;
pub mod routing;
mod session;
pub mod socket;
mod tap;

pub use config::HubConfig;
pub use hub::{Hub, HubStats};
pub use tap::Tapped;
