//! The accounts API: enough of crossbar's to run standalone.

mod common;

use common::{hook, Daemon};
use serde_json::json;
use webhooks_core::store::HookStore;

#[tokio::test]
async fn create_read_replace_patch_an_account() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let r = master
        .put(
            &format!("/v2/accounts/{root}"),
            json!({"name": "Acme", "ui_metadata": {"x": 1}}),
        )
        .await;
    assert_eq!(r.status, 201);
    let id = r.data()["id"].as_str().unwrap().to_owned();
    assert_eq!(r.headers["location"], id.as_str());
    assert_eq!(r.data()["name"], "Acme");
    assert!(r.data()["realm"]
        .as_str()
        .unwrap()
        .ends_with(".sip.webhooks.local"));
    assert!(
        r.data().get("pvt_api_key").is_none(),
        "private fields never leak"
    );

    let r = master.get(&format!("/v2/accounts/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["ui_metadata"]["x"], 1);
    assert_eq!(
        r.body["revision"],
        r.headers["etag"].to_str().unwrap().trim_matches('"')
    );

    let r = master
        .post(&format!("/v2/accounts/{id}"), json!({"name": "Acme 2"}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["name"], "Acme 2");
    assert!(
        r.data().get("ui_metadata").is_none(),
        "POST replaces public fields"
    );

    let r = master
        .patch(&format!("/v2/accounts/{id}"), json!({"timezone": "UTC"}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["name"], "Acme 2");
    assert_eq!(r.data()["timezone"], "UTC");

    let r = master.put(&format!("/v2/accounts/{root}"), json!({})).await;
    assert_eq!(r.status, 400);
    assert!(r.data()["name"]["required"].is_object());
}

#[tokio::test]
async fn children_and_descendants_follow_the_tree() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let a = master.create_account(&root, "a").await;
    let b = master.create_account(&a, "b").await;
    let c = master.create_account(&b, "c").await;

    let r = master.get(&format!("/v2/accounts/{root}/children")).await;
    let ids: Vec<&str> = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.as_str()]);
    assert_eq!(r.data()[0]["descendants_count"], 2);

    let r = master.get(&format!("/v2/accounts/{a}/descendants")).await;
    let mut ids: Vec<&str> = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![b.as_str(), c.as_str()];
    want.sort();
    assert_eq!(ids, want);
    let c_item = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == c.as_str())
        .unwrap();
    assert_eq!(c_item["tree"], json!([root, a, b]));
}

#[tokio::test]
async fn an_account_with_descendants_is_not_deleted() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let a = master.create_account(&root, "a").await;
    master.create_account(&a, "b").await;
    let r = master.delete(&format!("/v2/accounts/{a}")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["message"], "account_has_descendants");
    assert_eq!(master.get(&format!("/v2/accounts/{a}")).await.status, 200);
    // Nobody deletes the account of their own token (the master included).
    assert_eq!(
        master.delete(&format!("/v2/accounts/{root}")).await.status,
        403
    );
}

#[tokio::test]
async fn deleting_an_account_deletes_its_hooks() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let a = master.create_account(&root, "doomed").await;
    let keep = master.create_hook(&root, hook("stays")).await;
    let gone = master.create_hook(&a, hook("goes")).await;
    let r = master.delete(&format!("/v2/accounts/{a}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["_read_only"]["deleted"], true);
    assert_eq!(master.get(&format!("/v2/accounts/{a}")).await.status, 404);
    let dir = d.data_dir.clone();
    let _tmp = d.stop();
    let store = webhooks_store::EmbeddedStore::open(&dir).unwrap();
    assert!(
        store.hook(&gone).await.unwrap().is_none(),
        "the deleted account's hook is gone"
    );
    assert!(store.hook(&keep).await.unwrap().is_some());
}

#[tokio::test]
async fn a_client_may_choose_the_account_id() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let id = "91eb05e5c68d7ca05e7618b6821d2d16";
    let r = master
        .put(
            &format!("/v2/accounts/{root}"),
            json!({"id": id, "name": "chosen"}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.data()["id"], id);
    let r = master
        .put(
            &format!("/v2/accounts/{root}"),
            json!({"id": id, "name": "again"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.data()["id"]["unique"].is_object());
    let r = master
        .put(
            &format!("/v2/accounts/{root}"),
            json!({"id": "NOT-HEX", "name": "bad"}),
        )
        .await;
    assert_eq!(r.status, 400);
}
