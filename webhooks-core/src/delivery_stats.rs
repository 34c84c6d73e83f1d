//! What each hook's deliveries came to lately, as the API shows it (`.../webhooks/{H}/stats`,
//! the dashboard's chart and success rate). The engine counts; this is the shape and the
//! narrow handle the API holds.

use serde::Serialize;

use crate::ids::AccountId;

/// Width of one bucket, in seconds, and how many buckets are kept (an hour of minutes).
pub const BUCKET_SECS: i64 = 60;
pub const BUCKETS: usize = 60;

/// One minute of a hook's tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Its first second, unix time.
    pub start: i64,
    pub succeeded: u32,
    pub failed: u32,
}

/// A hook's tries over the last [`BUCKETS`] buckets, oldest first, every bucket present.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookCounts {
    pub bucket_s: i64,
    pub buckets: Vec<Bucket>,
    pub succeeded: u64,
    pub failed: u64,
    /// `succeeded / (succeeded + failed)`; `None` when there was no try.
    pub success_rate: Option<f64>,
}

impl HookCounts {
    /// Totals and rate from the buckets.
    pub fn from_buckets(buckets: Vec<Bucket>) -> HookCounts {
        let succeeded: u64 = buckets.iter().map(|b| u64::from(b.succeeded)).sum();
        let failed: u64 = buckets.iter().map(|b| u64::from(b.failed)).sum();
        let tries = succeeded + failed;
        HookCounts {
            bucket_s: BUCKET_SECS,
            buckets,
            succeeded,
            failed,
            success_rate: (tries > 0).then(|| succeeded as f64 / tries as f64),
        }
    }
}

/// The counts a node keeps (the engine implements it). Each node counts the tries it made.
pub trait DeliveryCounts: Send + Sync {
    /// One hook's counts (all zero when it made no try lately).
    fn hook_counts(&self, account: &AccountId, hook: &str) -> HookCounts;
    /// The counts of every hook of the account that made a try lately, by hook id.
    fn account_counts(&self, account: &AccountId) -> Vec<(String, HookCounts)>;
}

/// One try, as the engine reports it to whoever watches deliveries live (the websockets hub's
/// `webhooks.delivery.*` bindings).
#[derive(Debug, Clone, Copy)]
pub struct TryReport<'a> {
    pub account: &'a AccountId,
    pub hook: &'a str,
    pub webhook_id: &'a str,
    pub uri: &'a str,
    pub succeeded: bool,
    /// The answer's status, when there was an answer.
    pub status: Option<u16>,
    /// The transport error, when there was no answer.
    pub error: Option<&'a str>,
    pub latency_ms: Option<u64>,
    /// Which try of its delivery this was (1 for the first).
    pub attempt: u8,
    /// True when no further try follows (it succeeded, or failed for good).
    pub last: bool,
}

/// Told of every try as it finishes (the engine calls it on the delivery path: it must not
/// wait).
pub trait TryObserver: Send + Sync {
    fn tried(&self, report: &TryReport<'_>);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_and_rate_come_from_the_buckets() {
        let b = |s, f| Bucket {
            start: 0,
            succeeded: s,
            failed: f,
        };
        let c = HookCounts::from_buckets(vec![b(3, 1), b(0, 0), b(0, 4)]);
        assert_eq!((c.succeeded, c.failed), (3, 5));
        assert_eq!(c.success_rate, Some(3.0 / 8.0));
        assert_eq!(HookCounts::from_buckets(vec![b(0, 0)]).success_rate, None);
    }
}
