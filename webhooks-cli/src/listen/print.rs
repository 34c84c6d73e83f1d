//! One request as `webhooks listen` prints it.
//!
//! A block is the request line (`#<n> <time> METHOD /path?query`), the headers sorted by
//! name, the signature's verdict when there is a secret, and the body decoded for a person:
//! KAZOO's form bodies and GET query strings (nested keys like `custom_data[foo]`, unreadable
//! percent-encoded) as `key = value` pairs, JSON pretty-printed, anything else as text.
//! Section titles start at the margin, their content is indented, and every line but the last
//! has something on it: the one empty line ends the block, so output splits into requests.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use webhooks_core::signature::{self, SigningSecret, DEFAULT_TOLERANCE_SECS};

/// Under a section title.
const INDENT: &str = "  ";

/// A request as it arrived, and what it was answered.
pub(super) struct Arrival<'a> {
    pub number: u64,
    /// Unix seconds when it arrived: printed, and the clock its signature's timestamp is held to.
    pub now: i64,
    pub parts: &'a Parts,
    /// The body, or why it was not read.
    pub body: Result<&'a [u8], &'a str>,
    pub answered: StatusCode,
}

impl Arrival<'_> {
    /// The block, ending with its empty line.
    pub fn render(&self, secret: Option<&SigningSecret>) -> String {
        let mut block = String::new();
        let target = self
            .parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str());
        let (number, method) = (self.number, &self.parts.method);
        let title = format!("#{number} {} {method} {target}", clock(self.now));
        push_text(&mut block, "", &title);
        self.push_headers(&mut block);
        if let Some(secret) = secret {
            let verdict = match self.verify(secret) {
                Ok(()) => "verified".to_owned(),
                Err(why) => why,
            };
            push_text(&mut block, "", &format!("signature: {verdict}"));
        }
        self.push_body(&mut block);
        block.push('\n');
        block
    }

    fn push_headers(&self, block: &mut String) {
        let mut headers: Vec<_> = self.parts.headers.iter().collect();
        // Stable: repeated headers keep the order they came in.
        headers.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        push_text(block, "", "headers:");
        for (name, value) in headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            push_text(block, INDENT, &format!("{name}: {value}"));
        }
    }

    /// Checks the Standard Webhooks headers as a receiver would; `Err` is the printed verdict.
    fn verify(&self, secret: &SigningSecret) -> Result<(), String> {
        let headers = &self.parts.headers;
        if !headers.contains_key("webhook-signature") {
            return Err("missing (no webhook-signature header)".to_owned());
        }
        let invalid = |why: String| format!("INVALID ({why})");
        let body = self
            .body
            .map_err(|_| "not checked (the body was not read)".to_owned())?;
        let signatures = text(headers, "webhook-signature").map_err(invalid)?;
        let id = text(headers, "webhook-id").map_err(invalid)?;
        let timestamp = text(headers, "webhook-timestamp").map_err(invalid)?;
        let timestamp: i64 = timestamp.parse().map_err(|_| {
            invalid(format!(
                "webhook-timestamp {timestamp:?} is not unix seconds"
            ))
        })?;
        let tolerance = DEFAULT_TOLERANCE_SECS;
        signature::verify(secret, signatures, id, timestamp, body, self.now, tolerance)
            .map_err(|e| invalid(e.to_string()))
    }

    fn push_body(&self, block: &mut String) {
        let body = match self.body {
            Ok(body) => body,
            Err(why) => {
                let line = format!("(body not read: {why}; answered {})", self.answered);
                return push_text(block, "", &line);
            }
        };
        if body.is_empty() {
            // KAZOO's GET hooks carry their payload in the query string.
            match self.parts.uri.query().filter(|q| !q.is_empty()) {
                Some(query) => {
                    push_text(block, "", "query:");
                    push_pairs(block, query.as_bytes());
                }
                None => push_text(block, "", "(empty body)"),
            }
            return;
        }
        let content_type = self
            .parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        match content_type.as_deref() {
            Some("application/x-www-form-urlencoded") => {
                push_text(block, "", "form body:");
                push_pairs(block, body);
            }
            Some(json) if json == "application/json" || json.ends_with("+json") => {
                match serde_json::from_slice::<serde_json::Value>(body) {
                    Ok(value) => {
                        push_text(block, "", "json body:");
                        let pretty = serde_json::to_string_pretty(&value).unwrap_or_default();
                        push_text(block, INDENT, &pretty);
                    }
                    Err(e) => push_raw(block, &format!("{json}, does not parse: {e}"), body),
                }
            }
            Some(other) => push_raw(block, other, body),
            None => push_raw(block, "no content-type", body),
        }
    }
}

