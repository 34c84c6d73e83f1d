//! Failure counts survive the echoes of a change already applied (issue 11's bug): the API
//! applies its save at once, then the same save comes back through the change feed and, in
//! a KAZOO cluster, as a `doc_edited` notice. Before the fix each echo cleared the count, so a
//! hook failing right after its creation was never disabled.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use webhooks_core::store::HookStore;
use webhooks_core::transport::{ConfigListener, DocAction, DocChange};
use webhooks_core::{AccountId, Doc};
use webhooks_engine::{Engine, EngineConfig};

/// Failed tries counted against `hook` now.
fn failures(engine: &Engine, hook: &str) -> usize {
    engine
        .hooks()
        .failures()
        .counts(webhooks_core::time::now_unix_ms(), |_| 600_000)
        .into_iter()
        .filter(|(_, h, _)| h == hook)
        .map(|(_, _, n)| n)
        .sum()
}

fn channel_destroy(n: usize) -> webhooks_core::Event {
    let mut e = webhooks_modules::sample_events("channel_destroy")
        .unwrap()
        .remove(0);
    e["Call-ID"] = json!(format!("echo-{n}"));
    event(&e)
}

/// The notice KAZOO publishes for a webhook edit.
fn edited(id: &str) -> DocChange {
    DocChange {
        action: DocAction::Edited,
        id: id.into(),
        doc_type: "webhook".into(),
        database: "webhooks".into(),
        account_id: Some(AccountId::parse(ACCOUNT).unwrap()),
        soft_deleted: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_survive_echoes_and_only_a_new_target_clears_them() {
    let rx = Receiver::start().await;
    rx.answer("/down", Answer::Status(503));
    // Thresholds out of reach: this test reads the counts, the disabler must not act.
    let settings = json!({"attempt_failure_count": 1000});
    let config = EngineConfig {
        follow_every: Duration::from_millis(100),
        ..EngineConfig::default()
    };
    let s = engine(vec![], settings, config).await;

    // Created after start, as through the API: saved, then applied at once.
    let doc = hook(
        "fresh",
        ACCOUNT,
        "channel_destroy",
        &rx.url("/down"),
        json!({"retries": 1}),
    );
    let saved = s
        .store
        .save_hook(Doc::from_value(doc).unwrap())
        .await
        .unwrap();
    s.engine.hooks().apply_doc(&saved);
    for n in 0..8 {
        assert_eq!(
            s.engine
                .publish(channel_destroy(n))
                .await
                .unwrap()
                .dispatched,
            1
        );
    }
    rx.wait_for("/down", 8).await;
    settle(&s.engine).await;
    assert_eq!(failures(&s.engine, "fresh"), 8);

    // The same save again: as a KAZOO notice, and from the change feed (several polls).
    s.engine.doc_changed(&edited("fresh")).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        failures(&s.engine, "fresh"),
        8,
        "an echo cleared the failures"
    );

    // A new name is not a new target: the count stands.
    let mut renamed = s.store.hook("fresh").await.unwrap().unwrap();
    renamed.set("name", "still failing");
    let renamed = s.store.save_hook(renamed).await.unwrap();
    s.engine.hooks().apply_doc(&renamed);
    assert_eq!(failures(&s.engine, "fresh"), 8);

    // A new uri is: the failures were about the old one.
    let mut moved = renamed;
    moved.set("uri", rx.url("/elsewhere"));
    let moved = s.store.save_hook(moved).await.unwrap();
    s.engine.hooks().apply_doc(&moved);
    assert_eq!(failures(&s.engine, "fresh"), 0);
}
