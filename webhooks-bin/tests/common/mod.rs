//! A running `webhooksd` for integration tests: a real process on a free loopback port with
//! its own data directory, driven over HTTP.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

pub const MASTER_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000042";

pub struct Daemon {
    child: Child,
    pub base: String,
    /// `ws://<addr>/` of its websocket endpoint, when it has one.
    pub websocket: Option<String>,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Daemon {
    /// Starts a daemon on a fresh data directory with a known master key.
    pub fn start() -> Daemon {
        Daemon::start_with(&[])
    }

    /// Starts a daemon on a fresh data directory with extra flags.
    pub fn start_with(extra: &[&str]) -> Daemon {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut d = Daemon::start_in(&dir, extra);
        d._tmp = Some(tmp);
        d
    }

    /// Starts a daemon on `dir` (kept by the caller, for restart tests) with extra flags.
    pub fn start_in(dir: &Path, extra: &[&str]) -> Daemon {
        let mut cmd = daemon_command(dir, extra);
        cmd.env("RUST_LOG", "warn").stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn webhooksd");
        let (base, websocket) = wait_until_listening(&mut child);
        Daemon {
            child,
            base,
            websocket,
            data_dir: dir.to_path_buf(),
            _tmp: None,
        }
    }

    /// The daemon's process id (to read its memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown code runs. Returns the data directory's guard, if the daemon
    /// owned one, so the caller can inspect or restart on it.
    pub fn kill(mut self) -> Option<tempfile::TempDir> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self._tmp.take()
    }

    /// SIGTERM and wait for a clean exit; returns the data directory's guard as `kill` does.
    pub fn stop(mut self) -> Option<tempfile::TempDir> {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        self._tmp.take()
    }

    /// Sends SIGTERM now; returns a handle to wait for the exit with.
    pub fn terminate(self) -> Exiting {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        Exiting {
            signalled: std::time::Instant::now(),
            daemon: self,
        }
    }

    pub fn client(&self) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: self.base.clone(),
            token: None,
        }
    }

    /// A client authenticated as the master account.
    pub async fn master(&self) -> (Client, String) {
        let mut c = self.client();
        let account = c.login(MASTER_KEY).await;
        (c, account)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A daemon that was sent SIGTERM.
pub struct Exiting {
    pub signalled: std::time::Instant,
    daemon: Daemon,
}

impl Exiting {
    /// Sends SIGTERM again.
    pub fn terminate_again(&self) {
        let _ = Command::new("kill")
            .arg(self.daemon.child.id().to_string())
            .status();
    }

    /// Waits up to `patience` for the exit; returns its status and the time from the signal
    /// (`None`: still running, then killed).
    pub fn wait(mut self, patience: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let until = self.signalled + patience;
        while std::time::Instant::now() < until {
            if let Ok(Some(status)) = self.daemon.child.try_wait() {
                return Some((status, self.signalled.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None // dropping the daemon kills it
    }
}

/// A status and a parsed JSON body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
}

#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

impl Client {
    pub async fn login(&mut self, api_key: &str) -> String {
        let r = self
            .send(
                "PUT",
                "/v2/api_auth",
                Some(json!({"data": {"api_key": api_key}})),
            )
            .await;
        assert_eq!(r.status, 201, "api_auth failed: {:?}", r.body);
        self.token = Some(
            r.body["auth_token"]
                .as_str()
                .expect("auth_token")
                .to_owned(),
        );
        r.data()["account_id"].as_str().unwrap().to_owned()
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.send_raw(method, path, body.map(|b| b.to_string().into_bytes()))
            .await
    }

    pub async fn send_raw(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.header("X-Auth-Token", t);
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let resp = req
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("non-JSON body: {}", String::from_utf8_lossy(&bytes)))
        };
        Resp {
            status,
            body,
            headers,
        }
    }

    /// POSTs a JSON body; the status, or `None` when no answer came (the daemon died).
    pub async fn try_post(&self, path: &str, body: &Value) -> Option<u16> {
        let mut req = self.http.post(format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.header("X-Auth-Token", t);
        }
        let resp = req
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        resp.bytes().await.ok().map(|_| status)
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None).await
    }

    pub async fn put(&self, path: &str, data: Value) -> Resp {
        self.send("PUT", path, Some(json!({ "data": data }))).await
    }

    pub async fn post(&self, path: &str, data: Value) -> Resp {
        self.send("POST", path, Some(json!({ "data": data }))).await
    }

    pub async fn patch(&self, path: &str, data: Value) -> Resp {
        self.send("PATCH", path, Some(json!({ "data": data })))
            .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, None).await
    }

    /// Creates a child account of `parent`; returns its id.
    pub async fn create_account(&self, parent: &str, name: &str) -> String {
        let r = self
            .put(&format!("/v2/accounts/{parent}"), json!({ "name": name }))
            .await;
        assert_eq!(r.status, 201, "create account: {:?}", r.body);
        r.data()["id"].as_str().unwrap().to_owned()
    }

    /// Creates a hook; returns its id.
    pub async fn create_hook(&self, account: &str, hook: Value) -> String {
        let r = self
            .put(&format!("/v2/accounts/{account}/webhooks"), hook)
            .await;
        assert_eq!(r.status, 201, "create hook: {:?}", r.body);
        r.data()["id"].as_str().unwrap().to_owned()
    }
}

/// A minimal valid hook.
/// What arrived at `path` of `rx`: each payload's `call_id` with the `webhook-id`s it came
/// with (a receiver that deduplicates by id sees each call once per id).
pub fn ids_by_call(
    rx: &webhooks_testkit::Receiver,
    path: &str,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut by_call = std::collections::BTreeMap::<_, std::collections::BTreeSet<_>>::new();
    for r in rx.received_at(path) {
        let body: Value = serde_json::from_str(&r.body).unwrap();
        let call = body["call_id"].as_str().unwrap().to_owned();
        let id = r.header("webhook-id").unwrap().to_owned();
        by_call.entry(call).or_default().insert(id);
    }
    by_call
}

