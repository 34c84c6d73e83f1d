//! # webhooks-testkit: a real HTTP receiver for tests and benchmarks
//!
//! Delivery has to be tested against a real server, not a mock: [`Receiver`] is a hyper
//! server on a loopback port that records every request and answers each path as told (a
//! status, a sequence of statuses, or never). Only loopback is used.
//!
//! [`couchdb::PouchServer`] runs a CouchDB-compatible server (PouchDB Server) for the CouchDB
//! store's tests; [`couchdb::shared_url`] is the one a test binary shares.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

pub mod couchdb;
pub mod proxy;
pub mod rabbitmq;

/// What the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: hyper::HeaderMap,
    pub body: String,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Received {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How the receiver answers a path.
#[derive(Debug, Clone)]
pub enum Answer {
    Status(u16),
    /// These statuses in turn, then the last one forever.
    Sequence(Vec<u16>),
    /// Never answer.
    Hang,
    /// Answer 200, after this long (a slow receiver).
    Slow(Duration),
    /// Add `Retry-After: <seconds>` to this path's 429 and 503 answers (with `Sequence`).
    RetryAfter(u64),
    /// Answer `302 Found` with this `Location`.
    Redirect(String),
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<HashMap<String, VecDeque<u16>>>>,
    hang: Arc<Mutex<Vec<String>>>,
    slow: Arc<Mutex<Vec<(String, Duration)>>>,
    retry_after: Arc<Mutex<HashMap<String, u64>>>,
    redirect: Arc<Mutex<HashMap<String, String>>>,
}

impl Receiver {
    /// Starts on 127.0.0.1 and a free port.
    pub async fn start() -> Receiver {
        Self::start_on("127.0.0.1:0").await
    }

    /// Starts on an address of the caller's choice (any 127.0.0.0/8 address works on Linux).
    pub async fn start_on(addr: &str) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let r = Receiver {
            addr: listener.local_addr().unwrap(),
            got: Default::default(),
            answers: Default::default(),
            hang: Default::default(),
            slow: Default::default(),
            retry_after: Default::default(),
            redirect: Default::default(),
        };
        let rc = r.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let rc = rc.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let rc = rc.clone();
                        async move { rc.handle(req).await }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        r
    }

    pub fn answer(&self, path: &str, answer: Answer) {
        match answer {
            Answer::Status(s) => {
                self.answers
                    .lock()
                    .unwrap()
                    .insert(path.into(), VecDeque::from([s]));
            }
            Answer::Sequence(v) => {
                self.answers.lock().unwrap().insert(path.into(), v.into());
            }
            Answer::Hang => self.hang.lock().unwrap().push(path.into()),
            Answer::Slow(wait) => self.slow.lock().unwrap().push((path.into(), wait)),
            Answer::RetryAfter(secs) => {
                self.retry_after.lock().unwrap().insert(path.into(), secs);
            }
            Answer::Redirect(location) => {
                self.redirect.lock().unwrap().insert(path.into(), location);
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    async fn handle(
        &self,
        req: Request<hyper::body::Incoming>,
    ) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let path = parts.uri.path().to_owned();
        self.got.lock().unwrap().push(Received {
            method: parts.method.to_string(),
            path: path.clone(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
            at: std::time::Instant::now(),
        });
        if self
            .hang
            .lock()
            .unwrap()
            .iter()
            .any(|p| path.starts_with(p.as_str()))
        {
            std::future::pending::<()>().await;
        }
        let wait = self
            .slow
            .lock()
            .unwrap()
            .iter()
            .find(|(p, _)| path.starts_with(p.as_str()))
            .map(|(_, wait)| *wait);
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
        let status = {
            let mut answers = self.answers.lock().unwrap();
            match answers.get_mut(&path) {
                Some(q) if q.len() > 1 => q.pop_front().unwrap(),
                Some(q) => q[0],
                None => 200,
            }
        };
        let location = self.redirect.lock().unwrap().get(&path).cloned();
        let status = if location.is_some() { 302 } else { status };
        let mut response = Response::builder().status(status);
        if let Some(location) = location {
            response = response.header("location", location);
        }
        if status == 429 || status == 503 {
            if let Some(secs) = self.retry_after.lock().unwrap().get(&path) {
                response = response.header("retry-after", secs.to_string());
            }
        }
        Ok(response
            .body(Full::new(Bytes::from_static(b"receiver says hi")))
            .unwrap())
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    pub fn received_at(&self, prefix: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect()
    }

    /// Waits until `n` requests arrived under `prefix` (bounded: panics after 20 s).
    pub async fn wait_for(&self, prefix: &str, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.received_at(prefix);
            if got.len() >= n {
                return got;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("waited for {n} requests at {prefix}, got {}", got.len());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
