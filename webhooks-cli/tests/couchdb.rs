//! `webhooks --couchdb-url`: the maintenance commands on KAZOO's CouchDB (a real PouchDB
//! Server), and `register-views`, which only CouchDB needs.

use std::process::{Command, Output};

use serde_json::{json, Value};
use webhooks_core::store::{AccountStore, HookStore};
use webhooks_core::Doc;
use webhooks_store::{CouchConfig, CouchStore};
use webhooks_testkit::couchdb::PouchServer;

const ACCOUNT: &str = "4d5e6f708192a3b4c5d6e7f801920314";

fn webhooks(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_webhooks"))
        .args(args)
        .env_remove("WEBHOOKS_COUCHDB_URL")
        .output()
        .expect("run webhooks")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

fn doc(v: Value) -> Doc {
    Doc::from_value(v).unwrap()
}

#[tokio::test]
async fn register_views_puts_kazoos_design_document_back_and_commands_read_couchdb() {
    let server = PouchServer::in_memory().await;
    let store = CouchStore::connect(CouchConfig::new(server.url()))
        .await
        .unwrap();
    let account = json!({"_id": ACCOUNT, "pvt_type": "account", "name": "a", "pvt_tree": []});
    store.save_account(doc(account)).await.unwrap();
    let hook = json!({"_id": "h1", "pvt_type": "webhook", "pvt_account_id": ACCOUNT,
        "name": "h1", "uri": "http://hooks.example.com/h1", "hook": "channel_create",
        "http_verb": "post", "retries": 3, "enabled": true});
    store.save_hook(doc(hook)).await.unwrap();

    // Someone removed KAZOO's design document: register-views puts it back.
    let http = reqwest::Client::new();
    let design = format!("{}/webhooks/_design/webhooks", server.url());
    let current: Value = http
        .get(&design)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rev = current["_rev"].as_str().unwrap();
    let gone = http
        .delete(format!("{design}?rev={rev}"))
        .send()
        .await
        .unwrap();
    assert!(gone.status().is_success());

    let o = webhooks(&["--couchdb-url", &server.url(), "register-views"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "registered the webhooks views\n");
    let back = http.get(&design).send().await.unwrap();
    assert_eq!(back.status(), 200);
    let back: Value = back.json().await.unwrap();
    assert!(
        back["views"]["crossbar_listing"]["map"].is_string(),
        "{back}"
    );

    let o = webhooks(&["--couchdb-url", &server.url(), "hooks-configured"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).ends_with("found 1 webhooks\n"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn register_views_on_the_embedded_store_says_there_are_none() {
    let dir = tempfile::tempdir().unwrap();
    drop(webhooks_store::EmbeddedStore::open(dir.path()).unwrap());
    let o = webhooks(&["--data-dir", dir.path().to_str().unwrap(), "register-views"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("the embedded store has no views"),
        "{}",
        text(&o.stderr)
    );
}
