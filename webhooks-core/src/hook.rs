//! The in-memory hook record (spec §2.2): what a stored webhook document becomes when the hook
//! table loads it. Delivery reads only this, never the raw document.

use std::fmt;

use serde_json::{Map, Value};

use crate::doc::{Doc, Revision};
use crate::ids::AccountId;
use crate::retry::RetrySchedule;

/// The HTTP method a hook fires with. KAZOO accepts lower case only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpVerb {
    Get,
    Post,
    Put,
}

impl HttpVerb {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "get" => Some(HttpVerb::Get),
            "post" => Some(HttpVerb::Post),
            "put" => Some(HttpVerb::Put),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HttpVerb::Get => "get",
            HttpVerb::Post => "post",
            HttpVerb::Put => "put",
        }
    }
}

impl fmt::Display for HttpVerb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body encoding for POST/PUT. `form-data` is KAZOO's name for url-encoded forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyFormat {
    FormData,
    Json,
}

impl BodyFormat {
    /// Case-insensitive; anything unknown falls back to `form-data` as KAZOO does at load.
    pub fn parse_lenient(s: &str) -> Self {
        if s.eq_ignore_ascii_case("json") {
            BodyFormat::Json
        } else {
            BodyFormat::FormData
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BodyFormat::FormData => "form-data",
            BodyFormat::Json => "json",
        }
    }
}

/// Why a stored document could not become a hook (logged and skipped at load).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error("document has no _id")]
    NoId,
    #[error("document has no valid pvt_account_id")]
    NoAccount,
    #[error("document has no uri")]
    NoUri,
    #[error("unknown hook event {0:?}")]
    UnknownEvent(String),
    #[error("unsupported http_verb {0:?}")]
    BadVerb(String),
}

/// A loaded, enabled webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// The webhook document id.
    pub id: String,
    /// The document revision this hook was loaded from (`None` for a callflow's ad-hoc hook).
    pub rev: Option<Revision>,
    /// The owner account.
    pub account_id: AccountId,
    pub name: String,
    pub uri: String,
    pub http_verb: HttpVerb,
    pub format: BodyFormat,
    /// The hook name as stored (`channel_create`, `object`, `all`, ...), lower case.
    pub event: String,
    /// Total number of tries, clamped to 1..=5 as KAZOO does at load.
    pub retries: u8,
    pub include_subaccounts: bool,
    pub include_internal_legs: bool,
    pub custom_data: Option<Map<String, Value>>,
    /// The undocumented payload filter (spec §6.2): present only when a non-empty object.
    pub modifiers: Option<Map<String, Value>>,
    /// `retry_schedule`: KAZOO's (the default) or exponential (ours; KAZOO ignores the field).
    pub retry_schedule: RetrySchedule,
    /// `rate_limit`: requests per second at most to this hook (ours; KAZOO ignores the field).
    /// Deliveries over it wait; they are neither dropped nor counted as failures.
    pub rate_limit: Option<std::num::NonZeroU32>,
    /// Its Standard Webhooks secrets (private fields; `None`: sent unsigned, as KAZOO sends).
    pub signing: Option<crate::signature::Signing>,
    /// `custom_request_headers` (what Monster UI 5.5 writes): sent with every request, after
    /// the engine's own headers. Validated when saved (`validate.rs`); string values only.
    pub custom_headers: Vec<(String, String)>,
}

