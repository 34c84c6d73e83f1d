//! Keeping the transport connected: the [`Supervisor`] opens a session (a connection with
//! its consumers and publishing channel), serves it until it ends, and when it was lost opens
//! the next one, with backoff, until the transport is shut down.
//!
//! Each new session binds this node's new queue again with what live streams want
//! ([`NodeBindings`]).
//!
//! When any part of a session fails the whole connection is replaced: a channel the broker
//! closed cannot be reopened with its consumer and prefetch intact, and one code path for
//! every loss is one that gets tested. Messages not acknowledged yet are redelivered by the
//! broker, so a lost connection loses nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use webhooks_core::transport::ConfigListener;
use webhooks_core::{EventSink, ModuleRegistry};

use crate::config::AmqpConfig;
use crate::declare::{self, Consuming};
use crate::ending::{SessionEnd, SessionEnding};
use crate::error::AmqpError;
use crate::node::{NodeQueue, TapSlot};
use crate::node_bindings::NodeBindings;
use crate::publisher::Publisher;
use crate::reenable::Reenabler;
use crate::shared::{SharedQueue, WindDown};
use crate::stats::{inc, AmqpStats};

/// Opening a connection and declaring everything must fit in this, or the attempt counts as
/// failed (an unreachable host can otherwise hold a TCP connect for minutes).
const OPEN_TIMEOUT: Duration = Duration::from_secs(20);

/// How long closing a connection may take before it is dropped, and how long the
/// configuration consumer may take to finish once its session ends.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves once the transport is told to stop (or every handle is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// One live connection, consuming.
struct Session {
    /// Shared with the [`NodeBindings`] task, which binds this node's queue on it.
    connection: Arc<Connection>,
    shared: Consuming,
    node: Consuming,
    publish: Channel,
}

/// Owns the connection to the broker, and the consumers it feeds.
pub(crate) struct Supervisor {
    config: AmqpConfig,
    /// The shared queue's bindings, the same for every connection.
    bindings: Vec<(String, String)>,
    shared: Arc<SharedQueue>,
    node: Arc<NodeQueue>,
    node_bindings: NodeBindings,
    publisher: Publisher,
    stats: Arc<AmqpStats>,
}

impl Supervisor {
    /// The consumers hand events to `events`, configuration to `config_listener` and what
    /// reaches this node's own queue to the [`tap`](Self::tap); the re-enable replies go out
    /// through `publisher`, which follows the current connection; `node_bindings` is told
    /// about each new node queue.
    pub(crate) fn new(
        config: AmqpConfig,
        registry: &ModuleRegistry,
        events: Arc<dyn EventSink>,
        config_listener: Arc<dyn ConfigListener>,
        node_bindings: NodeBindings,
        publisher: Publisher,
        stats: Arc<AmqpStats>,
    ) -> Self {
        let reenabler = Reenabler::new(
            config_listener.clone(),
            publisher.clone(),
            config.node.clone(),
            stats.clone(),
        );
        Supervisor {
            bindings: declare::shared_bindings(registry),
            shared: SharedQueue::new(events, reenabler, stats.clone(), config.hold_until_settled),
            node: NodeQueue::new(config_listener, stats.clone(), config.node.clone()),
            node_bindings,
            config,
            publisher,
            stats,
        }
    }

    /// Where the node queue's consumer hands what it gets (the live streams' tap is set
    /// there).
    pub(crate) fn tap(&self) -> Arc<TapSlot> {
        self.node.tap()
    }

    /// Opens the first session, then keeps one open in a task until `shutdown` says stop (or
    /// its sender is dropped). The first connection must succeed: a wrong URL, bad
    /// credentials or a queue that cannot be declared is an error here rather than a retry
    /// loop the operator cannot see.
    pub(crate) async fn start(
        self,
        shutdown: watch::Receiver<bool>,
    ) -> Result<JoinHandle<()>, AmqpError> {
        let first = self.open().await?;
        tracing::info!(
            queue = %self.config.shared_queue,
            node = %self.config.node,
            prefetch = self.config.prefetch,
            "AMQP transport consuming"
        );
        Ok(tokio::spawn(self.run(first, shutdown)))
    }

    /// Serves sessions one after the other until the transport is stopped.
    async fn run(self, first: Session, mut shutdown: watch::Receiver<bool>) {
        let mut session = first;
        loop {
            if self.serve(session, &mut shutdown).await == SessionEnd::Stopped {
                break;
            }
            session = match self.reconnect(&mut shutdown).await {
                Some(next) => next,
                None => break,
            };
            inc(&self.stats.reconnects);
            tracing::info!(
                reconnects = self.stats.snapshot().reconnects,
                "AMQP connection re-established; consuming again"
            );
        }
        self.publisher.close();
        tracing::info!("AMQP transport stopped");
    }

    /// Connects and declares, binds and consumes everything (bounded by [`OPEN_TIMEOUT`]).
    async fn open(&self) -> Result<Session, AmqpError> {
        tokio::time::timeout(OPEN_TIMEOUT, self.connect())
            .await
            .map_err(|_| AmqpError::Timeout("connecting and declaring", OPEN_TIMEOUT))?
    }

