//! The engine end to end: KAZOO events in, HTTP requests out at a real local receiver.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Map, Value};
use webhooks_core::encode::querystring;
use webhooks_core::store::HookStore;
use webhooks_core::{AccountId, WebhookModule};
use webhooks_engine::EngineConfig;

const CHANNEL_MODULES: [&str; 4] = [
    "channel_create",
    "channel_answer",
    "channel_bridge",
    "channel_destroy",
];
const SHAPES: [(&str, &str); 5] = [
    ("get", "form-data"),
    ("post", "form-data"),
    ("post", "json"),
    ("put", "form-data"),
    ("put", "json"),
];

fn module(id: &str) -> std::sync::Arc<dyn WebhookModule> {
    webhooks_modules::kazoo_modules(&[])
        .into_iter()
        .find(|m| m.init().id == id)
        .unwrap()
}

/// What a hook must receive for a sample: the module's own sample payload (checked against
/// KAZOO's fixtures in webhooks-modules) plus the cluster id.
fn expected(module_id: &str, i: usize) -> Map<String, Value> {
    let mut p = module(module_id).samples()[i].as_object().unwrap().clone();
    p.insert("cluster_id".into(), json!("cluster-1"));
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_channel_sample_arrives_exactly_in_each_verb_and_format() {
    let rx = Receiver::start().await;
    let mut hooks = Vec::new();
    for m in CHANNEL_MODULES {
        for (verb, format) in SHAPES {
            let id = format!("{m}-{verb}-{format}");
            hooks.push(hook(
                &id,
                ACCOUNT,
                m,
                &rx.url(&format!("/{id}")),
                json!({"http_verb": verb, "format": format}),
            ));
        }
    }
    let s = engine(hooks, json!({}), EngineConfig::default()).await;
    for m in CHANNEL_MODULES {
        for e in webhooks_modules::sample_events(m).unwrap() {
            let report = s.engine.publish(event(&e)).await.unwrap();
            assert_eq!(report.dispatched, SHAPES.len(), "{m}");
        }
    }
    for m in CHANNEL_MODULES {
        let want = expected(m, 0);
        for (verb, format) in SHAPES {
            let id = format!("{m}-{verb}-{format}");
            let got = rx.wait_for(&format!("/{id}"), 1).await.remove(0);
            assert_eq!(got.method, verb.to_uppercase(), "{id}");
            assert_eq!(got.headers["x-hook-id"], id.as_str());
            assert_eq!(got.headers["x-account-id"], ACCOUNT);
            match (verb, format) {
                ("get", _) => {
                    assert_eq!(
                        got.query.as_deref(),
                        Some(querystring(&want).as_str()),
                        "{id}"
                    );
                    assert!(got.body.is_empty() && got.headers.get("content-type").is_none());
                }
                (_, "form-data") => {
                    assert_eq!(
                        got.headers["content-type"],
                        "application/x-www-form-urlencoded"
                    );
                    assert_eq!(got.body, querystring(&want), "{id}");
                }
                _ => {
                    assert_eq!(got.headers["content-type"], "application/json");
                    let body: Value = serde_json::from_str(&got.body).unwrap();
                    assert_eq!(body, Value::Object(want.clone()), "{id}");
                }
            }
        }
    }
    // Spot checks of KAZOO's form encoding on a real payload.
    let form = rx
        .received_at("/channel_create-post-form-data")
        .remove(0)
        .body;
    assert!(form.starts_with("account_id=91eb05e5c68d7ca05e7618b6821d2d16&"));
    assert!(form.contains("&caller_id_number=%2B15556783945&"));
    assert!(form.contains("&from=%2B15556783945%40matrix.test.com&"));
    assert!(form.contains("&timestamp=63724349409&"));
    assert!(form.contains("&is_internal_leg=false&"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_data_is_merged_and_modifiers_filter() {
    let rx = Receiver::start().await;
    let hooks = vec![
        hook(
            "cd",
            ACCOUNT,
            "channel_create",
            &rx.url("/cd"),
            json!({"format": "json",
            "custom_data": {"team": "blue", "call_direction": "overridden"}}),
        ),
        hook(
            "keep",
            ACCOUNT,
            "channel_create",
            &rx.url("/keep"),
            json!({"modifiers": {"call_direction": ["inbound", "outbound"]}}),
        ),
        hook(
            "skip",
            ACCOUNT,
            "channel_create",
            &rx.url("/skip"),
            json!({"modifiers": {"call_direction": "outbound"}}),
        ),
    ];
    let s = engine(hooks, json!({}), EngineConfig::default()).await;
    let e = &webhooks_modules::sample_events("channel_create").unwrap()[0];
    assert_eq!(s.engine.publish(event(e)).await.unwrap().dispatched, 2);
    let got: Value = serde_json::from_str(&rx.wait_for("/cd", 1).await[0].body).unwrap();
    assert_eq!(got["team"], "blue");
    assert_eq!(got["call_direction"], "overridden");
    assert_eq!(got["cluster_id"], "cluster-1");
    rx.wait_for("/keep", 1).await;
    settle(&s.engine).await;
    assert!(rx.received_at("/skip").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_follow_the_outcome_and_the_retries_count() {
    let rx = Receiver::start().await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/refused", l.local_addr().unwrap())
    };
    rx.answer("/e500", Answer::Status(500));
    rx.answer("/e404", Answer::Status(404));
    rx.answer("/e429", Answer::Status(429));
    rx.answer("/e302", Answer::Status(302));
    rx.answer("/flaky", Answer::Sequence(vec![503, 200]));
    rx.answer("/e204", Answer::Status(204));
    let h = |id: &str, retries: u8| {
        hook(
            id,
            ACCOUNT,
            "channel_create",
            &rx.url(&format!("/{id}")),
            json!({"retries": retries}),
        )
    };
    let hooks = vec![
        h("e500", 3),
        h("e404", 3),
        h("e429", 2),
        h("e302", 3),
        h("flaky", 4),
        h("e204", 3),
        hook(
            "refused",
            ACCOUNT,
            "channel_create",
            &dead,
            json!({"retries": 3}),
        ),
    ];
    let s = engine(
        hooks,
        json!({"attempt_failure_count": 100}),
        EngineConfig::default(),
    )
    .await;
    let e = &webhooks_modules::sample_events("channel_create").unwrap()[0];
    s.engine.publish(event(e)).await.unwrap();
    settle(&s.engine).await;

    assert_eq!(
        rx.received_at("/e500").len(),
        3,
        "5xx is retried up to `retries` tries"
    );
    assert_eq!(rx.received_at("/e429").len(), 2, "429 is retried");
    assert_eq!(
        rx.received_at("/e404").len(),
        1,
        "other 4xx are not retried"
    );
    assert_eq!(
        rx.received_at("/e302").len(),
        1,
        "3xx is a failure, not retried"
    );
    assert_eq!(
        rx.received_at("/flaky").len(),
        2,
        "a retry that succeeds ends the delivery"
    );
    assert_eq!(rx.received_at("/e204").len(), 1, "any 2xx is success");

    let a = attempts(&s.store, "e500").await;
    assert_eq!(a.len(), 3);
    let lefts: Vec<Value> = a
        .iter()
        .map(|d| d.get("retries_left").cloned().unwrap())
        .collect();
    assert_eq!(lefts, vec![json!(2), json!(1), json!("retries exceeded")]);
    assert!(a
        .iter()
        .all(|d| d.str("reason") == Some("bad response code")
            && d.str("resp_status_code") == Some("500")));
    let ids: std::collections::HashSet<_> = a
        .iter()
        .map(|d| d.str("event_id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "one event_id for every try of a delivery");

    let r = attempts(&s.store, "refused").await;
    assert_eq!(r.len(), 3, "transport errors are retried");
    assert_eq!(
        r[0].str("client_error"),
        Some("failed_connect: econnrefused")
    );
    assert_eq!(r[0].str("reason"), Some("kazoo http client error"));
    assert_eq!(
        attempts(&s.store, "flaky").await.len(),
        1,
        "successes are not logged by default"
    );
    assert!(attempts(&s.store, "e204").await.is_empty());
    let stats = s.engine.stats();
    assert_eq!(stats.deliveries_succeeded, 2);
    assert_eq!(stats.deliveries_failed, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successes_are_logged_when_asked() {
    let rx = Receiver::start().await;
    let hooks = vec![hook(
        "ok",
        ACCOUNT,
        "channel_create",
        &rx.url("/ok"),
        json!({}),
    )];
    let s = engine(
        hooks,
        json!({"log_successful_attempts": true}),
        EngineConfig::default(),
    )
    .await;
    let e = &webhooks_modules::sample_events("channel_create").unwrap()[0];
    s.engine.publish(event(e)).await.unwrap();
    settle(&s.engine).await;
    let a = attempts(&s.store, "ok").await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].str("result"), Some("success"));
    assert_eq!(a[0].str("resp_status_code"), Some("200"));
    assert_eq!(a[0].str("resp_body"), Some("receiver says hi"));
}

/// Polls until the hook's stored document is auto-disabled (bounded).
async fn wait_disabled(s: &Setup, id: &str) -> bool {
    for _ in 0..200 {
        let doc = s.store.hook(id).await.unwrap().unwrap();
        if doc.bool("enabled") == Some(false) {
            assert_eq!(
                doc.str("pvt_disabled_message"),
                Some("too many failed attempts")
            );
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_hook_is_disabled_at_the_threshold_and_stops_firing() {
    let rx = Receiver::start().await;
    rx.answer("/bad", Answer::Status(500));
    let hooks = vec![
        hook(
            "bad",
            ACCOUNT,
            "channel_create",
            &rx.url("/bad"),
            json!({"retries": 1}),
        ),
        hook(
            "good",
            ACCOUNT,
            "channel_create",
            &rx.url("/good"),
            json!({}),
        ),
        hook(
            "watch",
            ACCOUNT,
            "notifications",
            &rx.url("/watch"),
            json!({"custom_data": {"type": "webhook_disabled"}, "format": "json"}),
        ),
    ];
    // Threshold 3 within 60 s; the disabler checks every 60000/4 ms, too slow for a test, so
    // the window is 2 s (checks every 500 ms).
    let s = engine(
        hooks,
        json!({"attempt_failure_count": 3, "attempt_failure_expiry_ms": 2000}),
        EngineConfig::default(),
    )
    .await;
    let e = &webhooks_modules::sample_events("channel_create").unwrap()[0];
    for _ in 0..3 {
        s.engine.publish(event(e)).await.unwrap();
    }
    rx.wait_for("/bad", 3).await;
    assert!(
        wait_disabled(&s, "bad").await,
        "disabled after 3 failures within the window"
    );
    // The webhook_disabled notification reached the account's notification hook.
    let note: Value = serde_json::from_str(&rx.wait_for("/watch", 1).await[0].body).unwrap();
    assert_eq!(note["event_name"], "webhook_disabled");
    assert_eq!(note["hook_id"], "bad");
    // Further events reach the healthy hook only.
    s.engine.publish(event(e)).await.unwrap();
    rx.wait_for("/good", 4).await;
    settle(&s.engine).await;
    assert_eq!(rx.received_at("/bad").len(), 3);
    assert_eq!(s.engine.stats().hooks_disabled, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_spread_wider_than_the_window_do_not_disable() {
    let rx = Receiver::start().await;
    rx.answer("/bad", Answer::Status(500));
    let hooks = vec![hook(
        "bad",
        ACCOUNT,
        "channel_create",
        &rx.url("/bad"),
        json!({"retries": 1}),
    )];
    // Threshold 2 within 400 ms; failures come 1 s apart, so never two in one window.
    let s = engine(
        hooks,
        json!({"attempt_failure_count": 2, "attempt_failure_expiry_ms": 400}),
        EngineConfig::default(),
    )
    .await;
    let e = &webhooks_modules::sample_events("channel_create").unwrap()[0];
    for i in 1..=4 {
        s.engine.publish(event(e)).await.unwrap();
        rx.wait_for("/bad", i).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let doc = s.store.hook("bad").await.unwrap().unwrap();
    assert_ne!(doc.bool("enabled"), Some(false), "never disabled");
    assert_eq!(s.engine.stats().hooks_disabled, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_threshold_overrides_the_system_one() {
    use webhooks_core::store::ConfigStore;
    let rx = Receiver::start().await;
    rx.answer("/bad", Answer::Status(500));
    let hooks = vec![hook(
        "bad",
        ACCOUNT,
        "channel_create",
        &rx.url("/bad"),
        json!({"retries": 1}),
    )];
    let s = engine(
        hooks,
        json!({"attempt_failure_count": 100, "attempt_failure_expiry_ms": 2000}),
        EngineConfig::default(),
    )
    .await;
    // The reseller (root) sets 2; the account itself sets nothing: the ancestor's value applies.
    let cfg = webhooks_core::Doc::from_value(json!({"attempt_failure_count": 2})).unwrap();
    s.store
        .save_account_config(&AccountId::parse(ROOT).unwrap(), "webhooks", cfg)
        .await
        .unwrap();
    let e = &webhooks_modules::sample_events("channel_create").unwrap()[0];
    for _ in 0..2 {
        s.engine.publish(event(e)).await.unwrap();
    }
    assert!(wait_disabled(&s, "bad").await);
}

/// A receiver that never answers, one `retries: 1` hook pointing at it (plus `others`), and an
/// engine that gives each destination 4 requests in flight and a backlog of 20, counts a lane
/// stalled after `stall_after`, and times requests out after `timeout_ms`.
async fn with_a_hanging_destination(
    others: Vec<Value>,
    stall_after: Duration,
    timeout_ms: u64,
) -> (Receiver, Setup) {
    let hang = Receiver::start().await;
    hang.answer("/", Answer::Hang);
    let mut hooks = vec![hook(
        "hang",
        ACCOUNT,
        "channel_create",
        &hang.url("/hang"),
        json!({"retries": 1}),
    )];
    hooks.extend(others);
    let config = EngineConfig {
        per_destination_in_flight: 4,
        destination_backlog: 20,
        stall_after,
        ..EngineConfig::default()
    };
    let settings = json!({"request_timeout_ms": timeout_ms, "attempt_failure_count": 100000});
    (hang, engine(hooks, settings, config).await)
}

async fn publish_channel_creates(s: &Setup, n: usize) {
    let e = &webhooks_modules::sample_events("channel_create").unwrap()[0];
    for _ in 0..n {
        s.engine.publish(event(e)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_destination_does_not_delay_a_healthy_one() {
    let rx = Receiver::start().await;
    let healthy = hook(
        "healthy",
        ACCOUNT,
        "channel_create",
        &rx.url("/healthy"),
        json!({}),
    );
    // The hanging receiver would hold each request for the whole 60 s timeout. Its lane may
    // queue 20; past that, once it has stalled for 200 ms, its overflow fails at once.
    let (hang, s) =
        with_a_hanging_destination(vec![healthy], Duration::from_millis(200), 60_000).await;
    publish_channel_creates(&s, 300).await;
    // All 300 reach the healthy receiver while the hanging one still holds its 4 requests.
    let got = rx.wait_for("/healthy", 300).await;
    assert_eq!(got.len(), 300);
    assert_eq!(
        hang.received().len(),
        4,
        "the hanging destination gets its 4 slots and no more"
    );
    assert!(s.engine.load().in_flight >= 4);
    // Its backlog stays bounded: the overflow failed fast and was recorded.
    settle_queue(&s.engine, 20).await;
    assert!(
        s.engine.stats().tries_failed >= 270,
        "{:?}",
        s.engine.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_only_times_out_stays_stalled() {
    // Requests to it time out every 100 ms, but a timeout is not an answer: the lane counts as
    // stalled 300 ms after it opened and fails its overflow from then on. (Were each wave of
    // timeouts taken as progress, the lane would never stall, intake would wait on it, and
    // every one of the 100 deliveries would be sent to it, 4 per 100 ms.)
    let (hang, s) = with_a_hanging_destination(vec![], Duration::from_millis(300), 100).await;
    publish_channel_creates(&s, 100).await;
    settle(&s.engine).await;
    let st = s.engine.stats();
    assert_eq!(
        (st.tries_failed, st.deliveries_succeeded),
        (100, 0),
        "{st:?}"
    );
    let sent = hang.received().len();
    assert!(
        sent < 100,
        "the overflow of a stalled lane is failed, not sent: {sent} of 100 sent"
    );
}

/// Waits until at most `n` deliveries are queued (bounded).
async fn settle_queue(engine: &webhooks_engine::Engine, n: usize) {
    for _ in 0..400 {
        if engine.load().queued <= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("queue stayed above {n}: {:?}", engine.load());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_to_a_healthy_destination_is_absorbed_not_dropped() {
    let rx = Receiver::start().await;
    let hooks = vec![hook(
        "burst",
        ACCOUNT,
        "channel_create",
        &rx.url("/burst"),
        json!({}),
    )];
    // A tiny backlog and one request at a time: publishing 500 at once must slow the
    // publisher down, never fail a delivery.
    let config = EngineConfig {
        per_destination_in_flight: 1,
        destination_backlog: 5,
        ..EngineConfig::default()
    };
    let s = engine(hooks, json!({}), config).await;
    let e = &webhooks_modules::sample_events("channel_create").unwrap()[0];
    for _ in 0..500 {
        s.engine.publish(event(e)).await.unwrap();
    }
    rx.wait_for("/burst", 500).await;
    settle(&s.engine).await;
    let st = s.engine.stats();
    assert_eq!((st.deliveries_succeeded, st.tries_failed), (500, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_waits_when_the_engine_is_full() {
    let hang = Receiver::start().await;
    hang.answer("/", Answer::Hang);
    let hooks = vec![hook(
        "hang",
        ACCOUNT,
        "channel_create",
        &hang.url("/hang"),
        json!({}),
    )];
    let config = EngineConfig {
        intake_capacity: 2,
        max_queued: 4,
        per_destination_in_flight: 1,
        destination_backlog: 1000,
        ..EngineConfig::default()
    };
    let s = engine(hooks, json!({"request_timeout_ms": 60000}), config).await;
    let e = webhooks_modules::sample_events("channel_create").unwrap()[0].clone();
    // 1 in flight + 4 queued + 2 in the intake channel fit; the 8th publish must wait.
    for _ in 0..7 {
        tokio::time::timeout(Duration::from_secs(5), s.engine.publish(event(&e)))
            .await
            .expect("fits")
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let blocked =
        tokio::time::timeout(Duration::from_millis(500), s.engine.publish(event(&e))).await;
    assert!(
        blocked.is_err(),
        "publish waits instead of queueing without bound"
    );
    assert!(s.engine.load().queued <= 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_accountless_events() {
    let s = engine(vec![], json!({}), EngineConfig::default()).await;
    let err = s
        .engine
        .publish(event(&json!({"Event-Name": "CHANNEL_CREATE"})))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Event-Category"));
    let r = s
        .engine
        .publish(event(&json!({"Event-Category": "call_event", "Event-Name": "CHANNEL_CREATE", "Call-ID": "x"})))
        .await
        .unwrap();
    assert_eq!(r.dispatched, 0);
    assert_eq!(r.dropped, Some("event names no account"));
    let r = s
        .engine
        .publish(event(
            &json!({"Event-Category": "nope", "Event-Name": "nope"}),
        ))
        .await
        .unwrap();
    assert_eq!(r.dropped, Some("no module handles this event"));
    let st = s.engine.stats();
    assert_eq!(
        (
            st.events_received,
            st.events_rejected,
            st.events_without_account,
            st.events_unhandled
        ),
        (3, 1, 1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_of_a_disabled_hook_is_cancelled() {
    let rx = Receiver::start().await;
    rx.answer("/bad", Answer::Status(500));
    let hooks = vec![hook(
        "bad",
        ACCOUNT,
        "channel_create",
        &rx.url("/bad"),
        json!({"retries": 5}),
    )];
    let config = EngineConfig {
        retry_delay: Duration::from_millis(30),
        ..EngineConfig::default()
    };
    let mut s = engine(hooks, json!({"attempt_failure_count": 1000}), config).await;
    s.engine = s.engine.clone();
    let e = &webhooks_modules::sample_events("channel_create").unwrap()[0];
    s.engine.publish(event(e)).await.unwrap();
    rx.wait_for("/bad", 1).await;
    // The hook is disabled (as the API would) while its retry waits.
    let mut doc = s.store.hook("bad").await.unwrap().unwrap();
    doc.set("enabled", false);
    let saved = s.store.save_hook(doc).await.unwrap();
    s.engine.hooks().apply_doc(&saved);
    settle(&s.engine).await;
    assert!(rx.received_at("/bad").len() < 5);
    assert!(s.engine.stats().deliveries_cancelled >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_fax_hooks_are_migrated_and_fire_only_for_their_types() {
    let rx = Receiver::start().await;
    let hooks = vec![hook(
        "legacy",
        ACCOUNT,
        "inbound_fax",
        &rx.url("/fax"),
        json!({"format": "json"}),
    )];
    let s = engine(hooks, json!({}), EngineConfig::default()).await;
    let main = s.store.hook("legacy").await.unwrap().unwrap();
    assert_eq!(main.str("hook"), Some("notifications"));
    assert_eq!(
        main.get("custom_data"),
        Some(&json!({"type": "inbound_fax"}))
    );
    let twin = s
        .store
        .hook(main.str("other_id").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        twin.get("custom_data"),
        Some(&json!({"type": "inbound_fax_error"}))
    );

    let samples = webhooks_modules::sample_events("notifications").unwrap();
    let by_name = |n: &str| {
        let mut e = samples
            .iter()
            .find(|e| e["Event-Name"] == n)
            .unwrap()
            .clone();
        e["Account-ID"] = json!(ACCOUNT);
        e
    };
    for name in ["inbound_fax", "inbound_fax_error", "voicemail_new"] {
        s.engine.publish(event(&by_name(name))).await.unwrap();
    }
    let got = rx.wait_for("/fax", 2).await;
    settle(&s.engine).await;
    let mut names: Vec<String> = rx
        .received_at("/fax")
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).unwrap()["event_name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["inbound_fax", "inbound_fax_error"],
        "not voicemail_new (KAZOO's migrated hooks fire on every notification)"
    );
    assert_eq!(got.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reseller_hooks_get_descendants_events_and_siblings_do_not() {
    use webhooks_core::store::AccountStore;
    let rx = Receiver::start().await;
    // ROOT > ACCOUNT (the sample account) > GRANDCHILD; SIBLING under ROOT.
    const GRANDCHILD: &str = "0000000000000000000000000000000c";
    const SIBLING: &str = "0000000000000000000000000000000d";
    let hooks = vec![
        hook(
            "reseller",
            ROOT,
            "channel_create",
            &rx.url("/reseller"),
            json!({"include_subaccounts": true, "format": "json"}),
        ),
        hook(
            "no-subaccounts",
            ROOT,
            "channel_create",
            &rx.url("/plain"),
            json!({}),
        ),
        hook(
            "sibling",
            SIBLING,
            "channel_create",
            &rx.url("/sibling"),
            json!({"include_subaccounts": true}),
        ),
    ];
    let s = engine(hooks, json!({}), EngineConfig::default()).await;
    for (id, tree) in [
        (GRANDCHILD, json!([ROOT, ACCOUNT])),
        (SIBLING, json!([ROOT])),
    ] {
        let doc = json!({"_id": id, "pvt_type": "account", "name": id, "pvt_tree": tree});
        let saved = s
            .store
            .save_account(webhooks_core::Doc::from_value(doc).unwrap())
            .await
            .unwrap();
        s.engine
            .hooks()
            .set_account(&webhooks_core::Account::from_doc(&saved).unwrap());
    }
    let mut e = webhooks_modules::sample_events("channel_create")
        .unwrap()
        .remove(0);
    e["Custom-Channel-Vars"]["Account-ID"] = json!(GRANDCHILD);
    assert_eq!(s.engine.publish(event(&e)).await.unwrap().dispatched, 1);
    let got = rx.wait_for("/reseller", 1).await.remove(0);
    assert_eq!(
        got.headers["x-account-id"], ROOT,
        "X-Account-ID is the hook's owner"
    );
    let body: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(
        body["account_id"], GRANDCHILD,
        "the payload names the event's account"
    );
    settle(&s.engine).await;
    assert!(rx.received_at("/plain").is_empty() && rx.received_at("/sibling").is_empty());
}

/// `Engine::load` counts a destination that holds requests without answering as stalled
/// (`webhooks_destinations_stalled`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_stops_answering_is_counted_stalled() {
    let rx = Receiver::start().await;
    rx.answer("/hang", Answer::Hang);
    let hooks = vec![hook(
        "h",
        ACCOUNT,
        "channel_create",
        &rx.url("/hang"),
        json!({}),
    )];
    let config = EngineConfig {
        stall_after: Duration::from_millis(200),
        ..EngineConfig::default()
    };
    let s = engine(hooks, json!({"request_timeout_ms": 1500}), config).await;
    let e = &webhooks_modules::sample_events("channel_create").unwrap()[0];
    s.engine.publish(event(e)).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while s.engine.load().destinations_stalled == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "never counted stalled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.engine.shutdown(Duration::from_millis(100)).await;
}
