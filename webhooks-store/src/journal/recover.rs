//! Reading the journal back at start: every segment in order, each record applied to the map
//! of pending deliveries (a later record about a delivery wins; a finished one leaves it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use webhooks_core::pending::{JournalEntry, JournalError, PendingDelivery};

use super::codec::{self, Torn};
use super::io_error;

/// A segment's first bytes: the magic and the next unused id when it was made.
pub(super) const MAGIC: &[u8; 4] = b"WHJ1";
pub(super) const SEGMENT_HEADER: usize = 12;

/// What the segments hold.
pub(super) struct Found {
    /// Segment numbers and paths, oldest first.
    pub(super) segments: Vec<(u64, PathBuf)>,
    /// Unfinished deliveries by id, each with the segment holding its latest `Accepted`.
    pub(super) pending: BTreeMap<u64, (PendingDelivery, u64)>,
    /// Past every id any segment names or reserved.
    pub(super) next_id: u64,
    pub(super) torn_segments: usize,
}

pub(super) fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:016}.journal"))
}

pub(super) fn read_dir(dir: &Path) -> Result<Found, JournalError> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error("listing", dir, e))? {
        let path = entry.map_err(|e| io_error("listing", dir, e))?.path();
        let number = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".journal"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(number) = number {
            segments.push((number, path));
        }
    }
    segments.sort();
    let mut found = Found {
        segments,
        pending: BTreeMap::new(),
        next_id: 1,
        torn_segments: 0,
    };
    for i in 0..found.segments.len() {
        let (number, path) = found.segments[i].clone();
        let bytes = std::fs::read(&path).map_err(|e| io_error("reading", &path, e))?;
        if let Some(torn) = apply_segment(&bytes, number, &mut found) {
            found.torn_segments += 1;
            tracing::warn!(segment = %path.display(), ?torn, "journal segment ends in a damaged record; the records before it are used");
        }
    }
    Ok(found)
}

/// Applies one segment's records; returns why it stopped early, if it did.
fn apply_segment(bytes: &[u8], number: u64, found: &mut Found) -> Option<Torn> {
    if bytes.len() < SEGMENT_HEADER || &bytes[..4] != MAGIC {
        // Made, but its header never reached the disk: nothing was written to it after.
        return None;
    }
    let reserved = u64::from_le_bytes(bytes[4..12].try_into().expect("8 bytes"));
    found.next_id = found.next_id.max(reserved);
    let mut at = SEGMENT_HEADER;
    while at < bytes.len() {
        match codec::decode(&bytes[at..]) {
            Ok((entry, used)) => {
                apply(entry, number, found);
                at += used;
            }
            Err(torn) => return Some(torn),
        }
    }
    None
}

fn apply(entry: JournalEntry, segment: u64, found: &mut Found) {
    match entry {
        JournalEntry::Accepted(p) => {
            found.next_id = found.next_id.max(p.id + 1);
            found.pending.insert(p.id, (p, segment));
        }
        JournalEntry::Retry {
            id,
            tries,
            due_unix_ms,
        } => {
            if let Some((p, _)) = found.pending.get_mut(&id) {
                p.tries = tries;
                p.due_unix_ms = due_unix_ms;
            }
        }
        JournalEntry::Finished { id } => {
            found.pending.remove(&id);
        }
    }
}
