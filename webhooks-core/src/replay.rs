//! Sending a delivery again from its attempt documents (replay, recover): no I/O here, only
//! which attempts qualify and the delivery each one becomes.
//!
//! An attempt document keeps what was sent (method, body, content type, `webhook_id`; for a
//! GET, the query in the private `pvt_req_query`, since KAZOO's `uri` field is recorded
//! without it) and, in `pvt_final_try`, whether that try was the delivery's last. A replay
//! is a new delivery of that request, with the same `webhook-id` (a receiver that already has
//! it can tell), to the hook as it is now: its current uri, custom headers and secret.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::delivery::{Delivery, HttpRequest};
use crate::doc::Doc;
use crate::event::EventError;
use crate::hook::{Hook, HttpVerb};

pub use crate::delivery::{FINAL_TRY, REQUEST_QUERY};

/// Sends deliveries built here as an event's deliveries are sent: durable before it returns
/// when the engine keeps a journal. The engine implements it; the API's replay and recover
/// routes hold it.
#[async_trait::async_trait]
pub trait Resend: Send + Sync {
    /// Queues the deliveries; returns how many.
    async fn resend(&self, deliveries: Vec<Delivery>) -> Result<usize, EventError>;
}

/// Why an attempt cannot be sent again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("the attempt has no webhook_id (it was recorded before deliveries had one)")]
    NoWebhookId,
    #[error("the attempt has no usable method")]
    NoMethod,
    #[error("the attempt belongs to hook {0}, not this one")]
    OtherHook(String),
}

/// True for a failed try after which the delivery was given up: its attempt says so
/// (`pvt_final_try`), or, for attempts written without that field (by KAZOO, or before it
/// existed), KAZOO's own rule: bad response codes are never retried, and transport errors
/// are retried until `retries_left` reads "retries exceeded".
pub fn is_final_failure(attempt: &Doc) -> bool {
    if attempt.str("result") != Some("failure") {
        return false;
    }
    match attempt.get(FINAL_TRY) {
        Some(Value::Bool(last)) => *last,
        _ => {
            attempt.str("reason") == Some("bad response code")
                || attempt.str("retries_left") == Some("retries exceeded")
        }
    }
}

/// Picks, among attempts read oldest first, the deliveries a recovery sends again: those
/// whose newest attempt is a final failure. A later success (replays always record theirs)
/// or a retry still to come takes a delivery off the list.
#[derive(Debug, Default)]
pub struct Recovery {
    failed: HashMap<(String, String), Doc>,
}

impl Recovery {
    /// Reads the next attempt (oldest first).
    pub fn read(&mut self, attempt: &Doc) {
        let (Some(hook), Some(webhook_id)) = (attempt.str("hook_id"), attempt.str("webhook_id"))
        else {
            return;
        };
        let key = (hook.to_owned(), webhook_id.to_owned());
        if is_final_failure(attempt) {
            self.failed.insert(key, attempt.clone());
        } else {
            self.failed.remove(&key);
        }
    }

    /// Deliveries to send again so far.
    pub fn len(&self) -> usize {
        self.failed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.failed.is_empty()
    }

    /// The last failed attempt of each delivery to send again, oldest first.
    pub fn into_attempts(self) -> Vec<Doc> {
        let mut attempts: Vec<Doc> = self.failed.into_values().collect();
        attempts
            .sort_by(|a, b| (a.i64("pvt_created"), a.id()).cmp(&(b.i64("pvt_created"), b.id())));
        attempts
    }
}

