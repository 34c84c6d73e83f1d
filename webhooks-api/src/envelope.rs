//! Crossbar's response envelope, in one place.
//!
//! Handlers return a [`Reply`] or an [`ApiError`]; neither knows the request id or the auth
//! token. Both turn into a response that carries an [`Envelope`] extension and no body yet;
//! [`finish_envelope`], a middleware around every route, adds `request_id`, `auth_token`,
//! `timestamp`, `node`, `version` and writes the JSON. Responses axum produces on its own
//! (unknown route, wrong method, oversized body) reach the same middleware without an
//! envelope and are turned into crossbar errors there, so no response escapes the format.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub data: Value,
    /// `_rev` for single documents; lists get an md5 of the data.
    pub revision: Option<String>,
    pub page: Option<Page>,
    /// Set on 201 Created: crossbar's `Location` header holds the new id.
    pub location: Option<String>,
    /// A token this reply issues (api_auth); otherwise the request's token is echoed.
    pub issued_token: Option<String>,
}

/// Pagination keys of a listing.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub page_size: usize,
    pub start_key: Option<Value>,
    pub next_start_key: Option<Value>,
}

impl Reply {
    pub fn ok(data: Value) -> Self {
        Reply {
            status: StatusCode::OK,
            data,
            revision: None,
            page: None,
            location: None,
            issued_token: None,
        }
    }

    /// A single document: its `_rev` is the revision (and the ETag).
    pub fn doc(data: Value, rev: Option<&str>) -> Self {
        Reply {
            revision: rev.map(str::to_owned),
            ..Reply::ok(data)
        }
    }

    pub fn created(data: Value, id: &str, rev: Option<&str>) -> Self {
        Reply {
            status: StatusCode::CREATED,
            location: Some(id.to_owned()),
            ..Reply::doc(data, rev)
        }
    }

    /// A listing with crossbar's paging keys.
    pub fn page(
        items: Vec<Value>,
        start_key: Option<Value>,
        next_start_key: Option<Value>,
    ) -> Self {
        let page = Page {
            page_size: items.len(),
            start_key,
            next_start_key,
        };
        Reply {
            page: Some(page),
            ..Reply::ok(Value::Array(items))
        }
    }

    /// A listing without paging keys but with `page_size` (catalogue, samples).
    pub fn list(items: Vec<Value>) -> Self {
        let page = Page {
            page_size: items.len(),
            ..Page::default()
        };
        Reply {
            page: Some(page),
            ..Reply::ok(Value::Array(items))
        }
    }
}

/// A crossbar error: HTTP status, `message`, and `data`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub data: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>, data: Value) -> Self {
        ApiError {
            status,
            message: message.into(),
            data,
        }
    }

    /// 400 `validation error` with per-field codes.
    pub fn validation(data: Value) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "validation error", data)
    }

    /// 404 `bad identifier` for a missing, deleted or foreign document.
    pub fn bad_identifier(id: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "bad identifier",
            json!({"cause": id, "message": "bad identifier"}),
        )
    }

    /// 404 for an account id in a URL that is not 32 lowercase hex characters.
    pub fn bad_account_id(id: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "bad identifier",
            json!({"message": format!("invalid account_id '{id}'")}),
        )
    }

    /// Crossbar's `add_system_error(Atom)`: `message` is the atom, `data.message` the text.
    fn system(status: StatusCode, atom: &str, text: &str) -> Self {
        ApiError::new(status, atom, json!({"message": text}))
    }

    pub fn unauthorized() -> Self {
        ApiError::system(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "invalid credentials",
        )
    }

    /// 503 for a route that needs the delivery engine on an API served without one;
    /// `what` says what it cannot do ("sends no deliveries").
    pub fn no_engine(what: &str) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no delivery engine",
            json!({"message": format!("this server {what}: it runs no delivery engine")}),
        )
    }

    pub fn forbidden() -> Self {
        ApiError::system(StatusCode::FORBIDDEN, "forbidden", "forbidden")
    }

    pub fn not_found() -> Self {
        ApiError::system(StatusCode::NOT_FOUND, "not_found", "not found")
    }

    pub fn method_not_allowed() -> Self {
        ApiError::system(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_method",
            "method not allowed",
        )
    }

    /// A body that does not parse: crossbar reports it as a validation error of `json`.
    pub fn invalid_json(detail: impl Into<String>) -> Self {
        ApiError::validation(
            json!({"json": {"invalid": {"message": detail.into(), "target": "body"}}}),
        )
    }

    /// A body over the limit. Crossbar means to send 413 (its code is overwritten to 400 by a
    /// bug); we send the 413 with crossbar's body.
    pub fn too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "validation error",
            json!({"file": {"maxSize": {
                "message": format!("Payload or Files must not be more than {limit} bytes"),
                "target": limit}}}),
        )
    }

    /// The request body did not arrive within the server's body deadline.
    pub fn body_timeout() -> Self {
        ApiError::system(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body did not arrive in time",
        )
    }

    pub fn conflict() -> Self {
        ApiError::system(
            StatusCode::CONFLICT,
            "datastore_conflict",
            "conflicting documents",
        )
    }

    pub fn datastore_fault() -> Self {
        ApiError::system(
            StatusCode::SERVICE_UNAVAILABLE,
            "datastore_fault",
            "datastore fatal error",
        )
    }
}

