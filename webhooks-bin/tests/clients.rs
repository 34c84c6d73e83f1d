//! Rules real KAZOO clients (Monster UI, the PHP SDK) rely on, each pinned by a test.

mod common;

use common::{hook, Daemon};
use serde_json::json;

fn assert_cors(headers: &reqwest::header::HeaderMap) {
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("PATCH"));
    assert!(headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("x-auth-token"));
    assert!(headers["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("x-request-id"));
}

#[tokio::test]
async fn cors_on_every_response_and_preflight_answered() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let ok = master.get(&format!("/v2/accounts/{root}/webhooks")).await;
    assert_cors(&ok.headers);
    let err = d
        .client()
        .get(&format!("/v2/accounts/{root}/webhooks"))
        .await;
    assert_eq!(err.status, 401);
    assert_cors(&err.headers);
    assert_eq!(err.headers["content-type"], "application/json");
    let nf = master.get("/v2/nope").await;
    assert_cors(&nf.headers);

    let pre = master
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v2/accounts/{root}/webhooks", d.base),
        )
        .header("Origin", "http://monster.example")
        .header("Access-Control-Request-Method", "PUT")
        .header(
            "Access-Control-Request-Headers",
            "content-type, x-auth-token",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 200);
    assert_cors(pre.headers());
    assert!(pre.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn trailing_slashes_and_unknown_query_parameters() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let r = master
        .put(&format!("/v2/accounts/{root}/webhooks/"), hook("slash"))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.data()["id"].as_str().unwrap().to_owned();
    let r = master
        .get(&format!(
            "/v2/accounts/{root}/webhooks/{id}/?_=1700000000000"
        ))
        .await;
    assert_eq!(r.status, 200);
    let r = master
        .get(&format!(
            "/v2/accounts/{root}/webhooks/?filter_name=slash&_=1"
        ))
        .await;
    assert_eq!(r.data().as_array().unwrap().len(), 1);
    let r = master
        .get(&format!("/v2/accounts/{root}/webhooks?filter_name=other"))
        .await;
    assert_eq!(r.data(), &json!([]));
}

#[tokio::test]
async fn bodies_as_monster_ui_and_the_sdk_send_them() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let base = format!("/v2/accounts/{root}/webhooks");
    let r = master
        .put(
            &base,
            json!({"name": "m", "uri": "http://my.server.com/x", "hook": "channel_create",
            "retries": "3", "http_verb": "post", "ui_metadata": {"version": "4.3"}, "group": "g",
            "custom_request_headers": {"X-Foo": "bar"}, "disable_reason": "ignored"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let id = r.data()["id"].as_str().unwrap().to_owned();
    assert_eq!(r.data()["retries"], 3);
    assert_eq!(r.data()["custom_request_headers"]["X-Foo"], "bar");
    assert!(r.data().get("disable_reason").is_none());

    let r = master
        .post(
            &format!("{base}/{id}"),
            json!({"name": "m2", "uri": "http://my.server.com/x",
        "hook": "channel_create", "ui_metadata": {"version": "4.3"}}),
        )
        .await;
    assert_eq!(r.data()["id"], id.as_str());
    let r = master
        .patch(&format!("{base}/{id}"), json!({"enabled": false}))
        .await;
    assert_eq!(r.data()["id"], id.as_str());
    assert_eq!(r.data()["ui_metadata"]["version"], "4.3");

    // DELETE with a JSON body, as the PHP SDK sends it.
    let r = master
        .send("DELETE", &format!("{base}/{id}"), Some(json!({"data": {}})))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["name"], "m2");
    assert_eq!(r.data()["id"], id.as_str());
    // And without one.
    let id2 = master.create_hook(&root, hook("x")).await;
    assert_eq!(master.delete(&format!("{base}/{id2}")).await.status, 200);
}