pub fn hook(name: &str) -> Value {
    json!({"name": name, "uri": "http://my.server.com/calls", "hook": "channel_create"})
}

/// Publishes like KAZOO: JSON on KAZOO's exchanges with KAZOO's routing keys, confirmed.
pub struct Kazoo {
    _connection: lapin::Connection,
    pub channel: lapin::Channel,
}

impl Kazoo {
    pub async fn connect(vhost: &webhooks_testkit::rabbitmq::Vhost) -> Kazoo {
        use lapin::options::ConfirmSelectOptions;
        let connection =
            lapin::Connection::connect(&vhost.url(), lapin::ConnectionProperties::default())
                .await
                .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        Kazoo {
            _connection: connection,
            channel,
        }
    }

    pub async fn publish(&self, event: &Value) {
        let route =
            webhooks_amqp::route_for(&webhooks_core::Event::from_value(event.clone()).unwrap())
                .unwrap();
        let confirm = self
            .channel
            .basic_publish(
                route.exchange.into(),
                route.routing_key.as_str().into(),
                lapin::options::BasicPublishOptions::default(),
                event.to_string().as_bytes(),
                lapin::BasicProperties::default().with_content_type("application/json".into()),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
    }
}

/// What a daemon started with [`Daemon::start_logging`] wrote to stderr, line by line.
#[derive(Clone, Default)]
pub struct Logs(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Logs {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// The first line that satisfies `pred`, waiting for it up to `patience`.
    pub async fn wait_for(
        &self,
        patience: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let until = std::time::Instant::now() + patience;
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| pred(l)) {
                return Some(line);
            }
            if std::time::Instant::now() > until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Daemon {
    /// Starts a daemon on a fresh data directory with extra flags and `RUST_LOG=rust_log`,
    /// keeping every line it logs.
    pub fn start_logging(extra: &[&str], rust_log: &str) -> (Daemon, Logs) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut cmd = daemon_command(tmp.path(), extra);
        cmd.env("RUST_LOG", rust_log).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn webhooksd");
        let logs = Logs::default();
        let stderr = child.stderr.take().expect("stderr");
        let kept = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.0.lock().unwrap().push(line);
            }
        });
        let (base, websocket) = wait_until_listening(&mut child);
        let daemon = Daemon {
            child,
            base,
            websocket,
            data_dir: tmp.path().to_path_buf(),
            _tmp: Some(tmp),
        };
        (daemon, logs)
    }

    /// `GET /metrics`: the text, after checking the status and content type.
    pub async fn metrics(&self) -> String {
        let resp = reqwest::get(format!("{}/metrics", self.base))
            .await
            .expect("GET /metrics");
        assert_eq!(resp.status(), 200);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.contains("text"), "content type {content_type}");
        resp.text().await.expect("metrics body")
    }
}

/// The value of one series (`name{labels}` exactly as exposed, or a bare name) in a
/// Prometheus text exposition; `None` when it is absent.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.split(' ').next().unwrap().parse().expect("a number"))
}

/// `webhooksd` on `dir` with the tests' master key, a free port, stdout piped, and `extra`.
fn daemon_command(dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_webhooksd"));
    cmd.args(["--listen", "127.0.0.1:0", "--master-api-key", MASTER_KEY])
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        // The tests' receivers listen on loopback, which the SSRF guard refuses by default; a
        // test of the guard gives `--allowed-destinations` itself, which wins.
        .env("WEBHOOKS_ALLOWED_DESTINATIONS", "127.0.0.0/8,::1")
        // Every test daemon has a websocket endpoint of its own (KAZOO's 5555 is one port).
        .env("WEBHOOKS_WEBSOCKET_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped());
    cmd
}

/// Reads the daemon's stdout up to `listening on <addr>` and returns its base url; stdout is
/// then drained on a thread so the daemon never blocks on a full pipe.
fn wait_until_listening(child: &mut std::process::Child) -> (String, Option<String>) {
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut websocket = None;
    let base = loop {
        let line = lines
            .next()
            .expect("webhooksd exited before listening")
            .expect("read stdout");
        if let Some(addr) = line.strip_prefix("websockets listening on ") {
            websocket = Some(format!("ws://{addr}/"));
        }
        if let Some(addr) = line.strip_prefix("listening on ") {
            break format!("http://{addr}");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (base, websocket)
}

/// KAZOO's CHANNEL_CREATE sample event, for `account`.
pub fn channel_create(account: &str) -> Value {
    let mut e = webhooks_modules::sample_events("channel_create")
        .unwrap()
        .remove(0);
    e["Custom-Channel-Vars"]["Account-ID"] = json!(account);
    e
}

/// What one run of the `webhooks` CLI printed and how it ended.
pub struct CliRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `webhooks` CLI (built beside `webhooksd` by the workspace's test run) with `args`,
/// without the environment's `WEBHOOKS_*` settings.
pub async fn webhooks_cli(args: Vec<std::ffi::OsString>) -> CliRun {
    let binary = Path::new(env!("CARGO_BIN_EXE_webhooksd")).with_file_name("webhooks");
    assert!(
        binary.is_file(),
        "{} is missing: run the tests for the whole workspace (scripts/test)",
        binary.display()
    );
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .env_remove("WEBHOOKS_API")
        .env_remove("WEBHOOKS_API_KEY")
        .env_remove("WEBHOOKS_DATA_DIR")
        .env_remove("WEBHOOKS_COUCHDB_URL");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run webhooks"))
        .await
        .unwrap();
    CliRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
