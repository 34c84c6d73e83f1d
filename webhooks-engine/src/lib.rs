//! # webhooks-engine: from events to HTTP requests
//!
//! The running half of the webhooks application. [`Engine::publish`] takes a KAZOO event; the
//! registered modules (see `webhooks-modules`) find the hooks it concerns in the hook table and
//! build their payloads; the router sends each delivery over one shared keep-alive HTTP pool,
//! retries what deserves it, records every attempt, counts failures, and the disabler switches
//! off hooks that fail too often.
//!
//! Read in this order: `engine.rs` (publish and what happens after each try), `lanes.rs` (how
//! deliveries are scheduled so one slow destination cannot hold up the others), `sender.rs`
//! (the HTTP client), `disabler.rs`, `attempts.rs`.
//!
//! What an embedder needs: a [`webhooks_core::Store`], a [`webhooks_core::ModuleRegistry`],
//! a shared [`webhooks_core::table::HookTable`] and
//! [`webhooks_core::failures::FailureTracker`] (share them with the API so edits take effect
//! at once), and [`Engine::start`].

mod attempts;
mod config;
mod disabler;
mod engine;
mod follow;
mod lanes;
mod migrate;
pub mod sender;
mod stats;

pub use config::EngineConfig;
pub use engine::{Engine, EngineError, Load};
pub use stats::{EngineStats, StatsSnapshot};
