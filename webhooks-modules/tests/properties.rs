//! Property tests over every KAZOO module's event decoder (issue 14: every input fuzzed).
//!
//! A module reads a KAZOO AMQP event, whatever the publisher put in it, and returns payloads.
//! Events come from the broker, from `POST /v2/events` and from embedders, so each module must
//! answer any JSON object, however wrong its fields' types. The properties, for every module
//! of [`kazoo_registry`]:
//!
//! - no event makes `handle_event` panic, whether it is made up (KAZOO's header names with
//!   arbitrary values, routed to the modules that answer its category and name, and to every
//!   module besides) or one of the real sample events (`src/samples/`, and KAZOO's sample
//!   payloads in `shared/fixtures/kazoo/`) with fields removed, retyped, nulled or replaced;
//! - a payload is never much larger than the event it came from (no module amplifies);
//! - handling is deterministic, and every dispatch goes on to build a delivery (custom_data
//!   merge, modifiers filter, form or JSON encoding) without panicking; a JSON body parses
//!   back to the payload it carries;
//! - events nested hundreds of levels deep, in the fields each module copies into its
//!   payload, are handled without overflowing the stack.
//!
//! The hook table is a stand-in that answers every account with a spread of hooks (filtered,
//! unfiltered, `all`, JSON-bodied, excluding internal legs), so the modules' filters and
//! payload builders run on every case rather than stopping at "nobody wants this".

use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{json, Map, Number, Value};
use webhooks_core::config::DEFAULT_OBJECT_TYPES;
use webhooks_core::delivery::{event_key, Delivery};
use webhooks_core::event::EventError;
use webhooks_core::{AccountId, Dispatch, Doc, Event, Hook, HookFinder, ModuleRegistry};
use webhooks_modules::{kazoo_registry, sample_events, MODULES_WITH_SAMPLE_EVENTS};

/// Nesting depth of the hand-built deep events: four times serde_json's parser limit. In a
/// debug build serde_json's own `Value::clone`, which payload builders use, overflows a 2 MiB
/// test thread's stack at about 1000 levels, so that is the ceiling for any depth here.
const DEEP: usize = 512;

/// The reseller the stand-in hook table answers for every account.
const RESELLER: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn registry() -> ModuleRegistry {
    let types: Vec<String> = DEFAULT_OBJECT_TYPES.iter().map(|t| t.to_string()).collect();
    kazoo_registry(&types)
}

// ---------------------------------------------------------------------------------------------
// The stand-in hook table
// ---------------------------------------------------------------------------------------------

/// Answers every `find` with hooks of the asked account: one per kind of filter a module
/// applies, so every event that names an account reaches a payload builder.
struct EveryAccountHooks;

impl EveryAccountHooks {
    fn hook(id: &str, event: &str, account: &AccountId, extra: Value) -> Arc<Hook> {
        let mut doc = json!({"_id": id, "pvt_account_id": account.as_str(),
                             "uri": "http://example.com/h", "hook": event, "name": id});
        if let (Some(d), Value::Object(e)) = (doc.as_object_mut(), extra) {
            d.extend(e);
        }
        let doc = Doc::from_value(doc).expect("a hook document is an object");
        Arc::new(Hook::from_doc(&doc, |_| true).expect("stand-in hooks load"))
    }
}

impl HookFinder for EveryAccountHooks {
    fn find(&self, hook_event: &str, account: &AccountId) -> Vec<Arc<Hook>> {
        vec![
            Self::hook("plain", hook_event, account, json!({})),
            Self::hook(
                "json-get",
                hook_event,
                account,
                json!({"format": "json", "http_verb": "get"}),
            ),
            Self::hook("everything", "all", account, json!({})),
            Self::hook(
                "external-only",
                hook_event,
                account,
                json!({"include_internal_legs": false}),
            ),
            Self::hook(
                "filtered-all",
                hook_event,
                account,
                json!({"custom_data": {"type": "all", "action": "all", "extra": "x"}}),
            ),
            Self::hook(
                "callflow-webhook",
                hook_event,
                account,
                json!({"custom_data": {"type": "webhook"}, "format": "json"}),
            ),
            Self::hook(
                "modified",
                hook_event,
                account,
                json!({"modifiers": {"call_direction": "inbound"}}),
            ),
        ]
    }

