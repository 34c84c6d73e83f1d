//! The transport against a real RabbitMQ: KAZOO-shaped messages published with KAZOO's
//! routing keys come out as HTTP requests at a local receiver.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, ExchangeKind};
use serde_json::{json, Value};
use webhooks_amqp::{doc_change_key, exchanges, AmqpConfig};
use webhooks_core::event::EventError;
use webhooks_core::store::HookStore;
use webhooks_core::transport::Notifier;
use webhooks_core::{Doc, Event, EventSink, PublishReport};
use webhooks_engine::{Engine, EngineConfig};

const LIMIT: Duration = Duration::from_secs(90);

const CHANNEL_MODULES: [&str; 4] = [
    "channel_create",
    "channel_answer",
    "channel_bridge",
    "channel_destroy",
];

fn body(r: &webhooks_testkit::Received) -> Value {
    serde_json::from_str(&r.body).expect("JSON body")
}

/// A channel_create sample with its own call id.
fn call(i: usize) -> Value {
    let mut e = sample("channel_create", 0);
    e["Call-ID"] = json!(format!("call-{i}"));
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_kazoo_sample_reaches_its_hook_through_the_broker() {
    bounded(LIMIT, async {
        let vhost = Vhost::create("samples").await;
        let rx = Receiver::start().await;
        let mut hooks: Vec<Value> = CHANNEL_MODULES
            .iter()
            .map(|m| hook(m, CHANNEL_ACCOUNT, m, &rx.url(&format!("/{m}")), json!({})))
            .collect();
        hooks.push(hook(
            "notifications",
            NOTIFY_ACCOUNT,
            "notifications",
            &rx.url("/notifications"),
            json!({"custom_data": {"type": "all"}}),
        ));
        hooks.push(hook(
            "object",
            OBJECT_ACCOUNT,
            "object",
            &rx.url("/object"),
            json!({"custom_data": {"type": "all", "action": "all"}}),
        ));
        hooks.push(hook(
            "parking",
            PARK_ACCOUNT,
            "parking",
            &rx.url("/parking"),
            json!({}),
        ));
        let (engine, _store) = engine(hooks, EngineConfig::default()).await;
        let amqp = transport(&engine, amqp_config(&vhost, "samples")).await;
        let kazoo = Kazoo::connect(&vhost).await;

        let mut published = 0;
        for module in CHANNEL_MODULES
            .iter()
            .chain(&["notifications", "object", "parking"])
        {
            for mut event in webhooks_modules::sample_events(module).unwrap() {
                if event["Event-Name"] == "webhook" {
                    // The callflow's ad-hoc hook: point it at the receiver.
                    event["Hook"]["uri"] = json!(rx.url("/callflow"));
                }
                kazoo.publish(&event).await;
                published += 1;
            }
        }
        assert_eq!(published, 4 + 36 + 3 + 1);

        // Every channel sample once at its module's hook; the object hook gets the three doc
        // changes; the notifications hook every notification except `webhook` (fired at the
        // callflow's own hook instead) and `system_alert` (its sample names no valid account).
        let want = [
            ("/channel_create", 1),
            ("/channel_answer", 1),
            ("/channel_bridge", 1),
            ("/channel_destroy", 1),
            ("/notifications", 34),
            ("/object", 3),
            ("/parking", 1),
            ("/callflow", 1),
        ];
        for (path, n) in want {
            rx.wait_for(path, n).await;
        }
        settle(&engine).await;
        for (path, n) in want {
            assert_eq!(rx.received_at(path).len(), n, "{path}");
        }
        assert_eq!(rx.received().len(), 43);

        let names: BTreeSet<String> = rx
            .received_at("/notifications")
            .iter()
            .map(|r| body(r)["event_name"].as_str().unwrap().to_owned())
            .collect();
        let expected: BTreeSet<String> = webhooks_modules::sample_events("notifications")
            .unwrap()
            .iter()
            .map(|e| e["Event-Name"].as_str().unwrap().to_owned())
            .filter(|n| n != "webhook" && n != "system_alert")
            .collect();
        assert_eq!(names, expected);
        let actions: BTreeSet<String> = rx
            .received_at("/object")
            .iter()
            .map(|r| body(r)["action"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            actions,
            BTreeSet::from([
                "doc_created".into(),
                "doc_deleted".into(),
                "doc_edited".into()
            ])
        );
        // The callflow's hook has no `format`: KAZOO's default form encoding of `Data`.
        let callflow = &rx.received_at("/callflow")[0].body;
        assert!(
            callflow.contains("call_id=SD80b4301-08cad0a2bb1f10205aba739d13258341-06a91u0"),
            "{callflow}"
        );

        let stats = amqp.stats();
        assert_eq!(stats.consumed, published);
        assert_eq!(stats.acked, published);
        assert_eq!(stats.rejected_malformed, 0);
        amqp.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_the_queue_and_each_event_is_delivered_once() {
    bounded(LIMIT, async {
        let vhost = Vhost::create("shared").await;
        let rx = Receiver::start().await;
        let hooks = || {
            vec![hook(
                "cc",
                CHANNEL_ACCOUNT,
                "channel_create",
                &rx.url("/cc"),
                json!({}),
            )]
        };
        let (engine_a, _sa) = engine(hooks(), EngineConfig::default()).await;
        let (engine_b, _sb) = engine(hooks(), EngineConfig::default()).await;
        let small_prefetch = |node| AmqpConfig {
            prefetch: 8,
            ..amqp_config(&vhost, node)
        };
        let a = transport(&engine_a, small_prefetch("node-a")).await;
        let b = transport(&engine_b, small_prefetch("node-b")).await;
        let kazoo = Kazoo::connect(&vhost).await;

        const N: usize = 300;
        for i in 0..N {
            kazoo.publish(&call(i)).await;
        }
        rx.wait_for("/cc", N).await;
        settle(&engine_a).await;
        settle(&engine_b).await;
        let got = rx.received_at("/cc");
        let ids: BTreeSet<String> = got
            .iter()
            .map(|r| body(r)["call_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got.len(), N, "each event delivered once across both nodes");
        assert_eq!(ids.len(), N);
        let (sa, sb) = (a.stats(), b.stats());
        assert!(
            sa.consumed > 0 && sb.consumed > 0,
            "both nodes consumed: {sa:?} {sb:?}"
        );
        assert_eq!(sa.consumed + sb.consumed, N as u64);
        a.shutdown().await;
        b.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn doc_change_notice_makes_the_engine_reload_the_hook() {
    bounded(LIMIT, async {
        let vhost = Vhost::create("docchange").await;
        let rx = Receiver::start().await;
        let (engine, store) = engine(
            vec![hook(
                "h1",
                CHANNEL_ACCOUNT,
                "channel_create",
                &rx.url("/before"),
                json!({}),
            )],
            // The store's change feed must not be what applies the edit.
            EngineConfig {
                follow_every: Duration::from_secs(3600),
                ..EngineConfig::default()
            },
        )
        .await;
        let amqp = transport(&engine, amqp_config(&vhost, "docchange")).await;
        let kazoo = Kazoo::connect(&vhost).await;

        // Another node (or KAZOO's crossbar) edits the document in the store...
        let mut doc = store.hook("h1").await.unwrap().unwrap();
        doc.set("uri", rx.url("/after"));
        store.save_hook(doc).await.unwrap();
        // ...and the datastore layer announces it.
        let notice = json!({
            "Event-Category": "configuration", "Event-Name": "doc_edited",
            "ID": "h1", "Database": "webhooks", "Type": "webhook", "Rev": "2-x",
            "Account-ID": CHANNEL_ACCOUNT, "Is-Soft-Deleted": false,
            "App-Name": "kazoo_data", "App-Version": "4.3.0", "Node": "kazoo@host"
        });
        let key = doc_change_key("doc_edited", "webhooks", "webhook", "h1");
        assert_eq!(key, "doc_edited.webhooks.webhook.h1");
        kazoo
            .publish_raw(
                exchanges::CONFIGURATION,
                &key,
                notice.to_string().as_bytes(),
                json_properties(),
            )
            .await
            .unwrap();
        eventually("the notice to be applied", || {
            amqp.stats().config_notices == 1
        })
        .await;

        kazoo.publish(&call(1)).await;
        rx.wait_for("/after", 1).await;
        settle(&engine).await;
        assert!(rx.received_at("/before").is_empty());
        assert_eq!(rx.received_at("/after").len(), 1);
        amqp.shutdown().await;
    })
    .await
}

/// A busy engine: the real one, taking one event every 5 ms. Events arrive faster than that,
/// so when the connection is killed the transport holds a backlog of unacknowledged messages,
/// some of them being handed over.
struct BusyEngine {
    engine: Engine,
    turn: tokio::sync::Mutex<()>,
}

#[async_trait::async_trait]
impl EventSink for BusyEngine {
    async fn publish(&self, event: Event) -> Result<PublishReport, EventError> {
        let _turn = self.turn.lock().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.engine.publish(event).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connection_killed_mid_stream_loses_no_event() {
    bounded(LIMIT, async {
        let (vhost, rx, engine, _store) = one_channel_hook("kill").await;
        let busy = Arc::new(BusyEngine {
            engine: engine.clone(),
            turn: tokio::sync::Mutex::new(()),
        });
        let amqp = transport_into(busy, &engine, amqp_config(&vhost, "kill")).await;

        // 1000 events in batches of 10 every 10 ms; after batch 70 every connection of the
        // vhost is closed by the broker, the transport's and the publisher's alike.
        const BATCHES: usize = 100;
        const PER_BATCH: usize = 10;
        let mut kazoo = Kazoo::connect(&vhost).await;
        let mut backlog_at_kill = 0;
        for batch in 0..BATCHES {
            for i in batch * PER_BATCH..(batch + 1) * PER_BATCH {
                kazoo.publish(&call(i)).await;
            }
            if batch == 70 {
                backlog_at_kill = (batch + 1) * PER_BATCH - rx.received().len();
                vhost.close_all_connections().await;
                // The publisher was closed too (KAZOO's publishers reconnect the same way);
                // reconnect it before publishing again so no publish is in doubt.
                kazoo = Kazoo::connect(&vhost).await;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        rx.wait_for("/cc", BATCHES * PER_BATCH).await;
        settle(&engine).await;
        let got = rx.received_at("/cc");
        let mut per_call: BTreeMap<String, usize> = BTreeMap::new();
        for r in &got {
            *per_call
                .entry(body(r)["call_id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        let stats = amqp.stats();
        let duplicates = got.len() - per_call.len();
        println!(
            "connection kill: {backlog_at_kill} events not yet delivered when the kill was \
             issued; {} requests, {} distinct call ids, {duplicates} duplicates; {stats:?}",
            got.len(),
            per_call.len()
        );
        assert_eq!(per_call.len(), BATCHES * PER_BATCH, "no event lost");
        assert!(
            stats.reconnects >= 1,
            "the transport reconnected: {stats:?}"
        );
        assert!(
            stats.duplicates_suppressed > 0,
            "messages were being handled when the connection died: {stats:?}"
        );
        // Those were redelivered by the broker and recognised: none reached a hook twice.
        assert_eq!(duplicates, 0, "{duplicates} events delivered twice");
        assert!(amqp.is_connected());
        amqp.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_reconnects_back_off_and_the_transport_recovers() {
    bounded(LIMIT, async {
        let (vhost, rx, engine, _store) = one_channel_hook("backoff").await;
        let amqp = transport(&engine, amqp_config(&vhost, "backoff")).await;

        // The broker refuses the vhost to the transport for a while: every reconnect attempt
        // fails until access is given back.
        vhost.set_access(false).await;
        vhost.close_all_connections().await;
        eventually("the transport to notice", || !amqp.is_connected()).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!amqp.is_connected());
        assert_eq!(amqp.stats().reconnects, 0);
        vhost.set_access(true).await;
        eventually("the transport to reconnect", || {
            amqp.stats().reconnects == 1
        })
        .await;

        let kazoo = Kazoo::connect(&vhost).await;
        kazoo.publish(&call(1)).await;
        rx.wait_for("/cc", 1).await;
        amqp.shutdown().await;
        assert!(!amqp.is_connected());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn joins_the_shared_queue_kazoo_declared_with_other_properties() {
    bounded(LIMIT, async {
        let (vhost, rx, engine, _store) = one_channel_hook("kazooqueue").await;
        // KAZOO's nodes are still up during the migration: their queue is not durable, so
        // declaring it durable is refused by the broker.
        let kazoo = Kazoo::connect(&vhost).await;
        kazoo
            .channel
            .queue_declare(
                webhooks_amqp::DEFAULT_SHARED_QUEUE.into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let amqp = transport(&engine, amqp_config(&vhost, "joiner")).await;
        kazoo.publish(&call(3)).await;
        let got = rx.wait_for("/cc", 1).await;
        assert_eq!(body(&got[0])["call_id"], "call-3");
        amqp.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_messages_are_dead_lettered_and_valid_ones_still_flow() {
    bounded(LIMIT, async {
        let (vhost, rx, engine, _store) = one_channel_hook("malformed").await;
        let kazoo = Kazoo::connect(&vhost).await;
        // The operator's dead-letter exchange and a queue to inspect it.
        kazoo
            .channel
            .exchange_declare(
                "webhooks.dlx".into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        kazoo
            .channel
            .queue_declare(
                "dead".into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        kazoo
            .channel
            .queue_bind(
                "dead".into(),
                "webhooks.dlx".into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let amqp = transport(
            &engine,
            AmqpConfig {
                dead_letter_exchange: Some("webhooks.dlx".into()),
                ..amqp_config(&vhost, "malformed")
            },
        )
        .await;

        let key = "call.CHANNEL_CREATE.bad";
        let gzip = BasicProperties::default().with_content_encoding("gzip".into());
        let bad: Vec<(&str, &str, Vec<u8>, BasicProperties)> = vec![
            (
                exchanges::CALL_EVENTS,
                key,
                b"not json".to_vec(),
                json_properties(),
            ),
            (
                exchanges::CALL_EVENTS,
                key,
                b"[1,2,3]".to_vec(),
                json_properties(),
            ),
            (
                exchanges::CALL_EVENTS,
                key,
                br#"{"Event-Category":"call_event","Call-ID":"x"}"#.to_vec(),
                json_properties(),
            ),
            (
                exchanges::CALL_EVENTS,
                key,
                br#"{"Event-Category":"call_event","Event-Name":5}"#.to_vec(),
                json_properties(),
            ),
            (
                exchanges::CALL_EVENTS,
                key,
                b"not gzip".to_vec(),
                gzip.clone(),
            ),
            // Well-formed JSON the notifications module refuses (required headers missing).
            (
                exchanges::NOTIFICATIONS,
                "notifications.voicemail.new",
                br#"{"Event-Category":"notification","Event-Name":"voicemail_new"}"#.to_vec(),
                json_properties(),
            ),
        ];
        for (exchange, key, body, props) in &bad {
            kazoo
                .publish_raw(exchange, key, body, props.clone())
                .await
                .unwrap();
        }
        // A valid event after them, gzip-encoded as KAZOO may send MMS.
        let event = call(7);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(event.to_string().as_bytes()).unwrap();
        let route = route(&event);
        kazoo
            .publish_raw(
                route.exchange,
                &route.routing_key,
                &gz.finish().unwrap(),
                gzip,
            )
            .await
            .unwrap();

        let got = rx.wait_for("/cc", 1).await;
        assert_eq!(body(&got[0])["call_id"], "call-7");

        let mut dead = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while dead.len() < bad.len() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "dead letters: {}",
                dead.len()
            );
            match kazoo
                .channel
                .basic_get("dead".into(), BasicGetOptions::default())
                .await
                .unwrap()
            {
                Some(m) => {
                    m.delivery.ack(BasicAckOptions::default()).await.unwrap();
                    dead.push(m.delivery.data.clone());
                }
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        let sent: BTreeSet<Vec<u8>> = bad.iter().map(|(_, _, b, _)| b.clone()).collect();
        assert_eq!(dead.into_iter().collect::<BTreeSet<_>>(), sent);
        let stats = amqp.stats();
        assert_eq!(stats.rejected_malformed, bad.len() as u64);
        assert_eq!(stats.acked, 1);
        settle(&engine).await;
        assert_eq!(rx.received().len(), 1);
        amqp.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reenable_request_reenables_and_replies_on_targeted() {
    bounded(LIMIT, async {
        let vhost = Vhost::create("reenable").await;
        let rx = Receiver::start().await;
        let (engine, store) = engine(
            vec![hook(
                "h1",
                CHANNEL_ACCOUNT,
                "channel_create",
                &rx.url("/cc"),
                json!({"enabled": false, "pvt_disabled_message": "too many failed attempts"}),
            )],
            EngineConfig {
                follow_every: Duration::from_secs(3600),
                ..EngineConfig::default()
            },
        )
        .await;
        let amqp = transport(&engine, amqp_config(&vhost, "node-r")).await;
        let kazoo = Kazoo::connect(&vhost).await;

        // Crossbar's reply queue, reachable on `targeted` under its own name.
        let reply_queue = kazoo
            .channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let server_id = reply_queue.name().to_string();
        kazoo
            .channel
            .queue_bind(
                server_id.as_str().into(),
                exchanges::TARGETED.into(),
                server_id.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let request = json!({
            "Type": "webhook", "Action": "account", "Account-ID": CHANNEL_ACCOUNT,
            "Msg-ID": "req-42", "Event-Category": "configuration",
            "Event-Name": "doc_type_update", "App-Name": "crossbar", "App-Version": "4.3.0",
            "Node": "crossbar@host", "Server-ID": server_id
        });
        assert_eq!(
            route(&request).routing_key,
            "configuration.doc_type_update.webhook"
        );
        kazoo.publish(&request).await;

        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let reply = loop {
            assert!(tokio::time::Instant::now() < deadline, "no reply");
            match kazoo
                .channel
                .basic_get(server_id.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                Some(m) => break m.delivery,
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        assert_eq!(reply.exchange.as_str(), "targeted");
        assert_eq!(reply.routing_key.as_str(), server_id);
        let reply: Value = serde_json::from_slice(&reply.data).unwrap();
        assert_eq!(
            reply,
            json!({"status": "success", "Event-Category": "configuration",
                   "Event-Name": "doc_type_updated", "Msg-ID": "req-42", "App-Name": "webhooks",
                   "App-Version": webhooks_amqp::APP_VERSION, "Node": "node-r"})
        );
        let doc: Doc = store.hook("h1").await.unwrap().unwrap();
        assert_eq!(doc.get("enabled"), Some(&json!(true)));
        assert_eq!(doc.get("pvt_disabled_message"), None);
        assert_eq!(amqp.stats().reenable_requests, 1);

        kazoo.publish(&call(1)).await;
        rx.wait_for("/cc", 1).await;
        amqp.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_disabled_from_the_notifier_reaches_a_notifications_hook_once() {
    bounded(LIMIT, async {
        let vhost = Vhost::create("notify").await;
        let rx = Receiver::start().await;
        let (engine, _store) = engine(
            vec![hook(
                "n1",
                NOTIFY_ACCOUNT,
                "notifications",
                &rx.url("/disabled"),
                json!({"custom_data": {"type": "webhook_disabled"}}),
            )],
            EngineConfig::default(),
        )
        .await;
        let amqp = transport(&engine, amqp_config(&vhost, "notify")).await;
        engine.set_notifier(Box::new(amqp.clone()));

        let disabled = Event::from_value(json!({
            "Account-ID": NOTIFY_ACCOUNT, "Hook-ID": "6e097cd291aed294d2018ecf4b3a6cb8",
            "Event-Category": "notification", "Event-Name": "webhook_disabled",
            "App-Name": "webhooks", "App-Version": webhooks_amqp::APP_VERSION, "Node": "notify"
        }))
        .unwrap();
        amqp.notify(&disabled).await.unwrap();

        let got = rx.wait_for("/disabled", 1).await;
        assert_eq!(body(&got[0])["hook_id"], "6e097cd291aed294d2018ecf4b3a6cb8");
        settle(&engine).await;
        assert_eq!(rx.received().len(), 1, "exactly once");
        let stats = amqp.stats();
        assert_eq!(stats.notifications_published, 1);
        assert_eq!(stats.consumed, 1);

        let unknown = Event::from_value(json!({"Event-Category": "notification",
            "Event-Name": "no_such_notification"}))
        .unwrap();
        assert!(amqp.notify(&unknown).await.is_err());
        amqp.shutdown().await;
    })
    .await
}

/// A slow engine, several handovers at once: each takes `delay`, and the sink notes the call
/// id of every event it took, and when.
struct SlowSink {
    delay: Duration,
    took: std::sync::Mutex<Vec<(String, tokio::time::Instant)>>,
}

impl SlowSink {
    fn new(delay: Duration) -> Arc<SlowSink> {
        Arc::new(SlowSink {
            delay,
            took: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn took(&self) -> Vec<(String, tokio::time::Instant)> {
        self.took.lock().unwrap().clone()
    }

    fn call_ids(&self) -> Vec<String> {
        self.took().into_iter().map(|(id, _)| id).collect()
    }
}

#[async_trait::async_trait]
impl EventSink for SlowSink {
    async fn publish(&self, event: Event) -> Result<PublishReport, EventError> {
        tokio::time::sleep(self.delay).await;
        let call_id = event.str("Call-ID").unwrap_or_default().to_owned();
        let now = tokio::time::Instant::now();
        self.took.lock().unwrap().push((call_id, now));
        Ok(PublishReport::default())
    }
}

/// How many messages wait in the shared queue (ready, not delivered to anyone).
async fn ready_in_shared_queue(kazoo: &Kazoo) -> u32 {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    kazoo
        .channel
        .queue_declare(
            webhooks_amqp::DEFAULT_SHARED_QUEUE.into(),
            passive,
            FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_mid_stream_leaves_every_unacknowledged_message_to_the_next_node() {
    bounded(LIMIT, async {
        let (vhost, _rx, engine, _store) = one_channel_hook("shutdown").await;
        let slow = SlowSink::new(Duration::from_millis(50));
        let first = transport_into(
            slow.clone(),
            &engine,
            AmqpConfig {
                prefetch: 8,
                ..amqp_config(&vhost, "first")
            },
        )
        .await;
        let kazoo = Kazoo::connect(&vhost).await;
        const N: usize = 200;
        let all: BTreeSet<String> = (0..N).map(|i| format!("call-{i}")).collect();
        for i in 0..N {
            kazoo.publish(&call(i)).await;
        }

        // Mid-stream: some taken, a prefetch's worth being handed over, most still queued.
        eventually("the first node to take some", || slow.took().len() >= 20).await;
        let shutdown_at = tokio::time::Instant::now();
        first.shutdown().await;
        let took_first = slow.call_ids();
        let stats = first.stats();
        let finished_late = slow
            .took()
            .iter()
            .filter(|(_, at)| *at > shutdown_at)
            .count();
        println!(
            "shutdown: the first node took {} events, {finished_late} of them after shutdown \
             was called; {stats:?}",
            took_first.len()
        );
        assert!(took_first.len() < N, "the shutdown came mid-stream");
        assert!(
            finished_late > 0,
            "handovers in progress when shutdown was called were finished, not dropped"
        );
        assert_eq!(
            stats.acked,
            took_first.len() as u64,
            "every handover was acknowledged before the connection closed"
        );
        assert!(!first.is_connected());
        let left = N - took_first.len();
        // The broker requeues a closed channel's unacknowledged messages in the background:
        // its count catches up a moment after the close returns.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut ready = ready_in_shared_queue(&kazoo).await as usize;
        while ready != left && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            ready = ready_in_shared_queue(&kazoo).await as usize;
        }
        assert_eq!(
            ready, left,
            "the broker holds every message the first node did not acknowledge"
        );

        let quick = SlowSink::new(Duration::ZERO);
        let second = transport_into(quick.clone(), &engine, amqp_config(&vhost, "second")).await;
        eventually("the second node to take the rest", || {
            quick.took().len() >= left
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        second.shutdown().await;
        let took_second = quick.call_ids();
        assert!(took_first.len() + took_second.len() >= N);
        let first_ids: BTreeSet<String> = took_first.into_iter().collect();
        let second_ids: BTreeSet<String> = took_second.iter().cloned().collect();
        assert_eq!(second_ids.len(), took_second.len(), "no event twice");
        assert!(
            first_ids.is_disjoint(&second_ids),
            "nothing the first node acknowledged came back"
        );
        let union: BTreeSet<String> = first_ids.union(&second_ids).cloned().collect();
        assert_eq!(union, all, "every message accounted for");
    })
    .await
}

/// An engine that holds every handover until the test opens the gate.
struct GatedSink {
    entered: AtomicUsize,
    gate: tokio::sync::Semaphore,
    took: AtomicUsize,
}

#[async_trait::async_trait]
impl EventSink for GatedSink {
    async fn publish(&self, _event: Event) -> Result<PublishReport, EventError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        self.gate.acquire().await.unwrap().forget();
        self.took.fetch_add(1, Ordering::SeqCst);
        Ok(PublishReport::default())
    }
}

/// `rabbitmqctl -q <args> --no-table-headers`, one line per row.
async fn rabbitmqctl_rows(args: &[&str]) -> Vec<String> {
    let out = tokio::process::Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .arg("--no-table-headers")
        .output()
        .await
        .expect("rabbitmqctl runs");
    assert!(out.status.success(), "rabbitmqctl {args:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

async fn consumers(vhost: &Vhost) -> usize {
    rabbitmqctl_rows(&["list_consumers", "--vhost", &vhost.name, "consumer_tag"])
        .await
        .len()
}

async fn transport_connected(vhost: &Vhost, node: &str) -> bool {
    let name = format!("kazoo-webhooks {node}");
    rabbitmqctl_rows(&["list_connections", "vhost", "client_properties"])
        .await
        .iter()
        .any(|row| row.starts_with(&format!("{}\t", vhost.name)) && row.contains(&name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_cancels_both_consumers_before_it_closes_the_connection() {
    bounded(LIMIT, async {
        let (vhost, _rx, engine, _store) = one_channel_hook("cancel").await;
        let gated = Arc::new(GatedSink {
            entered: AtomicUsize::new(0),
            gate: tokio::sync::Semaphore::new(0),
            took: AtomicUsize::new(0),
        });
        let amqp = transport_into(
            gated.clone(),
            &engine,
            AmqpConfig {
                prefetch: 4,
                ..amqp_config(&vhost, "gated")
            },
        )
        .await;
        let kazoo = Kazoo::connect(&vhost).await;
        for i in 0..10 {
            kazoo.publish(&call(i)).await;
        }
        eventually("a prefetch's worth of handovers", || {
            gated.entered.load(Ordering::SeqCst) == 4
        })
        .await;
        assert_eq!(
            consumers(&vhost).await,
            2,
            "shared and configuration queues"
        );

        let stopping = tokio::spawn({
            let amqp = amqp.clone();
            async move { amqp.shutdown().await }
        });
        // Both consumers go first, while the connection stays open for the acks.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while consumers(&vhost).await > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "consumers not cancelled"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(transport_connected(&vhost, "gated").await);
        assert!(!stopping.is_finished(), "shutdown waits for the handovers");

        gated.gate.add_permits(100);
        tokio::time::timeout(Duration::from_secs(10), stopping)
            .await
            .expect("shutdown returns once the handovers are done")
            .unwrap();
        assert_eq!(gated.took.load(Ordering::SeqCst), 4);
        assert_eq!(amqp.stats().acked, 4, "acknowledged on the open connection");
        assert!(!transport_connected(&vhost, "gated").await);
        assert_eq!(ready_in_shared_queue(&kazoo).await, 6, "the rest requeued");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_during_a_reconnect_backoff_returns_at_once() {
    bounded(LIMIT, async {
        let (vhost, _rx, engine, _store) = one_channel_hook("stopwait").await;
        let amqp = transport(
            &engine,
            AmqpConfig {
                reconnect_min: Duration::from_secs(60),
                reconnect_max: Duration::from_secs(60),
                ..amqp_config(&vhost, "stopwait")
            },
        )
        .await;
        vhost.close_all_connections().await;
        eventually("the transport to notice", || !amqp.is_connected()).await;

        // A notification waiting for the next connection...
        let waiting = tokio::spawn({
            let amqp = amqp.clone();
            async move {
                let message = json!({"Event-Category": "notification"});
                amqp.publish(
                    exchanges::NOTIFICATIONS,
                    "k",
                    &message,
                    Duration::from_secs(60),
                )
                .await
            }
        });
        let started = tokio::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(2), amqp.shutdown())
            .await
            .expect("shutdown does not wait out the backoff");
        // ...is told at once that there will be none.
        let published = tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .expect("a waiting publish fails when the transport stops")
            .unwrap();
        assert!(published.is_err());
        println!("shutdown during backoff took {:?}", started.elapsed());
    })
    .await
}
