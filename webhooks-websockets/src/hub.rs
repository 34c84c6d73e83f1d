//! The hub: every open socket of this node, what each subscribed to, and the fan-out of events
//! to them. It owns the sockets' state; a connection holds its [`Socket`] and asks the hub to
//! change it.
//!
//! Sources (the AMQP bindings a subscription needs on this node's queue) are counted per
//! subscription that holds them: a socket releases only what it took, so one socket's
//! unsubscribe or close never cuts another socket off (KAZOO's bug B1), and a binding leaves the
//! node's queue when its last holder goes.
//!
//! Events come in through [`EventTap`] (the AMQP transport's node queue, and `POST /v2/events`
//! through [`crate::Tapped`]); each is matched against every socket's subscription keys and
//! queued, as one frame per matching subscription, in the socket's [`Outbox`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::{json, Value};
use webhooks_core::delivery_stats::{TryObserver, TryReport};
use webhooks_core::transport::{EventTap, NodeBinder};
use webhooks_core::{AccountId, Event};

use crate::bindings::Subscription;
use crate::config::HubConfig;
use crate::outbox::Outbox;
use crate::protocol::{event_frame, EventParts};
use crate::routing::{dispatch_key, topic_matches};

/// Every socket of this node, and the fan-out. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    config: HubConfig,
    /// This node's name: each socket's `destination`.
    node: String,
    sockets: RwLock<HashMap<String, Arc<Socket>>>,
    /// Connections per peer address, counted from the moment an upgrade is admitted (before
    /// its socket exists), so a burst cannot slip past `max_connections_per_ip`.
    per_peer: Mutex<HashMap<IpAddr, usize>>,
    /// (exchange, routing key) → how many subscriptions hold it.
    sources: Mutex<HashMap<(String, String), usize>>,
    binder: RwLock<Option<Arc<dyn NodeBinder>>>,
    /// Subscriptions to `webhooks.delivery.*` now: without any, a try costs the hub nothing.
    delivery_watchers: AtomicUsize,
    stats: Counters,
}

/// One open connection, as the hub keeps it.
pub(crate) struct Socket {
    /// `ip:port` of the peer, KAZOO's socket id.
    pub(crate) id: String,
    pub(crate) peer: IpAddr,
    /// When it connected, gregorian seconds.
    connected: i64,
    state: Mutex<SocketState>,
    pub(crate) outbox: Outbox,
}

#[derive(Default)]
struct SocketState {
    /// The account of the first token that authenticated it; never changes after.
    account: Option<AccountId>,
    name: Option<Value>,
    metadata: Option<Value>,
    subscriptions: Vec<Subscription>,
}

/// A connection counted against its peer address, until dropped.
pub(crate) struct Admission {
    hub: Hub,
    peer: IpAddr,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let inner = &self.hub.inner;
        let mut per_peer = inner.per_peer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = per_peer.get_mut(&self.peer) {
            *open -= 1;
            if *open == 0 {
                per_peer.remove(&self.peer);
            }
        }
    }
}

/// Why an upgrade is refused before it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    TooManyFromPeer,
}

#[derive(Default)]
struct Counters {
    events: AtomicU64,
    events_matched: AtomicU64,
    frames: AtomicU64,
    frames_dropped: AtomicU64,
    refused_connections: AtomicU64,
    rate_limited: AtomicU64,
}

/// What the hub has counted, and its sockets now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HubStats {
    pub sockets: u64,
    /// Bindings held on this node's queue now.
    pub sources: u64,
    /// Events that reached the hub, and those that matched at least one subscription.
    pub events: u64,
    pub events_matched: u64,
    /// Event frames queued to sockets, and those dropped for slow readers.
    pub frames: u64,
    pub frames_dropped: u64,
    /// Upgrades refused (per-address cap) and messages refused (rate limit).
    pub refused_connections: u64,
    pub rate_limited: u64,
}

