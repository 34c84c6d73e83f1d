//! Deliveries that are accepted and not yet finished, kept where a crash cannot take them: the
//! [`DeliveryJournal`] (issue 13). An event is acknowledged (a 202, an AMQP ack,
//! `Engine::publish` returning) only once the journal holds its deliveries; each delivery is
//! marked finished when it succeeded or failed for good, and its next try is noted when it is
//! to be retried. After a restart the journal hands back what was not finished, with each
//! one's tries so far and due time, and the engine goes on from there.
//!
//! `webhooks-store` has the file-backed journal (an append-only log with group commit); the
//! trait is here so the engine needs nothing but it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::delivery::HttpRequest;
use crate::ids::AccountId;

/// One accepted delivery as the journal keeps it: enough to send it again after a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDelivery {
    /// The journal's handle for it ([`DeliveryJournal::new_ids`]).
    pub id: u64,
    /// The `webhook-id` receivers deduplicate on.
    pub webhook_id: String,
    /// KAZOO's `event_id` of its attempt documents.
    pub event_id: String,
    pub hook_id: String,
    pub account_id: AccountId,
    pub request: Arc<HttpRequest>,
    /// Tries made so far.
    pub tries: u8,
    /// When the next try is due (unix milliseconds; 0: at once).
    pub due_unix_ms: i64,
}

/// What the journal is told, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum JournalEntry {
    /// A delivery was accepted.
    Accepted(PendingDelivery),
    /// A try failed; the next one is due at `due_unix_ms`.
    Retry {
        id: u64,
        tries: u8,
        due_unix_ms: i64,
    },
    /// Succeeded, or failed for good: nothing more to send.
    Finished { id: u64 },
}

/// Why the journal could not make entries durable (the disk refused the write or the sync).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("delivery journal: {0}")]
pub struct JournalError(pub String);

/// Completes once the entries of an [`DeliveryJournal::append`], and everything appended
/// before them, are durable.
pub type Durable = Pin<Box<dyn Future<Output = Result<(), JournalError>> + Send>>;

/// Where accepted deliveries are kept until they are finished.
pub trait DeliveryJournal: Send + Sync {
    /// `n` fresh ids, consecutive from the one returned, never given out before (not even
    /// before a restart).
    fn new_ids(&self, n: usize) -> u64;

    /// Appends entries in order. They are written with the next group commit whether or not
    /// the returned future is awaited; awaiting it waits for that commit.
    fn append(&self, entries: Vec<JournalEntry>) -> Durable;

    /// Appends one entry nobody waits for (a delivery finished, a retry's time): written
    /// with the next group commit.
    fn note(&self, entry: JournalEntry) {
        drop(self.append(vec![entry]));
    }

    /// The deliveries that were pending when the journal was opened, each at its latest state
    /// (tries, due time), oldest first. Handed out once; later calls return nothing.
    fn take_recovered(&self) -> Vec<PendingDelivery>;
}
