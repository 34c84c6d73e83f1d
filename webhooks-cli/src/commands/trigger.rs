//! `trigger EVENT --account A`: KAZOO's sample event of that kind, sent through the daemon
//! (`POST /v2/events`) as if KAZOO had published it. With `listen` in another terminal this
//! shows the whole loop, event to request, with no telephony at all.

use std::io::Write;

use serde_json::{json, Value};
use webhooks_core::AccountId;

use crate::daemon::Daemon;
use crate::CliError;

/// The kinds with their own sample file; any other name is looked up among the notifications.
const KINDS: &[&str] = &[
    "channel_create",
    "channel_answer",
    "channel_bridge",
    "channel_destroy",
    "parking",
    "object",
];

/// Sends the sample and prints how many hooks it reached.
pub async fn trigger(
    daemon: &Daemon,
    kind: &str,
    account: &AccountId,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let event = sample_event(kind, account)?;
    let report = daemon.post_raw("/v2/events", event).await?;
    match report["dropped"].as_str() {
        Some(why) => writeln!(out, "sent {kind} for account {account}: dropped ({why})")?,
        None => writeln!(
            out,
            "sent {kind} for account {account}: {} deliveries",
            report["dispatched"]
        )?,
    }
    Ok(())
}

/// The sample event of `kind`, made to happen in `account`, with fresh message and call ids:
/// each trigger is a new event, with its own `webhook-id`s.
pub fn sample_event(kind: &str, account: &AccountId) -> Result<Value, CliError> {
    let mut event = if KINDS.contains(&kind) {
        webhooks_modules::sample_events(kind).and_then(|events| events.into_iter().next())
    } else {
        webhooks_modules::sample_events("notifications").and_then(|events| {
            events
                .into_iter()
                .find(|e| e["Event-Name"].as_str() == Some(kind))
        })
    }
    .ok_or_else(|| CliError::UnknownEvent(kind.to_owned(), known_kinds()))?;
    let fresh = webhooks_core::ids::new_doc_id();
    let Some(fields) = event.as_object_mut() else {
        return Err(CliError::UnknownEvent(kind.to_owned(), known_kinds()));
    };
    fields.insert("Msg-ID".into(), json!(fresh));
    if fields.contains_key("Call-ID") {
        fields.insert("Call-ID".into(), json!(fresh));
    }
    fields.insert("Account-ID".into(), json!(account));
    if fields.contains_key("Database") {
        fields.insert(
            "Database".into(),
            json!(account.db_name().replace('/', "%2F")),
        );
    }
    if let Some(ccv) = fields
        .get_mut("Custom-Channel-Vars")
        .and_then(Value::as_object_mut)
    {
        ccv.insert("Account-ID".into(), json!(account));
    }
    Ok(event)
}

fn known_kinds() -> String {
    let notifications = webhooks_modules::sample_events("notifications").unwrap_or_default();
    let names = notifications
        .iter()
        .filter_map(|e| e["Event-Name"].as_str());
    KINDS
        .iter()
        .copied()
        .chain(names)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_sample_is_moved_into_the_account_with_fresh_ids() {
        let account = AccountId::parse(A).unwrap();
        let one = sample_event("channel_create", &account).unwrap();
        let two = sample_event("channel_create", &account).unwrap();
        assert_eq!(one["Custom-Channel-Vars"]["Account-ID"], A);
        assert_ne!(one["Call-ID"], two["Call-ID"]);
        let missed = sample_event("missed_call", &account).unwrap();
        assert_eq!(missed["Event-Name"], "missed_call");
        assert_eq!(missed["Account-ID"], A);
        let object = sample_event("object", &account).unwrap();
        assert_eq!(
            object["Database"],
            "account%2F01%2F23%2F456789abcdef0123456789abcdef"
        );
    }

    #[test]
    fn an_unknown_kind_names_the_known_ones() {
        let account = AccountId::parse(A).unwrap();
        let e = sample_event("no_such_thing", &account).unwrap_err();
        assert!(e.to_string().contains("channel_create, "), "{e}");
        assert!(e.to_string().contains("missed_call"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }
}
