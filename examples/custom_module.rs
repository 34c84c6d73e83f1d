//! Write your own hook type: a module like KAZOO's `webhooks_skel`, registered next to KAZOO's.
//!
//! A module is one small trait, `WebhookModule`: `init` describes the hook for the catalogue
//! (`GET /v2/webhooks`), `bindings_and_responders` says which AMQP messages it wants, and
//! `handle_event` turns one event into payloads for the hooks that should get it. Firing,
//! retries, attempts and auto-disable are the engine's, the same for every module.
//!
//! `cargo run --example custom_module` registers an `invoice_paid` module, stores a hook for
//! it, publishes a billing event, and prints what a local receiver got. CI runs it as a test.

use std::sync::Arc;
use std::time::Duration;

use kazoo_webhooks::core::destination::DestinationPolicy;
use kazoo_webhooks::core::event::EventError;
use kazoo_webhooks::core::store::{AccountStore, HookStore};
use kazoo_webhooks::core::{
    AccountId, Binding, Dispatch, Doc, Event, HookFinder, ModuleMetadata, WebhookModule,
};
use kazoo_webhooks::store::EmbeddedStore;
use serde_json::{json, Map, Value};
use webhooks_engine::{Engine, EngineConfig};
use webhooks_testkit::Receiver;

/// Fires when a billing system announces a paid invoice.
struct InvoicePaid;

impl WebhookModule for InvoicePaid {
    fn init(&self) -> ModuleMetadata {
        ModuleMetadata {
            id: "invoice_paid".into(),
            name: "Invoice Paid".into(),
            description: "Fired when an invoice of the account is paid".into(),
            modifiers: None,
        }
    }

    fn bindings_and_responders(&self) -> Vec<Binding> {
        // Bound on the `billing` exchange; answers (`billing`, `invoice_paid`).
        vec![Binding::new(
            "billing",
            "billing.invoice.paid",
            "billing",
            "invoice_paid",
        )]
    }

    fn handle_event(
        &self,
        event: &Event,
        hooks: &dyn HookFinder,
    ) -> Result<Vec<Dispatch>, EventError> {
        let account = event.required_str("Account-ID")?;
        let account = AccountId::parse(account).map_err(|_| EventError::NoAccount)?;
        let amount = event
            .get("Amount")
            .cloned()
            .ok_or_else(|| EventError::MissingHeader("Amount".into()))?;
        let mut payload = Map::new();
        payload.insert("account_id".into(), json!(account));
        payload.insert("invoice_id".into(), json!(event.str("Invoice-ID")));
        payload.insert("amount".into(), amount);
        payload.insert("hook_event".into(), json!("invoice_paid"));
        // `find` gives the account's `invoice_paid` (and `all`) hooks, and its resellers'
        // `include_subaccounts` hooks.
        Ok(hooks
            .find("invoice_paid", &account)
            .into_iter()
            .map(|hook| Dispatch {
                hook,
                payload: payload.clone(),
            })
            .collect())
    }

    fn samples(&self) -> Vec<Value> {
        vec![
            json!({"account_id": "0123456789abcdef0123456789abcdef", "invoice_id": "inv-1", "amount": 42.5, "hook_event": "invoice_paid"}),
        ]
    }
}

/// Runs the whole story; returns the body the receiver got.
async fn run() -> Result<Value, Box<dyn std::error::Error>> {
    let receiver = Receiver::start().await;
    let account = "0123456789abcdef0123456789abcdef";

    // KAZOO's modules plus ours: `invoice_paid` is now a hook name clients may use, listed by
    // `GET /v2/webhooks` and accepted by validation.
    let registry = kazoo_webhooks::modules::kazoo_registry(&[]).register(InvoicePaid);
    assert!(registry.is_available("invoice_paid"));

    let store = Arc::new(EmbeddedStore::open_in_memory()?);
    store
        .save_account(
            Doc::from_value(json!({"_id": account, "pvt_type": "account", "name": "acme"}))
                .unwrap(),
        )
        .await?;
    store
        .save_hook(
            Doc::from_value(json!({"_id": "paid", "pvt_type": "webhook", "pvt_account_id": account, "name": "Paid",
                "hook": "invoice_paid", "uri": receiver.url("/paid"), "format": "json"}))
            .unwrap(),
        )
        .await?;
    // The receiver listens on loopback, which the SSRF guard refuses unless allowed.
    let config = EngineConfig {
        destinations: DestinationPolicy::loopback_allowed(),
        ..EngineConfig::default()
    };
    let engine = Engine::start(store, registry, config).await?;

    let event = json!({"Event-Category": "billing", "Event-Name": "invoice_paid", "Account-ID": account,
                       "Invoice-ID": "inv-7", "Amount": 99.95});
    let report = engine.publish(Event::from_value(event)?).await?;
    println!("invoice_paid dispatched to {} hook(s)", report.dispatched);
    let got = tokio::time::timeout(Duration::from_secs(10), receiver.wait_for("/paid", 1)).await?;
    let body: Value = serde_json::from_str(&got[0].body)?;
    println!("receiver got: {body}");
    Ok(body)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run().await.map(|_| ())
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_custom_module_fires() {
        let body = super::run().await.unwrap();
        assert_eq!(body["invoice_id"], "inv-7");
        assert_eq!(body["amount"], 99.95);
        assert_eq!(body["hook_event"], "invoice_paid");
        assert_eq!(
            body["cluster_id"],
            serde_json::Value::Null,
            "no cluster id configured here"
        );
    }
}
