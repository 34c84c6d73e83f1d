//! `POST /v2/events`: KAZOO events in over HTTP, for deployments without RabbitMQ and for
//! tests. The body is one KAZOO AMQP message as JSON (not wrapped in `data`), or an array of
//! them. Only the master account may publish: an event can name any account.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{json, Value};
use webhooks_core::event::EventError;
use webhooks_core::Event;

use crate::auth::Auth;
use crate::envelope::{ApiError, ApiResult, Reply};
use crate::ApiState;

pub async fn publish(
    State(state): State<ApiState>,
    auth: Auth,
    body: axum::body::Bytes,
) -> ApiResult {
    if !auth.account.superduper_admin {
        return Err(ApiError::forbidden());
    }
    let Some(sink) = state.events() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no delivery engine",
            json!({"message": "this server does not deliver events"}),
        ));
    };
    if body.len() > state.config().max_body_bytes {
        return Err(ApiError::too_large(state.config().max_body_bytes));
    }
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid_json(e.to_string()))?;
    let events = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    let mut results = Vec::with_capacity(events.len());
    for (i, v) in events.into_iter().enumerate() {
        let event = Event::from_value(v).map_err(|e| reject(i, &e.to_string()))?;
        let report = sink.publish(event).await.map_err(|e| match e {
            // Not the client's fault: this node is stopping. Events before it were accepted.
            EventError::Stopped => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting down",
                json!({"message": "the engine is shutting down; send the event again later", "index": i}),
            ),
            EventError::NotDurable(why) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "datastore_fault",
                json!({"message": format!("the event's deliveries could not be stored ({why}); send it again later"), "index": i}),
            ),
            e => reject(i, &e.to_string()),
        })?;
        results.push(match report.dropped {
            None => json!({"dispatched": report.dispatched}),
            Some(why) => json!({"dispatched": 0, "dropped": why}),
        });
    }
    let mut reply = Reply::ok(if results.len() == 1 {
        results.remove(0)
    } else {
        Value::Array(results)
    });
    reply.status = StatusCode::ACCEPTED;
    Ok(reply)
}

/// A malformed event: a validation error naming which one and why. Events before it in an
/// array were accepted.
fn reject(index: usize, why: &str) -> ApiError {
    ApiError::validation(json!({"event": {"invalid": {"message": why, "index": index}}}))
}
