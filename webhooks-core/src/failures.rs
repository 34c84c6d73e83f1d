//! Failure counting for auto-disable (spec §8).
//!
//! Every failed try is recorded with its time. The disabler periodically asks which
//! (account, hook) pairs reached their threshold within their window. KAZOO keeps one cache
//! entry per failure keyed by the millisecond (two failures in the same millisecond collapse);
//! we keep each failure, and we expire entries after the window (KAZOO keeps them ~1000x too
//! long: its window is read in milliseconds and the cache expiry in seconds, bug §16.9).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::ids::AccountId;

type Key = (AccountId, String);

/// One hook's failed tries within its window, as `failure-status` prints them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailureCount {
    pub account_id: AccountId,
    pub hook_id: String,
    pub count: usize,
}

/// The running engine's failure counts, for the maintenance commands (`failure-status`,
/// `flush-*`, spec §12) through the API. The engine implements it; a flush reaches every node.
#[async_trait::async_trait]
pub trait FailureDesk: Send + Sync {
    /// Failures within each hook's window (its account's `attempt_failure_expiry_ms`),
    /// sorted by (account, hook); of one account, or of all.
    async fn failure_counts(
        &self,
        account: Option<&AccountId>,
    ) -> crate::store::StoreResult<Vec<FailureCount>>;

    /// Forgets the failures of an account's hooks here and on the other nodes; returns how
    /// many this node had.
    fn flush_account_failures(&self, account: &AccountId) -> usize;

    /// Forgets one hook's failures here and on the other nodes; returns how many this node had.
    fn flush_hook_failures(&self, account: &AccountId, hook: &str) -> usize;
}

/// Failure times per (account, hook), in unix milliseconds. Counts are forgotten only through
/// `LiveHooks` (`live.rs`), which knows when a hook's target changed.
#[derive(Default)]
pub struct FailureTracker {
    inner: Mutex<HashMap<Key, VecDeque<i64>>>,
}

/// Thresholds for one account: disable at `count` failures within `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub count: u32,
    pub window_ms: u64,
}

/// Far more than any threshold needs; bounds memory for a hook failing at a high rate.
const MAX_KEPT_PER_HOOK: usize = 1024;

impl FailureTracker {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, VecDeque<i64>>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(&self, account: &AccountId, hook: &str, now_ms: i64) {
        let mut map = self.lock();
        let q = map.entry((account.clone(), hook.to_owned())).or_default();
        q.push_back(now_ms);
        if q.len() > MAX_KEPT_PER_HOOK {
            q.pop_front();
        }
    }

    /// Forgets a hook's failures (on edit, re-enable, disable); returns how many there were.
    pub(crate) fn flush_hook(&self, account: &AccountId, hook: &str) -> usize {
        self.lock()
            .remove(&(account.clone(), hook.to_owned()))
            .map_or(0, |q| q.len())
    }

    /// Forgets every failure of an account's hooks; returns how many there were.
    pub(crate) fn flush_account(&self, account: &AccountId) -> usize {
        let mut n = 0;
        self.lock().retain(|(a, _), q| {
            if a == account {
                n += q.len();
                false
            } else {
                true
            }
        });
        n
    }

    /// Accounts that have failures now.
    pub fn accounts(&self) -> Vec<AccountId> {
        let mut v: Vec<AccountId> = self.lock().keys().map(|(a, _)| a.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// Failures within each pair's window (`window_ms(account)`), dropping expired ones;
    /// sorted by (account, hook) as KAZOO's `failure_status` prints them.
    pub fn counts(
        &self,
        now_ms: i64,
        window_ms: impl Fn(&AccountId) -> u64,
    ) -> Vec<(AccountId, String, usize)> {
        let mut map = self.lock();
        let mut out = Vec::new();
        map.retain(|(account, hook), q| {
            let since = now_ms - window_ms(account) as i64;
            while q.front().is_some_and(|t| *t <= since) {
                q.pop_front();
            }
            if q.is_empty() {
                return false;
            }
            out.push((account.clone(), hook.clone(), q.len()));
            true
        });
        out.sort();
        out
    }

    /// The pairs to disable now: at least `threshold.count` failures within the window
    /// (`>=`, as KAZOO compares).
    pub fn due_for_disable(
        &self,
        now_ms: i64,
        threshold: impl Fn(&AccountId) -> Threshold,
    ) -> Vec<(AccountId, String, usize)> {
        let mut out = self.counts(now_ms, |a| threshold(a).window_ms);
        out.retain(|(a, _, n)| *n as u64 >= threshold(a).count as u64);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: u8) -> AccountId {
        AccountId::from_bytes([n; 16])
    }

    #[test]
    fn threshold_reached_within_window_only() {
        let t = FailureTracker::new();
        let th = |_: &AccountId| Threshold {
            count: 3,
            window_ms: 1000,
        };
        t.record(&a(1), "h", 0);
        t.record(&a(1), "h", 500);
        assert!(t.due_for_disable(900, th).is_empty());
        t.record(&a(1), "h", 900);
        assert_eq!(t.due_for_disable(950, th), vec![(a(1), "h".into(), 3)]);
        // At 1200 the first failure left the window.
        assert!(t.due_for_disable(1200, th).is_empty());
    }

    #[test]
    fn spread_out_failures_never_disable() {
        let t = FailureTracker::new();
        let th = |_: &AccountId| Threshold {
            count: 3,
            window_ms: 100,
        };
        for i in 0..10 {
            t.record(&a(1), "h", i * 200);
            assert!(t.due_for_disable(i * 200, th).is_empty());
        }
    }

    #[test]
    fn flushes_and_per_account_windows() {
        let t = FailureTracker::new();
        for i in 0..5 {
            t.record(&a(1), "h1", i);
            t.record(&a(1), "h2", i);
            t.record(&a(2), "h3", i);
        }
        let th = |acc: &AccountId| Threshold {
            count: 5,
            window_ms: if *acc == a(2) { 1 } else { 1000 },
        };
        assert_eq!(
            t.due_for_disable(5, th).len(),
            2,
            "account 2's tiny window expired its failures"
        );
        assert_eq!(t.flush_hook(&a(1), "h1"), 5);
        assert_eq!(t.flush_account(&a(1)), 5);
        assert!(t.accounts().is_empty() || t.accounts() == vec![a(2)]);
    }
}
