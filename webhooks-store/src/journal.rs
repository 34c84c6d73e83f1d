//! The delivery journal (core's [`DeliveryJournal`]) on the local disk: an append-only log of
//! deliveries accepted, retried and finished, written by one thread with group commit.
//!
//! Appending encodes the records on the caller's thread and copies them into a staging
//! buffer (`journal/staging.rs`); the writer thread takes the whole buffer at once.
//!
//! Why a log and not the SQLite file: an accepted event must be durable before it is
//! acknowledged, and at tens of thousands of deliveries a second that is a write path of its
//! own. Appending a record costs a copy and a CRC; one `fdatasync` makes everything queued
//! meanwhile durable (BENCHMARKS.md: a sync here takes about 0.12 ms, so one per batch keeps
//! the disk idle most of the time whatever the rate), while an indexed B-tree insert costs
//! tens of microseconds per row. Nothing in the journal is ever queried; it is only read back
//! whole at start.
//!
//! Layout: `<dir>/<number>.journal` segments, each starting with `WHJ1` and the next unused id
//! when it was made (so ids stay unique even after every older segment is gone), then records
//! (`journal/codec.rs`). The writer appends to the newest; past `segment_bytes` it starts
//! another. The oldest segment is deleted once its deliveries have all finished (only the
//! oldest: a segment's `Finished` records cancel older segments' `Accepted` ones); when more
//! than `kept_segments` older ones remain, the oldest one's unfinished deliveries are copied
//! forward (with their latest tries and due time) and it is deleted, so a retry waiting for a
//! day cannot pin the log's size.
//!
//! Reading back (`recover.rs`): segments in order, later records winning; a torn record ends
//! its segment (a crash mid-write loses only entries nobody was told were durable).

mod codec;
mod recover;
mod staging;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use staging::Staging;

use webhooks_core::pending::{
    DeliveryJournal, Durable, JournalEntry, JournalError, PendingDelivery,
};

/// How the journal sizes its files.
#[derive(Debug, Clone, Copy)]
pub struct JournalConfig {
    /// A segment past this size is closed and a new one started.
    pub segment_bytes: u64,
    /// Closed segments kept before the oldest one's unfinished deliveries are copied forward.
    pub kept_segments: usize,
    /// The shortest time from one commit's start to the next's (group commit's window): what
    /// arrives meanwhile shares the next sync.
    pub commit_every: std::time::Duration,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            segment_bytes: 64 << 20,
            kept_segments: 3,
            commit_every: std::time::Duration::from_millis(1),
        }
    }
}

/// What was found when the journal was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenReport {
    pub segments_read: usize,
    pub pending: usize,
    /// Records after which a segment could not be read further (torn by a crash, or damaged).
    pub torn_segments: usize,
}

/// What the journal's writer has done since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JournalStats {
    /// Group commits: one `write` and one `fdatasync` each.
    pub commits: u64,
    pub records: u64,
    pub bytes: u64,
    /// Time spent writing and syncing, in all.
    pub write_seconds: f64,
}

/// The file-backed journal. Dropping it writes what was appended and stops its thread.
pub struct FileJournal {
    staging: Arc<Staging>,
    recovered: Mutex<Vec<PendingDelivery>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    report: OpenReport,
    /// Held (locked) while the journal is open: one process per journal.
    _lock: std::fs::File,
}

impl FileJournal {
    /// Opens (or creates) the journal in `dir`, reads back what is pending and starts the
    /// writer thread.
    pub fn open(dir: &Path, config: JournalConfig) -> Result<FileJournal, JournalError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("creating", dir, e))?;
        let lock = lock_dir(dir)?;
        let found = recover::read_dir(dir)?;
        let report = OpenReport {
            segments_read: found.segments.len(),
            pending: found.pending.len(),
            torn_segments: found.torn_segments,
        };
        let staging = Arc::new(Staging::new(found.next_id));
        let (writer, recovered) = writer::Writer::start(dir, config, found)?;
        let shared = staging.clone();
        let thread = std::thread::Builder::new()
            .name("delivery-journal".into())
            .spawn(move || writer.run(&shared))
            .map_err(|e| JournalError(format!("starting the writer thread: {e}")))?;
        Ok(FileJournal {
            staging,
            recovered: Mutex::new(recovered),
            thread: Mutex::new(Some(thread)),
            report,
            _lock: lock,
        })
    }

    pub fn stats(&self) -> JournalStats {
        let c = &self.staging.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        JournalStats {
            commits: get(&c.commits),
            records: get(&c.records),
            bytes: get(&c.bytes),
            write_seconds: get(&c.sync_ns) as f64 / 1e9,
        }
    }

    /// What opening found.
    pub fn open_report(&self) -> OpenReport {
        self.report
    }

    /// Writes what was appended, then stops the writer thread. Appends after this fail.
    pub fn close(&self) {
        self.staging.close();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for FileJournal {
    fn drop(&mut self) {
        self.close();
    }
}

impl DeliveryJournal for FileJournal {
    fn new_ids(&self, n: usize) -> u64 {
        self.staging.new_ids(n)
    }

    fn append(&self, entries: Vec<JournalEntry>) -> Durable {
        let epoch = self.staging.append(&entries);
        let staging = self.staging.clone();
        Box::pin(async move {
            match epoch {
                Some(epoch) => staging.durable(epoch).await,
                None => Err(JournalError("the journal is closed".into())),
            }
        })
    }

    fn note(&self, entry: JournalEntry) {
        // Closed: the engine is past its end; nothing more is written.
        let _ = self.staging.append(std::slice::from_ref(&entry));
    }

    fn take_recovered(&self) -> Vec<PendingDelivery> {
        std::mem::take(&mut *lock(&self.recovered))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Locks `dir/LOCK`, so a second daemon on the same data directory is refused rather than
/// writing into (and deleting) the first one's segments. The lock goes with the process.
fn lock_dir(dir: &Path) -> Result<std::fs::File, JournalError> {
    let path = dir.join("LOCK");
    let file = std::fs::File::create(&path).map_err(|e| io_error("creating", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(JournalError(format!(
            "{} is in use by another process (one daemon per data directory)",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(io_error("locking", &path, e)),
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> JournalError {
    JournalError(format!("{what} {}: {e}", path.display()))
}
