//! # webhooks-api: KAZOO's crossbar REST API for webhooks, as an axum `Router`
//!
//! Clients written for KAZOO (Monster UI, the PHP SDK, curl scripts) talk to this API without
//! knowing it is not crossbar: same paths, same `{"data": ...}` envelope, same status codes and
//! validation errors. An embedder builds an [`ApiState`] over any [`webhooks_core::Store`] and
//! mounts [`router`] in its own server; the `webhooksd` daemon does exactly that.
//!
//! Read in this order: [`envelope`] (how every response is shaped), [`auth`] (the caller and
//! the account-tree rule), [`tokens`] (which tokens, [`TokenMode`]) and [`kazoo_tokens`]
//! (KAZOO's RS256 tokens and keys), then the handlers in `routes/`, one file per resource.

pub mod auth;
pub mod body;
pub mod bootstrap;
pub mod claims;
pub mod cors;
pub mod envelope;
pub mod kazoo_tokens;
pub mod query;
mod routes;
pub mod tokens;

use std::sync::Arc;

use axum::routing::{get, put};
use axum::Router;
use webhooks_core::config::UriBlacklist;
use webhooks_core::delivery_stats::DeliveryCounts;
use webhooks_core::failures::FailureDesk;
use webhooks_core::live::LiveHooks;
use webhooks_core::replay::Resend;
use webhooks_core::{EventSink, ModuleRegistry, Store};

pub use auth::Auth;
pub use bootstrap::{bootstrap, Bootstrap};
pub use claims::Claims;
pub use envelope::{ApiError, ApiResult, Reply};
pub use tokens::{TokenMode, Tokens};

/// Settings of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted; larger ones get a 413.
    pub max_body_bytes: usize,
    /// `page_size` when the client sends none (crossbar's `pagination_page_size`).
    pub default_page_size: usize,
    /// Token lifetime.
    pub token_ttl_secs: u64,
    /// Which tokens `PUT /v2/api_auth` issues: the engine's own (HS256), or KAZOO's (RS256
    /// with the system key, so crossbar accepts them). KAZOO's are accepted in both modes.
    pub tokens: TokenMode,
    /// Create-time refusal list for hook uris.
    pub uri_blacklist: UriBlacklist,
    /// The SSRF guard's policy, checked on a hook's uri when it is saved (the engine checks
    /// it again on every delivery).
    pub destinations: webhooks_core::destination::DestinationPolicy,
    /// Widest `created_from`..`created_to` range for attempt listings (crossbar's
    /// `maximum_range`, 31 days + 1 hour).
    pub max_range_secs: i64,
    /// Largest `custom_data` of a hook, serialized as JSON, in bytes: it is merged into every
    /// payload the hook sends.
    pub max_custom_data_bytes: usize,
    /// Webhooks an account may have (soft-deleted ones do not count).
    pub max_hooks_per_account: usize,
    /// Largest `page_size` a listing accepts, and the most items a `paginate=false` listing
    /// returns (more is a 400 asking for pages).
    pub max_page_size: usize,
    /// Reported as `node` in every envelope.
    pub node: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 1024 * 1024,
            default_page_size: 50,
            token_ttl_secs: 3600,
            tokens: TokenMode::Local,
            uri_blacklist: UriBlacklist::default(),
            destinations: Default::default(),
            max_range_secs: 2_682_000,
            max_custom_data_bytes: 16 * 1024,
            max_hooks_per_account: 1000,
            max_page_size: 1000,
            node: webhooks_core::config::node_name("localhost"),
        }
    }
}

#[derive(Clone)]
struct Inner {
    store: Arc<dyn Store>,
    tokens: Arc<Tokens>,
    config: ApiConfig,
    hooks: Arc<LiveHooks>,
    events: Option<Arc<dyn EventSink>>,
    failures: Option<Arc<dyn FailureDesk>>,
    resend: Option<Arc<dyn Resend>>,
    counts: Option<Arc<dyn DeliveryCounts>>,
    requests: Option<Arc<dyn RequestObserver>>,
}

/// Told about every request the API answered: the route template it matched
/// (`/v2/accounts/{account_id}/webhooks`, never the raw path; `unmatched` when none did), the
/// method, the final status and the time taken. `webhooks-metrics` counts them.
pub trait RequestObserver: Send + Sync + 'static {
    fn observe(&self, route: &str, method: &str, status: u16, took: std::time::Duration);
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct ApiState(Arc<Inner>);

impl ApiState {
    /// `hooks` is the delivery engine's (`Engine::hooks`): every edit made through the API
    /// reaches it at once. An API served without an engine passes a `LiveHooks` of its own.
    /// `signing_secret` signs the engine's own tokens ([`TokenMode::Local`]); [`bootstrap()`]
    /// keeps one in the store.
    pub fn new(
        store: Arc<dyn Store>,
        hooks: Arc<LiveHooks>,
        signing_secret: &[u8],
        config: ApiConfig,
    ) -> Self {
        let tokens = Arc::new(Tokens::new(
            config.tokens,
            signing_secret,
            config.token_ttl_secs,
        ));
        ApiState(Arc::new(Inner {
            store,
            tokens,
            config,
            hooks,
            events: None,
            failures: None,
            resend: None,
            counts: None,
            requests: None,
        }))
    }

    fn with(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Inner::clone(&self.0);
        f(&mut inner);
        ApiState(Arc::new(inner))
    }

    /// Where `POST /v2/events` sends events (the engine).
    pub fn with_events(self, events: Arc<dyn EventSink>) -> Self {
        self.with(|i| i.events = Some(events))
    }

