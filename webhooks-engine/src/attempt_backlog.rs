//! Attempt batches the store could not take (CouchDB restarting, a network cut), kept until it
//! can. The writer hands a failed batch here and goes on taking new attempts, so senders never
//! wait on a store that is down and deliveries go on from the in-memory table. The backlog is
//! bounded: past `limit` documents the oldest batch is given up, logged and counted as lost.
//! One task retries the oldest batch, backing off from 0.5 s to 5 s, until the writer ends;
//! then it tries what is left a last few times.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use webhooks_core::{Doc, Store};

use crate::stats::EngineStats;

const FIRST_WAIT: Duration = Duration::from_millis(500);
const LONGEST_WAIT: Duration = Duration::from_secs(5);
/// Tries left for the backlog once the writer has ended (a shutdown).
const LAST_TRIES: u32 = 3;

pub(crate) struct AttemptBacklog {
    batches: Mutex<VecDeque<Arc<[Doc]>>>,
    docs: AtomicUsize,
    limit: usize,
    arrived: Notify,
    stats: Arc<EngineStats>,
    /// The writer's gauge of documents taken and not yet stored (or given up).
    writing: Arc<AtomicUsize>,
}

impl AttemptBacklog {
    pub(crate) fn new(limit: usize, stats: Arc<EngineStats>, writing: Arc<AtomicUsize>) -> Self {
        AttemptBacklog {
            batches: Mutex::new(VecDeque::new()),
            docs: AtomicUsize::new(0),
            limit,
            arrived: Notify::new(),
            stats,
            writing,
        }
    }

    /// The writer's gauge (documents taken and not yet stored or given up).
    pub(crate) fn writing(&self) -> Arc<AtomicUsize> {
        self.writing.clone()
    }

    /// A batch the writer stored at its first try.
    pub(crate) fn written_directly(&self, n: usize) {
        self.stats
            .attempts_written
            .fetch_add(n as u64, Ordering::Relaxed);
        self.writing.fetch_sub(n, Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<[Doc]>>> {
        self.batches.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps a batch the store refused; gives up the oldest ones past the limit.
    pub(crate) fn keep(&self, batch: Arc<[Doc]>) {
        let mut batches = self.lock();
        let mut docs = self.docs.load(Ordering::Relaxed) + batch.len();
        batches.push_back(batch);
        while docs > self.limit && batches.len() > 1 {
            let Some(oldest) = batches.pop_front() else {
                break;
            };
            docs -= oldest.len();
            self.give_up(&oldest, "attempt backlog full: oldest batch given up");
        }
        self.docs.store(docs, Ordering::Relaxed);
        drop(batches);
        self.arrived.notify_one();
    }

    fn give_up(&self, batch: &[Doc], why: &str) {
        tracing::error!(count = batch.len(), "{why}");
        let n = batch.len();
        self.stats
            .attempts_lost
            .fetch_add(n as u64, Ordering::Relaxed);
        self.writing.fetch_sub(n, Ordering::Release);
    }

    fn oldest(&self) -> Option<Arc<[Doc]>> {
        self.lock().front().cloned()
    }

    /// The oldest batch was stored: drop it (unless the limit already took it).
    fn stored(&self, batch: &Arc<[Doc]>) {
        let mut batches = self.lock();
        if batches.front().is_some_and(|b| Arc::ptr_eq(b, batch)) {
            batches.pop_front();
            self.docs.fetch_sub(batch.len(), Ordering::Relaxed);
            let n = batch.len();
            self.stats
                .attempts_written
                .fetch_add(n as u64, Ordering::Relaxed);
            self.writing.fetch_sub(n, Ordering::Release);
        }
    }

    /// Retries the oldest batch until the backlog is empty and `writer_done` has fired; then
    /// tries what is left [`LAST_TRIES`] times and gives up the rest.
    pub(crate) async fn retry(self: Arc<Self>, store: Arc<dyn Store>, writer_done: Arc<Notify>) {
        let mut wait = FIRST_WAIT;
        let mut last_tries: Option<u32> = None;
        let done = writer_done.notified();
        tokio::pin!(done);
        loop {
            let Some(batch) = self.oldest() else {
                if last_tries.is_some() {
                    return;
                }
                tokio::select! {
                    _ = &mut done => last_tries = Some(LAST_TRIES),
                    _ = self.arrived.notified() => {}
                }
                continue;
            };
            match store.save_attempts(batch.clone()).await {
                Ok(()) => {
                    if wait > FIRST_WAIT {
                        tracing::info!("the store takes attempts again; writing the backlog");
                    }
                    self.stored(&batch);
                    wait = FIRST_WAIT;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, backlog = self.docs.load(Ordering::Relaxed), "attempt backlog not written yet")
                }
            }
            match &mut last_tries {
                Some(0) => return self.give_up_all(),
                Some(n) => *n -= 1,
                None => {}
            }
            tokio::select! {
                _ = &mut done, if last_tries.is_none() => last_tries = Some(LAST_TRIES),
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(LONGEST_WAIT);
        }
    }

    fn give_up_all(&self) {
        let batches: Vec<_> = self.lock().drain(..).collect();
        self.docs.store(0, Ordering::Relaxed);
        for batch in batches {
            self.give_up(
                &batch,
                "attempt batch lost: the store did not come back before the stop",
            );
        }
    }
}
