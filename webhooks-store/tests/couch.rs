//! What only the CouchDB store has: KAZOO's exact layout (read back over plain HTTP, and
//! written that way by "KAZOO" for the store to read), a change feed that survives a server
//! restart, quick failures when the server is gone, and kazoo_auth's signing keys.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use webhooks_core::store::{
    AccountStore, AttemptQuery, AttemptStore, AuthKeyStore, ConfigStore, FeedPosition, HookStore,
    StoreError,
};
use webhooks_core::time::unix_to_gregorian;
use webhooks_store::contract::fixtures::{account_id, attempt, doc, hook_doc, query, tombstone};
use webhooks_store::{CouchConfig, CouchStore};
use webhooks_testkit::couchdb::{shared_url, PouchServer};

/// A store with databases of its own on `url`, and the raw HTTP view of the same databases.
async fn store_on(url: &str) -> (CouchStore, Raw) {
    let prefix = format!("t{}_", webhooks_core::ids::random_hex(6));
    let config = CouchConfig {
        prefix: prefix.clone(),
        ..CouchConfig::new(url)
    };
    let raw = Raw {
        url: url.to_owned(),
        prefix,
        http: reqwest::Client::new(),
    };
    (CouchStore::connect(config).await.unwrap(), raw)
}

/// Plain HTTP to the server, as KAZOO (or an operator with curl) sees it.
struct Raw {
    url: String,
    prefix: String,
    http: reqwest::Client,
}

impl Raw {
    /// `db` as KAZOO names it (`account/xx/yy/rest`), `rest` a path inside it.
    fn at(&self, db: &str, rest: &str) -> String {
        format!(
            "{}/{}{}/{rest}",
            self.url,
            self.prefix,
            db.replace('/', "%2F")
        )
    }

    async fn get(&self, db: &str, rest: &str) -> (u16, Value) {
        let resp = self.http.get(self.at(db, rest)).send().await.unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    async fn put(&self, db: &str, rest: &str, body: Value) -> Value {
        let resp = self
            .http
            .put(self.at(db, rest))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "PUT {db}/{rest}: {}",
            resp.status()
        );
        resp.json().await.unwrap()
    }
}

// ---- layout ---------------------------------------------------------------------------------

#[tokio::test]
async fn documents_land_in_kazoos_databases() {
    let (store, raw) = store_on(&shared_url()).await;
    let a = account_id(7);
    let adb = a.db_name();
    assert_eq!(adb, format!("account/07/07/{}", "07".repeat(14)));

    let account = store
        .save_account(doc(
            json!({"_id": a.as_str(), "pvt_type": "account", "name": "acme"}),
        ))
        .await
        .unwrap();
    let (status, own) = raw.get(&adb, a.as_str()).await;
    assert_eq!(status, 200);
    assert_eq!(
        own["_rev"],
        account.rev().unwrap(),
        "callers see the account db's _rev"
    );
    let (status, copy) = raw.get("accounts", a.as_str()).await;
    assert_eq!((status, &copy["name"]), (200, &json!("acme")));

    store.save_hook(hook_doc("h1", &a)).await.unwrap();
    let (_, hook) = raw.get("webhooks", "h1").await;
    assert_eq!(hook["pvt_type"], "webhook");
    assert_eq!(hook["pvt_account_id"], a.as_str());
    let (_, design) = raw.get("webhooks", "_design/webhooks").await;
    let views = design["views"].as_object().unwrap();
    for view in [
        "accounts_listing",
        "crossbar_listing",
        "hook_listing",
        "webhooks_listing",
    ] {
        assert!(views.contains_key(view), "{view}");
    }

    store
        .save_account_config(&a, "webhooks", doc(json!({"attempt_failure_count": 3})))
        .await
        .unwrap();
    let (_, config) = raw.get(&adb, "configs_webhooks").await;
    assert_eq!(config["attempt_failure_count"], 3);
    store
        .save_system_config("webhooks", doc(json!({"log_successful_attempts": true})))
        .await
        .unwrap();
    // KAZOO keeps system settings under `default` (node sections beside it).
    let (_, system) = raw.get("system_config", "webhooks").await;
    assert_eq!(system["default"]["log_successful_attempts"], true);
    assert_eq!(system["pvt_type"], "config");
    assert!(system.get("log_successful_attempts").is_none());
}

