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
use webhooks_core::live::LiveHooks;
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
    /// Widest `created_from`..`created_to` range for attempt listings (crossbar's
    /// `maximum_range`, 31 days + 1 hour).
    pub max_range_secs: i64,
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
            max_range_secs: 2_682_000,
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

    /// The hooks that fire; every write the API makes is applied here.
    pub fn hooks(&self) -> &LiveHooks {
        &self.0.hooks
    }

    pub fn events(&self) -> Option<&Arc<dyn EventSink>> {
        self.0.events.as_ref()
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
    let info = envelope::EnvelopeInfo {
        node: state.config().node.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let routes = Router::new()
        .route("/v2/api_auth", put(routes::api_auth::create))
        .route("/v2/events", axum::routing::post(routes::events::publish))
        .merge(routes::accounts::routes())
        .merge(routes::webhooks::routes())
        .route("/v2/health", get(routes::health))
        .fallback(routes::not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(move |req, next| {
            envelope::finish_envelope(info.clone(), req, next)
        }))
        .layer(axum::middleware::from_fn(cors::cors));
    // Routing happens before a Router's own layers run, so the slash is trimmed by a service
    // in front of the routes; wrapping it as a fallback keeps the result a plain `Router`.
    Router::new()
        .fallback_service(tower_http::normalize_path::NormalizePath::trim_trailing_slash(routes))
}
