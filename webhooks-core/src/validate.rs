//! Crossbar-style validation of webhook documents (spec §3.5).
//!
//! What a client sends is checked the way crossbar checks it, with the same error shape:
//! a map from a dotted field path to `{<code>: {"message": ..., ...}}`. Crossbar runs in
//! non-strict mode by default, so values of the wrong JSON type that JavaScript would coerce
//! (`"retries": "3"`, `"enabled": "true"`) are converted before the schema check rather than
//! refused; Monster UI's forms send numbers as strings and rely on it.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use crate::config::UriBlacklist;
use crate::destination::DestinationPolicy;
use crate::registry::ModuleRegistry;

/// Crossbar's `validation error` data: dotted path → {code → details}.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValidationErrors(pub Map<String, Value>);

impl ValidationErrors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Records an error for `path` with `code`; several codes may stand for one path.
    pub fn add(&mut self, path: &str, code: &str, details: Value) {
        let entry = self
            .0
            .entry(path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(code.to_owned(), details);
        }
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

/// What validation needs to know beyond the document.
pub struct WebhookRules<'a> {
    pub registry: &'a ModuleRegistry,
    pub blacklist: &'a UriBlacklist,
    /// The SSRF guard: IP-literal hosts and `localhost` names it refuses are refused here.
    pub destinations: &'a DestinationPolicy,
}

/// Fields the server owns or injects that a client may echo back (`signed` marks a hook with
/// a secret); they are dropped, never stored as public fields (KAZOO stores an echoed
/// `disable_reason`: its bug §16.21).
const IGNORED_INPUT_FIELDS: &[&str] = &["id", "disable_reason", "_read_only", "signed"];

