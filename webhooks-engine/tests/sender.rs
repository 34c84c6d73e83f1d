//! `HttpSender` against real local servers on 127.0.0.1: what arrives, what comes back, and
//! how each way of failing is reported.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use webhooks_core::delivery::{HttpRequest, Outcome};
use webhooks_core::destination::DestinationPolicy;
use webhooks_core::HttpVerb;
use webhooks_engine::sender::{HttpSender, SenderConfig};

/// Fails the test instead of hanging it.
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("test step took more than 10s")
}

/// The test servers listen on loopback, which the SSRF guard refuses by default.
fn loopback() -> std::sync::Arc<DestinationPolicy> {
    std::sync::Arc::new(DestinationPolicy::loopback_allowed())
}

fn sender(request_timeout: Duration) -> HttpSender {
    HttpSender::new(&SenderConfig {
        request_timeout,
        destinations: loopback(),
        ..SenderConfig::default()
    })
    .expect("sender")
}

/// What a server saw of one request.
#[derive(Debug)]
struct Seen {
    method: String,
    path_and_query: String,
    headers: HeaderMap,
    body: String,
}

/// What the server answers to every request.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: Bytes,
}

impl Reply {
    fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: Bytes::new(),
        }
    }
}

/// A keep-alive HTTP/1.1 server that answers `reply` to everything, reports each request on the
/// channel and counts the TCP connections it accepts.
async fn serve(reply: Reply) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let tx = tx.clone();
            let reply = reply.clone();
            let service = service_fn(move |req: Request<Incoming>| {
                let tx = tx.clone();
                let reply = reply.clone();
                async move {
                    let (head, body) = req.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let _ = tx.send(Seen {
                        method: head.method.to_string(),
                        path_and_query: head
                            .uri
                            .path_and_query()
                            .map(|p| p.to_string())
                            .unwrap_or_default(),
                        headers: head.headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    let mut resp = Response::builder().status(reply.status);
                    for (k, v) in &reply.headers {
                        resp = resp.header(*k, *v);
                    }
                    Ok::<_, Infallible>(resp.body(Full::new(reply.body)).unwrap())
                }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    (addr, rx, connections)
}

fn request(method: HttpVerb, url: String, headers: &[(&str, &str)], body: &str) -> HttpRequest {
    HttpRequest {
        method,
        url,
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.to_owned(),
    }
}

fn header<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
    seen.headers.get(name).and_then(|v| v.to_str().ok())
}

fn status_of(outcome: &Outcome) -> u16 {
    match outcome {
        Outcome::Response { status, .. } => *status,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn transport_error(outcome: Outcome) -> String {
    match outcome {
        Outcome::Transport { error } => error,
        other => panic!("expected a transport error, got {other:?}"),
    }
}

#[tokio::test]
async fn post_form_arrives_exactly() {
    let (addr, mut seen, _) = serve(Reply::status(200)).await;
    let req = request(
        HttpVerb::Post,
        format!("http://{addr}/hooks/in?src=kazoo"),
        &[
            ("X-Hook-ID", "hook1"),
            ("X-Account-ID", "0123456789abcdef0123456789abcdef"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "a=x+y&b[]=1&c[d]=true",
    );
    let outcome = within(sender(Duration::from_secs(5)).send(&req)).await;
    assert_eq!(status_of(&outcome), 200);
    let s = within(seen.recv()).await.unwrap();
    assert_eq!(s.method, "POST");
    assert_eq!(s.path_and_query, "/hooks/in?src=kazoo");
    assert_eq!(header(&s, "x-hook-id"), Some("hook1"));
    assert_eq!(
        header(&s, "x-account-id"),
        Some("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(
        header(&s, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(header(&s, "content-length"), Some("21"));
    assert_eq!(header(&s, "host"), Some(addr.to_string().as_str()));
    // KAZOO sets no User-Agent (§7.1) and neither do we.
    assert_eq!(header(&s, "user-agent"), None);
    assert_eq!(s.body, "a=x+y&b[]=1&c[d]=true");
}

#[tokio::test]
async fn get_sends_the_query_string_and_no_body() {
    let (addr, mut seen, _) = serve(Reply::status(200)).await;
    let req = request(
        HttpVerb::Get,
        format!("http://{addr}/in?k=v?call_id=c1&hook_event=channel_create"),
        &[("X-Hook-ID", "hook1")],
        "",
    );
    let outcome = within(sender(Duration::from_secs(5)).send(&req)).await;
    assert_eq!(status_of(&outcome), 200);
    let s = within(seen.recv()).await.unwrap();
    assert_eq!(s.method, "GET");
    assert_eq!(
        s.path_and_query,
        "/in?k=v?call_id=c1&hook_event=channel_create"
    );
    assert_eq!(header(&s, "content-type"), None);
    assert_eq!(s.body, "");
}

#[tokio::test]
async fn put_json_arrives() {
    let (addr, mut seen, _) = serve(Reply::status(201)).await;
    let body = "{\n  \"a\": \"1 2\"\n}";
    let req = request(
        HttpVerb::Put,
        format!("http://{addr}/put"),
        &[("Content-Type", "application/json")],
        body,
    );
    let outcome = within(sender(Duration::from_secs(5)).send(&req)).await;
    assert_eq!(status_of(&outcome), 201);
    let s = within(seen.recv()).await.unwrap();
    assert_eq!(s.method, "PUT");
    assert_eq!(s.path_and_query, "/put");
    assert_eq!(header(&s, "content-type"), Some("application/json"));
    assert_eq!(s.body, body);
}

#[tokio::test]
async fn statuses_bodies_and_headers_come_back() {
    let sender = sender(Duration::from_secs(5));
    for status in [200, 204] {
        let (addr, _seen, _) = serve(Reply::status(status)).await;
        let req = request(HttpVerb::Post, format!("http://{addr}/"), &[], "x");
        let outcome = within(sender.send(&req)).await;
        assert_eq!(status_of(&outcome), status);
        assert!(outcome.is_success());
    }

    let (addr, _seen, _) = serve(Reply {
        status: 500,
        headers: vec![("X-Trace", "t-1"), ("Retry-After", "5")],
        body: Bytes::from_static("internal trouble".as_bytes()),
    })
    .await;
    let req = request(HttpVerb::Post, format!("http://{addr}/"), &[], "x");
    match within(sender.send(&req)).await {
        Outcome::Response {
            status,
            headers,
            body,
        } => {
            assert_eq!(status, 500);
            assert_eq!(body, "internal trouble");
            let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
            let trace = names.iter().position(|n| *n == "x-trace").unwrap();
            let retry = names.iter().position(|n| *n == "retry-after").unwrap();
            assert!(trace < retry, "headers out of order: {names:?}");
            assert!(headers.contains(&("x-trace".into(), "t-1".into())));
            assert!(headers.contains(&("retry-after".into(), "5".into())));
            assert!(headers.contains(&("content-length".into(), "16".into())));
        }
        other => panic!("expected a response, got {other:?}"),
    }
}

#[tokio::test]
async fn refused_port_is_econnrefused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let req = request(
        HttpVerb::Post,
        format!("http://127.0.0.1:{port}/"),
        &[],
        "x",
    );
    let outcome = within(sender(Duration::from_secs(5)).send(&req)).await;
    assert_eq!(transport_error(outcome), "failed_connect: econnrefused");
}

#[tokio::test]
async fn silent_receiver_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream); // accepted, never answered
        }
    });
    let req = request(HttpVerb::Post, format!("http://{addr}/"), &[], "x");
    let outcome = within(sender(Duration::from_millis(300)).send(&req)).await;
    assert_eq!(transport_error(outcome), "timeout");
}

#[tokio::test]
async fn trickling_body_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                while stream.write_all(b"x").await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        }
    });
    let req = request(HttpVerb::Post, format!("http://{addr}/"), &[], "x");
    let outcome = within(sender(Duration::from_millis(300)).send(&req)).await;
    assert_eq!(transport_error(outcome), "timeout");
}

