//! Each hook's tries on this node over the last hour, in one-minute buckets (core's
//! `DeliveryCounts`, read by the API for the dashboard). The recorder counts every try; a
//! hook's ring is dropped once it has been idle for the whole hour, so memory follows the
//! hooks that deliver, not all hooks. Sharded, so that tries finishing at once on the two
//! cores rarely wait for one lock.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

use webhooks_core::delivery_stats::{Bucket, HookCounts, BUCKETS, BUCKET_SECS};
use webhooks_core::AccountId;

const SHARDS: usize = 16;

type Key = (AccountId, String);

#[derive(Default)]
pub(crate) struct HookStats {
    shards: [Mutex<Shard>; SHARDS],
    hasher: std::collections::hash_map::RandomState,
}

#[derive(Default)]
struct Shard {
    rings: HashMap<Key, Ring>,
    /// The minute its idle rings were last dropped: once a window at most.
    pruned: i64,
}

/// `BUCKETS` minutes; slot `minute % BUCKETS` holds that minute's counts while `minutes`
/// says it is that minute's.
struct Ring {
    minutes: [i64; BUCKETS],
    counts: [(u32, u32); BUCKETS],
    last: i64,
}

impl Ring {
    fn new() -> Ring {
        Ring {
            minutes: [i64::MIN; BUCKETS],
            counts: [(0, 0); BUCKETS],
            last: i64::MIN,
        }
    }

    fn add(&mut self, minute: i64, succeeded: bool) {
        let slot = minute.rem_euclid(BUCKETS as i64) as usize;
        if self.minutes[slot] != minute {
            self.minutes[slot] = minute;
            self.counts[slot] = (0, 0);
        }
        let c = &mut self.counts[slot];
        if succeeded {
            c.0 = c.0.saturating_add(1);
        } else {
            c.1 = c.1.saturating_add(1);
        }
        self.last = self.last.max(minute);
    }

    /// The last `BUCKETS` minutes up to `now_minute`, oldest first.
    fn buckets(&self, now_minute: i64) -> Vec<Bucket> {
        (now_minute - BUCKETS as i64 + 1..=now_minute)
            .map(|minute| {
                let slot = minute.rem_euclid(BUCKETS as i64) as usize;
                let (succeeded, failed) = match self.minutes[slot] == minute {
                    true => self.counts[slot],
                    false => (0, 0),
                };
                Bucket {
                    start: minute * BUCKET_SECS,
                    succeeded,
                    failed,
                }
            })
            .collect()
    }
}

fn empty(now_minute: i64) -> Vec<Bucket> {
    Ring::new().buckets(now_minute)
}

impl HookStats {
    fn shard(&self, account: &AccountId, hook: &str) -> &Mutex<Shard> {
        // Hashes as the key `(AccountId, String)` does, without building one.
        let hash = self.hasher.hash_one((account, hook));
        &self.shards[(hash as usize) % SHARDS]
    }

    /// Counts one try of a hook at `now` (unix seconds).
    pub(crate) fn record(&self, account: &AccountId, hook: &str, succeeded: bool, now: i64) {
        let minute = now.div_euclid(BUCKET_SECS);
        let mut shard = self
            .shard(account, hook)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if minute - shard.pruned >= BUCKETS as i64 {
            // Once a window, forget the hooks idle for the whole of it.
            shard.pruned = minute;
            shard
                .rings
                .retain(|_, ring| ring.last > minute - BUCKETS as i64);
        }
        let key = (account.clone(), hook.to_owned());
        shard
            .rings
            .entry(key)
            .or_insert_with(Ring::new)
            .add(minute, succeeded);
    }

    pub(crate) fn hook(&self, account: &AccountId, hook: &str, now: i64) -> HookCounts {
        let key = (account.clone(), hook.to_owned());
        let minute = now.div_euclid(BUCKET_SECS);
        let shard = self
            .shard(account, hook)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let buckets = match shard.rings.get(&key) {
            Some(ring) => ring.buckets(minute),
            None => empty(minute),
        };
        HookCounts::from_buckets(buckets)
    }

    pub(crate) fn account(&self, account: &AccountId, now: i64) -> Vec<(String, HookCounts)> {
        let minute = now.div_euclid(BUCKET_SECS);
        let mut out: Vec<(String, HookCounts)> = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for ((a, hook), ring) in shard.rings.iter() {
                if a == account && ring.last > minute - BUCKETS as i64 {
                    out.push((hook.clone(), HookCounts::from_buckets(ring.buckets(minute))));
                }
            }
        }
        out.sort_by(|x, y| x.0.cmp(&y.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a() -> AccountId {
        AccountId::from_bytes([1; 16])
    }

    #[test]
    fn tries_land_in_their_minute_and_age_out_after_an_hour() {
        let s = HookStats::default();
        let t0 = 1_700_000_000 - 1_700_000_000 % 60;
        s.record(&a(), "h", true, t0);
        s.record(&a(), "h", false, t0 + 5);
        s.record(&a(), "h", true, t0 + 60);
        let c = s.hook(&a(), "h", t0 + 61);
        assert_eq!(c.buckets.len(), BUCKETS);
        let last_two = &c.buckets[BUCKETS - 2..];
        assert_eq!(
            (last_two[0].start, last_two[0].succeeded, last_two[0].failed),
            (t0, 1, 1)
        );
        assert_eq!((last_two[1].succeeded, last_two[1].failed), (1, 0));
        assert_eq!(c.success_rate, Some(2.0 / 3.0));
        // An hour later the first minute is out of the window.
        let later = s.hook(&a(), "h", t0 + 3600);
        assert_eq!((later.succeeded, later.failed), (1, 0));
        assert_eq!(s.account(&a(), t0 + 61).len(), 1);
        assert!(s.account(&a(), t0 + 2 * 3600).is_empty());
        assert_eq!(s.hook(&a(), "other", t0).success_rate, None);
    }
}
