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
use webhooks_core::transport::{FailedTry, FlushedFailures};
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

/// What goes out, in the order it happened: a flush sent after failed tries must reach the
/// other nodes after them, or it would leave them counted there.
pub(crate) enum Shared {
    Failure(FailedTry),
    Flush(FlushedFailures),
}

/// The sending side: cheap to clone, never waits.
#[derive(Clone)]
pub(crate) struct FailureOutbox {
    queue: mpsc::Sender<Shared>,
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
        self.queue.try_send(Shared::Failure(failure)).is_ok()
    }

    /// Queues a flush behind the failed tries already queued; false when it was dropped.
    pub(crate) fn push_flush(&self, flushed: FlushedFailures) -> bool {
        self.queue.try_send(Shared::Flush(flushed)).is_ok()
    }
}

async fn send_batches(
    node: String,
    publisher: Publisher,
    stats: std::sync::Arc<AmqpStats>,
    mut waiting: mpsc::Receiver<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut taken = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            n = waiting.recv_many(&mut taken, BATCH) => if n == 0 { return },
        }
        // A failing destination fails many tries at once: let them gather.
        let linger = tokio::time::sleep(LINGER);
        tokio::pin!(linger);
        while taken.len() < BATCH {
            let room = BATCH - taken.len();
            tokio::select! {
                _ = &mut linger => break,
                n = waiting.recv_many(&mut taken, room) => if n == 0 { break },
            }
        }
        let mut batch = Vec::with_capacity(taken.len());
        for shared in taken.drain(..) {
            match shared {
                Shared::Failure(failure) => batch.push(failure),
                Shared::Flush(flushed) => {
                    send_failures(&node, &publisher, &stats, &mut batch).await;
                    send_flush(&node, &publisher, &flushed).await;
                }
            }
        }
        send_failures(&node, &publisher, &stats, &mut batch).await;
    }
}

/// Sends (and empties) a batch of failed tries, if there is one.
async fn send_failures(
    node: &str,
    publisher: &Publisher,
    stats: &AmqpStats,
    batch: &mut Vec<FailedTry>,
) {
    if batch.is_empty() {
        return;
    }
    let body = serde_json::to_vec(&batch_message(node, batch)).unwrap_or_default();
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

async fn send_flush(node: &str, publisher: &Publisher, flushed: &FlushedFailures) {
    let body = serde_json::to_vec(&flush_message(node, flushed)).unwrap_or_default();
    if let Err(e) = publisher
        .publish(NODES_EXCHANGE, PEER_FAILURES_KEY, &body, PATIENCE)
        .await
    {
        tracing::warn!(error = %e, account = %flushed.account, "flushed failure counts not told to the other nodes");
    }
}

/// `{"Event-Category": "webhooks", "Event-Name": "flushed_failures", "Node": ..,
/// "Account-ID": .., "Hook-ID": ..}` (no `Hook-ID`: every hook of the account).
fn flush_message(node: &str, flushed: &FlushedFailures) -> Value {
    let mut message = json!({
        "Event-Category": "webhooks",
        "Event-Name": "flushed_failures",
        "Node": node,
        "App-Name": "webhooks",
        "Account-ID": flushed.account,
    });
    if let Some(hook) = &flushed.hook {
        message["Hook-ID"] = json!(hook);
    }
    message
}

/// Reads a flush another node sent; `None` for this node's own and for anything else.
pub(crate) fn peer_flush(event: &Event, own_node: &str) -> Option<FlushedFailures> {
    if event.category() != Some("webhooks") || event.name() != Some("flushed_failures") {
        return None;
    }
    if event.str("Node") == Some(own_node) {
        return None;
    }
    Some(FlushedFailures {
        account: AccountId::parse(event.str("Account-ID")?).ok()?,
        hook: event.str("Hook-ID").map(str::to_owned),
    })
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
    fn a_flush_reads_back_on_another_node_and_not_on_its_own() {
        for hook in [None, Some("h1".to_owned())] {
            let flushed = FlushedFailures {
                account: AccountId::parse(A).unwrap(),
                hook,
            };
            let event = Event::from_value(flush_message("webhooksd@a", &flushed)).unwrap();
            assert_eq!(peer_flush(&event, "webhooksd@b"), Some(flushed));
            assert_eq!(peer_flush(&event, "webhooksd@a"), None);
            assert_eq!(peer_batch(&event, "webhooksd@b"), None);
        }
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
