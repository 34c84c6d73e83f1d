//! What goes wrong: the transport's error type. This file imports nothing from the rest of
//! the crate.

use std::time::Duration;

/// Why the transport could not start, or a publish failed.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    #[error("connecting to the broker: {0}")]
    Connect(#[source] lapin::Error),
    #[error("{step}: {source}")]
    Broker {
        step: String,
        #[source]
        source: lapin::Error,
    },
    #[error("{0} did not finish within {1:?}")]
    Timeout(&'static str, Duration),
    #[error("not connected to the broker")]
    NotConnected,
    #[error("the broker refused the message (publisher confirm nack)")]
    Refused,
    #[error("no routing key for notification {0:?}")]
    NoRoutingKey(String),
    #[error("message could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Attaches a step to a broker error, so a failed start says what it was doing.
pub(crate) trait During<T> {
    fn during(self, step: impl Into<String>) -> Result<T, AmqpError>;
}

impl<T> During<T> for Result<T, lapin::Error> {
    fn during(self, step: impl Into<String>) -> Result<T, AmqpError> {
        self.map_err(|source| AmqpError::Broker {
            step: step.into(),
            source,
        })
    }
}
