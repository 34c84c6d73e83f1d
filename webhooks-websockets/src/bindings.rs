//! The binding catalogue: what a client may subscribe to, and what a subscription amounts to
//! (spec §7, error strings §5.3, advertised list §9.1).
//!
//! A client binding such as `call.CHANNEL_CREATE.*` names a module (`call`) and that module's
//! keys. Subscribing turns it into internal keys, AMQP topic patterns with the account in
//! them, matched against each event's [`crate::routing::dispatch_key`], and into the AMQP
//! bindings this node's queue needs to receive those events at all. Both are pure functions of
//! the binding, the account and the month, so they live here, apart from sockets and queues.
//!
//! Modules: `call`, `object`, `fax`, `conference` (master's form), and ours, `webhooks`:
//! `webhooks.delivery.<HOOK_ID|*>`, each try this node made to the account's hooks (the
//! dashboard's live tail of deliveries; it needs no AMQP binding, the engine reports them). `presence` is not offered:
//! its keys are built from the account's SIP realm, which takes a database lookup at subscribe
//! time, and KAZOO 4.3, the widely deployed version, has no presence module either. Its
//! bindings get the same answer as any unknown module.

use serde_json::{json, Value};
use webhooks_core::delivery::modb_name;
use webhooks_core::AccountId;

/// What a subscribe to one client binding amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The client's binding string, byte for byte (echoed as `subscribed_key`).
    pub binding: String,
    /// The internal keys (`subscription_key`), each an AMQP topic pattern matched against events'
    /// `routing::dispatch_key`; KAZOO's duplicates (spec §4.3) are NOT reproduced: distinct keys only.
    pub keys: Vec<String>,
    /// What this node's own queue must be bound to for these events: (exchange, routing-key pattern).
    pub sources: Vec<(String, String)>,
}

/// The command-stage error: unknown (or unsupported) module.
const NO_SUBSCRIPTIONS: &str = "no available subscriptions to requested binding";

/// The call events a socket may ask for (`bh_call`'s list), in KAZOO's order.
const CALL_EVENTS: [&str; 9] = [
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_DESTROY",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "CHANNEL_BRIDGE",
    "PARK_PARKED",
    "PARK_RETRIEVED",
    "PARK_ABANDONED",
];

/// Document actions, in KAZOO's order (the catalogue is action-major).
const DOC_ACTIONS: [&str; 3] = ["doc_created", "doc_edited", "doc_deleted"];

/// Document types a socket may watch, in KAZOO's order: the types KAZOO's `object` webhook
/// offers too.
const DOC_TYPES: &[&str] = webhooks_core::config::DEFAULT_OBJECT_TYPES;

/// Types kept in the monthly database rather than the account database.
const MODB_TYPES: [&str; 2] = ["fax", "mailbox_message"];

const CALL_EXCHANGE: &str = "callevt";
const CONFIGURATION_EXCHANGE: &str = "configuration";
const FAX_EXCHANGE: &str = "faxes";
const CONFERENCE_EXCHANGE: &str = "conference";