    async fn connect(&self) -> Result<Session, AmqpError> {
        let props = ConnectionProperties::default()
            .with_connection_name(format!("kazoo-webhooks {}", self.config.node).into());
        let connection = Connection::connect(&self.config.url, props)
            .await
            .map_err(AmqpError::Connect)?;
        let declared = async {
            let shared =
                declare::consume_shared_queue(&connection, &self.config, &self.bindings).await?;
            let node = declare::consume_node_queue(&connection).await?;
            let publish = declare::publishing_channel(&connection).await?;
            Ok::<_, AmqpError>((shared, node, publish))
        };
        match declared.await {
            Ok((shared, node, publish)) => Ok(Session {
                connection: Arc::new(connection),
                shared,
                node,
                publish,
            }),
            Err(e) => {
                close(&connection).await;
                Err(e)
            }
        }
    }

    /// Runs both consumers until the session ends (the transport is stopped, or a part of
    /// the connection failed), then winds it down: the consumers are cancelled and finish
    /// what they started, acknowledging on the still-open connection, and only then is the
    /// connection closed, so the broker requeues whatever is left unacknowledged.
    async fn serve(&self, session: Session, shutdown: &mut watch::Receiver<bool>) -> SessionEnd {
        let Session {
            connection,
            shared,
            node,
            publish,
        } = session;
        self.publisher.connected(publish);
        self.node_bindings
            .attach(connection.clone(), node.consumer.queue());
        let ending = SessionEnding::new();
        let shared_task = tokio::spawn(self.shared.clone().consume(
            shared.channel,
            shared.consumer,
            ending.clone(),
        ));
        let node_task = tokio::spawn(self.node.clone().consume(
            node.channel,
            node.consumer,
            ending.clone(),
        ));

        tokio::select! {
            _ = stopped(shutdown) => ending.end(SessionEnd::Stopped),
            _ = ending.ended() => {}
        }
        let end = ending.ended().await;
        let lost_at = Instant::now();
        self.node_bindings.detach();
        if let SessionEnd::Lost(_) = end {
            // Nothing more goes out on this connection: publishers wait for the next one.
            self.publisher.disconnected();
        }
        finish_within(node_task, CLOSE_TIMEOUT, "configuration consumer").await;
        let wind_down = shared_task.await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "the shared queue consumer failed");
            WindDown::default()
        });
        if let SessionEnd::Lost(_) = end {
            self.shared.connection_lost(lost_at);
        }
        self.publisher.disconnected();
        close(&connection).await;
        report(&end, &wind_down);
        end
    }

    /// Opens a new session, retrying with backoff: `reconnect_min`, then twice as long after
    /// each failed attempt, up to `reconnect_max`. `None` when told to stop meanwhile, at
    /// once: neither the wait nor an attempt under way holds the shutdown up (an abandoned
    /// connection is closed when dropped).
    async fn reconnect(&self, shutdown: &mut watch::Receiver<bool>) -> Option<Session> {
        let mut attempt = 0u32;
        loop {
            let wait = self.config.backoff(attempt);
            tokio::select! {
                _ = stopped(shutdown) => return None,
                _ = tokio::time::sleep(wait) => {}
            }
            tokio::select! {
                _ = stopped(shutdown) => return None,
                opened = self.open() => match opened {
                    Ok(session) => return Some(session),
                    Err(e) => tracing::warn!(
                        attempt = attempt + 1,
                        error = %e,
                        next_wait = ?self.config.backoff(attempt + 1),
                        "AMQP reconnect failed"
                    ),
                }
            }
            attempt = attempt.saturating_add(1);
        }
    }
}

/// Waits for a consumer task to return, cutting it short after `limit` (a notice stuck in
/// the engine must not hold the shutdown up); it does not outlive this call either way.
async fn finish_within(mut task: JoinHandle<()>, limit: Duration, what: &str) {
    let done = match tokio::time::timeout(limit, &mut task).await {
        Ok(done) => done,
        Err(_) => {
            tracing::warn!("the {what} did not finish within {limit:?}; stopping it");
            task.abort();
            task.await
        }
    };
    if let Err(e) = done {
        if !e.is_cancelled() {
            tracing::error!(error = %e, "the {what} failed");
        }
    }
}

/// Says what a session left behind.
fn report(end: &SessionEnd, left: &WindDown) {
    match end {
        SessionEnd::Stopped => tracing::info!(
            finished = left.finished,
            unacknowledged = left.unsettled,
            requeued = left.not_started,
            "AMQP consumers cancelled and connection closed: handovers in progress finished \
             and were acknowledged; messages received but not started are requeued by the broker"
        ),
        SessionEnd::Lost(reason) => tracing::warn!(
            %reason,
            finished = left.finished,
            unacknowledged = left.unsettled,
            "AMQP connection lost; unacknowledged messages will be redelivered; reconnecting"
        ),
    }
}

async fn close(connection: &Connection) {
    let closing = connection.close(200, "webhooks transport closing".into());
    if let Ok(Err(e)) = tokio::time::timeout(CLOSE_TIMEOUT, closing).await {
        tracing::debug!(error = %e, "closing the connection");
    }
}
