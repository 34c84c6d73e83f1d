//! One connection's life ([`Session`]) and the loop that keeps one open ([`supervise`]).
//!
//! A session is a connection with three channels: the shared queue's consumer, this node's
//! configuration consumer, and a publishing channel in confirm mode. Everything a session
//! needs is declared when it opens (declarations are idempotent), so a new session after a
//! broker restart, which forgets non-durable exchanges and their bindings, is complete again.
//!
//! When any part of a session fails the whole connection is replaced: a channel the broker
//! closed cannot be reopened with its consumer and prefetch intact, and one code path for
//! every loss is one that gets tested. Messages not acknowledged yet are redelivered by the
//! broker, so a lost connection loses nothing.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, Consumer, ErrorKind};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::keys::{
    exchange_kind, exchanges, ACCOUNT_DELETIONS, KAZOO_EXCHANGES, REENABLE_KEY, WEBHOOK_DOC_CHANGES,
};
use crate::stats::inc;
use crate::transport::{AmqpError, Ctx, During};
use crate::{node, shared};

/// Opening a connection and declaring everything must fit in this, or the attempt counts as
/// failed (an unreachable host can otherwise hold a TCP connect for minutes).
const OPEN_TIMEOUT: Duration = Duration::from_secs(20);

/// How long closing a connection may take before it is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a session ended.
#[derive(Debug)]
pub(crate) enum SessionEnd {
    /// [`AmqpHandle::shutdown`](crate::AmqpHandle::shutdown) was called.
    Stopped,
    /// The connection or one of its channels failed.
    Lost(String),
}

/// Resolves once the transport is told to stop (or every handle is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Declares KAZOO's exchanges exactly as KAZOO does: not durable, not auto-deleted,
/// `targeted` direct and the others topic. The broker refuses to redeclare an exchange with
/// other flags, so anything else would fail on a broker KAZOO already uses.
pub async fn declare_kazoo_exchanges(channel: &Channel) -> Result<(), AmqpError> {
    for exchange in KAZOO_EXCHANGES {
        declare_exchange(channel, exchange).await?;
    }
    Ok(())
}

