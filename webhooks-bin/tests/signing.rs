//! Signing through the API: a hook made with `"secret": "generate"` shows only that it is
//! signed, its owner reads the secret, deliveries verify with a Standard Webhooks verifier
//! nobody here wrote (the `standardwebhooks` crate) before and during a rotation, and an
//! account outside the hook's tree cannot read or rotate it.

mod common;

use common::{channel_create, Daemon};
use serde_json::json;
use webhooks_testkit::Receiver;

fn verifies(secret: &str, got: &webhooks_testkit::Received) -> bool {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(got.body.as_bytes(), &got.headers)
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_secret_signs_rotates_and_stays_with_its_owner() {
    let rx = Receiver::start_on("127.0.0.2:0").await;
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let customer = master.create_account(&root, "customer").await;
    let sibling = master.create_account(&root, "sibling").await;

    let created = master
        .put(
            &format!("/v2/accounts/{customer}/webhooks"),
            json!({"name": "n", "uri": rx.url("/signed"), "hook": "channel_create",
                   "secret": "generate"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.data()["signed"], true);
    let hook = created.data()["id"].as_str().unwrap().to_owned();
    let secret_path = format!("/v2/accounts/{customer}/webhooks/{hook}/secret");
    let first = master.get(&secret_path).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let first = first.data()["secret"].as_str().unwrap().to_owned();
    assert!(first.starts_with("whsec_"));
    for path in [
        format!("/v2/accounts/{customer}/webhooks"),
        format!("/v2/accounts/{customer}/webhooks/{hook}"),
    ] {
        let r = master.get(&path).await;
        assert!(
            !r.body.to_string().contains(&first),
            "{path} shows the secret"
        );
    }

    let r = master
        .send("POST", "/v2/events", Some(channel_create(&customer)))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let got = rx.wait_for("/signed", 1).await.remove(0);
    assert!(verifies(&first, &got), "{:?}", got.headers);

    let rotated = master
        .post(&secret_path, json!({"grace_period_s": 600}))
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let second = rotated.data()["secret"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    master
        .send("POST", "/v2/events", Some(channel_create(&customer)))
        .await;
    let got = rx.wait_for("/signed", 2).await.remove(1);
    assert!(verifies(&second, &got), "the new secret verifies");
    assert!(
        verifies(&first, &got),
        "the old one, within its grace period"
    );

    // A rotation takes "generate" or a whsec_ secret; `null` would be no rotation at all.
    for bad in [json!({"secret": null}), json!({"secret": "whsec_short"})] {
        let r = master.post(&secret_path, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {:?}", r.body);
        assert!(r.data()["secret"]["invalid"].is_object(), "{:?}", r.body);
    }

    // Another tree's account may neither read nor rotate it.
    let key = master.get(&format!("/v2/accounts/{sibling}/api_key")).await;
    let mut other = d.client();
    other.login(key.data()["api_key"].as_str().unwrap()).await;
    assert_eq!(other.get(&secret_path).await.status, 403);
    assert_eq!(other.post(&secret_path, json!({})).await.status, 403);

    // `null` stops signing; a malformed secret is a validation error.
    let hook_path = format!("/v2/accounts/{customer}/webhooks/{hook}");
    let r = master
        .patch(&hook_path, json!({"secret": "whsec_short"}))
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.data()["secret"]["invalid"].is_object(), "{:?}", r.body);
    let r = master.patch(&hook_path, json!({"secret": null})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.data().get("signed").is_none());
    master
        .send("POST", "/v2/events", Some(channel_create(&customer)))
        .await;
    let got = rx.wait_for("/signed", 3).await.remove(2);
    assert!(got.headers.get("webhook-signature").is_none());
}
