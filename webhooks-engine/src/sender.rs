//! Sends one [`HttpRequest`] and reports what came back as an [`Outcome`] (spec §7.2): the only
//! place the engine touches the network for deliveries.
//!
//! Every request passes the SSRF guard (`guard.rs`): an IP-literal host is checked here, a
//! name by the resolver, and a refused one fails as `destination not allowed: <address>`.
//!
//! Transport failures are reported in KAZOO's words (`failed_connect: econnrefused`, `timeout`,
//! `socket_closed_remotely`) because they end up verbatim in attempt documents' `client_error`,
//! which existing tooling reads.

use std::error::Error as StdError;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_rustls::{ConfigBuilderExt, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::{ClientConfig, RootCertStore};
use webhooks_core::delivery::{HttpRequest, Outcome};
use webhooks_core::destination::DestinationPolicy;
use webhooks_core::HttpVerb;

use crate::guard::{self, GuardedResolver, ResolveError};

/// How the sender talks to receivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderConfig {
    /// TCP connect only (KAZOO's `connect_timeout_ms`).
    pub connect_timeout: Duration,
    /// The whole exchange: connect, TLS, request, response head and body.
    pub request_timeout: Duration,
    /// Response bytes kept; the rest is not read.
    pub max_response_body: usize,
    /// Idle keep-alive connections kept per receiver (scheme, host, port).
    pub pool_max_idle_per_host: usize,
    /// How long an idle connection is kept before it is closed.
    pub pool_idle_timeout: Duration,
    /// Where requests may go (the SSRF guard).
    pub destinations: Arc<DestinationPolicy>,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            max_response_body: 64 * 1024,
            pool_max_idle_per_host: 64,
            pool_idle_timeout: Duration::from_secs(90),
            destinations: Arc::new(DestinationPolicy::default()),
        }
    }
}

/// Why a sender could not be built: only if the compiled-in TLS provider cannot offer TLS 1.2 or
/// 1.3, which `ring` always can; kept as an error because it is decided by the build, not here.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("tls configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// The HTTP client of every delivery. Cloning is cheap and shares the connection pool.
///
/// There is one client, hence one keep-alive pool, for the whole engine because most hooks of a
/// busy account point at the same few receivers: reusing their connections saves a TCP (and TLS)
/// handshake per event, and bounds the sockets the engine holds open to
/// `pool_max_idle_per_host` per receiver instead of one per in-flight delivery.
#[derive(Clone)]
pub struct HttpSender {
    client: Client<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>,
    destinations: Arc<DestinationPolicy>,
    request_timeout: Duration,
    max_response_body: usize,
}

impl HttpSender {
    /// Builds the client: http and https (the OS's trusted roots), HTTP/1.1, no proxy.
    ///
    /// If the OS's roots cannot be loaded the sender still starts, with no trusted roots: http
    /// hooks keep working and each https delivery fails with a certificate error recorded in its
    /// attempt, which is easier to diagnose than an engine that will not start.
    pub fn new(config: &SenderConfig) -> Result<HttpSender, SenderError> {
        // The provider is named rather than taken from the process default, which is ambiguous
        // (and panics) as soon as any crate in the build also enables another rustls backend.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder =
            ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()?;
        let builder = match builder.clone().with_native_roots() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "no native root certificates; https deliveries will fail"
                );
                builder.with_root_certificates(RootCertStore::empty())
            }
        };
        let tls = builder.with_no_client_auth();

        let resolver = GuardedResolver::new(Arc::clone(&config.destinations));
        let mut http = HttpConnector::new_with_resolver(resolver);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        // The https layer hands `https://` urls to this connector for the TCP part.
        http.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);

        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(HttpSender {
            client,
            destinations: Arc::clone(&config.destinations),
            request_timeout: config.request_timeout,
            max_response_body: config.max_response_body,
        })
    }

    /// Sends the request once and reports the response, or why there was none.
    ///
    /// `request_timeout` covers the body as well as the head: KAZOO waits forever (§7.2), but a
    /// receiver that answers slowly, or trickles its body a byte at a time, would then hold a
    /// delivery slot, and the deliveries queued behind it, indefinitely.
    ///
    /// Only the first `max_response_body` bytes are read, because the body is stored in the
    /// attempt document; the connection of a cut-short response is closed rather than reused.
    /// Redirects are not followed: a 3xx is the outcome.
    pub async fn send(&self, req: &HttpRequest) -> Outcome {
        let request = match build_request(req) {
            Ok(r) => r,
            Err(error) => return Outcome::Transport { error },
        };
        if let Err(refused) = self.check_literal_host(request.uri()) {
            return Outcome::Transport {
                error: refused.to_string(),
            };
        }
        match tokio::time::timeout(self.request_timeout, self.exchange(request)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Transport {
                error: "timeout".into(),
            },
        }
    }

    /// The guard's check of an IP-literal host, which the connector would connect to without
    /// asking the resolver. `http::Uri` keeps IPv6 hosts in brackets.
    fn check_literal_host(&self, uri: &Uri) -> Result<(), webhooks_core::destination::Refused> {
        let host = uri.host().unwrap_or_default();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<std::net::IpAddr>() {
            Ok(ip) => self.destinations.check_ip(ip),
            Err(_) => Ok(()),
        }
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Outcome {
        let response = match self.client.request(request).await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Transport {
                    error: describe(&e, e.is_connect()),
                }
            }
        };
        let (head, mut body) = response.into_parts();
        let headers = head
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut kept: Vec<u8> = Vec::new();
        // Read to the end when it fits, so that the connection goes back to the pool.
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    return Outcome::Transport {
                        error: describe(&e, false),
                    }
                }
            };
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            let room = self.max_response_body - kept.len();
            if data.len() > room {
                kept.extend_from_slice(&data[..room]);
                break;
            }
            kept.extend_from_slice(&data);
        }
        Outcome::Response {
            status: head.status.as_u16(),
            headers,
            body: String::from_utf8_lossy(&kept).into_owned(),
        }
    }
}

