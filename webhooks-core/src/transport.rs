//! What a message transport (RabbitMQ) needs from the engine besides events, as small traits
//! so the transport depends on core only.
//!
//! KAZOO keeps every webhooks node in step with configuration through AMQP: document change
//! notices (`doc_created` / `doc_edited` / `doc_deleted`, spec §4.2), re-enable requests from
//! crossbar (§4.3), and the `webhook_disabled` notification the disabler publishes (§4.5).
//!
//! Several nodes share one more thing KAZOO leaves per node: the failed tries that count
//! towards auto-disable ([`FailedTry`], [`FailureShare`]). KAZOO keeps them in each node's
//! cache, so with three nodes a hook needs three times the failures before it is disabled;
//! here each node tells the others, and every node counts every failure.

use async_trait::async_trait;

use crate::event::Event;
use crate::ids::AccountId;
use crate::store::StoreResult;

/// The action of a document change notice (its `Event-Name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocAction {
    Created,
    Edited,
    Deleted,
}

impl DocAction {
    pub fn parse(event_name: &str) -> Option<Self> {
        match event_name {
            "doc_created" => Some(DocAction::Created),
            "doc_edited" => Some(DocAction::Edited),
            "doc_deleted" => Some(DocAction::Deleted),
            _ => None,
        }
    }
}

/// A KAZOO document change notice. Notices carry no document body: the receiver reads the
/// document from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocChange {
    pub action: DocAction,
    /// The document id (`ID`).
    pub id: String,
    /// The document's `pvt_type` (`Type`): `webhook`, `account`, ...
    pub doc_type: String,
    /// The database (`Database`).
    pub database: String,
    /// `Account-ID`: the document's owner.
    pub account_id: Option<AccountId>,
    /// `Is-Soft-Deleted`.
    pub soft_deleted: bool,
}

/// Receives configuration traffic (the engine implements it).
#[async_trait]
pub trait ConfigListener: Send + Sync {
    /// A document changed elsewhere: bring the hook table in step.
    async fn doc_changed(&self, change: &DocChange);

    /// Crossbar's re-enable request: re-enable the auto-disabled hooks of `account` (and of
    /// its descendants); returns how many.
    async fn reenable(&self, account: &AccountId, descendants: bool) -> StoreResult<usize>;

    /// Failed tries another node made: count them as if they were this node's.
    fn peer_failures(&self, failures: &[FailedTry]);

    /// Another node's operator flushed failure counts: forget them here too.
    fn peer_flushed(&self, flushed: &FlushedFailures);
}

/// One failed try of a hook, as counted towards auto-disable (spec §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedTry {
    pub account: AccountId,
    pub hook: String,
    /// When it failed, unix milliseconds (the failing node's clock).
    pub at_ms: i64,
}

/// Tells the other nodes about this node's failed tries (the AMQP transport implements it).
/// Called on the delivery path, so it must not wait: an implementation queues and sends in
/// the background, and drops (and counts) what it cannot keep up with.
pub trait FailureShare: Send + Sync {
    fn share(&self, failure: FailedTry);

    /// Tells the other nodes that failure counts were flushed here (best effort, like
    /// [`share`](Self::share)).
    fn flushed(&self, flushed: FlushedFailures);
}

/// Failure counts an operator flushed: an account's, or one of its hooks'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushedFailures {
    pub account: AccountId,
    /// `None`: every hook of the account.
    pub hook: Option<String>,
}

/// Publishes notifications to the outside world (the AMQP `notifications` exchange).
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(&self, event: &Event) -> Result<(), String>;
}

/// Receives every event that reaches this node for the live-event streams (the websockets
/// crate's hub implements it): what the node's own queue gets for the bindings a [`NodeBinder`]
/// added, and the events published to this node directly (`POST /v2/events`). `routing_key`
/// is the AMQP routing key the event came with, when it came over AMQP.
pub trait EventTap: Send + Sync {
    fn event(&self, routing_key: Option<&str>, event: &Event);
}

/// Binds and unbinds this node's own queue (the AMQP transport implements it), so events a
/// live stream asks for reach this node whichever node the shared queue gives them to. Calls
/// are idempotent and never wait: the transport applies them in order, and binds again what
/// is bound after a reconnect. Whoever calls counts references; the binder does not.
pub trait NodeBinder: Send + Sync {
    fn bind(&self, exchange: &str, routing_key: &str);
    fn unbind(&self, exchange: &str, routing_key: &str);
}