impl Hub {
    pub fn new(config: HubConfig, node: impl Into<String>) -> Hub {
        Hub {
            inner: Arc::new(Inner {
                config,
                node: node.into(),
                sockets: RwLock::default(),
                per_peer: Mutex::default(),
                sources: Mutex::default(),
                binder: RwLock::default(),
                delivery_watchers: AtomicUsize::new(0),
                stats: Counters::default(),
            }),
        }
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Where the hub asks for bindings on this node's queue (the AMQP transport). What is
    /// already held is bound at once.
    pub fn set_binder(&self, binder: Arc<dyn NodeBinder>) {
        let held: Vec<(String, String)> = self.lock_sources().keys().cloned().collect();
        for (exchange, key) in &held {
            binder.bind(exchange, key);
        }
        *self.inner.binder.write().unwrap_or_else(|e| e.into_inner()) = Some(binder);
    }

    pub fn stats(&self) -> HubStats {
        let c = &self.inner.stats;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        HubStats {
            sockets: self.read_sockets().len() as u64,
            sources: self.lock_sources().len() as u64,
            events: get(&c.events),
            events_matched: get(&c.events_matched),
            frames: get(&c.frames),
            frames_dropped: get(&c.frames_dropped),
            refused_connections: get(&c.refused_connections),
            rate_limited: get(&c.rate_limited),
        }
    }

    /// Admits a connection from `peer`, unless its address has `max_connections_per_ip`
    /// already; it counts against the address until the [`Admission`] is dropped (the
    /// connection ended, or its upgrade never happened).
    pub(crate) fn admit(&self, peer: &SocketAddr) -> Result<Admission, Refused> {
        let mut per_peer = self
            .inner
            .per_peer
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let open = per_peer.entry(peer.ip()).or_insert(0);
        if self
            .inner
            .config
            .max_connections_per_ip
            .is_some_and(|cap| *open >= cap)
        {
            self.inner
                .stats
                .refused_connections
                .fetch_add(1, Ordering::Relaxed);
            return Err(Refused::TooManyFromPeer);
        }
        *open += 1;
        Ok(Admission {
            hub: self.clone(),
            peer: peer.ip(),
        })
    }

    /// Registers a new connection.
    pub(crate) fn open(&self, peer: SocketAddr) -> Arc<Socket> {
        let c = &self.inner.config;
        let socket = Arc::new(Socket {
            id: peer.to_string(),
            peer: peer.ip(),
            connected: webhooks_core::time::now_gregorian(),
            state: Mutex::default(),
            outbox: Outbox::new(c.max_queued_messages, c.max_queued_bytes),
        });
        self.write_sockets()
            .insert(socket.id.clone(), socket.clone());
        socket
    }

    /// Forgets a closed connection and releases every source its subscriptions held.
    pub(crate) fn close(&self, socket: &Socket) {
        self.write_sockets().remove(&socket.id);
        let subscriptions = std::mem::take(&mut socket.lock().subscriptions);
        for s in &subscriptions {
            self.release(s);
        }
    }

    pub(crate) fn count_rate_limited(&self) {
        self.inner
            .stats
            .rate_limited
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Binds the socket to `account` for good, unless the account has its
    /// `max_sockets_per_account` already.
    pub(crate) fn authenticate(&self, socket: &Socket, account: AccountId) -> Result<(), String> {
        let max = self.inner.config.max_sockets_per_account;
        let held = self
            .read_sockets()
            .values()
            .filter(|s| s.lock().account.as_ref() == Some(&account))
            .count();
        if held >= max {
            return Err(format!(
                "too many sockets for account {account} (at most {max})"
            ));
        }
        socket.lock().account = Some(account);
        Ok(())
    }

    /// Keeps `name` and `metadata` when a message carries them (KAZOO overwrites them with
    /// every message, erasing them when absent: bug B11).
    pub(crate) fn label(&self, socket: &Socket, name: Option<Value>, metadata: Option<Value>) {
        let mut state = socket.lock();
        if name.is_some() {
            state.name = name;
        }
        if metadata.is_some() {
            state.metadata = metadata;
        }
    }

    /// Adds a subscription (a binding the socket has already is not added twice, and takes no
    /// second reference); returns every binding the socket holds.
    pub(crate) fn subscribe(
        &self,
        socket: &Socket,
        sub: Subscription,
    ) -> Result<Vec<String>, String> {
        let mut state = socket.lock();
        let held = |s: &Subscription| s.binding == sub.binding && s.keys == sub.keys;
        if !state.subscriptions.iter().any(held) {
            let max = self.inner.config.max_bindings_per_socket;
            if state.subscriptions.len() >= max {
                return Err(format!("too many bindings on this socket (at most {max})"));
            }
            self.acquire(&sub);
            state.subscriptions.push(sub);
        }
        Ok(bindings(&state))
    }

    /// Removes the socket's subscriptions to `binding`, releasing what they held; returns the
    /// bindings left. A binding the socket does not hold changes nothing.
    pub(crate) fn unsubscribe(&self, socket: &Socket, binding: &str) -> Vec<String> {
        let mut state = socket.lock();
        let (gone, kept) = std::mem::take(&mut state.subscriptions)
            .into_iter()
            .partition(|s| s.binding == binding);
        state.subscriptions = kept;
        let left = bindings(&state);
        drop(state);
        for s in &gone {
            self.release(s);
        }
        left
    }

    /// The sockets authenticated as `account`, as crossbar's `GET .../websockets` shows them.
    pub fn sockets_of(&self, account: &AccountId) -> Vec<Value> {
        let sockets = self.read_sockets();
        let mut views: Vec<(i64, Value)> = sockets
            .values()
            .filter(|s| s.lock().account.as_ref() == Some(account))
            .map(|s| (s.connected, self.view(s)))
            .collect();
        views.sort_by_key(|(connected, _)| *connected);
        views.into_iter().map(|(_, v)| v).collect()
    }

    /// One socket and the account it authenticated as.
    pub fn socket(&self, id: &str) -> Option<(Option<AccountId>, Value)> {
        let sockets = self.read_sockets();
        let s = sockets.get(id)?;
        let account = s.lock().account.clone();
        Some((account, self.view(s)))
    }

    fn view(&self, s: &Socket) -> Value {
        let state = s.lock();
        let mut v = json!({
            "websocket_session_id": s.id,
            "bindings": bindings(&state),
            "timestamp": s.connected,
            "destination": self.inner.node,
            "source": s.peer.to_string(),
        });
        if let Some(name) = &state.name {
            v["name"] = name.clone();
        }
        if let Some(metadata) = &state.metadata {
            v["metadata"] = metadata.clone();
        }
        v
    }

    fn acquire(&self, sub: &Subscription) {
        if watches_deliveries(sub) {
            self.inner.delivery_watchers.fetch_add(1, Ordering::Relaxed);
        }
        let mut sources = self.lock_sources();
        for source in &sub.sources {
            let n = sources.entry(source.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                if let Some(b) = self.binder() {
                    b.bind(&source.0, &source.1);
                }
            }
        }
    }

    fn release(&self, sub: &Subscription) {
        if watches_deliveries(sub) {
            self.inner.delivery_watchers.fetch_sub(1, Ordering::Relaxed);
        }
        let mut sources = self.lock_sources();
        for source in &sub.sources {
            let Some(n) = sources.get_mut(source) else {
                continue;
            };
            *n -= 1;
            if *n == 0 {
                sources.remove(source);
                if let Some(b) = self.binder() {
                    b.unbind(&source.0, &source.1);
                }
            }
        }
    }

    fn binder(&self) -> Option<Arc<dyn NodeBinder>> {
        self.inner
            .binder
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn read_sockets(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Socket>>> {
        self.inner.sockets.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_sockets(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Socket>>> {
        self.inner
            .sockets
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn lock_sources(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), usize>> {
        self.inner.sources.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Socket {
    fn lock(&self) -> std::sync::MutexGuard<'_, SocketState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn watches_deliveries(sub: &Subscription) -> bool {
    sub.binding.starts_with("webhooks.")
}

/// The socket's client bindings, one per subscription.
fn bindings(state: &SocketState) -> Vec<String> {
    state
        .subscriptions
        .iter()
        .map(|s| s.binding.clone())
        .collect()
}

/// The fan-out. Runs on the caller's task (the AMQP consumer, an API request) and never waits:
/// a frame goes into a bounded outbox, dropping the oldest for a reader that falls behind.
impl EventTap for Hub {
    fn event(&self, routing_key: Option<&str>, event: &Event) {
        let stats = &self.inner.stats;
        stats.events.fetch_add(1, Ordering::Relaxed);
        let Some(key) = dispatch_key(routing_key, event) else {
            return;
        };
        // Built once, on the first match: most events match no socket.
        let mut parts: Option<EventParts> = None;
        let sockets = self.read_sockets();
        for socket in sockets.values() {
            let matched: Vec<(String, String)> = {
                let state = socket.lock();
                state
                    .subscriptions
                    .iter()
                    .filter_map(|s| {
                        let k = s.keys.iter().find(|k| topic_matches(k, &key))?;
                        Some((s.binding.clone(), k.clone()))
                    })
                    .collect()
            };
            for (binding, subscription_key) in matched {
                let parts = parts.get_or_insert_with(|| EventParts {
                    name: event.name().unwrap_or_default().to_owned(),
                    routing_key: key.clone(),
                    data: crate::normalize::normalize_event(&event.0).to_string(),
                });
                let dropped = socket
                    .outbox
                    .push(event_frame(&binding, &subscription_key, parts));
                stats.frames.fetch_add(1, Ordering::Relaxed);
                stats.frames_dropped.fetch_add(dropped, Ordering::Relaxed);
            }
        }
        if parts.is_some() {
            stats.events_matched.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Each try the engine makes, as an event frame for `webhooks.delivery.<HOOK_ID|*>`
/// subscriptions (`name` `delivery`, routing key `webhooks.delivery.<account>.<hook>`).
impl TryObserver for Hub {
    fn tried(&self, r: &TryReport<'_>) {
        if self.inner.delivery_watchers.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut fields = serde_json::Map::new();
        let mut put = |k: &str, v: Value| {
            if !v.is_null() {
                fields.insert(k.to_owned(), v);
            }
        };
        put("Event-Category", json!("webhooks"));
        put("Event-Name", json!("delivery"));
        put("Account-ID", json!(r.account));
        put("Hook-ID", json!(r.hook));
        put("Webhook-ID", json!(r.webhook_id));
        put("URI", json!(r.uri));
        put(
            "Result",
            json!(if r.succeeded { "success" } else { "failure" }),
        );
        put("Status", json!(r.status));
        put("Client-Error", json!(r.error));
        put("Latency-Ms", json!(r.latency_ms));
        put("Attempt", json!(r.attempt));
        put("Last", json!(r.last));
        let key = format!(
            "webhooks.delivery.{}.{}",
            r.account,
            crate::routing::amqp_encode(r.hook)
        );
        self.event(Some(&key), &Event(fields));
    }
}
