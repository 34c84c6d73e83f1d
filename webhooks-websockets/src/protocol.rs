//! The frames, as KAZOO's blackhole reads and writes them (spec §4, §5): a client message
//! (`action`, `auth_token`, `request_id`, `data`, `name`, `metadata`), a `reply` to each, and an
//! `event` frame for each subscription an event matches. Text only; no I/O here.

use serde_json::{json, Map, Value};

/// The actions this endpoint knows; anything else is [`Action::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Subscribe,
    Unsubscribe,
    Ping,
    /// A missing, empty or unknown action (KAZOO's `noop` and the rest).
    Other(String),
}

/// One client message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub action: Action,
    pub auth_token: Option<String>,
    /// The message's own `request_id`, or 32 random hex characters.
    pub request_id: String,
    /// `data`, when it is an object.
    pub data: Option<Map<String, Value>>,
    /// Top-level `name` and `metadata` (spec §3: stored on the socket, shown by the REST API).
    pub name: Option<Value>,
    pub metadata: Option<Value>,
}

/// Reads a text frame. KAZOO's socket process crashes on a frame that is not a JSON object and
/// drops the connection without a word (§2); here it is an error reply (with a fresh
/// `request_id`) and the socket stays up: `Err` is that reply.
pub fn parse(text: &str) -> Result<Message, String> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Err(error_reply(
                &new_request_id(),
                &format!("invalid JSON: {e}"),
            ))
        }
    };
    let Value::Object(mut fields) = value else {
        let why = "a message is a JSON object";
        return Err(error_reply(&new_request_id(), why));
    };
    let action = match scalar_text(fields.get("action")).as_deref() {
        Some("subscribe") => Action::Subscribe,
        Some("unsubscribe") => Action::Unsubscribe,
        Some("ping") => Action::Ping,
        other => Action::Other(other.unwrap_or_default().to_owned()),
    };
    Ok(Message {
        action,
        auth_token: scalar_text(fields.get("auth_token")).filter(|t| !t.is_empty()),
        request_id: scalar_text(fields.get("request_id"))
            .filter(|r| !r.is_empty())
            .unwrap_or_else(new_request_id),
        data: match fields.remove("data") {
            Some(Value::Object(data)) => Some(data),
            _ => None,
        },
        name: fields.remove("name").filter(|v| !v.is_null()),
        metadata: fields.remove("metadata").filter(|v| !v.is_null()),
    })
}

/// A scalar as text, as KAZOO reads `auth_token` and `request_id` (numbers and booleans are
/// turned into strings; objects and arrays count as absent).
fn scalar_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// 32 random hex characters, as blackhole makes a missing `request_id`.
pub fn new_request_id() -> String {
    webhooks_core::ids::random_hex(16)
}

/// `{"action":"reply","request_id":..,"status":"success","data":..}`
pub fn success_reply(request_id: &str, data: Value) -> String {
    json!({"action": "reply", "request_id": request_id, "status": "success", "data": data})
        .to_string()
}

/// `{"action":"reply","request_id":..,"status":"error","data":{"errors":[message]}}`
pub fn error_reply(request_id: &str, message: &str) -> String {
    json!({"action": "reply", "request_id": request_id, "status": "error",
           "data": {"errors": [message]}})
    .to_string()
}

/// The parts of an event frame every matching socket shares: the event's `name`, the key it was
/// dispatched under and its normalised payload, serialised once.
#[derive(Debug, Clone)]
pub struct EventParts {
    pub name: String,
    pub routing_key: String,
    /// The normalised payload as JSON text.
    pub data: String,
}

/// `{"action":"event","subscribed_key":..,"subscription_key":..,"name":..,"routing_key":..,
/// "data":..}`, built around the payload's text instead of serialising it again per socket.
pub fn event_frame(subscribed_key: &str, subscription_key: &str, parts: &EventParts) -> String {
    let text = |s: &str| Value::String(s.to_owned()).to_string();
    let mut frame = String::with_capacity(parts.data.len() + 256);
    frame.push_str(r#"{"action":"event","subscribed_key":"#);
    frame.push_str(&text(subscribed_key));
    frame.push_str(r#","subscription_key":"#);
    frame.push_str(&text(subscription_key));
    frame.push_str(r#","name":"#);
    frame.push_str(&text(&parts.name));
    frame.push_str(r#","routing_key":"#);
    frame.push_str(&text(&parts.routing_key));
    frame.push_str(r#","data":"#);
    frame.push_str(&parts.data);
    frame.push('}');
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_as_blackhole_reads_it() {
        let m = parse(
            r#"{"action":"subscribe","auth_token":"t","request_id":7,"name":"n",
                "data":{"account_id":"a","binding":"call.*.*"}}"#,
        )
        .unwrap();
        assert_eq!(m.action, Action::Subscribe);
        assert_eq!(m.auth_token.as_deref(), Some("t"));
        assert_eq!(m.request_id, "7");
        assert_eq!(m.data.unwrap()["binding"], "call.*.*");
        assert_eq!(m.name, Some(json!("n")));
        let bare = parse(r#"{"request_id":{"x":1}}"#).unwrap();
        assert_eq!(bare.action, Action::Other(String::new()));
        assert_eq!(bare.request_id.len(), 32);
        assert!(bare.data.is_none() && bare.auth_token.is_none());
    }

    #[test]
    fn what_is_not_a_json_object_is_an_error_reply() {
        for bad in ["nope", "[1]", "\"s\""] {
            let reply: Value = serde_json::from_str(&parse(bad).unwrap_err()).unwrap();
            assert_eq!(reply["status"], "error", "{bad}");
            assert_eq!(reply["request_id"].as_str().unwrap().len(), 32);
        }
    }

    #[test]
    fn an_event_frame_is_json_with_the_payload_inside() {
        let parts = EventParts {
            name: "CHANNEL_CREATE".into(),
            routing_key: "call.a.CHANNEL_CREATE.x".into(),
            data: r#"{"call_id":"x\"y"}"#.into(),
        };
        let frame: Value = serde_json::from_str(&event_frame("call.*.*", "call.a.*.*", &parts))
            .expect("valid JSON");
        assert_eq!(
            frame,
            json!({"action": "event", "subscribed_key": "call.*.*",
                   "subscription_key": "call.a.*.*", "name": "CHANNEL_CREATE",
                   "routing_key": "call.a.CHANNEL_CREATE.x", "data": {"call_id": "x\"y"}})
        );
    }
}
