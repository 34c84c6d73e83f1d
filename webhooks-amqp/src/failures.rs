//! Failed tries shared between nodes, so every node counts every failure towards auto-disable
//! (KAZOO counts per node: with three nodes a hook needed three times the failures).
//!
//! Each node sends its failed tries, in batches, on an exchange of ours ([`NODES_EXCHANGE`])
//! under [`PEER_FAILURES_KEY`]; every node's configuration queue is bound to it, and a node skips
//! its own batches (it counted them when they happened). Batches are best effort, like
//! KAZOO's own change notices: one lost with a connection leaves a count a little low for one
//! window, never a hook disabled twice (the disable itself is a revision-checked write).

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use webhooks_core::transport::FailedTry;
use webhooks_core::{AccountId, Event};

use crate::keys::{NODES_EXCHANGE, PEER_FAILURES_KEY};
use crate::publisher::Publisher;
use crate::stats::{add, AmqpStats};

/// Failed tries waiting to go out; beyond this, new ones are dropped and counted.
const OUTBOX_CAPACITY: usize = 65_536;
/// Failed tries per message.
const BATCH: usize = 1024;
/// How long a batch waits for more before it goes.
const LINGER: Duration = Duration::from_millis(20);
/// How long a batch waits for a connection before it is dropped.
const PATIENCE: Duration = Duration::from_secs(5);

/// The sending side: cheap to clone, never waits.
#[derive(Clone)]
pub(crate) struct FailureOutbox {
    queue: mpsc::Sender<FailedTry>,
}

impl FailureOutbox {
    /// Starts the task that sends batches until `stopped`.
    pub(crate) fn start(
        node: String,
        publisher: Publisher,
        stats: std::sync::Arc<AmqpStats>,
        stopped: watch::Receiver<bool>,
    ) -> Self {
        let (queue, waiting) = mpsc::channel(OUTBOX_CAPACITY);
        tokio::spawn(send_batches(node, publisher, stats, waiting, stopped));
        FailureOutbox { queue }
    }

    /// Queues a failed try; false when the outbox is full (or stopped) and it was dropped.
    pub(crate) fn push(&self, failure: FailedTry) -> bool {
        self.queue.try_send(failure).is_ok()
    }
}

async fn send_batches(
    node: String,
    publisher: Publisher,
    stats: std::sync::Arc<AmqpStats>,
    mut waiting: mpsc::Receiver<FailedTry>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            n = waiting.recv_many(&mut batch, BATCH) => if n == 0 { return },
        }
        // A failing destination fails many tries at once: let them gather.
        let linger = tokio::time::sleep(LINGER);
        tokio::pin!(linger);
        while batch.len() < BATCH {
            let room = BATCH - batch.len();
            tokio::select! {
                _ = &mut linger => break,
                n = waiting.recv_many(&mut batch, room) => if n == 0 { break },
            }
        }
        let body = serde_json::to_vec(&batch_message(&node, &batch)).unwrap_or_default();
        let sent = publisher
            .publish(NODES_EXCHANGE, PEER_FAILURES_KEY, &body, PATIENCE)
            .await;
        match sent {
            Ok(()) => add(&stats.failures_shared, batch.len() as u64),
            Err(e) => {
                add(&stats.failures_unshared, batch.len() as u64);
                tracing::warn!(error = %e, failures = batch.len(), "failed tries not shared with the other nodes");
            }
        }
        batch.clear();
    }
}

/// `{"Event-Category": "webhooks", "Event-Name": "failed_tries", "Node": .., "Failures":
/// [[account, hook, unix ms], ..]}`: KAZOO's message shape, so KAZOO's tools can read it.
fn batch_message(node: &str, batch: &[FailedTry]) -> Value {
    let failures: Vec<Value> = batch
        .iter()
        .map(|f| json!([f.account, f.hook, f.at_ms]))
        .collect();
    json!({
        "Event-Category": "webhooks",
        "Event-Name": "failed_tries",
        "Node": node,
        "App-Name": "webhooks",
        "Failures": failures,
    })
}

/// Reads a batch another node sent; `None` for this node's own batches and for anything that
/// is not a batch. Malformed entries are skipped.
pub(crate) fn peer_batch(event: &Event, own_node: &str) -> Option<Vec<FailedTry>> {
    if event.category() != Some("webhooks") || event.name() != Some("failed_tries") {
        return None;
    }
    if event.str("Node") == Some(own_node) {
        return None;
    }
    let entries = event.get("Failures")?.as_array()?;
    Some(entries.iter().filter_map(failed_try).collect())
}

fn failed_try(entry: &Value) -> Option<FailedTry> {
    let [account, hook, at] = entry.as_array()?.as_slice() else {
        return None;
    };
    Some(FailedTry {
        account: AccountId::parse(account.as_str()?).ok()?,
        hook: hook.as_str()?.to_owned(),
        at_ms: at.as_i64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef";

    fn failure(hook: &str, at_ms: i64) -> FailedTry {
        FailedTry {
            account: AccountId::parse(A).unwrap(),
            hook: hook.into(),
            at_ms,
        }
    }

    #[test]
    fn a_batch_reads_back_on_another_node_and_not_on_its_own() {
        let sent = vec![failure("h1", 1_000), failure("h2", 2_000)];
        let event = Event::from_value(batch_message("webhooksd@a", &sent)).unwrap();
        assert_eq!(peer_batch(&event, "webhooksd@b"), Some(sent));
        assert_eq!(peer_batch(&event, "webhooksd@a"), None);
    }

    #[test]
    fn malformed_entries_are_skipped_and_other_messages_ignored() {
        let event = Event::from_value(json!({
            "Event-Category": "webhooks", "Event-Name": "failed_tries", "Node": "x",
            "Failures": [[A, "h1", 5], ["not-an-account", "h", 1], [A, 7, 1], [A, "h2"]],
        }))
        .unwrap();
        assert_eq!(peer_batch(&event, "me"), Some(vec![failure("h1", 5)]));
        let notice = Event::from_value(json!({
            "Event-Category": "configuration", "Event-Name": "doc_edited",
        }))
        .unwrap();
        assert_eq!(peer_batch(&notice, "me"), None);
    }
}
