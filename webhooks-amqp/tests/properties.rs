//! Property tests over the AMQP message decoder (issue 14: every input fuzzed).
//!
//! Whatever a publisher puts on KAZOO's exchanges reaches `message::decode`: any bytes, any
//! content encoding, any headers. The decoder must answer each with an event or `Malformed`,
//! never a panic, and must not let a small message claim unbounded memory. The properties:
//!
//! - for any body and any properties, `decode` agrees with a plain reading of the rules
//!   (gunzip when `content_encoding` is `gzip` in any case, then a JSON object with string
//!   `Event-Category` and `Event-Name`); headers and every other property change nothing;
//! - any event, sent plain or gzipped, decodes back to itself;
//! - a gzipped event truncated or with a byte flipped is refused or decodes to exactly the
//!   event (gzip's CRC catches corruption of the content);
//! - a gzip bomb is refused once it passes the decoder's 64 MiB limit, and nesting deeper than
//!   serde_json's limit is refused without overflowing the stack.
//!
//! `decode` is private to the crate (`message.rs` is a leaf that imports nothing of the crate),
//! so the file is compiled into this test as a module of its own rather than made public for
//! the test's sake.

#[path = "../src/message.rs"]
#[allow(dead_code)] // The test uses `decode` only, not what the transport builds around it.
mod message;

use std::io::{Read, Write};

use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldArray, FieldTable, ShortString};
use lapin::BasicProperties;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{json, Map, Number, Value};

use message::{decode, Malformed};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn delivery(data: Vec<u8>, properties: BasicProperties) -> Delivery {
    let mut delivery = Delivery::mock(
        1,
        "callevt".into(),
        "call.CHANNEL_CREATE.x".into(),
        false,
        data,
    );
    delivery.properties = properties;
    delivery
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// The rules, read plainly: what `decode` must answer for a body and a content encoding.
fn expected(data: &[u8], content_encoding: Option<&str>) -> Option<Map<String, Value>> {
    let body = if content_encoding.is_some_and(|e| e.eq_ignore_ascii_case("gzip")) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .ok()?;
        out
    } else {
        data.to_vec()
    };
    let Ok(Value::Object(event)) = serde_json::from_slice::<Value>(&body) else {
        return None;
    };
    let headers_are_strings = ["Event-Category", "Event-Name"]
        .iter()
        .all(|h| event.get(*h).is_some_and(Value::is_string));
    headers_are_strings.then_some(event)
}

/// An event's text as serde_json reads it. Without serde_json's `float_roundtrip` feature
/// (not enabled in this workspace) a float may be read one ulp away from the one printed, so
/// round trips compare with what the text reads as, not with the value it was printed from.
fn as_read(body: &[u8]) -> Map<String, Value> {
    serde_json::from_slice(body).expect("printed events read back")
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => ".{0,12}",
        1 => prop::collection::vec(any::<char>(), 0..8).prop_map(|cs| cs.into_iter().collect()),
        1 => prop::sample::select(vec!["", "gzip", "GZIP", "x-gzip", "deflate", "\u{0}", "🦀"])
            .prop_map(String::from),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((hostile_string(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// An event the decoder accepts: string headers and arbitrary fields.
fn any_event() -> impl Strategy<Value = Map<String, Value>> {
    (
        hostile_string(),
        hostile_string(),
        prop::collection::vec((hostile_string(), any_json()), 0..6),
    )
        .prop_map(|(category, name, fields)| {
            let mut event: Map<String, Value> = fields.into_iter().collect();
            event.insert("Event-Category".into(), category.into());
            event.insert("Event-Name".into(), name.into());
            event
        })
}

/// Header values of every AMQP type, tables and arrays nested.
fn amqp_value() -> impl Strategy<Value = AMQPValue> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(AMQPValue::Boolean),
        any::<i8>().prop_map(AMQPValue::ShortShortInt),
        any::<i64>().prop_map(AMQPValue::LongLongInt),
        any::<f64>().prop_map(AMQPValue::Double),
        hostile_string().prop_map(|s| AMQPValue::LongString(s.into())),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(|b| AMQPValue::ByteArray(b.into())),
        any::<u64>().prop_map(AMQPValue::Timestamp),
        Just(AMQPValue::Void),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| AMQPValue::FieldArray(FieldArray::from(items))),
            prop::collection::vec((hostile_string(), inner), 0..4).prop_map(|kv| {
                let mut table = FieldTable::default();
                for (k, v) in kv {
                    table.insert(ShortString::from(k), v);
                }
                AMQPValue::FieldTable(table)
            }),
        ]
    })
}

