//! From a module's [`Dispatch`] to an HTTP request, and from its outcome to an attempt
//! document: the part of delivery that is the same for every module and needs no I/O
//! (spec §6.2, §7, §2.3). The engine crate sends the requests and keeps the time.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::doc::Doc;
use crate::encode;
use crate::hook::{BodyFormat, Hook, HttpVerb};
use crate::module::Dispatch;

/// The undocumented `modifiers` filter (§6.2 step 1): for each key, a payload value that is
/// present must equal the scalar or be one of the list; an absent value or an empty list passes.
pub fn modifiers_pass(
    modifiers: Option<&Map<String, Value>>,
    payload: &Map<String, Value>,
) -> bool {
    let Some(mods) = modifiers else { return true };
    mods.iter().all(|(k, want)| {
        let Some(got) = payload.get(k) else {
            return true;
        };
        match want {
            Value::Array(list) => list.is_empty() || list.contains(got),
            scalar => scalar == got,
        }
    })
}

/// The payload a hook receives: `custom_data` (minus the `type`/`action` modifiers) merged over
/// the event's payload, then `cluster_id` (§6.2 steps 2-3).
pub fn final_payload(
    hook: &Hook,
    mut payload: Map<String, Value>,
    cluster_id: Option<&str>,
) -> Map<String, Value> {
    if let Some(custom) = &hook.custom_data {
        for (k, v) in custom {
            if k != "type" && k != "action" {
                payload.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(c) = cluster_id {
        payload.insert("cluster_id".into(), Value::String(c.to_owned()));
    }
    payload
}

/// An HTTP request ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: HttpVerb,
    pub url: String,
    /// Header names as sent; attempt documents lower-case them.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// One delivery of one event to one hook, with everything a retry needs.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub hook: Arc<Hook>,
    /// 10 hex characters, the same for every try of this delivery (KAZOO's `event_id`).
    pub event_id: String,
    /// The Standard Webhooks `webhook-id` (`msg_` and 32 hex digits), sent with every try and
    /// kept in its attempt documents: the same across retries and restarts, so a receiver can
    /// deduplicate. Derived from the event's content and the hook ([`webhook_id`]).
    pub webhook_id: String,
    /// Shared, not copied: the journal keeps the same request the sender sends.
    pub request: Arc<HttpRequest>,
    /// Tries made so far.
    pub tries: u8,
    /// Sent again on request (replay, recover, `replay.rs`): its success is recorded even when
    /// `log_successful_attempts` is off, so a later recovery knows it arrived.
    pub replay: bool,
}

impl Delivery {
    /// The request of a try sent at `now` (unix seconds) by a hook that signs: the request as
    /// built plus `webhook-timestamp` and `webhook-signature` (`signature.rs`). `None` for a
    /// hook without a secret, whose request is sent as built, exactly as KAZOO sends it.
    /// Signed per try, not once per delivery: a retry hours later carries a fresh timestamp.
    pub fn signed_request(&self, now: i64) -> Option<HttpRequest> {
        let signing = self.hook.signing.as_ref()?;
        let mut request = (*self.request).clone();
        let signature = crate::signature::signature_header(
            signing.secrets_at(now),
            &self.webhook_id,
            now,
            request.body.as_bytes(),
        );
        request
            .headers
            .push(("webhook-timestamp".into(), now.to_string()));
        request
            .headers
            .push(("webhook-signature".into(), signature));
        Some(request)
    }

    /// Builds the delivery of a dispatch, or `None` when the hook's modifiers filter it out.
    /// `event_key` identifies the event ([`event_key`]).
    pub fn from_dispatch(
        d: Dispatch,
        cluster_id: Option<&str>,
        event_id: String,
        event_key: u128,
    ) -> Option<Delivery> {
        if !modifiers_pass(d.hook.modifiers.as_ref(), &d.payload) {
            return None;
        }
        let payload = final_payload(&d.hook, d.payload, cluster_id);
        let webhook_id = webhook_id(event_key, &d.hook.id);
        let mut request = build_request(&d.hook, &payload);
        request
            .headers
            .push(("webhook-id".into(), webhook_id.clone()));
        Some(Delivery {
            hook: d.hook,
            event_id,
            webhook_id,
            request: Arc::new(request),
            tries: 0,
            replay: false,
        })
    }

    /// Tries left after the ones made (KAZOO's `retries` counts total tries; the exponential
    /// schedule has its own count).
    pub fn tries_left(&self) -> u8 {
        self.hook.max_tries().saturating_sub(self.tries)
    }
}

/// An event's identity: the xxh3-128 hash of its JSON. A message the broker delivers again
/// (its ack was lost in a crash) has the same content, so its deliveries get the same
/// `webhook-id`s and a receiver sees them as the repeats they are.
pub fn event_key(event: &crate::Event) -> u128 {
    let mut hasher = twox_hash::XxHash3_128::new();
    // Writing JSON into a hasher cannot fail.
    let _ = serde_json::to_writer(HashWriter(&mut hasher), &event.0);
    hasher.finish_128()
}

struct HashWriter<'a>(&'a mut twox_hash::XxHash3_128);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `webhook-id` of an event's delivery to a hook: `msg_` and 32 hex digits.
pub fn webhook_id(event_key: u128, hook_id: &str) -> String {
    let mut hasher = twox_hash::XxHash3_128::new();
    hasher.write(&event_key.to_le_bytes());
    hasher.write(hook_id.as_bytes());
    format!("msg_{:032x}", hasher.finish_128())
}

/// The request KAZOO would send (§7.1): GET with the payload as query string; POST/PUT with a
/// url-encoded form or pretty JSON; always `X-Hook-ID` and `X-Account-ID` (the hook's owner).
pub fn build_request(hook: &Hook, payload: &Map<String, Value>) -> HttpRequest {
    let mut headers = vec![
        ("X-Hook-ID".to_owned(), hook.id.clone()),
        ("X-Account-ID".to_owned(), hook.account_id.to_string()),
    ];
    let (url, body) = match (hook.http_verb, hook.format) {
        (HttpVerb::Get, _) => (
            encode::get_url(&hook.uri, &encode::querystring(payload)),
            String::new(),
        ),
        (_, BodyFormat::FormData) => {
            headers.push((
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ));
            (hook.uri.clone(), encode::querystring(payload))
        }
        (_, BodyFormat::Json) => {
            headers.push(("Content-Type".into(), "application/json".into()));
            (hook.uri.clone(), encode::json_body(payload))
        }
    };
    headers.extend(hook.custom_headers.iter().cloned());
    HttpRequest {
        method: hook.http_verb,
        url,
        headers,
        body,
    }
}

/// What came back from one try.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// No response: refused, unresolvable, timed out, reset ...; `error` is KAZOO-style text
    /// (`failed_connect: econnrefused`, `timeout`).
    Transport { error: String },
}

