//! # webhooks-dashboard: the operator's dashboard in the browser
//!
//! A single page under `/dashboard` that logs in with an api key (`PUT /v2/api_auth`, as any
//! crossbar client) and then uses nothing but the public API and the websocket stream: the
//! account tree with hook counts and failure badges, an account's hooks, a hook's settings,
//! attempts and a chart of its last hour, and a live tail of events. Whatever it can do, curl
//! can do with the same token; it holds no privilege of its own and keeps no state here.
//!
//! The assets (`assets/`: `index.html`, `app.css` and a few ES modules) are compiled into the
//! binary with `include_str!`, so the daemon serves them with no files to install and no
//! build step: what is in the repository is what the browser runs. [`routes`] serves them
//! with a strict Content-Security-Policy (scripts and styles from this origin only, nothing
//! inline, connections to this origin and to websockets), and `no-cache`, so a browser
//! revalidates after an upgrade instead of running an old `app.js` against a new API.
//!
//! `GET /dashboard/config.json` tells the page the one thing it cannot learn from the API:
//! the port of the websocket listener ([`DashboardConfig`]), which the page joins to its own
//! host name.
//!
//! This crate depends on axum only; `webhooks-server` merges [`routes`] into the API's
//! listener. Start with [`routes`], then `assets/app.js`.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// What the page needs to know about the daemon serving it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DashboardConfig {
    /// The websocket listener's port (`--websocket-listen`), or `None` when it is off: the
    /// live tail then says so instead of connecting.
    pub websocket_port: Option<u16>,
}

/// Scripts, styles and images from this origin only and nothing inline; API calls to this
/// origin, the live tail to the websocket listener (another port, so any `ws:`/`wss:`).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const INDEX: &str = include_str!("../assets/index.html");

const JS: &str = "text/javascript; charset=utf-8";

/// Everything under `/dashboard/assets/`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../assets/app.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../assets/icon.svg"),
    },
    Asset {
        name: "app.js",
        content_type: JS,
        body: include_str!("../assets/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: JS,
        body: include_str!("../assets/api.js"),
    },
    Asset {
        name: "dom.js",
        content_type: JS,
        body: include_str!("../assets/dom.js"),
    },
    Asset {
        name: "chart.js",
        content_type: JS,
        body: include_str!("../assets/chart.js"),
    },
    Asset {
        name: "accounts.js",
        content_type: JS,
        body: include_str!("../assets/accounts.js"),
    },
    Asset {
        name: "hooks.js",
        content_type: JS,
        body: include_str!("../assets/hooks.js"),
    },
    Asset {
        name: "hook.js",
        content_type: JS,
        body: include_str!("../assets/hook.js"),
    },
    Asset {
        name: "tail.js",
        content_type: JS,
        body: include_str!("../assets/tail.js"),
    },
];

/// The dashboard's routes: `GET /dashboard` (and `/dashboard/`), `/dashboard/assets/{name}`
/// and `/dashboard/config.json`. Stateless: merge it into any router.
pub fn routes(config: DashboardConfig) -> Router {
    let config_json = match config.websocket_port {
        Some(port) => format!("{{\"websocket_port\":{port}}}"),
        None => "{\"websocket_port\":null}".to_owned(),
    };
    Router::new()
        .route("/dashboard", get(index))
        .route("/dashboard/", get(index))
        .route(
            "/dashboard/config.json",
            get(move || async move { page("application/json", config_json) }),
        )
        .route("/dashboard/assets/{name}", get(asset))
}

async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => page(a.content_type, a.body),
        None => {
            let mut resp = page("text/plain; charset=utf-8", "not found\n");
            *resp.status_mut() = StatusCode::NOT_FOUND;
            resp
        }
    }
}

/// A response with the dashboard's headers: its type, the policy, and `no-cache`.
fn page(content_type: &'static str, body: impl Into<String>) -> Response {
    let mut resp = body.into().into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{to_bytes, Body};
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(app: &Router, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let resp = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = to_bytes(body, usize::MAX).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn the_page_and_its_assets_are_served_with_their_types_and_the_policy() {
        let app = routes(DashboardConfig::default());
        for path in ["/dashboard", "/dashboard/"] {
            let (status, headers, body) = get(&app, path).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
            assert!(headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("script-src 'self';"));
            assert!(body.contains("/dashboard/assets/app.js"));
        }
        let (status, headers, body) = get(&app, "/dashboard/assets/app.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], JS);
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert!(body.contains("import"));
        let (_, headers, _) = get(&app, "/dashboard/assets/app.css").await;
        assert_eq!(headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    }

    #[tokio::test]
    async fn an_unknown_asset_is_a_404() {
        let app = routes(DashboardConfig::default());
        let (status, _, _) = get(&app, "/dashboard/assets/secret.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = get(&app, "/dashboard/assets/..%2FCargo.toml").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn config_names_the_websocket_port_or_null() {
        let on = routes(DashboardConfig {
            websocket_port: Some(5555),
        });
        assert_eq!(
            get(&on, "/dashboard/config.json").await.2,
            r#"{"websocket_port":5555}"#
        );
        let off = routes(DashboardConfig::default());
        assert_eq!(
            get(&off, "/dashboard/config.json").await.2,
            r#"{"websocket_port":null}"#
        );
    }

    /// Every module an asset imports is served: a missing one would only show in a browser.
    #[test]
    fn every_imported_module_is_an_asset() {
        for a in ASSETS.iter().filter(|a| a.content_type == JS) {
            for line in a.body.lines().filter(|l| l.starts_with("import ")) {
                let name = line
                    .rsplit_once("\"./")
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map(|(n, _)| n)
                    .unwrap_or_else(|| panic!("{}: unexpected import {line}", a.name));
                assert!(
                    ASSETS.iter().any(|b| b.name == name),
                    "{} imports {name}, which is not served",
                    a.name
                );
            }
        }
    }
}
