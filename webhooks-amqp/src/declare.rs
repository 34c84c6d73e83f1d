//! What a connection declares before it consumes, and the consumers it starts.
//!
//! Everything is declared on every connection (declarations are idempotent), so a new
//! connection after a broker restart, which forgets non-durable exchanges and their bindings,
//! is complete again.

use lapin::options::{
    BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, Consumer, ErrorKind};
use webhooks_core::ModuleRegistry;

use crate::config::AmqpConfig;
use crate::error::{AmqpError, During};
use crate::keys::{
    exchange_kind, exchanges, KAZOO_EXCHANGES, NODES_EXCHANGE, NODE_QUEUE_BINDINGS, REENABLE_KEY,
};

/// A channel and the consumer started on it (cancelling a consumer needs its channel).
pub(crate) struct Consuming {
    pub(crate) channel: Channel,
    pub(crate) consumer: Consumer,
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

/// Every (exchange, routing key) the shared queue is bound with: each module's bindings and
/// the re-enable request, without repeats.
pub(crate) fn shared_bindings(registry: &ModuleRegistry) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let all = registry
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

/// Declares the exchanges, the shared queue and its `bindings`, sets the prefetch, and
/// starts consuming it under this node's name.
pub(crate) async fn consume_shared_queue(
    connection: &Connection,
    config: &AmqpConfig,
    bindings: &[(String, String)],
) -> Result<Consuming, AmqpError> {
    let channel = connection
        .create_channel()
        .await
        .during("opening a channel")?;
    declare_kazoo_exchanges(&channel).await?;
    for (exchange, _) in bindings {
        if !KAZOO_EXCHANGES.contains(&exchange.as_str()) {
            declare_exchange(&channel, exchange).await?;
        }
    }
    if let Some(dlx) = &config.dead_letter_exchange {
        warn_if_missing(connection, dlx).await;
    }

    let channel = declare_shared_queue(config, connection, channel).await?;
    let queue = config.shared_queue.as_str();
    for (exchange, key) in bindings {
        channel
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
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await
        .during("setting the prefetch")?;
    let consumer = channel
        .basic_consume(
            queue.into(),
            config.node.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .during(format!("consuming {queue}"))?;
    Ok(Consuming { channel, consumer })
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
    config: &AmqpConfig,
    connection: &Connection,
    channel: Channel,
) -> Result<Channel, AmqpError> {
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
            // The refusal closed the channel: join on a new one.
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

/// Declares this node's own queue (exclusive, auto-delete, named by the broker), binds it to
/// webhook document changes, account deletions and the failed tries other nodes share, and
/// starts consuming it. What live streams bind it with besides is bound by
/// `node_bindings.rs` once the session is up.
pub(crate) async fn consume_node_queue(connection: &Connection) -> Result<Consuming, AmqpError> {
    let channel = connection
        .create_channel()
        .await
        .during("opening a channel")?;
    let queue = channel
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
    declare_exchange(&channel, NODES_EXCHANGE).await?;
    for (exchange, key) in NODE_QUEUE_BINDINGS {
        channel
            .queue_bind(
                queue.name().clone(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .during(format!("binding the configuration queue with {key}"))?;
    }
    // Auto-ack: a notice is only a hint to re-read the store, and one lost with the
    // connection is caught up by the engine's change-feed follow; a live stream's event is
    // worth no more than KAZOO's blackhole gives it (nothing survives a lost connection).
    let consumer = channel
        .basic_consume(
            queue.name().clone(),
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
    Ok(Consuming { channel, consumer })
}

/// A channel in confirm mode, for replies and notifications.
pub(crate) async fn publishing_channel(connection: &Connection) -> Result<Channel, AmqpError> {
    let channel = connection
        .create_channel()
        .await
        .during("opening a channel")?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .during("enabling publisher confirms")?;
    Ok(channel)
}
