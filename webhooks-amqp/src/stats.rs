//! Counters: what the transport did, for logs and tests (`AmqpHandle::stats`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared by the transport's tasks.
#[derive(Debug, Default)]
pub(crate) struct AmqpStats {
    pub(crate) consumed: AtomicU64,
    pub(crate) redelivered: AtomicU64,
    pub(crate) requeued: AtomicU64,
    pub(crate) acked: AtomicU64,
    pub(crate) rejected_malformed: AtomicU64,
    pub(crate) duplicates_suppressed: AtomicU64,
    pub(crate) reenable_requests: AtomicU64,
    pub(crate) config_notices: AtomicU64,
    pub(crate) notifications_published: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) failures_shared: AtomicU64,
    pub(crate) failures_unshared: AtomicU64,
    pub(crate) peer_failures: AtomicU64,
    pub(crate) acked_unsettled: AtomicU64,
    pub(crate) node_binds: AtomicU64,
    pub(crate) node_unbinds: AtomicU64,
    pub(crate) node_binding_failures: AtomicU64,
    pub(crate) events_tapped: AtomicU64,
    pub(crate) node_malformed: AtomicU64,
}

pub(crate) fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AmqpStatsSnapshot {
    /// Messages received from the shared queue (redeliveries included).
    pub consumed: u64,
    /// Of those, messages the broker marked `redelivered` (handed out before, to this node or
    /// another, and not acknowledged).
    pub redelivered: u64,
    /// Messages rejected with requeue: the engine was stopping, or could not make their
    /// deliveries durable; the broker hands them out again.
    pub requeued: u64,
    /// Messages acknowledged after the engine took them (or after a re-enable was done).
    pub acked: u64,
    /// Messages rejected without requeue: not JSON, not an object, no `Event-Category` /
    /// `Event-Name` strings, or refused by the modules. They go to the dead-letter exchange
    /// when one is configured.
    pub rejected_malformed: u64,
    /// Redeliveries of messages this node had already handed to the engine but whose ack
    /// did not (or may not) reach the broker before the connection dropped; acknowledged
    /// without handing them over again.
    pub duplicates_suppressed: u64,
    /// Re-enable requests from crossbar handled (and answered).
    pub reenable_requests: u64,
    /// Document change notices applied from the per-node queue.
    pub config_notices: u64,
    /// Notifications published on the `notifications` exchange.
    pub notifications_published: u64,
    /// Times the connection was re-established after it was lost.
    pub reconnects: u64,
    /// This node's failed tries sent to the other nodes.
    pub failures_shared: u64,
    /// This node's failed tries the other nodes were not told about (outbox full, or no
    /// connection within a few seconds).
    pub failures_unshared: u64,
    /// Failed tries other nodes told this one about.
    pub peer_failures: u64,
    /// Messages acknowledged before their deliveries settled (`hold_until_settled` passed):
    /// from then on the engine's journal alone keeps what is left of them.
    pub acked_unsettled: u64,
    /// Bindings live streams asked for that the broker added to this node's own queue
    /// (`NodeBinder::bind`), the ones bound again after a reconnect included.
    pub node_binds: u64,
    /// Of those, bindings removed again (`NodeBinder::unbind`).
    pub node_unbinds: u64,
    /// Binds and unbinds of this node's own queue that failed on a live connection: refused by
    /// the broker (an exchange declared with another type, no access) or not answered in time,
    /// and binds refused before asking (a name over AMQP's 255 bytes). A pair the broker
    /// refused stays wanted and is tried again on the next connection.
    pub node_binding_failures: u64,
    /// Messages from this node's own queue handed to the event tap (live streams).
    pub events_tapped: u64,
    /// Messages on this node's own queue that could not be read (not JSON, no
    /// `Event-Category` / `Event-Name`): logged and dropped.
    pub node_malformed: u64,
}

impl AmqpStats {
    pub(crate) fn snapshot(&self) -> AmqpStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AmqpStatsSnapshot {
            consumed: get(&self.consumed),
            redelivered: get(&self.redelivered),
            requeued: get(&self.requeued),
            acked: get(&self.acked),
            rejected_malformed: get(&self.rejected_malformed),
            duplicates_suppressed: get(&self.duplicates_suppressed),
            reenable_requests: get(&self.reenable_requests),
            config_notices: get(&self.config_notices),
            notifications_published: get(&self.notifications_published),
            reconnects: get(&self.reconnects),
            failures_shared: get(&self.failures_shared),
            failures_unshared: get(&self.failures_unshared),
            peer_failures: get(&self.peer_failures),
            acked_unsettled: get(&self.acked_unsettled),
            node_binds: get(&self.node_binds),
            node_unbinds: get(&self.node_unbinds),
            node_binding_failures: get(&self.node_binding_failures),
            events_tapped: get(&self.events_tapped),
            node_malformed: get(&self.node_malformed),
        }
    }
}
