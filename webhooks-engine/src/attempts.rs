//! Attempt documents are written off the hot path: senders push them into a bounded queue
//! ([`AttemptQueue`]) and one task, the writer, stores them in batches, one store transaction
//! per batch, two batches at a time (the store prepares one while it writes the other). Under
//! load batches grow by themselves (whatever queued while the last write ran); a small batch
//! waits up to `attempt_linger` (20 ms by default) for company before it is written.
//!
//! A batch the store refuses (it is down) goes to the [`AttemptBacklog`]
//! (`attempt_backlog.rs`), which writes it once the store is back; the writer goes on taking
//! attempts meanwhile, so senders never wait on a store that is down.
//!
//! The writer ends when every [`AttemptQueue`] is gone (the router and its sends have finished)
//! and it has stored what they queued: that is how a shutdown knows every attempt is written.
//!
//! Batches are large (4096 by default) because of how attempts are indexed: each batch adds
//! one entry to the per-hook index of every hook it touches, and SQLite writes every index page
//! it changed, whole, to the WAL and again at the checkpoint. With a thousand busy hooks, a
//! batch of 512 rewrote about one index page per attempt; eight times the batch shares each
//! page between several attempts (BENCHMARKS.md has the figures).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use webhooks_core::{Doc, Store};

use crate::attempt_backlog::AttemptBacklog;
use crate::stats::EngineStats;

/// Where attempt documents go. Cheap to clone; the writer stops once every clone is dropped
/// and the documents are stored.
#[derive(Clone)]
pub(crate) struct AttemptQueue {
    tx: mpsc::Sender<Doc>,
}

impl AttemptQueue {
    /// Queues one document; waits while the queue is full.
    pub(crate) async fn push(&self, doc: Doc) {
        if self.tx.send(doc).await.is_err() {
            // Only after the writer died, which it does not do while a queue exists.
            tracing::error!("attempt writer gone; attempt not recorded");
        }
    }
}

/// How many attempt documents are queued or being written (for `Engine::load`). It holds the
/// queue weakly: a reader of the gauge must not keep the writer from ending.
#[derive(Clone)]
pub(crate) struct AttemptsPending {
    queue: mpsc::WeakSender<Doc>,
    /// Taken from the queue and not yet stored (or given up).
    writing: Arc<AtomicUsize>,
}

impl AttemptsPending {
    pub(crate) fn get(&self) -> usize {
        // A batch the writer has just taken is counted as writing a moment after it left the
        // queue: a reader can see it in neither for that moment (one that waits for zero
        // looks again).
        let writing = self.writing.load(Ordering::Acquire);
        let queued = self
            .queue
            .upgrade()
            .map_or(0, |tx| tx.max_capacity() - tx.capacity());
        writing + queued
    }
}

/// The writer's settings.
pub(crate) struct WriterConfig {
    pub(crate) queue: usize,
    pub(crate) batch: usize,
    pub(crate) linger: Duration,
    /// Attempt documents kept while the store is down, at most.
    pub(crate) backlog: usize,
}

/// Starts the writer; returns the queue, the pending gauge and the writer's task.
pub(crate) fn start_writer(
    store: Arc<dyn Store>,
    config: WriterConfig,
    stats: Arc<EngineStats>,
) -> (AttemptQueue, AttemptsPending, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(config.queue);
    let writing = Arc::new(AtomicUsize::new(0));
    let backlog = Arc::new(AttemptBacklog::new(
        config.backlog,
        stats.clone(),
        writing.clone(),
    ));
    let task = tokio::spawn(write_attempts(
        store,
        rx,
        config.batch,
        config.linger,
        backlog,
        stats,
    ));
    let pending = AttemptsPending {
        queue: tx.downgrade(),
        writing,
    };
    (AttemptQueue { tx }, pending, task)
}

async fn write_attempts(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Doc>,
    batch: usize,
    linger: Duration,
    backlog: Arc<AttemptBacklog>,
    stats: Arc<EngineStats>,
) {
    let writer_done = Arc::new(tokio::sync::Notify::new());
    let retrying = tokio::spawn(backlog.clone().retry(store.clone(), writer_done.clone()));
    let writing = backlog.writing();
    let mut buf = Vec::with_capacity(batch);
    let mut saving = JoinSet::new();
    loop {
        let n = rx.recv_many(&mut buf, batch).await;
        if n == 0 {
            break;
        }
        writing.fetch_add(n, Ordering::Release);
        // A small batch waits a moment for company: every commit rewrites the index pages it
        // touched and syncs the disk, so a hundred commits of ten cost far more than one of a
        // thousand. Only the attempt's write waits, never a delivery.
        if n < batch / 4 {
            let until = tokio::time::Instant::now() + linger;
            while buf.len() < batch {
                let room = batch - buf.len();
                match tokio::time::timeout_at(until, rx.recv_many(&mut buf, room)).await {
                    Ok(0) | Err(_) => break,
                    Ok(m) => {
                        writing.fetch_add(m, Ordering::Release);
                    }
                }
            }
        }
        let docs: Arc<[Doc]> = buf.drain(..).collect();
        // Two batches at once: the store encodes one while it inserts the other.
        if saving.len() >= 2 {
            saving.join_next().await;
        }
        saving.spawn(save_batch(
            store.clone(),
            docs,
            backlog.clone(),
            stats.clone(),
        ));
    }
    while saving.join_next().await.is_some() {}
    writer_done.notify_one();
    if let Err(e) = retrying.await {
        tracing::error!(error = %e, "attempt backlog task failed");
    }
}

/// Writes one batch; one the store refuses goes to the backlog, to be written once it is back.
async fn save_batch(
    store: Arc<dyn Store>,
    docs: Arc<[Doc]>,
    backlog: Arc<AttemptBacklog>,
    stats: Arc<EngineStats>,
) {
    let started = std::time::Instant::now();
    match store.save_attempts(Arc::clone(&docs)).await {
        Ok(()) => {
            stats.attempt_write_latency.observe(started.elapsed());
            backlog.written_directly(docs.len());
        }
        Err(e) => {
            tracing::warn!(error = %e, count = docs.len(), "attempt batch not written; kept until the store is back");
            backlog.keep(docs);
        }
    }
}

/// Deletes attempts older than the retention (gregorian `cutoff`); logs what it did.
pub(crate) async fn prune_once(store: &dyn Store, retention_days: u32) {
    let cutoff = webhooks_core::time::now_gregorian() - retention_days as i64 * 86_400;
    match store.prune_attempts(cutoff).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "pruned old attempts"),
        Err(e) => tracing::warn!(error = %e, "attempt pruning failed"),
    }
}

/// Prunes once an hour (the engine prunes once at start itself, before serving), until
/// `stop`.
pub(crate) async fn prune_attempts(
    store: Arc<dyn Store>,
    retention_days: impl Fn() -> u32,
    stop: CancellationToken,
) {
    let hour = Duration::from_secs(3600);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + hour, hour);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => prune_once(store.as_ref(), retention_days()).await,
        }
    }
}
