//! The journal's one writer thread: takes whatever was staged since its last commit
//! (`staging.rs`), writes it with one `write` and one `fdatasync` (group commit), then tells
//! every appender waiting.
//! It also keeps the count of unfinished deliveries per segment, to delete the oldest segments
//! once they hold none and to copy the last few forward out of old ones.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use webhooks_core::pending::{JournalEntry, JournalError, PendingDelivery};

use super::codec;
use super::recover::{segment_path, Found, MAGIC, SEGMENT_HEADER};
use super::staging::{Batch, Op, Staging};
use super::{io_error, JournalConfig};

/// Journal ids are consecutive integers: a multiply spreads them well enough for a hash table,
/// at a fraction of SipHash's cost (the writer does an insert and a remove per delivery).
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type IdMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

/// An unfinished delivery: where its latest `Accepted` is, and its latest state.
struct Live {
    segment: u64,
    tries: u8,
    due_unix_ms: i64,
}

pub(super) struct Writer {
    dir: PathBuf,
    config: JournalConfig,
    active: File,
    active_number: u64,
    active_len: u64,
    live: IdMap<Live>,
    /// Unfinished deliveries per segment, every segment on disk listed (the active one too).
    per_segment: BTreeMap<u64, usize>,
    buf: Vec<u8>,
}

impl Writer {
    /// Takes over what recovery found: deletes segments with nothing pending, starts a new
    /// active segment. Returns the writer and the pending deliveries, oldest first.
    pub(super) fn start(
        dir: &Path,
        config: JournalConfig,
        found: Found,
    ) -> Result<(Writer, Vec<PendingDelivery>), JournalError> {
        let mut per_segment: BTreeMap<u64, usize> = BTreeMap::new();
        let mut live = IdMap::with_capacity_and_hasher(found.pending.len(), Default::default());
        let mut pending = Vec::with_capacity(found.pending.len());
        for (id, (p, segment)) in found.pending {
            *per_segment.entry(segment).or_default() += 1;
            live.insert(
                id,
                Live {
                    segment,
                    tries: p.tries,
                    due_unix_ms: p.due_unix_ms,
                },
            );
            pending.push(p);
        }
        for (number, _) in &found.segments {
            per_segment.entry(*number).or_default();
        }
        let active_number = found.segments.last().map_or(1, |(n, _)| n + 1);
        let (active, active_len) = create_segment(dir, active_number, found.next_id)?;
        per_segment.insert(active_number, 0);
        let mut writer = Writer {
            dir: dir.to_owned(),
            config,
            active,
            active_number,
            active_len,
            live,
            per_segment,
            buf: Vec::with_capacity(1 << 20),
        };
        writer.remove_finished_head();
        Ok((writer, pending))
    }

    /// Commits what is staged until the journal is closed and nothing is left.
    pub(super) fn run(mut self, staging: &Staging) {
        let mut spare = Batch::default();
        while let Some(mut batch) = staging.take(spare) {
            self.apply(&batch.ops);
            self.buf = std::mem::take(&mut batch.bytes);
            let started = std::time::Instant::now();
            let result = self.commit();
            // At most one commit per `commit_every`: each costs a sync, a disk request and
            // the wake-ups of its waiters whatever its size, so under load fewer, fuller
            // commits leave the cores to the deliveries. An appender waits at most this
            // much longer; deliveries are sent meanwhile.
            let pause = self.config.commit_every.saturating_sub(started.elapsed());
            let c = &staging.counters;
            c.commits.fetch_add(1, Ordering::Relaxed);
            c.records
                .fetch_add(batch.ops.len() as u64, Ordering::Relaxed);
            c.bytes.fetch_add(self.buf.len() as u64, Ordering::Relaxed);
            c.sync_ns
                .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            if let Err(e) = &result {
                tracing::error!(error = %e, "delivery journal write failed");
            }
            staging.committed(batch.epoch, result.err());
            self.after_commit(staging.next_unused_id());
            batch.bytes = std::mem::take(&mut self.buf);
            batch.bytes.clear();
            batch.ops.clear();
            spare = batch;
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
    }

    /// Applies a batch's records to the counts of unfinished deliveries.
    fn apply(&mut self, ops: &[Op]) {
        for op in ops {
            match *op {
                Op::Accepted {
                    id,
                    tries,
                    due_unix_ms,
                } => {
                    self.live.insert(
                        id,
                        Live {
                            segment: self.active_number,
                            tries,
                            due_unix_ms,
                        },
                    );
                    *self.per_segment.entry(self.active_number).or_default() += 1;
                }
                Op::Retry {
                    id,
                    tries,
                    due_unix_ms,
                } => {
                    if let Some(l) = self.live.get_mut(&id) {
                        l.tries = tries;
                        l.due_unix_ms = due_unix_ms;
                    }
                }
                Op::Finished { id } => {
                    if let Some(l) = self.live.remove(&id) {
                        if let Some(count) = self.per_segment.get_mut(&l.segment) {
                            *count = count.saturating_sub(1);
                        }
                    }
                }
            }
        }
    }

    /// Writes the buffer and syncs it. A failed write is cut off the file, so the segment ends
    /// at the last good record.
    fn commit(&mut self) -> Result<(), JournalError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let written = self
            .active
            .write_all(&self.buf)
            .and_then(|()| self.active.sync_data());
        match written {
            Ok(()) => {
                self.active_len += self.buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.active.set_len(self.active_len);
                Err(JournalError(format!(
                    "writing segment {}: {e}",
                    self.active_number
                )))
            }
        }
    }

