//! # webhooks-server: the whole engine, started and stopped as one
//!
//! [`run`] is what `webhooksd` does, as a library call an embedder makes too: open the store,
//! make sure the master account exists, start the delivery engine, the crossbar API and (when
//! configured) the AMQP transport, serve until `shutdown` completes, then stop in order:
//!
//! 1. the AMQP consumers are cancelled first, so the broker hands the messages this node has
//!    not acknowledged to another node;
//! 2. the API stops taking connections and finishes the requests it has;
//! 3. the engine takes no more events, delivers what it accepted and writes every attempt;
//!    what is not done by the deadline is cut and recorded as a failed attempt;
//! 4. the delivery journal (at least once, the default) writes its last entries: what was
//!    cut, and the retries still waiting, go on at the next start.
//!
//! [`Server::start`] and [`Server::run_until`] are the same in two steps, for a caller that
//! wants the listening address (or the generated master key) before serving. [`signals`]
//! holds the daemon's SIGTERM/SIGINT handling. This crate holds no behaviour of its own: it
//! wires the library crates together.

mod config;
mod listener;
pub mod signals;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use webhooks_amqp::{AmqpError, AmqpHandle, AmqpTransport};
use webhooks_api::{ApiState, Bootstrap};
use webhooks_core::config::WebhooksConfig;
use webhooks_core::pending::{DeliveryJournal, JournalError};
use webhooks_core::{Store, StoreError};
use webhooks_engine::{Engine, EngineError};
use webhooks_store::{CouchStore, EmbeddedStore, FileJournal, JournalConfig};
use webhooks_websockets::{Hub, HubConfig, Tapped};

pub use config::{host_node_name, DeliveryMode, ServerConfig};
pub use listener::ConnectionLimits;
pub use webhooks_store::CouchConfig;

