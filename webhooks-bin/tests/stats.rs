//! Each hook's recent tries (`.../webhooks/stats`, `.../webhooks/{H}/stats`) and the time each
//! attempt took (`latency_ms`), as a running daemon reports them.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use webhooks_testkit::{Answer, Receiver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hooks_tries_are_counted_by_minute_and_attempts_carry_their_latency() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let account = master.create_account(&root, "customer").await;
    // Not 127.0.0.1: KAZOO's default uri_blacklist refuses it.
    let rx = Receiver::start_on("127.0.0.2:0").await;
    rx.answer("/in", Answer::Sequence(vec![500, 500, 200]));
    let hook = master
        .create_hook(
            &account,
            json!({"name": "n", "uri": rx.url("/in"), "hook": "channel_create", "retries": 1}),
        )
        .await;
    for i in 0..3 {
        let mut e = channel_create(&account);
        e["Call-ID"] = json!(format!("call-{i}"));
        assert_eq!(master.send("POST", "/v2/events", Some(e)).await.status, 202);
        rx.wait_for("/in", i + 1).await;
    }
    let path = format!("/v2/accounts/{account}/webhooks/{hook}/stats");
    let mut stats = master.get(&path).await;
    for _ in 0..100 {
        if stats.data()["succeeded"] == 1 && stats.data()["failed"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        stats = master.get(&path).await;
    }
    let data = stats.data();
    assert_eq!(
        (data["succeeded"].clone(), data["failed"].clone()),
        (json!(1), json!(2))
    );
    assert!((data["success_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(data["bucket_s"], 60);
    let buckets = data["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 60);
    let counted: u64 = buckets
        .iter()
        .map(|b| b["succeeded"].as_u64().unwrap() + b["failed"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 3);
    assert!(buckets
        .windows(2)
        .all(|w| w[1]["start"].as_i64() > w[0]["start"].as_i64()));

    let account_stats = master
        .get(&format!("/v2/accounts/{account}/webhooks/stats"))
        .await;
    assert_eq!(
        account_stats.data(),
        &json!([{"hook_id": hook, "succeeded": 1, "failed": 2, "success_rate": data["success_rate"]}])
    );
    // Another tree's account may not read them.
    let other = master.create_account(&root, "other").await;
    let key = master.get(&format!("/v2/accounts/{other}/api_key")).await;
    let mut stranger = d.client();
    stranger
        .login(key.data()["api_key"].as_str().unwrap())
        .await;
    assert_eq!(stranger.get(&path).await.status, 403);

    // The failed attempts say how long their request took.
    let attempts = master
        .get(&format!("/v2/accounts/{account}/webhooks/{hook}/attempts"))
        .await;
    let items = attempts.data().as_array().unwrap();
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items.iter().all(|a| a["latency_ms"].is_u64()), "{items:?}");
}
