//! The server as an embedder runs it: started, serving, stopped on its shutdown future.

use std::time::Duration;

use serde_json::{json, Value};
use webhooks_server::{Server, ServerConfig};
use webhooks_testkit::Receiver;

const KEY: &str = "0000000000000000000000000000000000000000000000000000000000000007";

async fn token(http: &reqwest::Client, base: &str) -> (String, String) {
    let r: Value = http
        .put(format!("{base}/v2/api_auth"))
        .json(&json!({"data": {"api_key": KEY}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        r["auth_token"].as_str().unwrap().to_owned(),
        r["data"]["account_id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_engine_turns_events_away_with_a_503_and_run_returns() {
    let rx = Receiver::start_on("127.0.0.2:0").await;
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        master_api_key: Some(KEY.into()),
        drain_deadline: Duration::from_secs(2),
        // The receiver listens on loopback, which the SSRF guard refuses by default.
        destinations: webhooks_core::destination::DestinationPolicy::loopback_allowed(),
        ..ServerConfig::new(dir.path())
    };
    let server = Server::start(config).await.unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    let engine = server.engine().clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run_until(async {
        let _ = stop_rx.await;
    }));

    let http = reqwest::Client::new();
    let (token, account) = token(&http, &base).await;
    let hook = json!({"data": {"name": "n", "uri": rx.url("/in"), "hook": "channel_create"}});
    let created = http
        .put(format!("{base}/v2/accounts/{account}/webhooks"))
        .header("X-Auth-Token", &token)
        .json(&hook)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let mut event = webhooks_modules::sample_events("channel_create")
        .unwrap()
        .remove(0);
    event["Custom-Channel-Vars"]["Account-ID"] = json!(account);
    let publish = || {
        http.post(format!("{base}/v2/events"))
            .header("X-Auth-Token", &token)
            .json(&event)
            .send()
    };
    assert_eq!(publish().await.unwrap().status(), 202);
    rx.wait_for("/in", 1).await;

    // The engine stops (as on a signal, before the API): events are refused, not lost.
    engine.shutdown(Duration::from_secs(2)).await;
    let refused = publish().await.unwrap();
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "503");
    assert_eq!(body["message"], "shutting down");

    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("run_until returns after its shutdown future")
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
            .await
            .is_err(),
        "the API stopped listening"
    );
}
