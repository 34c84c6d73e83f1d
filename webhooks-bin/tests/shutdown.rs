//! SIGTERM during a stream of events: the daemon stops taking events, delivers or records
//! every one it accepted, writes every attempt, and exits 0 within its drain deadline.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Daemon;
use serde_json::{json, Value};
use webhooks_core::store::{AttemptQuery, AttemptStore};
use webhooks_core::AccountId;
use webhooks_testkit::{Answer, Receiver};

const DEADLINE_SECS: u64 = 3;

fn channel_create(account: &str, call_id: &str) -> Value {
    let mut e = webhooks_modules::sample_events("channel_create")
        .unwrap()
        .remove(0);
    e["Custom-Channel-Vars"]["Account-ID"] = json!(account);
    e["Call-ID"] = json!(call_id);
    e
}

/// `call_id` of a JSON request body.
fn call_id(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_default();
    v["call_id"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_stream_loses_nothing_that_was_accepted() {
    // Two receivers, two destinations: one answers slowly (0.4 s, two requests at a time, so
    // a backlog builds up that the deadline will cut), one fails at once (every try is an
    // attempt document to write).
    let slow = Receiver::start_on("127.0.0.2:0").await;
    slow.answer("/slow", Answer::Slow(Duration::from_millis(400)));
    let down = Receiver::start_on("127.0.0.2:0").await;
    down.answer("/down", Answer::Status(503));
    let tmp = tempfile::tempdir().unwrap();
    let deadline = DEADLINE_SECS.to_string();
    let flags = [
        "--per-destination-in-flight",
        "2",
        "--retry-delay-ms",
        "50",
        "--drain-deadline-secs",
        &deadline,
    ];
    let d = Daemon::start_in(tmp.path(), &flags);
    let (master, root) = d.master().await;
    for (name, rx, path) in [("slow", &slow, "/slow"), ("down", &down, "/down")] {
        let hook = json!({"name": name, "uri": rx.url(path), "hook": "channel_create",
                          "format": "json", "retries": 2});
        master.create_hook(&root, hook).await;
    }

    // A stream of events (bounded: 400 at most, 5 ms apart); the call ids answered 202.
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let stream = {
        let (master, root, accepted) = (master.clone(), root.clone(), accepted.clone());
        tokio::spawn(async move {
            let url = format!("{}/v2/events", master.base);
            let token = master.token.clone().unwrap();
            for n in 0..400 {
                let id = format!("stream-{n}");
                let sent = master
                    .http
                    .post(&url)
                    .header("X-Auth-Token", &token)
                    .json(&channel_create(&root, &id))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                // Refused or unanswered once the daemon stops: not accepted.
                if !sent.is_ok_and(|r| r.status().as_u16() == 202) {
                    return;
                }
                accepted.lock().unwrap().push(id);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    slow.wait_for("/slow", 4).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let exiting = d.terminate();
    let patience = Duration::from_secs(DEADLINE_SECS + 10);
    let exit = tokio::task::spawn_blocking(move || exiting.wait(patience))
        .await
        .unwrap();
    stream.abort();
    let (status, took) = exit.expect("webhooksd still running 10 s past its deadline");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took < Duration::from_secs(DEADLINE_SECS + 2),
        "exited {took:?} after SIGTERM, deadline {DEADLINE_SECS} s"
    );

    // What the store holds, read after the exit.
    let store = webhooks_store::EmbeddedStore::open(tmp.path()).unwrap();
    let page = store
        .attempts(AttemptQuery {
            account: AccountId::parse(&root).unwrap(),
            hook: None,
            created_from: 0,
            created_to: i64::MAX,
            ascending: true,
            limit: 100_000,
            start: None,
        })
        .await
        .unwrap();
    let attempts: Vec<(String, String, Value)> = page
        .attempts
        .iter()
        .map(|a| {
            let uri = a.str("uri").unwrap_or_default().to_owned();
            let id = call_id(a.str("req_body").unwrap_or_default());
            (uri, id, a.get("client_error").cloned().unwrap_or_default())
        })
        .collect();
    let recorded = |uri: &str, id: &str| attempts.iter().any(|(u, i, _)| u == uri && i == id);
    let accepted = accepted.lock().unwrap().clone();
    let reached: HashSet<String> = slow
        .received_at("/slow")
        .iter()
        .map(|r| call_id(&r.body))
        .collect();
    assert!(
        accepted.len() >= 20,
        "only {} events accepted",
        accepted.len()
    );
    for id in &accepted {
        assert!(
            reached.contains(id) || recorded(&slow.url("/slow"), id),
            "{id} was accepted, never reached the slow receiver and has no attempt"
        );
        assert!(
            recorded(&down.url("/down"), id),
            "{id} was accepted but the failing hook has no attempt for it"
        );
    }
    // Every try the failing receiver saw was written down.
    for r in down.received_at("/down") {
        assert!(recorded(&down.url("/down"), &call_id(&r.body)));
    }
    // The deadline did cut the slow backlog, and said so in the attempts.
    let cut = attempts
        .iter()
        .filter(|(_, _, e)| e == "engine shut down before delivery")
        .count();
    assert!(
        cut > 0,
        "the deadline cut nothing: the test did not test it"
    );
    eprintln!(
        "exit after {took:?}; {} accepted, {} reached the slow receiver, {} attempts, {cut} cut",
        accepted.len(),
        reached.len(),
        attempts.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_at_once_without_waiting_for_the_drain() {
    let hanging = Receiver::start_on("127.0.0.2:0").await;
    hanging.answer("/hang", Answer::Hang);
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_in(tmp.path(), &["--drain-deadline-secs", "30"]);
    let (master, root) = d.master().await;
    let hook = json!({"name": "h", "uri": hanging.url("/hang"), "hook": "channel_create"});
    master.create_hook(&root, hook).await;
    let r = master
        .send("POST", "/v2/events", Some(channel_create(&root, "hang-1")))
        .await;
    assert_eq!(r.status, 202);
    hanging.wait_for("/hang", 1).await;
    // The first signal starts a drain that would wait for the hanging request (30 s).
    let exiting = d.terminate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    exiting.terminate_again();
    let exit = tokio::task::spawn_blocking(move || exiting.wait(Duration::from_secs(10)))
        .await
        .unwrap();
    let (status, took) = exit.expect("webhooksd ignored the second signal");
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}
