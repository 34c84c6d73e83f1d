//! Request bodies: crossbar's `{"data": {...}}` wrapper, read with a size limit.
//!
//! The body is read up to the configured limit (a larger one is a 413, never buffered whole),
//! parsed, and the `data` object handed to the handler. Every failure is a crossbar error.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use serde_json::{Map, Value};

use crate::envelope::ApiError;
use crate::ApiState;

/// The `data` object of a request body; empty when the body is empty (DELETE may send none).
#[derive(Debug, Clone, Default)]
pub struct RequestData(pub Map<String, Value>);

impl FromRequest<ApiState> for RequestData {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, ApiError> {
        let limit = state.config().max_body_bytes;
        let bytes = read_limited(req.into_body(), limit).await?;
        parse_data(&bytes).map(RequestData)
    }
}

/// Reads a body up to `limit` bytes: every route that reads a body goes through here, so one
/// limit (`ApiConfig::max_body_bytes`) holds everywhere and the 413 names it.
pub(crate) async fn read_limited(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // to_bytes fails for an oversized body or a broken connection; the first is the
        // client's doing and deserves the 413.
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::too_large(limit)
        } else if timed_out(&e) {
            ApiError::body_timeout()
        } else {
            ApiError::invalid_json(e.to_string())
        }
    })
}

/// Whether the body failed because it did not arrive in time (the server's body deadline
/// ends it with an `io::ErrorKind::TimedOut`).
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Parses a crossbar request body. An empty body is an empty `data`; a body that is not a JSON
/// object, lacks `data`, or whose `data` is not an object, is refused as crossbar refuses it.
pub fn parse_data(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::invalid_json(e.to_string()))?;
    let Value::Object(mut top) = v else {
        return Err(ApiError::invalid_json("All JSON must be valid"));
    };
    match top.remove("data") {
        None => Err(ApiError::validation(serde_json::json!({
            "data": {"required": {"message": "Field is required but missing"}}
        }))),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(ApiError::validation(serde_json::json!({
            "data": {"type": {"message": "Value did not match type(s): object", "target": "object"}}
        }))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_unwrapped_and_empty_bodies_allowed() {
        assert_eq!(parse_data(b"").unwrap().len(), 0);
        assert_eq!(parse_data(b"  \n").unwrap().len(), 0);
        assert_eq!(parse_data(br#"{"data":{"a":1}}"#).unwrap()["a"], 1);
    }

    #[test]
    fn bad_bodies_are_crossbar_errors() {
        assert_eq!(parse_data(b"{not json").unwrap_err().status, 400);
        assert_eq!(parse_data(b"[1]").unwrap_err().status, 400);
        assert_eq!(
            parse_data(br#"{"data":[1]}"#).unwrap_err().message,
            "validation error"
        );
        assert!(parse_data(br#"{"other":1}"#)
            .unwrap_err()
            .data
            .get("data")
            .is_some());
        assert!(parse_data(b"{not json")
            .unwrap_err()
            .data
            .pointer("/json/invalid/message")
            .is_some());
    }
}
