//! Attempt listings (spec §3.3.11): newest first, per hook, ranged, paged.

mod common;

use common::{hook, Daemon};
use serde_json::json;
use webhooks_core::store::AttemptStore;
use webhooks_core::Doc;

fn attempt(account: &str, hook_id: &str, created: i64, n: usize) -> Doc {
    Doc::from_value(json!({
        "hook_id": hook_id, "hook_event": "CHANNEL_CREATE", "event_id": format!("{n:010x}"),
        "uri": "http://a.b/", "method": "post", "req_headers": {"x-hook-id": hook_id},
        "req_body": "a=1", "result": "failure", "reason": "bad response code",
        "resp_status_code": "500", "try": 1, "retries_left": "retries exceeded",
        "pvt_account_id": account, "pvt_type": "webhook_attempt", "pvt_created": created,
        "pvt_modified": created,
    }))
    .unwrap()
}

#[tokio::test]
async fn attempts_are_listed_newest_first_per_account_and_per_hook() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_in(tmp.path(), &[]);
    let (master, root) = d.master().await;
    let other = master.create_account(&root, "other").await;
    let h1 = master.create_hook(&root, hook("one")).await;
    let h2 = master.create_hook(&root, hook("two")).await;
    d.stop();

    let now = webhooks_core::time::now_gregorian();
    let store = webhooks_store::EmbeddedStore::open(tmp.path()).unwrap();
    let mut docs = Vec::new();
    for i in 0..7 {
        docs.push(attempt(
            &root,
            if i % 2 == 0 { &h1 } else { &h2 },
            now - 100 + i as i64,
            i,
        ));
    }
    docs.push(attempt(&other, "elsewhere", now - 50, 99));
    docs.push(attempt(&root, &h1, now - 40 * 86_400, 100)); // outside the default range
    store.save_attempts(docs.into()).await.unwrap();
    // Keep 60 days, so the 40-day-old attempt survives the pruning that runs at start.
    use webhooks_core::store::ConfigStore;
    let cfg = Doc::from_value(json!({"attempts_retention_days": 60})).unwrap();
    store.save_system_config("webhooks", cfg).await.unwrap();
    drop(store);

    let d = Daemon::start_in(tmp.path(), &[]);
    let (master, _) = d.master().await;
    let r = master
        .get(&format!("/v2/accounts/{root}/webhooks/attempts"))
        .await;
    assert_eq!(r.status, 200);
    let items = r.data().as_array().unwrap();
    assert_eq!(items.len(), 7);
    let stamps: Vec<i64> = items
        .iter()
        .map(|a| a["timestamp"].as_i64().unwrap())
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {stamps:?}"
    );
    assert_eq!(items[0]["method"], "post");
    assert!(items[0].get("pvt_account_id").is_none());

    let r = master
        .get(&format!("/v2/accounts/{root}/webhooks/{h1}/attempts"))
        .await;
    assert_eq!(r.data().as_array().unwrap().len(), 4);
    assert!(r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["hook_id"] == h1.as_str()));

    // Paging covers each attempt once.
    let base = format!("/v2/accounts/{root}/webhooks/attempts?page_size=3");
    let mut seen = Vec::new();
    let mut url = base.clone();
    loop {
        let r = master.get(&url).await;
        seen.extend(
            r.data()
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["event_id"].as_str().unwrap().to_owned()),
        );
        match r.body["next_start_key"].as_str() {
            Some(k) => url = format!("{base}&start_key={k}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7);

    // An explicit range reaches the old attempt.
    let from = now - 41 * 86_400;
    let r = master
        .get(&format!(
            "/v2/accounts/{root}/webhooks/attempts?created_from={from}&created_to={}",
            from + 2 * 86_400
        ))
        .await;
    assert_eq!(r.data().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_ranges_are_validation_errors() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let base = format!("/v2/accounts/{root}/webhooks/attempts");
    let r = master
        .get(&format!("{base}?created_from=200&created_to=100"))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.data()["created_from"]["date_range"].is_object());
    let r = master
        .get(&format!("{base}?created_from=0&created_to=63900000000"))
        .await;
    assert_eq!(r.status, 400);
    let r = master.get(&format!("{base}?created_from=abc")).await;
    assert_eq!(r.status, 400);
    let r = master.get(&format!("{base}?start_key=garbage")).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn attempts_older_than_the_retention_are_pruned_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_in(tmp.path(), &[]);
    let (master, root) = d.master().await;
    let h = master.create_hook(&root, hook("one")).await;
    d.stop();
    let now = webhooks_core::time::now_gregorian();
    let store = webhooks_store::EmbeddedStore::open(tmp.path()).unwrap();
    store
        .save_attempts(
            vec![
                attempt(&root, &h, now - 40 * 86_400, 1),
                attempt(&root, &h, now - 86_400, 2),
            ]
            .into(),
        )
        .await
        .unwrap();
    drop(store);
    let d = Daemon::start_in(tmp.path(), &[]);
    let (master, _) = d.master().await;
    let from = now - 50 * 86_400;
    let url = format!(
        "/v2/accounts/{root}/webhooks/attempts?created_from={from}&created_to={}",
        from + 2_600_000
    );
    let r = master.get(&url).await;
    assert_eq!(
        r.data().as_array().unwrap().len(),
        0,
        "the 40-day-old attempt is gone (retention 31 days)"
    );
    let r = master
        .get(&format!("/v2/accounts/{root}/webhooks/attempts"))
        .await;
    assert_eq!(r.data().as_array().unwrap().len(), 1);
}
