//! KAZOO messages in and out: reading a delivery as an event, what became of it, and the
//! properties KAZOO sends with. This file imports nothing from the rest of the crate.

use std::io::Read;

use lapin::message::Delivery;
use lapin::BasicProperties;
use serde_json::Value;
use webhooks_core::Event;

/// Largest body accepted after gunzipping: a compressed message can expand a thousandfold,
/// and nothing KAZOO publishes comes near this.
const MAX_DECODED_BYTES: u64 = 64 * 1024 * 1024;

/// Why a message cannot be handled. It is rejected without requeue (to the dead-letter
/// exchange when configured): giving it again would fail again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) String);

/// What became of one message from the shared queue.
pub(crate) enum Outcome {
    /// The engine took it (or the re-enable was done and answered): acknowledge.
    Done,
    /// Not finished (a reply could not be sent): requeue, so it is handled again.
    Again,
    Malformed(Malformed),
}

/// Reads a delivery as a KAZOO message: gunzipped when `content_encoding` says `gzip` (KAZOO
/// compresses large MMS), a JSON object, with `Event-Category` and `Event-Name` strings.
pub(crate) fn decode(delivery: &Delivery) -> Result<Event, Malformed> {
    let gzip = delivery
        .properties
        .content_encoding()
        .as_ref()
        .is_some_and(|e| e.as_str().eq_ignore_ascii_case("gzip"));
    let inflated;
    let body: &[u8] = if gzip {
        inflated = gunzip(&delivery.data)?;
        &inflated
    } else {
        &delivery.data
    };
    parse(body)
}

fn gunzip(data: &[u8]) -> Result<Vec<u8>, Malformed> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(MAX_DECODED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| Malformed(format!("gzip body cannot be decoded: {e}")))?;
    if out.len() as u64 > MAX_DECODED_BYTES {
        return Err(Malformed(format!(
            "gzip body larger than {MAX_DECODED_BYTES} bytes"
        )));
    }
    Ok(out)
}

fn parse(body: &[u8]) -> Result<Event, Malformed> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Malformed(format!("not JSON: {e}")))?;
    let event = Event::from_value(value).map_err(|e| Malformed(e.to_string()))?;
    for header in ["Event-Category", "Event-Name"] {
        event
            .required_str(header)
            .map_err(|e| Malformed(e.to_string()))?;
    }
    Ok(event)
}

/// KAZOO sends every message as `application/json`.
pub(crate) fn json_properties() -> BasicProperties {
    BasicProperties::default().with_content_type("application/json".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_requires_an_object_with_string_headers() {
        assert!(parse(b"not json").is_err());
        assert!(parse(b"[1,2]").is_err());
        assert!(parse(br#"{"Event-Category":"call_event"}"#).is_err());
        assert!(parse(br#"{"Event-Category":"call_event","Event-Name":5}"#).is_err());
        let e = parse(br#"{"Event-Category":"call_event","Event-Name":"X","A":1}"#).unwrap();
        assert_eq!(e.name(), Some("X"));
    }

    #[test]
    fn gunzip_reads_what_gzip_wrote() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(br#"{"Event-Category":"mms","Event-Name":"inbound"}"#)
            .unwrap();
        let zipped = enc.finish().unwrap();
        let e = parse(&gunzip(&zipped).unwrap()).unwrap();
        assert_eq!(e.category(), Some("mms"));
        assert!(gunzip(b"plain text").is_err());
    }
}
