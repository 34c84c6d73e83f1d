//! `reset-hook-definitions`, `reset-hook-definition` and `start-module`: the `webhooks` binary
//! on a real store, what it prints, its exit code, and the hook definitions (KAZOO's
//! `webhook_meta` documents of the master account) it leaves.

mod common;

use std::future::Future;
use std::path::Path;
use std::process::Command;

use common::{block, doc, stderr, stdout, webhooks};
use serde_json::{json, Value};
use tempfile::TempDir;
use webhooks_core::store::{ConfigStore, DefinitionStore};
use webhooks_core::{AccountId, Doc};
use webhooks_store::{CouchConfig, CouchStore, EmbeddedStore};
use webhooks_testkit::couchdb::PouchServer;

const MASTER: &str = "0000000000000000000000000000000a";

/// The master account, named by `system_config/accounts` as the daemon's first start does.
async fn seed_master(store: &impl webhooks_core::Store) {
    store
        .save_account(doc(json!({
            "_id": MASTER, "pvt_type": "account", "name": "master", "pvt_tree": [],
            "pvt_superduper_admin": true,
        })))
        .await
        .expect("save master");
    store
        .save_system_config("accounts", doc(json!({"master_account_id": MASTER})))
        .await
        .expect("name master");
}

/// A stored definition, as an older build (or KAZOO) left it.
async fn seed_definition(store: &impl webhooks_core::Store, v: Value) {
    store
        .save_definition(doc(v))
        .await
        .expect("save definition");
}

/// A data directory holding a store with the master account, seeded further by `seed` and
/// closed again before the binary runs.
fn data_dir<F, Fut>(seed: F) -> TempDir
where
    F: FnOnce(EmbeddedStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("open store");
    block(async {
        seed_master(&store).await;
        seed(store).await;
    });
    dir
}

/// Every stored definition, by id.
fn stored(dir: &Path) -> Vec<Doc> {
    let store = EmbeddedStore::open(dir).expect("open store");
    block(store.definitions()).expect("list definitions")
}

fn stored_ids(dir: &Path) -> Vec<String> {
    stored(dir)
        .iter()
        .map(|d| d.id().expect("id").to_owned())
        .collect()
}

fn definition(dir: &Path, id: &str) -> Doc {
    stored(dir)
        .into_iter()
        .find(|d| d.id() == Some(id))
        .unwrap_or_else(|| panic!("{id} is not stored"))
}

