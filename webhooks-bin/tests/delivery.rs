//! Delivery through the daemon: events in over `POST /v2/events`, hooks managed through the
//! API, attempts read back through the API.

mod common;

use common::{channel_create, Daemon, MASTER_KEY};
use serde_json::{json, Value};
use webhooks_testkit::{Answer, Receiver};

/// A data directory whose store holds `settings` as the `webhooks` system config.
async fn data_dir_with(settings: Value) -> tempfile::TempDir {
    use webhooks_core::store::ConfigStore;
    let tmp = tempfile::tempdir().unwrap();
    let store = webhooks_store::EmbeddedStore::open(tmp.path()).unwrap();
    store
        .save_system_config(
            "webhooks",
            webhooks_core::Doc::from_value(settings).unwrap(),
        )
        .await
        .unwrap();
    tmp
}

/// The hook at `path`'s `disable_reason` once it has one (bounded: 6 s), else null.
async fn disable_reason(master: &common::Client, path: &str) -> Value {
    let mut reason = Value::Null;
    for _ in 0..120 {
        reason = master.get(path).await.body["data"]["disable_reason"].clone();
        if !reason.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    reason
}

/// The receiver listens on 127.0.0.2: KAZOO's default refusal list blocks 127.0.0.1 only.
async fn receiver() -> Receiver {
    Receiver::start_on("127.0.0.2:0").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_created_through_the_api_fires_at_once() {
    let rx = receiver().await;
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let id = master
        .create_hook(
            &root,
            json!({"name": "n", "uri": rx.url("/new"), "hook": "channel_create", "format": "json"}),
        )
        .await;
    let r = master
        .send("POST", "/v2/events", Some(channel_create(&root)))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.data()["dispatched"], 1);
    let got = rx.wait_for("/new", 1).await.remove(0);
    assert_eq!(got.headers["x-hook-id"], id.as_str());
    let body: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["account_id"], root.as_str());
    assert_eq!(body["hook_event"], "channel_create");
    assert_eq!(body["cluster_id"].as_str().unwrap().len(), 32);

    // Disabled through the API: stops at once. Enabled again: fires again.
    master
        .patch(
            &format!("/v2/accounts/{root}/webhooks/{id}"),
            json!({"enabled": false}),
        )
        .await;
    let r = master
        .send("POST", "/v2/events", Some(channel_create(&root)))
        .await;
    assert_eq!(r.data()["dispatched"], 0);
    master
        .patch(
            &format!("/v2/accounts/{root}/webhooks/{id}"),
            json!({"enabled": true}),
        )
        .await;
    let r = master
        .send("POST", "/v2/events", Some(channel_create(&root)))
        .await;
    assert_eq!(r.data()["dispatched"], 1);
    rx.wait_for("/new", 2).await;
    // Deleted: gone.
    master
        .delete(&format!("/v2/accounts/{root}/webhooks/{id}"))
        .await;
    let r = master
        .send("POST", "/v2/events", Some(channel_create(&root)))
        .await;
    assert_eq!(r.data()["dispatched"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_hook_shows_attempts_gets_disabled_and_is_re_enabled() {
    let rx = receiver().await;
    rx.answer("/bad", Answer::Status(500));
    let tmp =
        data_dir_with(json!({"attempt_failure_count": 3, "attempt_failure_expiry_ms": 2000})).await;
    let d = Daemon::start_in(tmp.path(), &["--retry-delay-ms", "20"]);
    let (master, root) = d.master().await;
    let id = master
        .create_hook(
            &root,
            json!({"name": "bad", "uri": rx.url("/bad"), "hook": "channel_create", "retries": 3}),
        )
        .await;
    master
        .send("POST", "/v2/events", Some(channel_create(&root)))
        .await;
    rx.wait_for("/bad", 3).await;

    // Three failed tries, newest first, with KAZOO's fields.
    let path = format!("/v2/accounts/{root}/webhooks/{id}");
    let mut attempts = Value::Null;
    for _ in 0..200 {
        attempts = master.get(&format!("{path}/attempts")).await.body["data"].clone();
        if attempts.as_array().unwrap().len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let items = attempts.as_array().unwrap();
    assert_eq!(items.len(), 3, "{attempts}");
    assert_eq!(items[0]["retries_left"], "retries exceeded");
    assert_eq!(items[2]["retries_left"], 2);
    for a in items {
        assert_eq!(a["method"], "post");
        assert_eq!(a["result"], "failure");
        assert_eq!(a["resp_status_code"], "500");
        assert_eq!(a["hook_event"], "CHANNEL_CREATE");
        assert!(a["timestamp"].is_i64());
        assert_eq!(a["req_headers"]["x-hook-id"], id.as_str());
    }
    let account_wide = master
        .get(&format!("/v2/accounts/{root}/webhooks/attempts"))
        .await;
    assert_eq!(account_wide.data().as_array().unwrap().len(), 3);

    // Three failures within 2 s reach the threshold: the disabler switches the hook off.
    assert_eq!(
        disable_reason(&master, &path).await,
        "too many failed attempts"
    );
    let summary = master.get(&format!("/v2/accounts/{root}/webhooks")).await;
    assert_eq!(summary.data()[0]["enabled"], false);
    assert_eq!(
        summary.data()[0]["disable_reason"],
        "too many failed attempts"
    );
    let r = master
        .send("POST", "/v2/events", Some(channel_create(&root)))
        .await;
    assert_eq!(r.data()["dispatched"], 0, "a disabled hook does not fire");

    // Re-enabled in bulk: it fires again.
    rx.answer("/bad", Answer::Status(200));
    let r = master
        .patch(
            &format!("/v2/accounts/{root}/webhooks"),
            json!({"re-enable": true}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(master
        .get(&path)
        .await
        .data()
        .get("disable_reason")
        .is_none());
    let r = master
        .send("POST", "/v2/events", Some(channel_create(&root)))
        .await;
    assert_eq!(r.data()["dispatched"], 1);
    rx.wait_for("/bad", 4).await;
}

/// Issue 11's bug as a user met it: a hook that fails from its first second is disabled.
/// Its failures used to be wiped by the change feed bringing back the creation the API had
/// already applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_failing_right_after_its_creation_is_disabled() {
    let rx = receiver().await;
    rx.answer("/down", Answer::Status(503));
    // KAZOO's threshold (6 failures); a 4 s window makes the disabler look every second.
    let tmp =
        data_dir_with(json!({"attempt_failure_count": 6, "attempt_failure_expiry_ms": 4000})).await;
    let d = Daemon::start_in(tmp.path(), &[]);
    let (master, root) = d.master().await;
    let id = master
        .create_hook(
            &root,
            json!({"name": "down", "uri": rx.url("/down"), "hook": "channel_destroy", "retries": 1}),
        )
        .await;
    let mut destroy = webhooks_modules::sample_events("channel_destroy")
        .unwrap()
        .remove(0);
    destroy["Custom-Channel-Vars"]["Account-ID"] = json!(root);
    for _ in 0..8 {
        let r = master
            .send("POST", "/v2/events", Some(destroy.clone()))
            .await;
        assert_eq!(r.data()["dispatched"], 1, "{:?}", r.body);
    }
    rx.wait_for("/down", 8).await;
    let path = format!("/v2/accounts/{root}/webhooks/{id}");
    // The window and then some: the disabler looks every second.
    assert_eq!(
        disable_reason(&master, &path).await,
        "too many failed attempts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_endpoint_checks_caller_and_input() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    // Only the master account publishes.
    let child = master.create_account(&root, "child").await;
    let key = master
        .get(&format!("/v2/accounts/{child}/api_key"))
        .await
        .data()["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut c = d.client();
    c.login(&key).await;
    assert_eq!(
        c.send("POST", "/v2/events", Some(channel_create(&child)))
            .await
            .status,
        403
    );
    assert_eq!(
        d.client()
            .send("POST", "/v2/events", Some(channel_create(&root)))
            .await
            .status,
        401
    );

    let r = master
        .send_raw("POST", "/v2/events", Some(b"{nope".to_vec()))
        .await;
    assert_eq!(r.status, 400);
    let r = master.send("POST", "/v2/events", Some(json!("text"))).await;
    assert_eq!(r.status, 400);
    let r = master
        .send(
            "POST",
            "/v2/events",
            Some(json!({"Event-Name": "CHANNEL_CREATE"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.data()["event"]["invalid"]["message"]
        .as_str()
        .unwrap()
        .contains("Event-Category"));
    // A valid event naming no account is accepted and dropped, not an error.
    let mut e = channel_create(&root);
    e["Custom-Channel-Vars"]
        .as_object_mut()
        .unwrap()
        .remove("Account-ID");
    let r = master.send("POST", "/v2/events", Some(e)).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.data()["dropped"], "event names no account");
    // Arrays are accepted.
    let r = master
        .send(
            "POST",
            "/v2/events",
            Some(json!([channel_create(&root), channel_create(&root)])),
        )
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(r.data().as_array().unwrap().len(), 2);
    let _ = MASTER_KEY;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_from_another_process_reach_the_running_daemon() {
    use webhooks_core::store::HookStore;
    let rx = receiver().await;
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_in(tmp.path(), &[]);
    let (master, root) = d.master().await;
    // A second connection to the same store, as the maintenance CLI opens it.
    let other = webhooks_store::EmbeddedStore::open(tmp.path()).unwrap();
    let doc = json!({"_id": "from-cli", "pvt_type": "webhook", "pvt_account_id": root, "name": "cli",
        "uri": rx.url("/cli"), "hook": "channel_create", "enabled": false,
        "pvt_disabled_message": "too many failed attempts"});
    other
        .save_hook(webhooks_core::Doc::from_value(doc).unwrap())
        .await
        .unwrap();
    let publish = || master.send("POST", "/v2/events", Some(channel_create(&root)));
    assert_eq!(publish().await.data()["dispatched"], 0, "auto-disabled");

    // What `webhooks enable-account-hooks` does, from outside the daemon.
    let root_id = webhooks_core::AccountId::parse(&root).unwrap();
    let done = webhooks_core::reenable::reenable_account_hooks(&other, &root_id)
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    let mut dispatched = 0;
    for _ in 0..100 {
        dispatched = publish().await.data()["dispatched"].as_u64().unwrap();
        if dispatched == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(dispatched, 1, "the daemon picked up the re-enable");
    rx.wait_for("/cli", 1).await;
}
