//! Events as KAZOO publishes them on AMQP: a flat JSON object with "default headers"
//! (`Event-Category`, `Event-Name`, `App-Name`, `Node`, `Msg-ID`, ...) and event fields.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One KAZOO AMQP message, as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Event(pub Map<String, Value>);

/// Why an event cannot be handled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event is not a JSON object")]
    NotAnObject,
    #[error("event lacks required header {0}")]
    MissingHeader(String),
    #[error("event header {0} has the wrong type")]
    WrongType(String),
    #[error("event carries no account id")]
    NoAccount,
    /// The engine is shutting down and takes no more events; the event was not taken (send it
    /// again later, or to another node).
    #[error("the engine is shutting down")]
    Stopped,
    /// The event's deliveries could not be made durable (the journal's disk failed): it is
    /// not acknowledged (send it again later, or to another node).
    #[error("deliveries could not be stored: {0}")]
    NotDurable(String),
}

impl Event {
    pub fn from_value(v: Value) -> Result<Self, EventError> {
        match v {
            Value::Object(m) => Ok(Event(m)),
            _ => Err(EventError::NotAnObject),
        }
    }

    pub fn category(&self) -> Option<&str> {
        self.str("Event-Category")
    }

    pub fn name(&self) -> Option<&str> {
        self.str("Event-Name")
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// A required string header: missing and wrong-typed headers are distinct errors so the
    /// reject counter can say which.
    pub fn required_str(&self, key: &str) -> Result<&str, EventError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Err(EventError::MissingHeader(key.to_owned())),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(EventError::WrongType(key.to_owned())),
        }
    }

    /// `Custom-Channel-Vars.<key>` as a string.
    pub fn ccv(&self, key: &str) -> Option<&str> {
        self.0
            .get("Custom-Channel-Vars")
            .and_then(|v| v.get(key))
            .and_then(Value::as_str)
    }
}

/// KAZOO's `kz_json:normalize`: every key, recursively, lower-cased with `-` turned into `_`;
/// null values dropped. Notification and parking payloads are built with it.
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (normalize_key(k), normalize(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// `Call-ID` → `call_id`.
pub fn normalize_key(k: &str) -> String {
    k.chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalize_lowercases_underscores_and_drops_nulls() {
        let v =
            json!({"Call-ID": "x", "Nested": {"Inner-Key": 1, "Gone": null}, "List": [{"A-B": 2}]});
        assert_eq!(
            normalize(&v),
            json!({"call_id":"x","nested":{"inner_key":1},"list":[{"a_b":2}]})
        );
    }

    #[test]
    fn required_str_distinguishes_missing_and_wrong_type() {
        let e = Event::from_value(json!({"Event-Name": 3})).unwrap();
        assert_eq!(
            e.required_str("Event-Name"),
            Err(EventError::WrongType("Event-Name".into()))
        );
        assert_eq!(
            e.required_str("Call-ID"),
            Err(EventError::MissingHeader("Call-ID".into()))
        );
    }
}
