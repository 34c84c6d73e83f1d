//! Configuration with KAZOO's keys and defaults (spec §2.6).
//!
//! System values live in the `webhooks` system config document; accounts may override the
//! failure threshold and window in their own `configs_webhooks` document. Reading goes through
//! [`WebhooksConfig::from_doc`] so that a missing or mistyped key falls back to the default
//! instead of failing.

use serde_json::Value;

use crate::doc::Doc;

/// The name a node goes by on a host (`webhooksd@host`), the one spelling the API's `node`,
/// the AMQP replies' `Node` and the `webhook_disabled` notice all use. The daemon reads the
/// host's name; libraries used alone default to `node_name("localhost")`.
pub fn node_name(host: &str) -> String {
    format!("webhooksd@{host}")
}

/// The object types the `object` module offers by default.
pub const DEFAULT_OBJECT_TYPES: &[&str] = &[
    "account",
    "callflow",
    "device",
    "faxbox",
    "media",
    "user",
    "vmbox",
    "fax",
    "mailbox_message",
    "call_recording",
];

/// System-wide webhooks settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhooksConfig {
    /// Failures within the window that disable a hook (KAZOO: `attempt_failure_count`).
    pub attempt_failure_count: u32,
    /// The failure window, in milliseconds (KAZOO: `attempt_failure_expiry_ms`).
    pub attempt_failure_expiry_ms: u64,
    pub connect_timeout_ms: u64,
    /// Whole-request timeout; KAZOO reads no such key and waits forever (a bug we fix).
    pub request_timeout_ms: u64,
    pub disable_disabler: bool,
    pub log_successful_attempts: bool,
    pub object_types: Vec<String>,
    /// How long attempts are kept, in days (KAZOO keeps them as long as the monthly database).
    pub attempts_retention_days: u32,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            attempt_failure_count: 6,
            attempt_failure_expiry_ms: 60_000,
            connect_timeout_ms: 10_000,
            request_timeout_ms: 10_000,
            disable_disabler: false,
            log_successful_attempts: false,
            object_types: DEFAULT_OBJECT_TYPES.iter().map(|s| s.to_string()).collect(),
            attempts_retention_days: 31,
        }
    }
}

impl WebhooksConfig {
    /// Reads the system document, taking the default for every absent or mistyped key.
    pub fn from_doc(doc: Option<&Doc>) -> Self {
        let d = WebhooksConfig::default();
        let Some(doc) = doc else { return d };
        let uint = |k: &str| doc.get(k).and_then(Value::as_u64);
        WebhooksConfig {
            attempt_failure_count: uint("attempt_failure_count")
                .map(|v| v as u32)
                .unwrap_or(d.attempt_failure_count),
            attempt_failure_expiry_ms: uint("attempt_failure_expiry_ms")
                .unwrap_or(d.attempt_failure_expiry_ms),
            connect_timeout_ms: uint("connect_timeout_ms").unwrap_or(d.connect_timeout_ms),
            request_timeout_ms: uint("request_timeout_ms").unwrap_or(d.request_timeout_ms),
            disable_disabler: doc.bool("disable_disabler").unwrap_or(d.disable_disabler),
            log_successful_attempts: doc
                .bool("log_successful_attempts")
                .unwrap_or(d.log_successful_attempts),
            object_types: doc
                .get("object_types")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or(d.object_types),
            attempts_retention_days: uint("attempts_retention_days")
                .map(|v| v as u32)
                .unwrap_or(d.attempts_retention_days),
        }
    }
}

/// The create-time refusal list for hook uris (KAZOO's `kazoo_web.client.blacklist`).
#[derive(Debug, Clone, PartialEq)]
pub struct UriBlacklist {
    /// Host names refused exactly (lower-cased match).
    pub hosts: Vec<String>,
    /// Networks an IP-literal host must not fall in.
    pub cidrs: Vec<ipnet::IpNet>,
}

impl Default for UriBlacklist {
    fn default() -> Self {
        UriBlacklist {
            hosts: vec!["localhost".into()],
            cidrs: vec![
                "127.0.0.1/32".parse().expect("valid cidr"),
                "0.0.0.0/32".parse().expect("valid cidr"),
            ],
        }
    }
}

impl UriBlacklist {
    /// No refusals at all (tests and local development aim hooks at 127.0.0.1).
    pub fn none() -> Self {
        UriBlacklist {
            hosts: vec![],
            cidrs: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_or_mistyped_keys_take_defaults() {
        let doc = Doc::from_value(
            json!({"attempt_failure_count": "seven", "log_successful_attempts": true}),
        )
        .unwrap();
        let c = WebhooksConfig::from_doc(Some(&doc));
        assert_eq!(c.attempt_failure_count, 6);
        assert!(c.log_successful_attempts);
        assert_eq!(c.attempt_failure_expiry_ms, 60_000);
        assert_eq!(WebhooksConfig::from_doc(None), WebhooksConfig::default());
    }
}