/// Validates the public fields of a webhook as crossbar does on create, replace and patch.
/// Returns the fields to store: coerced, with schema defaults applied, unknown fields kept.
pub fn validate_webhook(
    input: Map<String, Value>,
    rules: &WebhookRules<'_>,
) -> Result<Map<String, Value>, ValidationErrors> {
    let mut doc: Map<String, Value> = input
        .into_iter()
        .filter(|(k, _)| {
            crate::doc::is_public_key(k) && !IGNORED_INPUT_FIELDS.contains(&k.as_str())
        })
        .collect();
    let mut errors = ValidationErrors::default();

    for key in ["name", "uri", "hook"] {
        match doc.get(key) {
            None | Some(Value::Null) => errors.add(
                key,
                "required",
                json!({"message": "Field is required but missing", "value": key}),
            ),
            Some(v) => {
                expect_string(&mut errors, key, v);
            }
        }
    }

    coerce_integer(&mut doc, "retries");
    coerce_integer(&mut doc, "rate_limit");
    check_rate_limit(&mut errors, &doc);
    for key in ["enabled", "include_subaccounts", "include_internal_legs"] {
        coerce_boolean(&mut doc, key);
        if let Some(v) = doc.get(key) {
            if !v.is_boolean() {
                type_error(&mut errors, key, "boolean", v);
            }
        }
    }

    check_enum(&mut errors, &doc, "http_verb", &["get", "post", "put"]);
    check_enum(&mut errors, &doc, "format", &["form-data", "json"]);
    check_enum(
        &mut errors,
        &doc,
        "retry_schedule",
        &["kazoo", "exponential"],
    );

    if let Some(v) = doc.get("retries") {
        match v.as_i64() {
            None => type_error(&mut errors, "retries", "integer", v),
            Some(n) if n < 0 => errors.add(
                "retries",
                "minimum",
                json!({"message": "Value must be at least 0", "target": 0, "value": n}),
            ),
            Some(n) if n > 4 => errors.add(
                "retries",
                "maximum",
                json!({"message": "Value must be at most 4", "target": 4, "value": n}),
            ),
            Some(_) => {}
        }
    }

    match doc.get("custom_data") {
        None => {}
        Some(Value::Object(cd)) => {
            for (k, v) in cd {
                if !v.is_string() {
                    type_error(
                        &mut errors,
                        &format!("custom_data.{}", escape_path(k)),
                        "string",
                        v,
                    );
                }
            }
        }
        Some(v) => type_error(&mut errors, "custom_data", "object", v),
    }

    check_custom_headers(&mut errors, &doc);

    if let Some(Value::String(uri)) = doc.get("uri") {
        // The guard first: its message names the address, where KAZOO's says only "invalid".
        if let Err(refused) = destination_allowed(uri, rules.destinations) {
            errors.add(
                "uri",
                "error",
                json!({"message": refused.to_string(), "value": uri}),
            );
        } else if !uri_allowed(uri, rules.blacklist) {
            errors.add(
                "uri",
                "error",
                json!({"message": "invalid client URL", "value": uri}),
            );
        }
    }

    let hook = doc.get("hook").and_then(Value::as_str).map(str::to_owned);
    if let Some(hook) = &hook {
        if hook != "all" && !rules.registry.is_available(hook) {
            errors.add(
                "hook",
                "enum",
                json!({"message": "Value not found in enumerated list of values",
                       "target": rules.registry.hook_names(), "value": hook}),
            );
        } else if errors.is_empty() {
            check_modifiers(&mut errors, &doc, hook, rules.registry);
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    for (k, v) in [
        ("enabled", json!(true)),
        ("format", json!("form-data")),
        ("http_verb", json!("post")),
        ("include_internal_legs", json!(true)),
        ("retries", json!(2)),
    ] {
        doc.entry(k).or_insert(v);
    }
    Ok(doc)
}

/// Crossbar escapes a literal `.` inside a key as `%2E` in error paths.
fn escape_path(k: &str) -> String {
    k.replace('.', "%2E")
}

fn expect_string(errors: &mut ValidationErrors, key: &str, v: &Value) -> bool {
    if v.is_string() {
        true
    } else {
        type_error(errors, key, "string", v);
        false
    }
}

fn type_error(errors: &mut ValidationErrors, path: &str, ty: &str, v: &Value) {
    errors.add(
        path,
        "type",
        json!({"message": format!("Value did not match type(s): {ty}"), "target": ty, "value": v}),
    );
}

fn check_enum(
    errors: &mut ValidationErrors,
    doc: &Map<String, Value>,
    key: &str,
    allowed: &[&str],
) {
    let Some(v) = doc.get(key) else { return };
    if !v.as_str().is_some_and(|s| allowed.contains(&s)) {
        errors.add(
            key,
            "enum",
            json!({"message": "Value not found in enumerated list of values",
                   "target": allowed, "value": v}),
        );
    }
}

/// Custom request headers a hook may carry at most.
pub const MAX_CUSTOM_HEADERS: usize = 32;
/// The longest custom header value, in bytes.
pub const MAX_CUSTOM_HEADER_VALUE: usize = 4096;

/// Header names a hook may not set: framing and hop-by-hop headers the HTTP client owns, the
/// body's type (the hook's `format` decides it), and the headers the engine sends itself.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "content-type",
    "x-hook-id",
    "x-account-id",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// `custom_request_headers` (Monster UI 5.5's field): an object of header name to string
/// value, each one the sender can send (`http`'s own checks: a token name, a value without
/// CR, LF or NUL), none reserved, and bounded in number and size.
fn check_custom_headers(errors: &mut ValidationErrors, doc: &Map<String, Value>) {
    let headers = match doc.get("custom_request_headers") {
        None | Some(Value::Null) => return,
        Some(Value::Object(headers)) => headers,
        Some(v) => return type_error(errors, "custom_request_headers", "object", v),
    };
    if headers.len() > MAX_CUSTOM_HEADERS {
        errors.add(
            "custom_request_headers",
            "maxProperties",
            json!({"message": format!("at most {MAX_CUSTOM_HEADERS} headers"),
                   "target": MAX_CUSTOM_HEADERS}),
        );
    }
    for (name, value) in headers {
        let path = format!("custom_request_headers.{}", escape_path(name));
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            errors.add(
                &path,
                "pattern",
                json!({"message": "not a valid header name", "value": name}),
            );
        } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            errors.add(
                &path,
                "reserved",
                json!({"message": "this header is set by the engine or the HTTP client",
                       "value": name}),
            );
        }
        let Some(text) = value.as_str() else {
            type_error(errors, &path, "string", value);
            continue;
        };
        if text.len() > MAX_CUSTOM_HEADER_VALUE {
            errors.add(
                &path,
                "maxLength",
                json!({"message": format!("at most {MAX_CUSTOM_HEADER_VALUE} bytes"),
                       "target": MAX_CUSTOM_HEADER_VALUE}),
            );
        } else if http::HeaderValue::from_str(text).is_err() {
            errors.add(
                &path,
                "pattern",
                json!({"message": "not a valid header value (no CR, LF or NUL)"}),
            );
        }
    }
}

/// The largest `rate_limit` accepted, in requests per second.
pub const MAX_RATE_LIMIT: i64 = 100_000;

