//! The shared half of `sms` and `mms` (spec §5.5): an inbound offnet instant message for an
//! account. KAZOO's two modules are line-for-line copies that differ only in the message type,
//! so the copy lives here once, described by an [`ImKind`] each module file declares.

use std::sync::Arc;

use serde_json::{Map, Value};
use webhooks_core::event::EventError;
use webhooks_core::{AccountId, Binding, Dispatch, Event, Hook, HookFinder, ModuleMetadata};

use crate::kz_json::{number, put, require, text};

/// Headers `kapi_im:inbound_v` requires.
const REQUIRED: &[&str] = &["Message-ID", "Body", "From", "To"];

/// What distinguishes `sms` from `mms`.
#[derive(Debug)]
pub(crate) struct ImKind {
    /// The hook name, also the message's `Event-Category` (`sms`, `mms`).
    pub hook: &'static str,
    pub name: &'static str,
    pub description: &'static str,
}

impl ImKind {
    pub fn metadata(&self) -> ModuleMetadata {
        ModuleMetadata {
            id: self.hook.to_owned(),
            name: self.name.to_owned(),
            description: self.description.to_owned(),
            modifiers: None,
        }
    }

    /// `im` / `<type>.inbound.offnet.*`, answered for (`<type>`, `inbound`): only messages
    /// arriving from carriers, not those between the account's own devices.
    pub fn bindings(&self) -> Vec<Binding> {
        vec![Binding::new(
            "im",
            &format!("{}.inbound.offnet.*", self.hook),
            self.hook,
            "inbound",
        )]
    }

    /// Validates the message, then gives every hook of the account the same payload.
    pub fn handle_event(
        &self,
        event: &Event,
        hooks: &dyn HookFinder,
    ) -> Result<Vec<Dispatch>, EventError> {
        for header in REQUIRED {
            require(event, header)?;
        }
        let account = event
            .str("Account-ID")
            .and_then(|a| AccountId::parse(a).ok())
            .ok_or(EventError::NoAccount)?;
        let found: Vec<Arc<Hook>> = hooks.find(self.hook, &account);
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let payload = payload(event, &account);
        Ok(found
            .into_iter()
            .map(|hook| Dispatch {
                hook,
                payload: payload.clone(),
            })
            .collect())
    }
}

/// `{id, account_id, type, from, to, body, origin, charges}`; `type` is the message's
/// `Event-Category` and `origin` its `Route-Type`, as KAZOO names them.
fn payload(event: &Event, account: &AccountId) -> Map<String, Value> {
    let mut p = Map::new();
    put(&mut p, "id", text(event.get("Message-ID")));
    p.insert("account_id".into(), account.as_str().into());
    put(&mut p, "type", event.category());
    put(&mut p, "from", text(event.get("From")));
    put(&mut p, "to", text(event.get("To")));
    put(
        &mut p,
        "body",
        text(event.get("Body")).filter(|b| !b.is_empty()),
    );
    put(&mut p, "origin", text(event.get("Route-Type")));
    put(&mut p, "charges", number(event.get("Charges")));
    p
}
