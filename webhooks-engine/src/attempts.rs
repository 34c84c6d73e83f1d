//! Attempt documents are written off the hot path: senders push them into a bounded queue and
//! one task writes them in batches, one store transaction per batch, two batches at a time (the
//! store prepares one while it writes the other). Under load batches grow
//! by themselves (whatever queued while the last write ran); when idle each attempt is written
//! at once.
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
use webhooks_core::{Doc, Store};

use crate::stats::EngineStats;

pub(crate) async fn write_attempts(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Doc>,
    batch: usize,
    linger: Duration,
    stats: Arc<EngineStats>,
    writing: Arc<AtomicUsize>,
) {
    let mut buf = Vec::with_capacity(batch);
    let mut saving = JoinSet::new();
    loop {
        // Counted as writing right after it leaves the queue (no await in between), so
        // `Engine::load` sees it pending until it is stored.
        let n = rx.recv_many(&mut buf, batch).await;
        if n == 0 {
            break;
        }
        writing.fetch_add(n, Ordering::Relaxed);
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
                        writing.fetch_add(m, Ordering::Relaxed);
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
            stats.clone(),
            writing.clone(),
        ));
    }
    while saving.join_next().await.is_some() {}
}

async fn save_batch(
    store: Arc<dyn Store>,
    docs: Arc<[Doc]>,
    stats: Arc<EngineStats>,
    writing: Arc<AtomicUsize>,
) {
    let n = docs.len();
    let mut tries = 0;
    loop {
        match store.save_attempts(Arc::clone(&docs)).await {
            Ok(()) => {
                stats
                    .attempts_written
                    .fetch_add(n as u64, Ordering::Relaxed);
                break;
            }
            Err(e) if tries < 3 => {
                tries += 1;
                tracing::warn!(error = %e, tries, "attempt batch not written, retrying");
                tokio::time::sleep(Duration::from_millis(100 * tries)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, count = n, "attempt batch lost");
                stats.attempts_lost.fetch_add(n as u64, Ordering::Relaxed);
                break;
            }
        }
    }
    writing.fetch_sub(n, Ordering::Relaxed);
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

/// Prunes once an hour (the engine prunes once at start itself, before serving).
pub(crate) async fn prune_attempts(store: Arc<dyn Store>, retention_days: impl Fn() -> u32) {
    let hour = Duration::from_secs(3600);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + hour, hour);
    loop {
        tick.tick().await;
        prune_once(store.as_ref(), retention_days()).await;
    }
}
