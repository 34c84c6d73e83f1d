//! The SSRF guard through the daemon: hook uris naming internal addresses, in any spelling,
//! are refused when saved, with the address in the error; `--allowed-destinations` opens what
//! it lists. Nothing here is sent anywhere (delivery-time refusals: webhooks-engine's
//! `tests/guard.rs`).

mod common;

use common::Daemon;
use serde_json::json;

const REFUSED: &[(&str, &str)] = &[
    ("http://127.1:8080/x", "127.0.0.1"),
    ("http://0x7f000001/x", "127.0.0.1"),
    ("http://2130706433/x", "127.0.0.1"),
    ("http://017700000001/x", "127.0.0.1"),
    ("http://[::ffff:127.0.0.1]:8080/x", "127.0.0.1"),
    ("http://[::1]/x", "::1"),
    (
        "http://169.254.169.254/latest/meta-data/",
        "169.254.169.254",
    ),
    ("http://10.1.2.3/x", "10.1.2.3"),
    ("http://100.64.0.1/x", "100.64.0.1"),
    ("http://[fd00::1]/x", "fd00::1"),
    ("http://localhost./x", "localhost"),
    ("http://foo.localhost:8080/x", "foo.localhost"),
];

fn hook(uri: &str) -> serde_json::Value {
    json!({"name": "n", "uri": uri, "hook": "channel_create"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_destinations_are_refused_when_saved_in_every_spelling() {
    // An explicit empty list: the guard with nothing allowed, as a fresh install runs.
    let d = Daemon::start_with(&["--allowed-destinations", ""]);
    let (master, root) = d.master().await;
    for (uri, address) in REFUSED {
        let r = master
            .put(&format!("/v2/accounts/{root}/webhooks"), hook(uri))
            .await;
        assert_eq!(r.status, 400, "{uri}: {:?}", r.body);
        assert_eq!(
            r.data()["uri"]["error"]["message"],
            format!("destination not allowed: {address}"),
            "{uri}"
        );
    }
    let public = master
        .put(
            &format!("/v2/accounts/{root}/webhooks"),
            hook("http://receiver.example.com/x"),
        )
        .await;
    assert_eq!(public.status, 201, "{:?}", public.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uris_the_sender_could_not_send_are_refused_when_saved() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let long = format!("http://a.example/{}", "x".repeat(70_000));
    for uri in [
        "http://a.example/x\r\nInjected: 1",
        "http://a.example/\0",
        "http://a.example/a b",
        "http://a.example\\evil.example/",
        "http://user:secret@a.example/",
        long.as_str(),
    ] {
        let r = master
            .put(&format!("/v2/accounts/{root}/webhooks"), hook(uri))
            .await;
        assert_eq!(r.status, 400, "{uri:?}: {:?}", r.body);
        assert_eq!(r.data()["uri"]["error"]["message"], "invalid client URL");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allow_list_opens_networks_and_names() {
    let d = Daemon::start_with(&["--allowed-destinations", "10.1.0.0/16,receiver.lan"]);
    let (master, root) = d.master().await;
    for uri in ["http://10.1.2.3/x", "http://receiver.lan/x"] {
        let r = master
            .put(&format!("/v2/accounts/{root}/webhooks"), hook(uri))
            .await;
        assert_eq!(r.status, 201, "{uri}: {:?}", r.body);
    }
    let r = master
        .put(
            &format!("/v2/accounts/{root}/webhooks"),
            hook("http://10.2.0.1/x"),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
}

#[test]
fn a_malformed_allow_list_stops_the_daemon_with_its_reason() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_webhooksd"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--allowed-destinations",
            "10.0.0.0/33",
        ])
        .arg("--data-dir")
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--allowed-destinations"), "{stderr}");
}
