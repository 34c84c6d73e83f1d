//! A window into the daemon: `/metrics` moves with what the engine does and passes
//! Prometheus' own parser (`promtool`), `/healthz` and `/readyz` (which follows the broker
//! connection, cut and restored through a proxy so the shared RabbitMQ keeps running for the
//! other tests), and `--log-format json` lines carrying the request and delivery ids.

mod common;

use std::time::Duration;

use common::{channel_create, metric, Daemon};
use serde_json::{json, Value};
use webhooks_testkit::proxy::Proxy;
use webhooks_testkit::rabbitmq::{Vhost, BROKER};
use webhooks_testkit::{Answer, Receiver};

/// The receiver listens on 127.0.0.2: KAZOO's default refusal list blocks 127.0.0.1 only.
async fn receiver() -> Receiver {
    Receiver::start_on("127.0.0.2:0").await
}

/// Scrapes until `series` reaches `at_least` (bounded: 10 s); returns the last scrape.
async fn scrape_until(d: &Daemon, series: &str, at_least: f64) -> String {
    let mut text = String::new();
    for _ in 0..200 {
        text = d.metrics().await;
        if metric(&text, series).unwrap_or(0.0) >= at_least {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{series} never reached {at_least}:\n{text}");
}

/// `promtool check metrics` on `text`: `None` when promtool is not installed, else its
/// success and output.
fn promtool_check(text: &str) -> Option<(bool, String)> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), said))
}

const SUCCEEDED: &str = r#"webhooks_deliveries_total{result="succeeded",status_class="2xx"}"#;
const HOOKS_ROUTE: &str = r#"webhooks_api_requests_total{route="/v2/accounts/{account_id}/webhooks",method="PUT",status="201"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_deliveries_and_pass_promtool() {
    let rx = receiver().await;
    rx.answer("/flaky", Answer::Sequence(vec![500, 200]));
    let d = Daemon::start_with(&["--retry-delay-ms", "100"]);
    let before = d.metrics().await;
    assert_eq!(metric(&before, SUCCEEDED), Some(0.0), "{before}");
    assert_eq!(
        metric(&before, "webhooks_delivery_latency_seconds_count"),
        Some(0.0)
    );
    assert!(metric(&before, "process_resident_memory_bytes").unwrap() > 1e6);
    // No broker configured: no AMQP series.
    assert!(!before.contains("webhooks_amqp_"), "{before}");

    let (master, root) = d.master().await;
    for path in ["/calls", "/flaky"] {
        master
            .create_hook(
                &root,
                json!({"name": path, "uri": rx.url(path), "hook": "channel_create", "format": "json", "retries": 3}),
            )
            .await;
    }
    let r = master
        .send("POST", "/v2/events", Some(channel_create(&root)))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    rx.wait_for("/calls", 1).await;
    rx.wait_for("/flaky", 2).await;

    // Both deliveries succeed, the flaky one on its retry.
    let after = scrape_until(&d, SUCCEEDED, 2.0).await;
    let after = if metric(&after, "webhooks_delivery_latency_seconds_count") == Some(3.0) {
        after
    } else {
        scrape_until(&d, "webhooks_delivery_latency_seconds_count", 3.0).await
    };
    assert_eq!(metric(&after, SUCCEEDED), Some(2.0), "{after}");
    assert_eq!(
        metric(&after, "webhooks_delivery_tries_failed_total"),
        Some(1.0)
    );
    assert_eq!(
        metric(&after, "webhooks_retries_scheduled_total"),
        Some(1.0)
    );
    assert_eq!(metric(&after, "webhooks_events_received_total"), Some(1.0));
    assert_eq!(
        metric(&after, "webhooks_deliveries_dispatched_total"),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &after,
            r#"webhooks_deliveries_total{result="failed",status_class="5xx"}"#
        ),
        Some(0.0)
    );
    // Every try's latency: the two first tries from the event's acceptance, the retry from
    // its due time.
    assert_eq!(
        metric(&after, "webhooks_delivery_latency_seconds_count"),
        Some(3.0)
    );
    assert!(
        metric(
            &after,
            r#"webhooks_delivery_latency_seconds_bucket{le="+Inf"}"#
        ) == Some(3.0)
    );
    assert_eq!(metric(&after, "webhooks_destinations_stalled"), Some(0.0));
    // The failed try was recorded as an attempt document, in one timed batch at least.
    let after = scrape_until(&d, "webhooks_attempts_written_total", 1.0).await;
    assert!(metric(&after, "webhooks_attempt_write_duration_seconds_count").unwrap() >= 1.0);
    // API requests by route template, never by raw path (no account id in any label).
    assert_eq!(metric(&after, HOOKS_ROUTE), Some(2.0), "{after}");
    assert!(!after.contains(&root), "a raw path leaked into a label");
    for state in ["queued", "in_flight", "retry_waiting"] {
        let series = format!(r#"webhooks_deliveries_pending{{state="{state}"}}"#);
        assert_eq!(metric(&after, &series), Some(0.0), "{series}");
    }
    assert_eq!(
        metric(
            &after,
            r#"webhooks_hooks_disabled_total{reason="failures"}"#
        ),
        Some(0.0)
    );

    match promtool_check(&after) {
        None => eprintln!(
            "SKIPPED the promtool check: `promtool` is not installed (apt-get install prometheus; scripts/test installs it)"
        ),
        Some((ok, said)) => assert!(ok, "promtool check metrics failed:\n{said}\n{after}"),
    }
}

