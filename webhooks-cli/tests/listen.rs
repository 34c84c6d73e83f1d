//! `webhooks listen` as a developer runs it: the real binary on a free port of 127.0.0.1, real
//! requests sent from here, and the blocks it prints for them.

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::time::timeout;
use webhooks_core::signature::{signature_header, SigningSecret};

/// How long to wait for the binary before calling it broken: generous for a busy machine, and
/// only ever reached when something is wrong.
const PATIENCE: Duration = Duration::from_secs(20);

/// A running `webhooks listen --port 0`. Dropping it kills the process, also when an assertion
/// panics, so a failing test leaves no receiver behind.
struct Listener {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    /// `http://127.0.0.1:<port>`, read from the first line printed.
    url: String,
}

impl Listener {
    async fn start(args: &[&str]) -> Listener {
        let mut child = Command::new(env!("CARGO_BIN_EXE_webhooks"))
            .args(["listen", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn webhooks listen");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut listener = Listener {
            child,
            stdout: BufReader::new(stdout).lines(),
            url: String::new(),
        };
        let first = listener.line().await;
        let port = first
            .strip_prefix("listening on http://127.0.0.1:")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        listener.url = format!("http://127.0.0.1:{port}");
        listener
    }

    async fn line(&mut self) -> String {
        timeout(PATIENCE, self.stdout.next_line())
            .await
            .expect("a line within the patience")
            .expect("read stdout")
            .expect("stdout still open")
    }

    /// The next request printed, without the empty line that ends it.
    async fn block(&mut self) -> Vec<String> {
        let mut block = Vec::new();
        loop {
            match self.line().await {
                line if line.is_empty() => return block,
                line => block.push(line),
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn has(block: &[String], line: &str) -> bool {
    block.iter().any(|l| l == line)
}

fn unix_now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    i64::try_from(since.as_secs()).expect("seconds")
}

#[tokio::test]
async fn a_form_post_is_printed_decoded_and_answered_200() {
    let mut listener = Listener::start(&[]).await;
    let response = reqwest::Client::new()
        .post(format!("{}/kazoo/channel_create?via=test", listener.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-kazoo-test", "yes")
        .body("account_id=abc&custom_data%5Bfoo%5D=bar+baz%21")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 200);

    let block = listener.block().await;
    let title = &block[0];
    assert!(title.starts_with("#1 "), "{block:#?}");
    assert!(
        title.ends_with(" POST /kazoo/channel_create?via=test"),
        "{block:#?}"
    );
    assert!(has(&block, "  x-kazoo-test: yes"), "{block:#?}");
    assert!(has(&block, "form body:"), "{block:#?}");
    assert!(has(&block, "  account_id = abc"), "{block:#?}");
    assert!(has(&block, "  custom_data[foo] = bar baz!"), "{block:#?}");
    // No secret, no verdict.
    assert!(
        !block.iter().any(|l| l.starts_with("signature")),
        "{block:#?}"
    );
}

#[tokio::test]
async fn the_chosen_status_is_answered_and_json_is_pretty_printed() {
    let mut listener = Listener::start(&["--status", "503"]).await;
    let response = reqwest::Client::new()
        .put(format!("{}/json", listener.url))
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"event":"channel_create","data":{"call_id":"c1"}}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 503);

    let block = listener.block().await;
    assert!(block[0].ends_with(" PUT /json"), "{block:#?}");
    let body = block
        .iter()
        .skip_while(|l| *l != "json body:")
        .map(String::as_str)
        .collect::<Vec<_>>();
    let expected = [
        "json body:",
        "  {",
        r#"    "event": "channel_create","#,
        r#"    "data": {"#,
        r#"      "call_id": "c1""#,
        "    }",
        "  }",
    ];
    assert_eq!(body, expected, "{block:#?}");
}

#[tokio::test]
async fn with_a_secret_each_request_gets_a_signature_verdict() {
    let secret = SigningSecret::generate();
    let mut listener = Listener::start(&["--secret", &secret.to_text()]).await;
    let client = reqwest::Client::new();
    let body = "account_id=abc&hook_event=channel_create";
    let now = unix_now();
    // As during a key rotation: the receiver's secret signs second.
    let signatures = signature_header(
        [&SigningSecret::generate(), &secret],
        "msg_1",
        now,
        body.as_bytes(),
    );
    let signed = |body: &'static str| {
        client
            .post(format!("{}/signed", listener.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", &signatures)
            .body(body)
    };

    signed(body).send().await.expect("send");
    let sent = signed("account_id=evil&hook_event=channel_create")
        .send()
        .await;
    sent.expect("send");
    let unsigned = client.post(format!("{}/unsigned", listener.url)).body(body);
    unsigned.send().await.expect("send");

    let mut blocks = Vec::new();
    for _ in 0..3 {
        blocks.push(listener.block().await);
    }
    let verdict = |block: &[String]| {
        let lines = block.iter().filter(|l| l.starts_with("signature:"));
        lines.cloned().collect::<Vec<_>>()
    };
    assert_eq!(verdict(&blocks[0]), ["signature: verified"], "{blocks:#?}");
    assert_eq!(
        verdict(&blocks[1]),
        ["signature: INVALID (no signature matches)"],
        "{blocks:#?}"
    );
    assert_eq!(
        verdict(&blocks[2]),
        ["signature: missing (no webhook-signature header)"],
        "{blocks:#?}"
    );
}

#[tokio::test]
async fn bad_arguments_are_refused_with_one_line() {
    for (args, flag) in [
        (["--secret", "not-a-secret"], "--secret"),
        (["--secret", "whsec_c2hvcnQ="], "--secret"),
        (["--status", "1000"], "--status"),
        (["--status", "99"], "--status"),
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_webhooks"))
            .args(["listen", "--port", "0"])
            .args(args)
            .kill_on_drop(true)
            .output();
        let output = timeout(PATIENCE, run)
            .await
            .unwrap_or_else(|_| panic!("{args:?} still running: it was not refused"))
            .expect("run webhooks listen");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        // Refused before binding: no address was announced.
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}
