//! The webhooks API (spec §3): catalogue, samples, CRUD, listing, bulk re-enable.

mod common;

use common::{hook, Daemon};
use serde_json::{json, Value};
use webhooks_core::store::HookStore;

#[tokio::test]
async fn catalogue_lists_kazoo_modules_sorted_by_name_descending() {
    let d = Daemon::start();
    let anon = d.client();
    let r = anon.get("/v2/webhooks").await;
    assert_eq!(r.status, 200);
    let ids: Vec<&str> = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            "sms",
            "object",
            "notifications",
            "mms",
            "channel_destroy",
            "channel_create",
            "channel_bridge",
            "channel_answer",
            "parking"
        ]
    );
    assert_eq!(r.body["page_size"], 9);
    let r = anon.get("/v2/webhooks?ascending=true").await;
    assert_eq!(r.data()[0]["id"], "parking");

    let types = |r: &common::Resp| -> Value {
        let n = r
            .data()
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == "notifications")
            .unwrap()
            .clone();
        n["modifiers"]["type"]["items"].clone()
    };
    let anon_types = types(&anon.get("/v2/webhooks").await);
    assert!(anon_types.get("voicemail_new").is_some());
    assert!(
        anon_types.get("system_alert").is_none(),
        "hidden from non-admins"
    );
    let (master, _) = d.master().await;
    let admin_types = types(&master.get("/v2/webhooks").await);
    assert!(admin_types.get("system_alert").is_some());
    assert!(admin_types.get("webhook_disabled").is_some());
}

