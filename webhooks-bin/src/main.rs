//! `webhooksd`: the webhooks daemon.
//!
//! Flags only: read them, install the allocator, and hand over to `webhooks_server`, which
//! opens the store, starts the engine, the API and the AMQP transport, and stops them
//! gracefully on SIGTERM or SIGINT. Every behaviour lives in a library crate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use webhooks_api::ApiConfig;
use webhooks_core::config::UriBlacklist;
use webhooks_core::destination::DestinationPolicy;
use webhooks_engine::EngineConfig;
use webhooks_server::{ConnectionLimits, CouchConfig, DeliveryMode, Server, ServerConfig};

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A KAZOO-compatible webhooks engine. Serves crossbar's webhooks API on an embedded store.
#[derive(Parser, Debug)]
#[command(
    name = "webhooksd",
    version,
    about = "A KAZOO-compatible webhooks engine: crossbar's webhooks API on an embedded store"
)]
struct Args {
    /// Address the REST API listens on. Port 0 picks a free port (the chosen address is
    /// printed as `listening on ...`).
    #[arg(long, env = "WEBHOOKS_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,

    /// Directory of the embedded store (created if missing). Everything the daemon keeps,
    /// accounts, hooks, attempts and configuration, lives in `webhooks.sqlite3` there.
    #[arg(long, env = "WEBHOOKS_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,

    /// Api key of the master account. When unset, one is generated at the first start,
    /// stored, and printed once; when set, the stored key is replaced by this one.
    #[arg(long, env = "WEBHOOKS_MASTER_API_KEY", hide_env_values = true)]
    master_api_key: Option<String>,

    /// Largest request body the API accepts, in bytes; larger ones are refused with a 413.
    #[arg(long, env = "WEBHOOKS_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    max_body_bytes: usize,

