//! Counters: what the engine did. The engine's parts write them; everyone else reads a
//! [`StatsSnapshot`] through `Engine::stats`, and what plain counters cannot hold (finished
//! deliveries by result and answer, latency histograms) through `Engine::finished` and
//! `Engine::latencies`. Nothing here knows an exporter: `webhooks-metrics` reads these.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Monotonic counters, updated lock-free.
        #[derive(Debug, Default)]
        pub(crate) struct EngineStats {
            $($(#[$doc])* pub(crate) $name: AtomicU64,)*
            /// Finished deliveries by result and class of the last answer.
            pub(crate) finished: Finished,
            /// From the moment a try was due to its outcome (see [`Latencies::delivery`]).
            pub(crate) delivery_latency: Histogram,
            /// One attempt batch's write to the store.
            pub(crate) attempt_write_latency: Histogram,
        }

        /// A copy of the counters at one moment.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct StatsSnapshot { $($(#[$doc])* pub $name: u64,)* }

        impl EngineStats {
            pub(crate) fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }

        impl StatsSnapshot {
            /// `(name, value)` pairs, for logs and exporters.
            pub fn pairs(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)*]
            }
        }
    };
}

counters! {
    /// Events handed to `publish`.
    events_received,
    /// Malformed events refused (bad or missing headers).
    events_rejected,
    /// Valid events dropped because they name no account.
    events_without_account,
    /// Valid events no module answers.
    events_unhandled,
    /// Deliveries created (one per event and hook).
    deliveries_dispatched,
    /// Deliveries that ended in a 2xx.
    deliveries_succeeded,
    /// Deliveries that ended in failure after their last try.
    deliveries_failed,
    /// Failed tries (each counts towards auto-disable).
    tries_failed,
    /// Retries scheduled.
    retries_scheduled,
    /// Queued deliveries and retries dropped because their hook was disabled, deleted or
    /// edited meanwhile.
    deliveries_cancelled,
    /// Hooks the disabler switched off.
    hooks_disabled,
    /// Attempt documents written.
    attempts_written,
    /// Attempt documents the store refused (logged).
    attempts_lost,
    /// Deliveries a shutdown ended before they were sent or answered (each has a failed
    /// attempt recorded; with a journal they are sent again after the restart).
    deliveries_cut_by_shutdown,
    /// Retries that were waiting for their time when the engine shut down (their earlier
    /// try is recorded; with a journal they go on after the restart).
    retries_dropped_by_shutdown,
    /// Events not acknowledged because the journal could not make their deliveries durable.
    events_not_durable,
    /// Deliveries the journal held at start and the engine took up again.
    deliveries_resumed,
    /// Hooks disabled at once because their receiver answered 410 Gone.
    hooks_gone,
}

pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// How a finished delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeliveryResult {
    Succeeded = 0,
    Failed = 1,
}

const RESULTS: [&str; 2] = ["succeeded", "failed"];

/// The classes of a last answer; `none`: no answer (refused, timed out, cut by a shutdown).
const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

fn status_class(status: Option<u16>) -> usize {
    match status {
        Some(s @ 100..=599) => usize::from(s / 100) - 1,
        _ => STATUS_CLASSES.len() - 1,
    }
}

/// Finished deliveries, by result and by the class of their last answer.
#[derive(Debug, Default)]
pub(crate) struct Finished([[AtomicU64; STATUS_CLASSES.len()]; RESULTS.len()]);

impl Finished {
    pub(crate) fn count(&self, result: DeliveryResult, status: Option<u16>) {
        inc(&self.0[result as usize][status_class(status)]);
    }

    fn snapshot(&self) -> Vec<FinishedDeliveries> {
        let mut out = Vec::with_capacity(RESULTS.len() * STATUS_CLASSES.len());
        for (r, row) in self.0.iter().enumerate() {
            for (c, n) in row.iter().enumerate() {
                out.push(FinishedDeliveries {
                    result: RESULTS[r],
                    status_class: STATUS_CLASSES[c],
                    count: n.load(Ordering::Relaxed),
                });
            }
        }
        out
    }
}

