//! What a message transport (RabbitMQ) needs from the engine besides events, as small traits
//! so the transport depends on core only.
//!
//! KAZOO keeps every webhooks node in step with configuration through AMQP: document change
//! notices (`doc_created` / `doc_edited` / `doc_deleted`, spec §4.2), re-enable requests from
//! crossbar (§4.3), and the `webhook_disabled` notification the disabler publishes (§4.5).

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
}

/// Publishes notifications to the outside world (the AMQP `notifications` exchange).
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(&self, event: &Event) -> Result<(), String>;
}