impl Outcome {
    /// Any 2xx is success. (KAZOO accepts 200 only, and 201 for PUT: a 204 receiver gets
    /// disabled there.)
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Response { status, .. } if (200..300).contains(status))
    }

    /// A response header's value (names compare without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        match self {
            Outcome::Response { headers, .. } => headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str()),
            Outcome::Transport { .. } => None,
        }
    }

    /// The response status, if there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Response { status, .. } => Some(*status),
            Outcome::Transport { .. } => None,
        }
    }

    /// Worth another try: transport errors (timeouts included), 429 and 5xx. Other 4xx and 3xx
    /// will not change by asking again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Outcome::Transport { .. } => true,
            Outcome::Response { status, .. } => *status == 429 || (500..600).contains(status),
        }
    }
}

fn lower_headers(headers: &[(String, String)]) -> Value {
    Value::Object(
        headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    Value::String(v.to_ascii_lowercase()),
                )
            })
            .collect(),
    )
}

/// KAZOO's monthly database name for an account, `account/xx/yy/rest-YYYYMM`.
pub fn modb_name(account: &crate::AccountId, unix_secs: i64) -> String {
    let (y, m) = crate::time::civil_from_days(unix_secs.div_euclid(86_400));
    format!("{}-{y:04}{m:02}", account.db_name())
}

/// Private attempt field (ours): true when no further try followed this failed one (it was
/// the delivery's last), false when a retry was scheduled. Recovery reads it (`replay.rs`).
pub const FINAL_TRY: &str = "pvt_final_try";
/// Private attempt field (ours) of a GET: the payload's query string, which `uri` leaves out.
pub const REQUEST_QUERY: &str = "pvt_req_query";

