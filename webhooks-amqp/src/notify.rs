//! Publishing: re-enable replies and the notifications the engine raises.
//!
//! Every connection has one channel in confirm mode for publishing; [`Publisher`] always
//! points at the current one. A publish made while the connection is down waits for the next
//! connection (KAZOO's notify publisher also waits, up to 30 s), so a `webhook_disabled`
//! raised during a broker restart still goes out.

use std::time::Duration;

use async_trait::async_trait;
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Channel};
use tokio::sync::watch;
use tokio::time::Instant;
use webhooks_core::transport::Notifier;
use webhooks_core::Event;

use crate::keys::{exchanges, notification_key};
use crate::stats::inc;
use crate::transport::{AmqpError, AmqpHandle};

/// How long a notification waits for a connection, as KAZOO's notify publisher.
pub const NOTIFY_PATIENCE: Duration = Duration::from_secs(30);

/// The publishing channel of the current connection, if there is one.
pub(crate) struct Publisher {
    current: watch::Sender<Option<Channel>>,
}

impl Publisher {
    pub(crate) fn new() -> Self {
        Publisher {
            current: watch::Sender::new(None),
        }
    }

    pub(crate) fn set(&self, channel: Option<Channel>) {
        self.current.send_replace(channel);
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.current
            .borrow()
            .as_ref()
            .is_some_and(|c| c.status().connected())
    }

    /// Publishes `body` as JSON and waits for the broker's confirm. A channel that dies
    /// under the publish is replaced by the next connection's, within `patience`; a nack is
    /// final.
    pub(crate) async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        patience: Duration,
    ) -> Result<(), AmqpError> {
        let deadline = Instant::now() + patience;
        let mut rx = self.current.subscribe();
        loop {
            let channel = tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some))
                .await
                .map_err(|_| AmqpError::NotConnected)?
                .map_err(|_| AmqpError::NotConnected)?
                .clone()
                .ok_or(AmqpError::NotConnected)?;
            match publish_confirmed(&channel, exchange, routing_key, body).await {
                Ok(()) => return Ok(()),
                Err(AmqpError::Refused) => return Err(AmqpError::Refused),
                Err(e) if channel.status().connected() || Instant::now() >= deadline => {
                    return Err(e)
                }
                // The connection went down under us: wait for the supervisor to open the
                // next one (it replaces the channel), without spinning on the dead one.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

/// One publish with KAZOO's message properties, confirmed by the broker.
pub(crate) async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
) -> Result<(), AmqpError> {
    let confirm = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            json_properties(),
        )
        .await
        .map_err(|source| AmqpError::Broker {
            step: format!("publishing on {exchange}"),
            source,
        })?
        .await
        .map_err(|source| AmqpError::Broker {
            step: format!("confirm of publish on {exchange}"),
            source,
        })?;
    if confirm.is_nack() {
        return Err(AmqpError::Refused);
    }
    Ok(())
}

/// KAZOO sends every message as `application/json`.
pub(crate) fn json_properties() -> BasicProperties {
    BasicProperties::default().with_content_type("application/json".into())
}

#[async_trait]
impl Notifier for AmqpHandle {
    /// Publishes a notification on the `notifications` exchange under KAZOO's key for its
    /// `Event-Name` (`webhook_disabled` → `notifications.webhook.disabled`, spec §4.5).
    async fn notify(&self, event: &Event) -> Result<(), String> {
        let name = event.name().unwrap_or_default();
        let key = notification_key(name)
            .ok_or_else(|| AmqpError::NoRoutingKey(name.to_owned()).to_string())?;
        let body = serde_json::to_vec(&event.0).map_err(|e| e.to_string())?;
        let ctx = self.ctx();
        ctx.publisher
            .publish(exchanges::NOTIFICATIONS, key, &body, NOTIFY_PATIENCE)
            .await
            .map_err(|e| e.to_string())?;
        inc(&ctx.stats.notifications_published);
        tracing::info!(
            notification = name,
            routing_key = key,
            "notification published"
        );
        Ok(())
    }
}
