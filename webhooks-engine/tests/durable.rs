//! At least once (issue 13): deliveries kept in a journal go on after a restart with their
//! `webhook-id` and the next try; retries follow the hook's schedule and the receiver's
//! `Retry-After`; a `410 Gone` disables the hook at once.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use webhooks_core::pending::DeliveryJournal;
use webhooks_core::store::HookStore;
use webhooks_engine::{Engine, EngineConfig};
use webhooks_store::{EmbeddedStore, FileJournal, JournalConfig};

fn channel_create() -> webhooks_core::Event {
    event(&webhooks_modules::sample_events("channel_create").unwrap()[0])
}

async fn durable_engine(
    store: &Arc<EmbeddedStore>,
    journal: &Arc<FileJournal>,
    retry_delay: Duration,
) -> Engine {
    Engine::start_with_journal(
        store.clone(),
        webhooks_modules::kazoo_registry(&[]),
        EngineConfig {
            retry_delay,
            destinations: webhooks_core::destination::DestinationPolicy::loopback_allowed(),
            ..EngineConfig::default()
        },
        Some(journal.clone() as Arc<dyn DeliveryJournal>),
    )
    .await
    .unwrap()
}

fn open(dir: &Path) -> Arc<FileJournal> {
    Arc::new(FileJournal::open(dir, JournalConfig::default()).unwrap())
}

fn log_successes() -> Value {
    json!({"_id": "webhooks", "log_successful_attempts": true})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_waiting_at_a_restart_goes_on_with_its_webhook_id_and_next_try() {
    let rx = Receiver::start().await;
    rx.answer("/flaky", Answer::Sequence(vec![500, 500, 200]));
    let hooks = vec![hook(
        "flaky",
        ACCOUNT,
        "channel_create",
        &rx.url("/flaky"),
        json!({"retries": 3}),
    )];
    let store = store_with(hooks, log_successes()).await;
    let dir = tempfile::tempdir().unwrap();
    let delay = Duration::from_millis(1500);

    let journal = open(dir.path());
    let engine = durable_engine(&store, &journal, delay).await;
    engine.publish(channel_create()).await.unwrap();
    let first = rx.wait_for("/flaky", 1).await;
    // Stopped while the retry waits: it leaves memory, the journal keeps it.
    engine.shutdown(Duration::from_secs(5)).await;
    journal.close();
    drop((engine, journal));

    let journal = open(dir.path());
    assert_eq!(journal.open_report().pending, 1);
    let engine = durable_engine(&store, &journal, delay).await;
    let got = rx.wait_for("/flaky", 3).await;
    settle(&engine).await;
    engine.shutdown(Duration::from_secs(5)).await;

    let id = first[0].header("webhook-id").unwrap();
    assert!(id.starts_with("msg_") && id.len() == 36, "{id}");
    for r in &got {
        assert_eq!(r.header("webhook-id"), Some(id), "one delivery, one id");
    }
    assert!(
        got[1].at.duration_since(got[0].at) >= delay - Duration::from_millis(100),
        "the retry waited for its due time across the restart"
    );
    let docs = attempts(&store, "flaky").await;
    let tries: Vec<_> = docs
        .iter()
        .map(|d| (d.str("result"), d.get("try").cloned(), d.str("webhook_id")))
        .collect();
    assert_eq!(
        tries,
        vec![
            (Some("failure"), Some(json!(3)), Some(id)),
            (Some("failure"), Some(json!(2)), Some(id)),
            (Some("success"), None, Some(id)),
        ]
    );
    drop((engine, journal));
    let journal_left = FileJournal::open(dir.path(), JournalConfig::default()).unwrap();
    assert_eq!(
        journal_left.open_report().pending,
        0,
        "finished in the journal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_429_is_honoured() {
    let rx = Receiver::start().await;
    rx.answer("/busy", Answer::Sequence(vec![429, 200]));
    rx.answer("/busy", Answer::RetryAfter(2));
    let hooks = vec![hook(
        "busy",
        ACCOUNT,
        "channel_create",
        &rx.url("/busy"),
        json!({"retries": 3}),
    )];
    let s = engine(hooks, json!({"_id": "webhooks"}), EngineConfig::default()).await;
    s.engine.publish(channel_create()).await.unwrap();
    let got = rx.wait_for("/busy", 2).await;
    let waited = got[1].at.duration_since(got[0].at);
    assert!(
        waited >= Duration::from_millis(1900),
        "asked for 2 s, the engine's own delay is 30 ms; waited {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_gone_disables_the_hook_at_once_with_its_reason() {
    let rx = Receiver::start().await;
    rx.answer("/gone", Answer::Status(410));
    let hooks = vec![hook(
        "gone",
        ACCOUNT,
        "channel_create",
        &rx.url("/gone"),
        json!({"retries": 4}),
    )];
    let s = engine(hooks, json!({"_id": "webhooks"}), EngineConfig::default()).await;
    s.engine.publish(channel_create()).await.unwrap();
    rx.wait_for("/gone", 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let doc = loop {
        let doc = s.store.hook("gone").await.unwrap().unwrap();
        if doc.bool("enabled") == Some(false) {
            break doc;
        }
        assert!(tokio::time::Instant::now() < deadline, "not disabled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        doc.str("pvt_disabled_message"),
        Some("the receiver answered 410 Gone")
    );
    settle(&s.engine).await;
    s.engine.publish(channel_create()).await.unwrap();
    settle(&s.engine).await;
    assert_eq!(rx.received_at("/gone").len(), 1, "no retry, nothing after");
    assert_eq!(s.engine.stats().hooks_gone, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exponential_schedule_waits_about_five_seconds_first_and_has_twelve_tries() {
    let rx = Receiver::start().await;
    rx.answer("/exp", Answer::Sequence(vec![500, 200]));
    let hooks = vec![hook(
        "exp",
        ACCOUNT,
        "channel_create",
        &rx.url("/exp"),
        json!({"retries": 2, "retry_schedule": "exponential"}),
    )];
    let s = engine(hooks, json!({"_id": "webhooks"}), EngineConfig::default()).await;
    s.engine.publish(channel_create()).await.unwrap();
    let got = rx.wait_for("/exp", 2).await;
    let waited = got[1].at.duration_since(got[0].at);
    assert!(
        waited >= Duration::from_millis(3900) && waited <= Duration::from_millis(7000),
        "5 s ± 20% (the engine's own delay is 30 ms); waited {waited:?}"
    );
    settle(&s.engine).await;
    let docs = attempts(&s.store, "exp").await;
    assert_eq!(docs[0].get("retries_left"), Some(&json!(11)));
}
