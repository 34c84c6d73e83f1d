//! Live streams bind each node's own queue (`NodeBinder`) and get what arrives there through
//! the event tap, whichever node the shared queue gives the events to: against a real
//! RabbitMQ, with KAZOO's exchanges and routing keys.
//!
//! "Does not arrive" is shown by a control message, bound all along and published after the
//! one that must not arrive: once the control is tapped, and half a second more, the queue was
//! flowing and the other would have come before it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use lapin::options::ExchangeDeclareOptions;
use lapin::types::FieldTable;
use lapin::ExchangeKind;
use serde_json::{json, Value};
use webhooks_amqp::{call_event_key, doc_change_key, exchanges, AmqpConfig, AmqpHandle};
use webhooks_core::transport::{EventTap, NodeBinder};
use webhooks_core::Event;
use webhooks_engine::{Engine, EngineConfig};
use webhooks_testkit::proxy::Proxy;
use webhooks_testkit::rabbitmq::BROKER;

const LIMIT: Duration = Duration::from_secs(60);

/// How long to wait for what must not arrive, once the queue is shown to flow.
const QUIET: Duration = Duration::from_millis(500);

const CREATES: &str = "call.CHANNEL_CREATE.*";
/// The control: bound all along.
const DESTROYS: &str = "call.CHANNEL_DESTROY.*";

/// What a live stream's hub would get.
#[derive(Default)]
struct Tapped(Mutex<Vec<(Option<String>, Event)>>);

impl EventTap for Tapped {
    fn event(&self, routing_key: Option<&str>, event: &Event) {
        let mut got = self.0.lock().unwrap();
        got.push((routing_key.map(str::to_owned), event.clone()));
    }
}

impl Tapped {
    fn with_key(&self, routing_key: &str) -> Vec<Event> {
        let got = self.0.lock().unwrap();
        got.iter()
            .filter(|(k, _)| k.as_deref() == Some(routing_key))
            .map(|(_, e)| e.clone())
            .collect()
    }

    async fn wait_for(&self, routing_key: &str) -> Event {
        eventually(&format!("{routing_key} at the tap"), || {
            !self.with_key(routing_key).is_empty()
        })
        .await;
        self.with_key(routing_key).remove(0)
    }
}

/// A node: an engine without hooks, its transport, and a tap on its own queue.
async fn node(vhost: &Vhost, name: &str) -> (Engine, AmqpHandle, Arc<Tapped>) {
    node_at(amqp_config(vhost, name)).await
}

async fn node_at(config: AmqpConfig) -> (Engine, AmqpHandle, Arc<Tapped>) {
    let (engine, _store) = engine(vec![], EngineConfig::default()).await;
    let amqp = transport(&engine, config).await;
    let tapped = Arc::new(Tapped::default());
    amqp.set_event_tap(tapped.clone());
    (engine, amqp, tapped)
}

/// A call event as KAZOO publishes it; its routing key is `call.<name>.<call_id>`.
fn call_event(name: &str, call_id: &str) -> Value {
    let module = match name {
        "CHANNEL_CREATE" => "channel_create",
        _ => "channel_destroy",
    };
    let mut event = sample(module, 0);
    event["Call-ID"] = json!(call_id);
    assert_eq!(event["Event-Name"], json!(name));
    event
}

/// Publishes a call event like KAZOO; returns its routing key.
async fn publish_call(kazoo: &Kazoo, name: &str, call_id: &str) -> String {
    let event = call_event(name, call_id);
    let route = route(&event);
    assert_eq!(route.exchange, exchanges::CALL_EVENTS);
    kazoo.publish(&event).await;
    route.routing_key
}

/// Waits until the broker applied `binds` binds and `unbinds` unbinds on `amqp`'s queue.
async fn applied(amqp: &AmqpHandle, binds: u64, unbinds: u64) {
    eventually(&format!("{binds} binds and {unbinds} unbinds"), || {
        let s = amqp.stats();
        s.node_binds == binds && s.node_unbinds == unbinds
    })
    .await;
}

