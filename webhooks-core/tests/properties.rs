//! Property tests over core's input handling (issue 14: every input fuzzed).
//!
//! Clients write webhook documents and KAZOO writes events; both reach core as arbitrary JSON,
//! so every function here must answer any value without panicking, without blowing the stack
//! on deep nesting, and with output proportionate to its input. The properties:
//!
//! - `validate_webhook`: any object gets an answer; errors stay proportionate to the input; an
//!   accepted document has KAZOO's types and defaults, and validating it again changes nothing
//!   (idempotence: the API re-validates stored documents on every patch); documents built to be
//!   valid, in Monster UI's coercible spellings (`"retries": " 3 "`, `"enabled": "TRUE"`), are
//!   accepted with the coercion applied.
//! - `uri_allowed`: any string gets an answer; only http(s) urls with a host pass, and plain
//!   ones do; the host the blacklist judged is the host the sender connects to; blocked names
//!   (any case) and addresses in blocked networks (any IPv4 spelling) are refused, and
//!   validation refuses every spelling of loopback and `localhost`.
//! - `encode`: the form encoding of any payload whose keys are form-safe parses back, with a
//!   real `application/x-www-form-urlencoded` parser, into exactly KAZOO's flattened pairs;
//!   with hostile keys its size stays within the flattened pairs' size; `urlencode_legacy`
//!   emits only unreserved bytes and decodes back; `json_body` parses back to the payload;
//!   `get_url` appends the query once.
//! - `event::normalize`: idempotent, drops nulls, never grows its input.
//!
//! Deep nesting is built by hand (serde_json's parser stops at 128) and run through each
//! recursive function in ordinary tests, on the test thread's default stack; see [`DEEP`] for
//! why that is hundreds of levels rather than thousands.
//!
//! Case counts keep the whole file at a few seconds in a debug build.

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{json, Map, Number, Value};
use webhooks_core::config::UriBlacklist;
use webhooks_core::destination::DestinationPolicy;
use webhooks_core::encode::{get_url, json_body, querystring, urlencode_legacy};
use webhooks_core::event::{normalize, EventError};
use webhooks_core::validate::{uri_allowed, validate_webhook, WebhookRules};
use webhooks_core::WebhookModule;
use webhooks_core::{Binding, Dispatch, Event, HookFinder, ModuleMetadata, ModuleRegistry};

/// Nesting depth of the hand-built deep documents: six times serde_json's parser limit (128).
/// Deeper is out of reach of serde_json itself: in a debug build `Value::clone` overflows a
/// test thread's 2 MiB stack at about 1000 levels (`normalize` at about 1500, `querystring`
/// at about 3800, `json_body` at about 4000).
const DEEP: usize = 768;

/// Depth for the encoders: as deep as [`DEEP`]. Deeper (2048 arrays) overflowed a test
/// thread's stack in the form encoder once in a full test run, depending on what else the
/// thread's frames held; events are parsed by serde_json, whose limit is 128 levels, so no
/// payload comes near either depth.
const DEEP_ENCODED: usize = DEEP;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// Strings meant to break things: empty, control and non-BMP characters, the form encoding's
/// and urls' delimiters, numbers and booleans in text, byte-order marks.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ".{0,16}",
        2 => prop::collection::vec(any::<char>(), 0..12).prop_map(|cs| cs.into_iter().collect()),
        2 => "[&=\\[\\]%+ .~_?#/:@\\-]{0,10}",
        1 => "[ \t]{0,2}-?[0-9]{1,20}(\\.[0-9]{1,3})?[ \t]{0,2}",
        1 => prop::sample::select(vec![
            "", "true", "TRUE", "fAlSe", "all", "null", "%2E", "\u{0}", "\u{feff}", "\u{10ffff}",
            "a.b", "%zz", "+", "1e400", "-0", "NaN", "http://", "🦀",
        ])
        .prop_map(String::from),
    ]
}

