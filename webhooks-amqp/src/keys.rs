//! KAZOO's exchanges and routing keys (spec §4.1).
//!
//! Whoever binds a queue or publishes an event must spell keys exactly as KAZOO does, or
//! miss every message: these functions are shared by the transport, the
//! `publish_kazoo_events` example and the tests, so all three agree with KAZOO and with each
//! other.

use lapin::ExchangeKind;
use webhooks_core::Event;

/// KAZOO's exchanges the webhooks application uses.
pub mod exchanges {
    pub const CALL_EVENTS: &str = "callevt";
    pub const NOTIFICATIONS: &str = "notifications";
    pub const CONFIGURATION: &str = "configuration";
    pub const IM: &str = "im";
    /// Replies: a direct exchange where every reply queue is bound under its own name.
    pub const TARGETED: &str = "targeted";
}

/// The exchange type KAZOO declares each exchange with (`kz_amqp_util.hrl`): `targeted` and
/// `callctl` are direct, `nodes` is fanout, the event exchanges (`callevt`, `conference`,
/// `faxes`, `presence`, `registrar`, ...) are topic. An exchange KAZOO does not declare (a
/// custom module or a live stream may bind one) is taken to be topic, like every KAZOO event
/// exchange.
pub fn exchange_kind(exchange: &str) -> ExchangeKind {
    match exchange {
        exchanges::TARGETED | "callctl" => ExchangeKind::Direct,
        "nodes" => ExchangeKind::Fanout,
        _ => ExchangeKind::Topic,
    }
}

/// The exchanges declared on every connection, whatever the modules bind.
pub const KAZOO_EXCHANGES: [&str; 5] = [
    exchanges::CALL_EVENTS,
    exchanges::NOTIFICATIONS,
    exchanges::CONFIGURATION,
    exchanges::IM,
    exchanges::TARGETED,
];

/// Bound on the shared queue: crossbar's re-enable request (spec §4.3).
pub const REENABLE_KEY: &str = "configuration.doc_type_update.webhook";

/// Bound on the per-node queue: every change to a webhook document (spec §4.1).
pub const WEBHOOK_DOC_CHANGES: &str = "*.webhooks.webhook.*";

/// The exchange the nodes share their failed tries on (`failures.rs`): a topic exchange of
/// our own, so the batches reach every node's own queue and never the shared queue (KAZOO's
/// `object` hooks bind all of `configuration`).
pub const NODES_EXCHANGE: &str = "webhooks_nodes";

/// Bound on the per-node queue (on [`NODES_EXCHANGE`]): the failed tries other nodes share.
pub const PEER_FAILURES_KEY: &str = "failed_tries";

/// Bound on the per-node queue: account deletions, which take the account's hooks with them.
pub const ACCOUNT_DELETIONS: &str = "doc_deleted.*.account.*";

/// What the per-node queue is always bound with: configuration notices and the failed tries
/// other nodes share. A live stream's binding of one of these pairs never unbinds it.
pub const NODE_QUEUE_BINDINGS: [(&str, &str); 3] = [
    (exchanges::CONFIGURATION, WEBHOOK_DOC_CHANGES),
    (exchanges::CONFIGURATION, ACCOUNT_DELETIONS),
    (NODES_EXCHANGE, PEER_FAILURES_KEY),
];

/// Does a topic exchange route `routing_key` to a queue bound with `pattern`? As RabbitMQ
/// matches: words are separated by `.`, `*` is exactly one word, `#` zero or more.
pub fn topic_matches(pattern: &str, routing_key: &str) -> bool {
    let key: Vec<&str> = routing_key.split('.').collect();
    // matched[j]: the pattern's words so far match the key's first j words.
    let mut matched = vec![false; key.len() + 1];
    matched[0] = true;
    for word in pattern.split('.') {
        let mut next = vec![false; key.len() + 1];
        for j in 0..=key.len() {
            next[j] = match word {
                "#" => matched[j] || (j > 0 && next[j - 1]),
                "*" => j > 0 && matched[j - 1],
                _ => j > 0 && matched[j - 1] && key[j - 1] == word,
            };
        }
        matched = next;
    }
    matched[key.len()]
}

