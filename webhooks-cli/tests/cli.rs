//! The `webhooks` binary against a real embedded store: what it prints, its exit code, and what
//! it leaves in the store.

mod common;

use std::future::Future;
use std::path::Path;
use std::process::Command;

use common::{block, doc, stderr, stdout, webhooks};
use serde_json::{json, Value};
use tempfile::TempDir;
use webhooks_core::store::{AccountStore, ConfigStore, HookStore};
use webhooks_core::{AccountId, Doc};
use webhooks_store::EmbeddedStore;

const ROOT: &str = "00000000000000000000000000000001";
const CHILD: &str = "00000000000000000000000000000002";
const GRANDCHILD: &str = "00000000000000000000000000000003";
const SIBLING: &str = "00000000000000000000000000000004";

fn id(s: &str) -> AccountId {
    AccountId::parse(s).expect("account id")
}

/// A data directory holding a store, seeded by `seed` and closed again before the binary runs.
fn data_dir<F, Fut>(seed: F) -> TempDir
where
    F: FnOnce(EmbeddedStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("open store");
    block(seed(store));
    dir
}

/// Root, a child with a grandchild, and a sibling of the child.
async fn seed_accounts(store: &EmbeddedStore) {
    for (account, tree) in [
        (ROOT, json!([])),
        (CHILD, json!([ROOT])),
        (GRANDCHILD, json!([ROOT, CHILD])),
        (SIBLING, json!([ROOT])),
    ] {
        store
            .save_account(doc(json!({
                "_id": account, "pvt_type": "account", "name": account, "pvt_tree": tree
            })))
            .await
            .expect("save account");
    }
}

async fn save_hook(store: &EmbeddedStore, hook_id: &str, account: &str, extra: Value) {
    let mut d = doc(json!({
        "_id": hook_id,
        "pvt_type": "webhook",
        "pvt_account_id": account,
        "name": hook_id,
        "uri": format!("http://hooks.example.com/{hook_id}"),
        "http_verb": "post",
        "hook": "channel_create",
        "retries": 3,
        "enabled": true,
    }));
    for (k, v) in extra.as_object().expect("object") {
        d.set(k, v.clone());
    }
    store.save_hook(d).await.expect("save hook");
}

fn auto_disabled() -> Value {
    json!({"enabled": false, "pvt_disabled_message": "too many failed attempts"})
}

fn hook_doc(dir: &Path, hook_id: &str) -> Doc {
    let store = EmbeddedStore::open(dir).expect("open store");
    block(store.hook(hook_id))
        .expect("read hook")
        .expect("hook exists")
}

fn system_config(dir: &Path) -> Option<Doc> {
    let store = EmbeddedStore::open(dir).expect("open store");
    block(store.system_config("webhooks")).expect("read config")
}

fn account_config(dir: &Path, account: &str) -> Option<Doc> {
    let store = EmbeddedStore::open(dir).expect("open store");
    block(store.account_config(&id(account), "webhooks")).expect("read config")
}

fn table_row(uri: &str, verb: &str, event: &str, retries: &str, account: &str) -> String {
    format!("| {uri:<45} | {verb:<5} | {event:<20} | {retries:<10} | {account:<32} |")
}

