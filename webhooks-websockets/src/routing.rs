//! Routing keys: how an event is named for dispatch, and how subscription keys match names.
//!
//! Blackhole hands every event to the sockets whose subscription keys match the key the event
//! was dispatched under (spec §8). That key is what the client sees as `routing_key`, and it is
//! where the account lives: blackhole does no payload-level account check, so getting the key
//! right *is* the access control. This module computes it ([`dispatch_key`]), escapes ids the way
//! KAZOO's publishers do ([`amqp_encode`]) and matches keys against patterns ([`topic_matches`]).
//!
//! Two deliberate departures from KAZOO, both for isolation between accounts:
//! - matching is one-directional (pattern against key), so an event published with a literal `*`
//!   segment (a fax status without an account, §7.3) no longer reaches every account (§14 B8);
//! - a call event without `Custom-Channel-Vars.Account-ID` falls back to its top-level
//!   `Account-ID` instead of being dropped (§14 B17).

use webhooks_core::Event;

/// KAZOO's routing-key escaping (spec "Conventions": kz_amqp_util:encode).
///
/// `[A-Za-z0-9~_-]` stay as they are, a space becomes `+`, `.` becomes `%2E` and every other
/// byte (`%` included, and each byte of a multi-byte UTF-8 character) becomes `%XX` in upper-case
/// hex, so an id can never add a segment to a key. `*`, `#` and the empty string are returned
/// unchanged: KAZOO passes them through as wildcards.
pub fn amqp_encode(s: &str) -> String {
    if s.is_empty() || s == "*" || s == "#" {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'~' | b'_' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xF)]));
            }
        }
    }
    out
}

