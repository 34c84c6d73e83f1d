//! A socket's queue of event frames: bounded in frames and in bytes, dropping the oldest when
//! full (a slow reader loses old events, never the daemon's memory), and counting what it drops.
//! KAZOO's master queues without limit; its 4.3 branch drops the newest past 50 (spec §5.2, §15).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::Notify;

pub(crate) struct Outbox {
    queue: Mutex<Queue>,
    max_frames: usize,
    max_bytes: usize,
    /// Woken when a frame is queued.
    pub(crate) ready: Notify,
    dropped: AtomicU64,
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<String>,
    bytes: usize,
}

impl Outbox {
    pub(crate) fn new(max_frames: usize, max_bytes: usize) -> Self {
        Outbox {
            queue: Mutex::new(Queue::default()),
            max_frames: max_frames.max(1),
            max_bytes: max_bytes.max(1),
            ready: Notify::new(),
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues a frame; returns how many older ones it pushed out.
    pub(crate) fn push(&self, frame: String) -> u64 {
        let mut dropped = 0;
        {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.bytes += frame.len();
            q.frames.push_back(frame);
            // The newest stays even when it alone is over the byte bound: it is what the reader
            // is waiting for, and one frame is bounded by the event it carries.
            while q.frames.len() > 1
                && (q.frames.len() > self.max_frames || q.bytes > self.max_bytes)
            {
                let old = q.frames.pop_front().expect("more than one frame");
                q.bytes -= old.len();
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        self.ready.notify_one();
        dropped
    }

    /// Takes every queued frame, oldest first.
    pub(crate) fn take_all(&self) -> VecDeque<String> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.bytes = 0;
        std::mem::take(&mut q.frames)
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_frames_go_first_past_either_bound() {
        let outbox = Outbox::new(3, 1000);
        for i in 0..5 {
            outbox.push(format!("f{i}"));
        }
        assert_eq!(outbox.take_all(), ["f2", "f3", "f4"]);
        assert_eq!(outbox.dropped(), 2);
        let small = Outbox::new(100, 10);
        small.push("aaaaaa".into());
        assert_eq!(small.push("bbbbbb".into()), 1);
        assert_eq!(small.take_all(), ["bbbbbb"]);
        // A frame bigger than the byte bound on its own is still delivered.
        assert_eq!(small.push("x".repeat(50)), 0);
        assert_eq!(small.take_all().len(), 1);
    }
}
