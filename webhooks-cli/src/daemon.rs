//! The running daemon's API, for the commands whose answer only a daemon has: failure counts
//! (held in the nodes' memory), attempts, replays and triggered events.
//!
//! The CLI logs in as the master account (`PUT /v2/api_auth` with its api key) and sends
//! crossbar requests with the token it gets. The key comes from `--api-key`, else from the
//! store, where the daemon keeps it: on the daemon's own machine nothing has to be typed.
//! Every failure is one line naming the daemon: unreachable, key refused, or the daemon's
//! own error message.

use reqwest::Method;
use serde_json::{json, Value};

use crate::{CliError, Options};

/// A logged-in connection to one daemon.
pub struct Daemon {
    api: String,
    http: reqwest::Client,
    token: String,
}

impl Daemon {
    /// Logs in to `options.api` with the master account's key.
    pub async fn connect(options: &Options) -> Result<Daemon, CliError> {
        let key = match &options.api_key {
            Some(key) => key.clone(),
            None => {
                let opened = crate::open(options).await?;
                crate::master_api_key(opened.store())
                    .await?
                    .ok_or(CliError::NoKey)?
            }
        };
        let api = options.api.trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| unreachable(&api, &e))?;
        let mut daemon = Daemon {
            api,
            http,
            token: String::new(),
        };
        let body = json!({"data": {"api_key": key}});
        match daemon.call(Method::PUT, "/v2/api_auth", Some(body)).await {
            Ok(reply) => {
                daemon.token = reply["auth_token"].as_str().unwrap_or_default().to_owned();
                Ok(daemon)
            }
            Err(CliError::Api { status: 401, .. }) => Err(CliError::BadKey(daemon.api)),
            Err(e) => Err(e),
        }
    }

    /// `GET`s a path; the envelope's `data`.
    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        Ok(self.call(Method::GET, path, None).await?["data"].take())
    }

    /// Every item of a paginated listing, following `next_start_key` page by page.
    pub async fn get_all(&self, path: &str) -> Result<Vec<Value>, CliError> {
        let mut items = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let page = match &start {
                None => self.call(Method::GET, path, None).await?,
                Some(key) => {
                    let key = form_encode(key);
                    let paged = format!("{path}{sep}start_key={key}");
                    self.call(Method::GET, &paged, None).await?
                }
            };
            if let Some(page_items) = page["data"].as_array() {
                items.extend(page_items.iter().cloned());
            }
            match page["next_start_key"].as_str() {
                Some(next) if !next.is_empty() && Some(next) != start.as_deref() => {
                    start = Some(next.to_owned())
                }
                _ => return Ok(items),
            }
        }
    }

    /// Sends a request with `data` as the envelope's `data`; the answer's `data`.
    pub async fn send(&self, method: Method, path: &str, data: Value) -> Result<Value, CliError> {
        let body = json!({ "data": data });
        Ok(self.call(method, path, Some(body)).await?["data"].take())
    }

    /// `DELETE`s a path; the envelope's `data`.
    pub async fn delete(&self, path: &str) -> Result<Value, CliError> {
        Ok(self.call(Method::DELETE, path, None).await?["data"].take())
    }

    /// Posts raw JSON (not wrapped in `data`), as `POST /v2/events` takes it.
    pub async fn post_raw(&self, path: &str, body: Value) -> Result<Value, CliError> {
        Ok(self.call(Method::POST, path, Some(body)).await?["data"].take())
    }

    /// One request; the whole envelope when the status is 2xx, else the daemon's message.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        let mut request = self.http.request(method, format!("{}{path}", self.api));
        if !self.token.is_empty() {
            request = request.header("X-Auth-Token", &self.token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| unreachable(&self.api, &e))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| unreachable(&self.api, &e))?;
        let envelope: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(envelope);
        }
        Err(CliError::Api {
            status,
            message: error_message(&envelope, &text),
        })
    }
}

/// A query value, percent-encoded but for the characters a query carries as they are.
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Crossbar's error envelope in one line: its `message`, then what `data` says about it.
fn error_message(envelope: &Value, raw: &str) -> String {
    let message = envelope["message"].as_str().unwrap_or_default();
    match &envelope["data"] {
        Value::Null => {
            if message.is_empty() {
                raw.chars().take(200).collect()
            } else {
                message.to_owned()
            }
        }
        Value::Object(data) if data.len() == 1 && data.contains_key("message") => {
            format!(
                "{message}: {}",
                data["message"].as_str().unwrap_or_default()
            )
        }
        data => format!("{message}: {data}"),
    }
}

fn unreachable(api: &str, e: &reqwest::Error) -> CliError {
    // reqwest's top-level text ("error sending request") hides the reason; its source says
    // it (connection refused, timed out).
    let mut why = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        why = s.to_string();
        source = s.source();
    }
    CliError::Unreachable {
        api: api.to_owned(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossbar_errors_read_as_one_line() {
        let e = json!({"message": "invalid data", "data": {"webhook_id": {"not_found": {"message": "no such delivery"}}}});
        assert_eq!(
            error_message(&e, ""),
            r#"invalid data: {"webhook_id":{"not_found":{"message":"no such delivery"}}}"#
        );
        let e = json!({"message": "forbidden", "data": {"message": "not allowed"}});
        assert_eq!(error_message(&e, ""), "forbidden: not allowed");
        assert_eq!(error_message(&Value::Null, "plain text"), "plain text");
    }
}
