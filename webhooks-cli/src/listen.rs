//! `webhooks listen`: a local receiver that prints every request it gets.
//!
//! Whoever writes a receiver wants to see exactly what the engine sends before writing code
//! for it. Point a hook at the address `listen` prints, fire it (`webhooks trigger`), and each
//! request shows up as one block: method and path, headers, the body decoded as a person
//! reads it (see `print`), and with `--secret` whether its Standard Webhooks signature holds,
//! checked by the engine's own [`webhooks_core::signature::verify`]. Every request is answered
//! with `--status`, so retries and the disabler can be watched too.
//!
//! The HTTP server runs in its own task; requests hand their rendered block over a bounded
//! channel to [`listen`], the only writer of `out`, so blocks never interleave and a slow
//! terminal slows the senders down instead of piling up memory.

mod print;

use std::future::IntoFuture;
use std::io::Write;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::mpsc;
use webhooks_core::signature::{SecretError, SigningSecret};

/// Options of `webhooks listen`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ListenArgs {
    /// Port to listen on (on 127.0.0.1); 0 picks a free one.
    #[arg(long, default_value_t = 9000)]
    pub port: u16,
    /// Status code to answer every request with.
    #[arg(long, default_value_t = 200)]
    pub status: u16,
    /// The hook's signing secret (whsec_...): each request's signature is checked and the
    /// result printed.
    #[arg(long)]
    pub secret: Option<String>,
}

/// Why `listen` could not start, or stopped. Bad arguments are refused before binding, so a
/// typo never leaves a receiver running that answers or verifies the wrong way.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("invalid --secret: {0}")]
    Secret(SecretError),
    #[error("invalid --status {0}: give a final HTTP status, 200 to 999")]
    Status(u16),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("cannot wait for Ctrl-C: {0}")]
    Signal(std::io::Error),
    #[error("the receiver stopped: {0}")]
    Serve(std::io::Error),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// Bodies up to this size are read and printed; larger ones are answered 413. Generous,
/// because KAZOO's largest payloads (objects with their documents) must never be refused.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Blocks rendered but not yet written: enough to absorb a burst, small enough to push back.
const PENDING_BLOCKS: usize = 64;

/// What every request handler shares.
struct Receiver {
    status: StatusCode,
    secret: Option<SigningSecret>,
    /// Numbers the blocks, so a retry is told from the try before it at a glance.
    arrivals: AtomicU64,
    blocks: mpsc::Sender<String>,
}

/// Runs the receiver until Ctrl-C, printing the address first (tests and scripts read the
/// port from that line) and then one block per request.
pub async fn listen(args: &ListenArgs, out: &mut (dyn Write + Send)) -> Result<(), ListenError> {
    let status = answer_status(args.status)?;
    let secret = args
        .secret
        .as_deref()
        .map(SigningSecret::parse)
        .transpose()
        .map_err(ListenError::Secret)?;
    let bind_error = |source| ListenError::Bind {
        port: args.port,
        source,
    };
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, args.port))
        .await
        .map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    writeln!(out, "listening on http://127.0.0.1:{port}/")?;
    out.flush()?;

    let (blocks, mut pending) = mpsc::channel(PENDING_BLOCKS);
    let receiver = Arc::new(Receiver {
        status,
        secret,
        arrivals: AtomicU64::new(0),
        blocks,
    });
    let app = Router::new().fallback(receive).with_state(receiver);
    let server = tokio::spawn(axum::serve(listener, app).into_future());

    // Pinned once: a fresh `ctrl_c()` per turn of the loop could miss a signal in between.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            stopped = &mut ctrl_c => {
                server.abort();
                return stopped.map_err(ListenError::Signal);
            }
            block = pending.recv() => match block {
                Some(block) => {
                    out.write_all(block.as_bytes())?;
                    out.flush()?;
                }
                // The server task holds the only sender: it has ended.
                None => {
                    return match server.await {
                        Ok(result) => result.map_err(ListenError::Serve),
                        Err(e) => Err(ListenError::Serve(std::io::Error::other(e))),
                    }
                }
            },
        }
    }
}

/// The status every request is answered with. Informational codes are refused: they cannot be
/// a final answer, so the sender would wait for one that never comes.
fn answer_status(code: u16) -> Result<StatusCode, ListenError> {
    StatusCode::from_u16(code)
        .ok()
        .filter(|status| !status.is_informational())
        .ok_or(ListenError::Status(code))
}

/// Any method, any path: reads the body, hands the block to be printed, answers.
async fn receive(State(receiver): State<Arc<Receiver>>, request: Request) -> Response {
    let number = receiver.arrivals.fetch_add(1, Ordering::Relaxed) + 1;
    let (parts, body) = request.into_parts();
    // Any failure to read counts as refused: over the limit is the one a sender can see, as a
    // body that broke off mid-way leaves nobody to read the answer.
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|e| e.to_string());
    let (status, answer) = match body {
        Ok(_) => (receiver.status, r#"{"received": true}"#),
        Err(_) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            r#"{"received": false, "error": "body over 16 MiB"}"#,
        ),
    };
    let arrival = print::Arrival {
        number,
        now: print::unix_now(),
        parts: &parts,
        body: body.as_deref().map_err(String::as_str),
        answered: status,
    };
    let block = arrival.render(receiver.secret.as_ref());
    // A closed channel means `listen` has returned and the process is exiting.
    let _ = receiver.blocks.send(block).await;
    if matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED) {
        // These answers have no body by definition (no content-length either).
        return status.into_response();
    }
    (status, [(header::CONTENT_TYPE, "application/json")], answer).into_response()
}