/// One-directional AMQP topic matching: `*` one segment, `#` zero or more (segments split on '.').
/// Not KAZOO's symmetric matcher (spec §8, §14 B8): a `*` in the key is a literal segment here.
///
/// Wildcards count only as whole segments (`a*` is literal), as in RabbitMQ. Segments are split
/// literally, so the empty key is one empty segment, which `*` and `#` both match.
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = key.split('.').collect();
    // reachable[j]: the pattern segments seen so far can consume exactly key[..j]. Dynamic
    // programming rather than backtracking: a pattern with several `#` stays linear per segment.
    let mut reachable = vec![false; key.len() + 1];
    reachable[0] = true;
    for segment in pattern {
        let mut next = vec![false; key.len() + 1];
        match segment {
            "#" => {
                let mut seen = false;
                for (j, slot) in next.iter_mut().enumerate() {
                    seen |= reachable[j];
                    *slot = seen;
                }
            }
            _ => {
                for j in 0..key.len() {
                    if reachable[j] && (segment == "*" || segment == key[j]) {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reachable = next;
        if !reachable.contains(&true) {
            return false;
        }
    }
    reachable[key.len()]
}

/// The key an event is dispatched under (spec §7 "Match key", §8): the synthetic call key
/// `call.<Account-ID>.<Event-Name>.<encoded Call-ID>` for call events (Event-Category
/// `call_event`); for every other event the AMQP routing key it came with when `routing_key` is
/// Some; when it is None (the event was handed to this node directly, e.g. `POST /v2/events`,
/// with no routing key), the routing key KAZOO's publisher would have used:
/// - configuration doc events (`doc_created`, `doc_edited`, `doc_deleted`):
///   `<Event-Name>.<Database>.<Type>.<encoded ID>`, the database in its
///   `account%2Fxx%2Fyy%2Frest[-YYYYMM]` form (a raw `account/xx/...` name is converted);
/// - fax status: `fax.status.<Account-ID or *>.<encoded Fax-ID or Job-ID, or *>`;
/// - conference events: `conference.event.<Event>.<Account-ID or CCV Account-ID>.<Conference-ID>.<encoded Call-ID>`,
///   the call id defaulting to the conference id;
/// - conference commands: `conference.command.<Conference-ID>`.
///
/// Ids KAZOO's publishers put in a key unencoded (account ids, conference ids, event names) are
/// put in unencoded here too: subscription keys carry client ids as given (§7), and they must
/// meet the same spelling.
///
/// The account of a call event is `Custom-Channel-Vars.Account-ID`, falling back to the
/// top-level `Account-ID`. KAZOO drops call events whose CCVs carry no account (§14 B17; it
/// only recovers CHANNEL_CREATE/DESTROY by an inbound-number lookup); the fallback delivers
/// the ones that name their account at the top level. A caller that can look numbers up puts
/// the account in the CCVs before calling this.
///
/// `None` when the event has no such key: a call event without any account id or call id, a
/// notification handed over without a routing key, an event missing a field its key needs.
/// Empty strings count as missing.
pub fn dispatch_key(routing_key: Option<&str>, event: &Event) -> Option<String> {
    if event.category() == Some("call_event") {
        return call_key(event);
    }
    if let Some(rk) = routing_key {
        return Some(rk.to_owned());
    }
    match (event.category()?, event.name()?) {
        ("configuration", action @ ("doc_created" | "doc_edited" | "doc_deleted")) => {
            doc_key(action, event)
        }
        ("fax", "status") => Some(fax_status_key(event)),
        ("conference", "event") => conference_event_key(event),
        ("conference", "command") => Some(format!(
            "conference.command.{}",
            text(event, "Conference-ID")?
        )),
        _ => None,
    }
}

/// A non-empty string field.
fn text<'a>(event: &'a Event, key: &str) -> Option<&'a str> {
    event.str(key).filter(|s| !s.is_empty())
}

/// `Custom-Channel-Vars.Account-ID`, else the top-level `Account-ID`.
fn account_of(event: &Event) -> Option<&str> {
    event
        .ccv("Account-ID")
        .filter(|s| !s.is_empty())
        .or_else(|| text(event, "Account-ID"))
}

fn call_key(event: &Event) -> Option<String> {
    let account = account_of(event)?;
    let name = text(event, "Event-Name")?;
    let call_id = text(event, "Call-ID")?;
    Some(format!("call.{account}.{name}.{}", amqp_encode(call_id)))
}

fn doc_key(action: &str, event: &Event) -> Option<String> {
    let db = text(event, "Database")?;
    let doc_type = text(event, "Type")?;
    let id = text(event, "ID")?;
    // The notice's `Database` is normally already `account%2F...`; the raw CouchDB spelling
    // (`account/...`) and a lower-case escape name the same database and get KAZOO's spelling.
    let db = db.replace('/', "%2F").replace("%2f", "%2F");
    Some(format!("{action}.{db}.{doc_type}.{}", amqp_encode(id)))
}

fn fax_status_key(event: &Event) -> String {
    let account = text(event, "Account-ID").unwrap_or("*");
    let fax_id = text(event, "Fax-ID")
        .or_else(|| text(event, "Job-ID"))
        .unwrap_or("*");
    format!("fax.status.{account}.{}", amqp_encode(fax_id))
}

fn conference_event_key(event: &Event) -> Option<String> {
    let kind = text(event, "Event")?;
    let account =
        text(event, "Account-ID").or_else(|| event.ccv("Account-ID").filter(|s| !s.is_empty()))?;
    let conference = text(event, "Conference-ID")?;
    let call_id = text(event, "Call-ID").unwrap_or(conference);
    Some(format!(
        "conference.event.{kind}.{account}.{conference}.{}",
        amqp_encode(call_id)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const ACCOUNT: &str = "91eb05e5c68d7ca05e7618b6821d2d16";

    fn event(v: Value) -> Event {
        Event::from_value(v).unwrap()
    }

    fn sample(name: &str) -> Vec<Event> {
        let path = format!(
            "{}/../webhooks-modules/src/samples/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).unwrap();
        let list: Vec<Value> = serde_json::from_str(&text).unwrap();
        list.into_iter().map(event).collect()
    }

    #[test]
    fn encode_keeps_unreserved_and_escapes_the_rest() {
        assert_eq!(amqp_encode("AZaz09-~_"), "AZaz09-~_");
        assert_eq!(amqp_encode("a.b c"), "a%2Eb+c");
        assert_eq!(amqp_encode("1234@10.0.0.1"), "1234%4010%2E0%2E0%2E1");
        assert_eq!(amqp_encode("50%/x"), "50%25%2Fx");
        assert_eq!(amqp_encode("é"), "%C3%A9");
    }

    #[test]
    fn encode_passes_wildcards_and_empty_through() {
        assert_eq!(amqp_encode("*"), "*");
        assert_eq!(amqp_encode("#"), "#");
        assert_eq!(amqp_encode(""), "");
        // Only a whole-string wildcard is one.
        assert_eq!(amqp_encode("a*"), "a%2A");
        assert_eq!(amqp_encode("**"), "%2A%2A");
    }

    #[test]
    fn star_matches_exactly_one_segment() {
        assert!(topic_matches(
            "call.*.CHANNEL_CREATE.*",
            "call.a.CHANNEL_CREATE.c"
        ));
        assert!(!topic_matches("call.*", "call.a.b"));
        assert!(!topic_matches("call.*.*", "call.a"));
        assert!(topic_matches("*", ""));
    }

    #[test]
    fn hash_matches_zero_or_more_segments() {
        assert!(topic_matches("#", "a.b.c"));
        assert!(topic_matches("#", ""));
        assert!(topic_matches("a.#", "a"));
        assert!(topic_matches("a.#", "a.b.c"));
        assert!(topic_matches("a.#.c", "a.c"));
        assert!(topic_matches("a.#.c", "a.b.b.c"));
        assert!(!topic_matches("a.#.c", "a.b.d"));
        assert!(topic_matches("#.x.#", "a.x.b"));
        assert!(!topic_matches("#.x.#", "a.y.b"));
        assert!(topic_matches("a.#.#.b", "a.b"));
    }

    #[test]
    fn literal_segments_must_be_equal() {
        assert!(topic_matches("a.b", "a.b"));
        assert!(!topic_matches("a.b", "a.B"));
        assert!(!topic_matches("a.b", "a.b.c"));
        assert!(!topic_matches("a*.b", "ax.b"));
        assert!(topic_matches("a*.b", "a*.b"));
    }

    #[test]
    fn a_star_in_the_key_is_not_a_wildcard() {
        // KAZOO's symmetric matcher would deliver this fax status to every account (§14 B8).
        assert!(!topic_matches(
            &format!("fax.status.{ACCOUNT}.*"),
            "fax.status.*.job1"
        ));
        assert!(!topic_matches("a.b", "a.*"));
        assert!(!topic_matches("a.b", "#"));
        // A wildcard pattern still matches a literal `*` segment, as AMQP does.
        assert!(topic_matches("fax.status.*.*", "fax.status.*.job1"));
    }

    #[test]
    fn call_events_get_the_synthetic_key() {
        for name in [
            "channel_create",
            "channel_answer",
            "channel_destroy",
            "channel_bridge",
        ] {
            for e in sample(name) {
                let key = dispatch_key(Some("call.ignored.x"), &e).unwrap();
                assert_eq!(
                    key,
                    format!(
                        "call.{ACCOUNT}.{}.NDlkNGI3OTZlMDgzNWQxNGYxNTA3NjQ4NDZjNDFkOTc",
                        e.name().unwrap()
                    )
                );
            }
        }
        let parked = &sample("parking")[0];
        assert_eq!(
            dispatch_key(None, parked).unwrap(),
            "call.5a2d994fbae69b1d6b01eb9f0e7dfe62.PARK_PARKED.OWU4NzEwOTgyZWNiMjM0MzI0NjRkZDc4MWVmMjEyOWI"
        );
    }

    #[test]
    fn call_key_encodes_the_call_id() {
        let e = event(
            json!({"Event-Category": "call_event", "Event-Name": "CHANNEL_CREATE",
            "Call-ID": "abc@10.0.0.1", "Custom-Channel-Vars": {"Account-ID": ACCOUNT}}),
        );
        assert_eq!(
            dispatch_key(None, &e).unwrap(),
            format!("call.{ACCOUNT}.CHANNEL_CREATE.abc%4010%2E0%2E0%2E1")
        );
    }

    #[test]
    fn call_account_falls_back_to_the_top_level_account_id() {
        let other = "0123456789abcdef0123456789abcdef";
        let top_only = event(
            json!({"Event-Category": "call_event", "Event-Name": "CHANNEL_HOLD",
            "Call-ID": "c1", "Account-ID": other}),
        );
        assert_eq!(
            dispatch_key(None, &top_only).unwrap(),
            format!("call.{other}.CHANNEL_HOLD.c1")
        );
        // The CCV account wins when both are present, and an empty one does not count.
        let both = event(
            json!({"Event-Category": "call_event", "Event-Name": "CHANNEL_HOLD",
            "Call-ID": "c1", "Account-ID": other, "Custom-Channel-Vars": {"Account-ID": ACCOUNT}}),
        );
        assert_eq!(
            dispatch_key(None, &both).unwrap(),
            format!("call.{ACCOUNT}.CHANNEL_HOLD.c1")
        );
        let empty_ccv = event(
            json!({"Event-Category": "call_event", "Event-Name": "CHANNEL_HOLD",
            "Call-ID": "c1", "Account-ID": other, "Custom-Channel-Vars": {"Account-ID": ""}}),
        );
        assert_eq!(
            dispatch_key(None, &empty_ccv).unwrap(),
            format!("call.{other}.CHANNEL_HOLD.c1")
        );
    }

    #[test]
    fn call_event_without_account_or_call_id_has_no_key() {
        let no_account = event(
            json!({"Event-Category": "call_event", "Event-Name": "CHANNEL_HOLD",
            "Call-ID": "c1", "Custom-Channel-Vars": {}}),
        );
        assert_eq!(
            dispatch_key(Some("call.CHANNEL_HOLD.c1"), &no_account),
            None
        );
        let no_call_id = event(
            json!({"Event-Category": "call_event", "Event-Name": "CHANNEL_HOLD",
            "Custom-Channel-Vars": {"Account-ID": ACCOUNT}}),
        );
        assert_eq!(dispatch_key(None, &no_call_id), None);
    }

    #[test]
    fn other_events_keep_the_routing_key_they_came_with() {
        let notice = &sample("notifications")[0];
        assert_eq!(
            dispatch_key(Some("notifications.account.zone_change"), notice).as_deref(),
            Some("notifications.account.zone_change")
        );
        let doc = &sample("object")[0];
        assert_eq!(
            dispatch_key(Some("doc_created.anything.user.x"), doc).as_deref(),
            Some("doc_created.anything.user.x")
        );
    }

    #[test]
    fn notification_without_routing_key_has_no_key() {
        assert_eq!(dispatch_key(None, &sample("notifications")[0]), None);
    }

    #[test]
    fn doc_events_get_the_configuration_key() {
        let db = "account%2F0e%2F10%2Ff9365fb2383d0fa65e907bfe4cb3";
        for e in sample("object") {
            assert_eq!(
                dispatch_key(None, &e).unwrap(),
                format!(
                    "{}.{db}.user.c4c0ad092e57bc1d28e69bbd20dad932",
                    e.name().unwrap()
                )
            );
        }
    }

    #[test]
    fn doc_key_converts_a_raw_database_name_and_encodes_the_id() {
        let e = event(
            json!({"Event-Category": "configuration", "Event-Name": "doc_edited",
            "Database": "account/0e/10/f9365fb2383d0fa65e907bfe4cb3-202401",
            "Type": "fax", "ID": "202401-a.b"}),
        );
        assert_eq!(
            dispatch_key(None, &e).unwrap(),
            "doc_edited.account%2F0e%2F10%2Ff9365fb2383d0fa65e907bfe4cb3-202401.fax.202401-a%2Eb"
        );
        let lower = event(
            json!({"Event-Category": "configuration", "Event-Name": "doc_deleted",
            "Database": "account%2f0e%2f10%2ff9365fb2383d0fa65e907bfe4cb3",
            "Type": "user", "ID": "u1"}),
        );
        assert_eq!(
            dispatch_key(None, &lower).unwrap(),
            "doc_deleted.account%2F0e%2F10%2Ff9365fb2383d0fa65e907bfe4cb3.user.u1"
        );
    }

    #[test]
    fn configuration_events_that_are_not_doc_changes_have_no_key() {
        let e = event(
            json!({"Event-Category": "configuration", "Event-Name": "doc_type_update",
            "Type": "webhook"}),
        );
        assert_eq!(dispatch_key(None, &e), None);
        let no_id = event(
            json!({"Event-Category": "configuration", "Event-Name": "doc_edited",
            "Database": "account%2F0e", "Type": "user"}),
        );
        assert_eq!(dispatch_key(None, &no_id), None);
    }

    #[test]
    fn fax_status_key_prefers_fax_id_and_defaults_to_star() {
        let full = event(json!({"Event-Category": "fax", "Event-Name": "status",
            "Account-ID": ACCOUNT, "Fax-ID": "f.1", "Job-ID": "j1"}));
        assert_eq!(
            dispatch_key(None, &full).unwrap(),
            format!("fax.status.{ACCOUNT}.f%2E1")
        );
        let job_only = event(json!({"Event-Category": "fax", "Event-Name": "status",
            "Job-ID": "j1"}));
        assert_eq!(dispatch_key(None, &job_only).unwrap(), "fax.status.*.j1");
        let bare = event(json!({"Event-Category": "fax", "Event-Name": "status"}));
        assert_eq!(dispatch_key(None, &bare).unwrap(), "fax.status.*.*");
    }

    #[test]
    fn conference_event_key_takes_the_account_and_defaults_the_call_id() {
        let e = event(
            json!({"Event-Category": "conference", "Event-Name": "event",
            "Event": "add-member", "Conference-ID": "conf1", "Call-ID": "c@h",
            "Account-ID": ACCOUNT}),
        );
        assert_eq!(
            dispatch_key(None, &e).unwrap(),
            format!("conference.event.add-member.{ACCOUNT}.conf1.c%40h")
        );
        let ccv = event(
            json!({"Event-Category": "conference", "Event-Name": "event",
            "Event": "conference-create", "Conference-ID": "conf1",
            "Custom-Channel-Vars": {"Account-ID": ACCOUNT}}),
        );
        assert_eq!(
            dispatch_key(None, &ccv).unwrap(),
            format!("conference.event.conference-create.{ACCOUNT}.conf1.conf1")
        );
        let no_account = event(
            json!({"Event-Category": "conference", "Event-Name": "event",
            "Event": "lock", "Conference-ID": "conf1"}),
        );
        assert_eq!(dispatch_key(None, &no_account), None);
    }

    #[test]
    fn conference_command_key() {
        let e = event(
            json!({"Event-Category": "conference", "Event-Name": "command",
            "Application-Name": "lock", "Conference-ID": "conf1"}),
        );
        assert_eq!(
            dispatch_key(None, &e).as_deref(),
            Some("conference.command.conf1")
        );
        let no_conf = event(json!({"Event-Category": "conference", "Event-Name": "command"}));
        assert_eq!(dispatch_key(None, &no_conf), None);
    }

    #[test]
    fn event_without_category_has_no_derived_key() {
        assert_eq!(dispatch_key(None, &event(json!({"Event-Name": "x"}))), None);
        assert_eq!(
            dispatch_key(Some("a.b"), &event(json!({}))).as_deref(),
            Some("a.b")
        );
    }
}
