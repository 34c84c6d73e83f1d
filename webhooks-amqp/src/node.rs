//! This node's configuration listener (KAZOO's `webhooks_listener`, spec §10.2).
//!
//! Unlike events, configuration must reach every node: each keeps its own hook table. So each
//! node has its own queue (exclusive, auto-delete, named by the broker) bound on the
//! `configuration` exchange to webhook document changes and account deletions. Notices are
//! applied one at a time, in the order they were published, so a create followed by a delete
//! cannot be applied the other way round. The same queue brings the failed tries the other
//! nodes share (`failures.rs`).
//!
//! Notices published while this node is disconnected are not queued for it (its queue goes
//! with its connection, as in KAZOO); the engine's follow of the store's change feed catches
//! those writes up.

use std::sync::Arc;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::{Channel, Consumer};
use serde_json::Value;
use webhooks_core::transport::{ConfigListener, DocAction, DocChange};
use webhooks_core::{AccountId, Event};

use crate::ending::{cancel_consumer, SessionEnd, SessionEnding};
use crate::failures::{peer_batch, peer_flush};
use crate::keys::NODES_EXCHANGE;
use crate::message::decode;
use crate::stats::{add, inc, AmqpStats};

/// The configuration-notice consumer's state: who applies the notices.
pub(crate) struct NodeQueue {
    listener: Arc<dyn ConfigListener>,
    stats: Arc<AmqpStats>,
    /// This node's name: its own shared failures come back on its queue and are skipped.
    node: String,
}

impl NodeQueue {
    pub(crate) fn new(
        listener: Arc<dyn ConfigListener>,
        stats: Arc<AmqpStats>,
        node: String,
    ) -> Arc<Self> {
        Arc::new(NodeQueue {
            listener,
            stats,
            node,
        })
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
        let routing_key = delivery.routing_key.as_str();
        if delivery.exchange.as_str() == NODES_EXCHANGE {
            return self.count_peer_failures(delivery);
        }
        match decode(delivery).map(|e| doc_change(&e, routing_key)) {
            Ok(Some(change)) => {
                self.listener.doc_changed(&change).await;
                inc(&self.stats.config_notices);
                tracing::debug!(?change, "doc change notice applied");
            }
            Ok(None) => {
                tracing::debug!(routing_key, "configuration message is no doc change notice")
            }
            Err(why) => {
                tracing::warn!(routing_key, reason = %why.0, "malformed doc change notice ignored")
            }
        }
    }
}

impl NodeQueue {
    /// Another node's failed tries, or its operator's flush of failure counts.
    fn count_peer_failures(&self, delivery: &Delivery) {
        let event = match decode(delivery) {
            Ok(event) => event,
            Err(why) => {
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
