//! KAZOO's sample events go in through RabbitMQ with their real routing keys and come out at a
//! local receiver as KAZOO's payloads, field for field, filtered by each hook's modifiers.
//!
//! "KAZOO's payload" is the module's own sample payload, which webhooks-modules' tests hold
//! equal to `shared/fixtures/kazoo/` (up to the documented fixes). Here the question is whether
//! the whole path (broker, transport, engine, encoding) delivers exactly that.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use webhooks_core::store::{AccountStore, HookStore};
use webhooks_core::Doc;
use webhooks_engine::{Engine, EngineConfig};
use webhooks_store::EmbeddedStore;

/// The reseller KAZOO's channel samples name (`reseller_id`).
const RESELLER: &str = "026f4f0a6d99f9a19b6aa4aa75501d7d";

fn samples(module: &str) -> Vec<Value> {
    webhooks_modules::kazoo_modules(&[])
        .into_iter()
        .find(|m| m.init().id == module)
        .unwrap()
        .samples()
}

fn json_hook(id: &str, owner: &str, event: &str, uri: &str, extra: Value) -> Value {
    let mut h = hook(id, owner, event, uri, extra);
    h["format"] = json!("json");
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_arrive_as_kazoo_payloads_filtered_by_modifiers() {
    bounded(Duration::from_secs(90), async {
        let vhost = Vhost::create("payloads").await;
        let rx = Receiver::start().await;
        let store = Arc::new(EmbeddedStore::open_in_memory().unwrap());
        for (id, tree) in [
            (RESELLER, json!([])),
            (CHANNEL_ACCOUNT, json!([RESELLER])),
            (NOTIFY_ACCOUNT, json!([])),
            (OBJECT_ACCOUNT, json!([])),
            (PARK_ACCOUNT, json!([])),
        ] {
            let doc = json!({"_id": id, "pvt_type": "account", "name": id, "pvt_tree": tree});
            store
                .save_account(Doc::from_value(doc).unwrap())
                .await
                .unwrap();
        }
        let mut hooks = Vec::new();
        for m in [
            "channel_create",
            "channel_answer",
            "channel_bridge",
            "channel_destroy",
        ] {
            hooks.push(json_hook(
                m,
                CHANNEL_ACCOUNT,
                m,
                &rx.url(&format!("/{m}")),
                json!({}),
            ));
        }
        hooks.extend([
            // The undocumented payload filter: the samples are inbound calls.
            json_hook(
                "outbound-only",
                CHANNEL_ACCOUNT,
                "channel_create",
                &rx.url("/outbound-only"),
                json!({"modifiers": {"call_direction": "outbound"}}),
            ),
            json_hook(
                "notify-all",
                NOTIFY_ACCOUNT,
                "notifications",
                &rx.url("/notify-all"),
                json!({"custom_data": {"type": "all"}}),
            ),
            json_hook(
                "notify-vm",
                NOTIFY_ACCOUNT,
                "notifications",
                &rx.url("/notify-vm"),
                json!({"custom_data": {"type": "voicemail_new"}}),
            ),
            json_hook(
                "object-all",
                OBJECT_ACCOUNT,
                "object",
                &rx.url("/object-all"),
                json!({"custom_data": {"type": "all", "action": "all"}}),
            ),
            json_hook(
                "object-user-edited",
                OBJECT_ACCOUNT,
                "object",
                &rx.url("/object-user-edited"),
                json!({"custom_data": {"type": "user", "action": "doc_edited"}}),
            ),
            json_hook(
                "object-device",
                OBJECT_ACCOUNT,
                "object",
                &rx.url("/object-device"),
                json!({"custom_data": {"type": "device", "action": "all"}}),
            ),
            json_hook(
                "parking",
                PARK_ACCOUNT,
                "parking",
                &rx.url("/parking"),
                json!({}),
            ),
        ]);
        for h in hooks {
            store.save_hook(Doc::from_value(h).unwrap()).await.unwrap();
        }
        let engine = Engine::start(
            store,
            webhooks_modules::kazoo_registry(&[]),
            EngineConfig {
                destinations: webhooks_core::destination::DestinationPolicy::loopback_allowed(),
                ..EngineConfig::default()
            },
        )
        .await
        .unwrap();
        let amqp = transport(&engine, amqp_config(&vhost, "payloads")).await;
        let kazoo = Kazoo::connect(&vhost).await;
        for &module in webhooks_modules::MODULES_WITH_SAMPLE_EVENTS {
            for event in webhooks_modules::sample_events(module).unwrap() {
                kazoo.publish(&event).await;
            }
        }
        for (path, n) in [
            ("/channel_create", 1),
            ("/channel_destroy", 1),
            ("/notify-all", 34),
            ("/object-all", 3),
            ("/parking", 1),
        ] {
            rx.wait_for(path, n).await;
        }
        settle(&engine).await;
        let bodies = |path: &str| -> Vec<Value> {
            rx.received_at(path)
                .iter()
                .map(|r| serde_json::from_str(&r.body).unwrap())
                .collect()
        };

        // Channel and parking: exactly KAZOO's payload.
        for m in [
            "channel_create",
            "channel_answer",
            "channel_bridge",
            "channel_destroy",
            "parking",
        ] {
            assert_eq!(bodies(&format!("/{m}")), samples(m), "{m}");
        }
        // Notifications: each received payload is KAZOO's for that notification.
        let by_name: BTreeMap<String, Value> = samples("notifications")
            .into_iter()
            .map(|s| (s["event_name"].as_str().unwrap().to_owned(), s))
            .collect();
        let got = bodies("/notify-all");
        assert_eq!(
            got.len(),
            34,
            "all but `webhook` (its own hook) and `system_alert` (no account)"
        );
        for b in &got {
            assert_eq!(b, &by_name[b["event_name"].as_str().unwrap()]);
        }
        // Objects: all three changes for all/all; the type and action modifiers filter.
        let mut objects = bodies("/object-all");
        objects.sort_by_key(|b| b["action"].as_str().unwrap().to_owned());
        let mut want = samples("object");
        want.sort_by_key(|b| b["action"].as_str().unwrap().to_owned());
        assert_eq!(objects, want);
        assert_eq!(
            bodies("/object-user-edited")
                .iter()
                .map(|b| b["action"].clone())
                .collect::<Vec<_>>(),
            vec![json!("doc_edited")]
        );
        assert!(rx.received_at("/object-device").is_empty());
        assert_eq!(
            bodies("/notify-vm")
                .iter()
                .map(|b| b["event_name"].clone())
                .collect::<Vec<_>>(),
            vec![json!("voicemail_new")]
        );
        assert!(rx.received_at("/outbound-only").is_empty());
        amqp.shutdown().await;
    })
    .await
}