/// Validates `binding` for `account_id` (a 32-hex account id, or "*" — authorisation is NOT done
/// here, the caller does it) and builds the subscription; `Err` is the exact error string of spec
/// §5.3 for the validate/command stages (`event <EVENT> not supported`, `invalid format for call
/// subscription : <keys>`, ..., `no available subscriptions to requested binding`).
/// `now_unix` picks the current MODB for fax/mailbox_message object types (KAZOO freezes it at
/// subscribe time, §14 B6: keep that, and say so).
///
/// Errors come in KAZOO's stage order: a known module's validation error first; then an
/// `account_id` that is neither 32 lowercase hex characters nor `*`, refused with the
/// authorize-stage `unauthorized account id` (no account has such an id, and KAZOO's keys for
/// it never match anything); then, for an unknown first segment (`presence` included), the
/// command-stage `no available subscriptions to requested binding`. KAZOO authorises between
/// validation and that last error, so a caller that matches KAZOO's precedence exactly checks
/// the account before reporting it.
///
/// The MODB (`account%2Fxx%2Fyy%2Frest-YYYYMM`) is the one current at `now_unix`, and it stays
/// in the subscription: like KAZOO, a subscription taken in January keeps watching January's
/// database after the month turns (§14 B6). Subscribing again picks the new month.
///
/// With `account_id` `*` every account position (account id, account DB, MODB) is `*`.
/// Client ids (call, fax, conference ids, the fax object action) are inserted as given, in keys
/// and sources alike (§7); a call id only matches if the client sent it AMQP-encoded.
///
/// Where this departs from KAZOO:
/// - a conference id of `#` is refused like `*` (`ConferenceId required`): KAZOO refuses `*`
///   so that a subscription names one conference, and `#` in `conference.command.#` would
///   otherwise reach every account's conference commands (§14 B7);
/// - `object.<ACTION>.call_recording` (and `*` types) watch the MODB as well as the account
///   DB: recordings are saved in the MODB, where KAZOO never looks (§14 B5).
pub fn subscribe(account_id: &str, binding: &str, now_unix: i64) -> Result<Subscription, String> {
    let mut segments = binding.split('.');
    let module = segments.next().unwrap_or_default();
    let keys: Vec<&str> = segments.collect();
    let module = Module::named(module);
    if let Some(module) = module {
        module.validate(&keys)?;
    }
    let account = Account::parse(account_id).ok_or("unauthorized account id")?;
    let module = module.ok_or(NO_SUBSCRIPTIONS)?;
    let (keys, sources) = module.build(&account, &keys, now_unix);
    Ok(Subscription {
        binding: binding.to_owned(),
        keys: distinct(keys),
        sources: distinct(sources),
    })
}

/// The bindings `GET /v2/websockets` advertises (spec §9.1), as a JSON object keyed by module.
///
/// Master's lists for the modules offered here; `presence` is left out because it is not
/// offered (see the module documentation), and KAZOO's presence entries could not be
/// subscribed to anyway (§14 B4).
pub fn catalogue() -> Value {
    let call: Vec<String> = CALL_EVENTS
        .iter()
        .map(|e| format!("call.{e}.{{CALL_ID}}"))
        .collect();
    let object: Vec<String> = DOC_ACTIONS
        .iter()
        .flat_map(|a| DOC_TYPES.iter().map(move |t| format!("object.{a}.{t}")))
        .collect();
    json!({
        "call": call,
        "conference": [
            "conference.event.{CONFERENCE_ID}.{CALL_ID}",
            "conference.command.{CONFERENCE_ID}"
        ],
        "fax": ["fax.status.{FAX_ID}", "fax.object.{ACTION}"],
        "object": object,
        "webhooks": ["webhooks.delivery.{HOOK_ID}"],
    })
}

#[derive(Debug, Clone, Copy)]
enum Module {
    Call,
    Object,
    Fax,
    Conference,
    Webhooks,
}

/// The account a subscription is for.
enum Account {
    /// `*`: every account (super-duper admins; the caller checks).
    Any,
    Id(AccountId),
}

impl Account {
    fn parse(s: &str) -> Option<Account> {
        if s == "*" {
            return Some(Account::Any);
        }
        AccountId::parse(s).ok().map(Account::Id)
    }

    /// The account's segment in call, fax and conference keys.
    fn id(&self) -> &str {
        match self {
            Account::Any => "*",
            Account::Id(id) => id.as_str(),
        }
    }

    /// The account database as a routing-key segment (`account%2Fxx%2Fyy%2Frest`).
    fn db(&self) -> String {
        match self {
            Account::Any => "*".to_owned(),
            Account::Id(id) => id.db_name().replace('/', "%2F"),
        }
    }

