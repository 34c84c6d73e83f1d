//! The live-event row (`ws-1000`): websocket clients subscribed to `call.CHANNEL_CREATE.*` on
//! `webhooks-websockets`, and KAZOO's CHANNEL_CREATE fanned out to them.
//!
//! The endpoint is served as the daemon serves it: [`webhooks_websockets::socket::router`] over
//! an [`ApiState`] on an embedded store, with the peer address as connect info and the hub's
//! default limits. The clients (tokio-tungstenite, on 127.0.0.1, in this process) are spread
//! evenly over `plan.ws_accounts` customer accounts (10 × 100 in the full run: the hub's
//! default cap is 100 sockets per account), each authenticated with a token of its own
//! account, as a Monster UI session is; so each event reaches a tenth of the sockets, and the
//! hub still scans all of them for it, as a node serving many accounts does.
//!
//! Events enter through the hub's [`EventTap::event`] directly, on a task of their own as the
//! AMQP consumer's node queue calls it: what is measured is the fan-out (matching, one frame
//! per socket, the outboxes, the writers, the websocket I/O), not the engine the other rows
//! already measure. Through `Tapped` over an engine, each event would first wait for the
//! engine's publish (and at least once, the journal's commit), and the row would measure that.
//!
//! Latency is from the publish call to the frame's arrival at the client: the publish instant
//! rides in `Call-ID` (`LOADT<ns>`, see [`clock`]), which blackhole's frame repeats in its
//! `routing_key` and `data.call_id`; the client finds it in the raw text without parsing JSON.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use webhooks_api::{ApiConfig, ApiState};
use webhooks_core::live::LiveHooks;
use webhooks_core::transport::EventTap;
use webhooks_core::{AccountId, Store};
use webhooks_store::EmbeddedStore;
use webhooks_websockets::{Hub, HubConfig};

use crate::clock;
use crate::fixture::{self, CallEvents};
use crate::plan::{scratch_dir, BoxError, Plan};
use crate::receiver::Arrivals;
use crate::rss;

/// What every client subscribes to, on its own account.
const BINDING: &str = "call.CHANNEL_CREATE.*";

/// Clients connecting and subscribing at once during set-up (the listener's backlog and the
/// token checks are not what is measured).
const CONNECTING: usize = 64;

/// Descriptors beyond two per client: the store, the listener, the runtime, stdio.
const SPARE_FDS: u64 = 256;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Frames/s at full speed, then latency at half the peak's event rate.
pub async fn websockets(plan: &Plan) -> Result<Value, BoxError> {
    let clients = plan.ws_clients;
    let accounts_n = plan.ws_accounts.clamp(1, clients.max(1));
    let nofile = raise_fd_limit(2 * clients as u64 + SPARE_FDS)?;

    // The store only answers the token checks of the subscriptions: on tmpfs when there is one.
    let dir = scratch_dir(true)?;
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path())?);
    let boot = webhooks_api::bootstrap(store.as_ref(), None).await?;
    let accounts =
        fixture::save_customers(store.as_ref(), &boot.master_account_id, accounts_n).await?;
    let hooks = Arc::new(LiveHooks::new(fixture::registry()));
    let api = ApiState::new(store, hooks, &boot.signing_secret, ApiConfig::default());

    // The daemon's defaults; their cap of 100 sockets an account is what 10 × 100 fits, and a
    // plan with more clients an account raises it rather than have them refused.
    let defaults = HubConfig::default();
    let config = HubConfig {
        max_sockets_per_account: clients
            .div_ceil(accounts_n)
            .max(defaults.max_sockets_per_account),
        ..defaults
    };
    // Frames out (queued, not yet read) at most while publishing at full speed: a quarter of
    // each socket's outbox on average, so a client that keeps up with the others never has
    // frames pushed out of its outbox, and one that falls well behind does (and it shows).
    let window = clients as u64 * (config.max_queued_messages as u64 / 4).max(1);
    let hub = Hub::new(config, "webhooks-loadtest");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/", listener.local_addr()?);
    let served = webhooks_websockets::socket::serve(
        listener,
        hub.clone(),
        api.clone(),
        std::future::pending(),
    );
    tokio::spawn(served);

    let mut tokens = Vec::with_capacity(accounts.len());
    for account in &accounts {
        let token = api
            .tokens()
            .issue(api.store(), account, "cb_api_auth")
            .await
            .map_err(|e| format!("no token for {account}: {}", e.message))?;
        tokens.push((account.clone(), token));
    }
    let seen = Arc::new(Arrivals::default());
    let rss_before = rss::current_kib();
    let connecting = Instant::now();
    let frames_per_account =
        tokio::time::timeout(plan.drain, connect_all(&url, &tokens, clients, &seen))
            .await
            .map_err(|_| format!("{clients} clients not subscribed within {:?}", plan.drain))??;
    let connect_seconds = connecting.elapsed().as_secs_f64();
    // What an idle, subscribed connection holds, both ends together (this process is both).
    let connected_kib_per_client = rss_before
        .zip(rss::current_kib())
        .map(|(before, after)| after.saturating_sub(before) as f64 / clients.max(1) as f64);

    let publisher = Arc::new(Publisher {
        hub: hub.clone(),
        events: CallEvents::new(),
        accounts,
        frames_per_account,
    });
    let phase = |duration, pace| Phase {
        duration,
        pace,
        max_events: plan.max_events,
        drain: plan.drain,
        window,
    };
    run_phase(&publisher, &seen, phase(plan.warmup, None)).await?;
    let peak = run_phase(&publisher, &seen, phase(plan.saturate, None)).await?;
    if peak.arrived == 0 {
        return Err("no frame reached a client at full speed".into());
    }
    let half = peak.events_rate / 2.0;
    let paced = run_phase(&publisher, &seen, phase(plan.paced, Some(half))).await?;
    let s = hub.stats();
    Ok(json!({
        "kind": "websockets", "clients": clients, "accounts": accounts_n,
        "binding": BINDING, "window": window, "nofile": nofile,
        "connect_seconds": connect_seconds,
        "connected_kib_per_client": connected_kib_per_client,
        "peak": peak.to_json(), "paced": paced.to_json(), "paced_target": half,
        "hub": {
            "sockets": s.sockets, "events": s.events, "events_matched": s.events_matched,
            "frames": s.frames, "frames_dropped": s.frames_dropped,
            "refused_connections": s.refused_connections, "rate_limited": s.rate_limited,
        },
    }))
}

