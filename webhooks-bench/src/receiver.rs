//! The receivers of the load harness: one that counts, one that never answers.
//!
//! `webhooks-testkit`'s receiver keeps every request, which is what a test wants and what a
//! million-request run cannot afford. [`Arrivals`] keeps a count, the time of the last arrival
//! and a latency histogram, all atomics: memory stays flat whatever the count, and recording
//! costs a few nanoseconds next to the HTTP parsing both receivers share.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::clock;
use crate::hist::Histogram;

/// What reached a counting receiver.
#[derive(Default)]
pub struct Arrivals {
    count: AtomicU64,
    last_ns: AtomicU64,
    /// Publish-to-arrival times of stamped requests (see [`clock`]), in nanoseconds.
    pub latency: Histogram,
}

impl Arrivals {
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// [`clock::now_ns`] at the latest arrival.
    pub fn last_ns(&self) -> u64 {
        self.last_ns.load(Ordering::Relaxed)
    }

    /// Starts a new measurement.
    pub fn reset(&self) {
        self.count.store(0, Ordering::Relaxed);
        self.last_ns.store(0, Ordering::Relaxed);
        self.latency.reset();
    }

    /// Counts an arrival at `now`, and its latency when it carried the publish instant `sent`.
    pub fn record(&self, now: u64, sent: Option<u64>) {
        if let Some(sent) = sent {
            self.latency.record(now.saturating_sub(sent));
        }
        self.last_ns.fetch_max(now, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Starts a receiver on a free loopback port that answers every request `200` with an empty
/// body, after reading it whole.
pub async fn counting() -> std::io::Result<(SocketAddr, Arc<Arrivals>)> {
    counting_on("127.0.0.1:0").await
}

/// [`counting`] on an address of the caller's choice.
pub async fn counting_on(addr: &str) -> std::io::Result<(SocketAddr, Arc<Arrivals>)> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let arrivals = Arc::new(Arrivals::default());
    let shared = arrivals.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let arrivals = shared.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let arrivals = arrivals.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let now = clock::now_ns();
                        let sent = clock::find_stamp(&body).or_else(|| {
                            parts
                                .uri
                                .query()
                                .and_then(|q| clock::find_stamp(q.as_bytes()))
                        });
                        arrivals.record(now, sent);
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok((addr, arrivals))
}

/// Starts a destination that accepts connections and reads whatever comes, but never answers:
/// the hung receiver of the fault mix. A connection lives until the client gives up on it.
pub async fn black_hole() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut sink = [0u8; 4096];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    Ok(addr)
}
