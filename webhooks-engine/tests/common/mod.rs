//! A real local HTTP receiver and an engine over an in-memory store, for delivery tests.

// Each test file uses a part of these helpers.
#![allow(dead_code, unused_imports)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use webhooks_core::store::{AccountStore, ConfigStore, HookStore};
use webhooks_core::Doc;
use webhooks_engine::{Engine, EngineConfig};
use webhooks_store::EmbeddedStore;
pub use webhooks_testkit::{Answer, Receiver};

/// The sample events' account and its reseller (the root of its tree).
pub const ACCOUNT: &str = "91eb05e5c68d7ca05e7618b6821d2d16";
pub const ROOT: &str = "026f4f0a6d99f9a19b6aa4aa75501d7d";

/// A hook document owned by `owner`.
pub fn hook(id: &str, owner: &str, event: &str, uri: &str, extra: Value) -> Value {
    let mut h = json!({"_id": id, "pvt_type": "webhook", "pvt_account_id": owner, "name": id,
                       "uri": uri, "hook": event, "enabled": true});
    for (k, v) in extra.as_object().unwrap() {
        h[k] = v.clone();
    }
    h
}

pub struct Setup {
    pub engine: Engine,
    pub store: Arc<EmbeddedStore>,
}

/// An engine over a fresh in-memory store holding the sample accounts, `settings` as the
/// `webhooks` system config, and `hooks`. Loopback, where the tests' receivers listen, is
/// allowed past the SSRF guard (`tests/guard.rs` tests the guard itself).
pub async fn engine(hooks: Vec<Value>, settings: Value, config: EngineConfig) -> Setup {
    let store = store_with(hooks, settings).await;
    let registry = webhooks_modules::kazoo_registry(&[]);
    let engine = Engine::start(
        store.clone(),
        registry,
        EngineConfig {
            retry_delay: Duration::from_millis(30),
            cluster_id: Some("cluster-1".into()),
            destinations: webhooks_core::destination::DestinationPolicy::loopback_allowed(),
            ..config
        },
    )
    .await
    .unwrap();
    Setup { engine, store }
}

/// A fresh in-memory store holding the sample accounts, `settings` as the `webhooks` system
/// config, and `hooks`.
pub async fn store_with(hooks: Vec<Value>, settings: Value) -> Arc<EmbeddedStore> {
    let store = Arc::new(EmbeddedStore::open_in_memory().unwrap());
    for (id, tree) in [(ROOT, json!([])), (ACCOUNT, json!([ROOT]))] {
        let doc = json!({"_id": id, "pvt_type": "account", "name": id, "pvt_tree": tree});
        store
            .save_account(Doc::from_value(doc).unwrap())
            .await
            .unwrap();
    }
    store
        .save_system_config("webhooks", Doc::from_value(settings).unwrap())
        .await
        .unwrap();
    for h in hooks {
        store.save_hook(Doc::from_value(h).unwrap()).await.unwrap();
    }
    store
}

/// The sample account's attempts of `hook` in the last and next hour, oldest first.
pub async fn attempts(store: &EmbeddedStore, hook: &str) -> Vec<Doc> {
    use webhooks_core::store::{AttemptQuery, AttemptStore};
    let now = webhooks_core::time::now_gregorian();
    store
        .attempts(AttemptQuery {
            account: webhooks_core::AccountId::parse(ACCOUNT).unwrap(),
            hook: Some(hook.into()),
            created_from: now - 3600,
            created_to: now + 3600,
            ascending: true,
            limit: 1000,
            start: None,
        })
        .await
        .unwrap()
        .attempts
}

pub fn event(v: &Value) -> webhooks_core::Event {
    webhooks_core::Event::from_value(v.clone()).unwrap()
}

/// Waits until the engine has nothing queued or in flight (bounded: panics after 20 s).
pub async fn settle(engine: &Engine) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let l = engine.load();
        if l.queued == 0 && l.in_flight == 0 && l.waiting_retries == 0 && l.attempts_pending == 0 {
            tokio::time::sleep(Duration::from_millis(30)).await;
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "engine did not settle: {l:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
