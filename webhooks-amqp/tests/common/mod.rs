//! A real broker, isolated per test: each test gets its own RabbitMQ vhost (created with
//! `rabbitmqctl`, deleted when the test ends), an engine over an in-memory store, a local HTTP
//! receiver, and a KAZOO-like publisher.

#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::{json, Value};
use webhooks_amqp::{AmqpConfig, AmqpHandle, AmqpTransport};
use webhooks_core::store::{AccountStore, HookStore};
use webhooks_core::{Doc, Event, EventSink};
use webhooks_engine::{Engine, EngineConfig};
use webhooks_store::EmbeddedStore;
pub use webhooks_testkit::rabbitmq::Vhost;
pub use webhooks_testkit::Receiver;

/// The accounts KAZOO's sample events belong to.
pub const CHANNEL_ACCOUNT: &str = "91eb05e5c68d7ca05e7618b6821d2d16";
pub const NOTIFY_ACCOUNT: &str = "7600efb3424dc4b79854521fd4563d0a";
pub const OBJECT_ACCOUNT: &str = "0e10f9365fb2383d0fa65e907bfe4cb3";
pub const PARK_ACCOUNT: &str = "5a2d994fbae69b1d6b01eb9f0e7dfe62";

/// Runs a test body, failing it if it takes longer than `limit`.
pub async fn bounded<T>(limit: Duration, body: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, body)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {limit:?}"))
}

/// A hook document owned by `owner`.
pub fn hook(id: &str, owner: &str, event: &str, uri: &str, extra: Value) -> Value {
    let mut h = json!({"_id": id, "pvt_type": "webhook", "pvt_account_id": owner, "name": id,
                       "uri": uri, "hook": event, "enabled": true, "format": "json"});
    for (k, v) in extra.as_object().unwrap() {
        h[k] = v.clone();
    }
    h
}

/// A fresh in-memory store holding the sample accounts and `hooks`.
pub async fn store_with(hooks: Vec<Value>) -> Arc<EmbeddedStore> {
    let store = Arc::new(EmbeddedStore::open_in_memory().unwrap());
    for id in [
        CHANNEL_ACCOUNT,
        NOTIFY_ACCOUNT,
        OBJECT_ACCOUNT,
        PARK_ACCOUNT,
    ] {
        let doc = json!({"_id": id, "pvt_type": "account", "name": id, "pvt_tree": []});
        store
            .save_account(Doc::from_value(doc).unwrap())
            .await
            .unwrap();
    }
    for h in hooks {
        store.save_hook(Doc::from_value(h).unwrap()).await.unwrap();
    }
    store
}

/// An engine over a fresh in-memory store holding the sample accounts and `hooks`, with
/// loopback (where the tests' receivers listen) allowed past the SSRF guard.
pub async fn engine(hooks: Vec<Value>, config: EngineConfig) -> (Engine, Arc<EmbeddedStore>) {
    let store = store_with(hooks).await;
    let engine = Engine::start(
        store.clone(),
        webhooks_modules::kazoo_registry(&[]),
        EngineConfig {
            retry_delay: Duration::from_millis(30),
            destinations: webhooks_core::destination::DestinationPolicy::loopback_allowed(),
            ..config
        },
    )
    .await
    .unwrap();
    (engine, store)
}

/// Transport settings for tests: quick reconnects.
pub fn amqp_config(vhost: &Vhost, node: &str) -> AmqpConfig {
    AmqpConfig {
        node: node.into(),
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_secs(1),
        ..AmqpConfig::new(vhost.url())
    }
}

/// A transport feeding `engine`.
pub async fn transport(engine: &Engine, config: AmqpConfig) -> AmqpHandle {
    transport_into(Arc::new(engine.clone()), engine, config).await
}

/// A transport handing events to `events` and configuration to `engine`.
pub async fn transport_into(
    events: Arc<dyn EventSink>,
    engine: &Engine,
    config: AmqpConfig,
) -> AmqpHandle {
    AmqpTransport::start(
        config,
        webhooks_modules::kazoo_registry(&[]),
        events,
        Arc::new(engine.clone()),
    )
    .await
    .expect("transport starts")
}

/// Publishes like KAZOO: JSON, on KAZOO's exchanges, confirmed by the broker.
pub struct Kazoo {
    pub connection: Connection,
    pub channel: Channel,
}

impl Kazoo {
    pub async fn connect(vhost: &Vhost) -> Kazoo {
        let connection = Connection::connect(&vhost.url(), ConnectionProperties::default())
            .await
            .expect("publisher connects");
        let channel = connection.create_channel().await.unwrap();
        webhooks_amqp::declare_kazoo_exchanges(&channel)
            .await
            .unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        Kazoo {
            connection,
            channel,
        }
    }

    pub async fn publish_raw(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), lapin::Error> {
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await?
            .await?;
        assert!(confirm.is_ack(), "broker confirmed the publish");
        Ok(())
    }

    /// Publishes an event where KAZOO would: exchange and key from its headers.
    pub async fn publish(&self, event: &Value) {
        let route = route(event);
        self.publish_raw(
            route.exchange,
            &route.routing_key,
            event.to_string().as_bytes(),
            json_properties(),
        )
        .await
        .expect("publish");
    }
}

pub fn route(event: &Value) -> webhooks_amqp::Route {
    webhooks_amqp::route_for(&Event::from_value(event.clone()).unwrap())
        .unwrap_or_else(|| panic!("KAZOO has a routing key for {event}"))
}

pub fn json_properties() -> BasicProperties {
    BasicProperties::default().with_content_type("application/json".into())
}

/// Waits (up to 20 s) until `cond` holds.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited 20 s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the engine has nothing queued or in flight, then a little longer, so that
/// anything still to arrive at the receiver would have arrived.
pub async fn settle(engine: &Engine) {
    eventually("the engine to settle", || {
        let l = engine.load();
        l.queued == 0 && l.in_flight == 0 && l.waiting_retries == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// A sample event of a module, by index.
pub fn sample(module: &str, i: usize) -> Value {
    webhooks_modules::sample_events(module).unwrap()[i].clone()
}

/// A vhost, a receiver, and an engine with one `channel_create` hook (`cc`, for the channel
/// samples' account, at `/cc`): the setup most broker tests share.
pub async fn one_channel_hook(tag: &str) -> (Vhost, Receiver, Engine, Arc<EmbeddedStore>) {
    let vhost = Vhost::create(tag).await;
    let rx = Receiver::start().await;
    let (engine, store) = engine(
        vec![hook(
            "cc",
            CHANNEL_ACCOUNT,
            "channel_create",
            &rx.url("/cc"),
            json!({}),
        )],
        EngineConfig::default(),
    )
    .await;
    (vhost, rx, engine, store)
}
