//! Run the delivery engine inside your own program: no daemon, no broker, no HTTP API.
//!
//! `cargo run --example embed_engine` stores one hook, publishes KAZOO's CHANNEL_CREATE sample
//! event with `Engine::publish`, and prints what a local receiver got. It exits by itself.

use std::sync::Arc;
use std::time::Duration;

use kazoo_webhooks::core::destination::DestinationPolicy;
use kazoo_webhooks::core::store::{AccountStore, HookStore};
use kazoo_webhooks::core::{Doc, Event};
use kazoo_webhooks::store::EmbeddedStore;
use serde_json::json;
use webhooks_engine::{Engine, EngineConfig};
use webhooks_testkit::Receiver;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A receiver standing in for your customer's server.
    let receiver = Receiver::start().await;

    // Any Store works; this one lives in memory. One account, one hook.
    let store = Arc::new(EmbeddedStore::open_in_memory()?);
    let account = "91eb05e5c68d7ca05e7618b6821d2d16";
    store
        .save_account(
            Doc::from_value(json!({"_id": account, "pvt_type": "account", "name": "acme"}))
                .unwrap(),
        )
        .await?;
    store
        .save_hook(
            Doc::from_value(json!({
                "_id": "new-calls", "pvt_type": "webhook", "pvt_account_id": account,
                "name": "New calls", "hook": "channel_create", "uri": receiver.url("/calls"),
                "http_verb": "post", "format": "json", "custom_data": {"crm": "sales"},
            }))
            .unwrap(),
        )
        .await?;

    // KAZOO's modules, a hook table and failure counters (share the last two with the API
    // if you mount it too), and the engine.
    let registry = kazoo_webhooks::modules::kazoo_registry(&[]);
    // The receiver listens on loopback, which the SSRF guard refuses unless allowed.
    let config = EngineConfig {
        destinations: DestinationPolicy::loopback_allowed(),
        ..EngineConfig::default()
    };
    let engine = Engine::start(store, registry, config).await?;

    // Publish the event KAZOO would put on the `callevt` exchange.
    let event = kazoo_webhooks::modules::sample_events("channel_create")
        .unwrap()
        .remove(0);
    let report = engine.publish(Event::from_value(event)?).await?;
    println!("dispatched to {} hook(s)", report.dispatched);

    let got = tokio::time::timeout(Duration::from_secs(10), receiver.wait_for("/calls", 1)).await?;
    let body: serde_json::Value = serde_json::from_str(&got[0].body)?;
    println!(
        "receiver got {} {} with X-Hook-ID {:?}: call_id={} crm={}",
        got[0].method, got[0].path, got[0].headers["x-hook-id"], body["call_id"], body["crm"]
    );
    engine.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