    /// Host names a hook's uri may not name (KAZOO's client blacklist), comma-separated.
    /// Give an empty value to allow every host.
    #[arg(
        long,
        env = "WEBHOOKS_BLOCKED_HOSTS",
        value_delimiter = ',',
        default_value = "localhost"
    )]
    blocked_hosts: Vec<String>,

    /// Networks an IP-literal hook uri may not fall in, comma-separated CIDRs.
    /// Give an empty value to allow every address.
    #[arg(
        long,
        env = "WEBHOOKS_BLOCKED_CIDRS",
        value_delimiter = ',',
        default_value = "127.0.0.1/32,0.0.0.0/32"
    )]
    blocked_cidrs: Vec<String>,

    /// The SSRF guard's allow-list, comma-separated: CIDR networks, addresses and host names
    /// that hooks may reach although internal (loopback, private, link-local, carrier-grade
    /// NAT, unique-local, multicast... are refused by default, at save and at every delivery).
    /// For example `10.20.0.0/16,receiver.lan`. `*` turns the guard off.
    #[arg(long, env = "WEBHOOKS_ALLOWED_DESTINATIONS", value_delimiter = ',')]
    allowed_destinations: Vec<String>,

    /// Requests per second at most to one destination (scheme, host, port), all its hooks
    /// together; a hook may also carry its own `rate_limit`. Deliveries over a limit wait
    /// (never dropped, never counted as failures). Unset: no limit.
    #[arg(long, env = "WEBHOOKS_DESTINATION_RATE_LIMIT")]
    destination_rate_limit: Option<std::num::NonZeroU32>,

    /// Lifetime of auth tokens issued by `PUT /v2/api_auth`, in seconds.
    #[arg(long, env = "WEBHOOKS_TOKEN_TTL_SECS", default_value_t = 3600)]
    token_ttl_secs: u64,

    /// This node's name: `node` in API responses, `Node` in AMQP replies and in the
    /// `webhook_disabled` notice. Defaults to `webhooksd@<host name>`.
    #[arg(long, env = "WEBHOOKS_NODE_NAME", default_value_t = webhooks_server::host_node_name())]
    node_name: String,

    /// How long a shutdown (SIGTERM, SIGINT) may take, in seconds: open API requests finish,
    /// accepted deliveries are sent; what is left then is cut and recorded as failed attempts.
    /// A second signal exits at once.
    #[arg(long, env = "WEBHOOKS_DRAIN_DEADLINE_SECS", default_value_t = 10)]
    drain_deadline_secs: u64,

    /// How long a client may take to send a request's head, from its first byte, in
    /// milliseconds; the connection is closed after.
    #[arg(
        long,
        env = "WEBHOOKS_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    header_read_timeout_ms: u64,

    /// How long a client may take to send a request's body, from the end of its head, in
    /// milliseconds; it is answered 408 and the connection closed after.
    #[arg(long, env = "WEBHOOKS_BODY_TIMEOUT_MS", default_value_t = 30_000)]
    body_timeout_ms: u64,

    /// How long a keep-alive connection may stay open with no request, in milliseconds.
    #[arg(long, env = "WEBHOOKS_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    idle_timeout_ms: u64,

    /// API connections open at once; more wait in the listen backlog until one closes.
    #[arg(long, env = "WEBHOOKS_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,

    /// Largest `custom_data` of a hook, in bytes of JSON.
    #[arg(long, env = "WEBHOOKS_MAX_CUSTOM_DATA_BYTES", default_value_t = ApiConfig::default().max_custom_data_bytes)]
    max_custom_data_bytes: usize,

    /// Webhooks one account may have.
    #[arg(long, env = "WEBHOOKS_MAX_HOOKS_PER_ACCOUNT", default_value_t = ApiConfig::default().max_hooks_per_account)]
    max_hooks_per_account: usize,

    /// Largest `page_size` of a listing, and the most items a `paginate=false` listing returns.
    #[arg(long, env = "WEBHOOKS_MAX_PAGE_SIZE", default_value_t = ApiConfig::default().max_page_size)]
    max_page_size: usize,

    /// HTTP requests in flight at once, all destinations together.
    #[arg(long, env = "WEBHOOKS_MAX_IN_FLIGHT", default_value_t = EngineConfig::default().max_in_flight)]
    max_in_flight: usize,

    /// HTTP requests in flight to one destination (scheme, host, port) at once.
    #[arg(long, env = "WEBHOOKS_PER_DESTINATION_IN_FLIGHT", default_value_t = EngineConfig::default().per_destination_in_flight)]
    per_destination_in_flight: usize,

    /// Deliveries queued for one destination before it counts as backed up: while it still
    /// answers, intake slows down (nothing is lost); once it has stalled (no answer for 2 s),
    /// its overflow fails at once and counts towards disabling its hooks.
    #[arg(long, env = "WEBHOOKS_DESTINATION_BACKLOG", default_value_t = EngineConfig::default().destination_backlog)]
    destination_backlog: usize,

    /// `at-least-once` (the default): an event is acknowledged (202, AMQP ack) only once its
    /// deliveries are in the journal in --data-dir/journal; after a crash or restart they go
    /// on there, with the same `webhook-id`. `at-most-once`: KAZOO's behaviour, deliveries in
    /// memory only (a crash loses those in flight and the retries waiting).
    #[arg(long, env = "WEBHOOKS_DELIVERY", value_enum, default_value_t = Delivery::AtLeastOnce)]
    delivery: Delivery,

    /// Wait before retrying a failed delivery, in milliseconds (KAZOO: 2000).
    #[arg(long, env = "WEBHOOKS_RETRY_DELAY_MS", default_value_t = 2000)]
    retry_delay_ms: u64,

    /// KAZOO's CouchDB, e.g. `http://admin:secret@127.0.0.1:5984`: accounts, hooks, attempts
    /// (monthly databases), settings and signing keys in KAZOO's own layout, shared with
    /// crossbar and with other webhooksd nodes. Without it, the embedded store in --data-dir.
    #[arg(long, env = "WEBHOOKS_COUCHDB_URL", hide_env_values = true)]
    couchdb_url: Option<String>,

    /// CouchDB user (instead of writing it in the url).
    #[arg(long, env = "WEBHOOKS_COUCHDB_USERNAME")]
    couchdb_username: Option<String>,

    /// CouchDB password (instead of writing it in the url).
    #[arg(long, env = "WEBHOOKS_COUCHDB_PASSWORD", hide_env_values = true)]
    couchdb_password: Option<String>,

    /// RabbitMQ to consume KAZOO's events from, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    /// Without it, events come in over `POST /v2/events` only.
    #[arg(long, env = "WEBHOOKS_AMQP_URL", hide_env_values = true)]
    amqp_url: Option<String>,

    /// The queue shared by every webhooks node (KAZOO's name by default).
    #[arg(long, env = "WEBHOOKS_AMQP_QUEUE", default_value = webhooks_amqp::DEFAULT_SHARED_QUEUE)]
    amqp_queue: String,

    /// Unacknowledged messages the broker hands this node at once.
    #[arg(long, env = "WEBHOOKS_AMQP_PREFETCH", default_value_t = webhooks_amqp::DEFAULT_PREFETCH)]
    amqp_prefetch: u16,

    /// How long a consumed message stays unacknowledged while its deliveries settle (sent,
    /// or their retry in the journal), in milliseconds: if this node dies meanwhile, the
    /// broker gives the message to another node. Past it the message is acknowledged and the
    /// journal alone keeps what is left. 0 acknowledges once the deliveries are journaled.
    #[arg(
        long,
        env = "WEBHOOKS_AMQP_HOLD_UNTIL_SETTLED_MS",
        default_value_t = 2000
    )]
    amqp_hold_until_settled_ms: u64,

    /// Exchange that malformed messages are dead-lettered to (declared by the operator).
    #[arg(long, env = "WEBHOOKS_AMQP_DEAD_LETTER_EXCHANGE")]
    amqp_dead_letter_exchange: Option<String>,

    /// Where the live-event websocket endpoint (KAZOO blackhole's protocol) listens; port 0
    /// picks a free one (printed as `websockets listening on ...`). An empty value turns it off.
    #[arg(
        long,
        env = "WEBHOOKS_WEBSOCKET_LISTEN",
        default_value = "127.0.0.1:5555"
    )]
    websocket_listen: String,

    /// Log lines as `text` (for people) or `json` (one object a line, with the span fields:
    /// `request_id` for API lines; `account`, `hook` and `webhook_id` for deliveries).
    #[arg(long, env = "WEBHOOKS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn blacklist(args: &Args) -> Result<UriBlacklist, String> {
    let hosts = args
        .blocked_hosts
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    let cidrs = args
        .blocked_cidrs
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<ipnet::IpNet>()
                .map_err(|e| format!("--blocked-cidrs {c:?}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(UriBlacklist { hosts, cidrs })
}

/// `--allowed-destinations` as a policy: guarded unless the list is `*`.
fn destinations(args: &Args) -> Result<DestinationPolicy, String> {
    if args.allowed_destinations.iter().any(|e| e.trim() == "*") {
        return Ok(DestinationPolicy::open());
    }
    DestinationPolicy::allowing(args.allowed_destinations.iter().map(String::as_str))
        .map_err(|e| format!("--allowed-destinations: {e}"))
}

/// `--log-format`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), in `format`.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        // The current span's fields (the request id) and every enclosing span's.
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

/// `--delivery`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Delivery {
    AtLeastOnce,
    AtMostOnce,
}