/// Properties as publishers set them, the content encoding included; `None` where unset.
fn any_properties() -> impl Strategy<Value = (Option<String>, BasicProperties)> {
    (
        prop::option::of(hostile_string()),
        prop::option::of(hostile_string()),
        prop::option::of(prop::collection::vec(
            (hostile_string(), amqp_value()),
            0..5,
        )),
        prop::option::of(any::<u8>()),
        prop::option::of(any::<u64>()),
        prop::option::of(hostile_string()),
    )
        .prop_map(
            |(encoding, content_type, headers, priority, timestamp, reply_to)| {
                let mut p = BasicProperties::default();
                if let Some(e) = &encoding {
                    p = p.with_content_encoding(ShortString::from(e.clone()));
                }
                if let Some(t) = content_type {
                    p = p.with_content_type(ShortString::from(t));
                }
                if let Some(headers) = headers {
                    let mut table = FieldTable::default();
                    for (k, v) in headers {
                        table.insert(ShortString::from(k), v);
                    }
                    p = p.with_headers(table);
                }
                if let Some(priority) = priority {
                    p = p.with_priority(priority);
                }
                if let Some(timestamp) = timestamp {
                    p = p.with_timestamp(timestamp);
                }
                if let Some(reply_to) = reply_to {
                    p = p.with_reply_to(ShortString::from(reply_to));
                }
                (encoding, p)
            },
        )
}

/// Bodies: random bytes, JSON that may or may not be an event, and gzipped versions of both.
fn any_body() -> impl Strategy<Value = Vec<u8>> {
    let plain = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        any_json().prop_map(|v| v.to_string().into_bytes()),
        any_event().prop_map(|e| Value::Object(e).to_string().into_bytes()),
        "[\\[{\"\\]}:,0-9a-z ]{0,64}".prop_map(String::into_bytes),
    ];
    (plain, any::<bool>()).prop_map(|(body, zipped)| if zipped { gzip(&body) } else { body })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn decode_follows_the_rules_for_any_body_and_properties(
        data in any_body(),
        (encoding, properties) in any_properties(),
    ) {
        let want = expected(&data, encoding.as_deref());
        let got = decode(&delivery(data.clone(), properties)).map(|e| e.0);
        match (&got, &want) {
            (Ok(event), Some(want)) => prop_assert_eq!(event, want),
            (Err(Malformed(reason)), None) => prop_assert!(!reason.is_empty()),
            _ => prop_assert!(false, "decoded {:?}, expected {:?}", got, want),
        }
        // Only the content encoding matters: the same body with no other property decodes
        // the same.
        let mut bare = BasicProperties::default();
        if let Some(e) = encoding {
            bare = bare.with_content_encoding(ShortString::from(e));
        }
        let bare = decode(&delivery(data, bare)).map(|e| e.0);
        prop_assert_eq!(bare, got);
    }

    #[test]
    fn events_decode_back_plain_or_gzipped(event in any_event(), case_mask in any::<u8>()) {
        let body = Value::Object(event).to_string().into_bytes();
        let event = as_read(&body);
        let plain = decode(&delivery(body.clone(), BasicProperties::default()));
        prop_assert_eq!(plain.map(|e| e.0), Ok(event.clone()));

        let encoding: String = "gzip"
            .chars()
            .enumerate()
            .map(|(i, c)| if case_mask & (1 << i) != 0 { c.to_ascii_uppercase() } else { c })
            .collect();
        let zipped = BasicProperties::default().with_content_encoding(encoding.into());
        let decoded = decode(&delivery(gzip(&body), zipped));
        prop_assert_eq!(decoded.map(|e| e.0), Ok(event));
    }

    #[test]
    fn damaged_gzip_is_refused_or_decodes_exactly(
        event in any_event(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0..8u8,
        truncate in any::<bool>(),
    ) {
        let body = Value::Object(event).to_string().into_bytes();
        let event = as_read(&body);
        let mut zipped = gzip(&body);
        if truncate {
            zipped.truncate(cut.index(zipped.len()));
        } else {
            let at = flip.index(zipped.len());
            zipped[at] ^= 1 << bit;
        }
        let properties = BasicProperties::default().with_content_encoding("gzip".into());
        if let Ok(decoded) = decode(&delivery(zipped, properties)) {
            prop_assert_eq!(decoded.0, event);
        }
    }
}