/// Connects `clients` sockets, client `i` on account `i % accounts`, each subscribed with its
/// account's token and then read by a task of its own; returns the sockets per account, which
/// is the frames each event for that account makes.
async fn connect_all(
    url: &str,
    tokens: &[(AccountId, String)],
    clients: usize,
    seen: &Arc<Arrivals>,
) -> Result<Vec<u64>, BoxError> {
    let mut per_account = vec![0u64; tokens.len()];
    let mut connecting = JoinSet::new();
    for i in 0..clients {
        if connecting.len() >= CONNECTING {
            if let Some(done) = connecting.join_next().await {
                done??;
            }
        }
        let a = i % tokens.len();
        per_account[a] += 1;
        let (url, (account, token)) = (url.to_owned(), tokens[a].clone());
        let seen = seen.clone();
        connecting.spawn(async move {
            let ws = subscribe(&url, &account, &token, i).await?;
            tokio::spawn(read(ws, seen));
            Ok::<_, String>(())
        });
    }
    while let Some(done) = connecting.join_next().await {
        done??;
    }
    Ok(per_account)
}

/// Opens a socket and subscribes it as Monster UI does; the reply must be a success.
async fn subscribe(url: &str, account: &AccountId, token: &str, n: usize) -> Result<Ws, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| format!("client {n}: {e}"))?;
    let message = json!({
        "action": "subscribe", "auth_token": token, "request_id": format!("s{n}"),
        "data": {"account_id": account.as_str(), "binding": BINDING},
    });
    ws.send(Message::text(message.to_string()))
        .await
        .map_err(|e| format!("client {n}: {e}"))?;
    let reply = loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => break text,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("client {n}: {e}")),
            None => return Err(format!("client {n}: closed before its reply")),
        }
    };
    let ok = serde_json::from_str::<Value>(reply.as_str())
        .is_ok_and(|v| v["status"] == "success" && v["request_id"] == format!("s{n}"));
    match ok {
        true => Ok(ws),
        false => Err(format!("client {n}: subscription refused: {reply}")),
    }
}

/// Reads a socket until it closes, recording every frame's arrival and its publish instant.
async fn read(mut ws: Ws, seen: Arc<Arrivals>) {
    while let Some(Ok(frame)) = ws.next().await {
        if let Message::Text(text) = frame {
            seen.record(clock::now_ns(), clock::find_stamp(text.as_bytes()));
        }
    }
}

/// Publishes stamped CHANNEL_CREATE events into the hub, accounts in turn.
struct Publisher {
    hub: Hub,
    events: CallEvents,
    accounts: Vec<AccountId>,
    /// Sockets subscribed per account: the frames an event for it makes.
    frames_per_account: Vec<u64>,
}

/// One stretch of publishing, bounded by time and by count.
#[derive(Clone, Copy)]
struct Phase {
    duration: Duration,
    /// Events per second, or as fast as the clients read (within `window`).
    pace: Option<f64>,
    max_events: u64,
    drain: Duration,
    /// Frames out at most at full speed.
    window: u64,
}

