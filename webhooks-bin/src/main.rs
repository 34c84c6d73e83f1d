//! `webhooksd`: the webhooks daemon.
//!
//! Wiring only: read the flags, open the embedded store, make sure the master account exists,
//! register KAZOO's modules, start the delivery engine, serve the API. Every behaviour lives
//! in a library crate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use webhooks_api::{ApiConfig, ApiState};
use webhooks_core::config::{UriBlacklist, DEFAULT_OBJECT_TYPES};
use webhooks_core::failures::FailureTracker;
use webhooks_core::table::HookTable;
use webhooks_engine::{Engine, EngineConfig};
use webhooks_store::EmbeddedStore;

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

    /// Lifetime of auth tokens issued by `PUT /v2/api_auth`, in seconds.
    #[arg(long, env = "WEBHOOKS_TOKEN_TTL_SECS", default_value_t = 3600)]
    token_ttl_secs: u64,

    /// Name reported as `node` in API responses.
    #[arg(
        long,
        env = "WEBHOOKS_NODE_NAME",
        default_value = "webhooksd@localhost"
    )]
    node_name: String,

    /// HTTP requests in flight at once, all destinations together.
    #[arg(long, env = "WEBHOOKS_MAX_IN_FLIGHT", default_value_t = EngineConfig::default().max_in_flight)]
    max_in_flight: usize,

    /// HTTP requests in flight to one destination (scheme, host, port) at once.
    #[arg(long, env = "WEBHOOKS_PER_DESTINATION_IN_FLIGHT", default_value_t = EngineConfig::default().per_destination_in_flight)]
    per_destination_in_flight: usize,

    /// Deliveries queued for one destination before new ones fail at once.
    #[arg(long, env = "WEBHOOKS_DESTINATION_BACKLOG", default_value_t = EngineConfig::default().destination_backlog)]
    destination_backlog: usize,

    /// Wait before retrying a failed delivery, in milliseconds (KAZOO: 2000).
    #[arg(long, env = "WEBHOOKS_RETRY_DELAY_MS", default_value_t = 2000)]
    retry_delay_ms: u64,

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

    /// Exchange that malformed messages are dead-lettered to (declared by the operator).
    #[arg(long, env = "WEBHOOKS_AMQP_DEAD_LETTER_EXCHANGE")]
    amqp_dead_letter_exchange: Option<String>,
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let uri_blacklist = blacklist(&args)?;

    let store = Arc::new(EmbeddedStore::open(&args.data_dir)?);
    let boot = webhooks_api::bootstrap(store.as_ref(), args.master_api_key.as_deref()).await?;
    if boot.created {
        println!("master account {} created", boot.master_account_id);
        if args.master_api_key.is_none() {
            println!(
                "master api key (shown once, keep it): {}",
                boot.master_api_key
            );
        }
    }

    let object_types: Vec<String> = DEFAULT_OBJECT_TYPES.iter().map(|s| s.to_string()).collect();
    let registry = webhooks_modules::kazoo_registry(&object_types);
    let hooks = Arc::new(HookTable::new());
    let failures = Arc::new(FailureTracker::new());
    let engine_config = EngineConfig {
        max_in_flight: args.max_in_flight,
        per_destination_in_flight: args.per_destination_in_flight,
        destination_backlog: args.destination_backlog,
        retry_delay: std::time::Duration::from_millis(args.retry_delay_ms),
        cluster_id: Some(boot.cluster_id.clone()),
        ..EngineConfig::default()
    };
    let engine = Engine::start(
        store.clone(),
        registry.clone(),
        hooks.clone(),
        failures.clone(),
        engine_config,
    )
    .await?;

    let config = ApiConfig {
        max_body_bytes: args.max_body_bytes,
        token_ttl_secs: args.token_ttl_secs,
        uri_blacklist,
        node: args.node_name.clone(),
        ..ApiConfig::default()
    };
    let amqp = match &args.amqp_url {
        Some(url) => {
            let mut cfg = webhooks_amqp::AmqpConfig::new(url.clone());
            cfg.shared_queue = args.amqp_queue.clone();
            cfg.prefetch = args.amqp_prefetch;
            cfg.dead_letter_exchange = args.amqp_dead_letter_exchange.clone();
            let handle = webhooks_amqp::AmqpTransport::start(
                cfg,
                registry.clone(),
                Arc::new(engine.clone()),
                Arc::new(engine.clone()),
            )
            .await?;
            engine.set_notifier(Box::new(handle.clone()));
            println!(
                "consuming KAZOO events from RabbitMQ queue {}",
                args.amqp_queue
            );
            Some(handle)
        }
        None => None,
    };

    let state = ApiState::new(store, registry, &boot.signing_secret, config)
        .with_hook_table(hooks)
        .with_failures(failures)
        .with_events(Arc::new(engine.clone()));
    let app = webhooks_api::router(state);

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    tracing::info!(addr = %listener.local_addr()?, data_dir = %args.data_dir.display(), "webhooksd started");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // Stop taking events first (unacknowledged ones go back to the broker), then let queued
    // deliveries finish and their attempts reach the store.
    if let Some(amqp) = amqp {
        amqp.shutdown().await;
    }
    engine.shutdown(std::time::Duration::from_secs(10)).await;
    tracing::info!("webhooksd stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
