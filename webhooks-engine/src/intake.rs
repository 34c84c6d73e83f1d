//! Intake: an event becomes deliveries. [`Intake::publish`] asks the modules that answer the
//! event which hooks it concerns (in one snapshot of the hook table), builds one [`Delivery`]
//! per hook and queues them for the router. The queue is bounded: when it is full, `publish`
//! waits, and that wait is the engine's backpressure.
//!
//! With a delivery journal (at-least-once, the daemon's default), the deliveries are appended
//! to it before they are queued, and `publish` returns only once the journal's group commit
//! made them durable: an acknowledgement then covers deliveries a crash cannot take. The
//! router starts sending while the commit runs, so durability adds no latency to the first
//! try.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use webhooks_core::delivery::{event_key, Delivery};
use webhooks_core::event::{Event, EventError};
use webhooks_core::live::LiveHooks;
use webhooks_core::pending::{DeliveryJournal, JournalEntry, PendingDelivery};
use webhooks_core::transport::Notifier;
use webhooks_core::{PublishReport, Settled};

use crate::held::{hold, HoldShare};
use crate::stats::{inc, EngineStats};

/// A delivery on its way, and whether its hook came from the hook table (a callflow's ad-hoc
/// hook does not, and is never cancelled by a table change).
pub(crate) struct Job {
    pub(crate) delivery: Delivery,
    pub(crate) from_table: bool,
    /// Its id in the delivery journal (`None` when the engine runs without one).
    pub(crate) journal_id: Option<u64>,
    /// Not to be sent before this (a retry, or a delivery resumed after a restart).
    pub(crate) due: Option<Instant>,
    /// Since when this try could have been sent: when the event was accepted, or when the
    /// retry (or resumed delivery) fell due. Its delivery latency is measured from here.
    pub(crate) since: Instant,
    /// Its part of the event's hold, when a transport holds the event until it settles.
    pub(crate) hold: Option<HoldShare>,
}

impl Job {
    /// The journal's record of this delivery, due at `due_unix_ms`.
    pub(crate) fn pending(&self, id: u64, due_unix_ms: i64) -> PendingDelivery {
        let d = &self.delivery;
        PendingDelivery {
            id,
            webhook_id: d.webhook_id.clone(),
            event_id: d.event_id.clone(),
            hook_id: d.hook.id.clone(),
            account_id: d.hook.account_id.clone(),
            request: d.request.clone(),
            tries: d.tries,
            due_unix_ms,
        }
    }
}

/// The way in. Cheap to clone; every clone feeds the same router.
#[derive(Clone)]
pub(crate) struct Intake {
    hooks: Arc<LiveHooks>,
    stats: Arc<EngineStats>,
    cluster_id: Option<Arc<str>>,
    jobs: mpsc::Sender<Job>,
    /// Where deliveries are made durable before `publish` returns (at-least-once).
    journal: Option<Arc<dyn DeliveryJournal>>,
    /// Cancelled when the engine starts shutting down: no more events are taken.
    stop: CancellationToken,
}

impl Intake {
    pub(crate) fn new(
        hooks: Arc<LiveHooks>,
        stats: Arc<EngineStats>,
        cluster_id: Option<String>,
        jobs: mpsc::Sender<Job>,
        journal: Option<Arc<dyn DeliveryJournal>>,
        stop: CancellationToken,
    ) -> Self {
        Intake {
            hooks,
            stats,
            cluster_id: cluster_id.map(Arc::from),
            jobs,
            journal,
            stop,
        }
    }

    /// Deliveries handed over and not yet taken by the router.
    pub(crate) fn waiting(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
    }

    /// Takes one KAZOO event (see [`webhooks_core::EventSink::publish`]). Returns `Ok` only
    /// once every delivery it made is queued, so whoever acknowledges the event on the strength
    /// of it (a 202, an AMQP ack) acknowledges work the router will finish or record.
    pub(crate) async fn publish(&self, event: Event) -> Result<PublishReport, EventError> {
        self.take(event, false).await.map(|(report, _)| report)
    }

    /// [`publish`](Self::publish), and the future that completes once the event's deliveries
    /// are settled (see [`webhooks_core::EventSink::publish_held`]).
    pub(crate) async fn publish_held(
        &self,
        event: Event,
    ) -> Result<(PublishReport, Settled), EventError> {
        self.take(event, true).await
    }

    async fn take(&self, event: Event, held: bool) -> Result<(PublishReport, Settled), EventError> {
        if self.stop.is_cancelled() {
            return Err(EventError::Stopped);
        }
        inc(&self.stats.events_received);
        let mut jobs = match self.jobs_for(&event) {
            Ok(Ok(jobs)) => jobs,
            Ok(Err(dropped)) => {
                let report = PublishReport {
                    dispatched: 0,
                    dropped: Some(dropped),
                };
                return Ok((report, hold(0).1));
            }
            Err(e) => {
                inc(&self.stats.events_rejected);
                tracing::warn!(error = %e, "malformed event rejected");
                return Err(e);
            }
        };
        let n = jobs.len();
        let (shares, settled) = hold(if held { n } else { 0 });
        for (job, share) in jobs.iter_mut().zip(shares) {
            job.hold = Some(share);
        }
        self.enqueue(jobs).await?;
        let report = PublishReport {
            dispatched: n,
            dropped: None,
        };
        Ok((report, settled))
    }