/// A header's value as text, or why not.
fn text<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, String> {
    headers
        .get(name)
        .ok_or_else(|| format!("no {name} header"))?
        .to_str()
        .map_err(|_| format!("{name} is not text"))
}

/// Form or query pairs, percent-decoded (and `+` as space) as KAZOO encoded them.
fn push_pairs(block: &mut String, encoded: &[u8]) {
    for (key, value) in url::form_urlencoded::parse(encoded) {
        push_text(block, INDENT, &format!("{key} = {value}"));
    }
}

fn push_raw(block: &mut String, what: &str, body: &[u8]) {
    push_text(block, "", &format!("body ({what}, {} bytes):", body.len()));
    push_text(block, INDENT, &String::from_utf8_lossy(body));
}

/// Appends `text` line by line after `indent`. Control characters are escaped: they would
/// drive the terminal rather than show what was sent (and a bare `\r` would hide a line).
fn push_text(block: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        block.push_str(indent);
        for c in line.chars() {
            if c.is_control() && c != '\t' {
                block.extend(c.escape_default());
            } else {
                block.push(c);
            }
        }
        block.push('\n');
    }
}

/// `HH:MM:SS UTC`: enough to see the spacing of retries, with no time zone database.
fn clock(unix: i64) -> String {
    let secs = unix.rem_euclid(86_400);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02} UTC")
}

pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    const NOW: i64 = 1_700_000_000;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).expect("request").into_parts().0
    }

    fn render(parts: &Parts, body: &[u8], secret: Option<&SigningSecret>) -> String {
        let arrival = Arrival {
            number: 1,
            now: NOW,
            parts,
            body: Ok(body),
            answered: StatusCode::OK,
        };
        arrival.render(secret)
    }

    #[test]
    fn a_get_hooks_query_string_is_decoded_like_a_form() {
        let get = parts(
            "GET",
            "/hook?account_id=abc&custom_data%5Bfoo%5D=a+b%21",
            &[],
        );
        let block = render(&get, b"", None);
        assert!(
            block.starts_with("#1 22:13:20 UTC GET /hook?account_id"),
            "{block}"
        );
        assert!(block.contains("query:\n  account_id = abc\n  custom_data[foo] = a b!\n"));
    }

    #[test]
    fn text_with_empty_lines_and_escapes_still_ends_the_block_once() {
        let post = parts("POST", "/", &[("content-type", "text/plain")]);
        let block = render(&post, b"one\n\ntwo\x1b[2J\r", None);
        assert!(block.contains("body (text/plain, 13 bytes):\n  one\n  \n  two\\u{1b}[2J\\r\n"));
        assert_eq!(block.matches("\n\n").count(), 1, "{block}");
        assert!(block.ends_with("\n\n"));
    }

    #[test]
    fn an_empty_body_and_unparsable_json_say_so() {
        let block = render(&parts("DELETE", "/x", &[]), b"", None);
        assert!(block.contains("(empty body)\n"), "{block}");
        let json = parts("POST", "/", &[("content-type", "application/json")]);
        let block = render(&json, b"{not json", None);
        assert!(
            block.contains("body (application/json, does not parse"),
            "{block}"
        );
        assert!(block.contains("\n  {not json\n"), "{block}");
    }

    #[test]
    fn a_stale_or_half_signed_request_is_invalid_with_the_reason() {
        let secret = SigningSecret::generate();
        let old = NOW - 3600;
        let signature = secret.sign("msg_1", old, b"x");
        let old_text = old.to_string();
        let stale = [
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", old_text.as_str()),
            ("webhook-signature", signature.as_str()),
        ];
        let block = render(&parts("POST", "/", &stale), b"x", Some(&secret));
        assert!(block.contains("signature: INVALID (the timestamp is more than 300 s from now)"));
        let no_id = parts("POST", "/", &stale[1..]);
        let block = render(&no_id, b"x", Some(&secret));
        assert!(
            block.contains("signature: INVALID (no webhook-id header)"),
            "{block}"
        );
    }
}