/// Numbers at the edges: extremes of i64/u64, huge and tiny floats, integral floats.
fn edge_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        prop::sample::select(vec![
            json!(i64::MIN),
            json!(u64::MAX),
            json!(1e300),
            json!(-1e300),
            json!(-0.0),
            json!(3.0),
            json!(4.000000001),
            json!(1e15),
            json!(9.9e14),
            json!(f64::MIN_POSITIVE),
        ]),
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => edge_number(),
        4 => hostile_string().prop_map(Value::String),
    ]
}

/// Any JSON value of modest size, keys included hostile.
fn any_json() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((hostile_string(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// Webhook validation
// ---------------------------------------------------------------------------------------------

/// A module that is a name and catalogue modifiers; validation asks nothing else of it.
struct NamedModule {
    id: &'static str,
    modifiers: Option<Value>,
}

impl WebhookModule for NamedModule {
    fn init(&self) -> ModuleMetadata {
        ModuleMetadata {
            id: self.id.into(),
            name: self.id.into(),
            description: String::new(),
            modifiers: self.modifiers.as_ref().and_then(|m| m.as_object().cloned()),
        }
    }
    fn bindings_and_responders(&self) -> Vec<Binding> {
        Vec::new()
    }
    fn handle_event(&self, _: &Event, _: &dyn HookFinder) -> Result<Vec<Dispatch>, EventError> {
        Ok(Vec::new())
    }
}

/// Modules shaped like KAZOO's: one without modifiers, `object`'s array modifiers and
/// `notifications`' object-keyed modifier.
fn registry() -> ModuleRegistry {
    ModuleRegistry::new()
        .register(NamedModule {
            id: "channel_create",
            modifiers: None,
        })
        .register(NamedModule {
            id: "object",
            modifiers: Some(json!({
                "type": {"type": "array", "items": ["all", "user", "device"]},
                "action": {"type": "array", "items": ["all", "doc_created", "doc_edited"]}
            })),
        })
        .register(NamedModule {
            id: "notifications",
            modifiers: Some(json!({
                "type": {"type": "object", "items": {"all": {}, "voicemail_new": {}}}
            })),
        })
}

fn validate(input: Map<String, Value>) -> Result<Map<String, Value>, Value> {
    let registry = registry();
    let blacklist = UriBlacklist::default();
    let destinations = DestinationPolicy::default();
    validate_webhook(
        input,
        &WebhookRules {
            registry: &registry,
            blacklist: &blacklist,
            destinations: &destinations,
        },
    )
    .map_err(|e| e.into_value())
}

/// A uri validation accepts: http(s), a domain that is not blocked, any port, path and query.
fn allowed_uri() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["http", "https", "HTTP", "hTtPs"]),
        "[a-z]{1,8}(-[a-z0-9]{1,4})?(\\.[a-z]{2,5}){1,2}",
        prop::option::of(1u16..),
        "(/[a-zA-Z0-9_.~\\-]{0,8}){0,3}",
        prop::option::of("[a-z0-9=&]{0,12}"),
    )
        .prop_map(|(scheme, host, port, path, query)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let query = query.map(|q| format!("?{q}")).unwrap_or_default();
            format!("{scheme}://{host}{port}{path}{query}")
        })
}

/// How Monster UI may spell `retries` 0..=4: a number, an integral float, a padded string.
fn coercible_retries() -> impl Strategy<Value = (i64, Value)> {
    (0i64..=4, 0..4u8).prop_map(|(n, spelling)| {
        let v = match spelling {
            0 => json!(n),
            1 => json!(n as f64),
            2 => json!(n.to_string()),
            _ => json!(format!(" {n}\t")),
        };
        (n, v)
    })
}

/// How a client may spell a boolean: the value, or `"true"`/`"false"` in any case.
fn coercible_bool() -> impl Strategy<Value = (bool, Value)> {
    (any::<bool>(), any::<bool>(), any::<u8>()).prop_map(|(b, as_text, case_mask)| {
        if !as_text {
            return (b, Value::Bool(b));
        }
        let text: String = b
            .to_string()
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if case_mask & (1 << i) != 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        (b, Value::String(text))
    })
}

