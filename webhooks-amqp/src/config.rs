//! What the transport needs to know: where the broker is, which queue the cluster shares, and
//! how hard to pull from it.

use std::time::Duration;

use webhooks_core::config::node_name;

/// KAZOO's name for the queue every webhooks node consumes events from.
pub const DEFAULT_SHARED_QUEUE: &str = "webhooks_shared_listener";

/// Unacknowledged messages one node holds at a time.
///
/// A message stays unacknowledged until its deliveries settle (sent, or their retry in the
/// journal; see [`AmqpConfig::hold_until_settled`]), a few milliseconds under load, so the
/// prefetch is how many events a node works on at once: at 256 the RabbitMQ rows of the load
/// harness ran at 9,459 deliveries/s (1 hook), at 1024 at 10,778 (BENCHMARKS.md, issue 13).
/// Much more would not help: when the engine pushes back, every extra message only waits in
/// this node's memory instead of in the broker, where another node could take it.
pub const DEFAULT_PREFETCH: u16 = 1024;

/// The RabbitMQ transport's settings.
#[derive(Debug, Clone)]
pub struct AmqpConfig {
    /// `amqp://user:pass@host:port/vhost` (`amqps://` for TLS; the vhost URL-encoded, `%2f`
    /// for `/`).
    pub url: String,
    /// The queue shared by every webhooks node of the cluster (competing consumers: each
    /// event is handled by one node).
    pub shared_queue: String,
    /// See [`DEFAULT_PREFETCH`].
    pub prefetch: u16,
    /// Where rejected (malformed) messages go, as the shared queue's
    /// `x-dead-letter-exchange`. The exchange is the operator's to declare; without it, a
    /// rejected message is dropped (and counted).
    pub dead_letter_exchange: Option<String>,
    /// This node's name, sent as `Node` in replies, used as the shared queue's consumer tag
    /// and shown as the connection name. Defaults to `webhooksd@localhost`: the daemon reads
    /// the host's name once and sets the real one
    /// ([`node_name`](webhooks_core::config::node_name)).
    pub node: String,
    /// First wait before reconnecting; doubled after each failed attempt up to
    /// `reconnect_max`. KAZOO waits 500 ms, then up to 5 s.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// How long a message stays unacknowledged after the engine took it, waiting for its
    /// deliveries to settle (sent, failed for good, or their retry in the engine's journal).
    /// While it waits, the broker gives it to another node if this one dies, so a node's
    /// death costs a repeat (same `webhook-id`), not a wait for its restart. Past it the
    /// message is acknowledged anyway (a hanging receiver must not pin the prefetch window);
    /// the engine's journal keeps what is left. Zero acknowledges as soon as the engine took
    /// the event.
    pub hold_until_settled: Duration,
}

impl AmqpConfig {
    /// KAZOO-compatible settings for the broker at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        AmqpConfig {
            url: url.into(),
            shared_queue: DEFAULT_SHARED_QUEUE.into(),
            prefetch: DEFAULT_PREFETCH,
            dead_letter_exchange: None,
            node: node_name("localhost"),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(5),
            hold_until_settled: Duration::from_secs(2),
        }
    }

    /// The wait before reconnect attempt `attempt` (0 for the first).
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.reconnect_min
            .saturating_mul(factor)
            .min(self.reconnect_max)
            .max(self.reconnect_min)
    }
}

impl Default for AmqpConfig {
    /// A local broker with RabbitMQ's default account and vhost.
    fn default() -> Self {
        AmqpConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_between_min_and_max() {
        let c = AmqpConfig {
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_millis(1000),
            ..AmqpConfig::default()
        };
        let waits: Vec<u128> = (0..6).map(|a| c.backoff(a).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(c.backoff(u32::MAX), Duration::from_millis(1000));
    }

    #[test]
    fn defaults_are_kazoos() {
        let c = AmqpConfig::default();
        assert_eq!(c.shared_queue, "webhooks_shared_listener");
        assert_eq!(c.reconnect_min, Duration::from_millis(500));
        assert_eq!(c.reconnect_max, Duration::from_secs(5));
        assert_eq!(c.node, node_name("localhost"));
    }
}