impl Args {
    fn server_config(self) -> Result<ServerConfig, String> {
        let uri_blacklist = blacklist(&self)?;
        let destinations = destinations(&self)?;
        let amqp = self.amqp_url.as_ref().map(|url| {
            let mut cfg = webhooks_amqp::AmqpConfig::new(url.clone());
            cfg.shared_queue = self.amqp_queue.clone();
            cfg.prefetch = self.amqp_prefetch;
            cfg.hold_until_settled = Duration::from_millis(self.amqp_hold_until_settled_ms);
            cfg.dead_letter_exchange = self.amqp_dead_letter_exchange.clone();
            cfg
        });
        let couchdb = self.couchdb_url.as_ref().map(|url| CouchConfig {
            username: self.couchdb_username.clone(),
            password: self.couchdb_password.clone(),
            ..CouchConfig::new(url.clone())
        });
        let websockets = match self.websocket_listen.trim() {
            "" => None,
            addr => Some(
                addr.parse()
                    .map_err(|e| format!("--websocket-listen {addr:?}: {e}"))?,
            ),
        };
        Ok(ServerConfig {
            listen: self.listen,
            websockets,
            couchdb,
            master_api_key: self.master_api_key,
            node: self.node_name,
            api: ApiConfig {
                max_body_bytes: self.max_body_bytes,
                token_ttl_secs: self.token_ttl_secs,
                max_custom_data_bytes: self.max_custom_data_bytes,
                max_hooks_per_account: self.max_hooks_per_account,
                max_page_size: self.max_page_size,
                uri_blacklist,
                ..ApiConfig::default()
            },
            engine: EngineConfig {
                max_in_flight: self.max_in_flight,
                per_destination_in_flight: self.per_destination_in_flight,
                destination_backlog: self.destination_backlog,
                retry_delay: Duration::from_millis(self.retry_delay_ms),
                destination_rate_limit: self.destination_rate_limit,
                ..EngineConfig::default()
            },
            amqp,
            drain_deadline: Duration::from_secs(self.drain_deadline_secs),
            connections: ConnectionLimits {
                header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
                body_timeout: Duration::from_millis(self.body_timeout_ms),
                idle_timeout: Duration::from_millis(self.idle_timeout_ms),
                max_connections: self.max_connections,
            },
            destinations,
            delivery: match self.delivery {
                Delivery::AtLeastOnce => DeliveryMode::AtLeastOnce,
                Delivery::AtMostOnce => DeliveryMode::AtMostOnce,
            },
            ..ServerConfig::new(self.data_dir)
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    init_logging(args.log_format);
    let config = args.server_config()?;
    let (generated_key, amqp_queue) = (
        config.master_api_key.is_none(),
        config.amqp.as_ref().map(|a| a.shared_queue.clone()),
    );
    let server = Server::start(config).await?;
    let boot = server.bootstrap();
    if boot.created {
        println!("master account {} created", boot.master_account_id);
        if generated_key {
            println!(
                "master api key (shown once, keep it): {}",
                boot.master_api_key
            );
        }
    }
    if let Some(queue) = amqp_queue {
        println!("consuming KAZOO events from RabbitMQ queue {queue}");
    }
    if let Some(addr) = server.websocket_addr() {
        println!("websockets listening on {}", addr?);
    }
    println!("listening on {}", server.local_addr()?);
    server
        .run_until(webhooks_server::signals::terminate())
        .await?;
    Ok(())
}