async fn status_of(d: &Daemon, path: &str) -> (u16, Value) {
    let r = d.client().get(path).await;
    (r.status, r.body)
}

/// Polls `path` until it answers `want` (bounded: 30 s); returns the body.
async fn wait_status(d: &Daemon, path: &str, want: u16) -> Value {
    let mut last = (0, Value::Null);
    for _ in 0..300 {
        last = status_of(d, path).await;
        if last.0 == want {
            return last.1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never answered {want}; last {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_broker_connection() {
    let vhost = Vhost::create("readyz").await;
    let proxy = Proxy::start(BROKER.parse().unwrap()).await;
    let url = vhost.url().replace(BROKER, &proxy.addr().to_string());
    let d = Daemon::start_with(&["--amqp-url", &url]);

    assert_eq!(status_of(&d, "/healthz").await.0, 200);
    assert_eq!(
        wait_status(&d, "/readyz", 200).await,
        json!({"ready": true})
    );
    let text = d.metrics().await;
    assert_eq!(
        metric(&text, "webhooks_amqp_connected"),
        Some(1.0),
        "{text}"
    );

    proxy.close().await;
    let body = wait_status(&d, "/readyz", 503).await;
    assert_eq!(body["ready"], false);
    assert_eq!(body["reasons"], json!(["broker connection down"]), "{body}");
    // Alive all the same.
    assert_eq!(status_of(&d, "/healthz").await.0, 200);
    assert_eq!(
        metric(&d.metrics().await, "webhooks_amqp_connected"),
        Some(0.0)
    );

    proxy.open().await;
    wait_status(&d, "/readyz", 200).await;
    let text = d.metrics().await;
    assert!(
        metric(&text, "webhooks_amqp_reconnects_total").unwrap() >= 1.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_ready_without_a_broker_and_unauthenticated() {
    let d = Daemon::start();
    // No token: these three need none.
    assert_eq!(
        status_of(&d, "/healthz").await,
        (200, json!({"status": "ok"}))
    );
    assert_eq!(
        wait_status(&d, "/readyz", 200).await,
        json!({"ready": true})
    );
    let classic = d.metrics().await;
    assert!(classic.contains("# TYPE webhooks_events_received_total counter"));
    // A scraper that asks for OpenMetrics (Prometheus does) gets it.
    let resp = reqwest::Client::new()
        .get(format!("{}/metrics", d.base))
        .header(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let openmetrics = resp.text().await.unwrap();
    assert!(openmetrics.contains("# TYPE webhooks_events_received counter"));
    assert!(openmetrics.ends_with("# EOF\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_request_and_delivery_ids() {
    let rx = receiver().await;
    rx.answer("/broken", Answer::Status(500));
    let (d, logs) = Daemon::start_logging(
        &["--log-format", "json"],
        "warn,webhooks_api=debug,webhooks_engine=debug",
    );
    let (master, root) = d.master().await;
    let hook = master
        .create_hook(
            &root,
            json!({"name": "broken", "uri": rx.url("/broken"), "hook": "channel_create", "format": "json", "retries": 1}),
        )
        .await;

    // A request id the client chose comes back and names the request's log lines.
    let resp = reqwest::Client::new()
        .get(format!("{}/v2/webhooks", d.base))
        .header("X-Request-ID", "obs-test-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "obs-test-42");
    // One the client did not give is made up, and echoed.
    let resp = reqwest::get(format!("{}/v2/webhooks", d.base))
        .await
        .unwrap();
    assert!(!resp.headers()["x-request-id"].is_empty());

    let r = master
        .send("POST", "/v2/events", Some(channel_create(&root)))
        .await;
    assert_eq!(r.status, 202);
    rx.wait_for("/broken", 1).await;

    let api_line = logs
        .wait_for(Duration::from_secs(10), |l| l.contains("obs-test-42"))
        .await
        .expect("no log line names the request id");
    let api: Value = serde_json::from_str(&api_line).expect("a JSON line");
    assert_eq!(api["span"]["request_id"], "obs-test-42", "{api}");
    assert_eq!(api["span"]["route"], "/v2/webhooks", "{api}");

    let try_line = logs
        .wait_for(Duration::from_secs(10), |l| {
            l.contains("delivery try failed")
        })
        .await
        .expect("no log line about the failed try");
    let tried: Value = serde_json::from_str(&try_line).expect("a JSON line");
    let fields = &tried["fields"];
    assert_eq!(fields["hook"], hook.as_str(), "{tried}");
    assert_eq!(fields["account"], root.as_str(), "{tried}");
    let sent = rx.received_at("/broken").remove(0);
    assert_eq!(
        fields["webhook_id"],
        sent.header("webhook-id").unwrap(),
        "{tried}"
    );

    // Every line is JSON.
    for line in logs.lines() {
        assert!(
            serde_json::from_str::<Value>(&line).is_ok_and(|v| v.is_object()),
            "not a JSON line: {line}"
        );
    }
}
