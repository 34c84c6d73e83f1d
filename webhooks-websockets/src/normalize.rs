//! The `data` of an event frame: the AMQP payload as blackhole shows it to clients (spec §5.2).
//!
//! Clients never see KAZOO's wire envelope: blackhole strips the headers that describe the
//! transport (which node, which queue, which broker) and writes every key in snake case.
//! Monster UI apps read fields such as `data.custom_channel_vars.account_id` by those names,
//! so the spelling is part of the protocol.

use serde_json::{Map, Value};

/// Top-level KAZOO envelope headers removed from every payload (§5.2 step 1). `Account-ID`,
/// `Call-ID`, `App-Name`, `App-Version`, `Event-Category`, `Event-Name` and `Msg-ID` are kept.
const ENVELOPE_HEADERS: [&str; 14] = [
    "Access-Group",
    "Defer-Response",
    "Destination-Server",
    "Geo-Location",
    "System-Log-ID",
    "Node",
    "Server-Queue-ID",
    "Raw-Headers",
    "Server-ID",
    "Request-From-PID",
    "Reply-To-PID",
    "AMQP-Broker",
    "AMQP-Broker-Zone",
    "Deliver-To-PID",
];

/// The payload as an event frame carries it: the envelope headers removed from the top level
/// (compared by exact name, before normalisation), then every key at every depth normalised
/// (`-` → `_`, ASCII and Latin-1 capitals → lower case) and every null-valued member of every
/// object dropped. Key order is kept.
///
/// Arrays keep all their elements, nulls included: an element is not a key/value pair, and
/// dropping one would shift the positions of the rest. Objects inside arrays are normalised.
///
/// Two keys that normalise to the same name (`Call-ID` and `call_id`) become one member at the
/// first one's position, holding the later one's value.
///
/// A value that is not an object (KAZOO payloads always are) is normalised the same way,
/// without removing anything at its top level.
pub fn normalize(event: &Value) -> Value {
    match event {
        Value::Object(m) => normalize_event(m),
        other => normalize_value(other),
    }
}

/// [`normalize`] of an event's fields, without making a `Value` of them first.
pub fn normalize_event(event: &Map<String, Value>) -> Value {
    Value::Object(normalize_object(event, &ENVELOPE_HEADERS))
}

fn normalize_object(m: &Map<String, Value>, removed: &[&str]) -> Map<String, Value> {
    m.iter()
        .filter(|(k, v)| !v.is_null() && !removed.contains(&k.as_str()))
        .map(|(k, v)| (normalize_key(k), normalize_value(v)))
        .collect()
}

fn normalize_value(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(normalize_object(m, &[])),
        Value::Array(a) => Value::Array(a.iter().map(normalize_value).collect()),
        other => other.clone(),
    }
}