impl Hook {
    /// Converts a stored document. `is_available` says whether a hook name belongs to a
    /// registered module; `all` is always accepted.
    pub fn from_doc(doc: &Doc, is_available: impl Fn(&str) -> bool) -> Result<Hook, HookError> {
        let id = doc.id().ok_or(HookError::NoId)?.to_owned();
        let account_id = doc
            .account_id()
            .and_then(|a| AccountId::parse(a).ok())
            .ok_or(HookError::NoAccount)?;
        let uri = doc.str("uri").ok_or(HookError::NoUri)?.to_owned();
        let event = doc.str("hook").unwrap_or_default().to_ascii_lowercase();
        if event != "all" && !is_available(&event) {
            return Err(HookError::UnknownEvent(event));
        }
        let verb = doc.str("http_verb").unwrap_or("post");
        let http_verb = HttpVerb::parse(verb).ok_or_else(|| HookError::BadVerb(verb.to_owned()))?;
        let retries = doc.i64("retries").unwrap_or(2).clamp(1, 5) as u8;
        Ok(Hook {
            id,
            rev: doc.revision(),
            account_id,
            name: doc.str("name").unwrap_or_default().to_owned(),
            uri,
            http_verb,
            format: doc
                .str("format")
                .map(BodyFormat::parse_lenient)
                .unwrap_or(BodyFormat::FormData),
            event,
            retries,
            include_subaccounts: doc.bool("include_subaccounts").unwrap_or(false),
            include_internal_legs: doc.bool("include_internal_legs").unwrap_or(true),
            custom_data: doc.get("custom_data").and_then(Value::as_object).cloned(),
            modifiers: doc
                .get("modifiers")
                .and_then(Value::as_object)
                .filter(|m| !m.is_empty())
                .cloned(),
            retry_schedule: RetrySchedule::parse(doc.str("retry_schedule")),
            rate_limit: doc
                .i64("rate_limit")
                .and_then(|n| u32::try_from(n).ok())
                .and_then(std::num::NonZeroU32::new),
            signing: crate::signature::Signing::from_doc(doc),
            custom_headers: doc
                .get("custom_request_headers")
                .and_then(Value::as_object)
                .map(|headers| {
                    headers
                        .iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// Where and how requests go: what a failure count is about. A change to any of these
    /// starts the count over; a new name or `custom_data` does not.
    pub fn same_target(&self, other: &Hook) -> bool {
        (&self.uri, self.http_verb, self.format) == (&other.uri, other.http_verb, other.format)
    }

    /// KAZOO's internal event name: channel hooks upper-cased, everything else as stored.
    /// Attempt documents record this (`hook_event: "CHANNEL_CREATE"`).
    pub fn internal_event(&self) -> String {
        internal_event(&self.event)
    }

    /// Tries in all, by the hook's schedule.
    pub fn max_tries(&self) -> u8 {
        self.retry_schedule.max_tries(self.retries)
    }
}

/// `channel_create` → `CHANNEL_CREATE`; other names unchanged.
pub fn internal_event(hook: &str) -> String {
    match hook {
        "channel_create" | "channel_answer" | "channel_bridge" | "channel_destroy" => {
            hook.to_ascii_uppercase()
        }
        other => other.to_owned(),
    }
}

/// Whether a stored webhook document counts as enabled (missing `enabled` means true).
pub fn doc_is_enabled(doc: &Doc) -> bool {
    doc.bool("enabled") != Some(false)
}

/// The auto-disable marker: `enabled: false` and `pvt_disabled_message` set.
pub fn doc_is_auto_disabled(doc: &Doc) -> bool {
    !doc_is_enabled(doc) && doc.get("pvt_disabled_message").is_some()
}

/// The message the disabler writes, as KAZOO writes it.
pub const AUTO_DISABLED_MESSAGE: &str = "too many failed attempts";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Doc {
        Doc::from_value(v).unwrap()
    }

    #[test]
    fn from_doc_applies_kazoo_defaults_and_clamps_retries() {
        let d = doc(
            json!({"_id":"h1","pvt_account_id":"0123456789abcdef0123456789abcdef",
            "uri":"http://x/y","hook":"Channel_Create","retries":0}),
        );
        let h = Hook::from_doc(&d, |e| e == "channel_create").unwrap();
        assert_eq!(h.http_verb, HttpVerb::Post);
        assert_eq!(h.format, BodyFormat::FormData);
        assert_eq!(h.retries, 1);
        assert!(h.include_internal_legs);
        assert_eq!(h.internal_event(), "CHANNEL_CREATE");
        let d = doc(
            json!({"_id":"h1","pvt_account_id":"0123456789abcdef0123456789abcdef",
            "uri":"http://x/y","hook":"all","retries":9,"format":"JSON","modifiers":{}}),
        );
        let h = Hook::from_doc(&d, |_| false).unwrap();
        assert_eq!(h.retries, 5);
        assert_eq!(h.format, BodyFormat::Json);
        assert_eq!(h.modifiers, None);
    }

    #[test]
    fn from_doc_refuses_unknown_events_and_verbs() {
        let base = json!({"_id":"h1","pvt_account_id":"0123456789abcdef0123456789abcdef","uri":"http://x"});
        let mut d = doc(base.clone());
        d.set("hook", "nope");
        assert_eq!(
            Hook::from_doc(&d, |_| false),
            Err(HookError::UnknownEvent("nope".into()))
        );
        let mut d = doc(base);
        d.set("hook", "all");
        d.set("http_verb", "DELETE");
        assert!(matches!(
            Hook::from_doc(&d, |_| true),
            Err(HookError::BadVerb(_))
        ));
    }

    #[test]
    fn auto_disabled_needs_both_markers() {
        assert!(doc_is_auto_disabled(&doc(
            json!({"enabled":false,"pvt_disabled_message":"x"})
        )));
        assert!(!doc_is_auto_disabled(&doc(json!({"enabled":false}))));
        assert!(!doc_is_auto_disabled(&doc(
            json!({"pvt_disabled_message":"x"})
        )));
    }
}
