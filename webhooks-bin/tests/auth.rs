//! Authentication and the account-tree rule, against a running daemon.

mod common;

use base64::Engine;
use common::{hook, Daemon, MASTER_KEY};
use serde_json::{json, Value};

#[tokio::test]
async fn api_auth_issues_a_kazoo_style_jwt() {
    let d = Daemon::start();
    let c = d.client();
    let r = c.put("/v2/api_auth", json!({"api_key": MASTER_KEY})).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["status"], "success");
    let token = r.body["auth_token"].as_str().unwrap();
    let account = r.data()["account_id"].as_str().unwrap();
    assert_eq!(account.len(), 32);
    assert_eq!(r.data()["is_master_account"], true);
    // Monster UI decodes the middle part of the token at login.
    let middle = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(middle)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["account_id"], account);
    assert_eq!(claims["method"], "cb_api_auth");
}

#[tokio::test]
async fn wrong_or_missing_api_key_is_refused() {
    let d = Daemon::start();
    let c = d.client();
    let r = c.put("/v2/api_auth", json!({"api_key": "nope"})).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "401");
    assert_eq!(r.body["message"], "invalid_credentials");
    let r = c.put("/v2/api_auth", json!({})).await;
    assert_eq!(r.status, 400);
    assert!(r.data()["api_key"]["required"].is_object());
}

#[tokio::test]
async fn calls_without_a_valid_token_get_401() {
    let d = Daemon::start();
    let (master, account) = d.master().await;
    let path = format!("/v2/accounts/{account}/webhooks");
    let mut anon = d.client();
    let r = anon.get(&path).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["status"], "error");
    anon.token = Some("not.a.token".into());
    assert_eq!(anon.get(&path).await.status, 401);
    // A token signed with another key is as bad as garbage.
    let forged = master.token.clone().unwrap();
    let (head, _) = forged.rsplit_once('.').unwrap();
    anon.token = Some(format!("{head}.AAAA"));
    assert_eq!(anon.get(&path).await.status, 401);
    assert_eq!(master.get(&path).await.status, 200);
}

#[tokio::test]
async fn public_routes_need_no_token_and_ignore_an_empty_one() {
    let d = Daemon::start();
    let c = d.client();
    assert_eq!(c.get("/v2/webhooks").await.status, 200);
    assert_eq!(c.get("/v2/webhooks/samples").await.status, 200);
    let r = c
        .http
        .get(format!("{}/v2/webhooks", d.base))
        .header("X-Auth-Token", "")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_token_acts_on_its_account_and_descendants_only() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let reseller = master.create_account(&root, "reseller").await;
    let customer = master.create_account(&reseller, "customer").await;
    let sibling = master.create_account(&root, "sibling").await;

    let key = master
        .get(&format!("/v2/accounts/{reseller}/api_key"))
        .await;
    let key = key.data()["api_key"].as_str().unwrap().to_owned();
    let mut rc = d.client();
    assert_eq!(rc.login(&key).await, reseller);

    // Own account and descendants: allowed.
    assert_eq!(
        rc.get(&format!("/v2/accounts/{reseller}/webhooks"))
            .await
            .status,
        200
    );
    let id = rc.create_hook(&customer, hook("child hook")).await;
    assert_eq!(
        rc.get(&format!("/v2/accounts/{customer}/webhooks/{id}"))
            .await
            .status,
        200
    );
    // Parent, sibling, and an id that does not exist: forbidden.
    for other in [&root, &sibling] {
        let r = rc.get(&format!("/v2/accounts/{other}/webhooks")).await;
        assert_eq!(r.status, 403, "{other}");
        assert_eq!(r.body["message"], "forbidden");
    }
    let r = rc
        .get("/v2/accounts/ffffffffffffffffffffffffffffffff/webhooks")
        .await;
    assert_eq!(r.status, 403);
    // The master sees that the id does not exist.
    let r = master
        .get("/v2/accounts/ffffffffffffffffffffffffffffffff/webhooks")
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn deleting_an_account_revokes_its_tokens() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let child = master.create_account(&root, "short lived").await;
    let key = master.get(&format!("/v2/accounts/{child}/api_key")).await;
    let mut cc = d.client();
    cc.login(key.data()["api_key"].as_str().unwrap()).await;
    assert_eq!(cc.get(&format!("/v2/accounts/{child}")).await.status, 200);
    assert_eq!(
        master.delete(&format!("/v2/accounts/{child}")).await.status,
        200
    );
    assert_eq!(cc.get(&format!("/v2/accounts/{child}")).await.status, 401);
}
