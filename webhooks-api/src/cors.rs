//! CORS, as crossbar does it: every response, errors included, carries the same
//! `access-control-*` headers, and a preflight `OPTIONS` is answered at once with no body.
//! Browser clients (Monster UI) are served from another origin than the API, so without this
//! every call they make fails before reaching a handler.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

const ALLOW_METHODS: &str = "OPTIONS, GET, POST, PUT, DELETE, PATCH";
const ALLOW_HEADERS: &str = "content-type, depth, user-agent, x-http-method-override, x-file-size, \
x-requested-with, if-modified-since, x-file-name, cache-control, x-auth-token, x-kazoo-cluster-id, if-match";
const EXPOSE_HEADERS: &str =
    "content-type, x-auth-token, x-request-id, x-kazoo-cluster-id, location, etag";

fn add_headers(headers: &mut HeaderMap) {
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    headers.insert(
        "access-control-allow-methods",
        HeaderValue::from_static(ALLOW_METHODS),
    );
    headers.insert(
        "access-control-allow-headers",
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    headers.insert(
        "access-control-expose-headers",
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    headers.insert("access-control-max-age", HeaderValue::from_static("86400"));
}

/// The middleware: answers preflights, decorates everything else.
pub async fn cors(req: Request, next: Next) -> Response {
    let mut resp = if req.method() == Method::OPTIONS {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::OK;
        r
    } else {
        next.run(req).await
    };
    add_headers(resp.headers_mut());
    resp
}
