//! Crossbar's bulk re-enable (spec §4.3): `PATCH /v2/accounts/{A}/webhooks` publishes a
//! `doc_type_update` request on the `configuration` exchange and waits for any reply on its
//! own queue (`Server-ID`, bound to the `targeted` exchange under its name).
//!
//! The request arrives on the shared queue, so exactly one node re-enables and answers. In
//! KAZOO the object module also receives it (it binds `#`) and crashes on it (§16.27); here it
//! is taken before the modules see it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use webhooks_core::transport::ConfigListener;
use webhooks_core::{AccountId, Event};

use crate::keys::exchanges;
use crate::message::{Malformed, Outcome};
use crate::publisher::Publisher;
use crate::stats::{inc, AmqpStats};

/// The `App-Version` this application reports.
pub const APP_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Is this a re-enable request?
pub(crate) fn is_request(event: &Event) -> bool {
    event.category() == Some("configuration") && event.name() == Some("doc_type_update")
}

/// Answers re-enable requests: the engine does the re-enabling, the publisher carries the
/// reply.
pub(crate) struct Reenabler {
    listener: Arc<dyn ConfigListener>,
    publisher: Publisher,
    /// This node's name, the replies' `Node`.
    node: String,
    stats: Arc<AmqpStats>,
}

impl Reenabler {
    pub(crate) fn new(
        listener: Arc<dyn ConfigListener>,
        publisher: Publisher,
        node: String,
        stats: Arc<AmqpStats>,
    ) -> Self {
        Reenabler {
            listener,
            publisher,
            node,
            stats,
        }
    }

    /// Re-enables the account's auto-disabled hooks (and its descendants' for
    /// `Action: descendants`), then answers on the `targeted` exchange.
    ///
    /// `Type` is required (KAZOO's `doc_type_update_v`); a request for another document type is
    /// not ours and is acknowledged untouched. A request without a usable `Account-ID` is
    /// malformed (KAZOO's handler crashes on it). A store failure is answered with
    /// `"status": "error"` so crossbar does not wait for nothing.
    ///
    /// A reply that cannot be sent (the connection just dropped) makes the request go back to the
    /// queue rather than count as done: handled again, the re-enable finds nothing left to do and
    /// the reply goes out then.
    pub(crate) async fn handle(&self, request: &Event) -> Outcome {
        let doc_type = match request.required_str("Type") {
            Ok(t) => t,
            Err(e) => return Outcome::Malformed(Malformed(e.to_string())),
        };
        if doc_type != "webhook" {
            tracing::debug!(doc_type, "doc_type_update for another type ignored");
            return Outcome::Done;
        }
        let account = match request
            .required_str("Account-ID")
            .map_err(|e| e.to_string())
            .and_then(|a| AccountId::parse(a).map_err(|e| e.to_string()))
        {
            Ok(a) => a,
            Err(e) => return Outcome::Malformed(Malformed(e)),
        };
        let descendants = request.str("Action") == Some("descendants");
        inc(&self.stats.reenable_requests);
        let status = match self.listener.reenable(&account, descendants).await {
            Ok(count) => {
                tracing::info!(%account, descendants, count, "re-enable request done");
                "success"
            }
            Err(e) => {
                tracing::error!(%account, error = %e, "re-enable request failed");
                "error"
            }
        };
        if self.reply(request, status).await {
            Outcome::Done
        } else {
            Outcome::Again
        }
    }

    /// Sends the reply now, on this connection; false if it could not be sent.
    async fn reply(&self, request: &Event, status: &str) -> bool {
        let Some(server_id) = request.str("Server-ID").filter(|s| !s.is_empty()) else {
            tracing::debug!("re-enable request without Server-ID: nobody to answer");
            return true;
        };
        let body = reply_message(request, status, &self.node).to_string();
        // No patience: the next connection opens only after this handler returns.
        match self
            .publisher
            .publish(
                exchanges::TARGETED,
                server_id,
                body.as_bytes(),
                Duration::ZERO,
            )
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(server_id, error = %e, "re-enable reply not sent; request requeued");
                false
            }
        }
    }
}

/// KAZOO's reply, published on `targeted` with the request's `Server-ID` as routing key.
pub(crate) fn reply_message(request: &Event, status: &str, node: &str) -> Value {
    let mut reply = json!({
        "status": status,
        "Event-Category": "configuration",
        "Event-Name": "doc_type_updated",
        "App-Name": "webhooks",
        "App-Version": APP_VERSION,
        "Node": node,
    });
    if let Some(msg_id) = request.get("Msg-ID") {
        reply["Msg-ID"] = msg_id.clone();
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_carries_the_request_msg_id() {
        let request = Event::from_value(json!({"Event-Category": "configuration",
            "Event-Name": "doc_type_update", "Type": "webhook", "Msg-ID": "m-1",
            "Server-ID": "q"}))
        .unwrap();
        assert!(is_request(&request));
        let reply = reply_message(&request, "success", "webhooksd@n1");
        assert_eq!(
            reply,
            json!({"status": "success", "Event-Category": "configuration",
                   "Event-Name": "doc_type_updated", "Msg-ID": "m-1", "App-Name": "webhooks",
                   "App-Version": APP_VERSION, "Node": "webhooksd@n1"})
        );
    }
}