    fn reseller_of(&self, _account: &AccountId) -> Option<AccountId> {
        AccountId::parse(RESELLER).ok()
    }
}

// ---------------------------------------------------------------------------------------------
// Running an event through every module
// ---------------------------------------------------------------------------------------------

fn json_len(v: &Value) -> usize {
    serde_json::to_string(v).map_or(0, |s| s.len())
}

fn depth(v: &Value) -> usize {
    1 + match v {
        Value::Array(items) => items.iter().map(depth).max().unwrap_or(0),
        Value::Object(m) => m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// What one module made of an event, comparable between runs.
type Outcome = Result<Vec<(String, Map<String, Value>)>, String>;

fn outcome(result: Result<Vec<Dispatch>, EventError>) -> Outcome {
    result
        .map(|ds| {
            ds.into_iter()
                .map(|d| (d.hook.id.clone(), d.payload))
                .collect()
        })
        .map_err(|e| e.to_string())
}

/// Hands `value` to the modules that answer its category and name (as intake does) and to
/// every other module, checks each answer, and returns how many dispatches were made.
fn handle_everywhere(value: Value) -> Result<usize, TestCaseError> {
    let Ok(event) = Event::from_value(value) else {
        return Ok(0);
    };
    let registry = registry();
    let hooks = EveryAccountHooks;
    let event_len = json_len(&Value::Object(event.0.clone()));
    let key = event_key(&event);
    let mut dispatched = 0;
    for module in registry.modules() {
        let id = module.init().id;
        let first = module.handle_event(&event, &hooks);
        let again = outcome(module.handle_event(&event, &hooks));
        let Ok(dispatches) = first else {
            prop_assert!(again.is_err(), "{}: the same event handled differently", id);
            continue;
        };
        prop_assert_eq!(
            outcome(Ok(dispatches.clone())),
            again,
            "{}: the same event handled differently",
            id
        );
        for dispatch in dispatches {
            let payload_len = json_len(&Value::Object(dispatch.payload.clone()));
            // Payloads copy event fields (renamed, possibly quoted) plus a few fixed fields.
            prop_assert!(
                payload_len <= 2 * event_len + 1024,
                "{}: a {}-byte payload from a {}-byte event",
                id,
                payload_len,
                event_len
            );
            let payload = dispatch.payload.clone();
            if let Some(delivery) =
                Delivery::from_dispatch(dispatch, Some("cluster"), "0123456789".into(), key)
            {
                // serde_json reads back what its parser's depth limit allows.
                if delivery.hook.format == webhooks_core::BodyFormat::Json
                    && !delivery.request.body.is_empty()
                    && depth(&Value::Object(payload.clone())) < 128
                {
                    let body: Map<String, Value> = serde_json::from_str(&delivery.request.body)
                        .map_err(|e| TestCaseError::fail(format!("{id}: body not JSON: {e}")))?;
                    for (k, v) in &payload {
                        if v.is_string() || v.is_boolean() {
                            prop_assert_eq!(body.get(k), Some(v), "{}: body lost {}", id, k);
                        }
                    }
                }
            }
            dispatched += 1;
        }
    }
    Ok(dispatched)
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ".{0,12}",
        1 => prop::collection::vec(any::<char>(), 0..8).prop_map(|cs| cs.into_iter().collect()),
        1 => "[ ]{0,1}-?[0-9]{1,22}(\\.[0-9]{1,4})?(e[+-]?[0-9]{1,3})?",
        2 => prop::sample::select(vec![
            "", "true", "false", "TRUE", "all", "null", "loopback/x", "sofia/loopback/x",
            "accounts", "account/01/23/456789abcdef0123456789abcdef",
            "account%2F01%2F23%2F456789abcdef0123456789abcdef-202401", ACCOUNT,
            "0123456789ABCDEF0123456789ABCDEF", "NaN", "inf", "1e400", "-9223372036854775809",
            "🦀", "\u{0}",
        ])
        .prop_map(String::from),
    ]
}

fn edge_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        prop::sample::select(vec![
            json!(1e300),
            json!(-1e300),
            json!(9.5e18),
            json!(-0.0)
        ]),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => edge_number(),
        4 => hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((header_name(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// The headers some module reads, in KAZOO's and in normalised spelling, and hostile ones.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "Event-Category", "Event-Name", "Call-ID", "Custom-Channel-Vars", "Account-ID",
            "Channel-Name", "Channel-Is-Loopback", "Timestamp", "Duration-Seconds", "From",
            "To", "Request", "Custom-Application-Vars", "ID", "Database", "Type", "Hook",
            "Data", "Message-ID", "Body", "Charges", "Route-Type", "Details", "account_id",
            "account", "_id", "id", "pvt_account_id", "Global-Resource", "Resource-ID",
            "Port-Request-ID", "Hook-ID", "Voicemail-Box", "Parking-Slot", "uri", "hook",
        ])
        .prop_map(String::from),
        1 => hostile_string(),
    ]
}