/// A hook crossbar accepts, with the value each coerced field must end up with.
#[derive(Debug, Clone)]
struct ValidHook {
    input: Map<String, Value>,
    retries: Option<i64>,
    enabled: Option<bool>,
}

fn valid_hook() -> impl Strategy<Value = ValidHook> {
    let hook_and_custom_data = prop_oneof![
        (
            prop::sample::select(vec!["all", "channel_create"]),
            prop::option::of(prop::collection::btree_map(
                hostile_string(),
                hostile_string(),
                0..4
            )),
        )
            .prop_map(|(hook, cd)| {
                let cd = cd.map(|m| m.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
                (hook, cd)
            }),
        (
            prop::sample::select(vec!["all", "user", "device"]),
            prop::sample::select(vec!["all", "doc_created", "doc_edited"]),
        )
            .prop_map(|(t, a)| {
                let mut cd = Map::new();
                cd.insert("type".into(), t.into());
                cd.insert("action".into(), a.into());
                ("object", Some(cd))
            }),
        prop::sample::select(vec!["all", "voicemail_new"]).prop_map(|t| {
            let mut cd = Map::new();
            cd.insert("type".into(), t.into());
            ("notifications", Some(cd))
        }),
    ];
    (
        hostile_string(),
        allowed_uri(),
        hook_and_custom_data,
        prop::option::of(coercible_retries()),
        prop::option::of(coercible_bool()),
        prop::option::of(prop::sample::select(vec!["get", "post", "put"])),
        prop::option::of(prop::sample::select(vec!["form-data", "json"])),
        prop::collection::vec(("[a-z][a-z_]{0,8}", any_json()), 0..3),
    )
        .prop_map(
            |(name, uri, (hook, custom_data), retries, enabled, verb, format, extra)| {
                let mut input = Map::new();
                // Unknown fields first, so the known ones below win a name clash.
                for (k, v) in extra {
                    input.insert(k, v);
                }
                input.insert("name".into(), name.into());
                input.insert("uri".into(), uri.into());
                input.insert("hook".into(), hook.into());
                if let Some(cd) = custom_data {
                    input.insert("custom_data".into(), Value::Object(cd));
                } else {
                    input.remove("custom_data");
                }
                for (key, value) in [
                    ("retries", retries.as_ref().map(|(_, v)| v.clone())),
                    ("enabled", enabled.as_ref().map(|(_, v)| v.clone())),
                    ("http_verb", verb.map(Value::from)),
                    ("format", format.map(Value::from)),
                ] {
                    match value {
                        Some(v) => input.insert(key.into(), v),
                        None => input.remove(key),
                    };
                }
                for key in [
                    "include_subaccounts",
                    "include_internal_legs",
                    "retry_schedule",
                ] {
                    input.remove(key);
                }
                ValidHook {
                    input,
                    retries: retries.map(|(n, _)| n),
                    enabled: enabled.map(|(b, _)| b),
                }
            },
        )
}

/// The fields validation looks at, the ones it drops, and hostile names.
fn webhook_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "name", "uri", "hook", "retries", "enabled", "include_subaccounts",
            "include_internal_legs", "http_verb", "format", "retry_schedule", "custom_data",
            "id", "_id", "_rev", "pvt_account_id", "disable_reason", "_read_only", "ui_metadata",
        ])
        .prop_map(String::from),
        1 => hostile_string(),
    ]
}

/// A valid hook with a few fields replaced by arbitrary values, removed or added: inputs on
/// both sides of the line between accepted and refused.
fn mutated_hook() -> impl Strategy<Value = Map<String, Value>> {
    (
        valid_hook(),
        prop::collection::vec((webhook_key(), prop::option::of(any_json())), 0..4),
    )
        .prop_map(|(hook, edits)| {
            let mut input = hook.input;
            for (key, value) in edits {
                match value {
                    Some(v) => input.insert(key, v),
                    None => input.remove(&key),
                };
            }
            input
        })
}

