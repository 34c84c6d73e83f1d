//! The server's settings: what `webhooksd`'s flags fill in, and what an embedder builds.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use webhooks_amqp::AmqpConfig;
use webhooks_api::ApiConfig;
use webhooks_engine::EngineConfig;
use webhooks_store::CouchConfig;

use crate::listener::ConnectionLimits;

/// Everything [`run`](crate::run) needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// The embedded store's directory (created if missing; with `couchdb`, only the delivery
    /// journal is kept here).
    pub data_dir: PathBuf,
    /// KAZOO's CouchDB: when set, accounts, hooks, attempts, settings and signing keys are
    /// read and written there, in KAZOO's own layout, instead of the embedded store.
    pub couchdb: Option<CouchConfig>,
    /// The master account's api key; generated at the first start when `None`.
    pub master_api_key: Option<String>,
    /// This node's name: the API's `node`, the AMQP replies' `Node`, the `webhook_disabled`
    /// notice's `Node`. It replaces whatever `api`, `engine` and `amqp` say.
    pub node: String,
    pub api: ApiConfig,
    /// Where deliveries may go (the SSRF guard, on by default); copied into `api` (checked
    /// when a hook is saved) and `engine` (checked on every delivery), as `node` is.
    pub destinations: webhooks_core::destination::DestinationPolicy,
    /// The engine's capacity (its `cluster_id` comes from the store).
    pub engine: EngineConfig,
    /// The RabbitMQ transport; without it, events come in over `POST /v2/events` only.
    pub amqp: Option<AmqpConfig>,
    /// How long a shutdown may take, from the signal: the API's open requests, then the
    /// engine's accepted deliveries. What is left at the deadline is cut and recorded as
    /// failed attempts (and, at least once, kept in the journal for the next start).
    pub drain_deadline: Duration,
    /// At least once (the default: deliveries are kept in a journal in `data_dir/journal`
    /// before an event is acknowledged), or at most once (KAZOO's: in memory only).
    pub delivery: DeliveryMode,
    /// The API listener's timeouts and connection cap.
    pub connections: ConnectionLimits,
    /// Where the live-event websocket endpoint (KAZOO's blackhole protocol) listens; `None`:
    /// no endpoint. Its limits are read from `system_config/blackhole` at start.
    pub websockets: Option<SocketAddr>,
}

/// What an acknowledged event is promised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeliveryMode {
    /// An event is acknowledged once its deliveries are in the journal on disk; after a crash
    /// or a restart they go on from there. A receiver may see a delivery twice (the same
    /// `webhook-id`), never lose one.
    #[default]
    AtLeastOnce,
    /// KAZOO's behaviour and cost: deliveries live in memory only, and AMQP messages are
    /// acknowledged once taken, not held until delivered; a crash loses those in flight and
    /// the retries waiting.
    AtMostOnce,
}

impl ServerConfig {
    /// The defaults, on the embedded store in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir: data_dir.into(),
            couchdb: None,
            master_api_key: None,
            node: host_node_name(),
            api: ApiConfig::default(),
            destinations: Default::default(),
            engine: EngineConfig::default(),
            amqp: None,
            drain_deadline: Duration::from_secs(10),
            delivery: DeliveryMode::default(),
            connections: ConnectionLimits::default(),
            websockets: None,
        }
    }
}

/// `webhooksd@<this host's name>` (`localhost` when the name cannot be read).
pub fn host_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    webhooks_core::config::node_name(&host)
}