#[tokio::test]
async fn samples_are_listed_filtered_and_unknown_ids_are_404() {
    let d = Daemon::start();
    let c = d.client();
    let r = c.get("/v2/webhooks/samples").await;
    assert_eq!(r.status, 200);
    let ids = r.data().as_array().unwrap();
    for id in [
        "webhooks_channel_create",
        "webhooks_notifications",
        "webhooks_object",
        "webhooks_parking",
    ] {
        assert!(ids.contains(&json!(id)), "{id} in {ids:?}");
    }
    let r = c
        .get("/v2/webhooks/samples/webhooks_notifications?filter_event_name=missed_call")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["page_size"], 1);
    assert_eq!(r.data()[0]["event_name"], "missed_call");
    let r = c.get("/v2/webhooks/samples/webhooks_channel_create").await;
    assert_eq!(r.data()[0]["hook_event"], "channel_create");
    let r = c.get("/v2/webhooks/samples/webhooks_nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.data(), &json!(["webhooks_nope"]));
    // The account-scoped variant needs a token.
    let (master, root) = d.master().await;
    assert_eq!(
        c.get(&format!("/v2/accounts/{root}/webhooks/samples"))
            .await
            .status,
        401
    );
    let r = master
        .get(&format!(
            "/v2/accounts/{root}/webhooks/samples/webhooks_object"
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["page_size"], 3);
}

#[tokio::test]
async fn create_applies_defaults_and_keeps_unknown_fields() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let r = master
        .put(
            &format!("/v2/accounts/{root}/webhooks"),
            json!({
            "name": "New Calls", "uri": "http://my.server/calls/new.php", "hook": "channel_create",
            "retries": 3, "ui_metadata": {"origin": "callflows"}, "group": "ops"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let id = r.data()["id"].as_str().unwrap();
    assert_eq!(r.headers["location"], id);
    let data = r.data();
    assert_eq!(data["http_verb"], "post");
    assert_eq!(data["format"], "form-data");
    assert_eq!(data["enabled"], true);
    assert_eq!(data["include_internal_legs"], true);
    assert_eq!(data["retries"], 3);
    assert_eq!(data["ui_metadata"]["origin"], "callflows");
    assert!(data
        .as_object()
        .unwrap()
        .keys()
        .all(|k| !k.starts_with("pvt_") && !k.starts_with('_')));

    let r = master
        .get(&format!("/v2/accounts/{root}/webhooks/{id}"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["name"], "New Calls");
    assert!(r.body["revision"].as_str().unwrap().starts_with("1-"));

    // A client may choose the id, as crossbar lets it.
    let r = master
        .put(
            &format!("/v2/accounts/{root}/webhooks"),
            json!({"id": "my-hook", "name": "n",
             "uri": "http://a.b/", "hook": "all"}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.data()["id"], "my-hook");
}

#[tokio::test]
async fn summary_lists_newest_id_first_with_pagination_and_filters() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let mut ids = Vec::new();
    for (i, id) in ["h1", "h2", "h3", "h4", "h5"].iter().enumerate() {
        let mut h = hook(&format!("hook {i}"));
        h["id"] = json!(id);
        if i == 2 {
            h["group"] = json!("billing");
        }
        ids.push(master.create_hook(&root, h).await);
    }
    let base = format!("/v2/accounts/{root}/webhooks");
    let r = master.get(&format!("{base}?page_size=2")).await;
    assert_eq!(r.status, 200);
    let page: Vec<&str> = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(page, vec!["h5", "h4"]);
    assert_eq!(r.body["page_size"], 2);
    let next = r.body["next_start_key"].as_str().unwrap().to_owned();
    let mut seen: Vec<String> = page.iter().map(|s| s.to_string()).collect();
    let mut key = Some(next);
    while let Some(k) = key {
        let r = master
            .get(&format!("{base}?page_size=2&start_key={k}"))
            .await;
        seen.extend(
            r.data()
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["id"].as_str().unwrap().to_owned()),
        );
        key = r.body["next_start_key"].as_str().map(str::to_owned);
    }
    assert_eq!(
        seen,
        vec!["h5", "h4", "h3", "h2", "h1"],
        "every hook exactly once"
    );

    let item = &master
        .get(&base)
        .await
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == "h3")
        .unwrap()
        .clone();
    assert_eq!(
        item,
        &json!({"hook": "channel_create", "name": "hook 2", "uri": "http://my.server.com/calls",
                             "id": "h3", "enabled": true, "group": "billing"})
    );

    let r = master
        .get(&format!("{base}?filter_group=billing&_=1700000000000"))
        .await;
    assert_eq!(r.data().as_array().unwrap().len(), 1);
    let r = master.get(&format!("{base}?paginate=false")).await;
    assert_eq!(r.data().as_array().unwrap().len(), 5);
    assert!(r.body.get("next_start_key").is_none());
}

#[tokio::test]
async fn replace_patch_and_delete() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let id = master
        .create_hook(
            &root,
            json!({"name": "n", "uri": "http://a.b/", "hook": "channel_create",
        "custom_data": {"k": "v"}}),
        )
        .await;
    let path = format!("/v2/accounts/{root}/webhooks/{id}");

    let r = master.patch(&path, json!({"enabled": false})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["enabled"], false);
    assert_eq!(
        r.data()["custom_data"]["k"],
        "v",
        "PATCH keeps other fields"
    );

    let r = master
        .post(
            &path,
            json!({"name": "replaced", "uri": "http://c.d/", "hook": "channel_answer"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["name"], "replaced");
    assert_eq!(
        r.data()["enabled"],
        true,
        "POST without enabled:false enables"
    );
    assert!(
        r.data().get("custom_data").is_none(),
        "POST replaces public fields"
    );

    let r = master.delete(&path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["name"], "replaced");
    assert_eq!(r.data()["_read_only"]["deleted"], true);
    let r = master.get(&path).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["message"], "bad identifier");
    assert_eq!(master.delete(&path).await.status, 404);
    let list = master.get(&format!("/v2/accounts/{root}/webhooks")).await;
    assert_eq!(list.data(), &json!([]));
}

#[tokio::test]
async fn another_accounts_hook_is_a_404() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let a = master.create_account(&root, "a").await;
    let b = master.create_account(&root, "b").await;
    let id = master.create_hook(&b, hook("b's")).await;
    for method in ["GET", "POST", "PATCH", "DELETE"] {
        let body = (method != "GET" && method != "DELETE").then(|| json!({"data": hook("x")}));
        let r = master
            .send(method, &format!("/v2/accounts/{a}/webhooks/{id}"), body)
            .await;
        assert_eq!(r.status, 404, "{method}");
    }
    let r = master
        .get(&format!("/v2/accounts/{a}/webhooks/{id}/attempts"))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        master
            .get(&format!("/v2/accounts/{b}/webhooks/{id}"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let r = master.get("/v2/nothing/here").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["status"], "error");
    assert_eq!(r.body["message"], "not_found");
    let r = master
        .delete(&format!("/v2/accounts/{root}/webhooks"))
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body["message"], "invalid_method");
    assert_eq!(r.body["error"], "405");
    assert_eq!(r.headers["content-type"], "application/json");
    let r = master
        .send("POST", "/v2/webhooks", Some(json!({"data": {}})))
        .await;
    assert_eq!(r.status, 405);
}

/// Writes a webhook document straight into a stopped daemon's store.
async fn seed_hook(dir: &std::path::Path, account: &str, id: &str, extra: Value) {
    let store = webhooks_store::EmbeddedStore::open(dir).unwrap();
    let mut doc = json!({"_id": id, "pvt_type": "webhook", "pvt_account_id": account, "name": id,
                         "uri": "http://a.b/", "hook": "channel_create"});
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    store
        .save_hook(webhooks_core::Doc::from_value(doc).unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn bulk_reenable_restores_only_auto_disabled_hooks() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_in(tmp.path(), &[]);
    let (master, root) = d.master().await;
    let child = master.create_account(&root, "child").await;
    let grandchild = master.create_account(&child, "grandchild").await;
    d.stop();
    let auto = json!({"enabled": false, "pvt_disabled_message": "too many failed attempts"});
    seed_hook(tmp.path(), &root, "root-auto", auto.clone()).await;
    seed_hook(tmp.path(), &root, "root-manual", json!({"enabled": false})).await;
    seed_hook(tmp.path(), &child, "child-auto", auto.clone()).await;
    seed_hook(tmp.path(), &grandchild, "grandchild-auto", auto.clone()).await;
    let d = Daemon::start_in(tmp.path(), &[]);
    let (master, _) = d.master().await;

    let list = master.get(&format!("/v2/accounts/{root}/webhooks")).await;
    let auto_item = list
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == "root-auto")
        .unwrap()
        .clone();
    assert_eq!(auto_item["disable_reason"], "too many failed attempts");
    let r = master
        .get(&format!("/v2/accounts/{root}/webhooks/root-auto"))
        .await;
    assert_eq!(r.data()["disable_reason"], "too many failed attempts");

    let base = format!("/v2/accounts/{root}/webhooks");
    let r = master.patch(&base, json!({})).await;
    assert_eq!(r.status, 400);
    assert!(r.data()["re-enable"]["required"].is_object());
    let r = master.patch(&base, json!({"re-enable": false})).await;
    assert_eq!(r.status, 400);
    assert!(r.data()["re-enable"]["enum"].is_object());

    let r = master.patch(&base, json!({"re-enable": true})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data(), "hooks updated");
    let get = |id: &str| {
        let (m, path) = (master.clone(), format!("/v2/accounts/{root}/webhooks/{id}"));
        async move { m.get(&path).await }
    };
    let r = get("root-auto").await;
    assert_eq!(r.data()["enabled"], true);
    assert!(r.data().get("disable_reason").is_none());
    assert_eq!(
        get("root-manual").await.data()["enabled"],
        false,
        "manual disable stays"
    );
    let child_hook = master
        .get(&format!("/v2/accounts/{child}/webhooks/child-auto"))
        .await;
    assert_eq!(
        child_hook.data()["enabled"],
        false,
        "account re-enable does not reach children"
    );

    let r = master
        .patch(
            &format!("/v2/accounts/{root}/descendants/webhooks"),
            json!({"re-enable": true}),
        )
        .await;
    assert_eq!(r.status, 200);
    for (acc, id) in [(&child, "child-auto"), (&grandchild, "grandchild-auto")] {
        let r = master
            .get(&format!("/v2/accounts/{acc}/webhooks/{id}"))
            .await;
        assert_eq!(r.data()["enabled"], true, "{id}");
    }
    assert_eq!(get("root-manual").await.data()["enabled"], false);
}

#[tokio::test]
async fn envelope_carries_request_id_token_and_revision() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let r = master
        .http
        .get(format!("{}/v2/accounts/{root}/webhooks", d.base))
        .header("X-Auth-Token", master.token.as_deref().unwrap())
        .header("X-Request-ID", "req-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-123");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["request_id"], "req-123");
    assert_eq!(body["auth_token"], master.token.clone().unwrap());
    assert_eq!(body["status"], "success");
    assert_eq!(body["revision"].as_str().unwrap().len(), 32);
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(body["version"].is_string());
}

#[tokio::test]
async fn soft_deleted_hooks_stay_in_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_in(tmp.path(), &[]);
    let (master, root) = d.master().await;
    let id = master.create_hook(&root, hook("x")).await;
    master
        .delete(&format!("/v2/accounts/{root}/webhooks/{id}"))
        .await;
    d.stop();
    let store = webhooks_store::EmbeddedStore::open(tmp.path()).unwrap();
    let doc = store.hook(&id).await.unwrap().expect("kept");
    assert_eq!(doc.bool("pvt_deleted"), Some(true));
}