fn json_len(v: &Value) -> usize {
    serde_json::to_string(v).map_or(0, |s| s.len())
}

/// What every accepted document must be, whatever came in.
fn assert_accepted_shape(doc: &Map<String, Value>) {
    for key in ["name", "uri", "hook", "http_verb", "format"] {
        assert!(doc[key].is_string(), "{key} is a string in {doc:?}");
    }
    for key in ["enabled", "include_internal_legs"] {
        assert!(doc[key].is_boolean(), "{key} is a boolean in {doc:?}");
    }
    assert!(
        doc["retries"]
            .as_i64()
            .is_some_and(|n| (0..=4).contains(&n)),
        "retries within 0..=4 in {doc:?}"
    );
    if let Some(cd) = doc.get("custom_data") {
        let cd = cd.as_object().expect("custom_data is an object");
        assert!(
            cd.values().all(Value::is_string),
            "custom_data values are strings"
        );
    }
    for key in doc.keys() {
        assert!(
            !key.starts_with('_') && !key.starts_with("pvt_"),
            "private field {key} kept"
        );
        assert!(
            !["id", "disable_reason", "_read_only"].contains(&key.as_str()),
            "server-owned field {key} kept"
        );
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn validation_answers_any_document_in_proportion(input in mutated_hook()) {
        let input_len = json_len(&Value::Object(input.clone()));
        match validate(input) {
            Ok(doc) => {
                assert_accepted_shape(&doc);
                prop_assert_eq!(validate(doc.clone()), Ok(doc), "re-validation changes nothing");
            }
            Err(errors) => {
                let errors = errors.as_object().expect("errors are an object");
                prop_assert!(!errors.is_empty());
                for (path, codes) in errors {
                    prop_assert!(
                        codes.as_object().is_some_and(|c| !c.is_empty()),
                        "{} has at least one error code", path
                    );
                }
                // Each error quotes at most the offending value once (and `custom_data` paths
                // escape `.` as `%2E`); the rest is fixed text and the hook name catalogue.
                let errors_len = json_len(&Value::Object(errors.clone()));
                prop_assert!(
                    errors_len <= 4 * input_len + 4096,
                    "{} bytes of errors for {} bytes of input", errors_len, input_len
                );
            }
        }
    }

    #[test]
    fn arbitrary_objects_never_panic_validation(input in prop::collection::vec((webhook_key(), any_json()), 0..10)) {
        let input: Map<String, Value> = input.into_iter().collect();
        if let Ok(doc) = validate(input) {
            assert_accepted_shape(&doc);
            prop_assert_eq!(validate(doc.clone()), Ok(doc));
        }
    }

    #[test]
    fn valid_hooks_are_accepted_with_coercions_applied(hook in valid_hook()) {
        let doc = validate(hook.input.clone())
            .unwrap_or_else(|e| panic!("refused {:?}: {e}", hook.input));
        assert_accepted_shape(&doc);
        prop_assert_eq!(doc["retries"].as_i64(), Some(hook.retries.unwrap_or(2)));
        prop_assert_eq!(doc["enabled"].as_bool(), Some(hook.enabled.unwrap_or(true)));
        prop_assert_eq!(&doc["name"], &hook.input["name"]);
        prop_assert_eq!(&doc["uri"], &hook.input["uri"]);
        prop_assert_eq!(validate(doc.clone()), Ok(doc), "re-validation changes nothing");
    }
}

/// `{"a": {"a": ... leaf}}`, `depth` objects deep.
fn nested_objects(depth: usize, leaf: Value) -> Value {
    (0..depth).fold(leaf, |inner, _| {
        let mut m = Map::new();
        m.insert("a".into(), inner);
        Value::Object(m)
    })
}

/// `[[[... leaf]]]`, `depth` arrays deep.
fn nested_arrays(depth: usize, leaf: Value) -> Value {
    (0..depth).fold(leaf, |inner, _| Value::Array(vec![inner]))
}

fn minimal_hook() -> Map<String, Value> {
    json!({"name": "n", "uri": "http://my.server.com/x", "hook": "channel_create"})
        .as_object()
        .cloned()
        .expect("an object")
}

#[test]
fn deeply_nested_fields_are_validated_without_overflowing() {
    let mut kept = minimal_hook();
    kept.insert("ui_metadata".into(), nested_objects(DEEP, json!("x")));
    let doc = validate(kept).expect("unknown fields are kept whatever their depth");
    assert_eq!(doc["ui_metadata"], nested_objects(DEEP, json!("x")));

    // Refused values are quoted in the errors, so the deep value is copied there.
    for (field, value) in [
        ("retries", nested_arrays(DEEP, json!(1))),
        ("enabled", nested_objects(DEEP, json!(true))),
        ("name", nested_arrays(DEEP, json!("n"))),
    ] {
        let mut input = minimal_hook();
        input.insert(field.into(), value.clone());
        let errors = validate(input).expect_err("a deep value is the wrong type");
        assert_eq!(errors[field]["type"]["value"], value, "{field}");
    }
    let mut input = minimal_hook();
    let mut custom_data = Map::new();
    custom_data.insert("k.1".into(), nested_objects(DEEP, json!(1)));
    input.insert("custom_data".into(), Value::Object(custom_data));
    let errors = validate(input).expect_err("custom_data values must be strings");
    assert_eq!(errors["custom_data.k%2E1"]["type"]["target"], "string");
}

// ---------------------------------------------------------------------------------------------
// Client url refusal
// ---------------------------------------------------------------------------------------------

/// Url-shaped strings assembled from pieces that parsers disagree on.
fn url_like() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec![
        "http://",
        "https://",
        "HTTP://",
        "ftp://",
        "file://",
        "http:",
        "http:/",
        "http:\\\\",
        "javascript:",
        "",
        "//",
        "h\u{0}ttp://",
    ]);
    let userinfo = prop::sample::select(vec!["", "user@", "u:p@", "@", "a@b@", "%40@"]);
    let host = prop_oneof![
        "[a-zA-Z0-9.\\-]{0,16}",
        hostile_string(),
        any::<[u8; 4]>().prop_map(|o| format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])),
        any::<[u16; 8]>().prop_map(|s| format!(
            "[{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}]",
            s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
        )),
        prop::sample::select(vec![
            "localhost",
            "LOCALHOST",
            "localhost.",
            "127.1",
            "0x7f000001",
            "2130706433",
            "017700000001",
            "[::1]",
            "[::ffff:127.0.0.1]",
            "[",
            "]",
            "xn--",
            "xn--nxasmq6b",
            "ex%41mple.com",
            "exa mple.com",
            "例え.テスト",
            "0",
            "256.256.256.256",
        ])
        .prop_map(String::from),
    ];
    let port = prop::sample::select(vec![
        "", ":80", ":0", ":65535", ":65536", ":-1", ":", ":abc",
    ]);
    let rest = prop::sample::select(vec!["", "/", "/x?y=1#f", "?", "#", "/%", "/../..", "\\x"]);
    (scheme, userinfo, host, port, rest).prop_map(|(s, u, h, p, r)| format!("{s}{u}{h}{p}{r}"))
}

