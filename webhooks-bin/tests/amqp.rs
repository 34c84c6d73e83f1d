//! `webhooksd --amqp-url`: KAZOO's events from a real RabbitMQ, delivered to hooks made
//! through the API.

mod common;

use common::{Daemon, Kazoo};
use serde_json::json;
use webhooks_testkit::rabbitmq::Vhost;
use webhooks_testkit::Receiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_consumes_kazoo_events_from_rabbitmq() {
    let vhost = Vhost::create("daemon").await;
    let rx = Receiver::start_on("127.0.0.2:0").await;
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_in(tmp.path(), &["--amqp-url", &vhost.url()]);
    let (master, root) = d.master().await;
    master
        .create_hook(&root, json!({"name": "calls", "uri": rx.url("/calls"), "hook": "channel_destroy", "format": "json"}))
        .await;

    // KAZOO publishes CHANNEL_DESTROY on `callevt` with `call.CHANNEL_DESTROY.<call id>`.
    let mut event = webhooks_modules::sample_events("channel_destroy")
        .unwrap()
        .remove(0);
    event["Custom-Channel-Vars"]["Account-ID"] = json!(root);
    let route = webhooks_amqp::route_for(&webhooks_core::Event::from_value(event.clone()).unwrap())
        .unwrap();
    assert!(route.routing_key.starts_with("call.CHANNEL_DESTROY."));
    Kazoo::connect(&vhost).await.publish(&event).await;

    let got = rx.wait_for("/calls", 1).await.remove(0);
    let body: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["hook_event"], "channel_destroy");
    assert_eq!(body["account_id"], root.as_str());
    assert!(body["hangup_cause"].is_string());
}
