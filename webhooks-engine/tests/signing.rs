//! Signed deliveries checked by a Standard Webhooks verifier nobody here wrote (the
//! `standardwebhooks` crate), at a real receiver: before, during and after a rotation. A hook
//! without a secret is sent unsigned, as KAZOO sends it.

mod common;

use common::*;
use serde_json::{json, Value};
use webhooks_core::signature::SigningSecret;
use webhooks_engine::EngineConfig;

fn signed_hook(id: &str, uri: &str, secrets: Value) -> Value {
    hook(id, ACCOUNT, "channel_create", uri, secrets)
}

fn verifies(secret: &SigningSecret, got: &webhooks_testkit::Received) -> bool {
    standardwebhooks::Webhook::new(&secret.to_text())
        .unwrap()
        .verify(got.body.as_bytes(), &got.headers)
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_verify_before_during_and_after_a_rotation() {
    let rx = Receiver::start().await;
    let (old, new) = (SigningSecret::generate(), SigningSecret::generate());
    let now = webhooks_core::time::now_unix();
    let hooks = vec![
        signed_hook(
            "before",
            &rx.url("/before"),
            json!({"pvt_signing_secret": old.to_text()}),
        ),
        signed_hook(
            "during",
            &rx.url("/during"),
            json!({"pvt_signing_secret": new.to_text(),
                   "pvt_signing_secret_previous": old.to_text(),
                   "pvt_signing_secret_previous_until": now + 3600}),
        ),
        signed_hook(
            "after",
            &rx.url("/after"),
            json!({"pvt_signing_secret": new.to_text(),
                   "pvt_signing_secret_previous": old.to_text(),
                   "pvt_signing_secret_previous_until": now - 1}),
        ),
        signed_hook("unsigned", &rx.url("/unsigned"), json!({})),
    ];
    let settings = json!({"_id": "webhooks", "log_successful_attempts": true});
    let s = engine(hooks, settings, EngineConfig::default()).await;
    let e = &webhooks_modules::sample_events("channel_create").unwrap()[0];
    s.engine.publish(event(e)).await.unwrap();

    let before = rx.wait_for("/before", 1).await.remove(0);
    assert!(verifies(&old, &before));
    assert!(!verifies(&new, &before));

    let during = rx.wait_for("/during", 1).await.remove(0);
    assert_eq!(
        during.headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    assert!(verifies(&old, &during), "the old secret still verifies");
    assert!(verifies(&new, &during), "the new secret verifies");

    let after = rx.wait_for("/after", 1).await.remove(0);
    assert!(verifies(&new, &after));
    assert!(!verifies(&old, &after), "the grace period is over");

    let unsigned = rx.wait_for("/unsigned", 1).await.remove(0);
    assert!(unsigned.headers.get("webhook-signature").is_none());
    assert!(unsigned.headers.get("webhook-timestamp").is_none());

    // The secret is in no attempt document (every try is logged once successes are).
    settle(&s.engine).await;
    for hook in ["before", "during", "after"] {
        let docs = attempts(&s.store, hook).await;
        assert_eq!(docs.len(), 1, "{hook}");
        for doc in docs {
            let text = serde_json::to_string(&doc).unwrap();
            assert!(!text.contains(&new.to_text()) && !text.contains(&old.to_text()));
        }
    }
}