impl From<webhooks_core::validate::ValidationErrors> for ApiError {
    fn from(e: webhooks_core::validate::ValidationErrors) -> Self {
        ApiError::validation(e.into_value())
    }
}

impl From<webhooks_core::StoreError> for ApiError {
    fn from(e: webhooks_core::StoreError) -> Self {
        match e {
            webhooks_core::StoreError::Conflict => ApiError::conflict(),
            webhooks_core::StoreError::NotFound => ApiError::not_found(),
            webhooks_core::StoreError::Backend(msg) => {
                tracing::error!(error = %msg, "datastore fault");
                ApiError::datastore_fault()
            }
            // The only store tokens clients hand the API are paging `start_key`s, taken back
            // unchanged from an earlier `next_start_key`; the store alone can tell a bad one.
            webhooks_core::StoreError::BadPosition(token) => ApiError::validation(json!({
                "start_key": {"type": {"message": "invalid start_key", "value": token}}
            })),
        }
    }
}

/// What a handler answered, waiting for the envelope middleware.
#[derive(Debug, Clone)]
pub enum Envelope {
    Success(Reply),
    Error(ApiError),
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut resp = self.status.into_response();
        resp.extensions_mut().insert(Envelope::Success(self));
        resp
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = self.status.into_response();
        resp.extensions_mut().insert(Envelope::Error(self));
        resp
    }
}

pub type ApiResult = Result<Reply, ApiError>;

/// Static facts the envelope reports.
#[derive(Debug, Clone)]
pub struct EnvelopeInfo {
    pub node: String,
    pub version: String,
    /// The body limit, named in a 413 axum raises on its own.
    pub max_body_bytes: usize,
}

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The middleware that writes every response body in crossbar's envelope.
pub async fn finish_envelope(info: EnvelopeInfo, req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let request_token = req
        .headers()
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let mut resp = next.run(req).await;
    let envelope = match resp.extensions_mut().remove::<Envelope>() {
        Some(e) => e,
        None => match resp.status() {
            // Axum's own answers: turn them into crossbar errors.
            StatusCode::NOT_FOUND => Envelope::Error(ApiError::not_found()),
            StatusCode::METHOD_NOT_ALLOWED => Envelope::Error(ApiError::method_not_allowed()),
            StatusCode::PAYLOAD_TOO_LARGE => {
                Envelope::Error(ApiError::too_large(info.max_body_bytes))
            }
            // Any other rejection of axum's (a path segment that is not UTF-8 after decoding,
            // a query string that does not decode) is plain text: keep its status and words.
            status if status.is_client_error() => {
                let text = axum::body::to_bytes(std::mem::take(resp.body_mut()), 4096)
                    .await
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                Envelope::Error(ApiError::new(
                    status,
                    status.canonical_reason().unwrap_or("bad request"),
                    json!({"message": text}),
                ))
            }
            _ => return resp,
        },
    };
    let mut body = Map::new();
    let (status, token) = match envelope {
        Envelope::Success(reply) => {
            let revision = reply
                .revision
                .clone()
                .unwrap_or_else(|| md5_hex(&reply.data));
            body.insert("data".into(), reply.data);
            if let Some(page) = reply.page {
                body.insert("page_size".into(), json!(page.page_size));
                if let Some(k) = page.start_key {
                    body.insert("start_key".into(), k);
                }
                if let Some(k) = page.next_start_key {
                    body.insert("next_start_key".into(), k);
                }
            }
            body.insert("revision".into(), Value::String(revision.clone()));
            body.insert("status".into(), json!("success"));
            if reply.status == StatusCode::OK && reply.revision.is_some() {
                if let Ok(v) = HeaderValue::from_str(&format!("\"{revision}\"")) {
                    resp.headers_mut().insert(header::ETAG, v);
                }
            }
            if let Some(loc) = reply
                .location
                .as_deref()
                .and_then(|l| HeaderValue::from_str(l).ok())
            {
                resp.headers_mut().insert(header::LOCATION, loc);
            }
            (reply.status, reply.issued_token.or(request_token))
        }
        Envelope::Error(err) => {
            body.insert("data".into(), err.data);
            body.insert("error".into(), json!(err.status.as_u16().to_string()));
            body.insert("message".into(), json!(err.message));
            body.insert("status".into(), json!("error"));
            (err.status, request_token)
        }
    };
    body.insert("request_id".into(), json!(request_id));
    if let Some(t) = &token {
        body.insert("auth_token".into(), json!(t));
    }
    body.insert("node".into(), json!(info.node));
    body.insert("timestamp".into(), json!(rfc3339_now()));
    // crossbar reports its version to authenticated callers only.
    if token.is_some() && status != StatusCode::UNAUTHORIZED {
        body.insert("version".into(), json!(info.version));
    }
    let bytes = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
    *resp.status_mut() = status;
    *resp.body_mut() = Body::from(bytes);
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.remove(header::CONTENT_LENGTH);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(X_REQUEST_ID.clone(), v);
    }
    resp
}

fn md5_hex(v: &Value) -> String {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    hex::encode(Md5::digest(&bytes))
}

/// `2024-01-01T00:00:00Z`, from the system clock (no date crate needed for one format).
pub fn rfc3339_now() -> String {
    let secs = webhooks_core::time::now_unix();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = webhooks_core::time::civil_date(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
