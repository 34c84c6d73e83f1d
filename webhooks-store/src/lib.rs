//! # webhooks-store: where the engine's documents live
//!
//! `webhooks-core` describes storage as a handful of small traits ([`AccountStore`],
//! [`HookStore`], [`AttemptStore`], [`ConfigStore`], [`AuthKeyStore`], [`DefinitionStore`]
//! (KAZOO's `webhook_meta` hook definitions in the master account), together [`Store`]) and
//! does no I/O itself.
//! This crate holds the adapters that implement those traits against a real backend, so the
//! engine, the API and the CLI can be handed any of them through the [`Store`] trait and never
//! learn which one it is.
//!
//! Every adapter keeps KAZOO's document layout untouched (`_id`, `_rev`, `pvt_*`, unknown public
//! fields) and follows CouchDB's revision rule, so that data can move between a KAZOO cluster and
//! this engine without translation.
//!
//! Start reading with [`EmbeddedStore`]: the default adapter, an SQLite file in the data
//! directory. It needs no server and survives a `kill -9` without losing a committed write.
//!
//! [`CouchStore`] keeps the same documents in KAZOO's own CouchDB layout (the `webhooks`
//! database, account databases and their copies in `accounts`, monthly databases for
//! attempts), so the engine can share a cluster with KAZOO. Its tests run against a real
//! CouchDB-compatible server (PouchDB Server, started by `webhooks-testkit`).
//!
//! [`FileJournal`] is not a document store: it is the engine's delivery journal (core's
//! `DeliveryJournal`), an append-only log on the local disk that keeps every accepted delivery
//! until it is finished, so nothing acknowledged is lost in a crash. Beside either store.
//!
//! [`contract`] is the traits' behaviour as a test suite: every adapter runs it with one line,
//! [`store_contract_tests!`], so they all keep the same rules.
//!
//! [`AccountStore`]: webhooks_core::store::AccountStore
//! [`HookStore`]: webhooks_core::store::HookStore
//! [`AttemptStore`]: webhooks_core::store::AttemptStore
//! [`ConfigStore`]: webhooks_core::store::ConfigStore
//! [`AuthKeyStore`]: webhooks_core::store::AuthKeyStore
//! [`DefinitionStore`]: webhooks_core::store::DefinitionStore
//! [`Store`]: webhooks_core::store::Store

pub mod contract;
pub mod couch;
pub mod embedded;
pub mod journal;

pub use couch::{CouchConfig, CouchStore};
pub use embedded::EmbeddedStore;
pub use journal::{FileJournal, JournalConfig, JournalStats};
