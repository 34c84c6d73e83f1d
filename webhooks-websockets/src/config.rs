//! The limits of the live-event endpoint, read where KAZOO keeps blackhole's settings
//! (`system_config/blackhole`, spec §10, §11), with the defaults below where it has none.

use std::time::Duration;

use serde_json::Value;
use webhooks_core::Doc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Sockets at once from one peer address (KAZOO's `max_connections_per_ip`, unset: no cap);
    /// past it the upgrade is answered 429.
    pub max_connections_per_ip: Option<usize>,
    /// Authenticated sockets at once per account (ours; KAZOO has none).
    pub max_sockets_per_account: usize,
    /// Distinct bindings per socket (ours; KAZOO has none, spec §10).
    pub max_bindings_per_socket: usize,
    /// Event frames waiting for a slow reader, at most, per socket (KAZOO 4.3's
    /// `max_queued_messages`, default 50 there); the oldest are dropped past it.
    pub max_queued_messages: usize,
    /// The same bound in bytes, so that large events cannot make a few frames a lot of memory.
    pub max_queued_bytes: usize,
    /// The inbound message bucket: this many at once, refilled at `tokens_fill_rate` a second
    /// (KAZOO's `max_bucket_tokens` 100 and `tokens_fill_rate` 10).
    pub max_bucket_tokens: u32,
    pub tokens_fill_rate: u32,
    /// A socket with no inbound frame for this long is closed (KAZOO: one hour, fixed).
    pub idle_timeout: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            max_connections_per_ip: None,
            max_sockets_per_account: 100,
            max_bindings_per_socket: 100,
            max_queued_messages: 100,
            max_queued_bytes: 256 * 1024,
            max_bucket_tokens: 100,
            tokens_fill_rate: 10,
            idle_timeout: Duration::from_secs(3600),
        }
    }
}

impl HubConfig {
    /// The settings of `system_config/blackhole` (as the store returns it: its `default`
    /// section), each key falling back to the default when absent or not a positive integer.
    pub fn from_doc(doc: Option<&Doc>) -> HubConfig {
        let d = HubConfig::default();
        let Some(doc) = doc else { return d };
        let int = |key: &str| {
            doc.get(key)
                .and_then(Value::as_u64)
                .filter(|n| *n > 0)
                .map(|n| n as usize)
        };
        HubConfig {
            max_connections_per_ip: int("max_connections_per_ip"),
            max_sockets_per_account: int("max_sockets_per_account")
                .unwrap_or(d.max_sockets_per_account),
            max_bindings_per_socket: int("max_bindings_per_socket")
                .unwrap_or(d.max_bindings_per_socket),
            max_queued_messages: int("max_queued_messages").unwrap_or(d.max_queued_messages),
            max_queued_bytes: int("max_queued_bytes").unwrap_or(d.max_queued_bytes),
            max_bucket_tokens: int("max_bucket_tokens")
                .map_or(d.max_bucket_tokens, |n| n.min(u32::MAX as usize) as u32),
            tokens_fill_rate: int("tokens_fill_rate")
                .map_or(d.tokens_fill_rate, |n| n.min(u32::MAX as usize) as u32),
            idle_timeout: int("idle_timeout_s")
                .map_or(d.idle_timeout, |s| Duration::from_secs(s as u64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_settings_override_the_defaults_and_nonsense_is_ignored() {
        let doc = Doc::from_value(json!({
            "max_connections_per_ip": 3, "max_queued_messages": 7, "max_bindings_per_socket": 0,
            "tokens_fill_rate": "fast"
        }))
        .unwrap();
        let c = HubConfig::from_doc(Some(&doc));
        assert_eq!(c.max_connections_per_ip, Some(3));
        assert_eq!(c.max_queued_messages, 7);
        assert_eq!(c.max_bindings_per_socket, 100);
        assert_eq!(c.tokens_fill_rate, 10);
        assert_eq!(HubConfig::from_doc(None), HubConfig::default());
    }
}