/// A raw deflate stream that inflates to `mib` MiB of zeros, built from a few compressed MiB:
/// once the window holds only zeros, every further MiB of zeros compresses to the same bytes,
/// so the stream is assembled by repeating them instead of compressing the whole.
fn deflated_zeros(mib: usize) -> Vec<u8> {
    let chunk = vec![0u8; 1 << 20];
    let mut compressor = flate2::Compress::new(flate2::Compression::fast(), false);
    let mut compress = |data: &[u8], flush| {
        let mut out = Vec::with_capacity(64 << 10);
        let before = compressor.total_in();
        compressor
            .compress_vec(data, &mut out, flush)
            .expect("compressing to memory");
        assert_eq!(
            compressor.total_in() - before,
            data.len() as u64,
            "all input taken"
        );
        out
    };
    let first = compress(&chunk, flate2::FlushCompress::Sync);
    let steady = compress(&chunk, flate2::FlushCompress::Sync);
    assert_eq!(compress(&chunk, flate2::FlushCompress::Sync), steady);
    let mut stream = first;
    for _ in 1..mib {
        stream.extend_from_slice(&steady);
    }
    stream.extend(compress(&[], flate2::FlushCompress::Finish));
    stream
}

#[test]
fn gzip_bombs_are_refused_at_the_limit() {
    // A gzip header (no name, no mtime), the deflate stream, and a trailer the decoder never
    // reaches: it stops reading at the limit.
    let mut bomb = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    bomb.extend(deflated_zeros(65));
    bomb.extend([0; 8]);
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let properties = BasicProperties::default().with_content_encoding("gzip".into());
    let Err(Malformed(reason)) = decode(&delivery(bomb, properties)) else {
        panic!("a 65 MiB body decoded");
    };
    assert!(reason.contains("larger than"), "{reason}");
}

#[test]
fn nesting_deeper_than_serde_json_allows_is_refused_without_overflowing() {
    for depth in [129, 3_000, 100_000] {
        let mut body = b"{\"Event-Category\":\"c\",\"Event-Name\":\"n\",\"x\":".to_vec();
        body.extend(std::iter::repeat_n(b'[', depth));
        body.extend(std::iter::repeat_n(b']', depth));
        body.push(b'}');
        let Err(Malformed(reason)) = decode(&delivery(body, BasicProperties::default())) else {
            panic!("{depth} levels decoded");
        };
        assert!(reason.contains("recursion limit"), "{depth}: {reason}");
    }
    // Within the limit the same shape is an event.
    let nested = (0..100).fold(json!(1), |inner, _| Value::Array(vec![inner]));
    let event = json!({"Event-Category": "c", "Event-Name": "n", "x": nested});
    let decoded = decode(&delivery(
        event.to_string().into_bytes(),
        BasicProperties::default(),
    ));
    assert_eq!(decoded.map(|e| Value::Object(e.0)), Ok(event));
}