#[tokio::test]
async fn attempts_go_to_the_monthly_database_of_their_creation() {
    let (store, raw) = store_on(&shared_url()).await;
    let a = account_id(7);
    // 2024-02-29T12:00:00Z and 2024-03-01T00:00:00Z: two months, two databases.
    let feb = unix_to_gregorian(1_709_208_000);
    let mar = unix_to_gregorian(1_709_251_200);
    store
        .save_attempts(vec![attempt(&a, "h1", feb, 0), attempt(&a, "h1", mar, 1)].into())
        .await
        .unwrap();
    for (month, n) in [("202402", 0), ("202403", 1)] {
        let modb = format!("{}-{month}", a.db_name());
        let (status, rows) = raw.get(&modb, "_all_docs?include_docs=true").await;
        assert_eq!(status, 200, "{modb}");
        let docs: Vec<&Value> = rows["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["doc"])
            .filter(|d| d["pvt_type"] == "webhook_attempt")
            .collect();
        assert_eq!(docs.len(), 1, "{modb}");
        assert_eq!(docs[0]["n"], n);
        assert_eq!(docs[0]["pvt_account_db"], modb.replace('/', "%2F"));
        assert!(webhooks_core::ids::is_hex32(
            docs[0]["_id"].as_str().unwrap()
        ));
        let (_, design) = raw.get(&modb, "_design/webhooks").await;
        assert!(design["views"]["attempts_by_time_listing"]["map"].is_string());
        assert!(design["views"]["attempts_by_hook_listing"]["map"].is_string());
    }
    let page = store.attempts(query(&a)).await.unwrap();
    assert_eq!(page.attempts.len(), 2);
    assert_eq!(
        page.attempts[0].i64("n"),
        Some(1),
        "newest first, across months"
    );
}

// ---- written by KAZOO -------------------------------------------------------------------------

#[tokio::test]
async fn a_hook_kazoo_wrote_is_read_listed_and_followed() {
    let (store, raw) = store_on(&shared_url()).await;
    let a = account_id(3);
    let kazoo_hook = json!({
        "_id": "0d9e1a6c2f3b4e5a8b7c6d5e4f3a2b1c",
        "name": "from kazoo", "uri": "http://example.com/x", "hook": "channel_create",
        "http_verb": "post", "retries": 2, "enabled": true, "custom_data": {"k": "v"},
        "pvt_type": "webhook", "pvt_account_id": a.as_str(), "pvt_account_db": "webhooks",
        "pvt_vsn": "1", "pvt_created": 63_871_286_400_i64, "pvt_modified": 63_871_286_400_i64,
    });
    let written = raw
        .put(
            "webhooks",
            "0d9e1a6c2f3b4e5a8b7c6d5e4f3a2b1c",
            kazoo_hook.clone(),
        )
        .await;
    let mut expected = doc(kazoo_hook);
    expected.set("_rev", written["rev"].clone());

    assert_eq!(
        store.hook(expected.id().unwrap()).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        store.hooks_of_account(&a).await.unwrap(),
        [expected.clone()]
    );
    let feed = store
        .hook_changes(&FeedPosition::beginning(), 10)
        .await
        .unwrap();
    assert_eq!(feed.docs, [expected.clone()]);

    // Deleted by someone who kept nothing in the tombstone: no account to name.
    let path = raw.at(
        "webhooks",
        &format!("{}?rev={}", expected.id().unwrap(), expected.rev().unwrap()),
    );
    assert!(raw
        .http
        .delete(path)
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let page = store.hook_changes(&feed.last, 10).await.unwrap();
    assert_eq!(
        page.docs,
        [webhooks_core::Doc::tombstone(expected.id().unwrap(), None)]
    );
}

#[tokio::test]
async fn attempts_in_a_modb_kazoo_made_are_found_by_a_bounded_range() {
    let (store, raw) = store_on(&shared_url()).await;
    let a = account_id(4);
    let created = unix_to_gregorian(1_717_243_200); // 2024-06-01T12:00:00Z
    let modb = format!("{}-202406", a.db_name());
    let url = raw.at(&modb, "");
    assert!(raw
        .http
        .put(url.trim_end_matches('/'))
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let design: Value =
        serde_json::from_str(include_str!("../src/couch/views/modb-webhooks.json")).unwrap();
    let mut design = design;
    for view in design["views"].as_object_mut().unwrap().values_mut() {
        let lines: Vec<String> = serde_json::from_value(view["map"].take()).unwrap();
        view["map"] = lines.join("\n").into();
    }
    raw.put(&modb, "_design/webhooks", design).await;
    let mut attempt = attempt(&a, "h1", created, 5).into_value();
    attempt["pvt_account_db"] = modb.replace('/', "%2F").into();
    raw.put(&modb, "a1", attempt).await;

    let page = store
        .attempts(AttemptQuery {
            created_from: created - 86_400,
            created_to: created + 86_400,
            ..query(&a)
        })
        .await
        .unwrap();
    assert_eq!(page.attempts.len(), 1);
    assert_eq!(page.attempts[0].i64("n"), Some(5));
}

#[tokio::test]
async fn kazoos_accounts_design_document_is_used_and_left_alone() {
    let url = shared_url();
    let prefix = format!("t{}_", webhooks_core::ids::random_hex(6));
    let raw = Raw {
        url: url.clone(),
        prefix: prefix.clone(),
        http: reqwest::Client::new(),
    };
    let db = raw.at("accounts", "");
    assert!(raw
        .http
        .put(db.trim_end_matches('/'))
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let map = "function(doc) { if (doc.pvt_type != 'account' || doc.pvt_deleted) return; emit(doc.pvt_api_key, {'account_id': doc.pvt_account_id}); }";
    let kazoo = json!({"language": "javascript", "kazoo": {"view_map": [{"database": "accounts"}]},
        "views": {"listing_by_api": {"map": map}}});
    let rev = raw.put("accounts", "_design/accounts", kazoo).await["rev"].clone();

    let store = CouchStore::connect(CouchConfig {
        prefix,
        ..CouchConfig::new(url)
    })
    .await
    .unwrap();
    let a = account_id(5);
    store
        .save_account(doc(
            json!({"_id": a.as_str(), "pvt_type": "account", "pvt_api_key": "key5"}),
        ))
        .await
        .unwrap();
    let found = store.account_by_api_key("key5").await.unwrap().unwrap();
    assert_eq!(found.id(), Some(a.as_str()));
    assert_eq!(raw.get("accounts", "_design/accounts").await.1["_rev"], rev);
    assert_eq!(raw.get("accounts", "_design/webhooks_store").await.0, 404);
}

// ---- the server going away --------------------------------------------------------------------

#[tokio::test]
async fn a_kept_position_resumes_the_feed_after_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = PouchServer::in_dir(dir.path()).await;
    let (store, _) = store_on(&server.url()).await;
    let a = account_id(1);
    store.save_hook(hook_doc("h1", &a)).await.unwrap();
    store.save_hook(hook_doc("gone", &a)).await.unwrap();
    let kept = store
        .hook_changes(&FeedPosition::beginning(), 10)
        .await
        .unwrap()
        .last;
    let kept = FeedPosition::new(kept.as_str().to_owned());

    server.stop().await;
    server.start_again().await;

    let h2 = store.save_hook(hook_doc("h2", &a)).await.unwrap();
    store.delete_hook("gone").await.unwrap();
    let page = store.hook_changes(&kept, 10).await.unwrap();
    assert_eq!(page.docs, [h2, tombstone("gone", &a)]);
}

#[tokio::test]
async fn a_server_that_is_down_is_a_backend_fault_at_once() {
    let mut server = PouchServer::in_memory().await;
    let (store, _) = store_on(&server.url()).await;
    server.stop().await;

    let started = Instant::now();
    let results = [
        store.hook("h1").await.map(drop),
        store
            .save_hook(hook_doc("h1", &account_id(1)))
            .await
            .map(drop),
        store
            .hook_changes(&FeedPosition::beginning(), 10)
            .await
            .map(drop),
        store.attempts(query(&account_id(1))).await.map(drop),
    ];
    for r in results {
        assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let refused = CouchStore::connect(CouchConfig::new(server.url())).await;
    assert!(
        matches!(refused, Err(StoreError::Backend(_))),
        "{refused:?}"
    );
}

/// A batch for a month this store has already prepared still reaches the server, so a server
/// that went away refuses it: the caller (the engine's attempt writer) keeps it for later.
/// Before, only a missing database was an error and the batch was dropped without a word.
#[tokio::test]
async fn an_attempt_batch_the_server_cannot_take_is_refused_not_dropped() {
    let mut server = PouchServer::in_memory().await;
    let (store, _) = store_on(&server.url()).await;
    let a = account_id(3);
    let now = unix_to_gregorian(1_709_208_000);
    store
        .save_attempts(vec![attempt(&a, "h1", now, 0)].into())
        .await
        .unwrap();
    server.stop().await;
    let refused = store
        .save_attempts(vec![attempt(&a, "h1", now, 1)].into())
        .await;
    assert!(
        matches!(refused, Err(StoreError::Backend(_))),
        "{refused:?}"
    );
}

// ---- signing keys -----------------------------------------------------------------------------

#[tokio::test]
async fn signing_keys_are_stored_as_kazoo_auth_stores_them() {
    let (store, raw) = store_on(&shared_url()).await;
    let kid = "4d8c0b1fe0a37a5f3b9b5c2f0e1d2c3b";
    assert_eq!(store.auth_key(kid).await.unwrap(), None);

    let pem = b"-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n";
    store.save_auth_key(kid, pem).await.unwrap();
    assert_eq!(
        store.auth_key(kid).await.unwrap().as_deref(),
        Some(&pem[..])
    );

    let (status, key_doc) = raw.get("system_auth", kid).await;
    assert_eq!(status, 200);
    assert_eq!(key_doc["pvt_type"], "system_key");
    let attachment = &key_doc["_attachments"]["private_key.pem"];
    assert_eq!(attachment["content_type"], "application/x-pem-file");

    let rotated = b"-----BEGIN RSA PRIVATE KEY-----\nMIIC\n-----END RSA PRIVATE KEY-----\n";
    store.save_auth_key(kid, rotated).await.unwrap();
    assert_eq!(
        store.auth_key(kid).await.unwrap().as_deref(),
        Some(&rotated[..])
    );
}