fn any_uri() -> impl Strategy<Value = String> {
    prop_oneof![3 => url_like(), 1 => hostile_string()]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn only_http_urls_with_a_host_are_allowed(uri in any_uri()) {
        let allowed_anywhere = uri_allowed(&uri, &UriBlacklist::none());
        if allowed_anywhere {
            let parsed = url::Url::parse(&uri);
            prop_assert!(
                parsed.as_ref().is_ok_and(|u| matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()),
                "{:?} allowed as {:?}", uri, parsed
            );
        }
        if uri_allowed(&uri, &UriBlacklist::default()) {
            prop_assert!(allowed_anywhere, "blocking more never allows more: {:?}", uri);
        }
    }

    #[test]
    fn well_formed_http_urls_are_allowed(uri in allowed_uri()) {
        prop_assert!(uri_allowed(&uri, &UriBlacklist::default()), "{:?} refused", uri);
    }

    /// The blacklist judges the host `url` reads; the sender connects to the host `http::Uri`
    /// reads. For an allowed uri naming a domain the two must be the same name, or a uri could
    /// be judged as one host and sent to another.
    #[test]
    fn the_judged_host_is_the_host_sent_to(uri in any_uri()) {
        if uri_allowed(&uri, &UriBlacklist::default()) {
            let judged = url::Url::parse(&uri).expect("allowed uris parse");
            let sent: http::Uri = uri.parse().expect("allowed uris are sendable");
            if let Some(url::Host::Domain(judged)) = judged.host() {
                let sent = sent.host().unwrap_or_default().to_ascii_lowercase();
                prop_assert_eq!(judged, sent.as_str(), "for {:?}", uri);
            }
        }
    }

    #[test]
    fn blocked_names_are_refused_in_any_case(
        case_mask in any::<u16>(),
        scheme in prop::sample::select(vec!["http", "https"]),
        port in prop::option::of(any::<u16>()),
        path in "(/[a-z0-9]{0,6}){0,2}",
    ) {
        let host: String = "localhost"
            .chars()
            .enumerate()
            .map(|(i, c)| if case_mask & (1 << i) != 0 { c.to_ascii_uppercase() } else { c })
            .collect();
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let uri = format!("{scheme}://{host}{port}{path}");
        prop_assert!(!uri_allowed(&uri, &UriBlacklist::default()), "{} allowed", uri);
    }

    #[test]
    fn addresses_in_blocked_networks_are_refused_in_any_spelling(
        octets in any::<[u8; 4]>(),
        prefix in 8u8..=32,
        spelling in 0..3u8,
    ) {
        let network = ipnet::Ipv4Net::new(octets.into(), prefix).expect("prefix at most 32");
        let blacklist = UriBlacklist { hosts: vec![], cidrs: vec![network.into()] };
        let ip = u32::from(std::net::Ipv4Addr::from(octets));
        let host = match spelling {
            0 => std::net::Ipv4Addr::from(ip).to_string(),
            1 => format!("0x{ip:x}"),
            _ => ip.to_string(),
        };
        let uri = format!("http://{host}/x");
        prop_assert!(!uri_allowed(&uri, &blacklist), "{} allowed past {}", uri, network);
    }
}

