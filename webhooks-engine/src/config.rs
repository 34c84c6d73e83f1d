//! The engine's own knobs. KAZOO's settings (timeouts, thresholds, success logging) live in the
//! store's `webhooks` system config and are read from there; these are about capacity.

use std::time::Duration;

use webhooks_core::destination::DestinationPolicy;

/// Capacity and pacing of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Deliveries waiting to be routed. When full, `publish` waits: intake slows down instead
    /// of memory growing.
    pub intake_capacity: usize,
    /// Deliveries queued in destination lanes (not yet sent) across all destinations; past it
    /// intake pauses.
    pub max_queued: usize,
    /// HTTP requests in flight at once, all destinations together.
    pub max_in_flight: usize,
    /// HTTP requests in flight to one destination (scheme, host, port). A destination that
    /// hangs can hold no more than this many slots, so it cannot starve the others.
    pub per_destination_in_flight: usize,
    /// Deliveries queued for one destination before it counts as backed up. A backed-up
    /// destination that still answers pauses intake (backpressure: nothing is lost); one that
    /// has stalled (requests in flight, none finished for `stall_after`) has its overflow
    /// failed at once ("destination backlog full", then the retry rules), so a dead
    /// destination cannot fill the shared queue and stall healthy ones.
    pub destination_backlog: usize,
    /// How long a destination may hold requests without finishing any before it counts as
    /// stalled.
    pub stall_after: Duration,
    /// Wait before a retry (KAZOO: a fixed 2 s).
    pub retry_delay: Duration,
    /// `cluster_id` added to every payload (KAZOO's `cluster.cluster_id`).
    pub cluster_id: Option<String>,
    /// Attempt documents waiting to be written; when full, senders wait. Twice
    /// `attempt_batch` lets senders go on while a batch is being written; more only holds
    /// documents in memory (a few KiB each: at 32,768 the 10-hook load row peaked at 383 MiB,
    /// at 8,192 at 240 MiB, no slower; BENCHMARKS.md, issue 13).
    pub attempt_queue: usize,
    /// Attempt documents written per store transaction at most.
    pub attempt_batch: usize,
    /// How long a small batch (under a quarter of `attempt_batch`) waits for more before it is
    /// written. Fewer, larger commits cost the disk far less; deliveries never wait on it.
    pub attempt_linger: Duration,
    /// Attempt documents kept while the store refuses them (CouchDB down), to be written once
    /// it is back; past it the oldest are given up and counted as lost.
    pub attempt_backlog: usize,
    /// Largest response body kept in an attempt document.
    pub max_response_body: usize,
    /// How often hook writes made by other processes (the CLI) are picked up.
    pub follow_every: Duration,
    /// This node's name (`Node` of the `webhook_disabled` notice).
    pub node: String,
    /// Where deliveries may go: the SSRF guard, on by default (internal addresses refused;
    /// see `webhooks_core::destination`). Tests and local development whose receivers listen
    /// on loopback use `DestinationPolicy::loopback_allowed()`.
    pub destinations: DestinationPolicy,
    /// Requests per second at most to one destination (scheme, host, port), on top of any
    /// hook's own `rate_limit`; `None` for no limit. Deliveries over it wait (`limits.rs`).
    pub destination_rate_limit: Option<std::num::NonZeroU32>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            intake_capacity: 4096,
            max_queued: 100_000,
            max_in_flight: 1024,
            per_destination_in_flight: 64,
            destination_backlog: 10_000,
            stall_after: Duration::from_secs(2),
            retry_delay: Duration::from_secs(2),
            cluster_id: None,
            attempt_queue: 8192,
            attempt_batch: 4096,
            attempt_linger: Duration::from_millis(20),
            attempt_backlog: 200_000,
            max_response_body: 64 * 1024,
            follow_every: Duration::from_millis(250),
            node: webhooks_core::config::node_name("localhost"),
            destinations: DestinationPolicy::default(),
            destination_rate_limit: None,
        }
    }
}
