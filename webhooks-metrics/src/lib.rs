//! # webhooks-metrics: a window into the engine
//!
//! What an operator watches: [`Observability::routes`] serves
//! - `GET /metrics`: built with `prometheus-client`, in OpenMetrics for a scraper that asks
//!   for it (Prometheus does), else in Prometheus' classic text format (`format.rs`);
//! - `GET /healthz`: 200 while the process answers;
//! - `GET /readyz`: 200 when the store answers a cheap read, the broker connection is up (if
//!   there is a broker) and the engine takes events; 503 with the reasons otherwise, and from
//!   the start of a shutdown on.
//!
//! Most metrics cost nothing until scraped: `collector.rs` reads the engine's counters
//! (`Engine::stats`, `finished`, `latencies`, `load`) and the AMQP transport's
//! (`AmqpHandle::stats`) at scrape time and encodes them. Only the API's per-route request
//! counts are kept here (`requests.rs`, fed by the API router through
//! [`webhooks_api::RequestObserver`]), and the process' memory is read from `/proc`
//! (`process.rs`). Health is `health.rs`.
//!
//! This crate reads the engine and the transport; it must not depend on `webhooks-server`,
//! which mounts it. Start with [`Observability::new`].

mod collector;
mod format;
mod health;
mod process;
mod requests;

use std::sync::Arc;

use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use webhooks_amqp::AmqpHandle;
use webhooks_core::Store;
use webhooks_engine::Engine;

pub use requests::RequestMetrics;

/// The content type of `GET /metrics` for a scraper that asks for OpenMetrics (Prometheus
/// does), what `prometheus-client` writes.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of `GET /metrics` otherwise: Prometheus' classic text format, which
/// `curl`, `promtool check metrics` and older scrapers read.
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics registry and what readiness looks at. Cheap to clone.
#[derive(Clone)]
pub struct Observability {
    registry: Arc<Registry>,
    requests: Arc<RequestMetrics>,
    readiness: Arc<health::Readiness>,
}

impl Observability {
    /// Metrics and health of this engine, its AMQP transport (if any), its live-event hub (if
    /// any) and its store.
    pub fn new(
        engine: Engine,
        amqp: Option<AmqpHandle>,
        hub: Option<webhooks_websockets::Hub>,
        store: Arc<dyn Store>,
    ) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collector::EngineCollector {
            engine: engine.clone(),
            amqp: amqp.clone(),
            hub,
        }));
        registry.register_collector(Box::new(process::ProcessCollector));
        let requests = Arc::new(RequestMetrics::default());
        requests.register(&mut registry);
        Observability {
            registry: Arc::new(registry),
            requests,
            readiness: Arc::new(health::Readiness {
                engine,
                amqp,
                store,
                stopping: CancellationToken::new(),
            }),
        }
    }

    /// What the API router reports each request to (`ApiState::with_request_observer`).
    pub fn request_observer(&self) -> Arc<dyn webhooks_api::RequestObserver> {
        self.requests.clone()
    }

    /// From now on `/readyz` answers 503 ("shutting down"): call it when a shutdown starts,
    /// so a load balancer stops sending before the listener closes.
    pub fn shutting_down(&self) {
        self.readiness.stopping.cancel();
    }

    /// Every metric, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail; an encoder error would be a bug in a collector.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }

    /// Every metric, in Prometheus' classic text format (0.0.4).
    pub fn encode_prometheus_text(&self) -> String {
        format::openmetrics_to_prometheus_text(&self.encode())
    }

    /// The scrape, in the format `headers` ask for: OpenMetrics when `Accept` names it, else
    /// Prometheus' classic text format.
    pub fn scrape(&self, headers: &HeaderMap) -> (&'static str, String) {
        let wants_openmetrics = headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("application/openmetrics-text"));
        if wants_openmetrics {
            (OPENMETRICS_CONTENT_TYPE, self.encode())
        } else {
            (PROMETHEUS_TEXT_CONTENT_TYPE, self.encode_prometheus_text())
        }
    }

    /// `GET /metrics`, `GET /healthz` and `GET /readyz`, with no authentication: merge them
    /// into the API's router. Anyone who reaches the listener reads them, so do not expose
    /// `/metrics` beyond the network Prometheus scrapes from.
    pub fn routes(&self) -> Router {
        let metrics = self.clone();
        let readiness = self.readiness.clone();
        Router::new()
            .route(
                "/metrics",
                get(move |headers: HeaderMap| {
                    let metrics = metrics.clone();
                    async move {
                        let (content_type, body) = metrics.scrape(&headers);
                        ([(CONTENT_TYPE, content_type)], body)
                    }
                }),
            )
            .route("/healthz", get(health::healthz))
            .route(
                "/readyz",
                get(move || {
                    let readiness = readiness.clone();
                    async move { readiness.check().await.into_response() }
                }),
            )
    }
}