/// How many deliveries finished with one result (`succeeded`, `failed`) and one class of last
/// answer (`2xx` ... `5xx`, or `none` when there was no answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedDeliveries {
    pub result: &'static str,
    pub status_class: &'static str,
    pub count: u64,
}

/// Upper bounds of the latency buckets, in seconds: from a loopback answer (well under a
/// millisecond) to KAZOO's request timeout (10 s) and beyond.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// A latency histogram with fixed buckets, updated lock-free (two atomic adds an
/// observation).
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    /// One per bucket of [`LATENCY_BUCKETS`], then one for what is above them all.
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub(crate) fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let bucket = LATENCY_BUCKETS.partition_point(|&upper| upper < secs);
        inc(&self.counts[bucket]);
        self.sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        HistogramSnapshot {
            bounds: &LATENCY_BUCKETS,
            count: counts.iter().sum(),
            counts,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// A histogram at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// The buckets' upper bounds, in seconds.
    pub bounds: &'static [f64],
    /// Observations per bucket (not cumulative), one more than `bounds`: the last counts
    /// those above every bound.
    pub counts: Vec<u64>,
    /// Every observation added up, in seconds.
    pub sum_seconds: f64,
    pub count: u64,
}

/// The engine's latency histograms.
#[derive(Debug, Clone, PartialEq)]
pub struct Latencies {
    /// From the moment a try could be sent (its event accepted, or its retry or resumed
    /// delivery due) to its outcome being recorded: the wait for a slot or a rate limit plus
    /// the HTTP exchange.
    pub delivery: HistogramSnapshot,
    /// Writing one batch of attempt documents to the store.
    pub attempt_write: HistogramSnapshot,
}

impl EngineStats {
    pub(crate) fn finished(&self) -> Vec<FinishedDeliveries> {
        self.finished.snapshot()
    }

    pub(crate) fn latencies(&self) -> Latencies {
        Latencies {
            delivery: self.delivery_latency.snapshot(),
            attempt_write: self.attempt_write_latency.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_are_the_hundreds_and_none_without_an_answer() {
        assert_eq!(STATUS_CLASSES[status_class(Some(204))], "2xx");
        assert_eq!(STATUS_CLASSES[status_class(Some(410))], "4xx");
        assert_eq!(STATUS_CLASSES[status_class(Some(599))], "5xx");
        assert_eq!(STATUS_CLASSES[status_class(None)], "none");
        assert_eq!(STATUS_CLASSES[status_class(Some(700))], "none");
    }

    #[test]
    fn finished_deliveries_are_counted_in_their_cell() {
        let f = Finished::default();
        f.count(DeliveryResult::Succeeded, Some(200));
        f.count(DeliveryResult::Failed, Some(503));
        f.count(DeliveryResult::Failed, Some(503));
        let got: Vec<_> = f.snapshot().into_iter().filter(|c| c.count > 0).collect();
        assert_eq!(
            got,
            vec![
                FinishedDeliveries {
                    result: "succeeded",
                    status_class: "2xx",
                    count: 1
                },
                FinishedDeliveries {
                    result: "failed",
                    status_class: "5xx",
                    count: 2
                },
            ]
        );
    }

    #[test]
    fn an_observation_lands_in_the_first_bucket_that_holds_it() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300)); // <= 0.5 ms
        h.observe(Duration::from_millis(1)); // == 1 ms: bounds are inclusive
        h.observe(Duration::from_secs(120)); // above every bound
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.counts[0], 1);
        assert_eq!(s.counts[1], 1);
        assert_eq!(s.counts[LATENCY_BUCKETS.len()], 1);
        assert!((s.sum_seconds - 120.0013).abs() < 1e-9);
    }
}
