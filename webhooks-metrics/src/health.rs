//! `/healthz` (the process answers) and `/readyz` (it can do its work: the store answers, the
//! broker connection is up when there is a broker, the engine takes events).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use webhooks_amqp::AmqpHandle;
use webhooks_core::Store;
use webhooks_engine::Engine;

/// How long the store's cheap read may take before `/readyz` calls it down.
const STORE_PATIENCE: Duration = Duration::from_secs(2);

pub(crate) struct Readiness {
    pub(crate) engine: Engine,
    pub(crate) amqp: Option<AmqpHandle>,
    pub(crate) store: Arc<dyn Store>,
    /// Cancelled when a shutdown starts.
    pub(crate) stopping: CancellationToken,
}

pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

impl Readiness {
    /// 200 `{"ready": true}`, or 503 `{"ready": false, "reasons": [...]}`.
    pub(crate) async fn check(&self) -> (StatusCode, Json<Value>) {
        let mut reasons = Vec::new();
        if self.stopping.is_cancelled() {
            reasons.push("shutting down".to_owned());
        }
        if !self.engine.is_accepting() {
            reasons.push("intake closed: the engine is stopping".to_owned());
        }
        if let Some(amqp) = &self.amqp {
            if !amqp.is_connected() {
                reasons.push("broker connection down".to_owned());
            }
        }
        // One keyed read of a small document: cheap on SQLite and on CouchDB alike.
        match tokio::time::timeout(STORE_PATIENCE, self.store.system_config("webhooks")).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => reasons.push(format!("store: {e}")),
            Err(_) => reasons.push(format!(
                "store: no answer within {} s",
                STORE_PATIENCE.as_secs()
            )),
        }
        if reasons.is_empty() {
            (StatusCode::OK, Json(json!({"ready": true})))
        } else {
            tracing::debug!(?reasons, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"ready": false, "reasons": reasons})),
            )
        }
    }
}
