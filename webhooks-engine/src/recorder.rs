//! What happens after each try (spec §7): a success ends the delivery; a failure is counted
//! towards auto-disable, recorded as an attempt document and, when it deserves a retry and has
//! tries left, handed back to the router with its due time (the hook's schedule, or longer if
//! the receiver asked with `Retry-After`). A `410 Gone` ends the delivery and has the hook
//! disabled at once. With a delivery journal, each end is noted there (finished, or the next
//! try's time), so a restart goes on from the same place.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use webhooks_core::delivery::{attempt_doc, Delivery, Outcome};
use webhooks_core::delivery_stats::{TryObserver, TryReport};
use webhooks_core::live::LiveHooks;
use webhooks_core::pending::{DeliveryJournal, JournalEntry};
use webhooks_core::retry::honour_retry_after;
use webhooks_core::AccountId;

use crate::attempts::AttemptQueue;
use crate::hook_stats::HookStats;
use crate::intake::Job;
use crate::peers::Peers;
use crate::settings::Settings;
use crate::stats::{inc, DeliveryResult, EngineStats};

/// A hook whose receiver answered `410 Gone`: to be disabled now, with this reason.
pub(crate) struct GoneHook {
    pub(crate) account: AccountId,
    pub(crate) hook: String,
}

/// The reason a hook disabled by a `410 Gone` shows (`pvt_disabled_message`).
pub(crate) const GONE_MESSAGE: &str = "the receiver answered 410 Gone";

/// Records tries. Cheap to clone: each send holds one.
#[derive(Clone)]
pub(crate) struct TryRecorder {
    pub(crate) hooks: Arc<LiveHooks>,
    pub(crate) attempts: AttemptQueue,
    pub(crate) settings: Settings,
    pub(crate) stats: Arc<EngineStats>,
    /// The other nodes, told about every failed try so they count it too.
    pub(crate) peers: Arc<Peers>,
    /// Each hook's tries of the last hour, for the API.
    pub(crate) hook_stats: Arc<HookStats>,
    /// Whoever watches tries live (the websockets hub), once attached.
    pub(crate) observer: Arc<arc_swap::ArcSwapOption<Box<dyn TryObserver>>>,
    /// Where each delivery's end or next try is noted (at-least-once), if anywhere.
    pub(crate) journal: Option<Arc<dyn DeliveryJournal>>,
    /// KAZOO's fixed wait between tries (the default schedule).
    pub(crate) retry_delay: Duration,
    /// Hooks to disable at once (the disabler takes them).
    pub(crate) gone: mpsc::UnboundedSender<GoneHook>,
    /// Once cancelled (shutdown), no retry is scheduled here: with a journal the delivery
    /// stays pending there and goes on after the restart; without one, the failure is final.
    pub(crate) stop: CancellationToken,
}

impl TryRecorder {
    /// Records one try's outcome; returns the job, due again, when it should be tried again.
    /// `took` is how long the request took, when one was sent.
    pub(crate) async fn after_try(
        &self,
        mut job: Job,
        outcome: Outcome,
        took: Option<Duration>,
    ) -> Option<Job> {
        let d = &mut job.delivery;
        let tries_left_before = d.tries_left();
        d.tries += 1;
        let now = webhooks_core::time::now_unix();
        let (account, hook) = (&d.hook.account_id, d.hook.id.as_str());
        self.hook_stats
            .record(account, hook, outcome.is_success(), now);
        // Ours (KAZOO's attempts have no timing): the request's own time, answer read.
        let with_latency = |mut doc: webhooks_core::Doc| {
            if let Some(took) = took {
                doc.set("latency_ms", took.as_millis() as u64);
            }
            doc
        };
        self.stats
            .delivery_latency
            .observe(Instant::now().saturating_duration_since(job.since));
        if outcome.is_success() {
            self.report(d, &outcome, took, true);
            inc(&self.stats.deliveries_succeeded);
            self.stats
                .finished
                .count(DeliveryResult::Succeeded, outcome.status());
            // A replay's success is always recorded: a later recovery reads it to know the
            // delivery arrived.
            if self.settings.log_successful_attempts() || d.replay {
                let doc = attempt_doc(d, &outcome, tries_left_before, now);
                self.attempts.push(with_latency(doc)).await;
            }
            self.note(&job, JournalNote::Finished);
            return None;
        }
        let failed_at = webhooks_core::time::now_unix_ms();
        self.hooks
            .record_failure(&d.hook.account_id, &d.hook.id, failed_at);
        self.peers.failed(&d.hook.account_id, &d.hook.id, failed_at);
        inc(&self.stats.tries_failed);
        tracing::debug!(account = %d.hook.account_id, hook = %d.hook.id, uri = %d.hook.uri, webhook_id = %d.webhook_id, ?outcome, "delivery try failed");
        // Read once: the stop may come while this runs, and the attempt must say what happened.
        let stopping = self.stop.is_cancelled();
        let tried_again = outcome.status() != Some(410)
            && outcome.is_retryable()
            && d.tries_left() > 0
            && (!stopping || self.journal.is_some());
        self.report(d, &outcome, took, !tried_again);
        let mut doc = attempt_doc(d, &outcome, tries_left_before, now);
        // What a recovery asks of the attempts: was this the delivery's last try?
        doc.set(webhooks_core::replay::FINAL_TRY, !tried_again);
        self.attempts.push(with_latency(doc)).await;
        if outcome.status() == Some(410) {
            self.gone(&job);
        } else if tried_again {
            let delay = self.retry_delay(&job, &outcome);
            if stopping {
                // Shutting down: the journal keeps it, due as scheduled, for the restart.
                self.note(&job, JournalNote::RetryIn(delay));
                return None;
            }
            inc(&self.stats.retries_scheduled);
            let due = Instant::now() + delay;
            (job.due, job.since) = (Some(due), due);
            self.note(&job, JournalNote::RetryIn(delay));
            // Settled for whoever holds the event: the journal has the retry now.
            job.hold = None;
            return Some(job);
        }
        inc(&self.stats.deliveries_failed);
        self.stats
            .finished
            .count(DeliveryResult::Failed, outcome.status());
        self.note(&job, JournalNote::Finished);
        None
    }