    /// The monthly database current at `now_unix`, as a routing-key segment.
    fn modb(&self, now_unix: i64) -> String {
        match self {
            Account::Any => "*".to_owned(),
            Account::Id(id) => modb_name(id, now_unix).replace('/', "%2F"),
        }
    }
}

impl Module {
    fn named(name: &str) -> Option<Module> {
        match name {
            "call" => Some(Module::Call),
            "object" => Some(Module::Object),
            "fax" => Some(Module::Fax),
            "conference" => Some(Module::Conference),
            "webhooks" => Some(Module::Webhooks),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Module::Call => "call",
            Module::Object => "object",
            Module::Fax => "fax",
            Module::Conference => "conference",
            Module::Webhooks => "webhooks",
        }
    }

    /// The module's validate stage (§5.3), in the order of KAZOO's clauses.
    fn validate(self, keys: &[&str]) -> Result<(), String> {
        let invalid = || {
            format!(
                "invalid format for {} subscription : {}",
                self.name(),
                keys.join(", ")
            )
        };
        match (self, keys) {
            (Module::Call, ["*", _]) => Ok(()),
            (Module::Call, [event, _]) if CALL_EVENTS.contains(event) => Ok(()),
            (Module::Call, [event, _]) => Err(format!("event {event} not supported")),

            (Module::Object, ["*", "*"]) => Ok(()),
            (Module::Object, [action, "*"]) if DOC_ACTIONS.contains(action) => Ok(()),
            (Module::Object, [action, "*"]) => Err(format!("event {action}.* not supported")),
            (Module::Object, ["*", doc_type]) if DOC_TYPES.contains(doc_type) => Ok(()),
            (Module::Object, ["*", doc_type]) => Err(format!("event *.{doc_type} not supported")),
            (Module::Object, [action, doc_type])
                if DOC_ACTIONS.contains(action) && DOC_TYPES.contains(doc_type) =>
            {
                Ok(())
            }
            (Module::Object, [action, doc_type]) => {
                Err(format!("event {action}.{doc_type} not supported"))
            }

            // KAZOO does not check the fax object action: any segment is accepted.
            (Module::Fax, ["status" | "object", _]) => Ok(()),

            (Module::Conference, ["command", conference] | ["event", conference, _]) => {
                if is_wildcard(conference) {
                    Err("ConferenceId required".to_owned())
                } else {
                    Ok(())
                }
            }

            (Module::Webhooks, ["delivery", _hook]) => Ok(()),

            _ => Err(invalid()),
        }
    }

    /// The keys and sources of validated `keys`.
    fn build(
        self,
        account: &Account,
        keys: &[&str],
        now_unix: i64,
    ) -> (Vec<String>, Vec<(String, String)>) {
        let a = account.id();
        match (self, keys) {
            (Module::Call, [event, call_id]) => {
                let events: &[&str] = if *event == "*" {
                    &CALL_EVENTS
                } else {
                    std::slice::from_ref(event)
                };
                let keys = events
                    .iter()
                    .map(|e| format!("call.{a}.{e}.{call_id}"))
                    .collect();
                // Every call of the event, whatever the call id asked for: KAZOO publishes a
                // call event under `Origination-Call-ID` when the channel has one, not always
                // under the `Call-ID` the subscription key is matched against.
                let sources = events
                    .iter()
                    .map(|e| source(CALL_EXCHANGE, format!("call.{e}.*")))
                    .collect();
                (keys, sources)
            }
            (Module::Object, [action, doc_type]) => {
                let dbs = if *doc_type == "*" || *doc_type == "call_recording" {
                    vec![account.db(), account.modb(now_unix)]
                } else if MODB_TYPES.contains(doc_type) {
                    vec![account.modb(now_unix)]
                } else {
                    vec![account.db()]
                };
                same_keys(
                    CONFIGURATION_EXCHANGE,
                    dbs.iter()
                        .map(|db| format!("{action}.{db}.{doc_type}.*"))
                        .collect(),
                )
            }
            (Module::Fax, ["status", fax_id]) => {
                same_keys(FAX_EXCHANGE, vec![format!("fax.status.{a}.{fax_id}")])
            }
            (Module::Fax, [_object, action]) => {
                let modb = account.modb(now_unix);
                same_keys(
                    CONFIGURATION_EXCHANGE,
                    vec![format!("{action}.{modb}.fax.*")],
                )
            }
            (Module::Conference, ["command", conference]) => same_keys(
                CONFERENCE_EXCHANGE,
                vec![format!("conference.command.{conference}")],
            ),
            (Module::Conference, [_event, conference, call_id]) => same_keys(
                CONFERENCE_EXCHANGE,
                vec![format!("conference.event.*.{a}.{conference}.{call_id}")],
            ),
            // The engine reports its tries to the hub directly: no queue binding.
            (Module::Webhooks, ["delivery", hook]) => {
                (vec![format!("webhooks.delivery.{a}.{hook}")], Vec::new())
            }
            // `validate` accepted only the shapes above.
            _ => (Vec::new(), Vec::new()),
        }
    }
}