/// Publishes the control and waits for it, then a little more: anything published before it
/// on the queue's bindings has arrived by then.
async fn flushed(kazoo: &Kazoo, tapped: &Tapped, call_id: &str) {
    let key = publish_call(kazoo, "CHANNEL_DESTROY", call_id).await;
    tapped.wait_for(&key).await;
    tokio::time::sleep(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bound_call_event_reaches_the_tap_with_its_routing_key() {
    bounded(LIMIT, async {
        let vhost = Vhost::create("tap").await;
        let (_engine, amqp, tapped) = node(&vhost, "webhooksd@tap").await;
        let kazoo = Kazoo::connect(&vhost).await;

        amqp.bind(exchanges::CALL_EVENTS, CREATES);
        applied(&amqp, 1, 0).await;
        let key = publish_call(&kazoo, "CHANNEL_CREATE", "tap-1@10.0.0.1").await;
        assert_eq!(key, call_event_key("CHANNEL_CREATE", "tap-1@10.0.0.1"));

        let event = tapped.wait_for(&key).await;
        assert_eq!(event.name(), Some("CHANNEL_CREATE"));
        assert_eq!(event.str("Call-ID"), Some("tap-1@10.0.0.1"));
        assert_eq!(amqp.stats().events_tapped, 1);
        assert_eq!(amqp.stats().node_binding_failures, 0);
        amqp.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_unbind_events_no_longer_reach_the_tap() {
    bounded(LIMIT, async {
        let vhost = Vhost::create("unbind").await;
        let (_engine, amqp, tapped) = node(&vhost, "webhooksd@unbind").await;
        let kazoo = Kazoo::connect(&vhost).await;

        amqp.bind(exchanges::CALL_EVENTS, DESTROYS);
        amqp.bind(exchanges::CALL_EVENTS, CREATES);
        applied(&amqp, 2, 0).await;
        let before = publish_call(&kazoo, "CHANNEL_CREATE", "before").await;
        tapped.wait_for(&before).await;

        amqp.unbind(exchanges::CALL_EVENTS, CREATES);
        applied(&amqp, 2, 1).await;
        let after = publish_call(&kazoo, "CHANNEL_CREATE", "after").await;
        flushed(&kazoo, &tapped, "control").await;
        assert!(
            tapped.with_key(&after).is_empty(),
            "an event for an unbound key reached the tap"
        );
        assert_eq!(tapped.with_key(&before).len(), 1);
        amqp.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn binding_twice_and_unbinding_once_leaves_it_unbound() {
    bounded(LIMIT, async {
        let vhost = Vhost::create("idempotent").await;
        let (_engine, amqp, tapped) = node(&vhost, "webhooksd@idem").await;
        let kazoo = Kazoo::connect(&vhost).await;

        amqp.bind(exchanges::CALL_EVENTS, DESTROYS);
        amqp.bind(exchanges::CALL_EVENTS, CREATES);
        amqp.bind(exchanges::CALL_EVENTS, CREATES);
        amqp.unbind(exchanges::CALL_EVENTS, CREATES);
        // Unbinding what is not bound changes nothing either.
        amqp.unbind(exchanges::CALL_EVENTS, CREATES);
        amqp.unbind(exchanges::CALL_EVENTS, "call.CHANNEL_ANSWER.*");
        applied(&amqp, 2, 1).await;

        let key = publish_call(&kazoo, "CHANNEL_CREATE", "twice").await;
        flushed(&kazoo, &tapped, "control").await;
        assert!(tapped.with_key(&key).is_empty(), "the pair is still bound");
        let s = amqp.stats();
        assert_eq!(
            (s.node_binds, s.node_unbinds),
            (2, 1),
            "the second bind and unbind were no-ops"
        );
        amqp.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_streams_unbind_leaves_the_node_queues_own_bindings() {
    bounded(LIMIT, async {
        let vhost = Vhost::create("own").await;
        let (_engine, amqp, tapped) = node(&vhost, "webhooksd@own").await;
        let kazoo = Kazoo::connect(&vhost).await;

        // A stream asks for the webhook notices the queue always gets, and lets them go.
        amqp.bind(exchanges::CONFIGURATION, "*.webhooks.webhook.*");
        amqp.unbind(exchanges::CONFIGURATION, "*.webhooks.webhook.*");
        amqp.bind(exchanges::CALL_EVENTS, DESTROYS);
        applied(&amqp, 1, 0).await;

        let notice = json!({"Event-Category": "configuration", "Event-Name": "doc_edited",
            "ID": "h1", "Database": "webhooks", "Type": "webhook",
            "Account-ID": CHANNEL_ACCOUNT});
        kazoo.publish(&notice).await;
        let key = doc_change_key("doc_edited", "webhooks", "webhook", "h1");
        // Still applied by the engine, and tapped too.
        let tapped_notice = tapped.wait_for(&key).await;
        assert_eq!(tapped_notice.str("ID"), Some("h1"));
        eventually("the notice to be applied", || {
            amqp.stats().config_notices == 1
        })
        .await;
        amqp.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bindings_come_back_after_the_connection_is_cut_and_restored() {
    bounded(LIMIT, async {
        let vhost = Vhost::create("rebind").await;
        let proxy = Proxy::start(BROKER.parse().unwrap()).await;
        let config = AmqpConfig {
            url: vhost.url().replace(BROKER, &proxy.addr().to_string()),
            ..amqp_config(&vhost, "webhooksd@rebind")
        };
        let (_engine, amqp, tapped) = node_at(config).await;
        // KAZOO publishes straight to the broker: only the node's connection is cut.
        let kazoo = Kazoo::connect(&vhost).await;

        amqp.bind(exchanges::CALL_EVENTS, CREATES);
        amqp.bind(exchanges::CALL_EVENTS, DESTROYS);
        amqp.unbind(exchanges::CALL_EVENTS, DESTROYS);
        applied(&amqp, 2, 1).await;
        let before = publish_call(&kazoo, "CHANNEL_CREATE", "before-cut").await;
        tapped.wait_for(&before).await;

        proxy.close().await;
        eventually("the transport to notice the cut", || !amqp.is_connected()).await;
        proxy.open().await;
        eventually("the transport to reconnect", || {
            amqp.stats().reconnects == 1
        })
        .await;
        // The wanted pair only: bound again on the new queue, the unbound one not.
        applied(&amqp, 3, 1).await;

        let unwanted = publish_call(&kazoo, "CHANNEL_DESTROY", "after-cut").await;
        let after = publish_call(&kazoo, "CHANNEL_CREATE", "after-cut").await;
        tapped.wait_for(&after).await;
        tokio::time::sleep(QUIET).await;
        assert!(
            tapped.with_key(&unwanted).is_empty(),
            "a pair unbound before the cut was bound again"
        );
        assert_eq!(amqp.stats().node_binding_failures, 0);
        amqp.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_each_get_the_event_on_their_own_queue() {
    bounded(LIMIT, async {
        let vhost = Vhost::create("two").await;
        let (_a, amqp_a, tapped_a) = node(&vhost, "webhooksd@a").await;
        let (_b, amqp_b, tapped_b) = node(&vhost, "webhooksd@b").await;
        let kazoo = Kazoo::connect(&vhost).await;

        for amqp in [&amqp_a, &amqp_b] {
            amqp.bind(exchanges::CALL_EVENTS, CREATES);
            applied(amqp, 1, 0).await;
        }
        let key = publish_call(&kazoo, "CHANNEL_CREATE", "both").await;
        tapped_a.wait_for(&key).await;
        tapped_b.wait_for(&key).await;
        tokio::time::sleep(QUIET).await;
        assert_eq!(tapped_a.with_key(&key).len(), 1);
        assert_eq!(tapped_b.with_key(&key).len(), 1);
        amqp_a.shutdown().await;
        amqp_b.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_exchange_is_declared_topic_and_a_refusal_stops_nothing_else() {
    bounded(LIMIT, async {
        let vhost = Vhost::create("exchanges").await;
        let (_engine, amqp, tapped) = node(&vhost, "webhooksd@exchanges").await;
        let kazoo = Kazoo::connect(&vhost).await;

        // No one declared it: the transport does, as a topic exchange.
        amqp.bind("stream_custom", "custom.*.x");
        applied(&amqp, 1, 0).await;
        let body = json!({"Event-Category": "custom", "Event-Name": "thing"}).to_string();
        kazoo
            .publish_raw(
                "stream_custom",
                "custom.a.x",
                body.as_bytes(),
                json_properties(),
            )
            .await
            .unwrap();
        assert_eq!(tapped.wait_for("custom.a.x").await.name(), Some("thing"));

        // Someone declared this one direct: the broker refuses the topic declaration.
        kazoo
            .channel
            .exchange_declare(
                "stream_direct".into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        amqp.bind("stream_direct", "k");
        eventually("the refusal", || amqp.stats().node_binding_failures == 1).await;

        // The refusal closed none of the consumers' channels: bindings go on, events flow.
        amqp.bind(exchanges::CALL_EVENTS, DESTROYS);
        applied(&amqp, 2, 0).await;
        flushed(&kazoo, &tapped, "after-refusal").await;
        assert!(amqp.is_connected());
        assert_eq!(amqp.stats().reconnects, 0);
        amqp.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_malformed_message_is_counted_not_tapped() {
    bounded(LIMIT, async {
        let vhost = Vhost::create("malformed").await;
        let (_engine, amqp, tapped) = node(&vhost, "webhooksd@malformed").await;
        let kazoo = Kazoo::connect(&vhost).await;

        amqp.bind(exchanges::CALL_EVENTS, DESTROYS);
        applied(&amqp, 1, 0).await;
        kazoo
            .publish_raw(
                exchanges::CALL_EVENTS,
                "call.CHANNEL_DESTROY.garbled",
                b"not json",
                json_properties(),
            )
            .await
            .unwrap();
        flushed(&kazoo, &tapped, "control").await;
        assert!(tapped.with_key("call.CHANNEL_DESTROY.garbled").is_empty());
        let s = amqp.stats();
        assert_eq!(s.node_malformed, 1);
        assert_eq!(s.events_tapped, 1, "the control only");
        amqp.shutdown().await;
    })
    .await
}
