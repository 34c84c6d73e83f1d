//! Where appenders leave their records for the writer: one buffer under a mutex, committed as
//! a whole. An append encodes its records into that buffer on the caller's thread, so a
//! hundred thousand appends a second cost the writer nothing but one `write` and one
//! `fdatasync` per commit.
//!
//! Commits are numbered (epochs). An append learns the epoch its bytes will be written in; the
//! writer publishes each epoch's end on a watch channel, and an appender that wants to know
//! its records are durable waits until that epoch is done (and was not a failed one).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use tokio::sync::watch;
use webhooks_core::pending::{JournalEntry, JournalError};

use super::codec;

/// What the writer must know of each record besides its bytes (to count unfinished deliveries
/// per segment).
#[derive(Debug, Clone, Copy)]
pub(super) enum Op {
    Accepted {
        id: u64,
        tries: u8,
        due_unix_ms: i64,
    },
    Retry {
        id: u64,
        tries: u8,
        due_unix_ms: i64,
    },
    Finished {
        id: u64,
    },
}

impl Op {
    fn of(entry: &JournalEntry) -> Op {
        match entry {
            JournalEntry::Accepted(p) => Op::Accepted {
                id: p.id,
                tries: p.tries,
                due_unix_ms: p.due_unix_ms,
            },
            JournalEntry::Retry {
                id,
                tries,
                due_unix_ms,
            } => Op::Retry {
                id: *id,
                tries: *tries,
                due_unix_ms: *due_unix_ms,
            },
            JournalEntry::Finished { id } => Op::Finished { id: *id },
        }
    }
}

/// One commit's worth of records.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) bytes: Vec<u8>,
    pub(super) ops: Vec<Op>,
    pub(super) epoch: u64,
}

struct Pending {
    batch: Batch,
    closed: bool,
}

/// Epochs whose commit failed, remembered for a while so their appenders learn it.
const FAILED_KEPT: usize = 1024;

/// What the writer has done, for [`super::FileJournal::stats`].
#[derive(Default)]
pub(super) struct Counters {
    pub(super) commits: AtomicU64,
    pub(super) records: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) sync_ns: AtomicU64,
}

pub(super) struct Staging {
    pub(super) counters: Counters,
    /// The next journal id to hand out ([`super::FileJournal`]'s `new_ids`); segment headers
    /// record it, so ids stay unique after the segments that named them are gone.
    next_id: AtomicU64,
    pending: Mutex<Pending>,
    wake: Condvar,
    done: watch::Sender<u64>,
    failed: Mutex<VecDeque<(u64, JournalError)>>,
}

impl Staging {
    pub(super) fn new(next_id: u64) -> Staging {
        Staging {
            counters: Counters::default(),
            next_id: AtomicU64::new(next_id),
            pending: Mutex::new(Pending {
                batch: Batch {
                    epoch: 1,
                    ..Batch::default()
                },
                closed: false,
            }),
            wake: Condvar::new(),
            done: watch::Sender::new(0),
            failed: Mutex::new(VecDeque::new()),
        }
    }

    /// `n` fresh consecutive ids; the first.
    pub(super) fn new_ids(&self, n: usize) -> u64 {
        self.next_id.fetch_add(n as u64, Ordering::Relaxed)
    }

    /// Past every id handed out so far.
    pub(super) fn next_unused_id(&self) -> u64 {
        self.next_id.load(Ordering::Relaxed)
    }

    /// Stages the entries; returns the epoch they will be committed in, or `None` once closed.
    pub(super) fn append(&self, entries: &[JournalEntry]) -> Option<u64> {
        let mut p = lock(&self.pending);
        if p.closed {
            return None;
        }
        let was_empty = p.batch.ops.is_empty();
        // Encoded straight into the batch: a copy and a CRC under the lock, no buffer of
        // its own per append.
        for e in entries {
            codec::encode(e, &mut p.batch.bytes);
        }
        p.batch.ops.extend(entries.iter().map(Op::of));
        let epoch = p.batch.epoch;
        drop(p);
        if was_empty {
            self.wake.notify_one();
        }
        Some(epoch)
    }

    /// Waits until epoch `epoch` is committed.
    pub(super) async fn durable(&self, epoch: u64) -> Result<(), JournalError> {
        let mut done = self.done.subscribe();
        if done.wait_for(|d| *d >= epoch).await.is_err() {
            return Err(JournalError("the journal's writer stopped".into()));
        }
        match lock(&self.failed).iter().find(|(e, _)| *e == epoch) {
            Some((_, error)) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// The writer's side: waits for records and takes them, leaving `spare` (emptied) to
    /// fill next. `None` once closed and empty.
    pub(super) fn take(&self, spare: Batch) -> Option<Batch> {
        let mut p = lock(&self.pending);
        while p.batch.ops.is_empty() && !p.closed {
            p = self.wake.wait(p).unwrap_or_else(|e| e.into_inner());
        }
        if p.batch.ops.is_empty() {
            return None;
        }
        let next = Batch {
            bytes: spare.bytes,
            ops: spare.ops,
            epoch: p.batch.epoch + 1,
        };
        Some(std::mem::replace(&mut p.batch, next))
    }

    /// The writer's side: epoch `epoch` is written (or failed with `error`).
    pub(super) fn committed(&self, epoch: u64, error: Option<JournalError>) {
        if let Some(error) = error {
            let mut failed = lock(&self.failed);
            if failed.len() == FAILED_KEPT {
                failed.pop_front();
            }
            failed.push_back((epoch, error));
        }
        self.done.send_replace(epoch);
    }

    /// No more appends; the writer commits what is staged and stops.
    pub(super) fn close(&self) {
        lock(&self.pending).closed = true;
        self.wake.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