/// What the operator blocks stays blocked however the client spells it: validation (the
/// blacklist and the destination guard together) refuses every spelling of loopback and of
/// `localhost`, where `uri_allowed` alone compares the host as written.
#[test]
fn spellings_of_blocked_destinations_are_refused_by_validation() {
    for uri in [
        "http://localhost/x",
        "http://LocalHost./x",
        "http://a.localhost/x",
        "http://127.1/x",
        "http://0x7f000001/x",
        "http://2130706433/x",
        "http://017700000001/x",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://[::ffff:7f00:1]/x",
        "http://0.0.0.0/x",
    ] {
        let mut input = minimal_hook();
        input.insert("uri".into(), uri.into());
        let errors = validate(input).expect_err(uri);
        assert!(errors["uri"]["error"].is_object(), "{uri}: {errors}");
    }
}

// ---------------------------------------------------------------------------------------------
// Form and JSON encoding
// ---------------------------------------------------------------------------------------------

/// Keys an `application/x-www-form-urlencoded` parser reads back as written: KAZOO does not
/// escape keys, so `&`, `=`, `%` and `+` in a key change what a receiver parses.
fn form_safe_key() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.~\\-\\[\\] éß日🦀]{0,8}"
}

fn json_with_keys(key: BoxedStrategy<String>) -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn payload_with_keys(key: BoxedStrategy<String>) -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((key.clone(), json_with_keys(key)), 0..8)
        .prop_map(|kv| kv.into_iter().collect())
}