/// `Custom-Channel-Vars` → `custom_channel_vars`, `X-ÉTAT` → `x_état`.
///
/// Latin-1 capitals are À–Þ except × (U+00D7); they are lowered as characters. (KAZOO lowers
/// bytes, which on UTF-8 text can turn one character into another or into invalid UTF-8; this
/// lowers the character the bytes spell.) Other characters are kept as they are.
fn normalize_key(k: &str) -> String {
    k.chars()
        .map(|c| match c {
            '-' => '_',
            'A'..='Z' => c.to_ascii_lowercase(),
            '\u{C0}'..='\u{DE}' if c != '\u{D7}' => {
                // In U+00C0..=U+00DE the lower-case letter is 0x20 above its capital.
                char::from_u32(u32::from(c) + 0x20).unwrap_or(c)
            }
            _ => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_headers_are_removed_and_identity_headers_kept() {
        let mut event = Map::new();
        for h in ENVELOPE_HEADERS {
            event.insert(h.to_owned(), json!("x"));
        }
        for h in [
            "Account-ID",
            "Call-ID",
            "App-Name",
            "App-Version",
            "Event-Category",
            "Event-Name",
            "Msg-ID",
        ] {
            event.insert(h.to_owned(), json!("kept"));
        }
        assert_eq!(
            normalize(&Value::Object(event)),
            json!({"account_id": "kept", "call_id": "kept", "app_name": "kept",
                   "app_version": "kept", "event_category": "kept", "event_name": "kept",
                   "msg_id": "kept"})
        );
    }

    #[test]
    fn envelope_headers_are_only_removed_at_the_top_level() {
        let v = json!({"Custom-Channel-Vars": {"Node": "n", "Server-ID": "s"}, "Node": "gone"});
        assert_eq!(
            normalize(&v),
            json!({"custom_channel_vars": {"node": "n", "server_id": "s"}})
        );
    }

    #[test]
    fn keys_are_normalised_at_every_depth() {
        let v = json!({
            "Custom-Channel-Vars": {"Account-ID": "a", "Authorizing-Type": "device"},
            "Custom-SIP-Headers": {"X-AUTH-IP": "10.0.0.1"},
            "List": [{"Inner-Key": [{"Deep-Key": 1}]}]
        });
        assert_eq!(
            normalize(&v),
            json!({
                "custom_channel_vars": {"account_id": "a", "authorizing_type": "device"},
                "custom_sip_headers": {"x_auth_ip": "10.0.0.1"},
                "list": [{"inner_key": [{"deep_key": 1}]}]
            })
        );
    }

    #[test]
    fn values_are_not_touched() {
        let v = json!({"To": "+1555@Example.COM", "Event-Name": "CHANNEL_CREATE"});
        assert_eq!(
            normalize(&v),
            json!({"to": "+1555@Example.COM", "event_name": "CHANNEL_CREATE"})
        );
    }

    #[test]
    fn latin1_capitals_are_lowered_and_the_rest_kept() {
        assert_eq!(normalize_key("X-ÉTAT-ÀÞ"), "x_état_àþ");
        assert_eq!(normalize_key("×"), "×");
        assert_eq!(normalize_key("ß"), "ß");
        // Outside Latin-1: kept as it is.
        assert_eq!(normalize_key("ĀΣ"), "ĀΣ");
        assert_eq!(normalize_key("a_b-c"), "a_b_c");
    }

    #[test]
    fn nulls_are_dropped_from_objects_and_kept_in_arrays() {
        let v = json!({"Gone": null, "Inner": {"Also-Gone": null, "Kept": 0},
                       "List": [null, 1, {"X": null, "Y": false}]});
        assert_eq!(
            normalize(&v),
            json!({"inner": {"kept": 0}, "list": [null, 1, {"y": false}]})
        );
    }

    #[test]
    fn key_order_is_kept() {
        let v = json!({"Zeta": 1, "Alpha": 2, "Node": 3, "Mid-Key": 4});
        let out = normalize(&v);
        let keys: Vec<&str> = out
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["zeta", "alpha", "mid_key"]);
    }

    #[test]
    fn colliding_keys_keep_the_first_position_and_the_last_value() {
        let v = json!({"Call-ID": "first", "Other": 1, "call_id": "second"});
        let out = normalize(&v);
        let keys: Vec<&str> = out
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["call_id", "other"]);
        assert_eq!(out["call_id"], "second");
    }

    #[test]
    fn a_call_event_sample_reads_as_monster_expects() {
        let v = json!({
            "Event-Category": "call_event", "Event-Name": "CHANNEL_CREATE",
            "Node": "ecallmgr@fs1", "Msg-ID": "m1", "Call-ID": "c1",
            "Custom-Channel-Vars": {"Account-ID": "a1", "Authorizing-ID": "d1"},
            "Custom-Application-Vars": {}
        });
        let out = normalize(&v);
        assert_eq!(out["event_name"], "CHANNEL_CREATE");
        assert_eq!(out["custom_channel_vars"]["authorizing_id"], "d1");
        assert_eq!(out["custom_application_vars"], json!({}));
        assert!(out.get("node").is_none());
    }

    #[test]
    fn non_object_values_are_normalised_without_removal() {
        assert_eq!(normalize(&json!("x")), json!("x"));
        assert_eq!(
            normalize(&json!([{"Node": 1, "N": null}])),
            json!([{"node": 1}])
        );
    }
}