/// `*` and `#` are wildcards when they stand for a whole segment.
fn is_wildcard(segment: &str) -> bool {
    segment == "*" || segment == "#"
}

fn source(exchange: &str, key: String) -> (String, String) {
    (exchange.to_owned(), key)
}

/// Subscriptions whose events arrive under exactly their own keys: the queue binds the keys.
fn same_keys(exchange: &str, keys: Vec<String>) -> (Vec<String>, Vec<(String, String)>) {
    let sources = keys.iter().map(|k| source(exchange, k.clone())).collect();
    (keys, sources)
}

/// The first occurrence of each item, in order.
fn distinct<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::{dispatch_key, topic_matches};
    use webhooks_core::Event;

    const A: &str = "4b31dd1d32ce6d249897c06332375d65";
    const A_DB: &str = "account%2F4b%2F31%2Fdd1d32ce6d249897c06332375d65";
    /// 2024-03-15T12:00:00Z.
    const MARCH_2024: i64 = 1_710_504_000;
    const A_MODB: &str = "account%2F4b%2F31%2Fdd1d32ce6d249897c06332375d65-202403";

    fn ok(account: &str, binding: &str) -> Subscription {
        subscribe(account, binding, MARCH_2024).unwrap()
    }

    fn err(account: &str, binding: &str) -> String {
        subscribe(account, binding, MARCH_2024).unwrap_err()
    }

    fn src(exchange: &str, key: &str) -> (String, String) {
        (exchange.to_owned(), key.to_owned())
    }

    #[test]
    fn call_binding_for_one_event() {
        let s = ok(A, "call.CHANNEL_CREATE.*");
        assert_eq!(s.binding, "call.CHANNEL_CREATE.*");
        assert_eq!(s.keys, [format!("call.{A}.CHANNEL_CREATE.*")]);
        assert_eq!(s.sources, [src("callevt", "call.CHANNEL_CREATE.*")]);
    }

    #[test]
    fn call_star_expands_to_the_nine_events() {
        let s = ok(A, "call.*.*");
        assert_eq!(s.keys.len(), 9);
        assert_eq!(s.sources.len(), 9);
        for (i, e) in CALL_EVENTS.iter().enumerate() {
            assert_eq!(s.keys[i], format!("call.{A}.{e}.*"));
            assert_eq!(s.sources[i], src("callevt", &format!("call.{e}.*")));
        }
    }

    #[test]
    fn call_id_is_inserted_as_given_and_sources_take_every_call() {
        let s = ok(A, "call.CHANNEL_ANSWER.abc%40host");
        assert_eq!(s.keys, [format!("call.{A}.CHANNEL_ANSWER.abc%40host")]);
        assert_eq!(s.sources, [src("callevt", "call.CHANNEL_ANSWER.*")]);
    }

    #[test]
    fn call_errors() {
        assert_eq!(
            err(A, "call.CHANNEL_FOO.*"),
            "event CHANNEL_FOO not supported"
        );
        assert_eq!(
            err(A, "call.CHANNEL_CREATE"),
            "invalid format for call subscription : CHANNEL_CREATE"
        );
        assert_eq!(
            err(A, "call.CHANNEL_CREATE.a.b"),
            "invalid format for call subscription : CHANNEL_CREATE, a, b"
        );
        assert_eq!(err(A, "call"), "invalid format for call subscription : ");
        // Event names are case-sensitive, as in KAZOO.
        assert_eq!(
            err(A, "call.channel_create.*"),
            "event channel_create not supported"
        );
    }

    #[test]
    fn object_specific_type_watches_the_account_db() {
        let s = ok(A, "object.doc_edited.user");
        assert_eq!(s.keys, [format!("doc_edited.{A_DB}.user.*")]);
        assert_eq!(
            s.sources,
            [src("configuration", &format!("doc_edited.{A_DB}.user.*"))]
        );
    }

    #[test]
    fn object_modb_types_watch_the_current_modb() {
        for t in ["fax", "mailbox_message"] {
            let s = ok(A, &format!("object.doc_created.{t}"));
            assert_eq!(s.keys, [format!("doc_created.{A_MODB}.{t}.*")]);
            assert_eq!(
                s.sources,
                [src("configuration", &format!("doc_created.{A_MODB}.{t}.*"))]
            );
        }
    }

    #[test]
    fn modb_is_the_month_of_now_and_is_frozen_in_the_subscription() {
        // 2024-12-31T23:59:59Z and a second later.
        let dec = subscribe(A, "object.doc_created.fax", 1_735_689_599).unwrap();
        let jan = subscribe(A, "object.doc_created.fax", 1_735_689_600).unwrap();
        assert!(dec.keys[0].contains("-202412."));
        assert!(jan.keys[0].contains("-202501."));
    }

    #[test]
    fn object_star_type_watches_both_databases() {
        let s = ok(A, "object.*.*");
        assert_eq!(s.keys, [format!("*.{A_DB}.*.*"), format!("*.{A_MODB}.*.*")]);
        assert_eq!(
            s.sources,
            [
                src("configuration", &format!("*.{A_DB}.*.*")),
                src("configuration", &format!("*.{A_MODB}.*.*"))
            ]
        );
    }

    #[test]
    fn call_recording_watches_both_databases() {
        let s = ok(A, "object.doc_created.call_recording");
        assert_eq!(
            s.keys,
            [
                format!("doc_created.{A_DB}.call_recording.*"),
                format!("doc_created.{A_MODB}.call_recording.*")
            ]
        );
    }

    #[test]
    fn object_errors() {
        assert_eq!(err(A, "object.doc_foo.*"), "event doc_foo.* not supported");
        assert_eq!(err(A, "object.*.widget"), "event *.widget not supported");
        assert_eq!(
            err(A, "object.doc_created.widget"),
            "event doc_created.widget not supported"
        );
        assert_eq!(
            err(A, "object.doc_foo.user"),
            "event doc_foo.user not supported"
        );
        assert_eq!(
            err(A, "object.doc_created"),
            "invalid format for object subscription : doc_created"
        );
        assert_eq!(
            err(A, "object.doc_created.user.x"),
            "invalid format for object subscription : doc_created, user, x"
        );
    }

    #[test]
    fn legacy_readme_bindings_have_no_module() {
        assert_eq!(
            err(A, "doc_created.*.user.*"),
            "no available subscriptions to requested binding"
        );
    }

    #[test]
    fn fax_status() {
        let s = ok(A, "fax.status.*");
        assert_eq!(s.keys, [format!("fax.status.{A}.*")]);
        assert_eq!(s.sources, [src("faxes", &format!("fax.status.{A}.*"))]);
        let one = ok(A, "fax.status.job1");
        assert_eq!(one.keys, [format!("fax.status.{A}.job1")]);
        assert_eq!(one.sources, [src("faxes", &format!("fax.status.{A}.job1"))]);
    }

    #[test]
    fn fax_object_watches_the_modb_with_any_action() {
        let s = ok(A, "fax.object.doc_edited");
        assert_eq!(s.keys, [format!("doc_edited.{A_MODB}.fax.*")]);
        assert_eq!(
            s.sources,
            [src("configuration", &format!("doc_edited.{A_MODB}.fax.*"))]
        );
        // Not validated, as in KAZOO.
        let any = ok(A, "fax.object.whatever");
        assert_eq!(any.keys, [format!("whatever.{A_MODB}.fax.*")]);
    }

    #[test]
    fn fax_errors() {
        assert_eq!(
            err(A, "fax.status"),
            "invalid format for fax subscription : status"
        );
        assert_eq!(
            err(A, "fax.inbound.x"),
            "invalid format for fax subscription : inbound, x"
        );
        assert_eq!(
            err(A, "fax.status.a.b"),
            "invalid format for fax subscription : status, a, b"
        );
    }

    #[test]
    fn conference_event() {
        let s = ok(A, "conference.event.conf1.*");
        assert_eq!(s.keys, [format!("conference.event.*.{A}.conf1.*")]);
        assert_eq!(
            s.sources,
            [src(
                "conference",
                &format!("conference.event.*.{A}.conf1.*")
            )]
        );
        let call = ok(A, "conference.event.conf1.c1");
        assert_eq!(call.keys, [format!("conference.event.*.{A}.conf1.c1")]);
    }

    #[test]
    fn conference_command_is_not_account_scoped() {
        let s = ok(A, "conference.command.conf1");
        assert_eq!(s.keys, ["conference.command.conf1"]);
        assert_eq!(s.sources, [src("conference", "conference.command.conf1")]);
    }

    #[test]
    fn conference_errors() {
        assert_eq!(err(A, "conference.command.*"), "ConferenceId required");
        assert_eq!(err(A, "conference.event.*.*"), "ConferenceId required");
        assert_eq!(err(A, "conference.command.#"), "ConferenceId required");
        assert_eq!(err(A, "conference.event.#.c1"), "ConferenceId required");
        assert_eq!(
            err(A, "conference.event.conf1"),
            "invalid format for conference subscription : event, conf1"
        );
        // 4.3's per-event form is not master's.
        assert_eq!(
            err(A, "conference.event.conf1.*.add-member"),
            "invalid format for conference subscription : event, conf1, *, add-member"
        );
        assert_eq!(
            err(A, "conference.participant.x"),
            "invalid format for conference subscription : participant, x"
        );
    }

    #[test]
    fn presence_and_unknown_modules_have_no_subscriptions() {
        for b in [
            "presence.dialog.*",
            "presence.update.*",
            "presence.mwi_updates.*",
            "dialog.*",
            "*.*.*",
            "",
            "Call.CHANNEL_CREATE.*",
        ] {
            assert_eq!(
                err(A, b),
                "no available subscriptions to requested binding",
                "{b}"
            );
        }
    }

    #[test]
    fn wildcard_account_puts_star_in_the_account_position() {
        assert_eq!(
            ok("*", "call.CHANNEL_CREATE.*").keys,
            ["call.*.CHANNEL_CREATE.*"]
        );
        assert_eq!(ok("*", "fax.status.*").keys, ["fax.status.*.*"]);
        assert_eq!(
            ok("*", "conference.event.conf1.*").keys,
            ["conference.event.*.*.conf1.*"]
        );
        assert_eq!(
            ok("*", "object.doc_edited.user").keys,
            ["doc_edited.*.user.*"]
        );
        assert_eq!(
            ok("*", "fax.object.doc_created").keys,
            ["doc_created.*.fax.*"]
        );
        // Account DB and MODB are both `*`: one key, one source.
        let all = ok("*", "object.*.*");
        assert_eq!(all.keys, ["*.*.*.*"]);
        assert_eq!(all.sources, [src("configuration", "*.*.*.*")]);
    }

    #[test]
    fn malformed_account_id_is_refused_after_validation() {
        assert_eq!(
            err(A_DB, "call.CHANNEL_CREATE.*"),
            "unauthorized account id"
        );
        assert_eq!(
            err(&A.to_uppercase(), "object.doc_created.user"),
            "unauthorized account id"
        );
        assert_eq!(err("", "fax.status.*"), "unauthorized account id");
        // A validation error comes first, as in KAZOO's pipeline ...
        assert_eq!(err("nope", "call.FOO.*"), "event FOO not supported");
        // ... and the unknown-module error (command stage) only after the account check.
        assert_eq!(err("nope", "presence.dialog.*"), "unauthorized account id");
    }

    #[test]
    fn binding_is_kept_byte_for_byte() {
        let b = "call.CHANNEL_CREATE.a%2Eb~c";
        assert_eq!(ok(A, b).binding, b);
    }

    #[test]
    fn keys_match_the_dispatch_keys_of_their_events() {
        let call = Event::from_value(json!({"Event-Category": "call_event",
            "Event-Name": "CHANNEL_CREATE", "Call-ID": "abc@host",
            "Custom-Channel-Vars": {"Account-ID": A}}))
        .unwrap();
        let key = dispatch_key(None, &call).unwrap();
        let matches = |s: &Subscription| s.keys.iter().any(|k| topic_matches(k, &key));
        assert!(matches(&ok(A, "call.CHANNEL_CREATE.*")));
        assert!(matches(&ok(A, "call.*.*")));
        assert!(matches(&ok(A, "call.*.abc%40host")));
        assert!(matches(&ok("*", "call.CHANNEL_CREATE.*")));
        // A raw id with `@` does not match (§7.1); other events and accounts do not either.
        assert!(!matches(&ok(A, "call.CHANNEL_CREATE.abc@host")));
        assert!(!matches(&ok(A, "call.CHANNEL_ANSWER.*")));
        assert!(!matches(&ok(
            "0123456789abcdef0123456789abcdef",
            "call.CHANNEL_CREATE.*"
        )));

        let doc = Event::from_value(json!({"Event-Category": "configuration",
            "Event-Name": "doc_created", "Database": format!("{A_MODB}"), "Type": "fax",
            "ID": "202403-f1"}))
        .unwrap();
        let key = dispatch_key(None, &doc).unwrap();
        let matches = |s: &Subscription| s.keys.iter().any(|k| topic_matches(k, &key));
        assert!(matches(&ok(A, "object.doc_created.fax")));
        assert!(matches(&ok(A, "object.*.*")));
        assert!(matches(&ok(A, "fax.object.doc_created")));
        assert!(matches(&ok("*", "object.*.fax")));
        assert!(!matches(&ok(A, "object.doc_edited.fax")));
        assert!(!matches(&ok(A, "object.doc_created.user")));

        let status = Event::from_value(json!({"Event-Category": "fax", "Event-Name": "status",
            "Job-ID": "j1"}))
        .unwrap();
        let key = dispatch_key(None, &status).unwrap();
        // Without an account it reaches only wildcard-account subscriptions (§14 B8 fixed).
        assert!(!ok(A, "fax.status.*")
            .keys
            .iter()
            .any(|k| topic_matches(k, &key)));
        assert!(ok("*", "fax.status.*")
            .keys
            .iter()
            .any(|k| topic_matches(k, &key)));

        let conf = Event::from_value(json!({"Event-Category": "conference",
            "Event-Name": "event", "Event": "add-member", "Conference-ID": "conf1",
            "Call-ID": "c1", "Account-ID": A}))
        .unwrap();
        let key = dispatch_key(None, &conf).unwrap();
        assert!(ok(A, "conference.event.conf1.*")
            .keys
            .iter()
            .any(|k| topic_matches(k, &key)));
        assert!(ok(A, "conference.event.conf1.c1")
            .keys
            .iter()
            .any(|k| topic_matches(k, &key)));
        assert!(!ok(A, "conference.event.conf2.*")
            .keys
            .iter()
            .any(|k| topic_matches(k, &key)));
    }

    #[test]
    fn sources_receive_the_events_the_keys_match() {
        // What KAZOO publishes for these events, on the exchange named in the source.
        let published = [
            ("callevt", "call.CHANNEL_CREATE.abc%40host".to_owned()),
            ("configuration", format!("doc_created.{A_DB}.user.u1")),
            ("configuration", format!("doc_edited.{A_MODB}.fax.f1")),
            ("faxes", format!("fax.status.{A}.j1")),
            (
                "conference",
                format!("conference.event.add-member.{A}.conf1.c1"),
            ),
            ("conference", "conference.command.conf1".to_owned()),
        ];
        for binding in [
            "call.CHANNEL_CREATE.*",
            "object.doc_created.user",
            "fax.object.doc_edited",
            "fax.status.j1",
            "conference.event.conf1.c1",
            "conference.command.conf1",
        ] {
            let s = ok(A, binding);
            assert!(
                published.iter().any(|(exchange, key)| s
                    .sources
                    .iter()
                    .any(|(x, pattern)| x == exchange && topic_matches(pattern, key))),
                "{binding}"
            );
        }
    }

    #[test]
    fn catalogue_lists_the_offered_modules() {
        let c = catalogue();
        let modules: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(modules, ["call", "conference", "fax", "object", "webhooks"]);
        assert_eq!(c["webhooks"], json!(["webhooks.delivery.{HOOK_ID}"]));
        assert_eq!(
            c["call"],
            json!([
                "call.CHANNEL_CREATE.{CALL_ID}",
                "call.CHANNEL_ANSWER.{CALL_ID}",
                "call.CHANNEL_DESTROY.{CALL_ID}",
                "call.CHANNEL_HOLD.{CALL_ID}",
                "call.CHANNEL_UNHOLD.{CALL_ID}",
                "call.CHANNEL_BRIDGE.{CALL_ID}",
                "call.PARK_PARKED.{CALL_ID}",
                "call.PARK_RETRIEVED.{CALL_ID}",
                "call.PARK_ABANDONED.{CALL_ID}"
            ])
        );
        assert_eq!(
            c["conference"],
            json!([
                "conference.event.{CONFERENCE_ID}.{CALL_ID}",
                "conference.command.{CONFERENCE_ID}"
            ])
        );
        assert_eq!(
            c["fax"],
            json!(["fax.status.{FAX_ID}", "fax.object.{ACTION}"])
        );
        let object = c["object"].as_array().unwrap();
        assert_eq!(object.len(), 30);
        assert_eq!(object[0], "object.doc_created.account");
        assert_eq!(object[9], "object.doc_created.call_recording");
        assert_eq!(object[10], "object.doc_edited.account");
        assert_eq!(object[29], "object.doc_deleted.call_recording");
        assert!(c.get("presence").is_none());
    }

    #[test]
    fn every_object_entry_of_the_catalogue_can_be_subscribed() {
        let c = catalogue();
        for entry in c["object"].as_array().unwrap() {
            assert!(
                subscribe(A, entry.as_str().unwrap(), MARCH_2024).is_ok(),
                "{entry}"
            );
        }
    }

    #[test]
    fn a_delivery_subscription_is_the_accounts_own_and_needs_no_queue_binding() {
        let s = subscribe(A, "webhooks.delivery.*", MARCH_2024).unwrap();
        assert_eq!(s.keys, [format!("webhooks.delivery.{A}.*")]);
        assert!(s.sources.is_empty());
        assert_eq!(
            subscribe(A, "webhooks.delivered", MARCH_2024).unwrap_err(),
            "invalid format for webhooks subscription : delivered"
        );
    }
}