/// The (key, value) pairs KAZOO's `json_to_querystring` flattens a payload into, as a receiver
/// decodes them: nested objects as `key[sub]`, arrays as `key[]`, nulls dropped, scalars as
/// text and arrays inside arrays as their JSON text.
fn flattened(payload: &Map<String, Value>) -> Vec<(String, String)> {
    fn object(out: &mut Vec<(String, String)>, obj: &Map<String, Value>, prefix: Option<&str>) {
        for (k, v) in obj {
            let key = prefix.map_or_else(|| k.clone(), |p| format!("{p}[{k}]"));
            value(out, key, v);
        }
    }
    fn value(out: &mut Vec<(String, String)>, key: String, v: &Value) {
        match v {
            Value::Null => {}
            Value::Object(o) => object(out, o, Some(&key)),
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Null => {}
                        Value::Object(o) => object(out, o, Some(&format!("{key}[]"))),
                        scalar => out.push((format!("{key}[]"), text(scalar))),
                    }
                }
            }
            scalar => out.push((key, text(scalar))),
        }
    }
    fn text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    let mut out = Vec::new();
    object(&mut out, payload, None);
    out
}

/// Equality, but floats within a few ulps: the body prints each float exactly (shortest text
/// that reads back as it), and serde_json's default float parser may land one ulp away.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, vx), (ky, vy))| kx == ky && same_json(vx, vy))
        }
        _ => a == b,
    }
}

fn node_count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(node_count).sum(),
        Value::Object(o) => o.values().map(node_count).sum(),
        _ => 0,
    }
}

