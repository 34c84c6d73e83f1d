//! [`AmqpTransport::start`] and the [`AmqpHandle`] it returns: where the transport's parts
//! are put together, and what the rest of the daemon holds: the engine's `Notifier` and
//! `FailureShare`, and the live streams' `NodeBinder` and event tap.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use webhooks_core::transport::{
    ConfigListener, EventTap, FailedTry, FailureShare, FlushedFailures, NodeBinder, Notifier,
};
use webhooks_core::{Event, EventSink, ModuleRegistry};

use crate::config::AmqpConfig;
use crate::connection::Supervisor;
use crate::error::AmqpError;
use crate::failures::FailureOutbox;
use crate::node::TapSlot;
use crate::node_bindings::NodeBindings;
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
        let (stop, stopped) = watch::channel(false);
        let node_bindings = NodeBindings::start(stats.clone(), stopped.clone());
        let supervisor = Supervisor::new(
            config.clone(),
            &registry,
            events,
            config_listener,
            node_bindings.clone(),
            publisher.clone(),
            stats.clone(),
        );
        let tap = supervisor.tap();
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
                node_bindings,
                tap,
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
    /// What live streams bind this node's own queue with.
    node_bindings: NodeBindings,
    /// Who gets what arrives on this node's own queue.
    tap: Arc<TapSlot>,
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

    /// Hands every message that arrives on this node's own queue to `tap`, with its routing
    /// key: what the bindings made through [`NodeBinder`] bring, and the configuration notices
    /// the queue always gets (those still go to the engine first). Not the failure batches
    /// nodes share, nor a message that cannot be read (logged and counted in
    /// [`node_malformed`](AmqpStatsSnapshot::node_malformed)). Replaces the tap set before;
    /// may be called before or after the connection is up, from any thread.
    ///
    /// The tap is called on the node queue's consumer task, one message at a time, and
    /// configuration notices wait behind it: it must not block (queue and return; drop what a
    /// slow browser cannot keep up with).
    pub fn set_event_tap(&self, tap: Arc<dyn EventTap>) {
        self.inner.tap.set(tap);
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

/// Give a clone to the live streams, so the events their browsers subscribed to reach this
/// node's own queue, and through it the [tap](AmqpHandle::set_event_tap), whichever node the
/// shared queue gives them to.
///
/// Never waits: a request is queued for a task that applies requests in order. Idempotent:
/// binding a bound pair, or unbinding one not bound, changes nothing; the caller counts
/// references. Every pair bound and not unbound since is bound again on each new connection's
/// queue. An exchange the session does not declare anyway is declared first, with the type
/// KAZOO gives it (topic unless KAZOO says otherwise, [`exchange_kind`](crate::keys::exchange_kind)),
/// so a stream may ask for any of KAZOO's exchanges; a refusal (the exchange exists with
/// another type, say) is logged and counted in
/// [`node_binding_failures`](AmqpStatsSnapshot::node_binding_failures) and the pair tried again
/// on the next connection. The queue's own bindings (configuration notices, failure batches)
/// are never unbound.
impl NodeBinder for AmqpHandle {
    fn bind(&self, exchange: &str, routing_key: &str) {
        self.inner.node_bindings.bind(exchange, routing_key);
    }

    fn unbind(&self, exchange: &str, routing_key: &str) {
        self.inner.node_bindings.unbind(exchange, routing_key);
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
