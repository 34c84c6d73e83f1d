//! This node's own queue: its configuration listener (KAZOO's `webhooks_listener`, spec
//! §10.2), the failed tries other nodes share, and the events live streams asked for.
//!
//! Unlike events, configuration must reach every node: each keeps its own hook table. So each
//! node has its own queue (exclusive, auto-delete, named by the broker) bound on the
//! `configuration` exchange to webhook document changes and account deletions. Notices are
//! applied one at a time, in the order they were published, so a create followed by a delete
//! cannot be applied the other way round. The same queue brings the failed tries the other
//! nodes share (`failures.rs`).
//!
//! Live streams (the websockets crate) bind the same queue to whatever their browsers
//! subscribed to (`node_bindings.rs`), so every node sees the events of its own sockets.
//! Every message on the queue but the nodes' failure batches is handed to the
//! [`EventTap`] set with [`AmqpHandle::set_event_tap`](crate::AmqpHandle::set_event_tap),
//! configuration notices included (they still go to the [`ConfigListener`] first). The tap is
//! called on this consumer's task, between two notices: it must not block.
//!
//! Notices published while this node is disconnected are not queued for it (its queue goes
//! with its connection, as in KAZOO); the engine's follow of the store's change feed catches
//! those writes up. Events for live streams published meanwhile are lost to them, as in KAZOO.

use std::sync::{Arc, PoisonError, RwLock};

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::{Channel, Consumer};
use serde_json::Value;
use webhooks_core::transport::{ConfigListener, DocAction, DocChange, EventTap};
use webhooks_core::{AccountId, Event};

use crate::ending::{cancel_consumer, SessionEnd, SessionEnding};
use crate::failures::{peer_batch, peer_flush};
use crate::keys::{exchanges, topic_matches, NODES_EXCHANGE, NODE_QUEUE_BINDINGS};
use crate::message::decode;
use crate::stats::{add, inc, AmqpStats};

/// Where the live streams' events go: the tap set last, if any. Set from any task while the
/// consumer reads it, hence the lock (held only to clone the tap out).
#[derive(Default)]
pub(crate) struct TapSlot(RwLock<Option<Arc<dyn EventTap>>>);

impl TapSlot {
    pub(crate) fn set(&self, tap: Arc<dyn EventTap>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some(tap);
    }

    fn get(&self) -> Option<Arc<dyn EventTap>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The node queue consumer's state: who applies the notices, and who gets the events.
pub(crate) struct NodeQueue {
    listener: Arc<dyn ConfigListener>,
    tap: Arc<TapSlot>,
    stats: Arc<AmqpStats>,
    /// This node's name: its own shared failures come back on its queue and are skipped.
    node: String,
}

impl NodeQueue {
    /// Without a tap until one is set in [`tap`](Self::tap).
    pub(crate) fn new(
        listener: Arc<dyn ConfigListener>,
        stats: Arc<AmqpStats>,
        node: String,
    ) -> Arc<Self> {
        Arc::new(NodeQueue {
            listener,
            tap: Arc::default(),
            stats,
            node,
        })
    }

    pub(crate) fn tap(&self) -> Arc<TapSlot> {
        self.tap.clone()
    }

    /// Applies notices one at a time until the session ends. Then it cancels the consumer, so
    /// the broker stops delivering, and applies the notices already received (they were sent
    /// without acknowledgement, so they are this node's or nobody's) until the stream ends.
    pub(crate) async fn consume(
        self: Arc<Self>,
        channel: Channel,
        mut consumer: Consumer,
        ending: SessionEnding,
    ) {
        let _guard = ending.end_when_dropped("configuration consumer");
        let mut cancelled = false;
        loop {
            tokio::select! {
                _ = ending.ended(), if !cancelled => {
                    cancelled = true;
                    cancel_consumer(&channel, &consumer, "configuration consumer").await;
                }
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => self.apply(&delivery).await,
                    Some(Err(e)) => {
                        ending.end(SessionEnd::Lost(format!("configuration consumer: {e}")));
                        return;
                    }
                    None => {
                        if !cancelled {
                            let why = "configuration consumer cancelled by the broker";
                            ending.end(SessionEnd::Lost(why.into()));
                        }
                        return;
                    }
                }
            }
        }
    }

    async fn apply(&self, delivery: &Delivery) {
        let exchange = delivery.exchange.as_str();
        let routing_key = delivery.routing_key.as_str();
        if exchange == NODES_EXCHANGE {
            return self.count_peer_failures(delivery);
        }
        let event = match decode(delivery) {
            Ok(event) => event,
            Err(why) => {
                inc(&self.stats.node_malformed);
                tracing::warn!(exchange, routing_key, reason = %why.0, "malformed message on the node queue ignored");
                return;
            }
        };
        if is_config_notice(exchange, routing_key) {
            match doc_change(&event, routing_key) {
                Some(change) => {
                    self.listener.doc_changed(&change).await;
                    inc(&self.stats.config_notices);
                    tracing::debug!(?change, "doc change notice applied");
                }
                None => {
                    tracing::debug!(routing_key, "configuration message is no doc change notice")
                }
            }
        }
        if let Some(tap) = self.tap.get() {
            tap.event(Some(routing_key), &event);
            inc(&self.stats.events_tapped);
        }
    }
}

