//! The SSRF guard at delivery time, against a real receiver on loopback: refused forms fail
//! with `destination not allowed: <address>` and nothing reaches the receiver; the allow-list
//! opens what it names; a redirect is never followed. Names resolved here are only the ones
//! `/etc/hosts` holds (`localhost`), so no lookup leaves the machine.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use webhooks_core::destination::DestinationPolicy;
use webhooks_engine::{Engine, EngineConfig};

/// An engine with `policy` as its guard (the shared helper allows loopback) and `hooks`.
async fn guarded(hooks: Vec<serde_json::Value>, policy: DestinationPolicy) -> Setup {
    let store = store_with(hooks, json!({"_id": "webhooks"})).await;
    let config = EngineConfig {
        retry_delay: Duration::from_millis(30),
        destinations: policy,
        ..EngineConfig::default()
    };
    let engine = Engine::start(store.clone(), webhooks_modules::kazoo_registry(&[]), config)
        .await
        .unwrap();
    Setup { engine, store }
}

fn cc_hook(id: &str, uri: &str) -> serde_json::Value {
    hook(id, ACCOUNT, "channel_create", uri, json!({"retries": 1}))
}

async fn publish_one(s: &Setup) {
    let e = &webhooks_modules::sample_events("channel_create").unwrap()[0];
    s.engine.publish(event(e)).await.unwrap();
    settle(&s.engine).await;
}

async fn client_error(s: &Setup, hook: &str) -> Option<String> {
    let a = attempts(&s.store, hook).await;
    assert_eq!(a.len(), 1, "{hook}: one failed attempt");
    assert_eq!(a[0].str("result"), Some("failure"), "{hook}");
    a[0].str("client_error").map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_addresses_are_refused_at_delivery_in_every_form() {
    let rx = Receiver::start().await;
    let port = rx.addr.port();
    let hooks = vec![
        cc_hook("literal", &rx.url("/literal")),
        cc_hook(
            "mapped",
            &format!("http://[::ffff:127.0.0.1]:{port}/mapped"),
        ),
        cc_hook("short", &format!("http://127.1:{port}/short")),
        // A name that resolves (through /etc/hosts) to loopback.
        cc_hook("name", &format!("http://localhost:{port}/name")),
    ];
    let s = guarded(hooks, DestinationPolicy::default()).await;
    publish_one(&s).await;
    for hook in ["literal", "mapped", "short"] {
        assert_eq!(
            client_error(&s, hook).await.as_deref(),
            Some("destination not allowed: 127.0.0.1"),
            "{hook}"
        );
    }
    let name = client_error(&s, "name").await.unwrap();
    assert!(
        name == "destination not allowed: 127.0.0.1" || name == "destination not allowed: ::1",
        "{name}"
    );
    assert!(rx.received().is_empty(), "nothing reached the receiver");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allow_list_opens_networks_and_names() {
    let rx = Receiver::start().await;
    let port = rx.addr.port();
    let by_net = guarded(
        vec![cc_hook("net", &rx.url("/net"))],
        DestinationPolicy::allowing(["127.0.0.0/8"]).unwrap(),
    )
    .await;
    publish_one(&by_net).await;
    rx.wait_for("/net", 1).await;

    let by_name = guarded(
        vec![cc_hook("name", &format!("http://localhost:{port}/by-name"))],
        DestinationPolicy::allowing(["localhost"]).unwrap(),
    )
    .await;
    publish_one(&by_name).await;
    rx.wait_for("/by-name", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed() {
    let rx = Receiver::start().await;
    let target = Receiver::start().await;
    rx.answer(
        "/moved",
        webhooks_testkit::Answer::Redirect(target.url("/inside")),
    );
    let s = guarded(
        vec![cc_hook("moved", &rx.url("/moved"))],
        DestinationPolicy::loopback_allowed(),
    )
    .await;
    publish_one(&s).await;
    rx.wait_for("/moved", 1).await;
    let a = attempts(&s.store, "moved").await;
    assert_eq!(a[0].str("resp_status_code"), Some("302"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(target.received().is_empty(), "the redirect was followed");
}