fn build_request(req: &HttpRequest) -> Result<Request<Full<Bytes>>, String> {
    let uri: Uri = req.url.parse().map_err(|_| "malformed url".to_owned())?;
    // Anything but an absolute http(s) url is refused here: the connector would otherwise pick
    // port 80 for, say, `ftp://` and speak HTTP to it.
    let scheme_ok = matches!(uri.scheme_str(), Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    if !scheme_ok || uri.host().is_none_or(str::is_empty) {
        return Err("malformed url".into());
    }
    let method = match req.method {
        HttpVerb::Get => Method::GET,
        HttpVerb::Post => Method::POST,
        HttpVerb::Put => Method::PUT,
    };
    let mut request = Request::new(Full::new(Bytes::from(req.body.clone())));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    for (name, value) in &req.headers {
        let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            return Err(format!("invalid header: {name}"));
        };
        request.headers_mut().append(n, v);
    }
    Ok(request)
}

fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&e| e.source())
}

/// KAZOO-style text for a failed exchange; `connect` when no connection was established.
fn describe(err: &(dyn StdError + 'static), connect: bool) -> String {
    let unresolved = match guard::resolve_error_in(err) {
        Some(ResolveError::Refused(refused)) => return refused.to_string(),
        Some(ResolveError::NotFound(_)) => true,
        None => false,
    };
    let io_kind = chain(err).find_map(|e| e.downcast_ref::<io::Error>().map(io::Error::kind));
    let innermost = chain(err)
        .last()
        .map_or_else(String::new, ToString::to_string);
    if connect {
        if unresolved {
            return "failed_connect: nxdomain".into();
        }
        let reason = match io_kind {
            Some(io::ErrorKind::ConnectionRefused) => "econnrefused",
            Some(io::ErrorKind::TimedOut) => "timeout",
            Some(io::ErrorKind::ConnectionReset) => "econnreset",
            Some(io::ErrorKind::HostUnreachable) => "ehostunreach",
            Some(io::ErrorKind::NetworkUnreachable) => "enetunreach",
            Some(io::ErrorKind::AddrNotAvailable) => "eaddrnotavail",
            _ => innermost.as_str(),
        };
        return format!("failed_connect: {reason}");
    }
    let hyper_closed = chain(err)
        .filter_map(|e| e.downcast_ref::<hyper::Error>())
        .any(|e| e.is_incomplete_message() || e.is_canceled() || e.is_closed());
    let io_closed = matches!(
        io_kind,
        Some(
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
        )
    );
    if hyper_closed || io_closed {
        return "socket_closed_remotely".into();
    }
    innermost
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    /// An error with a message and an optional cause, like the connectors' private ones.
    #[derive(Debug)]
    struct Wrap(&'static str, Option<Box<dyn StdError + Send + Sync>>);

    impl fmt::Display for Wrap {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for Wrap {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_ref().map(|e| &**e as _)
        }
    }

    fn io(kind: io::ErrorKind, msg: &str) -> Option<Box<dyn StdError + Send + Sync>> {
        Some(Box::new(io::Error::new(kind, msg.to_owned())))
    }

    #[test]
    fn dns_failure_is_nxdomain() {
        let cause = io::Error::other("failed to lookup address information");
        let err = Wrap(
            "client error (Connect)",
            Some(Box::new(ResolveError::NotFound(cause))),
        );
        assert_eq!(describe(&err, true), "failed_connect: nxdomain");
    }

    #[test]
    fn connect_errors_use_posix_names_or_the_innermost_reason() {
        let timed_out = Wrap("tcp connect error", io(io::ErrorKind::TimedOut, "x"));
        assert_eq!(describe(&timed_out, true), "failed_connect: timeout");
        let unreachable = Wrap("tcp connect error", io(io::ErrorKind::HostUnreachable, "x"));
        assert_eq!(describe(&unreachable, true), "failed_connect: ehostunreach");
        let tls = Wrap(
            "client error (Connect)",
            io(
                io::ErrorKind::InvalidData,
                "invalid peer certificate: UnknownIssuer",
            ),
        );
        assert_eq!(
            describe(&tls, true),
            "failed_connect: invalid peer certificate: UnknownIssuer"
        );
    }

    #[test]
    fn resets_after_connect_are_socket_closed_remotely() {
        let reset = Wrap(
            "client error (SendRequest)",
            io(io::ErrorKind::ConnectionReset, "x"),
        );
        assert_eq!(describe(&reset, false), "socket_closed_remotely");
        let other = Wrap(
            "client error (SendRequest)",
            io(io::ErrorKind::InvalidData, "bad"),
        );
        assert_eq!(describe(&other, false), "bad");
    }

    #[test]
    fn only_absolute_http_urls_are_sent() {
        let req = |url: &str| HttpRequest {
            method: HttpVerb::Get,
            url: url.into(),
            headers: vec![],
            body: String::new(),
        };
        for bad in [
            "not a url",
            "/relative",
            "ftp://host/x",
            "http://",
            "mailto:a@b",
        ] {
            assert_eq!(
                build_request(&req(bad)).err().as_deref(),
                Some("malformed url"),
                "{bad}"
            );
        }
        // KAZOO appends the query blindly (§7.1): a second `?` and brackets must still go out.
        let ok = build_request(&req("HTTPS://h:8443/p?k=v?a[b]=1&c[]=2")).unwrap();
        assert_eq!(
            ok.uri().path_and_query().unwrap().as_str(),
            "/p?k=v?a[b]=1&c[]=2"
        );
    }
}