    /// Where `.../webhooks/failures` reads and flushes failure counts (the engine).
    pub fn with_failures(self, failures: Arc<dyn FailureDesk>) -> Self {
        self.with(|i| i.failures = Some(failures))
    }

    /// Where `.../replay` and `.../recover` send deliveries again (the engine).
    pub fn with_resend(self, resend: Arc<dyn Resend>) -> Self {
        self.with(|i| i.resend = Some(resend))
    }

    /// Where `.../stats` reads each hook's recent tries (the engine).
    pub fn with_counts(self, counts: Arc<dyn DeliveryCounts>) -> Self {
        self.with(|i| i.counts = Some(counts))
    }

    /// Where every answered request is reported (`webhooks-metrics`).
    pub fn with_request_observer(self, observer: Arc<dyn RequestObserver>) -> Self {
        self.with(|i| i.requests = Some(observer))
    }

    /// The hooks that fire; every write the API makes is applied here.
    pub fn hooks(&self) -> &LiveHooks {
        &self.0.hooks
    }

    pub fn events(&self) -> Option<&Arc<dyn EventSink>> {
        self.0.events.as_ref()
    }

    pub fn failures(&self) -> Option<&Arc<dyn FailureDesk>> {
        self.0.failures.as_ref()
    }

    pub fn resend(&self) -> Option<&Arc<dyn Resend>> {
        self.0.resend.as_ref()
    }

    pub fn counts(&self) -> Option<&Arc<dyn DeliveryCounts>> {
        self.0.counts.as_ref()
    }

    pub fn store(&self) -> &dyn Store {
        self.0.store.as_ref()
    }

    pub fn registry(&self) -> &ModuleRegistry {
        self.0.hooks.registry()
    }

    pub fn tokens(&self) -> &Tokens {
        &self.0.tokens
    }

    pub fn config(&self) -> &ApiConfig {
        &self.0.config
    }
}

/// The whole API under `/v2`, wrapped in crossbar's envelope and CORS headers. Unknown routes
/// are 404 and known routes with the wrong method are 405, both as crossbar errors. A path
/// with a trailing slash (`PUT .../webhooks/`) is served as the path without it.
pub fn router(state: ApiState) -> Router {
    router_with(state, Router::new())
}

/// [`router`] with `extra` routes of another crate (the websockets crate's `/v2/websockets`
/// views) served beside crossbar's, in the same envelope and with the same auth.
pub fn router_with(state: ApiState, extra: Router<ApiState>) -> Router {
    let info = envelope::EnvelopeInfo {
        node: state.config().node.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        max_body_bytes: state.config().max_body_bytes,
    };
    let body_limit = axum::extract::DefaultBodyLimit::max(state.config().max_body_bytes);
    let observer = state.0.requests.clone();
    let routes = Router::new()
        .route("/v2/api_auth", put(routes::api_auth::create))
        .route("/v2/events", axum::routing::post(routes::events::publish))
        .merge(routes::accounts::routes())
        .merge(routes::webhooks::routes())
        .merge(routes::secrets::routes())
        .merge(routes::failures::routes())
        .merge(routes::replay::routes())
        .merge(routes::stats::routes())
        .merge(extra)
        .route("/v2/health", get(routes::health))
        .fallback(routes::not_found)
        .with_state(state)
        // Any body extractor axum offers reads up to the same limit as `body.rs` does.
        .layer(body_limit)
        .layer(axum::middleware::from_fn(move |req, next| {
            envelope::finish_envelope(info.clone(), req, next)
        }))
        .layer(axum::middleware::from_fn(cors::cors));
    // Layers of a `Router` run once it has routed, so both see the matched route.
    let routes = match observer {
        Some(observer) => routes.layer(axum::middleware::from_fn(move |req, next| {
            observe_request(observer.clone(), req, next)
        })),
        None => routes,
    };
    let routes = routes.layer(axum::middleware::from_fn(request_id));
    // Routing happens before a Router's own layers run, so the slash is trimmed by a service
    // in front of the routes; wrapping it as a fallback keeps the result a plain `Router`.
    Router::new()
        .fallback_service(tower_http::normalize_path::NormalizePath::trim_trailing_slash(routes))
}

/// The route template a request matched, or `unmatched`.
fn route_of(req: &axum::extract::Request) -> String {
    req.extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned()
}

/// Reports the answered request to the observer.
async fn observe_request(
    observer: Arc<dyn RequestObserver>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (route, method) = (route_of(&req), req.method().clone());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    observer.observe(
        &route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Gives every request an id, the client's `X-Request-ID` or a new one, which the envelope
/// reports and the response echoes, and runs the request in a span that carries it: every log
/// line written while serving it names the request.
async fn request_id(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use envelope::X_REQUEST_ID;
    use tracing::Instrument;
    let given = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .map(str::to_owned);
    let id = given.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let value = axum::http::HeaderValue::from_str(&id).ok();
    if let Some(v) = &value {
        req.headers_mut().insert(X_REQUEST_ID.clone(), v.clone());
    }
    // A span's level decides whether it exists at all, not which lines show: at ERROR it is
    // there whenever any line is logged, so even `RUST_LOG=warn` lines name the request.
    let span = tracing::error_span!(
        "api_request",
        request_id = %id,
        method = %req.method(),
        route = %route_of(&req),
    );
    let mut response = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "request answered"));
    if let Some(v) = value {
        response
            .headers_mut()
            .entry(X_REQUEST_ID.clone())
            .or_insert(v);
    }
    response
}
