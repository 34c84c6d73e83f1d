//! Intake: an event becomes deliveries. [`Intake::publish`] asks the modules that answer the
//! event which hooks it concerns (in one snapshot of the hook table), builds one [`Delivery`]
//! per hook and queues them for the router. The queue is bounded: when it is full, `publish`
//! waits, and that wait is the engine's backpressure.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use webhooks_core::delivery::Delivery;
use webhooks_core::event::{Event, EventError};
use webhooks_core::live::LiveHooks;
use webhooks_core::transport::Notifier;
use webhooks_core::PublishReport;

use crate::stats::{inc, EngineStats};

/// A delivery on its way, and whether its hook came from the hook table (a callflow's ad-hoc
/// hook does not, and is never cancelled by a table change).
pub(crate) struct Job {
    pub(crate) delivery: Delivery,
    pub(crate) from_table: bool,
}

/// The way in. Cheap to clone; every clone feeds the same router.
#[derive(Clone)]
pub(crate) struct Intake {
    hooks: Arc<LiveHooks>,
    stats: Arc<EngineStats>,
    cluster_id: Option<Arc<str>>,
    jobs: mpsc::Sender<Job>,
    /// Cancelled when the engine starts shutting down: no more events are taken.
    stop: CancellationToken,
}

impl Intake {
    pub(crate) fn new(
        hooks: Arc<LiveHooks>,
        stats: Arc<EngineStats>,
        cluster_id: Option<String>,
        jobs: mpsc::Sender<Job>,
        stop: CancellationToken,
    ) -> Self {
        Intake {
            hooks,
            stats,
            cluster_id: cluster_id.map(Arc::from),
            jobs,
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
        if self.stop.is_cancelled() {
            return Err(EventError::Stopped);
        }
        inc(&self.stats.events_received);
        let jobs = match self.jobs_for(&event) {
            Ok(Ok(jobs)) => jobs,
            Ok(Err(dropped)) => {
                return Ok(PublishReport {
                    dispatched: 0,
                    dropped: Some(dropped),
                })
            }
            Err(e) => {
                inc(&self.stats.events_rejected);
                tracing::warn!(error = %e, "malformed event rejected");
                return Err(e);
            }
        };
        let n = jobs.len();
        self.stats
            .deliveries_dispatched
            .fetch_add(n as u64, Ordering::Relaxed);
        for job in jobs {
            if self.jobs.send(job).await.is_err() {
                // The router closed its intake: the engine is shutting down.
                tracing::warn!("engine stopping; event not (or only partly) queued");
                return Err(EventError::Stopped);
            }
        }
        Ok(PublishReport {
            dispatched: n,
            dropped: None,
        })
    }

    /// The event's deliveries; `Ok(Err(why))` when it is dropped on purpose (counted here).
    fn jobs_for(&self, event: &Event) -> Result<Result<Vec<Job>, &'static str>, EventError> {
        let category = event.required_str("Event-Category")?;
        let name = event.required_str("Event-Name")?;
        let snap = self.hooks.snapshot();
        let cluster_id = self.cluster_id.as_deref();
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
                        if let Some(delivery) = Delivery::from_dispatch(d, cluster_id, event_id()) {
                            jobs.push(Job {
                                delivery,
                                from_table,
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