#[test]
fn start_module_writes_that_modules_definition_under_either_name() {
    let dir = data_dir(|_| async {});
    let o = webhooks(dir.path(), &["start-module", "parking"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "started module webhooks_parking\n");
    let o = webhooks(dir.path(), &["start-module", "webhooks_sms"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "started module webhooks_sms\n");

    assert_eq!(stored_ids(dir.path()), ["webhooks_parking", "webhooks_sms"]);
    let parking = definition(dir.path(), "webhooks_parking");
    assert_eq!(parking.pvt_type(), Some("webhook_meta"));
    assert_eq!(parking.str("name"), Some("Call Parking"));
    assert_eq!(
        parking.str("description"),
        Some("Events when calls get parked/retrieved")
    );
    assert_eq!(parking.account_id(), Some(MASTER));
    assert!(parking.get("modifiers").is_none());

    // Started again: nothing to write, the same revision.
    let o = webhooks(dir.path(), &["start-module", "parking"]);
    assert_eq!(stdout(&o), "started module webhooks_parking\n");
    assert_eq!(
        definition(dir.path(), "webhooks_parking").rev(),
        parking.rev()
    );
}

#[test]
fn the_object_definition_lists_the_configured_object_types() {
    let dir = data_dir(|store| async move {
        store
            .save_system_config(
                "webhooks",
                doc(json!({"object_types": ["callflow", "device"]})),
            )
            .await
            .expect("config");
    });
    let o = webhooks(dir.path(), &["start-module", "object"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let object = definition(dir.path(), "webhooks_object");
    assert_eq!(
        object.get("modifiers").expect("modifiers")["type"]["items"],
        json!(["all", "callflow", "device"])
    );
}

/// KAZOO's rule at start: a stored definition is merged with the module's, so a key the module
/// dropped survives; only a reset removes it.
#[test]
fn a_stale_key_survives_start_module_and_is_gone_after_a_reset() {
    let dir = data_dir(|store| async move {
        seed_definition(
            &store,
            json!({"_id": "webhooks_parking", "pvt_type": "webhook_meta",
                   "name": "Parking (old)", "description": "old", "stale": {"kept": true}}),
        )
        .await;
    });
    let o = webhooks(dir.path(), &["start-module", "webhooks_parking"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let merged = definition(dir.path(), "webhooks_parking");
    assert_eq!(merged.str("name"), Some("Call Parking"));
    assert_eq!(merged.get("stale"), Some(&json!({"kept": true})));

    let o = webhooks(dir.path(), &["reset-hook-definition", "parking"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "reinitialized hooks: webhooks_parking\n");
    let reset = definition(dir.path(), "webhooks_parking");
    assert_eq!(reset.str("name"), Some("Call Parking"));
    assert!(reset.get("stale").is_none(), "{reset:?}");
    assert_eq!(reset.account_id(), Some(MASTER));
}

#[test]
fn reset_hook_definitions_rewrites_what_was_stored_and_drops_unknown_ones() {
    let dir = data_dir(|store| async move {
        for (id, name) in [
            ("webhooks_sms", "SMS"),
            ("webhooks_parking", "Call Parking"),
            ("webhooks_retired", "Retired"),
        ] {
            seed_definition(
                &store,
                json!({"_id": id, "pvt_type": "webhook_meta", "name": name,
                       "description": "", "stale": 1}),
            )
            .await;
        }
    });
    let o = webhooks(dir.path(), &["reset-hook-definitions"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "reinitialized hooks: webhooks_parking, webhooks_sms\n\
         deleted hook definitions of unknown modules: webhooks_retired\n"
    );
    // Only what was stored comes back (KAZOO re-initialises what it deleted), afresh.
    assert_eq!(stored_ids(dir.path()), ["webhooks_parking", "webhooks_sms"]);
    for d in stored(dir.path()) {
        assert!(d.get("stale").is_none(), "{d:?}");
        assert_eq!(d.pvt_type(), Some("webhook_meta"));
    }
    assert_eq!(
        definition(dir.path(), "webhooks_sms").str("description"),
        Some("Receive notifications when sms is received")
    );
}

#[test]
fn reset_hook_definitions_with_nothing_stored_says_so_as_kazoo_does() {
    let dir = data_dir(|_| async {});
    let o = webhooks(dir.path(), &["reset-hook-definitions"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "reinitialized hooks: \n");
    assert!(stored_ids(dir.path()).is_empty());
}

#[test]
fn resetting_an_id_no_module_writes_deletes_it_for_good() {
    let dir = data_dir(|store| async move {
        seed_definition(
            &store,
            json!({"_id": "webhooks_retired", "pvt_type": "webhook_meta", "name": "Retired"}),
        )
        .await;
    });
    let o = webhooks(dir.path(), &["reset-hook-definition", "webhooks_retired"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "deleted hook definitions of unknown modules: webhooks_retired\n"
    );
    assert!(stored_ids(dir.path()).is_empty());
}

#[test]
fn resetting_a_definition_that_is_not_stored_fails_with_kazoos_message() {
    let dir = data_dir(|_| async {});
    let o = webhooks(dir.path(), &["reset-hook-definition", "parking"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    assert_eq!(
        stderr(&o),
        "failed to clear hook webhooks_parking: document not found\n"
    );
    assert!(stored_ids(dir.path()).is_empty());
}

#[test]
fn an_unknown_module_is_refused_naming_the_known_ones() {
    let dir = data_dir(|_| async {});
    for arg in ["nope", "webhooks_skel"] {
        let o = webhooks(dir.path(), &["start-module", arg]);
        assert_eq!(o.status.code(), Some(2), "a bad argument");
        let e = stderr(&o);
        assert!(e.starts_with(&format!("unknown module {arg:?}: ")), "{e}");
        assert!(e.contains("webhooks_channel_create"), "{e}");
        assert!(e.contains("webhooks_notifications"), "{e}");
    }
    assert!(stored_ids(dir.path()).is_empty());
}

#[test]
fn without_a_master_account_nothing_is_written_and_the_reason_is_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(EmbeddedStore::open(dir.path()).expect("open store"));
    let o = webhooks(dir.path(), &["start-module", "parking"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no master account"), "{}", stderr(&o));
    let o = webhooks(dir.path(), &["reset-hook-definitions"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.starts_with("failed to clear old hook definitions: ") && e.contains("no master account"),
        "{e}"
    );
}

/// On KAZOO's CouchDB the definitions land in the master account's database, where KAZOO's
/// crossbar lists them through its `webhooks/webhook_meta_listing` view.
#[tokio::test]
async fn on_couchdb_definitions_live_in_the_master_accounts_database() {
    let server = PouchServer::in_memory().await;
    let store = CouchStore::connect(CouchConfig::new(server.url()))
        .await
        .expect("connect");
    seed_master(&store).await;
    seed_definition(
        &store,
        json!({"_id": "webhooks_parking", "pvt_type": "webhook_meta", "name": "Parking (old)",
               "description": "old", "stale": true}),
    )
    .await;
    let url = server.url();
    let couch = |args: &[&str]| {
        let mut all = vec!["--couchdb-url", url.as_str()];
        all.extend_from_slice(args);
        Command::new(env!("CARGO_BIN_EXE_webhooks"))
            .args(&all)
            .env_remove("WEBHOOKS_COUCHDB_URL")
            .output()
            .expect("run webhooks")
    };

    let o = couch(&["start-module", "sms"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "started module webhooks_sms\n");
    let o = couch(&["reset-hook-definitions"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "reinitialized hooks: webhooks_parking, webhooks_sms\n"
    );

    let master = AccountId::parse(MASTER).expect("id");
    let db = master.db_name().replace('/', "%2F");
    let listing: Value = reqwest::get(format!(
        "{url}/{db}/_design/webhooks/_view/webhook_meta_listing?include_docs=true"
    ))
    .await
    .expect("view")
    .json()
    .await
    .expect("json");
    let rows = listing["rows"].as_array().expect("rows");
    let names: Vec<&str> = rows.iter().filter_map(|r| r["key"].as_str()).collect();
    assert_eq!(names, ["Call Parking", "SMS"], "{listing}");
    for row in rows {
        assert!(row["doc"].get("stale").is_none(), "{row}");
        assert_eq!(row["doc"]["pvt_account_db"], db.as_str());
    }
    assert!(store
        .definition("webhooks_parking")
        .await
        .expect("read")
        .is_some());
}