/// `rate_limit` (ours): requests per second, an integer from 1 to [`MAX_RATE_LIMIT`].
fn check_rate_limit(errors: &mut ValidationErrors, doc: &Map<String, Value>) {
    let Some(v) = doc.get("rate_limit").filter(|v| !v.is_null()) else {
        return;
    };
    match v.as_i64() {
        None => type_error(errors, "rate_limit", "integer", v),
        Some(n) if n < 1 => errors.add(
            "rate_limit",
            "minimum",
            json!({"message": "Value must be at least 1", "target": 1, "value": n}),
        ),
        Some(n) if n > MAX_RATE_LIMIT => errors.add(
            "rate_limit",
            "maximum",
            json!({"message": format!("Value must be at most {MAX_RATE_LIMIT}"),
                   "target": MAX_RATE_LIMIT, "value": n}),
        ),
        Some(_) => {}
    }
}

/// JavaScript-style coercion of a numeric string (`"3"`, `" 3 "`) or integral float to an integer.
fn coerce_integer(doc: &mut Map<String, Value>, key: &str) {
    let coerced = match doc.get(key) {
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(Value::Number(n)) if n.as_i64().is_none() => n
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
            .map(|f| f as i64),
        _ => None,
    };
    if let Some(n) = coerced {
        doc.insert(key.to_owned(), Value::from(n));
    }
}

/// `"true"`/`"false"` (any case) to booleans.
fn coerce_boolean(doc: &mut Map<String, Value>, key: &str) {
    let coerced = match doc.get(key) {
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    };
    if let Some(b) = coerced {
        doc.insert(key.to_owned(), Value::Bool(b));
    }
}

/// The longest hook uri accepted, in bytes.
pub const MAX_URI_BYTES: usize = 8192;

/// KAZOO's "kazoo-validation" of client URLs: http(s) only, host not in the host blacklist,
/// an IP-literal host not in a blacklisted network. The name is not resolved.
///
/// Stricter than KAZOO where KAZOO would store a uri no request can be sent to: the uri must
/// also parse as the sender parses it (`http::Uri`, which refuses spaces, control characters
/// and `\` that `url` quietly rewrites), carry no credentials, and fit in [`MAX_URI_BYTES`].
/// Such a uri would otherwise fail every delivery and get its hook disabled.
pub fn uri_allowed(uri: &str, blacklist: &UriBlacklist) -> bool {
    // `\\` is no URI character; `url` reads it as `/` while `http::Uri` keeps it, so the two
    // would disagree on the path.
    if uri.len() > MAX_URI_BYTES || uri.contains('\\') {
        return false;
    }
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    if !matches!(url.scheme(), "http" | "https") {
        return false;
    }
    if !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    // The two parsers must agree on where the request goes: `url` reads `http:A` as
    // `http://a/`, `http::Uri` as the authority `http:A` (host `http`).
    let sendable = uri.parse::<http::Uri>().is_ok_and(|u| {
        let sent_host = u.host().unwrap_or_default();
        let judged_host = url.host_str().unwrap_or_default();
        u.scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(url.scheme()))
            && !sent_host.is_empty()
            && sent_host.eq_ignore_ascii_case(judged_host)
    });
    if !sendable {
        return false;
    }
    let Some(host) = url.host() else { return false };
    match host {
        url::Host::Domain(name) => {
            let name = name.to_ascii_lowercase();
            !blacklist
                .hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&name))
        }
        url::Host::Ipv4(ip) => !ip_blacklisted(IpAddr::V4(ip), blacklist),
        url::Host::Ipv6(ip) => !ip_blacklisted(IpAddr::V6(ip), blacklist),
    }
}

/// The SSRF guard's check of a saved uri (see [`DestinationPolicy::check_saved_host`]). The
/// host is the one `url` parsed, so every numeric spelling of an address (`127.1`,
/// `0x7f000001`, `2130706433`, `017700000001`) is judged as the address it stands for.
pub fn destination_allowed(
    uri: &str,
    policy: &DestinationPolicy,
) -> Result<(), crate::destination::Refused> {
    match url::Url::parse(uri) {
        Ok(url) => match url.host() {
            Some(host) => policy.check_saved_host(&host),
            None => Ok(()),
        },
        Err(_) => Ok(()),
    }
}

/// An IPv6 form of an IPv4 address (`[::ffff:127.0.0.1]`) is judged as both, so an IPv4
/// network in the list covers it.
fn ip_blacklisted(ip: IpAddr, blacklist: &UriBlacklist) -> bool {
    let canonical = crate::destination::canonical(ip);
    blacklist
        .cidrs
        .iter()
        .any(|net| net.contains(&ip) || net.contains(&canonical))
}

