//! [`AmqpTransport::start`] and the [`AmqpHandle`] it returns.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use webhooks_core::transport::ConfigListener;
use webhooks_core::{EventSink, ModuleRegistry};

use crate::config::AmqpConfig;
use crate::connection::{supervise, Session};
use crate::notify::Publisher;
use crate::shared::Handled;
use crate::stats::{AmqpStats, AmqpStatsSnapshot};

/// Why the transport could not start, or a publish failed.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    #[error("connecting to the broker: {0}")]
    Connect(#[source] lapin::Error),
    #[error("{step}: {source}")]
    Broker {
        step: String,
        #[source]
        source: lapin::Error,
    },
    #[error("{0} did not finish within {1:?}")]
    Timeout(&'static str, Duration),
    #[error("not connected to the broker")]
    NotConnected,
    #[error("the broker refused the message (publisher confirm nack)")]
    Refused,
    #[error("no routing key for notification {0:?}")]
    NoRoutingKey(String),
    #[error("message could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Attaches a step to a broker error, so a failed start says what it was doing.
pub(crate) trait During<T> {
    fn during(self, step: impl Into<String>) -> Result<T, AmqpError>;
}

impl<T> During<T> for Result<T, lapin::Error> {
    fn during(self, step: impl Into<String>) -> Result<T, AmqpError> {
        self.map_err(|source| AmqpError::Broker {
            step: step.into(),
            source,
        })
    }
}

/// What every task of the transport shares.
pub(crate) struct Ctx {
    pub(crate) config: AmqpConfig,
    pub(crate) registry: ModuleRegistry,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) config_listener: Arc<dyn ConfigListener>,
    pub(crate) stats: AmqpStats,
    /// The current connection's publishing channel (replies, notifications).
    pub(crate) publisher: Publisher,
    /// Handed-over messages whose ack may not have arrived.
    pub(crate) handled: Handled,
}

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
        let ctx = Arc::new(Ctx {
            config,
            registry,
            events,
            config_listener,
            stats: AmqpStats::default(),
            publisher: Publisher::new(),
            handled: Handled::default(),
        });
        let session = Session::open(&ctx).await?;
        tracing::info!(
            queue = %ctx.config.shared_queue,
            node = %ctx.config.node,
            prefetch = ctx.config.prefetch,
            "AMQP transport consuming"
        );
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(supervise(ctx.clone(), session, stopped));
        Ok(AmqpHandle {
            inner: Arc::new(HandleInner {
                ctx,
                stop,
                task: Mutex::new(Some(task)),
            }),
        })
    }
}

struct HandleInner {
    ctx: Arc<Ctx>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
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
        self.inner.ctx.stats.snapshot()
    }

    /// Is a connection up right now?
    pub fn is_connected(&self) -> bool {
        self.inner.ctx.publisher.is_connected()
    }

    pub fn config(&self) -> &AmqpConfig {
        &self.inner.ctx.config
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
            .ctx
            .publisher
            .publish(exchange, routing_key, &body, patience)
            .await
    }

    pub(crate) fn ctx(&self) -> &Arc<Ctx> {
        &self.inner.ctx
    }

    /// Stops consuming, lets the messages being handled finish (their acks go out on the
    /// still-open channel), and closes the connection. Messages prefetched but not started
    /// are requeued by the broker for the other nodes. Idempotent.
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "AMQP transport task failed");
            }
        }
    }
}

impl std::fmt::Debug for AmqpHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpHandle")
            .field("node", &self.inner.ctx.config.node)
            .field("connected", &self.is_connected())
            .field("stats", &self.stats())
            .finish()
    }
}