    /// Deletes the oldest segments while nothing in them is pending; starts a new segment past
    /// the size limit.
    fn after_commit(&mut self, next_id: u64) {
        self.remove_finished_head();
        if self.active_len >= self.config.segment_bytes {
            if let Err(e) = self.rotate(next_id) {
                tracing::error!(error = %e, "delivery journal could not start a new segment");
            }
        }
    }

    /// Deletes segments from the oldest while they hold nothing pending. Only from the oldest:
    /// a segment's `Finished` records cancel `Accepted` ones in older segments, so deleting
    /// it while an older one remains would bring those deliveries back at the next start.
    fn remove_finished_head(&mut self) {
        while let Some((&oldest, &count)) = self.per_segment.iter().next() {
            if oldest == self.active_number || count > 0 {
                return;
            }
            self.remove_segment(oldest);
        }
    }

    fn remove_segment(&mut self, number: u64) {
        self.per_segment.remove(&number);
        let path = segment_path(&self.dir, number);
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(error = %e, segment = %path.display(), "could not remove a finished journal segment");
        }
    }

    /// Starts the next segment (its header: `next_id`, no id handed out so far reaches it),
    /// then copies forward the unfinished deliveries of the oldest segments beyond
    /// `kept_segments`, and deletes those.
    fn rotate(&mut self, next_id: u64) -> Result<(), JournalError> {
        let number = self.active_number + 1;
        let (file, len) = create_segment(&self.dir, number, next_id)?;
        self.active = file;
        self.active_number = number;
        self.active_len = len;
        self.per_segment.insert(number, 0);
        while self.per_segment.len() > self.config.kept_segments + 1 {
            let oldest = *self.per_segment.keys().next().expect("more than one");
            self.carry_forward(oldest)?;
        }
        Ok(())
    }

    /// Re-appends `number`'s unfinished deliveries (at their latest state) to the active
    /// segment, syncs, and deletes `number`.
    fn carry_forward(&mut self, number: u64) -> Result<(), JournalError> {
        let path = segment_path(&self.dir, number);
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| io_error("reading", &path, e))?;
        self.buf.clear();
        let mut at = SEGMENT_HEADER.min(bytes.len());
        let mut carried = 0;
        while let Ok((entry, used)) = codec::decode(&bytes[at..]) {
            at += used;
            let JournalEntry::Accepted(mut p) = entry else {
                continue;
            };
            let Some(l) = self.live.get_mut(&p.id).filter(|l| l.segment == number) else {
                continue;
            };
            p.tries = l.tries;
            p.due_unix_ms = l.due_unix_ms;
            l.segment = self.active_number;
            codec::encode(&JournalEntry::Accepted(p), &mut self.buf);
            carried += 1;
        }
        self.commit()?;
        *self.per_segment.entry(self.active_number).or_default() += carried;
        self.remove_segment(number);
        tracing::info!(segment = number, carried, "journal segment compacted");
        Ok(())
    }
}

/// Creates segment `number` with its header, synced, and syncs the directory so the file
/// itself survives a crash.
fn create_segment(dir: &Path, number: u64, next_id: u64) -> Result<(File, u64), JournalError> {
    let path = segment_path(dir, number);
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(|e| io_error("creating", &path, e))?;
    let mut header = Vec::with_capacity(SEGMENT_HEADER);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&next_id.to_le_bytes());
    file.write_all(&header)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error("writing", &path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("syncing", dir, e))?;
    Ok((file, SEGMENT_HEADER as u64))
}