/// The modifier check (§3.5 rule 4): every modifier the module declares must be set in
/// `custom_data` to one of its allowed values (or `all`).
fn check_modifiers(
    errors: &mut ValidationErrors,
    doc: &Map<String, Value>,
    hook: &str,
    registry: &ModuleRegistry,
) {
    let Some(meta) = registry.metadata(hook) else {
        return;
    };
    let Some(modifiers) = &meta.modifiers else {
        return;
    };
    let custom = doc.get("custom_data").and_then(Value::as_object);
    for (name, spec) in modifiers {
        let path = format!("custom_data.{}", escape_path(name));
        let Some(value) = custom.and_then(|c| c.get(name)) else {
            errors.add(
                &path,
                "required",
                json!({"message": "missing required modifier"}),
            );
            continue;
        };
        let allowed: Vec<String> = match spec.get("items") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::Object(items)) => items.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let ok = value
            .as_str()
            .is_some_and(|v| v == "all" || allowed.iter().any(|a| a == v));
        if !ok {
            errors.add(
                &path,
                "enum",
                json!({"message": "value not found in enumerated list of values",
                       "cause": value, "target": allowed}),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_modules::StandIn;

    /// A module named `id` with these catalogue modifiers.
    fn meta(id: &'static str, modifiers: Option<Value>) -> StandIn {
        StandIn {
            modifiers,
            ..StandIn::named(id)
        }
    }

    fn registry() -> ModuleRegistry {
        ModuleRegistry::new()
            .register(meta("channel_create", None))
            .register(meta(
                "object",
                Some(
                    json!({"type": {"type": "array", "items": ["all", "user", "device"]},
                        "action": {"type": "array", "items": ["all", "doc_created"]}}),
                ),
            ))
    }

    fn run(v: Value) -> Result<Map<String, Value>, ValidationErrors> {
        let reg = registry();
        let bl = UriBlacklist::default();
        validate_webhook(
            v.as_object().unwrap().clone(),
            &WebhookRules {
                destinations: &DestinationPolicy::open(),
                registry: &reg,
                blacklist: &bl,
            },
        )
    }

    fn err(v: Value) -> Value {
        run(v).unwrap_err().into_value()
    }

    #[test]
    fn valid_hook_gets_defaults_and_keeps_unknown_fields() {
        let ok = run(
            json!({"name":"n","uri":"http://my.server.com/x","hook":"channel_create",
                            "ui_metadata":{"origin":"monster"},"disable_reason":"x","id":"y"}),
        )
        .unwrap();
        assert_eq!(ok["http_verb"], "post");
        assert_eq!(ok["retries"], 2);
        assert_eq!(ok["format"], "form-data");
        assert_eq!(ok["enabled"], true);
        assert_eq!(ok["include_internal_legs"], true);
        assert_eq!(ok["ui_metadata"]["origin"], "monster");
        assert!(!ok.contains_key("disable_reason"));
        assert!(!ok.contains_key("id"));
    }

    #[test]
    fn required_fields_are_reported_each() {
        let e = err(json!({}));
        for k in ["name", "uri", "hook"] {
            assert_eq!(e[k]["required"]["message"], "Field is required but missing");
        }
    }

    #[test]
    fn strings_are_coerced_like_crossbar_non_strict_mode() {
        let ok = run(
            json!({"name":"n","uri":"http://a.b/","hook":"all","retries":"3","enabled":"false"}),
        )
        .unwrap();
        assert_eq!(ok["retries"], 3);
        assert_eq!(ok["enabled"], false);
        let e = err(json!({"name":"n","uri":"http://a.b/","hook":"all","retries":"three"}));
        assert_eq!(e["retries"]["type"]["target"], "integer");
    }

    #[test]
    fn enums_and_bounds() {
        let e = err(
            json!({"name":"n","uri":"http://a.b/","hook":"nope","http_verb":"delete","retries":9,"format":"xml"}),
        );
        assert_eq!(
            e["http_verb"]["enum"]["target"],
            json!(["get", "post", "put"])
        );
        assert_eq!(
            e["retries"]["maximum"]["message"],
            "Value must be at most 4"
        );
        assert_eq!(e["format"]["enum"]["value"], "xml");
        assert_eq!(
            e["hook"]["enum"]["target"],
            json!(["all", "channel_create", "object"])
        );
        let e = err(json!({"name":"n","uri":"http://a.b/","hook":"all","retries":-1}));
        assert_eq!(e["retries"]["minimum"]["target"], 0);
    }

    #[test]
    fn uri_must_be_http_and_not_blacklisted() {
        let bl = UriBlacklist::default();
        assert!(uri_allowed("http://my.server.com/x", &bl));
        assert!(uri_allowed("https://127.0.0.2:8080/x", &bl));
        assert!(!uri_allowed("https://localhost:345/x", &bl));
        assert!(!uri_allowed("http://LOCALHOST/x", &bl));
        assert!(!uri_allowed("http://127.0.0.1/x", &bl));
        assert!(!uri_allowed("http://[::ffff:127.0.0.1]/x", &bl));
        assert!(!uri_allowed("http://0.0.0.0/x", &bl));
        assert!(!uri_allowed("ftp://a.b/x", &bl));
        assert!(!uri_allowed("not a uri", &bl));
        assert!(uri_allowed("http://127.0.0.1/x", &UriBlacklist::none()));
        let e = err(json!({"name":"n","uri":"ftp://x/","hook":"all"}));
        assert_eq!(e["uri"]["error"]["message"], "invalid client URL");
    }

    #[test]
    fn every_numeric_spelling_of_an_internal_address_is_refused_when_saved() {
        let guarded = DestinationPolicy::default();
        for uri in [
            "http://127.1/x",
            "http://0x7f000001/x",
            "http://2130706433/x",
            "http://017700000001/x",
            "http://0177.0.0.1/x",
            "http://[::ffff:127.0.0.1]:8080/x",
            "http://[::ffff:7f00:1]/x",
            "http://[::1]/x",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.1/x",
            "http://localhost./x",
            "http://foo.localhost/x",
        ] {
            let e = destination_allowed(uri, &guarded).unwrap_err();
            assert!(
                e.to_string().starts_with("destination not allowed: "),
                "{uri}: {e}"
            );
        }
        assert_eq!(
            destination_allowed("http://0x7f000001/x", &guarded)
                .unwrap_err()
                .to_string(),
            "destination not allowed: 127.0.0.1"
        );
        assert!(destination_allowed("http://example.com/x", &guarded).is_ok());
        assert!(destination_allowed("http://8.8.8.8/x", &guarded).is_ok());
        let lan = DestinationPolicy::allowing(["10.0.0.0/8"]).unwrap();
        assert!(destination_allowed("http://10.0.0.1/x", &lan).is_ok());
        assert!(destination_allowed("http://127.1/x", &lan).is_err());
    }

    #[test]
    fn uris_the_sender_cannot_send_are_refused() {
        let none = UriBlacklist::none();
        for uri in [
            "http://a.b/x\r\ny",
            "http://a.b/\0",
            "http://a.b/a b",
            "http://a.b/a\\b",
            "http://user:secret@a.b/",
            "http://user@a.b/",
            "http:A",
        ] {
            assert!(!uri_allowed(uri, &none), "{uri:?}");
        }
        let long = format!("http://a.b/{}", "x".repeat(MAX_URI_BYTES));
        assert!(!uri_allowed(&long, &none));
        assert!(uri_allowed("http://a.b/x?y=1&z=%20", &none));
        let e = err(json!({"name":"n","uri":"http://a.b/a b","hook":"all"}));
        assert_eq!(e["uri"]["error"]["message"], "invalid client URL");
    }

    #[test]
    fn rate_limit_is_a_positive_integer() {
        let e = err(json!({"name":"n","uri":"http://a.b/","hook":"all","rate_limit":0}));
        assert_eq!(e["rate_limit"]["minimum"]["target"], 1);
        let e = err(json!({"name":"n","uri":"http://a.b/","hook":"all","rate_limit":"x"}));
        assert_eq!(e["rate_limit"]["type"]["target"], "integer");
        let e = err(json!({"name":"n","uri":"http://a.b/","hook":"all","rate_limit":1_000_000}));
        assert_eq!(e["rate_limit"]["maximum"]["target"], MAX_RATE_LIMIT);
    }

    #[test]
    fn custom_data_values_must_be_strings() {
        let e = err(json!({"name":"n","uri":"http://a.b/","hook":"all","custom_data":{"a.b":1}}));
        assert_eq!(e["custom_data.a%2Eb"]["type"]["target"], "string");
    }

    #[test]
    fn modifiers_are_required_and_checked() {
        let e = err(
            json!({"name":"n","uri":"http://a.b/","hook":"object","custom_data":{"type":"bogus"}}),
        );
        assert_eq!(e["custom_data.type"]["enum"]["cause"], "bogus");
        assert_eq!(
            e["custom_data.action"]["required"]["message"],
            "missing required modifier"
        );
        assert!(run(json!({"name":"n","uri":"http://a.b/","hook":"object",
                           "custom_data":{"type":"user","action":"all"}}))
        .is_ok());
        // `all` hooks skip the modifier check.
        assert!(run(json!({"name":"n","uri":"http://a.b/","hook":"all"})).is_ok());
    }
}