    /// Tells the live watcher, if any, about a try (`d.tries` already counts it).
    fn report(&self, d: &Delivery, outcome: &Outcome, took: Option<Duration>, last: bool) {
        let Some(observer) = self.observer.load_full() else {
            return;
        };
        let error = match outcome {
            Outcome::Transport { error } => Some(error.as_str()),
            Outcome::Response { .. } => None,
        };
        observer.tried(&TryReport {
            account: &d.hook.account_id,
            hook: &d.hook.id,
            webhook_id: &d.webhook_id,
            uri: &d.hook.uri,
            succeeded: outcome.is_success(),
            status: outcome.status(),
            error,
            latency_ms: took.map(|t| t.as_millis() as u64),
            attempt: d.tries,
            last,
        });
    }

    /// The wait before the next try: the hook's schedule, stretched to a receiver's
    /// `Retry-After` (429, 503) within bounds.
    fn retry_delay(&self, job: &Job, outcome: &Outcome) -> Duration {
        let d = &job.delivery;
        let scheduled =
            d.hook
                .retry_schedule
                .delay(d.tries, self.retry_delay, rand::random::<f64>());
        match outcome.status() {
            Some(status) => honour_retry_after(status, outcome.header("retry-after"), scheduled),
            None => scheduled,
        }
    }

    /// The receiver says the hook's endpoint is gone for good: no more tries, and the hook is
    /// switched off now rather than after enough failures.
    fn gone(&self, job: &Job) {
        let hook = &job.delivery.hook;
        tracing::warn!(account = %hook.account_id, hook = %hook.id, uri = %hook.uri, webhook_id = %job.delivery.webhook_id, "receiver answered 410 Gone; disabling the hook");
        let _ = self.gone.send(GoneHook {
            account: hook.account_id.clone(),
            hook: hook.id.clone(),
        });
    }

    /// Notes the delivery's end or next try in the journal, without waiting for the commit:
    /// if a crash comes first, the delivery is tried again after the restart (at least once).
    fn note(&self, job: &Job, note: JournalNote) {
        let (Some(journal), Some(id)) = (&self.journal, job.journal_id) else {
            return;
        };
        let entry = match note {
            JournalNote::Finished => JournalEntry::Finished { id },
            JournalNote::RetryIn(delay) => JournalEntry::Retry {
                id,
                tries: job.delivery.tries,
                due_unix_ms: webhooks_core::time::now_unix_ms() + delay.as_millis() as i64,
            },
        };
        journal.note(entry);
    }

    /// The job's hook was disabled, deleted or edited while it waited: it is not sent, and
    /// the journal forgets it.
    pub(crate) fn cancelled(&self, job: &Job) {
        inc(&self.stats.deliveries_cancelled);
        self.note(job, JournalNote::Finished);
    }

    /// Is the job's hook still in the table, unchanged? A retry of a hook that was disabled,
    /// deleted or edited meanwhile is dropped.
    pub(crate) fn hook_is_live(&self, job: &Job) -> bool {
        let hook = &job.delivery.hook;
        self.hooks
            .snapshot()
            .hooks_of(&hook.account_id)
            .any(|h| Arc::ptr_eq(h, hook) || **h == **hook)
    }
}

enum JournalNote {
    Finished,
    RetryIn(Duration),
}