/// Encodes one routing-key segment as KAZOO's `kz_amqp_util:encode/1` does: `.` becomes
/// `%2E`, space becomes `+`, bytes outside `[A-Za-z0-9~_-]` (`%` included) are percent-encoded,
/// so a call id or document id can never add a segment to the key. A lone `*` or `#` is kept:
/// it is a wildcard, not data.
pub fn encode_segment(s: &str) -> String {
    if s == "*" || s == "#" {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'.' => out.push_str("%2E"),
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `call.<EVENT>.<encoded call id>`, where KAZOO publishes call events.
pub fn call_event_key(event_name: &str, call_id: &str) -> String {
    format!("call.{event_name}.{}", encode_segment(call_id))
}

/// `<action>.<db>.<type>.<encoded id>`, the key of a document change notice
/// (`kz_amqp_util:document_routing_key/4`).
///
/// KAZOO encodes only the id: the database is already in its encoded form
/// (`account%2Fxx%2Fyy%2Frest`, the form notices carry in `Database`) and CouchDB database
/// names cannot contain a dot. A database given in the slash form (`account/xx/yy/rest`) is
/// put in the encoded form, so both spellings give KAZOO's key.
pub fn doc_change_key(action: &str, db: &str, doc_type: &str, id: &str) -> String {
    format!(
        "{action}.{}.{doc_type}.{}",
        db.replace('/', "%2F"),
        encode_segment(id)
    )
}

/// `configuration.doc_type_update.<type>`: where crossbar publishes a re-enable request.
pub fn doc_type_update_key(doc_type: &str) -> String {
    format!("configuration.doc_type_update.{doc_type}")
}

/// Each notification's routing key on the `notifications` exchange, by `Event-Name`
/// (spec §4.4; KAZOO's `kapi_notifications` definitions, without `skel` and `notify_update`).
pub const NOTIFICATION_KEYS: &[(&str, &str)] = &[
    ("account_zone_change", "notifications.account.zone_change"),
    ("bill_reminder", "notifications.account.reminder"),
    ("low_balance", "notifications.account.low_balance"),
    ("new_account", "notifications.account.new"),
    ("service_added", "notifications.account.service_added"),
    ("topup", "notifications.account.topup"),
    ("transaction", "notifications.account.transaction"),
    ("cf_notification", "notifications.account.cf_notification"),
    (
        "number_feature_manual_action",
        "notifications.account.number_feature_manual_action",
    ),
    ("inbound_fax", "notifications.fax.inbound"),
    ("inbound_fax_error", "notifications.fax.inbound_error"),
    ("outbound_fax", "notifications.fax.outbound"),
    ("outbound_fax_error", "notifications.fax.outbound_error"),
    (
        "outbound_smtp_fax_error",
        "notifications.fax.outbound_smtp_error",
    ),
    ("cnam_request", "notifications.number.cnam_request"),
    ("port_cancel", "notifications.number.port_cancel"),
    ("port_comment", "notifications.number.port_comment"),
    ("port_pending", "notifications.number.port_pending"),
    ("port_rejected", "notifications.number.port_rejected"),
    ("port_request", "notifications.number.port_request"),
    ("port_scheduled", "notifications.number.port_scheduled"),
    ("port_unconfirmed", "notifications.number.port_unconfirmed"),
    ("ported", "notifications.number.ported"),
    (
        "denied_emergency_bridge",
        "notifications.registration.denied_emergency_bridge",
    ),
    (
        "emergency_bridge",
        "notifications.registration.emergency_bridge",
    ),
    ("deregister", "notifications.sip.deregister"),
    ("first_occurrence", "notifications.sip.first_occurrence"),
    ("missed_call", "notifications.sip.missed_call"),
    ("register", "notifications.sip.register"),
    ("system_alert", "notifications.system.alert"),
    ("customer_update", "notifications.user.customer_update"),
    ("new_user", "notifications.user.new"),
    ("password_recovery", "notifications.user.password_recovery"),
    ("voicemail_full", "notifications.voicemail.full"),
    ("voicemail_new", "notifications.voicemail.new"),
    ("voicemail_saved", "notifications.voicemail.saved"),
    ("voicemail_deleted", "notifications.voicemail.deleted"),
    ("webhook", "notifications.webhook.callflow"),
    ("webhook_disabled", "notifications.webhook.disabled"),
];

/// The routing key of a notification, by its `Event-Name` (`webhook_disabled` →
/// `notifications.webhook.disabled`); `None` for a name KAZOO does not define.
pub fn notification_key(event_name: &str) -> Option<&'static str> {
    NOTIFICATION_KEYS
        .iter()
        .find(|(name, _)| *name == event_name)
        .map(|(_, key)| *key)
}

/// Where KAZOO publishes a message: an exchange and a routing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub exchange: &'static str,
    pub routing_key: String,
}

