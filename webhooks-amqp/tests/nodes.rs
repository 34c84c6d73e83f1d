//! Several nodes on one store and one broker count failures together: a hook that fails
//! twice on each of two nodes has failed four times, as it would have on one node. KAZOO
//! counts per node, so there it would need four failures on each.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use webhooks_core::store::{ConfigStore, HookStore};
use webhooks_core::{Doc, Event};
use webhooks_engine::{Engine, EngineConfig};

const LIMIT: Duration = Duration::from_secs(90);

/// A node: an engine on the shared store, and its transport as notifier and failure share.
async fn node(store: &Arc<webhooks_store::EmbeddedStore>, vhost: &Vhost, name: &str) -> Engine {
    let engine = Engine::start(
        store.clone(),
        webhooks_modules::kazoo_registry(&[]),
        EngineConfig {
            node: name.into(),
            destinations: webhooks_core::destination::DestinationPolicy::loopback_allowed(),
            ..EngineConfig::default()
        },
    )
    .await
    .unwrap();
    let amqp = transport(&engine, amqp_config(vhost, name)).await;
    engine.set_notifier(Box::new(amqp.clone()));
    engine.set_failure_share(Box::new(amqp));
    engine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_split_across_two_nodes_disable_a_hook_once() {
    bounded(LIMIT, async {
        let vhost = Vhost::create("nodes").await;
        let rx = Receiver::start().await;
        rx.answer("/fail", webhooks_testkit::Answer::Status(500));
        // The shared store: four failures within two seconds disable a hook (the disabler
        // looks every half second).
        let store = store_with(vec![
            hook(
                "failing",
                CHANNEL_ACCOUNT,
                "channel_create",
                &rx.url("/fail"),
                json!({"retries": 1}),
            ),
            hook(
                "told",
                CHANNEL_ACCOUNT,
                "notifications",
                &rx.url("/disabled"),
                json!({"custom_data": {"type": "webhook_disabled"}}),
            ),
        ])
        .await;
        let settings = json!({"attempt_failure_count": 4, "attempt_failure_expiry_ms": 2000});
        store
            .save_system_config("webhooks", Doc::from_value(settings).unwrap())
            .await
            .unwrap();
        let a = node(&store, &vhost, "webhooksd@a").await;
        let b = node(&store, &vhost, "webhooksd@b").await;

        // Two failures on each node: neither reaches four alone.
        for (i, engine) in [&a, &b, &a, &b].into_iter().enumerate() {
            let mut event = sample("channel_create", 0);
            event["Call-ID"] = json!(format!("call-{i}"));
            engine
                .publish(Event::from_value(event).unwrap())
                .await
                .unwrap();
        }
        rx.wait_for("/fail", 4).await;

        let doc = loop {
            let doc = store.hook("failing").await.unwrap().unwrap();
            if doc.bool("enabled") == Some(false) {
                break doc;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(
            doc.str("pvt_disabled_message"),
            Some("too many failed attempts")
        );

        // One notice, through the broker, to the notifications hook; one node disabled it.
        rx.wait_for("/disabled", 1).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        settle(&a).await;
        settle(&b).await;
        assert_eq!(rx.received_at("/disabled").len(), 1, "one webhook_disabled");
        assert_eq!(a.stats().hooks_disabled + b.stats().hooks_disabled, 1);
        assert_eq!(rx.received_at("/fail").len(), 4);
        // The batches travel between the nodes' own queues, never through the shared one.
        assert_eq!(a.stats().events_unhandled + b.stats().events_unhandled, 0);
    })
    .await
}
