//! The bindings live streams add to this node's own queue (KAZOO's blackhole binds its
//! socket listeners the same way), so the events a browser subscribed to reach the node
//! holding its socket, whichever node the shared queue gives them to.
//!
//! [`NodeBindings::bind`] and [`unbind`](NodeBindings::unbind) never wait: they queue the
//! request for one task, which applies the requests in the order they were made. That task
//! keeps the pairs wanted and, for the current connection, the pairs bound: binding a wanted
//! pair again or unbinding one not wanted changes nothing, and when a new connection declares
//! a new node queue (the old one went with the old connection) every wanted pair is bound on
//! it again. Whoever calls counts references; this does not.
//!
//! An exchange KAZOO declares on every connection is bound as it is; any other is declared
//! first, with the type KAZOO gives it ([`exchange_kind`]: topic unless KAZOO says
//! otherwise), as the shared queue does for a module's exchange: a live stream may ask for
//! KAZOO's `conference` or `faxes`, which this transport has no other reason to declare. If
//! the broker refuses (the exchange exists with another type, no access), the refusal is
//! logged and counted, on a channel of the task's own so the consumers' channels are not
//! closed with it, and the pair is tried again on the next connection.
//!
//! The node queue's own bindings ([`NODE_QUEUE_BINDINGS`]) are never touched: a stream that
//! asks for one of them and lets it go does not take configuration notices from this node.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Connection};
use tokio::sync::{mpsc, watch};

use crate::keys::{exchange_kind, KAZOO_EXCHANGES, NODES_EXCHANGE, NODE_QUEUE_BINDINGS};
use crate::stats::{inc, AmqpStats};

/// How long one bind or unbind (with the exchange declaration it needs) may take.
const PATIENCE: Duration = Duration::from_secs(5);

/// AMQP's limit on an exchange name or a routing key (a "short string").
const MAX_NAME_BYTES: usize = 255;

/// An exchange and a routing key.
type Pair = (String, String);

enum Request {
    Bind(Pair),
    Unbind(Pair),
}

/// Where bindings go: this node's queue on the current connection.
#[derive(Clone)]
struct Target {
    connection: Arc<Connection>,
    queue: ShortString,
}

/// The requesting side: cheap to clone, never waits. The connection supervisor tells it which
/// queue is current ([`attach`](Self::attach), [`detach`](Self::detach)).
#[derive(Clone)]
pub(crate) struct NodeBindings {
    requests: mpsc::UnboundedSender<Request>,
    target: watch::Sender<Option<Target>>,
    stats: Arc<AmqpStats>,
}

impl NodeBindings {
    /// Starts the task that applies the requests, until `stopped`.
    pub(crate) fn start(stats: Arc<AmqpStats>, stopped: watch::Receiver<bool>) -> Self {
        // Unbounded, because a request cannot be dropped (a lost unbind leaves a stream's
        // binding for good) nor waited for. Callers ask only when a pair's first stream comes
        // or its last one goes, and the task keeps up even without a connection.
        let (requests, waiting) = mpsc::unbounded_channel();
        let (target, current) = watch::channel(None);
        let binder = Binder {
            stats: stats.clone(),
            wanted: BTreeSet::new(),
            queue: None,
        };
        tokio::spawn(binder.run(waiting, current, stopped));
        NodeBindings {
            requests,
            target,
            stats,
        }
    }

    /// Asks for `routing_key` on `exchange` to reach this node's queue.
    pub(crate) fn bind(&self, exchange: &str, routing_key: &str) {
        if exchange.len() > MAX_NAME_BYTES || routing_key.len() > MAX_NAME_BYTES {
            // The broker could not even be asked: AMQP cannot carry the name.
            inc(&self.stats.node_binding_failures);
            tracing::warn!(
                exchange,
                routing_key,
                "binding refused: an exchange name or routing key is at most 255 bytes"
            );
            return;
        }
        self.request(Request::Bind((exchange.to_owned(), routing_key.to_owned())));
    }

