//! KAZOO's `kz_json` accessors, with the casting rules the Erlang modules rely on.
//!
//! KAZOO reads event fields through typed getters that *cast* rather than check:
//! `get_ne_binary_value` turns `6` into `"6"` and drops `""`, `get_integer_value` turns `"6"`
//! into `6`, `is_true` accepts `true` and `"true"`. FreeSWITCH-originated events carry most
//! values as strings, so reading them with strict `serde_json` accessors would silently lose
//! fields KAZOO sends. Every module reads events through these helpers instead.

use serde_json::{Map, Number, Value};
use webhooks_core::event::EventError;
use webhooks_core::Event;

/// `get_ne_binary_value`: strings, numbers and booleans as text; empty text, `null`, objects and
/// arrays are absent.
pub(crate) fn ne_text(v: Option<&Value>) -> Option<String> {
    text(v).filter(|s| !s.is_empty())
}

/// `get_binary_value`: like [`ne_text`] but keeps the empty string.
pub(crate) fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `get_integer_value`: integers as they are, floats rounded, numeric strings parsed.
pub(crate) fn integer(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.round() as i64)),
        Value::String(s) => s
            .parse::<i64>()
            .ok()
            .or_else(|| s.parse::<f64>().ok().map(|f| f.round() as i64)),
        _ => None,
    }
}

/// `get_number_value`: numbers as they are, numeric strings parsed (integers stay integers).
pub(crate) fn number(v: Option<&Value>) -> Option<Value> {
    match v? {
        Value::Number(n) => Some(Value::Number(n.clone())),
        Value::String(s) => s
            .parse::<i64>()
            .ok()
            .map(Number::from)
            .or_else(|| s.parse::<f64>().ok().and_then(Number::from_f64))
            .map(Value::Number),
        _ => None,
    }
}

/// `kz_term:is_true`: only `true` and `"true"` are true.
pub(crate) fn is_true(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true))) || matches!(v, Some(Value::String(s)) if s == "true")
}

/// A nested value by path (`["Details", "Account-ID"]`).
pub(crate) fn path<'a>(obj: &'a Map<String, Value>, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(obj.get(*first)?, |v, k| v.as_object()?.get(*k))
}

/// Inserts `key` only when there is a value: KAZOO builds payloads with `kz_json:from_list`,
/// which drops `undefined` entries, so absent fields are missing keys, never `null`.
pub(crate) fn put(payload: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        payload.insert(key.to_owned(), v.into());
    }
}

/// A header that must be present (not absent, not `null`), as KAZOO's `kz_api:validate` checks.
pub(crate) fn require(event: &Event, header: &str) -> Result<(), EventError> {
    match event.get(header) {
        None | Some(Value::Null) => Err(EventError::MissingHeader(header.to_owned())),
        Some(_) => Ok(()),
    }
}

/// Parses a module's embedded sample events (a JSON array of KAZOO messages).
///
/// The files are compiled into the crate and each module's tests parse them, so a malformed file
/// fails the build's tests rather than a running server; should one slip through anyway, the
/// module serves no samples instead of panicking.
pub(crate) fn sample_events(json: &str) -> Vec<Event> {
    match serde_json::from_str::<Vec<Value>>(json) {
        Ok(values) => values
            .into_iter()
            .filter_map(|v| Event::from_value(v).ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_casts_scalars_and_drops_empty() {
        assert_eq!(ne_text(Some(&json!(6))), Some("6".into()));
        assert_eq!(ne_text(Some(&json!(true))), Some("true".into()));
        assert_eq!(ne_text(Some(&json!(""))), None);
        assert_eq!(text(Some(&json!(""))), Some(String::new()));
        assert_eq!(ne_text(Some(&json!({"a": 1}))), None);
        assert_eq!(ne_text(Some(&Value::Null)), None);
        assert_eq!(ne_text(None), None);
    }

    #[test]
    fn integer_parses_strings_and_rounds_floats() {
        assert_eq!(integer(Some(&json!("63724349409"))), Some(63724349409));
        assert_eq!(integer(Some(&json!(6))), Some(6));
        assert_eq!(integer(Some(&json!(6.6))), Some(7));
        assert_eq!(integer(Some(&json!("6.4"))), Some(6));
        assert_eq!(integer(Some(&json!("six"))), None);
        assert_eq!(integer(Some(&json!(null))), None);
    }

    #[test]
    fn number_keeps_integers_integral() {
        assert_eq!(number(Some(&json!("2"))), Some(json!(2)));
        assert_eq!(number(Some(&json!("0.25"))), Some(json!(0.25)));
        assert_eq!(number(Some(&json!(1.5))), Some(json!(1.5)));
        assert_eq!(number(Some(&json!("free"))), None);
    }

    #[test]
    fn only_true_and_string_true_are_true() {
        assert!(is_true(Some(&json!(true))));
        assert!(is_true(Some(&json!("true"))));
        assert!(!is_true(Some(&json!("TRUE"))));
        assert!(!is_true(Some(&json!(1))));
        assert!(!is_true(None));
    }

    #[test]
    fn path_walks_objects_only() {
        let m = json!({"a": {"b": {"c": 1}}, "x": [1]});
        let m = m.as_object().unwrap();
        assert_eq!(path(m, &["a", "b", "c"]), Some(&json!(1)));
        assert_eq!(path(m, &["x", "0"]), None);
        assert_eq!(path(m, &[]), None);
    }

    #[test]
    fn malformed_sample_files_yield_no_samples() {
        assert!(sample_events("not json").is_empty());
        assert_eq!(sample_events(r#"[{"a":1}, 2]"#).len(), 1);
    }
}
