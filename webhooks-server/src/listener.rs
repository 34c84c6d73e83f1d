//! The API's accept loop: hyper's HTTP/1 connections with the limits a public listener needs,
//! which `axum::serve` does not set (there, an idle client or one that stops halfway through
//! its headers or body held a connection for as long as the kernel kept it).
//!
//! - at most [`ConnectionLimits::max_connections`] connections at once: a [`Semaphore`]
//!   permit is taken before `accept`, so past the cap new clients wait in the kernel's backlog;
//! - a request's head must arrive within `header_read_timeout` of its first byte;
//! - a request's body must arrive within `body_timeout` of its head (the handler then reads an
//!   error, answers 408, and the connection closes, since the rest of the body is unread);
//! - a connection with no request in progress is closed after `idle_timeout`.
//!
//! Each connection is watched by its own task, which knows the phase the connection is in
//! (idle, reading a head, serving) from the bytes read and the requests started and finished.
//! On shutdown, no more connections are accepted, idle ones close, and open requests finish;
//! [`serve`] returns once every connection has ended.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::Router;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long connections may stay open without progress, and how many may be open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From a request's first byte to the end of its head.
    pub header_read_timeout: Duration,
    /// From the end of a request's head to the end of its body.
    pub body_timeout: Duration,
    /// How long a connection stays open with no request in progress (keep-alive).
    pub idle_timeout: Duration,
    /// Connections open at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

/// Serves `app` on `listener` until `stop` is cancelled, then lets the open requests finish.
/// Returns once every connection has ended.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
) -> io::Result<()> {
    // The semaphore counts connections: a permit per open one. At shutdown, holding them all
    // again means every connection has ended.
    let cap = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(cap));
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => break,
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was taken:
                    // neither ends the listener. A short pause keeps EMFILE from spinning.
                    tracing::warn!(error = %e, "accepting an API connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            serve_connection(stream, app, limits, stop).await;
            tracing::trace!(%peer, "API connection closed");
            drop(permit);
        });
    }
    drop(listener);
    let _all = slots
        .acquire_many(cap as u32)
        .await
        .expect("the semaphore is never closed");
    Ok(())
}

/// Where a connection is, as its watcher sees it.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No request in progress since `since`.
    Idle { since: Instant },
    /// The first bytes of a request head arrived at `since`; the head is not complete yet.
    Head { since: Instant },
    /// `n` requests are being served (their bodies have their own deadline).
    Serving { n: usize },
}

/// The phase, shared by the connection's reader, its requests and its watcher.
struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    fn set(&self, f: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        *phase = f(*phase);
        drop(phase);
        self.changed.notify_one();
    }

    /// Bytes arrived from the client: if nothing was in progress, a request head has begun.
    fn read_bytes(&self) {
        let idle = matches!(
            *self.phase.lock().unwrap_or_else(|e| e.into_inner()),
            Phase::Idle { .. }
        );
        if idle {
            self.set(|p| match p {
                Phase::Idle { .. } => Phase::Head {
                    since: Instant::now(),
                },
                other => other,
            });
        }
    }

    /// A request's head was read: it is served from now on.
    fn begin(self: &Arc<Self>) -> InFlight {
        self.set(|p| match p {
            Phase::Serving { n } => Phase::Serving { n: n + 1 },
            _ => Phase::Serving { n: 1 },
        });
        InFlight(self.clone())
    }

    /// When the connection is due to close if nothing changes; `None` while serving (or when
    /// the timeout is too long to fall within the clock's range).
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        match *self.phase.lock().unwrap_or_else(|e| e.into_inner()) {
            Phase::Idle { since } => since.checked_add(limits.idle_timeout),
            Phase::Head { since } => since.checked_add(limits.header_read_timeout),
            Phase::Serving { .. } => None,
        }
    }
}

/// A request being served; dropped once its response has been written (or abandoned).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.set(|p| match p {
            Phase::Serving { n } if n > 1 => Phase::Serving { n: n - 1 },
            _ => Phase::Idle {
                since: Instant::now(),
            },
        });
    }
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
) {
    let activity = Arc::new(Activity {
        phase: Mutex::new(Phase::Idle {
            since: Instant::now(),
        }),
        changed: Notify::new(),
    });
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let in_flight = activity.begin();
            let req = req.map(|body| {
                axum::body::Body::new(BodyDeadline {
                    inner: body,
                    deadline: Box::pin(tokio::time::sleep(limits.body_timeout)),
                })
            });
            let app = app.clone();
            async move {
                let resp = app.oneshot(req).await?;
                Ok::<_, Infallible>(resp.map(|body| Tracked {
                    inner: body,
                    _in_flight: in_flight,
                }))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's own head timer starts as soon as it waits for a head, idle time included, so it
    // cannot tell an idle keep-alive from a slow head; the watcher below does. hyper's is kept
    // as a backstop at the longest either may take (within a year: hyper adds it to `now`).
    let backstop = limits
        .idle_timeout
        .saturating_add(limits.header_read_timeout)
        .min(Duration::from_secs(365 * 86_400));
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(backstop);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        let deadline = activity.deadline(&limits);
        let expired = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "API connection ended with an error");
                }
                return;
            }
            _ = activity.changed.notified() => {}
            _ = expired => {
                // Re-read: the phase may have moved on since the deadline was computed.
                if activity.deadline(&limits).is_some_and(|at| at <= Instant::now()) {
                    tracing::debug!("API connection timed out (idle, or a slow request head)");
                    return;
                }
            }
            _ = stop.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The connection's socket, reporting the bytes it reads to the watcher.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read_bytes();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body that fails with `TimedOut` once its deadline passes (the API answers 408).
struct BodyDeadline {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl Body for BodyDeadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request body did not arrive in time",
                ))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that holds its request's [`InFlight`] until hyper has written it.
struct Tracked {
    inner: axum::body::Body,
    _in_flight: InFlight,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