    /// Lets `routing_key` on `exchange` go.
    pub(crate) fn unbind(&self, exchange: &str, routing_key: &str) {
        self.request(Request::Unbind((
            exchange.to_owned(),
            routing_key.to_owned(),
        )));
    }

    fn request(&self, request: Request) {
        // Fails only once the transport stopped, when there is no queue left to bind.
        let _ = self.requests.send(request);
    }

    /// A session declared this node's `queue` on `connection`: bind every wanted pair on it.
    pub(crate) fn attach(&self, connection: Arc<Connection>, queue: ShortString) {
        self.target.send_replace(Some(Target { connection, queue }));
    }

    /// The session is ending: its queue goes with it.
    pub(crate) fn detach(&self) {
        self.target.send_replace(None);
    }
}

/// The task's state.
struct Binder {
    stats: Arc<AmqpStats>,
    /// Every pair asked for and not let go since: what each new queue is bound with.
    wanted: BTreeSet<Pair>,
    /// The current connection's queue, while there is one.
    queue: Option<OnQueue>,
}

/// This node's queue on one connection, and what is bound on it.
struct OnQueue {
    target: Target,
    /// The task's own channel: a refusal closes it, not a consumer's.
    channel: Option<Channel>,
    bound: HashSet<Pair>,
    /// Exchanges this task declared on this connection.
    declared: HashSet<String>,
}

/// Why a bind or unbind did not happen.
enum Failure {
    /// The connection went: the queue went with it, and the next one is bound afresh.
    Lost,
    Refused(lapin::Error),
    TimedOut,
}

impl Binder {
    async fn run(
        mut self,
        mut requests: mpsc::UnboundedReceiver<Request>,
        mut target: watch::Receiver<Option<Target>>,
        mut stopped: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                biased;
                // Not the guard `wait_for` returns: the arms below await.
                _ = async { stopped.wait_for(|s| *s).await.is_ok() } => return,
                changed = target.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let next = target.borrow_and_update().clone();
                    self.follow(next).await;
                }
                request = requests.recv() => match request {
                    Some(Request::Bind(pair)) => {
                        if self.wanted.insert(pair.clone()) {
                            self.bind(&pair).await;
                        }
                    }
                    Some(Request::Unbind(pair)) => {
                        if self.wanted.remove(&pair) {
                            self.unbind(&pair).await;
                        }
                    }
                    None => return,
                },
            }
        }
    }

    /// Moves to the queue of a new connection (or to none) and binds it with every wanted
    /// pair: a new queue has none of them.
    async fn follow(&mut self, target: Option<Target>) {
        self.queue = target.map(|target| OnQueue {
            target,
            channel: None,
            bound: HashSet::new(),
            declared: HashSet::new(),
        });
        for pair in self.wanted.clone() {
            if self.queue.is_none() {
                break;
            }
            self.bind(&pair).await;
        }
    }

    async fn bind(&mut self, pair: &Pair) {
        let Some(queue) = self
            .queue
            .as_mut()
            .filter(|q| !is_own(pair) && !q.bound.contains(pair))
        else {
            return;
        };
        match queue.apply(pair, true).await {
            Ok(()) => {
                queue.bound.insert(pair.clone());
                inc(&self.stats.node_binds);
                tracing::debug!(exchange = %pair.0, routing_key = %pair.1, "node queue bound");
            }
            Err(failure) => {
                if let Failure::TimedOut = failure {
                    // It may be bound after all: unbinding it later asks the broker anyway,
                    // and unbinding a pair that is not bound is no error there.
                    queue.bound.insert(pair.clone());
                }
                self.failed("bind", pair, failure);
            }
        }
    }

    async fn unbind(&mut self, pair: &Pair) {
        let Some(queue) = self.queue.as_mut().filter(|q| q.bound.contains(pair)) else {
            return;
        };
        // Taken out first: if the unbind fails the pair may still arrive, but binding it
        // again asks the broker again (binding is idempotent there), and the next queue
        // will not have it.
        queue.bound.remove(pair);
        match queue.apply(pair, false).await {
            Ok(()) => {
                inc(&self.stats.node_unbinds);
                tracing::debug!(exchange = %pair.0, routing_key = %pair.1, "node queue unbound");
            }
            Err(failure) => self.failed("unbind", pair, failure),
        }
    }

    fn failed(&mut self, what: &str, (exchange, routing_key): &Pair, failure: Failure) {
        match failure {
            Failure::Lost => {
                // Nothing more can be done on this connection; the supervisor opens the next
                // one and every wanted pair is bound there.
                self.queue = None;
                tracing::debug!(
                    exchange,
                    routing_key,
                    "node queue {what} lost with the connection"
                );
            }
            Failure::Refused(e) => {
                inc(&self.stats.node_binding_failures);
                tracing::warn!(
                    exchange,
                    routing_key,
                    error = %e,
                    "the broker refused to {what} this node's queue; tried again on the next connection"
                );
            }
            Failure::TimedOut => {
                inc(&self.stats.node_binding_failures);
                if let Some(queue) = &mut self.queue {
                    // An answer may still come on that channel: use a new one.
                    queue.channel = None;
                }
                tracing::warn!(
                    exchange,
                    routing_key,
                    "node queue {what} not answered within {PATIENCE:?}"
                );
            }
        }
    }
}