async fn declare_exchange(channel: &Channel, exchange: &str) -> Result<(), AmqpError> {
    channel
        .exchange_declare(
            exchange.into(),
            exchange_kind(exchange),
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .during(format!("declaring exchange {exchange}"))
}

/// A live connection, consuming.
pub(crate) struct Session {
    connection: Connection,
    shared_channel: Channel,
    shared: Consumer,
    node: Consumer,
    publish: Channel,
}

impl Session {
    /// Connects and declares, binds and consumes everything (bounded by [`OPEN_TIMEOUT`]).
    pub(crate) async fn open(ctx: &Ctx) -> Result<Session, AmqpError> {
        tokio::time::timeout(OPEN_TIMEOUT, Self::connect(ctx))
            .await
            .map_err(|_| AmqpError::Timeout("connecting and declaring", OPEN_TIMEOUT))?
    }

    async fn connect(ctx: &Ctx) -> Result<Session, AmqpError> {
        let props = ConnectionProperties::default()
            .with_connection_name(format!("kazoo-webhooks {}", ctx.config.node).into());
        let connection = Connection::connect(&ctx.config.url, props)
            .await
            .map_err(AmqpError::Connect)?;
        match Self::setup(ctx, &connection).await {
            Ok((shared_channel, shared, node, publish)) => Ok(Session {
                connection,
                shared_channel,
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

    async fn setup(
        ctx: &Ctx,
        connection: &Connection,
    ) -> Result<(Channel, Consumer, Consumer, Channel), AmqpError> {
        let config = &ctx.config;
        let channel = connection
            .create_channel()
            .await
            .during("opening a channel")?;
        declare_kazoo_exchanges(&channel).await?;
        let bindings = shared_bindings(ctx);
        for (exchange, _) in &bindings {
            if !KAZOO_EXCHANGES.contains(&exchange.as_str()) {
                declare_exchange(&channel, exchange).await?;
            }
        }
        if let Some(dlx) = &config.dead_letter_exchange {
            warn_if_missing(connection, dlx).await;
        }

        let shared_channel = declare_shared_queue(ctx, connection, channel).await?;
        let queue = config.shared_queue.as_str();
        for (exchange, key) in &bindings {
            shared_channel
                .queue_bind(
                    queue.into(),
                    exchange.as_str().into(),
                    key.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .during(format!("binding {queue} to {exchange} with {key}"))?;
        }
        shared_channel
            .basic_qos(config.prefetch, BasicQosOptions::default())
            .await
            .during("setting the prefetch")?;
        let shared = shared_channel
            .basic_consume(
                queue.into(),
                config.node.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .during(format!("consuming {queue}"))?;

        let node_channel = connection
            .create_channel()
            .await
            .during("opening a channel")?;
        let node_queue = node_channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .during("declaring the node's configuration queue")?;
        for key in [WEBHOOK_DOC_CHANGES, ACCOUNT_DELETIONS] {
            node_channel
                .queue_bind(
                    node_queue.name().clone(),
                    exchanges::CONFIGURATION.into(),
                    key.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .during(format!("binding the configuration queue with {key}"))?;
        }
        // Auto-ack: a notice is only a hint to re-read the store, and one lost with the
        // connection is caught up by the engine's change-feed follow.
        let node = node_channel
            .basic_consume(
                node_queue.name().clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    exclusive: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .during("consuming the configuration queue")?;

        let publish = connection
            .create_channel()
            .await
            .during("opening a channel")?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .during("enabling publisher confirms")?;
        Ok((shared_channel, shared, node, publish))
    }

    /// Consumes until the connection is lost or the transport is stopped, then waits for the
    /// messages being handled and closes the connection.
    pub(crate) async fn serve(self, ctx: &Arc<Ctx>, stop: &watch::Receiver<bool>) -> SessionEnd {
        let Session {
            connection,
            shared_channel,
            mut shared,
            node,
            publish,
        } = self;
        ctx.publisher.set(Some(publish));
        let mut node_task = tokio::spawn(node::consume(ctx.clone(), node, stop.clone()));
        let mut node_done = false;
        let mut in_flight = JoinSet::new();
        let mut stop = stop.clone();
        let end = loop {
            tokio::select! {
                _ = stopped(&mut stop) => break SessionEnd::Stopped,
                next = shared.next() => match next {
                    Some(Ok(delivery)) => {
                        in_flight.spawn(shared::handle(ctx.clone(), delivery));
                    }
                    Some(Err(e)) => break SessionEnd::Lost(format!("shared queue: {e}")),
                    None => break SessionEnd::Lost("shared queue consumer cancelled by the broker".into()),
                },
                end = &mut node_task => {
                    node_done = true;
                    break end.unwrap_or_else(|e| SessionEnd::Lost(format!("configuration listener failed: {e}")));
                }
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => log_task_failure(done),
            }
        };
        let lost_at = std::time::Instant::now();
        match end {
            SessionEnd::Stopped => {
                // No new deliveries. Those being handled finish below and are acknowledged
                // (and answered) on this still-open connection; prefetched ones not started
                // are requeued at close.
                if let Err(e) = shared_channel
                    .basic_cancel(shared.tag(), BasicCancelOptions::default())
                    .await
                {
                    tracing::debug!(error = %e, "cancelling the shared consumer failed");
                }
            }
            // Nothing more goes out on this connection: publishers wait for the next one.
            SessionEnd::Lost(_) => ctx.publisher.set(None),
        }
        // A handler is never aborted: one stopped halfway through handing an event to the
        // engine would leave some of its deliveries queued and some not.
        while let Some(done) = in_flight.join_next().await {
            log_task_failure(done);
        }
        if let SessionEnd::Lost(_) = end {
            ctx.handled.connection_lost(lost_at);
        }
        ctx.publisher.set(None);
        close(&connection).await;
        if !node_done
            && tokio::time::timeout(CLOSE_TIMEOUT, &mut node_task)
                .await
                .is_err()
        {
            node_task.abort();
        }
        end
    }
}

fn log_task_failure(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "message handler failed; the message will be redelivered");
    }
}

/// Every (exchange, routing key) the shared queue is bound with: each module's bindings and
/// the re-enable request, without repeats.
fn shared_bindings(ctx: &Ctx) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let all = ctx
        .registry
        .bindings()
        .map(|b| (b.exchange.clone(), b.routing_key.clone()))
        .chain([(exchanges::CONFIGURATION.to_owned(), REENABLE_KEY.to_owned())]);
    for pair in all {
        if !out.contains(&pair) {
            out.push(pair);
        }
    }
    out
}

/// Declares the shared queue durable: unlike KAZOO's (non-durable, auto-delete, spec §15),
/// it outlives the last consumer, so events published while every node restarts wait for the
/// nodes instead of vanishing with the queue.
///
/// If the queue already exists with other properties (KAZOO's nodes are still consuming it
/// during a migration, or the dead-letter setting changed), the broker refuses the
/// declaration; the transport then joins the existing queue as it is, so both can compete
/// for events, and says so.
async fn declare_shared_queue(
    ctx: &Ctx,
    connection: &Connection,
    channel: Channel,
) -> Result<Channel, AmqpError> {
    let config = &ctx.config;
    let name = config.shared_queue.as_str();
    let mut arguments = FieldTable::default();
    if let Some(dlx) = &config.dead_letter_exchange {
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(dlx.as_str().into()),
        );
    }
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    match channel.queue_declare(name.into(), durable, arguments).await {
        Ok(_) => Ok(channel),
        Err(e) if is_precondition_failed(&e) => {
            tracing::warn!(
                queue = name,
                error = %e,
                "the shared queue exists with other properties (KAZOO declares it non-durable \
                 and auto-delete); joining it as it is"
            );
            let channel = connection
                .create_channel()
                .await
                .during("opening a channel")?;
            channel
                .queue_declare(
                    name.into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .during(format!("joining the existing queue {name}"))?;
            Ok(channel)
        }
        Err(e) => Err(e).during(format!("declaring queue {name}")),
    }
}

fn is_precondition_failed(e: &lapin::Error) -> bool {
    matches!(e.kind(), ErrorKind::ProtocolError(amqp) if amqp.get_id() == 406)
}

/// The dead-letter exchange is the operator's; without it rejected messages are dropped, so
/// say so. Checked on a channel of its own: a failed passive declaration closes the channel.
async fn warn_if_missing(connection: &Connection, exchange: &str) {
    let Ok(channel) = connection.create_channel().await else {
        return;
    };
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    match channel
        .exchange_declare(
            exchange.into(),
            exchange_kind(exchange),
            passive,
            FieldTable::default(),
        )
        .await
    {
        Ok(()) => {
            let _ = channel.close(200, "checked".into()).await;
        }
        Err(e) => tracing::warn!(
            exchange,
            error = %e,
            "the dead-letter exchange does not exist: rejected messages will be dropped"
        ),
    }
}

async fn close(connection: &Connection) {
    let closing = connection.close(200, "webhooks transport closing".into());
    if let Ok(Err(e)) = tokio::time::timeout(CLOSE_TIMEOUT, closing).await {
        tracing::debug!(error = %e, "closing the connection");
    }
}

/// Keeps a session open until the transport is stopped: serves it, and when it is lost opens
/// the next one, waiting `reconnect_min`, then twice as long after each failed attempt, up
/// to `reconnect_max`.
pub(crate) async fn supervise(ctx: Arc<Ctx>, first: Session, mut stop: watch::Receiver<bool>) {
    let mut session = first;
    loop {
        match session.serve(&ctx, &stop).await {
            SessionEnd::Stopped => {
                tracing::info!("AMQP transport stopped");
                return;
            }
            SessionEnd::Lost(reason) => {
                tracing::warn!(%reason, "AMQP connection lost; reconnecting")
            }
        }
        session = match reconnect(&ctx, &mut stop).await {
            Some(s) => s,
            None => return,
        };
        inc(&ctx.stats.reconnects);
        tracing::info!(
            reconnects = ctx.stats.snapshot().reconnects,
            "AMQP connection re-established; consuming again"
        );
    }
}

/// Opens a new session, retrying with backoff; `None` when told to stop meanwhile.
async fn reconnect(ctx: &Ctx, stop: &mut watch::Receiver<bool>) -> Option<Session> {
    let mut attempt = 0u32;
    loop {
        let wait = ctx.config.backoff(attempt);
        tokio::select! {
            _ = stopped(stop) => return None,
            _ = tokio::time::sleep(wait) => {}
        }
        tokio::select! {
            _ = stopped(stop) => return None,
            opened = Session::open(ctx) => match opened {
                Ok(session) => return Some(session),
                Err(e) => tracing::warn!(
                    attempt = attempt + 1,
                    error = %e,
                    next_wait = ?ctx.config.backoff(attempt + 1),
                    "AMQP reconnect failed"
                ),
            }
        }
        attempt = attempt.saturating_add(1);
    }
}