/// The delivery that sends `attempt`'s request again to `hook` as it is now.
pub fn replay_delivery(attempt: &Doc, hook: Arc<Hook>) -> Result<Delivery, ReplayError> {
    if let Some(other) = attempt.str("hook_id").filter(|h| *h != hook.id) {
        return Err(ReplayError::OtherHook(other.to_owned()));
    }
    let webhook_id = attempt
        .str("webhook_id")
        .ok_or(ReplayError::NoWebhookId)?
        .to_owned();
    let method = attempt
        .str("method")
        .and_then(|m| HttpVerb::parse(&m.to_ascii_lowercase()))
        .ok_or(ReplayError::NoMethod)?;
    let mut headers = vec![
        ("X-Hook-ID".to_owned(), hook.id.clone()),
        ("X-Account-ID".to_owned(), hook.account_id.to_string()),
    ];
    let sent_type = attempt
        .get("req_headers")
        .and_then(|h| h.get("content-type"))
        .and_then(Value::as_str);
    if let (Some(content_type), false) = (sent_type, method == HttpVerb::Get) {
        headers.push(("Content-Type".to_owned(), content_type.to_owned()));
    }
    headers.extend(hook.custom_headers.iter().cloned());
    headers.push(("webhook-id".to_owned(), webhook_id.clone()));
    let (url, body) = match method {
        HttpVerb::Get => {
            let query = attempt.str(REQUEST_QUERY).unwrap_or_default();
            (crate::encode::get_url(&hook.uri, query), String::new())
        }
        _ => (
            hook.uri.clone(),
            attempt.str("req_body").unwrap_or_default().to_owned(),
        ),
    };
    Ok(Delivery {
        hook,
        event_id: crate::ids::random_hex(5),
        webhook_id,
        request: Arc::new(HttpRequest {
            method,
            url,
            headers,
            body,
        }),
        tries: 0,
        replay: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{attempt_doc, build_request, Outcome};
    use serde_json::{json, Map};

    fn hook(verb: &str, uri: &str) -> Arc<Hook> {
        let doc = Doc::from_value(json!({
            "_id": "h1", "pvt_account_id": "0123456789abcdef0123456789abcdef",
            "uri": uri, "http_verb": verb, "hook": "channel_create", "name": "n",
            "retries": 3, "custom_request_headers": {"X-Team": "blue"}
        }))
        .unwrap();
        Arc::new(Hook::from_doc(&doc, |_| true).unwrap())
    }

    fn delivered(hook: &Arc<Hook>) -> Delivery {
        let mut payload = Map::new();
        payload.insert("call_id".into(), json!("c 1"));
        let mut request = build_request(hook, &payload);
        request.headers.push(("webhook-id".into(), "msg_1".into()));
        Delivery {
            hook: hook.clone(),
            event_id: "e".into(),
            webhook_id: "msg_1".into(),
            request: Arc::new(request),
            tries: 0,
            replay: false,
        }
    }

    fn failed(status: u16) -> Outcome {
        Outcome::Response {
            status,
            headers: vec![],
            body: String::new(),
        }
    }

    #[test]
    fn a_post_goes_again_to_the_current_uri_with_the_same_body_and_id() {
        let old = hook("post", "http://old.test/in");
        let attempt = attempt_doc(&delivered(&old), &failed(500), 1, 1_700_000_000);
        let new = hook("post", "http://new.test/in");
        let d = replay_delivery(&attempt, new).unwrap();
        assert_eq!(d.request.url, "http://new.test/in");
        assert_eq!(d.request.body, "call_id=c+1");
        assert_eq!(d.webhook_id, "msg_1");
        let has = |k: &str, v: &str| d.request.headers.iter().any(|(a, b)| a == k && b == v);
        assert!(has("Content-Type", "application/x-www-form-urlencoded"));
        assert!(has("webhook-id", "msg_1") && has("X-Team", "blue") && has("X-Hook-ID", "h1"));
        assert_eq!(d.tries, 0);
    }

    #[test]
    fn a_get_keeps_its_query_though_the_uri_field_has_none() {
        let old = hook("get", "http://old.test/in?k=1");
        let attempt = attempt_doc(&delivered(&old), &failed(500), 1, 1_700_000_000);
        assert_eq!(attempt.str("uri"), Some("http://old.test/in?k=1"));
        let d = replay_delivery(&attempt, hook("get", "http://new.test/in")).unwrap();
        assert_eq!(d.request.url, "http://new.test/in?call_id=c+1");
        assert_eq!(d.request.body, "");
    }

    #[test]
    fn only_final_failures_are_recovered_once_per_delivery() {
        let h = hook("post", "http://a.test/");
        let mut retried = attempt_doc(&delivered(&h), &failed(503), 3, 1);
        retried.set(FINAL_TRY, false);
        let mut last = attempt_doc(&delivered(&h), &failed(503), 1, 2);
        last.set(FINAL_TRY, true);
        let again = last.clone();
        let ok = attempt_doc(&delivered(&h), &failed(200), 3, 3);
        assert!(!is_final_failure(&ok));
        let mut recovery = Recovery::default();
        for attempt in [&retried, &last, &again] {
            recovery.read(attempt);
        }
        // One delivery, however many times it failed for good.
        assert_eq!(recovery.len(), 1);
        // A success after it (a replay that arrived) takes it off.
        recovery.read(&ok);
        assert!(recovery.is_empty());
        // A retry still to come, too.
        recovery.read(&last);
        recovery.read(&retried);
        assert!(recovery.into_attempts().is_empty());
        // KAZOO's own attempts: a bad response code is final, a transport error until exceeded.
        let kazoo = |v: Value| Doc::from_value(v).unwrap();
        assert!(is_final_failure(&kazoo(
            json!({"result": "failure", "reason": "bad response code"})
        )));
        assert!(!is_final_failure(&kazoo(
            json!({"result": "failure", "reason": "kazoo http client error", "retries_left": 1})
        )));
        assert!(is_final_failure(&kazoo(
            json!({"result": "failure", "retries_left": "retries exceeded"})
        )));
    }

    #[test]
    fn an_attempt_of_another_hook_or_without_an_id_is_refused() {
        let h = hook("post", "http://a.test/");
        let mut attempt = attempt_doc(&delivered(&h), &failed(500), 1, 1);
        attempt.set("hook_id", "other");
        assert_eq!(
            replay_delivery(&attempt, h.clone()).unwrap_err(),
            ReplayError::OtherHook("other".into())
        );
        attempt.set("hook_id", "h1");
        attempt.0.remove("webhook_id");
        assert_eq!(
            replay_delivery(&attempt, h).unwrap_err(),
            ReplayError::NoWebhookId
        );
    }
}