/// The node queue's own bindings, which live streams neither add nor take away.
fn is_own((exchange, routing_key): &Pair) -> bool {
    NODE_QUEUE_BINDINGS
        .iter()
        .any(|(e, k)| e == exchange && k == routing_key)
}

impl OnQueue {
    /// Binds (or unbinds) `pair`, within [`PATIENCE`].
    async fn apply(&mut self, pair: &Pair, bind: bool) -> Result<(), Failure> {
        let done = if bind {
            tokio::time::timeout(PATIENCE, self.bind(pair)).await
        } else {
            tokio::time::timeout(PATIENCE, self.unbind(pair)).await
        };
        match done {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) if !self.target.connection.status().connected() => Err(Failure::Lost),
            Ok(Err(e)) => Err(Failure::Refused(e)),
            Err(_) => Err(Failure::TimedOut),
        }
    }

    async fn bind(&mut self, (exchange, routing_key): &Pair) -> Result<(), lapin::Error> {
        self.declare(exchange).await?;
        self.channel()
            .await?
            .queue_bind(
                self.target.queue.clone(),
                exchange.as_str().into(),
                routing_key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
    }

    async fn unbind(&mut self, (exchange, routing_key): &Pair) -> Result<(), lapin::Error> {
        self.channel()
            .await?
            .queue_unbind(
                self.target.queue.clone(),
                exchange.as_str().into(),
                routing_key.as_str().into(),
                FieldTable::default(),
            )
            .await
    }

    /// Declares an exchange the session has not declared, once per connection.
    async fn declare(&mut self, exchange: &str) -> Result<(), lapin::Error> {
        let declared_by_the_session =
            KAZOO_EXCHANGES.contains(&exchange) || exchange == NODES_EXCHANGE;
        if declared_by_the_session || self.declared.contains(exchange) {
            return Ok(());
        }
        self.channel()
            .await?
            .exchange_declare(
                exchange.into(),
                exchange_kind(exchange),
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await?;
        self.declared.insert(exchange.to_owned());
        Ok(())
    }

    /// The task's channel, opened again after the broker closed it over a refusal.
    async fn channel(&mut self) -> Result<Channel, lapin::Error> {
        if let Some(channel) = &self.channel {
            if channel.status().connected() {
                return Ok(channel.clone());
            }
        }
        let channel = self.target.connection.create_channel().await?;
        self.channel = Some(channel.clone());
        Ok(channel)
    }
}
