//! What goes out: re-enable replies and the notifications the engine raises.
//!
//! Every connection has one channel in confirm mode for publishing; a [`Publisher`] always
//! points at the current one. A publish made while the connection is down waits for the next
//! connection (KAZOO's notify publisher also waits, up to 30 s), so a `webhook_disabled`
//! raised during a broker restart still goes out. Once the transport is shut down there is
//! no next connection, and a waiting publish fails at once.

use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::Channel;
use tokio::sync::watch;
use tokio::time::Instant;
use webhooks_core::Event;

use crate::error::{AmqpError, During};
use crate::keys::{exchanges, notification_key};
use crate::message::json_properties;

/// How long a notification waits for a connection, as KAZOO's notify publisher.
pub const NOTIFY_PATIENCE: Duration = Duration::from_secs(30);

/// Where publishes go right now.
enum Link {
    /// Between connections: wait for the next one.
    Down,
    /// The current connection's publishing channel.
    Up(Channel),
    /// The transport was shut down: there will be no next connection.
    Closed,
}

/// A handle on the current publishing channel. Clones share it: the connection supervisor
/// sets it, the re-enable handler and the [`AmqpHandle`](crate::AmqpHandle) publish on it.
#[derive(Clone)]
pub(crate) struct Publisher {
    link: watch::Sender<Link>,
}

impl Publisher {
    pub(crate) fn new() -> Self {
        Publisher {
            link: watch::Sender::new(Link::Down),
        }
    }

    /// A connection opened: publish on its channel.
    pub(crate) fn connected(&self, channel: Channel) {
        self.link.send_replace(Link::Up(channel));
    }

    /// The connection is going: publishes wait for the next one.
    pub(crate) fn disconnected(&self) {
        self.link.send_if_modified(|link| {
            let was_up = matches!(link, Link::Up(_));
            if was_up {
                *link = Link::Down;
            }
            was_up
        });
    }

    /// The transport stopped: publishes waiting for a connection fail now, later ones at once.
    pub(crate) fn close(&self) {
        self.link.send_replace(Link::Closed);
    }

    pub(crate) fn is_connected(&self) -> bool {
        matches!(&*self.link.borrow(), Link::Up(c) if c.status().connected())
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
        loop {
            let channel = self.wait_for_channel(deadline).await?;
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

    /// Publishes a notification on the `notifications` exchange under KAZOO's key for its
    /// `Event-Name` (`webhook_disabled` → `notifications.webhook.disabled`, spec §4.5),
    /// waiting up to [`NOTIFY_PATIENCE`] for a connection. Returns the routing key.
    pub(crate) async fn notify(&self, event: &Event) -> Result<&'static str, AmqpError> {
        let name = event.name().unwrap_or_default();
        let key = notification_key(name).ok_or_else(|| AmqpError::NoRoutingKey(name.into()))?;
        let body = serde_json::to_vec(&event.0)?;
        self.publish(exchanges::NOTIFICATIONS, key, &body, NOTIFY_PATIENCE)
            .await?;
        Ok(key)
    }

    /// The current channel, waiting for one until `deadline`.
    async fn wait_for_channel(&self, deadline: Instant) -> Result<Channel, AmqpError> {
        let mut link = self.link.subscribe();
        let ready = tokio::time::timeout_at(deadline, link.wait_for(|l| !matches!(l, Link::Down)))
            .await
            .map_err(|_| AmqpError::NotConnected)?
            .map_err(|_| AmqpError::NotConnected)?;
        match &*ready {
            Link::Up(channel) => Ok(channel.clone()),
            Link::Down | Link::Closed => Err(AmqpError::NotConnected),
        }
    }
}

/// One publish with KAZOO's message properties, confirmed by the broker.
async fn publish_confirmed(
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
        .during(format!("publishing on {exchange}"))?
        .await
        .during(format!("confirm of publish on {exchange}"))?;
    if confirm.is_nack() {
        return Err(AmqpError::Refused);
    }
    Ok(())
}
