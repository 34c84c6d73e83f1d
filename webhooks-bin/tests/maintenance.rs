//! Replay, recover and the maintenance commands against a running daemon: the API routes
//! (`.../replay`, `.../recover`, `.../failures`) and the `webhooks` CLI that uses them, with
//! what each prints and its exit code. Deliveries go to a real receiver on loopback.

mod common;

use std::ffi::OsString;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use webhooks_testkit::{Answer, Receiver};

/// Runs `webhooks` against `d`: its API, and its data directory, where the master key is
/// read from when `args` gives none.
async fn cli(d: &Daemon, args: &[&str]) -> CliRun {
    let mut all: Vec<OsString> = vec!["--api".into(), d.base.clone().into()];
    all.extend(["--data-dir".into(), d.data_dir.clone().into_os_string()]);
    all.extend(args.iter().map(OsString::from));
    webhooks_cli(all).await
}

/// A daemon, an account with one hook (one try per delivery) to a receiver that answers 500,
/// and a sibling account that may not touch it.
struct Setup {
    d: Daemon,
    master: Client,
    rx: Receiver,
    account: String,
    hook: String,
    sibling: Client,
    sibling_key: String,
}

async fn setup() -> Setup {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let account = master.create_account(&root, "customer").await;
    let sibling_id = master.create_account(&root, "sibling").await;
    // Not 127.0.0.1: KAZOO's default uri_blacklist refuses it.
    let rx = Receiver::start_on("127.0.0.2:0").await;
    rx.answer("/flaky", Answer::Status(500));
    let hook = master
        .create_hook(
            &account,
            json!({"name": "flaky", "uri": rx.url("/flaky"), "hook": "channel_create", "retries": 1}),
        )
        .await;
    let key = master
        .get(&format!("/v2/accounts/{sibling_id}/api_key"))
        .await;
    let sibling_key = key.data()["api_key"].as_str().unwrap().to_owned();
    let mut sibling = d.client();
    sibling.login(&sibling_key).await;
    Setup {
        d,
        master,
        rx,
        account,
        hook,
        sibling,
        sibling_key,
    }
}

impl Setup {
    /// Publishes `n` calls; each delivery fails once and for good.
    async fn fail_calls(&self, prefix: &str, n: usize) {
        let before = self.rx.received_at("/flaky").len();
        for i in 0..n {
            let mut event = channel_create(&self.account);
            event["Call-ID"] = json!(format!("{prefix}-{i}"));
            let r = self.master.send("POST", "/v2/events", Some(event)).await;
            assert_eq!(r.status, 202, "{:?}", r.body);
        }
        self.rx.wait_for("/flaky", before + n).await;
    }