/// Did the node queue's own configuration bindings bring this message? Only those are
/// notices for the listener: a live stream binding more of `configuration` must not make
/// the engine reload hooks on every document change it brings.
fn is_config_notice(exchange: &str, routing_key: &str) -> bool {
    exchange == exchanges::CONFIGURATION
        && NODE_QUEUE_BINDINGS
            .iter()
            .any(|(e, pattern)| *e == exchange && topic_matches(pattern, routing_key))
}

impl NodeQueue {
    /// Another node's failed tries, or its operator's flush of failure counts.
    fn count_peer_failures(&self, delivery: &Delivery) {
        let event = match decode(delivery) {
            Ok(event) => event,
            Err(why) => {
                inc(&self.stats.node_malformed);
                tracing::warn!(reason = %why.0, "malformed failure batch ignored");
                return;
            }
        };
        if let Some(failures) = peer_batch(&event, &self.node) {
            self.listener.peer_failures(&failures);
            add(&self.stats.peer_failures, failures.len() as u64);
        } else if let Some(flushed) = peer_flush(&event, &self.node) {
            tracing::info!(account = %flushed.account, hook = ?flushed.hook, "failure counts flushed by another node");
            self.listener.peer_flushed(&flushed);
        }
    }
}

/// Reads a doc change notice (spec §4.2): `Event-Name` is the action, `ID` and `Database`
/// are required, `Type` falls back to the routing key's third segment
/// (`<action>.<db>.<type>.<id>`). `None` for anything else on the exchange.
pub(crate) fn doc_change(event: &Event, routing_key: &str) -> Option<DocChange> {
    if event.category() != Some("configuration") {
        return None;
    }
    let action = DocAction::parse(event.name()?)?;
    let doc_type = event
        .str("Type")
        .or_else(|| routing_key.split('.').nth(2))?
        .to_owned();
    Some(DocChange {
        action,
        id: event.str("ID")?.to_owned(),
        doc_type,
        database: event.str("Database")?.to_owned(),
        account_id: event
            .str("Account-ID")
            .and_then(|a| AccountId::parse(a).ok()),
        // KAZOO reads it with `kz_term:is_true`, which also takes the string "true".
        soft_deleted: match event.get("Is-Soft-Deleted") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "0123456789abcdef0123456789abcdef";

    fn event(v: Value) -> Event {
        Event::from_value(v).unwrap()
    }

    #[test]
    fn notices_become_doc_changes() {
        let e = event(
            json!({"Event-Category": "configuration", "Event-Name": "doc_edited",
            "ID": "h1", "Database": "webhooks", "Type": "webhook", "Account-ID": A,
            "Is-Soft-Deleted": "true", "Rev": "2-x"}),
        );
        assert_eq!(
            doc_change(&e, "doc_edited.webhooks.webhook.h1"),
            Some(DocChange {
                action: DocAction::Edited,
                id: "h1".into(),
                doc_type: "webhook".into(),
                database: "webhooks".into(),
                account_id: Some(AccountId::parse(A).unwrap()),
                soft_deleted: true,
            })
        );
    }

    #[test]
    fn only_the_own_configuration_bindings_bring_notices() {
        assert!(is_config_notice(
            "configuration",
            "doc_edited.webhooks.webhook.h1"
        ));
        assert!(is_config_notice(
            "configuration",
            "doc_deleted.account%2Fxx.account.a1"
        ));
        // What a live stream may bind besides: tapped, not applied.
        assert!(!is_config_notice(
            "configuration",
            "doc_edited.account%2Fxx.user.u1"
        ));
        assert!(!is_config_notice(
            "callevt",
            "doc_edited.webhooks.webhook.h1"
        ));
    }

    #[test]
    fn type_falls_back_to_the_key_and_other_messages_are_not_notices() {
        let e = event(
            json!({"Event-Category": "configuration", "Event-Name": "doc_deleted",
            "ID": A, "Database": "account%2F01%2F23%2F456789abcdef0123456789abcdef"}),
        );
        let change = doc_change(&e, "doc_deleted.account%2F01.account.x").unwrap();
        assert_eq!(change.doc_type, "account");
        assert_eq!(change.account_id, None);
        let other = event(
            json!({"Event-Category": "configuration", "Event-Name": "db_created",
            "ID": "x", "Database": "x"}),
        );
        assert_eq!(doc_change(&other, "db_created.x.database.x"), None);
        let no_id = event(
            json!({"Event-Category": "configuration", "Event-Name": "doc_edited",
            "Database": "webhooks", "Type": "webhook"}),
        );
        assert_eq!(doc_change(&no_id, "k"), None);
    }
}
