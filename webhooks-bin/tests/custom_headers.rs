//! `custom_request_headers` (the field Monster UI 5.5 writes): sent with every request of the
//! hook, and refused when saved if the sender could not send them or they are the engine's or
//! the HTTP client's own.

mod common;

use common::{channel_create, Daemon};
use serde_json::{json, Value};
use webhooks_testkit::Receiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_headers_arrive_with_every_request() {
    let rx = Receiver::start_on("127.0.0.2:0").await;
    let d = Daemon::start();
    let (master, root) = d.master().await;
    master
        .create_hook(
            &root,
            json!({"name": "n", "uri": rx.url("/h"), "hook": "channel_create",
                   "custom_request_headers": {"X-Api-Key": "abc123", "x-tenant": "acme corp"}}),
        )
        .await;
    let r = master
        .send("POST", "/v2/events", Some(channel_create(&root)))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let got = rx.wait_for("/h", 1).await.remove(0);
    assert_eq!(got.headers["x-api-key"], "abc123");
    assert_eq!(got.headers["x-tenant"], "acme corp");
    assert_eq!(
        got.headers["content-type"], "application/x-www-form-urlencoded",
        "the engine's own headers stay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_header_is_a_validation_error() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let long = "v".repeat(5000);
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"X-Evil": "a\r\nInjected: 1"}), "X-Evil", "pattern"),
        (json!({"X-Nul": "a\u{0}b"}), "X-Nul", "pattern"),
        (json!({"Bad Name": "x"}), "Bad Name", "pattern"),
        (json!({"Host": "elsewhere.example"}), "Host", "reserved"),
        (json!({"Content-Length": "5"}), "Content-Length", "reserved"),
        (
            json!({"Transfer-Encoding": "chunked"}),
            "Transfer-Encoding",
            "reserved",
        ),
        (json!({"Connection": "close"}), "Connection", "reserved"),
        (
            json!({"webhook-signature": "v1,forged"}),
            "webhook-signature",
            "reserved",
        ),
        (json!({"X-Number": 5}), "X-Number", "type"),
        (json!({"X-Long": long}), "X-Long", "maxLength"),
    ];
    for (headers, name, code) in cases {
        let r = master
            .put(
                &format!("/v2/accounts/{root}/webhooks"),
                json!({"name": "n", "uri": "http://receiver.example.com/", "hook": "channel_create",
                       "custom_request_headers": headers}),
            )
            .await;
        assert_eq!(r.status, 400, "{name}: {:?}", r.body);
        let path = format!("custom_request_headers.{name}");
        assert!(r.data()[&path][code].is_object(), "{name}: {:?}", r.body);
    }
    let many: serde_json::Map<String, Value> =
        (0..40).map(|i| (format!("X-H{i}"), json!("v"))).collect();
    let r = master
        .put(
            &format!("/v2/accounts/{root}/webhooks"),
            json!({"name": "n", "uri": "http://receiver.example.com/", "hook": "channel_create",
                   "custom_request_headers": many}),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.data()["custom_request_headers"]["maxProperties"].is_object());
    let r = master
        .put(
            &format!("/v2/accounts/{root}/webhooks"),
            json!({"name": "n", "uri": "http://receiver.example.com/", "hook": "channel_create",
                   "custom_request_headers": "X-A: b"}),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
}
