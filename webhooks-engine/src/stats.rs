//! Counters: what the engine did. The engine's parts write them; everyone else reads a
//! [`StatsSnapshot`] through `Engine::stats`.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Monotonic counters, updated lock-free.
        #[derive(Debug, Default)]
        pub(crate) struct EngineStats { $($(#[$doc])* pub(crate) $name: AtomicU64,)* }

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
