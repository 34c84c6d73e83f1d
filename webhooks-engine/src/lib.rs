//! # webhooks-engine: from events to HTTP requests
//!
//! The running half of the webhooks application. [`Engine::publish`] takes a KAZOO event; the
//! registered modules (see `webhooks-modules`) find the hooks it concerns in the hook table and
//! build their payloads; the router sends each delivery over one shared keep-alive HTTP pool,
//! retries what deserves it, records every attempt, counts failures, and the disabler switches
//! off hooks that fail too often.
//!
//! Read in the order of a delivery: `engine.rs` (the parts and how they are wired),
//! `intake.rs` (an event becomes deliveries), `router.rs` (how deliveries are scheduled so one
//! slow destination cannot hold up the others), `sender.rs` (the HTTP client), `recorder.rs`
//! (what happens after each try), `attempts.rs` (the attempt writer); then beside the path,
//! `disabler.rs`, `follow.rs` (the change feed) and `resume.rs` (deliveries a journal kept
//! across a restart). Each file imports only those below it.
//!
//! What an embedder needs: a [`webhooks_core::Store`], a [`webhooks_core::ModuleRegistry`] and
//! [`Engine::start`], or [`Engine::start_with_journal`] for at-least-once delivery (a
//! `webhooks_core::pending::DeliveryJournal` such as `webhooks_store::FileJournal`); give [`Engine::hooks`] to the API so edits take effect at once, and call
//! [`Engine::shutdown`] to stop. The `webhooks-server` crate's `run` does all of it.

mod attempt_backlog;
mod attempts;
mod config;
mod disabler;
mod engine;
mod follow;
mod guard;
mod held;
mod hook_stats;
mod intake;
mod limits;
mod migrate;
mod peers;
mod recorder;
mod resume;
mod router;
pub mod sender;
mod settings;
mod stats;

pub use config::EngineConfig;
pub use engine::{Engine, EngineError, Load};
pub use stats::{FinishedDeliveries, HistogramSnapshot, Latencies, StatsSnapshot, LATENCY_BUCKETS};
