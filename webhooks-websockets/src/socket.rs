//! The websocket listener: any path upgrades (spec §2), a `Sec-WebSocket-Protocol` header is a
//! 400, a peer address over `max_connections_per_ip` a 429. Each connection reads text frames
//! into its [`Session`] and writes replies first, then queued event frames, from one task.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use webhooks_api::ApiState;

use crate::hub::{Admission, Hub, Socket};
use crate::session::Session;

/// The largest client message taken (they are a few hundred bytes).
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Each connection's read buffer, and how much it writes in one go. The websocket library's
/// defaults (128 KiB each) are sized for large messages; here clients send a few hundred bytes
/// and frames are a few KiB, and with a thousand sockets the defaults alone would be 250 MiB.
const READ_BUFFER_BYTES: usize = 8 * 1024;
const WRITE_BUFFER_BYTES: usize = 16 * 1024;
/// Replies waiting for the writer; past this the reader waits, and so does the client.
const REPLY_QUEUE: usize = 32;

#[derive(Clone)]
struct Listener {
    hub: Hub,
    api: ApiState,
}

/// Serves the endpoint on `listener` until `shutdown` completes (open sockets are not waited
/// for: a live stream has no end to wait for). Frames go out as they come: without
/// TCP_NODELAY a small frame can wait for the peer's delayed ACK (40 ms on Linux).
pub async fn serve(
    listener: tokio::net::TcpListener,
    hub: Hub,
    api: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(hub, api).into_make_service_with_connect_info::<SocketAddr>();
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on a websocket connection");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The websocket endpoint as a router, for an embedder with a server of its own: serve it
/// with `into_make_service_with_connect_info::<SocketAddr>()` (the peer address is the socket
/// id), and set TCP_NODELAY as [`serve`] does.
pub fn router(hub: Hub, api: ApiState) -> Router {
    Router::new()
        .fallback(upgrade)
        .with_state(Listener { hub, api })
}

async fn upgrade(
    State(l): State<Listener>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if headers.contains_key(header::SEC_WEBSOCKET_PROTOCOL) {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let Ok(admission) = l.hub.admit(&peer) else {
        return StatusCode::TOO_MANY_REQUESTS.into_response();
    };
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .on_upgrade(move |socket| connection(socket, peer, l, admission))
}

/// Serves one connection; it counts against its peer address until it ends (`_admission`).
async fn connection(ws: WebSocket, peer: SocketAddr, l: Listener, _admission: Admission) {
    let socket = l.hub.open(peer);
    tracing::debug!(socket = %socket.id, "websocket opened");
    let session = Session::new(l.hub.clone(), l.api, socket.clone());
    let (sink, mut stream) = ws.split();
    let (replies, waiting) = mpsc::channel(REPLY_QUEUE);
    let writer = tokio::spawn(write(sink, waiting, socket.clone()));
    let idle = l.hub.config().idle_timeout;
    loop {
        let frame = match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(Ok(frame))) => frame,
            // Idle for too long, closed, or broken.
            _ => break,
        };
        match frame {
            Message::Text(text) => {
                let reply = session.handle(text.as_str()).await;
                if replies.send(reply).await.is_err() {
                    break;
                }
            }
            Message::Close(_) => break,
            // Pings are answered by the websocket layer; binary frames are ignored (§2).
            _ => {}
        }
    }
    l.hub.close(&socket);
    writer.abort();
    tracing::debug!(socket = %socket.id, dropped = socket.outbox.dropped(), "websocket closed");
}

/// Sends replies as they come and event frames as they are queued, batching what is waiting
/// into one flush.
async fn write(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut replies: mpsc::Receiver<String>,
    socket: Arc<Socket>,
) {
    loop {
        let sent = tokio::select! {
            biased;
            reply = replies.recv() => match reply {
                Some(reply) => sink.send(Message::Text(reply.into())).await,
                None => return,
            },
            _ = socket.outbox.ready.notified() => {
                let mut result = Ok(());
                for frame in socket.outbox.take_all() {
                    result = sink.feed(Message::Text(frame.into())).await;
                    if result.is_err() {
                        break;
                    }
                }
                match result {
                    Ok(()) => sink.flush().await,
                    e => e,
                }
            }
        };
        if sent.is_err() {
            return;
        }
    }
}
