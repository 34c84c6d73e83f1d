//! # kazoo-webhooks
//!
//! A KAZOO-compatible webhooks engine, as a library. This facade re-exports the workspace's
//! crates under short names so an embedder adds one dependency:
//!
//! - [`server`]: the whole engine in one call, `server::run(config, shutdown)`, exactly what
//!   the `webhooksd` daemon runs;
//! - [`core`]: the domain and the extension traits (`WebhookModule`, `Store`);
//! - [`modules`]: KAZOO's hook modules, one file each;
//! - [`store`]: the embedded store;
//! - [`engine`]: the delivery engine alone (`Engine::start`, `publish`, `shutdown`);
//! - [`api`]: the crossbar-compatible REST API, mountable in your own axum/hyper server;
//! - [`amqp`]: the RabbitMQ transport speaking KAZOO's exchanges and routing keys;
//! - [`websockets`]: live events over websockets in KAZOO blackhole's protocol.
//!
//! The `examples/` directory shows each of these in a small runnable program.

pub use webhooks_amqp as amqp;
pub use webhooks_api as api;
pub use webhooks_core as core;
pub use webhooks_engine as engine;
pub use webhooks_modules as modules;
pub use webhooks_server as server;
pub use webhooks_store as store;
pub use webhooks_websockets as websockets;