/// Every (category, name) some module answers, so generated events reach every module.
fn routed_names() -> Vec<(String, String)> {
    let mut names: Vec<(String, String)> = registry()
        .bindings()
        .map(|b| (b.category.clone(), b.name.clone()))
        .collect();
    // `*` bindings answer any name: use names their modules know, and one they do not.
    for name in [
        "voicemail_new",
        "webhook",
        "webhook_disabled",
        "skel",
        "doc_edited",
    ] {
        names.push(("notification".into(), name.into()));
        names.push(("configuration".into(), name.into()));
    }
    names
}

/// A value for a header: usually what KAZOO would send, sometimes anything.
fn header_value(name: &str) -> BoxedStrategy<Value> {
    let plausible: BoxedStrategy<Value> = match name {
        "Custom-Channel-Vars" | "Details" => (
            prop::sample::select(vec![ACCOUNT, "not-an-account", ""]),
            prop::collection::vec((header_name(), any_json()), 0..4),
        )
            .prop_map(|(account, rest)| {
                let mut m: Map<String, Value> = rest.into_iter().collect();
                m.insert("Account-ID".into(), account.into());
                Value::Object(m)
            })
            .boxed(),
        "Account-ID" | "account_id" | "ID" => prop::sample::select(vec![ACCOUNT, RESELLER, "x"])
            .prop_map(Value::from)
            .boxed(),
        "Hook" => (any_json(), prop::sample::select(vec![ACCOUNT, "bad"]))
            .prop_map(|(extra, account)| {
                json!({"_id": "adhoc", "pvt_account_id": account, "uri": "http://a.b/",
                       "hook": "notifications", "custom_data": extra})
            })
            .boxed(),
        _ => any_json().boxed(),
    };
    prop_oneof![3 => plausible, 1 => any_json()].boxed()
}

/// A made-up event: a routed category and name plus KAZOO headers with arbitrary values.
fn made_up_event() -> impl Strategy<Value = Value> {
    let routed = prop::sample::select(routed_names());
    let headers = prop::collection::vec(header_name(), 0..10).prop_flat_map(|names| {
        names
            .into_iter()
            .map(|n| header_value(&n).prop_map(move |v| (n.clone(), v)))
            .collect::<Vec<_>>()
    });
    (routed, headers).prop_map(|((category, name), headers)| {
        let mut event = Map::new();
        event.insert("Event-Category".into(), category.into());
        event.insert("Event-Name".into(), name.into());
        event.extend(headers);
        Value::Object(event)
    })
}