#[test]
fn hooks_configured_lists_only_hooks_that_would_fire() {
    let dir = data_dir(|store| async move {
        seed_accounts(&store).await;
        save_hook(&store, "a_live", CHILD, json!({})).await;
        save_hook(
            &store,
            "b_notify",
            ROOT,
            json!({"hook": "notifications", "http_verb": "get", "retries": 9}),
        )
        .await;
        save_hook(&store, "c_manual_off", CHILD, json!({"enabled": false})).await;
        save_hook(&store, "d_auto_off", CHILD, auto_disabled()).await;
        save_hook(&store, "e_deleted", CHILD, json!({"pvt_deleted": true})).await;
        save_hook(&store, "f_unknown", CHILD, json!({"hook": "no_such_event"})).await;
    });

    let o = webhooks(dir.path(), &["hooks-configured"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = [
        table_row("URI", "VERB", "EVENT", "RETRIES", "ACCOUNT ID"),
        table_row(
            "http://hooks.example.com/b_notify",
            "get",
            "notifications",
            "5",
            ROOT,
        ),
        table_row(
            "http://hooks.example.com/a_live",
            "post",
            "CHANNEL_CREATE",
            "3",
            CHILD,
        ),
        "found 2 webhooks".to_owned(),
    ]
    .join("\n")
        + "\n";
    assert_eq!(stdout(&o), expected);

    let o = webhooks(dir.path(), &["hooks-configured", CHILD]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("a_live"), "{out}");
    assert!(!out.contains("b_notify"), "{out}");
    assert!(out.ends_with("found 1 webhooks\n"), "{out}");
}

#[test]
fn hooks_configured_on_an_account_without_hooks_says_so() {
    let dir = data_dir(|store| async move { seed_accounts(&store).await });
    let o = webhooks(dir.path(), &["hooks-configured"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "no webhooks configured\n");
    let o = webhooks(dir.path(), &["hooks-configured", SIBLING]);
    assert_eq!(stdout(&o), "no webhooks configured\n");
}

#[test]
fn enable_account_hooks_reenables_auto_disabled_and_leaves_manual_ones_off() {
    let dir = data_dir(|store| async move {
        seed_accounts(&store).await;
        save_hook(&store, "h1_auto", CHILD, auto_disabled()).await;
        save_hook(&store, "h2_manual", CHILD, json!({"enabled": false})).await;
        save_hook(&store, "h3_auto", CHILD, auto_disabled()).await;
        save_hook(&store, "h4_other_account", SIBLING, auto_disabled()).await;
    });

    // A connection held open across the run stands in for a running daemon: the binary must
    // write alongside it, and the write must be visible through it.
    let daemon = EmbeddedStore::open(dir.path()).expect("open store");
    let o = webhooks(dir.path(), &["enable-account-hooks", CHILD]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "re-enabled 2 hooks\nIDs: h1_auto, h3_auto\n");

    for hook in ["h1_auto", "h3_auto"] {
        let d = block(daemon.hook(hook)).expect("read hook").expect("hook");
        assert_eq!(d.bool("enabled"), Some(true), "{hook}");
        assert!(d.get("pvt_disabled_message").is_none(), "{hook}");
    }
    drop(daemon);
    assert_eq!(
        hook_doc(dir.path(), "h2_manual").bool("enabled"),
        Some(false)
    );
    assert_eq!(
        hook_doc(dir.path(), "h4_other_account").bool("enabled"),
        Some(false)
    );

    let o = webhooks(dir.path(), &["enable-account-hooks", CHILD]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "no hooks to re-enable\n");

    let o = webhooks(dir.path(), &["enable-account-hooks", GRANDCHILD]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("account {GRANDCHILD} has no webhooks configured\n")
    );
}

#[test]
fn enable_descendant_hooks_reaches_the_subtree_and_nothing_else() {
    let dir = data_dir(|store| async move {
        seed_accounts(&store).await;
        save_hook(&store, "root_hook", ROOT, auto_disabled()).await;
        save_hook(&store, "child_hook", CHILD, auto_disabled()).await;
        save_hook(&store, "grandchild_hook", GRANDCHILD, auto_disabled()).await;
        save_hook(&store, "sibling_hook", SIBLING, auto_disabled()).await;
    });

    let o = webhooks(dir.path(), &["enable-descendant-hooks", CHILD]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "## checking account {CHILD} for hooks to enable ##\n\
             re-enabled 1 hooks\nIDs: child_hook\n\
             ## checking account {GRANDCHILD} for hooks to enable ##\n\
             re-enabled 1 hooks\nIDs: grandchild_hook\n"
        )
    );
    for (hook, enabled) in [
        ("child_hook", true),
        ("grandchild_hook", true),
        ("root_hook", false),
        ("sibling_hook", false),
    ] {
        assert_eq!(
            hook_doc(dir.path(), hook).bool("enabled"),
            Some(enabled),
            "{hook}"
        );
    }
}

#[test]
fn set_failure_expiry_writes_the_system_default_and_keeps_other_keys() {
    let dir = data_dir(|store| async move {
        store
            .save_system_config(
                "webhooks",
                doc(json!({"log_successful_attempts": true, "attempt_failure_expiry_ms": 1})),
            )
            .await
            .expect("save config");
    });
    let before = system_config(dir.path()).expect("config");

    let o = webhooks(dir.path(), &["set-failure-expiry", "120000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "set default expiry for failure attempts to 120000ms\n"
    );
    let after = system_config(dir.path()).expect("config");
    assert_eq!(after.get("attempt_failure_expiry_ms"), Some(&json!(120000)));
    assert_eq!(after.bool("log_successful_attempts"), Some(true));
    assert_ne!(after.rev(), before.rev());
}

#[test]
fn set_failure_expiry_on_an_account_writes_its_config_only() {
    let dir = data_dir(|store| async move { seed_accounts(&store).await });

    let o = webhooks(dir.path(), &["set-failure-expiry", CHILD, "30000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("set default expiry for failure attempts to 30000ms on account {CHILD}\n")
    );
    let config = account_config(dir.path(), CHILD).expect("account config");
    assert_eq!(config.get("attempt_failure_expiry_ms"), Some(&json!(30000)));
    assert_eq!(system_config(dir.path()), None);
    assert_eq!(account_config(dir.path(), SIBLING), None);
}

#[test]
fn set_disable_threshold_writes_system_and_account_values() {
    let dir = data_dir(|store| async move {
        seed_accounts(&store).await;
        store
            .save_account_config(
                &id(CHILD),
                "webhooks",
                doc(json!({"attempt_failure_expiry_ms": 5000})),
            )
            .await
            .expect("save config");
    });

    let o = webhooks(dir.path(), &["set-disable-threshold", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "set default count of failed attempts to disable hook to 4\n"
    );
    let system = system_config(dir.path()).expect("system config");
    assert_eq!(system.get("attempt_failure_count"), Some(&json!(4)));

    // The database-name form KAZOO operators paste from CouchDB urls names the same account.
    let o = webhooks(
        dir.path(),
        &[
            "set-disable-threshold",
            "account%2F00%2F00%2F0000000000000000000000000002",
            "9",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "set default count of failed attempts to disable hook to 9\n"
    );
    let account = account_config(dir.path(), CHILD).expect("account config");
    assert_eq!(account.get("attempt_failure_count"), Some(&json!(9)));
    assert_eq!(account.get("attempt_failure_expiry_ms"), Some(&json!(5000)));
    assert_eq!(
        system_config(dir.path())
            .expect("system config")
            .get("attempt_failure_count"),
        Some(&json!(4))
    );
}

#[test]
fn values_that_are_not_integers_are_refused_and_nothing_is_written() {
    let dir = data_dir(|store| async move { seed_accounts(&store).await });

    for bad in ["abc", "1.5", "-5", ""] {
        let o = webhooks(dir.path(), &["set-failure-expiry", bad]);
        assert_eq!(o.status.code(), Some(1), "{bad:?}: {}", stderr(&o));
        assert_eq!(
            stderr(&o),
            "error in expiry time, must be an integer (milliseconds)\n",
            "{bad:?}"
        );
        assert_eq!(stdout(&o), "");

        let o = webhooks(dir.path(), &["set-disable-threshold", CHILD, bad]);
        assert_eq!(o.status.code(), Some(1), "{bad:?}: {}", stderr(&o));
        assert_eq!(
            stderr(&o),
            "error in count, must be an integer\n",
            "{bad:?}"
        );
    }
    assert_eq!(system_config(dir.path()), None);
    assert_eq!(account_config(dir.path(), CHILD), None);
}

#[test]
fn bad_or_unknown_accounts_are_usage_errors() {
    let dir = data_dir(|store| async move { seed_accounts(&store).await });

    let o = webhooks(dir.path(), &["enable-account-hooks", "not-an-account"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not an account id: \"not-an-account\""),
        "{}",
        stderr(&o)
    );

    let unknown = "ffffffffffffffffffffffffffffffff";
    let o = webhooks(dir.path(), &["set-failure-expiry", unknown, "1000"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o), format!("account {unknown} does not exist\n"));
    assert_eq!(account_config(dir.path(), unknown), None);
}

#[test]
fn a_missing_store_is_reported_not_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nowhere");
    let o = webhooks(&missing, &["hooks-configured"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("no store at "), "{}", stderr(&o));
    assert!(!missing.exists());
}

#[test]
fn the_data_dir_comes_from_the_environment_like_the_daemon() {
    let dir = data_dir(|store| async move {
        seed_accounts(&store).await;
        save_hook(&store, "env_hook", ROOT, json!({})).await;
    });
    let o = Command::new(env!("CARGO_BIN_EXE_webhooks"))
        .arg("hooks-configured")
        .env("WEBHOOKS_DATA_DIR", dir.path())
        .output()
        .expect("run webhooks");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).ends_with("found 1 webhooks\n"), "{}", stdout(&o));
}

#[test]
fn help_lists_every_command() {
    let o = Command::new(env!("CARGO_BIN_EXE_webhooks"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    for command in [
        "hooks-configured",
        "failure-status",
        "flush-account-failures",
        "flush-hook-failures",
        "set-failure-expiry",
        "set-disable-threshold",
        "enable-account-hooks",
        "enable-descendant-hooks",
        "register-views",
        "reset-hook-definitions",
        "reset-hook-definition ",
        "start-module",
        "attempts",
        "replay",
        "recover",
        "listen",
        "trigger",
    ] {
        assert!(
            help.contains(&format!("  {command}")),
            "{command} in\n{help}"
        );
    }
}