    /// The hook's attempts, once there are `n` of them (the writer batches them).
    async fn attempts(&self, n: usize) -> Vec<Value> {
        let path = format!(
            "/v2/accounts/{}/webhooks/{}/attempts",
            self.account, self.hook
        );
        for _ in 0..400 {
            let r = self.master.get(&path).await;
            let items = r.data().as_array().cloned().unwrap_or_default();
            if items.len() >= n {
                return items;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fewer than {n} attempts at {path}");
    }

    fn path(&self, tail: &str) -> String {
        format!(
            "/v2/accounts/{}/webhooks/{}/{tail}",
            self.account, self.hook
        )
    }
}

fn webhook_id_of(arrival: &webhooks_testkit::Received) -> String {
    arrival.header("webhook-id").unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_replayed_and_recovered_once_through_the_api() {
    let s = setup().await;
    s.fail_calls("call", 3).await;
    let attempts = s.attempts(3).await;
    assert!(attempts.iter().all(|a| a["result"] == "failure"));
    let failed = s.rx.received_at("/flaky");
    s.rx.answer("/flaky", Answer::Status(200));

    // Replay: the same request, with the same webhook-id, a new try.
    let first = webhook_id_of(&failed[0]);
    let r = s
        .master
        .post(&s.path("replay"), json!({"webhook_id": first}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.data()["queued"], 1);
    let again = s.rx.wait_for("/flaky", 4).await.remove(3);
    assert_eq!(webhook_id_of(&again), first);
    assert_eq!(again.body, failed[0].body);

    // An unknown delivery is a 404; a missing id a validation error.
    let r = s
        .master
        .post(&s.path("replay"), json!({"webhook_id": "msg_0"}))
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let r = s.master.post(&s.path("replay"), json!({})).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.data()["webhook_id"]["required"].is_object());

    // Another account's user may not replay or recover here.
    let body = json!({"webhook_id": first});
    assert_eq!(s.sibling.post(&s.path("replay"), body).await.status, 403);
    assert_eq!(
        s.sibling.post(&s.path("recover"), json!({})).await.status,
        403
    );
    let account_recover = format!("/v2/accounts/{}/webhooks/recover", s.account);
    assert_eq!(
        s.sibling.post(&account_recover, json!({})).await.status,
        403
    );

    // Recover sends the two that never arrived; the replayed one arrived (its success is
    // recorded) and is not sent again.
    s.attempts(4).await;
    let r = s.master.post(&s.path("recover"), json!({})).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.data()["queued"], 2, "{:?}", r.body);
    assert_eq!(r.data()["complete"], true);
    let all = s.rx.wait_for("/flaky", 6).await;
    let resent: Vec<String> = all[4..].iter().map(webhook_id_of).collect();
    let mut expected = vec![webhook_id_of(&failed[1]), webhook_id_of(&failed[2])];
    expected.sort();
    let mut got = resent.clone();
    got.sort();
    assert_eq!(got, expected);

    // Once they arrived, an account-wide recovery finds nothing left to send.
    s.attempts(6).await;
    let r = s.master.post(&account_recover, json!({})).await;
    assert_eq!(r.data()["queued"], 0, "{:?}", r.body);

    // A range the attempts listing would refuse is refused here too.
    let r = s
        .master
        .post(
            &s.path("recover"),
            json!({"created_from": 10, "created_to": 5}),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_hook_is_not_replayed() {
    let s = setup().await;
    s.fail_calls("off", 1).await;
    let id = webhook_id_of(&s.rx.received_at("/flaky")[0]);
    s.attempts(1).await;
    let hook_path = format!("/v2/accounts/{}/webhooks/{}", s.account, s.hook);
    assert_eq!(
        s.master
            .patch(&hook_path, json!({"enabled": false}))
            .await
            .status,
        200
    );
    let r = s
        .master
        .post(&s.path("replay"), json!({"webhook_id": id}))
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.data()["enabled"]["disabled"].is_object(), "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_shows_and_flushes_the_failure_counts_the_daemon_holds() {
    let s = setup().await;
    s.fail_calls("count", 3).await;
    let row = format!("| {:<32} | {:<32} | {:>5} |", s.account, s.hook, 3);
    let rule = format!(
        "| {} | {} | {} |",
        "-".repeat(32),
        "-".repeat(32),
        "-".repeat(5)
    );
    // The recorder counts a failure just after the receiver answered: give it a moment.
    let mut status = cli(&s.d, &["failure-status"]).await;
    for _ in 0..100 {
        if status.stdout.contains(&row) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = cli(&s.d, &["failure-status"]).await;
    }
    assert_eq!(status.code, 0, "{}", status.stderr);
    let header = format!("| {:<32} | {:<32} | Count |", "Account", "Hook");
    assert_eq!(
        status.stdout.lines().collect::<Vec<_>>(),
        vec![rule.as_str(), header.as_str(), row.as_str(), rule.as_str()]
    );

    let json = cli(&s.d, &["failure-status", &s.account, "--json"]).await;
    let rows: Value = serde_json::from_str(&json.stdout).expect(&json.stdout);
    assert_eq!(
        rows,
        json!([{"account_id": s.account, "hook_id": s.hook, "count": 3}])
    );

    let flushed = cli(&s.d, &["flush-hook-failures", &s.account, &s.hook]).await;
    assert_eq!(flushed.code, 0, "{}", flushed.stderr);
    assert_eq!(
        flushed.stdout,
        format!("flushed 3 failure entries for {}\n", s.hook)
    );
    let empty = cli(&s.d, &["failure-status"]).await;
    assert_eq!(empty.stdout.lines().count(), 3, "{}", empty.stdout);

    s.fail_calls("more", 2).await;
    let mut flushed = cli(&s.d, &["flush-account-failures", &s.account]).await;
    for _ in 0..100 {
        if flushed.stdout != "flushed 0 failure entries\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        flushed = cli(&s.d, &["flush-account-failures", &s.account]).await;
    }
    let n: usize = flushed
        .stdout
        .trim()
        .strip_prefix("flushed ")
        .and_then(|r| r.strip_suffix(" failure entries"))
        .and_then(|n| n.parse().ok())
        .expect(&flushed.stdout);
    assert!((1..=2).contains(&n), "{}", flushed.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_replays_recovers_and_triggers() {
    let s = setup().await;
    s.fail_calls("cli", 2).await;
    s.attempts(2).await;
    let failed = s.rx.received_at("/flaky");
    s.rx.answer("/flaky", Answer::Status(200));

    let listed = cli(&s.d, &["attempts", &s.account]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(
        listed.stdout.starts_with("| TIME (UTC)"),
        "{}",
        listed.stdout
    );
    assert!(listed.stdout.contains(&webhook_id_of(&failed[0])));
    assert!(
        listed.stdout.ends_with("found 2 attempts\n"),
        "{}",
        listed.stdout
    );
    let listed = cli(&s.d, &["attempts", &s.account, &s.hook, "--json"]).await;
    let items: Value = serde_json::from_str(&listed.stdout).expect(&listed.stdout);
    assert_eq!(items.as_array().unwrap().len(), 2);

    let id = webhook_id_of(&failed[0]);
    let replayed = cli(&s.d, &["replay", &s.account, &s.hook, &id]).await;
    assert_eq!(replayed.code, 0, "{}", replayed.stderr);
    assert_eq!(replayed.stdout, format!("queued 1 deliveries: {id}\n"));
    assert_eq!(webhook_id_of(&s.rx.wait_for("/flaky", 3).await[2]), id);

    s.attempts(3).await;
    let recovered = cli(&s.d, &["recover", &s.account]).await;
    assert_eq!(recovered.code, 0, "{}", recovered.stderr);
    assert!(
        recovered
            .stdout
            .starts_with("queued 1 deliveries that failed between "),
        "{}",
        recovered.stdout
    );
    assert_eq!(
        webhook_id_of(&s.rx.wait_for("/flaky", 4).await[3]),
        webhook_id_of(&failed[1])
    );

    // With another account's key, the daemon refuses both, and so does the CLI.
    for args in [
        vec!["replay", s.account.as_str(), s.hook.as_str(), id.as_str()],
        vec!["recover", s.account.as_str()],
    ] {
        let mut with_key = vec!["--api-key", s.sibling_key.as_str()];
        with_key.extend(args);
        let refused = cli(&s.d, &with_key).await;
        assert_eq!(refused.code, 1, "{with_key:?}");
        assert!(
            refused.stderr.starts_with("the daemon answered 403"),
            "{}",
            refused.stderr
        );
    }

    // A replay the daemon refuses is its error in one line, and a failure exit.
    let refused = cli(&s.d, &["replay", &s.account, &s.hook, "msg_0"]).await;
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.starts_with("the daemon answered 404"),
        "{}",
        refused.stderr
    );

    // trigger: KAZOO's sample event, through the daemon, to the account's hook.
    let triggered = cli(
        &s.d,
        &["trigger", "channel_create", "--account", &s.account],
    )
    .await;
    assert_eq!(triggered.code, 0, "{}", triggered.stderr);
    assert_eq!(
        triggered.stdout,
        format!(
            "sent channel_create for account {}: 1 deliveries\n",
            s.account
        )
    );
    let got = s.rx.wait_for("/flaky", 5).await.remove(4);
    assert!(
        got.body.contains("hook_event=channel_create"),
        "{}",
        got.body
    );
    let unknown = cli(&s.d, &["trigger", "no_such_event", "--account", &s.account]).await;
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("missed_call"), "{}", unknown.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_daemon_or_a_bad_key_is_one_line_and_a_failure() {
    let d = Daemon::start();
    let bad_key = cli(&d, &["--api-key", "nope", "failure-status"]).await;
    assert_eq!(bad_key.code, 1);
    assert_eq!(bad_key.stderr.lines().count(), 1, "{}", bad_key.stderr);
    assert!(
        bad_key.stderr.contains("refused the api key"),
        "{}",
        bad_key.stderr
    );

    // The master key given by hand works as the one read from the store does.
    let given = cli(&d, &["--api-key", MASTER_KEY, "failure-status"]).await;
    assert_eq!(given.code, 0, "{}", given.stderr);

    // A port nothing listens on (the daemon's own, once it is gone).
    let base = d.base.clone();
    let dir = d.data_dir.clone();
    let _kept = d.stop();
    let args = ["--api", &base, "--api-key", MASTER_KEY, "failure-status"];
    let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
    all.extend(["--data-dir".into(), dir.into_os_string()]);
    let gone = webhooks_cli(all).await;
    let stderr = gone.stderr;
    assert_eq!(gone.code, 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("cannot reach the daemon at {base}")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_commands_run_beside_a_running_daemon_and_it_follows_them() {
    let s = setup().await;
    let table = cli(&s.d, &["hooks-configured", &s.account]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains(&s.rx.url("/flaky")),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.ends_with("found 1 webhooks\n"),
        "{}",
        table.stdout
    );
    let listed = cli(&s.d, &["hooks-configured", "--json"]).await;
    let hooks: Value = serde_json::from_str(&listed.stdout).expect(&listed.stdout);
    assert_eq!(hooks[0]["id"], json!(s.hook));

    let set = cli(&s.d, &["set-disable-threshold", "7"]).await;
    assert_eq!(
        set.stdout,
        "set default count of failed attempts to disable hook to 7\n"
    );
    let set = cli(&s.d, &["set-failure-expiry", &s.account, "90000"]).await;
    assert_eq!(
        set.stdout,
        format!(
            "set default expiry for failure attempts to 90000ms on account {}\n",
            s.account
        )
    );
    let bad = cli(&s.d, &["set-failure-expiry", "soon"]).await;
    assert_eq!(
        (bad.code, bad.stderr.as_str()),
        (
            1,
            "error in expiry time, must be an integer (milliseconds)\n"
        )
    );

    // A receiver that answers 410 Gone has the daemon switch the hook off at once ...
    s.rx.answer("/flaky", Answer::Status(410));
    s.fail_calls("gone", 1).await;
    let hook_path = format!("/v2/accounts/{}/webhooks/{}", s.account, s.hook);
    for _ in 0..200 {
        if s.master.get(&hook_path).await.data()["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.master.get(&hook_path).await.data()["enabled"], false);
    // ... `enable-account-hooks` switches it back on in the store, and the daemon follows.
    let enabled = cli(&s.d, &["enable-account-hooks", &s.account]).await;
    assert_eq!(
        enabled.stdout,
        format!("re-enabled 1 hooks\nIDs: {}\n", s.hook)
    );
    s.rx.answer("/flaky", Answer::Status(200));
    let mut arrived = false;
    for i in 0..100 {
        let mut event = channel_create(&s.account);
        event["Call-ID"] = json!(format!("back-{i}"));
        s.master.send("POST", "/v2/events", Some(event)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if s.rx.received_at("/flaky").len() > 1 {
            arrived = true;
            break;
        }
    }
    assert!(arrived, "the daemon never fired the re-enabled hook");
    let tree = cli(&s.d, &["enable-descendant-hooks", &s.account]).await;
    assert_eq!(
        tree.stdout,
        format!(
            "## checking account {} for hooks to enable ##\nno hooks to re-enable\n",
            s.account
        )
    );

    // The daemon wrote each module's definition at start: a reset finds and rewrites them.
    let one = cli(&s.d, &["reset-hook-definition", "parking"]).await;
    assert_eq!(
        one.stdout, "reinitialized hooks: webhooks_parking\n",
        "{}",
        one.stderr
    );
    let started = cli(&s.d, &["start-module", "webhooks_object"]).await;
    assert_eq!(
        started.stdout, "started module webhooks_object\n",
        "{}",
        started.stderr
    );
    let all = cli(&s.d, &["reset-hook-definitions"]).await;
    assert_eq!(all.code, 0, "{}", all.stderr);
    assert!(
        all.stdout.contains("webhooks_channel_create, "),
        "{}",
        all.stdout
    );

    // The embedded store has no views to register: one line, a failure exit.
    let views = cli(&s.d, &["register-views"]).await;
    assert_eq!(views.code, 1);
    assert!(
        views.stderr.contains("register-views is for --couchdb-url"),
        "{}",
        views.stderr
    );
}
