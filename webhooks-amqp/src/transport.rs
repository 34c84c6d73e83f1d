//! [`AmqpTransport::start`] and the [`AmqpHandle`] it returns: where the transport's parts
//! are put together, and what the rest of the daemon holds.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use webhooks_core::transport::{
    ConfigListener, FailedTry, FailureShare, FlushedFailures, Notifier,
};
use webhooks_core::{Event, EventSink, ModuleRegistry};

use crate::config::AmqpConfig;
use crate::connection::Supervisor;
use crate::error::AmqpError;
use crate::failures::FailureOutbox;
use crate::publisher::Publisher;
use crate::stats::{inc, AmqpStats, AmqpStatsSnapshot};

/// The RabbitMQ transport: KAZOO's events in, replies and notifications out.
pub struct AmqpTransport;

impl AmqpTransport {
    /// Connects, declares KAZOO's exchanges, the shared queue and this node's configuration
    /// queue, binds them, and starts consuming; then keeps that up, reconnecting whenever the
    /// connection is lost, until [`AmqpHandle::shutdown`].
    ///
    /// The first connection must succeed: a wrong URL, bad credentials or a queue that cannot
    /// be declared is an error here rather than a retry loop the operator cannot see. Every
    /// later loss is retried forever.
    pub async fn start(
        config: AmqpConfig,
        registry: ModuleRegistry,
        events: Arc<dyn EventSink>,
        config_listener: Arc<dyn ConfigListener>,
    ) -> Result<AmqpHandle, AmqpError> {
        let stats = Arc::new(AmqpStats::default());
        let publisher = Publisher::new();
        let supervisor = Supervisor::new(
            config.clone(),
            &registry,
            events,
            config_listener,
            publisher.clone(),
            stats.clone(),
        );
        let (stop, stopped) = watch::channel(false);
        let failures = FailureOutbox::start(
            config.node.clone(),
            publisher.clone(),
            stats.clone(),
            stopped.clone(),
        );
        let supervisor = supervisor.start(stopped).await?;
        Ok(AmqpHandle {
            inner: Arc::new(HandleInner {
                config,
                stats,
                publisher,
                failures,
                stop,
                supervisor: Mutex::new(Some(supervisor)),
            }),
        })
    }
}

struct HandleInner {
    config: AmqpConfig,
    stats: Arc<AmqpStats>,
    publisher: Publisher,
    /// This node's failed tries on their way to the other nodes.
    failures: FailureOutbox,
    /// Set to stop the transport; dropping it (with the last handle) stops it too.
    stop: watch::Sender<bool>,
    /// The task that keeps a connection open, until it is joined.
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

/// A running transport. Cheap to clone; give a clone to the engine as its
/// [`Notifier`](webhooks_core::transport::Notifier) so `webhook_disabled` goes out on the
/// `notifications` exchange (and comes back in through the shared queue, as in KAZOO).
///
/// Dropping the last clone stops the transport as [`shutdown`](AmqpHandle::shutdown) does,
/// without waiting for it.
#[derive(Clone)]
pub struct AmqpHandle {
    inner: Arc<HandleInner>,
}

impl AmqpHandle {
    pub fn stats(&self) -> AmqpStatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// Is a connection up right now?
    pub fn is_connected(&self) -> bool {
        self.inner.publisher.is_connected()
    }

    pub fn config(&self) -> &AmqpConfig {
        &self.inner.config
    }

    /// Publishes one KAZOO message (JSON, `content_type: application/json`) and waits for
    /// the broker's confirm. While the connection is down it waits for the next one, up to
    /// `patience`.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        message: &Value,
        patience: Duration,
    ) -> Result<(), AmqpError> {
        let body = serde_json::to_vec(message)?;
        self.inner
            .publisher
            .publish(exchange, routing_key, &body, patience)
            .await
    }

    /// Stops the transport and returns once nothing of it runs any more:
    /// 1. both consumers (the shared queue's and the configuration queue's) are cancelled,
    ///    so the broker delivers nothing more;
    /// 2. the handovers in progress finish, and are acknowledged on the still-open channel;
    /// 3. the connection is closed, and the broker requeues the messages received but not
    ///    started, for the other nodes;
    /// 4. publishes waiting for a connection fail.
    ///
    /// During a reconnect backoff it returns at once. Idempotent; a second caller waits
    /// for the first.
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        // Held across the wait, so that every caller returns only once the task is done.
        let mut supervisor = self.inner.supervisor.lock().await;
        if let Some(task) = supervisor.as_mut() {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "AMQP transport task failed");
            }
            *supervisor = None;
        }
    }
}

#[async_trait]
impl Notifier for AmqpHandle {
    /// Publishes a notification on the `notifications` exchange under KAZOO's key for its
    /// `Event-Name` (`webhook_disabled` → `notifications.webhook.disabled`, spec §4.5).
    async fn notify(&self, event: &Event) -> Result<(), String> {
        let routing_key = self
            .inner
            .publisher
            .notify(event)
            .await
            .map_err(|e| e.to_string())?;
        inc(&self.inner.stats.notifications_published);
        tracing::info!(
            notification = event.name().unwrap_or_default(),
            routing_key,
            "notification published"
        );
        Ok(())
    }
}

/// Give a clone to the engine (`Engine::set_failure_share`) so the other nodes count this
/// node's failed tries.
impl FailureShare for AmqpHandle {
    fn share(&self, failure: FailedTry) {
        if !self.inner.failures.push(failure) {
            inc(&self.inner.stats.failures_unshared);
        }
    }

    fn flushed(&self, flushed: FlushedFailures) {
        if !self.inner.failures.push_flush(flushed) {
            tracing::warn!(
                "flushed failure counts not told to the other nodes: the outbox is full"
            );
        }
    }
}

impl std::fmt::Debug for AmqpHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpHandle")
            .field("node", &self.inner.config.node)
            .field("connected", &self.is_connected())
            .field("stats", &self.stats())
            .finish()
    }
}
