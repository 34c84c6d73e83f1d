//! Nothing acknowledged is lost (issue 13): `webhooksd` is killed with SIGKILL while events
//! stream in, through `POST /v2/events` and through RabbitMQ; after a restart on the same
//! data directory every event that was acknowledged (a 202, a broker confirm) reaches the
//! receiver at least once, and exactly once after deduplication by `webhook-id`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Daemon, Kazoo};
use serde_json::{json, Value};
use webhooks_testkit::rabbitmq::Vhost;
use webhooks_testkit::{Answer, Receiver};

fn channel_create(account: &str, call: &str) -> Value {
    let mut e = webhooks_modules::sample_events("channel_create")
        .unwrap()
        .remove(0);
    e["Custom-Channel-Vars"]["Account-ID"] = json!(account);
    e["Call-ID"] = json!(call);
    e
}

/// Waits until every call in `acked` arrived (bounded: 60 s), then checks each came with one
/// `webhook-id`, however many times it came. Returns (acknowledged, arrivals, duplicates).
async fn every_acked_arrives_once_by_id(rx: &Receiver, acked: &[String]) -> (usize, usize, usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = common::ids_by_call(rx, "/calls");
        let missing: Vec<_> = acked.iter().filter(|c| !got.contains_key(*c)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} acknowledged events never arrived, e.g. {:?}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(3)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = common::ids_by_call(rx, "/calls");
    for call in acked {
        assert_eq!(
            got[call].len(),
            1,
            "{call} came with several ids: {:?}",
            got[call]
        );
    }
    let total = rx.received_at("/calls").len();
    (acked.len(), total, total - got.len())
}

async fn hook_to(d: &Daemon, rx: &Receiver) -> String {
    let (master, root) = d.master().await;
    master
        .create_hook(
            &root,
            json!({"name": "calls", "uri": rx.url("/calls"), "hook": "channel_create", "format": "json"}),
        )
        .await;
    root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_post_stream_loses_no_acknowledged_event() {
    // A receiver that takes 0.2 s per request: deliveries pile up in the engine.
    let rx = Receiver::start_on("127.0.0.2:0").await;
    rx.answer("/calls", Answer::Slow(Duration::from_millis(200)));
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_in(tmp.path(), &[]);
    let root = hook_to(&d, &rx).await;

    // Eight clients post distinct calls (400 each at most) and keep the ones answered 202.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for c in 0..8 {
        let (client, _) = d.master().await;
        let (acked, root) = (acked.clone(), root.clone());
        clients.push(tokio::spawn(async move {
            for i in 0..400 {
                let call = format!("post-{c}-{i}");
                let event = channel_create(&root, &call);
                match client.try_post("/v2/events", &event).await {
                    Some(202) => acked.lock().unwrap().push(call),
                    _ => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = rx.received_at("/calls").len();
    d.kill();
    for c in clients {
        let _ = c.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > before + 100,
        "the kill must come with deliveries pending: {} acknowledged, {before} delivered",
        acked.len()
    );

    let _d = Daemon::start_in(tmp.path(), &[]);
    let (acknowledged, total, repeats) = every_acked_arrives_once_by_id(&rx, &acked).await;
    eprintln!("{acknowledged} acknowledged, {before} delivered before the kill; {total} arrivals after the restart, {repeats} of them repeats");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_an_amqp_stream_loses_no_confirmed_event() {
    let vhost = Vhost::create("durable").await;
    let rx = Receiver::start_on("127.0.0.2:0").await;
    rx.answer("/calls", Answer::Slow(Duration::from_millis(200)));
    let tmp = tempfile::tempdir().unwrap();
    let amqp = ["--amqp-url", &vhost.url()];
    let d = Daemon::start_in(tmp.path(), &amqp);
    let root = hook_to(&d, &rx).await;

    // KAZOO publishes 3,000 calls, each confirmed by the broker; the daemon is killed 1.5 s
    // into the stream and the publisher goes on (the broker keeps what nobody consumes).
    let kazoo = Kazoo::connect(&vhost).await;
    let publishing = tokio::spawn(async move {
        let mut confirmed = Vec::new();
        for i in 0..3000 {
            let call = format!("amqp-{i}");
            kazoo.publish(&channel_create(&root, &call)).await;
            confirmed.push(call);
        }
        confirmed
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = rx.received_at("/calls").len();
    d.kill();
    let confirmed = publishing.await.unwrap();
    assert!(
        before < 1000,
        "the kill must come mid-stream: {before} delivered"
    );

    let _d = Daemon::start_in(tmp.path(), &amqp);
    let (acknowledged, total, repeats) = every_acked_arrives_once_by_id(&rx, &confirmed).await;
    eprintln!("{acknowledged} confirmed, {before} delivered before the kill; {total} arrivals after the restart, {repeats} of them repeats");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_scheduled_before_a_sigkill_is_sent_after_the_restart_at_its_due_time() {
    let rx = Receiver::start_on("127.0.0.2:0").await;
    rx.answer("/calls", Answer::Sequence(vec![500, 500, 200]));
    let tmp = tempfile::tempdir().unwrap();
    let flags = ["--retry-delay-ms", "3000"];
    let d = Daemon::start_in(tmp.path(), &flags);
    let (master, root) = d.master().await;
    let hook = master
        .create_hook(
            &root,
            json!({"name": "calls", "uri": rx.url("/calls"), "hook": "channel_create", "format": "json", "retries": 3}),
        )
        .await;
    let r = master
        .send("POST", "/v2/events", Some(channel_create(&root, "retried")))
        .await;
    assert_eq!(r.status, 202);
    rx.wait_for("/calls", 1).await;
    // The retry's time is in the journal within a commit (about a millisecond); kill well
    // before it is due.
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.kill();

    let d = Daemon::start_in(tmp.path(), &flags);
    let got = rx.wait_for("/calls", 3).await;
    let id = got[0].header("webhook-id").unwrap();
    assert!(got.iter().all(|r| r.header("webhook-id") == Some(id)));
    let waited = got[1].at.duration_since(got[0].at);
    assert!(
        waited >= Duration::from_millis(2900),
        "the retry kept its due time across the kill: sent {waited:?} after the first try"
    );
    let (master, _) = d.master().await;
    let attempts = master
        .get(&format!("/v2/accounts/{root}/webhooks/{hook}/attempts"))
        .await;
    let tries: Vec<(Value, Value)> = attempts
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["result"] == "failure")
        .map(|a| (a["try"].clone(), a["webhook_id"].clone()))
        .collect();
    assert_eq!(
        tries,
        vec![(json!(2), json!(id)), (json!(3), json!(id))],
        "newest first: the try after the restart is the next one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_once_keeps_no_journal_and_still_delivers() {
    let rx = Receiver::start_on("127.0.0.2:0").await;
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_in(tmp.path(), &["--delivery", "at-most-once"]);
    let root = hook_to(&d, &rx).await;
    let (master, _) = d.master().await;
    let r = master
        .send(
            "POST",
            "/v2/events",
            Some(channel_create(&root, "kazoo-way")),
        )
        .await;
    assert_eq!(r.status, 202);
    let got = rx.wait_for("/calls", 1).await;
    assert!(got[0]
        .header("webhook-id")
        .is_some_and(|id| id.starts_with("msg_")));
    assert!(
        !tmp.path().join("journal").exists(),
        "at most once writes no delivery journal"
    );
    // The default keeps one.
    drop(d);
    let _d = Daemon::start_in(tmp.path(), &[]);
    assert!(tmp.path().join("journal").join("LOCK").exists());
}
