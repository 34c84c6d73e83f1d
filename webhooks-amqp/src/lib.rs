//! # webhooks-amqp: KAZOO's AMQP vocabulary
//!
//! KAZOO names its exchanges and encodes routing-key segments in a particular way; whoever
//! binds queues or publishes events must do the same or miss every message. This crate holds
//! that vocabulary. It depends only on core.

/// KAZOO's topic exchanges the webhooks application listens on.
pub mod exchanges {
    pub const CALL_EVENTS: &str = "callevt";
    pub const NOTIFICATIONS: &str = "notifications";
    pub const CONFIGURATION: &str = "configuration";
    pub const IM: &str = "im";
    pub const TARGETED: &str = "targeted";
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

/// `call.<EVENT>.<encoded call id>`.
pub fn call_event_key(event_name: &str, call_id: &str) -> String {
    format!("call.{event_name}.{}", encode_segment(call_id))
}

/// `<action>.<encoded db>.<type>.<encoded id>`, the key of a document change notice.
pub fn doc_change_key(action: &str, db: &str, doc_type: &str, id: &str) -> String {
    format!(
        "{action}.{}.{doc_type}.{}",
        encode_segment(db),
        encode_segment(id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