#[derive(Debug)]
struct PhaseResult {
    published: u64,
    /// Frames the hub queued, and those it dropped for clients that fell behind.
    frames: u64,
    dropped: u64,
    /// Frames that should arrive (queued minus dropped), and those that did.
    expected: u64,
    arrived: u64,
    /// From the first publish to the last arrival.
    seconds: f64,
    /// Events published, and frames received, per second over `seconds`.
    events_rate: f64,
    rate: f64,
    latency_ns: [Option<u64>; 3],
    cpu: Option<f64>,
}

impl PhaseResult {
    fn to_json(&self) -> Value {
        json!({
            "published": self.published, "frames": self.frames, "dropped": self.dropped,
            "expected": self.expected, "arrived": self.arrived, "seconds": self.seconds,
            "events_rate": self.events_rate, "rate": self.rate,
            "p50_ns": self.latency_ns[0], "p99_ns": self.latency_ns[1],
            "p999_ns": self.latency_ns[2], "cpu": self.cpu,
        })
    }
}

/// Publishes for one phase, then waits (at most `drain`) until every frame not dropped has
/// reached its client.
async fn run_phase(
    publisher: &Arc<Publisher>,
    seen: &Arc<Arrivals>,
    phase: Phase,
) -> Result<PhaseResult, BoxError> {
    let hub = &publisher.hub;
    let before = hub.stats();
    seen.reset();
    let cpu = rss::CpuSample::now();
    let start_ns = clock::now_ns();
    let publishing = tokio::spawn(publish(publisher.clone(), seen.clone(), phase));
    let published = publishing.await?;
    let counted = |now: webhooks_websockets::HubStats| {
        let frames = now.frames - before.frames;
        let dropped = now.frames_dropped - before.frames_dropped;
        (frames, dropped)
    };
    let drain_until = Instant::now() + phase.drain;
    let (mut frames, mut dropped) = counted(hub.stats());
    // A frame queued in the phase before may be dropped in this one: saturating.
    while seen.count() < frames.saturating_sub(dropped) && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(5)).await;
        (frames, dropped) = counted(hub.stats());
    }
    let arrived = seen.count();
    let seconds = seen.last_ns().saturating_sub(start_ns) as f64 / 1e9;
    let per_second = |n: u64| match seconds > 0.0 {
        true => n as f64 / seconds,
        false => 0.0,
    };
    Ok(PhaseResult {
        published,
        frames,
        dropped,
        expected: frames.saturating_sub(dropped),
        arrived,
        seconds,
        events_rate: per_second(published),
        rate: per_second(arrived),
        latency_ns: [0.5, 0.99, 0.999].map(|q| seen.latency.quantile(q)),
        cpu: cpu
            .zip(rss::CpuSample::now())
            .and_then(|(a, b)| b.own_since(&a)),
    })
}

/// The publishing task: one event at a time, as the AMQP consumer hands them to the hub;
/// returns how many it published.
async fn publish(p: Arc<Publisher>, seen: Arc<Arrivals>, phase: Phase) -> u64 {
    let start = Instant::now();
    let deadline = start + phase.duration;
    let dropped_before = p.hub.stats().frames_dropped;
    let mut published = 0u64;
    let mut queued = 0u64;
    while published < phase.max_events {
        match phase.pace {
            Some(rate) => {
                let due = start + Duration::from_secs_f64(published as f64 / rate);
                if due >= deadline {
                    break;
                }
                tokio::time::sleep_until(due).await;
            }
            None => loop {
                if Instant::now() >= deadline {
                    return published;
                }
                let out = queued.saturating_sub(seen.count());
                // Dropped frames never arrive: asked only when the window looks full.
                if out < phase.window
                    || out.saturating_sub(p.hub.stats().frames_dropped - dropped_before)
                        < phase.window
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            },
        }
        let a = published as usize % p.accounts.len();
        let mut event = p.events.event(&p.accounts[a], String::new());
        // Stamped last, so that building the event is not counted as latency.
        let stamp = clock::stamp(clock::now_ns());
        event.0.insert("Call-ID".into(), Value::String(stamp));
        p.hub.event(None, &event);
        queued += p.frames_per_account[a];
        published += 1;
        // The hub never waits; let the writers and clients on this worker run between events.
        tokio::task::yield_now().await;
    }
    published
}

/// Raises this process's soft limit on open files to `needed` when it is lower; fails, naming
/// the limit, when the hard limit is lower too. Returns the soft limit in effect.
fn raise_fd_limit(needed: u64) -> Result<u64, BoxError> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes into the struct it is given, which outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // `rlim_t` is u64 on Linux, the harness's platform (it reads `/proc` throughout).
    let (soft, hard) = (limit.rlim_cur, limit.rlim_max);
    if soft >= needed {
        return Ok(soft);
    }
    if hard < needed {
        return Err(format!(
            "needs {needed} open files, the hard limit is {hard} (raise it: ulimit -Hn {needed})"
        )
        .into());
    }
    limit.rlim_cur = needed;
    // SAFETY: `setrlimit` only reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(needed)
}