/// Why the server could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("opening the store in {dir}: {source}")]
    Open {
        dir: std::path::PathBuf,
        source: StoreError,
    },
    #[error("connecting to CouchDB at {url}: {source}")]
    Couch { url: String, source: StoreError },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Journal(#[from] JournalError),
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    #[error("AMQP: {0}")]
    Amqp(#[from] AmqpError),
    #[error("API listener: {0}")]
    Listen(#[from] std::io::Error),
}

/// Runs the server until `shutdown` completes, then stops it gracefully (see the crate's
/// documentation). Returns once everything has stopped.
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    Server::start(config).await?.run_until(shutdown).await
}

/// The store the configuration names: KAZOO's CouchDB, else the embedded store.
async fn open_store(config: &ServerConfig) -> Result<Arc<dyn Store>, ServerError> {
    if let Some(couch) = &config.couchdb {
        let store =
            CouchStore::connect(couch.clone())
                .await
                .map_err(|source| ServerError::Couch {
                    url: format!("{couch:?}"),
                    source,
                })?;
        return Ok(Arc::new(store));
    }
    let store = EmbeddedStore::open(&config.data_dir).map_err(|source| ServerError::Open {
        dir: config.data_dir.clone(),
        source,
    })?;
    Ok(Arc::new(store))
}

/// A started server, not yet serving.
pub struct Server {
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    boot: Bootstrap,
    engine: Engine,
    journal: Option<Arc<FileJournal>>,
    amqp: Option<AmqpHandle>,
    api: ApiState,
    /// `/metrics`, `/healthz` and `/readyz`, served beside the API.
    observability: webhooks_metrics::Observability,
    /// The live-event endpoint and its listener, when configured.
    websockets: Option<(Hub, tokio::net::TcpListener)>,
}

/// The delivery journal in `data_dir/journal`, unless deliveries are at most once.
fn open_journal(config: &ServerConfig) -> Result<Option<Arc<FileJournal>>, ServerError> {
    if config.delivery == DeliveryMode::AtMostOnce {
        return Ok(None);
    }
    let journal = FileJournal::open(&config.data_dir.join("journal"), JournalConfig::default())?;
    let found = journal.open_report();
    tracing::info!(
        pending = found.pending,
        segments = found.segments_read,
        torn = found.torn_segments,
        "delivery journal opened"
    );
    Ok(Some(Arc::new(journal)))
}

impl Server {
    /// Opens the store, bootstraps the master account, starts the engine and the AMQP
    /// transport (when configured) and binds the API's listener.
    pub async fn start(mut config: ServerConfig) -> Result<Server, ServerError> {
        let store = open_store(&config).await?;
        let boot =
            webhooks_api::bootstrap(store.as_ref(), config.master_api_key.as_deref()).await?;
        // The `object` module offers the types the stored settings name, as the CLI reads them.
        let settings = WebhooksConfig::from_doc(store.system_config("webhooks").await?.as_ref());
        let registry = webhooks_modules::kazoo_registry(&settings.object_types);
        // KAZOO's start writes each module's definition (`webhook_meta`) into the master
        // account, where KAZOO's crossbar and Monster UI read them. Not fatal, as in KAZOO:
        // the engine and this API serve the catalogue from the registry.
        match webhooks_core::definitions::init(store.as_ref(), &registry).await {
            Ok(written) if !written.is_empty() => {
                tracing::info!(definitions = ?written, "hook definitions written")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "hook definitions not written"),
        }
        config.engine.cluster_id = Some(boot.cluster_id.clone());
        config.engine.node = config.node.clone();
        config.engine.destinations = config.destinations.clone();
        let journal = open_journal(&config)?;
        let engine = Engine::start_with_journal(
            store.clone(),
            registry.clone(),
            config.engine.clone(),
            journal.clone().map(|j| j as Arc<dyn DeliveryJournal>),
        )
        .await?;
        let websockets = match config.websockets {
            Some(addr) => {
                let settings = store.system_config("blackhole").await?;
                let hub = Hub::new(HubConfig::from_doc(settings.as_ref()), config.node.clone());
                Some((hub, tokio::net::TcpListener::bind(addr).await?))
            }
            None => None,
        };
        if let Some((hub, _)) = &websockets {
            // Every try, for `webhooks.delivery.*` subscriptions (the dashboard's live tail).
            engine.set_try_observer(Box::new(hub.clone()));
        }
        let amqp = match config.amqp.clone() {
            Some(mut amqp_config) => {
                amqp_config.node = config.node.clone();
                if config.delivery == DeliveryMode::AtMostOnce {
                    // KAZOO's way: acknowledged once taken, not held until delivered.
                    amqp_config.hold_until_settled = std::time::Duration::ZERO;
                }
                let listener = Arc::new(engine.clone());
                let handle =
                    AmqpTransport::start(amqp_config, registry, listener.clone(), listener).await?;
                engine.set_notifier(Box::new(handle.clone()));
                engine.set_failure_share(Box::new(handle.clone()));
                if let Some((hub, _)) = &websockets {
                    // Live streams read this node's own queue, bound as sockets subscribe.
                    handle.set_event_tap(Arc::new(hub.clone()));
                    hub.set_binder(Arc::new(handle.clone()));
                }
                Some(handle)
            }
            None => None,
        };
        config.api.node = config.node.clone();
        config.api.destinations = config.destinations.clone();
        // Beside KAZOO, tokens are KAZOO's (RS256 with the system key), so crossbar and this
        // daemon accept each other's.
        if config.couchdb.is_some() {
            config.api.tokens = webhooks_api::TokenMode::Kazoo;
        }
        let observability = webhooks_metrics::Observability::new(
            engine.clone(),
            amqp.clone(),
            websockets.as_ref().map(|(hub, _)| hub.clone()),
            store.clone(),
        );
        let events: Arc<dyn webhooks_core::EventSink> = match &websockets {
            // Events posted to this node reach its live streams too.
            Some((hub, _)) => {
                Arc::new(Tapped::new(Arc::new(engine.clone()), Arc::new(hub.clone())))
            }
            None => Arc::new(engine.clone()),
        };
        let api = ApiState::new(
            store,
            engine.hooks().clone(),
            &boot.signing_secret,
            config.api.clone(),
        )
        .with_events(events)
        .with_failures(Arc::new(engine.clone()))
        .with_resend(Arc::new(engine.clone()))
        .with_counts(Arc::new(engine.clone()))
        .with_request_observer(observability.request_observer());
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        Ok(Server {
            config,
            listener,
            boot,
            engine,
            journal,
            amqp,
            api,
            observability,
            websockets,
        })
    }

    /// Where the live-event websocket endpoint listens, when there is one.
    pub fn websocket_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.websockets.as_ref().map(|(_, l)| l.local_addr())
    }

    /// The live-event hub, when there is one (its counters, for an embedder).
    pub fn hub(&self) -> Option<&Hub> {
        self.websockets.as_ref().map(|(hub, _)| hub)
    }

    /// Where the API listens (port 0 in the configuration picks a free one).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The master account, its key, and whether this start created it.
    pub fn bootstrap(&self) -> &Bootstrap {
        &self.boot
    }

    /// The engine, for an embedder that also publishes events itself.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Serves until `shutdown` completes, then stops everything in order within the drain
    /// deadline.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let Server {
            config,
            listener,
            engine,
            journal,
            amqp,
            api,
            observability,
            websockets,
            ..
        } = self;
        tracing::info!(
            addr = %listener.local_addr()?,
            node = %config.node,
            amqp = amqp.is_some(),
            "webhooks server started"
        );
        let stop_api = CancellationToken::new();
        let websocket_port = websockets
            .as_ref()
            .and_then(|(_, l)| l.local_addr().ok())
            .map(|a| a.port());
        let live = websockets.map(|(hub, listener)| {
            let routes = webhooks_websockets::rest::routes(hub.clone());
            (
                routes,
                serve_websockets(hub, api.clone(), listener, stop_api.clone()),
            )
        });
        let (extra, live) = match live {
            Some((routes, task)) => (routes, Some(task)),
            None => (axum::Router::new(), None),
        };
        let dashboard =
            webhooks_dashboard::routes(webhooks_dashboard::DashboardConfig { websocket_port });
        let app = observability
            .routes()
            .merge(dashboard)
            .merge(webhooks_api::router_with(api, extra));
        let mut serving = tokio::spawn(listener::serve(
            listener,
            app,
            config.connections,
            stop_api.clone(),
        ));
        tokio::select! {
            _ = shutdown => {}
            ended = &mut serving => {
                // The API cannot serve (its listener failed): stop the rest as on a signal.
                tracing::error!(?ended, "API server ended on its own");
            }
        }
        let until = Instant::now() + config.drain_deadline;
        tracing::info!(deadline = ?config.drain_deadline, "shutting down");
        observability.shutting_down();
        stop_api.cancel();
        if let Some(amqp) = amqp {
            amqp.shutdown().await;
        }
        finish_api(serving, until).await;
        if let Some(live) = live {
            // Open sockets are not waited for: a live stream has no end to wait for.
            live.abort();
        }
        engine
            .shutdown(until.saturating_duration_since(Instant::now()))
            .await;
        if let Some(journal) = journal {
            journal.close();
        }
        tracing::info!("webhooks server stopped");
        Ok(())
    }
}

/// Serves the live-event endpoint until `stop`; each connection is its peer address's socket.
fn serve_websockets(
    hub: Hub,
    api: ApiState,
    listener: tokio::net::TcpListener,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let served = webhooks_websockets::socket::serve(listener, hub, api, stop.cancelled_owned());
        if let Err(e) = served.await {
            tracing::error!(error = %e, "websocket listener failed");
        }
    })
}

/// Waits for the API's open requests until `until`; then drops them (their events, if any,
/// were not acknowledged).
async fn finish_api(serving: tokio::task::JoinHandle<std::io::Result<()>>, until: Instant) {
    let abort = serving.abort_handle();
    match tokio::time::timeout_at(until, serving).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "API server failed"),
        Ok(Err(e)) => tracing::error!(error = %e, "API server task failed"),
        Err(_) => {
            abort.abort();
            tracing::warn!("shutdown deadline passed with API requests open; they were dropped");
        }
    }
}