/// The exchange and key KAZOO would publish `event` with, read from its headers: call events
/// (`Call-ID`), notifications (by name), document change notices (`Database`, `Type`, `ID`)
/// and re-enable requests (`Type`). `None` when the headers needed are missing or the family
/// is none of these.
pub fn route_for(event: &Event) -> Option<Route> {
    let (exchange, routing_key) = match (event.category()?, event.name()?) {
        ("call_event", name) => (
            exchanges::CALL_EVENTS,
            call_event_key(name, event.str("Call-ID")?),
        ),
        ("notification", name) => (exchanges::NOTIFICATIONS, notification_key(name)?.to_owned()),
        ("configuration", "doc_type_update") => (
            exchanges::CONFIGURATION,
            doc_type_update_key(event.str("Type")?),
        ),
        ("configuration", action) if action.starts_with("doc_") || action.starts_with("db_") => (
            exchanges::CONFIGURATION,
            doc_change_key(
                action,
                event.str("Database")?,
                event.str("Type")?,
                event.str("ID")?,
            ),
        ),
        _ => return None,
    };
    Some(Route {
        exchange,
        routing_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn segments_cannot_split_a_key() {
        assert_eq!(encode_segment("abc-1_2"), "abc-1_2");
        assert_eq!(encode_segment("a.b c"), "a%2Eb+c");
        assert_eq!(encode_segment("x@y/z~"), "x%40y%2Fz~");
        assert_eq!(encode_segment("*"), "*");
        assert_eq!(encode_segment("a*"), "a%2A");
    }

    #[test]
    fn keys_follow_kazoo_formats() {
        assert_eq!(
            call_event_key("CHANNEL_CREATE", "1234@10.0.0.1"),
            "call.CHANNEL_CREATE.1234%4010%2E0%2E0%2E1"
        );
        assert_eq!(
            doc_change_key("doc_edited", "account/xx/yy/zz", "webhook", "h1"),
            "doc_edited.account%2Fxx%2Fyy%2Fzz.webhook.h1"
        );
        assert_eq!(
            doc_change_key("doc_edited", "account%2Fxx%2Fyy%2Fzz", "webhook", "a.b"),
            "doc_edited.account%2Fxx%2Fyy%2Fzz.webhook.a%2Eb",
            "an encoded database is not encoded twice"
        );
        assert_eq!(
            doc_type_update_key("webhook"),
            REENABLE_KEY,
            "the re-enable binding is crossbar's key"
        );
        assert_eq!(
            notification_key("webhook_disabled"),
            Some("notifications.webhook.disabled")
        );
        assert_eq!(notification_key("notify_update"), None);
    }

    #[test]
    fn routes_are_read_from_headers() {
        let route = |v| route_for(&Event::from_value(v).unwrap());
        assert_eq!(
            route(
                json!({"Event-Category": "call_event", "Event-Name": "CHANNEL_ANSWER",
                         "Call-ID": "c.1"})
            ),
            Some(Route {
                exchange: "callevt",
                routing_key: "call.CHANNEL_ANSWER.c%2E1".into()
            })
        );
        assert_eq!(
            route(
                json!({"Event-Category": "configuration", "Event-Name": "doc_deleted",
                         "Database": "webhooks", "Type": "webhook", "ID": "h1"})
            )
            .unwrap()
            .routing_key,
            "doc_deleted.webhooks.webhook.h1"
        );
        assert_eq!(
            route(
                json!({"Event-Category": "configuration", "Event-Name": "doc_type_update",
                         "Type": "webhook"})
            )
            .unwrap()
            .routing_key,
            REENABLE_KEY
        );
        assert_eq!(
            route(json!({"Event-Category": "call_event", "Event-Name": "CHANNEL_CREATE"})),
            None,
            "no Call-ID, no key"
        );
        assert_eq!(
            route(json!({"Event-Category": "notification", "Event-Name": "skel"})),
            None
        );
    }

    #[test]
    fn topics_match_as_rabbitmq_matches() {
        assert!(topic_matches(
            "call.CHANNEL_CREATE.*",
            "call.CHANNEL_CREATE.abc"
        ));
        assert!(!topic_matches(
            "call.CHANNEL_CREATE.*",
            "call.CHANNEL_CREATE.a.b"
        ));
        assert!(!topic_matches(
            "call.CHANNEL_CREATE.*",
            "call.CHANNEL_CREATE"
        ));
        assert!(topic_matches("#", "doc_created.account%2F0e.user.x"));
        assert!(topic_matches("call.#", "call"));
        assert!(topic_matches("call.#.x", "call.a.b.x"));
        assert!(!topic_matches("call.#.x", "call.a.b.y"));
        assert!(topic_matches(
            WEBHOOK_DOC_CHANGES,
            "doc_edited.webhooks.webhook.h1"
        ));
        assert!(!topic_matches(
            WEBHOOK_DOC_CHANGES,
            "doc_edited.webhooks.user.h1"
        ));
        assert!(topic_matches(
            ACCOUNT_DELETIONS,
            "doc_deleted.account%2Fxx.account.a1"
        ));
        assert!(!topic_matches(
            ACCOUNT_DELETIONS,
            "doc_edited.account%2Fxx.account.a1"
        ));
        // Many `#` stay cheap: the match is quadratic, not exponential.
        let key = vec!["a"; 200].join(".");
        let hashes = vec!["#"; 100].join(".") + ".b";
        assert!(!topic_matches(&hashes, &key));
    }

    #[test]
    fn kazoo_declares_callctl_direct_and_nodes_fanout() {
        assert_eq!(exchange_kind("callctl"), ExchangeKind::Direct);
        assert_eq!(exchange_kind(exchanges::TARGETED), ExchangeKind::Direct);
        assert_eq!(exchange_kind("nodes"), ExchangeKind::Fanout);
        for topic in [
            "callevt",
            "conference",
            "faxes",
            "presence",
            "blackhole_custom",
        ] {
            assert_eq!(exchange_kind(topic), ExchangeKind::Topic);
        }
    }

    #[test]
    fn notification_names_and_keys_are_unique() {
        let mut names: Vec<_> = NOTIFICATION_KEYS.iter().map(|(n, _)| n).collect();
        let mut keys: Vec<_> = NOTIFICATION_KEYS.iter().map(|(_, k)| k).collect();
        names.sort();
        names.dedup();
        keys.sort();
        keys.dedup();
        assert_eq!(names.len(), NOTIFICATION_KEYS.len());
        assert_eq!(keys.len(), NOTIFICATION_KEYS.len());
    }
}