#[tokio::test]
async fn large_body_is_cut_to_the_cap() {
    let (addr, _seen, _) = serve(Reply {
        status: 200,
        headers: vec![],
        body: Bytes::from(vec![b'a'; 1024 * 1024]),
    })
    .await;
    let sender = HttpSender::new(&SenderConfig {
        max_response_body: 1000,
        request_timeout: Duration::from_secs(5),
        destinations: loopback(),
        ..SenderConfig::default()
    })
    .unwrap();
    let req = request(HttpVerb::Get, format!("http://{addr}/big"), &[], "");
    match within(sender.send(&req)).await {
        Outcome::Response { status, body, .. } => {
            assert_eq!(status, 200);
            assert_eq!(body, "a".repeat(1000));
        }
        other => panic!("expected a response, got {other:?}"),
    }
}

// On the current-thread runtime of `#[tokio::test]` the count is exact. On a multi-thread runtime
// hyper-util hands a finished connection back to the pool from a spawned task, so a send issued
// the instant the previous one returns sometimes races it and opens a second pooled connection.
#[tokio::test]
async fn sequential_sends_reuse_one_connection() {
    let (addr, mut seen, connections) = serve(Reply {
        status: 200,
        headers: vec![],
        body: Bytes::from_static(b"ok"),
    })
    .await;
    let sender = sender(Duration::from_secs(5));
    for i in 0..5 {
        let req = request(HttpVerb::Post, format!("http://{addr}/{i}"), &[], "x");
        assert_eq!(status_of(&within(sender.send(&req)).await), 200);
        assert_eq!(
            within(seen.recv()).await.unwrap().path_and_query,
            format!("/{i}")
        );
    }
    // A clone shares the pool.
    let clone = sender.clone();
    let req = request(HttpVerb::Post, format!("http://{addr}/clone"), &[], "x");
    assert_eq!(status_of(&within(clone.send(&req)).await), 200);
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn malformed_url_is_reported() {
    let sender = sender(Duration::from_secs(5));
    for url in ["not a url", "http://", "ftp://127.0.0.1/x", "/relative"] {
        let req = request(HttpVerb::Post, url.into(), &[], "x");
        assert_eq!(
            transport_error(within(sender.send(&req)).await),
            "malformed url",
            "{url}"
        );
    }
}