    /// Sends deliveries made elsewhere (a replay, a recovery) the way an event's are sent:
    /// journaled first when there is a journal, so a 202 for them is as good as for an
    /// event. Returns how many were queued.
    pub(crate) async fn resend(&self, deliveries: Vec<Delivery>) -> Result<usize, EventError> {
        if self.stop.is_cancelled() {
            return Err(EventError::Stopped);
        }
        let snap = self.hooks.snapshot();
        let accepted = Instant::now();
        let jobs: Vec<Job> = deliveries
            .into_iter()
            .map(|delivery| Job {
                from_table: snap
                    .hooks_of(&delivery.hook.account_id)
                    .any(|h| Arc::ptr_eq(h, &delivery.hook)),
                delivery,
                journal_id: None,
                due: None,
                since: accepted,
                hold: None,
            })
            .collect();
        let n = jobs.len();
        self.enqueue(jobs).await?;
        Ok(n)
    }

    /// Journals `jobs` (with a journal), hands them to the router, and returns once both are
    /// done: queued, and durable.
    async fn enqueue(&self, mut jobs: Vec<Job>) -> Result<(), EventError> {
        let n = jobs.len();
        self.stats
            .deliveries_dispatched
            .fetch_add(n as u64, Ordering::Relaxed);
        let durable = match &self.journal {
            Some(journal) if n > 0 => {
                let first = journal.new_ids(n);
                let entries = (jobs.iter_mut().zip(first..))
                    .map(|(job, id)| {
                        job.journal_id = Some(id);
                        JournalEntry::Accepted(job.pending(id, 0))
                    })
                    .collect();
                Some(journal.append(entries))
            }
            _ => None,
        };
        for job in jobs {
            if self.jobs.send(job).await.is_err() {
                // The router closed its intake: the engine is shutting down.
                tracing::warn!("engine stopping; deliveries not (or only partly) queued");
                return Err(EventError::Stopped);
            }
        }
        if let Some(durable) = durable {
            if let Err(e) = durable.await {
                inc(&self.stats.events_not_durable);
                return Err(EventError::NotDurable(e.to_string()));
            }
        }
        Ok(())
    }

    /// The event's deliveries; `Ok(Err(why))` when it is dropped on purpose (counted here).
    fn jobs_for(&self, event: &Event) -> Result<Result<Vec<Job>, &'static str>, EventError> {
        let category = event.required_str("Event-Category")?;
        let name = event.required_str("Event-Name")?;
        let snap = self.hooks.snapshot();
        let cluster_id = self.cluster_id.as_deref();
        let accepted = Instant::now();
        // Only an event that reaches a hook pays for hashing it (most reach none).
        let mut key = None;
        let mut jobs = Vec::new();
        let (mut answered, mut no_account, mut first_err) = (false, false, None);
        for module in self.hooks.registry().responders(category, name) {
            answered = true;
            match module.handle_event(event, snap.as_ref()) {
                Ok(dispatches) => {
                    for d in dispatches {
                        let from_table = snap
                            .hooks_of(&d.hook.account_id)
                            .any(|h| Arc::ptr_eq(h, &d.hook));
                        if let Some(delivery) = Delivery::from_dispatch(
                            d,
                            cluster_id,
                            event_id(),
                            *key.get_or_insert_with(|| event_key(event)),
                        ) {
                            jobs.push(Job {
                                delivery,
                                from_table,
                                journal_id: None,
                                due: None,
                                since: accepted,
                                hold: None,
                            });
                        }
                    }
                }
                Err(EventError::NoAccount) => no_account = true,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if !answered {
            inc(&self.stats.events_unhandled);
            return Ok(Err("no module handles this event"));
        }
        if jobs.is_empty() {
            if let Some(e) = first_err {
                return Err(e);
            }
            if no_account {
                inc(&self.stats.events_without_account);
                tracing::info!(category, name, "event names no account, dropped");
                return Ok(Err("event names no account"));
            }
        }
        Ok(Ok(jobs))
    }
}

/// A delivery's id in attempt documents (KAZOO's 10 hex characters).
fn event_id() -> String {
    webhooks_core::ids::random_hex(5)
}

/// Without a transport, the engine's own notifications (`webhook_disabled`) come straight back
/// in here, so `notifications` hooks fire once either way.
#[async_trait::async_trait]
impl Notifier for Intake {
    async fn notify(&self, event: &Event) -> Result<(), String> {
        self.publish(event.clone())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