/// The attempt document of one try (§2.3). `tries_left_before` is KAZOO's R, the tries left
/// counting this one. The request's uri is recorded without the GET query string.
pub fn attempt_doc(d: &Delivery, outcome: &Outcome, tries_left_before: u8, now_unix: i64) -> Doc {
    let created = crate::time::unix_to_gregorian(now_unix);
    let mut m = Map::new();
    // Named once, here: a store that writes the document again (its first answer lost)
    // recognises it instead of keeping two.
    m.insert("_id".into(), json!(crate::ids::ordered_doc_id()));
    m.insert("hook_id".into(), json!(d.hook.id));
    m.insert("hook_event".into(), json!(d.hook.internal_event()));
    if let Some(cd) = &d.hook.custom_data {
        m.insert("custom_data".into(), Value::Object(cd.clone()));
    }
    m.insert("event_id".into(), json!(d.event_id));
    m.insert("webhook_id".into(), json!(d.webhook_id));
    m.insert("uri".into(), json!(d.hook.uri));
    m.insert("method".into(), json!(d.request.method.as_str()));
    m.insert("req_headers".into(), lower_headers(&d.request.headers));
    m.insert("req_body".into(), json!(d.request.body));
    if d.request.method == HttpVerb::Get {
        // `uri` is the hook's, without the payload: keep the payload's query so a replay can
        // send it again. `get_url` joined it with `?`, `&` or nothing, never starting a key.
        let query = (d.request.url.strip_prefix(d.hook.uri.as_str()))
            .map(|rest| rest.trim_start_matches(['?', '&']))
            .unwrap_or_default();
        m.insert(REQUEST_QUERY.into(), json!(query));
    }
    let left = |r: u8, minus: u8| -> Value {
        if r <= 1 {
            json!("retries exceeded")
        } else {
            json!(r - minus)
        }
    };
    match outcome {
        Outcome::Response {
            status,
            headers,
            body,
        } => {
            m.insert("resp_status_code".into(), json!(status.to_string()));
            m.insert("resp_headers".into(), lower_headers(headers));
            m.insert("resp_body".into(), json!(body));
            if outcome.is_success() {
                m.insert("result".into(), json!("success"));
            } else {
                m.insert("result".into(), json!("failure"));
                m.insert("reason".into(), json!("bad response code"));
                m.insert("try".into(), json!(tries_left_before));
                m.insert("retries_left".into(), left(tries_left_before, 1));
            }
        }
        Outcome::Transport { error } => {
            m.insert("result".into(), json!("failure"));
            m.insert("reason".into(), json!("kazoo http client error"));
            m.insert("client_error".into(), json!(error));
            m.insert("retries".into(), json!(tries_left_before));
            // KAZOO reports R here, not R-1 (§16.5); kept for the wire format.
            m.insert("retries_left".into(), left(tries_left_before, 0));
        }
    }
    m.insert("pvt_account_id".into(), json!(d.hook.account_id));
    m.insert(
        "pvt_account_db".into(),
        json!(modb_name(&d.hook.account_id, now_unix)),
    );
    m.insert("pvt_type".into(), json!("webhook_attempt"));
    m.insert("pvt_created".into(), json!(created));
    m.insert("pvt_modified".into(), json!(created));
    Doc(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AccountId;

    fn hook(verb: HttpVerb, format: BodyFormat, uri: &str) -> Hook {
        Hook {
            id: "h1".into(),
            rev: None,
            account_id: AccountId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            name: "n".into(),
            uri: uri.into(),
            http_verb: verb,
            format,
            event: "channel_create".into(),
            retries: 3,
            include_subaccounts: false,
            include_internal_legs: true,
            custom_data: Some(
                json!({"type":"x","action":"y","extra":"e","call_id":"override"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            modifiers: None,
            retry_schedule: Default::default(),
            rate_limit: None,
            signing: None,
            custom_headers: Vec::new(),
        }
    }

    fn payload() -> Map<String, Value> {
        json!({"call_id":"c1","hook_event":"channel_create"})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn custom_data_merges_without_modifiers_and_cluster_id_wins() {
        let h = hook(HttpVerb::Post, BodyFormat::FormData, "http://a/b");
        let p = final_payload(&h, payload(), Some("cl"));
        assert_eq!(
            Value::Object(p),
            json!({"call_id":"override","hook_event":"channel_create","extra":"e","cluster_id":"cl"})
        );
    }

    #[test]
    fn modifiers_filter() {
        let p = payload();
        let m = |v: Value| v.as_object().unwrap().clone();
        assert!(modifiers_pass(Some(&m(json!({"call_id":"c1"}))), &p));
        assert!(!modifiers_pass(Some(&m(json!({"call_id":"c2"}))), &p));
        assert!(modifiers_pass(Some(&m(json!({"call_id":["c2","c1"]}))), &p));
        assert!(modifiers_pass(Some(&m(json!({"call_id":[]}))), &p));
        assert!(modifiers_pass(Some(&m(json!({"absent":"x"}))), &p));
        assert!(!modifiers_pass(
            Some(&m(json!({"call_id":"c1","hook_event":["other"]}))),
            &p
        ));
    }

    #[test]
    fn requests_by_verb_and_format() {
        let p = json!({"a":"1 2"}).as_object().unwrap().clone();
        let r = build_request(&hook(HttpVerb::Get, BodyFormat::Json, "http://a/b?k=v"), &p);
        assert_eq!(r.url, "http://a/b?k=v&a=1+2");
        assert_eq!(r.body, "");
        assert_eq!(r.headers.len(), 2);
        let r = build_request(&hook(HttpVerb::Put, BodyFormat::FormData, "http://a/b"), &p);
        assert_eq!(r.body, "a=1+2");
        assert!(r.headers.contains(&(
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into()
        )));
        let r = build_request(&hook(HttpVerb::Post, BodyFormat::Json, "http://a/b"), &p);
        assert_eq!(r.body, "{\n  \"a\": \"1 2\"\n}");
        assert!(r.headers.contains(&(
            "X-Account-ID".into(),
            "0123456789abcdef0123456789abcdef".into()
        )));
    }

    #[test]
    fn outcomes_classify() {
        let resp = |s| Outcome::Response {
            status: s,
            headers: vec![],
            body: String::new(),
        };
        assert!(resp(204).is_success());
        assert!(!resp(302).is_success() && !resp(302).is_retryable());
        assert!(!resp(404).is_retryable());
        assert!(resp(429).is_retryable() && resp(503).is_retryable());
        assert!(Outcome::Transport {
            error: "timeout".into()
        }
        .is_retryable());
    }

    #[test]
    fn attempt_docs_follow_kazoo() {
        let h = Arc::new(hook(HttpVerb::Post, BodyFormat::FormData, "http://a/b"));
        let d = Delivery {
            hook: h.clone(),
            event_id: "0123456789".into(),
            webhook_id: webhook_id(7, &h.id),
            request: Arc::new(build_request(&h, &payload())),
            tries: 1,
            replay: false,
        };
        let fail = Outcome::Response {
            status: 500,
            headers: vec![("Server".into(), "X".into())],
            body: "no".into(),
        };
        let doc = attempt_doc(&d, &fail, 3, 1_704_067_200);
        assert_eq!(doc.str("resp_status_code"), Some("500"));
        assert_eq!(doc.get("retries_left"), Some(&json!(2)));
        assert_eq!(doc.get("try"), Some(&json!(3)));
        assert_eq!(doc.get("resp_headers"), Some(&json!({"server":"x"})));
        assert_eq!(doc.str("hook_event"), Some("CHANNEL_CREATE"));
        assert_eq!(
            doc.str("pvt_account_db"),
            Some("account/01/23/456789abcdef0123456789abcdef-202401")
        );
        assert_eq!(doc.i64("pvt_created"), Some(63_871_286_400));
        let t = attempt_doc(
            &d,
            &Outcome::Transport {
                error: "timeout".into(),
            },
            1,
            1_704_067_200,
        );
        assert_eq!(t.get("retries_left"), Some(&json!("retries exceeded")));
        assert_eq!(t.str("reason"), Some("kazoo http client error"));
        let ok = attempt_doc(
            &d,
            &Outcome::Response {
                status: 200,
                headers: vec![],
                body: String::new(),
            },
            3,
            0,
        );
        assert_eq!(ok.str("result"), Some("success"));
        assert!(ok.get("retries_left").is_none());
    }
}
