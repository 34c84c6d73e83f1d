//! A restart loses nothing; a SIGKILL loses nothing that was acknowledged and corrupts nothing.

mod common;

use common::{hook, Daemon};
use serde_json::json;

#[tokio::test]
async fn everything_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_in(tmp.path(), &[]);
    let (master, root) = d.master().await;
    let child = master.create_account(&root, "child").await;
    let id = master
        .create_hook(
            &child,
            json!({"name": "n", "uri": "http://a.b/", "hook": "channel_destroy", "retries": 4}),
        )
        .await;
    let old_token = master.token.clone().unwrap();
    d.stop();

    let d = Daemon::start_in(tmp.path(), &[]);
    let mut c = d.client();
    // Tokens are signed with a stored secret: they outlive a restart.
    c.token = Some(old_token);
    let r = c.get(&format!("/v2/accounts/{child}/webhooks/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["retries"], 4);
    assert_eq!(
        c.get(&format!("/v2/accounts/{root}/children")).await.data()[0]["id"],
        child.as_str()
    );
}

#[tokio::test]
async fn generated_master_key_is_printed_once_and_an_explicit_key_replaces_it() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let tmp = tempfile::tempdir().unwrap();
    let run = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_webhooksd"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(tmp.path())
            .env_remove("WEBHOOKS_MASTER_API_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            let done = line.starts_with("listening on ");
            lines.push(line);
            if done {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        lines
    };
    let first = run();
    let key_line = first
        .iter()
        .find(|l| l.starts_with("master api key"))
        .expect("key printed");
    let key = key_line.rsplit(' ').next().unwrap().to_owned();
    assert_eq!(key.len(), 64);
    let second = run();
    assert!(
        second.iter().all(|l| !l.contains("api key")),
        "printed once: {second:?}"
    );

    let d = Daemon::start_in(tmp.path(), &[]);
    // Daemon::start_in passes the test key, which replaces the stored one; the old one stops working.
    let c = d.client();
    let r = c.put("/v2/api_auth", json!({"api_key": key})).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn sigkill_loses_no_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_in(tmp.path(), &[]);
    let (master, root) = d.master().await;
    // Writers run concurrently; the daemon is killed while they are in flight.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let c = master.clone();
        let root = root.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..200 {
                let mut h = hook(&format!("w{w}-{i}"));
                h["id"] = json!(format!("w{w}-{i}"));
                let Ok(resp) = c
                    .http
                    .put(format!("{}/v2/accounts/{root}/webhooks", c.base))
                    .header("X-Auth-Token", c.token.as_deref().unwrap())
                    .json(&json!({"data": h}))
                    .send()
                    .await
                else {
                    break;
                };
                if resp.status() == 201 {
                    acked.lock().unwrap().push(format!("w{w}-{i}"));
                }
            }
        }));
    }
    // Let some writes land, then kill mid-stream.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while acked.lock().unwrap().len() < 100 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    d.kill();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 100,
        "writes landed before the kill: {}",
        acked.len()
    );

    let d = Daemon::start_in(tmp.path(), &[]);
    let (master, _) = d.master().await;
    let r = master
        .get(&format!("/v2/accounts/{root}/webhooks?paginate=false"))
        .await;
    let stored: std::collections::HashSet<String> = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect();
    for id in &acked {
        assert!(stored.contains(id), "acknowledged hook {id} lost");
    }
}