// ---------------------------------------------------------------------------------------------
// Mutating real samples
// ---------------------------------------------------------------------------------------------

/// KAZOO's own sample payloads: flat objects in KAZOO's normalised spelling. Handed to the
/// modules as events they are a differently-shaped realistic input.
fn kazoo_fixtures() -> Vec<Value> {
    let dir = format!("{}/../../shared/fixtures/kazoo", env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("a readable fixture");
        let samples: Vec<Value> = serde_json::from_str(&text).expect("a JSON array fixture");
        out.extend(samples);
    }
    out
}

/// The module sample events, then KAZOO's fixtures.
fn real_samples() -> Vec<Value> {
    let mut samples: Vec<Value> = MODULES_WITH_SAMPLE_EVENTS
        .iter()
        .flat_map(|id| sample_events(id).expect("listed modules have sample events"))
        .collect();
    samples.extend(kazoo_fixtures());
    samples
}

/// One step of a path inside a JSON value.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    At(usize),
}

/// Every path in `v`, the root (empty path) first.
fn paths(v: &Value) -> Vec<Vec<Step>> {
    fn walk(v: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        out.push(here.clone());
        match v {
            Value::Object(m) => {
                for (k, inner) in m {
                    here.push(Step::Key(k.clone()));
                    walk(inner, here, out);
                    here.pop();
                }
            }
            Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    here.push(Step::At(i));
                    walk(inner, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn at_mut<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, step| match step {
        Step::Key(k) => v.get_mut(k.as_str()),
        Step::At(i) => v.get_mut(*i),
    })
}

/// What a mutation does to the value at a path.
#[derive(Debug, Clone)]
enum Mutation {
    Remove,
    Replace(Value),
    Null,
    /// A number or boolean as its text, text as a number where it reads as one.
    Retype,
    WrapInArray,
    WrapInObject(String),
    /// Set a header of the event to a routed category or name.
    Route(String, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => Just(Mutation::Remove),
        3 => any_json().prop_map(Mutation::Replace),
        1 => Just(Mutation::Null),
        2 => Just(Mutation::Retype),
        1 => Just(Mutation::WrapInArray),
        1 => header_name().prop_map(Mutation::WrapInObject),
        1 => prop::sample::select(routed_names()).prop_map(|(c, n)| Mutation::Route(c, n)),
    ]
}

fn mutate(sample: &mut Value, at: &Index, mutation: Mutation) {
    if let Mutation::Route(category, name) = mutation {
        if let Some(m) = sample.as_object_mut() {
            m.insert("Event-Category".into(), category.into());
            m.insert("Event-Name".into(), name.into());
        }
        return;
    }
    let all = paths(sample);
    let path = at.get(&all).clone();
    if let (Mutation::Remove, Some((last, parent))) = (&mutation, path.split_last()) {
        match (at_mut(sample, parent), last) {
            (Some(Value::Object(m)), Step::Key(k)) => {
                m.remove(k);
            }
            (Some(Value::Array(items)), Step::At(i)) if *i < items.len() => {
                items.remove(*i);
            }
            _ => {}
        }
        return;
    }
    let Some(target) = at_mut(sample, &path) else {
        return;
    };
    let old = target.take();
    *target = match mutation {
        Mutation::Remove | Mutation::Route(..) => old,
        Mutation::Replace(v) => v,
        Mutation::Null => Value::Null,
        Mutation::Retype => match old {
            Value::Number(n) => Value::String(n.to_string()),
            Value::Bool(b) => Value::String(b.to_string()),
            Value::String(s) => serde_json::from_str::<Number>(&s)
                .map(Value::Number)
                .unwrap_or(Value::String(s)),
            other => Value::String(other.to_string()),
        },
        Mutation::WrapInArray => Value::Array(vec![old]),
        Mutation::WrapInObject(k) => {
            let mut m = Map::new();
            m.insert(k, old);
            Value::Object(m)
        }
    };
}

fn mutated_sample() -> impl Strategy<Value = Value> {
    let samples = real_samples();
    (
        prop::sample::select(samples),
        prop::collection::vec((any::<Index>(), mutation()), 1..5),
    )
        .prop_map(|(mut sample, mutations)| {
            for (at, m) in mutations {
                mutate(&mut sample, &at, m);
            }
            sample
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn modules_answer_made_up_events(event in made_up_event()) {
        handle_everywhere(event)?;
    }

    #[test]
    fn modules_answer_mutated_sample_events(event in mutated_sample()) {
        handle_everywhere(event)?;
    }

    #[test]
    fn modules_answer_any_json_value(value in any_json()) {
        handle_everywhere(value)?;
    }
}

/// The baseline the mutations start from: every sample event, untouched, reaches hooks, so
/// mutated samples exercise the payload builders. The exceptions are KAZOO's samples whose
/// account id is a placeholder (`account0000...`), which their module refuses as naming no
/// account.
#[test]
fn every_sample_event_reaches_hooks() {
    let registry = registry();
    for id in MODULES_WITH_SAMPLE_EVENTS {
        for (i, event) in sample_events(id)
            .expect("sample events")
            .into_iter()
            .enumerate()
        {
            let dispatched =
                handle_everywhere(event.clone()).expect("sample events pass the checks");
            if dispatched > 0 {
                continue;
            }
            let event = Event::from_value(event).expect("sample events are objects");
            let (category, name) = (event.category().unwrap_or(""), event.name().unwrap_or(""));
            let responders: Vec<_> = registry.responders(category, name).collect();
            assert!(!responders.is_empty(), "{id}[{i}] reaches no module");
            for module in responders {
                assert_eq!(
                    module.handle_event(&event, &EveryAccountHooks),
                    Err(EventError::NoAccount),
                    "{id}[{i}] reached no hook"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Deep nesting
// ---------------------------------------------------------------------------------------------

/// `{"Nested-Key": {"Nested-Key": ... leaf}}`, `depth` objects deep, built by hand (serde_json's
/// parser stops at 128, and `json!` would re-serialise at every level).
fn nested(depth: usize, leaf: Value) -> Value {
    (0..depth).fold(leaf, |inner, i| {
        if i % 2 == 0 {
            let mut m = Map::new();
            m.insert("Nested-Key".into(), inner);
            Value::Object(m)
        } else {
            Value::Array(vec![inner])
        }
    })
}

/// Each module's first sample event with a deep value in the fields its payload copies.
#[test]
fn deeply_nested_events_are_handled_without_overflowing() {
    let deep = || nested(DEEP, json!("leaf"));
    let mut reached = 0;
    for id in MODULES_WITH_SAMPLE_EVENTS {
        // One event per module: each deep event costs a few hundred deep copies.
        for mut event in sample_events(id)
            .expect("sample events")
            .into_iter()
            .take(1)
        {
            let m = event.as_object_mut().expect("events are objects");
            if let Some(Value::Object(ccvs)) = m.get_mut("Custom-Channel-Vars") {
                ccvs.insert("Deep-Var".into(), deep());
            }
            if let Some(Value::Object(data)) = m.get_mut("Data") {
                data.insert("Deep-Field".into(), deep());
            }
            // Copied as it is by the channel modules, normalised by parking and notifications.
            m.insert("From".into(), deep());
            reached += handle_everywhere(event).expect("deep events pass the checks");
        }
    }
    assert!(reached > 0, "deep events reached hooks");

    let sms = json!({"Event-Category": "sms", "Event-Name": "inbound", "Message-ID": "m",
                     "Account-ID": ACCOUNT, "From": "a", "To": "b", "Body": "hi"});
    let mut sms = sms;
    for field in ["Charges", "Route-Type", "Body"] {
        sms[field] = deep();
    }
    assert!(handle_everywhere(sms).expect("deep sms passes the checks") > 0);
}
