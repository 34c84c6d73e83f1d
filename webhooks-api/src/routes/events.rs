//! `POST /v2/events`: KAZOO events in over HTTP, for deployments without RabbitMQ and for
//! tests. The body is one KAZOO AMQP message as JSON (not wrapped in `data`), or an array of
//! them. Only the master account may publish: an event can name any account.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{json, Value};
use webhooks_core::event::EventError;
use webhooks_core::Event;

use crate::auth::Auth;
use crate::body::read_limited;
use crate::envelope::{ApiError, ApiResult, Reply};
use crate::ApiState;

pub async fn publish(
    State(state): State<ApiState>,
    auth: Auth,
    body: axum::body::Body,
) -> ApiResult {
    if !auth.account.superduper_admin {
        return Err(ApiError::forbidden());
    }
    let Some(sink) = state.events() else {
        return Err(ApiError::no_engine("delivers no events"));
    };
    // Not axum's `Bytes` extractor: its own 2 MiB default would override the configured limit.
    let body = read_limited(body, state.config().max_body_bytes).await?;
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid_json(e.to_string()))?;
    let events = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    // The whole batch is checked before any of it is dispatched: a 400 means nothing was sent.
    let events = events
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            Event::from_value(v)
                .and_then(|e| check(&state, &e).map(|()| e))
                .map_err(|e| reject(i, &e.to_string()))
        })
        .collect::<Result<Vec<Event>, ApiError>>()?;
    let mut results = Vec::with_capacity(events.len());
    for (i, event) in events.into_iter().enumerate() {
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

/// What the engine would refuse the event for, found without dispatching it: the required
/// headers, then each responding module's reading of it (as the engine's intake does, a module
/// error counts only when no module produced a delivery).
fn check(state: &ApiState, event: &Event) -> Result<(), EventError> {
    let category = event.required_str("Event-Category")?;
    let name = event.required_str("Event-Name")?;
    let snap = state.hooks().snapshot();
    let mut first_err = None;
    for module in state.registry().responders(category, name) {
        match module.handle_event(event, snap.as_ref()) {
            Ok(dispatches) if !dispatches.is_empty() => return Ok(()),
            Ok(_) | Err(EventError::NoAccount) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// A malformed event: a validation error naming which one and why. None of the batch was
/// dispatched.
fn reject(index: usize, why: &str) -> ApiError {
    ApiError::validation(json!({"event": {"invalid": {"message": why, "index": index}}}))
}