proptest! {
    #![proptest_config(config(192))]

    #[test]
    fn form_encoding_parses_back_into_kazoos_pairs(payload in payload_with_keys(form_safe_key().boxed())) {
        let encoded = querystring(&payload);
        let parsed: Vec<(String, String)> = url::form_urlencoded::parse(encoded.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        prop_assert_eq!(parsed, flattened(&payload), "from {:?}", encoded);
    }

    #[test]
    fn form_encoding_of_hostile_payloads_is_bounded_by_its_pairs(
        payload in payload_with_keys(hostile_string().boxed())
    ) {
        let encoded = querystring(&payload);
        let pairs = flattened(&payload);
        // Every pair is its key, `=` and a value escaped at most threefold; separators come at
        // most one per JSON node (empty objects and arrays leave theirs).
        let bound: usize = pairs.iter().map(|(k, v)| k.len() + 1 + 3 * v.len()).sum::<usize>()
            + node_count(&Value::Object(payload.clone()));
        prop_assert!(encoded.len() <= bound, "{} > {} for {:?}", encoded.len(), bound, encoded);
        // Every value is escaped: between an `=` and the next `&` only unreserved bytes occur
        // when no key holds `=` or `&`.
        let plain_keys = pairs.iter().all(|(k, _)| !k.contains(['=', '&']));
        if plain_keys {
            let pieces = encoded.split('&').filter(|p| !p.is_empty()).count();
            prop_assert_eq!(pieces, pairs.len(), "one piece per pair in {:?}", encoded);
        }
    }

    #[test]
    fn legacy_urlencoding_is_unreserved_and_decodes_back(s in hostile_string()) {
        let mut out = String::new();
        urlencode_legacy(&mut out, &s);
        prop_assert!(out.len() <= 3 * s.len());
        prop_assert!(
            out.bytes().all(|b| b.is_ascii_alphanumeric() || b"%+.-~_".contains(&b)),
            "{:?}", out
        );
        let decoded: Vec<(String, String)> =
            url::form_urlencoded::parse(format!("k={out}").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        prop_assert_eq!(decoded, vec![("k".to_owned(), s)]);
    }

    #[test]
    fn json_body_parses_back_to_the_payload(payload in payload_with_keys(hostile_string().boxed())) {
        let body = json_body(&payload);
        let back: Value = serde_json::from_str(&body).expect("the body is JSON");
        let payload = Value::Object(payload);
        prop_assert!(same_json(&back, &payload), "{} read back as {}", payload, back);
    }

    #[test]
    fn get_url_appends_the_query_once(uri in any_uri(), query in "[a-z0-9=&%+\\[\\]]{0,16}") {
        let url = get_url(&uri, &query);
        prop_assert!(url.starts_with(&uri));
        prop_assert!(url.ends_with(&query));
        let separator = &url[uri.len()..url.len() - query.len()];
        let expected = if query.is_empty() {
            ""
        } else if !uri.contains('?') {
            "?"
        } else if uri.ends_with(['?', '&']) {
            ""
        } else {
            "&"
        };
        prop_assert_eq!(separator, expected);
    }

    #[test]
    fn normalize_is_idempotent_drops_nulls_and_never_grows(v in any_json()) {
        let once = normalize(&v);
        prop_assert_eq!(normalize(&once), once.clone(), "idempotent");
        prop_assert!(json_len(&once) <= json_len(&v), "never grows");
        fn check(v: &Value) -> Result<(), TestCaseError> {
            match v {
                Value::Object(m) => {
                    for (k, inner) in m {
                        prop_assert!(!inner.is_null(), "null kept under {:?}", k);
                        prop_assert!(!k.contains('-'), "{:?} keeps a dash", k);
                        prop_assert!(!k.bytes().any(|b| b.is_ascii_uppercase()), "{:?}", k);
                        check(inner)?;
                    }
                }
                Value::Array(items) => items.iter().try_for_each(check)?,
                _ => {}
            }
            Ok(())
        }
        check(&once)?;
    }
}

#[test]
fn deeply_nested_objects_form_encode_without_overflowing() {
    let mut payload = Map::new();
    payload.insert("a".into(), nested_objects(DEEP_ENCODED - 1, json!("v w")));
    let expected_key = format!("a{}", "[a]".repeat(DEEP_ENCODED - 1));
    assert_eq!(querystring(&payload), format!("{expected_key}=v+w"));
}

/// Arrays of objects nest as `key[]`.
#[test]
fn deeply_nested_arrays_of_objects_form_encode_without_overflowing() {
    let mut payload = Map::new();
    // Built by hand: `json!` would serialise `inner` again at every level.
    let objects_in_arrays = (0..DEEP_ENCODED / 2).fold(json!(1), |inner, _| {
        let mut object = Map::new();
        object.insert("b".into(), inner);
        Value::Array(vec![Value::Object(object)])
    });
    payload.insert("a".into(), objects_in_arrays);
    assert_eq!(
        querystring(&payload),
        format!("a{}=1", "[][b]".repeat(DEEP_ENCODED / 2))
    );
}

/// Arrays inside arrays are quoted as their JSON text.
#[test]
fn deeply_nested_arrays_form_encode_without_overflowing() {
    let mut payload = Map::new();
    payload.insert("a".into(), nested_arrays(DEEP_ENCODED, json!(1)));
    let encoded = querystring(&payload);
    let brackets = DEEP_ENCODED - 1;
    assert_eq!(
        encoded,
        format!("a[]={}1{}", "%5B".repeat(brackets), "%5D".repeat(brackets))
    );
}

#[test]
fn deeply_nested_payloads_json_encode_without_overflowing() {
    let mut payload = Map::new();
    payload.insert("a".into(), nested_objects(DEEP_ENCODED, json!(null)));
    let body = json_body(&payload);
    assert_eq!(body.matches("\"a\"").count(), DEEP_ENCODED + 1);
}

#[test]
fn deeply_nested_events_normalize_without_overflowing() {
    let event = nested_objects(DEEP, json!({"Call-ID": "c", "Gone": null}));
    let normalized = normalize(&event);
    assert_eq!(normalized, nested_objects(DEEP, json!({"call_id": "c"})));
    let event = nested_arrays(DEEP, json!({"A-B": 1}));
    assert_eq!(normalize(&event), nested_arrays(DEEP, json!({"a_b": 1})));
}
