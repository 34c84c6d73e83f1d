//! Issue 14's holes in the API, each pinned against the real daemon: connections that never
//! close, quotas, the body limit, errors outside crossbar's envelope, account disabling, token
//! lifetimes, event batches, and what a deleted account leaves behind.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{channel_create, Daemon};
use serde_json::{json, Value};
use webhooks_testkit::Receiver;

/// Longest any test waits for the daemon to close a connection it should close: far beyond
/// the configured timeouts (a few hundred milliseconds), far below the 30 s hyper allowed.
const CLOSE_BOUND: Duration = Duration::from_secs(10);

fn connect(d: &Daemon) -> TcpStream {
    let s = TcpStream::connect(d.base.trim_start_matches("http://")).expect("connect");
    s.set_read_timeout(Some(CLOSE_BOUND)).unwrap();
    s
}

/// Reads until the daemon closes the connection; everything it sent. Panics if the connection
/// is still open after `CLOSE_BOUND`.
fn read_until_closed(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "connection still open after {CLOSE_BOUND:?} ({e}); read so far: {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads one response to `GET /v2/health` (its body is small and ends the JSON object).
fn read_response(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\"success\"") {
        let n = s.read(&mut buf).expect("a response");
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

const HEALTH: &[u8] = b"GET /v2/health HTTP/1.1\r\nHost: test\r\n\r\n";

// ---- connections -------------------------------------------------------------------------------

#[test]
fn a_request_head_that_never_ends_is_cut_off() {
    let d = Daemon::start_with(&[
        "--header-read-timeout-ms",
        "300",
        "--idle-timeout-ms",
        "60000",
    ]);
    let mut s = connect(&d);
    s.write_all(b"GET /v2/health HTTP/1.1\r\nHost: test\r\n")
        .unwrap();
    read_until_closed(&mut s);
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let d = Daemon::start_with(&["--idle-timeout-ms", "300"]);
    let mut s = connect(&d);
    s.write_all(HEALTH).unwrap();
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200"));
    read_until_closed(&mut s);
}

#[test]
fn an_idle_connection_answers_again_within_its_idle_timeout() {
    // The head timeout is short and the idle one long: waiting between requests is idle time,
    // not a slow head.
    let d = Daemon::start_with(&[
        "--header-read-timeout-ms",
        "200",
        "--idle-timeout-ms",
        "5000",
    ]);
    let mut s = connect(&d);
    s.write_all(HEALTH).unwrap();
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200"));
    std::thread::sleep(Duration::from_millis(800));
    s.write_all(HEALTH).unwrap();
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200"));
}

#[test]
fn a_request_body_that_never_ends_is_answered_408_and_closed() {
    let d = Daemon::start_with(&["--body-timeout-ms", "300"]);
    let mut s = connect(&d);
    s.write_all(
        b"PUT /v2/api_auth HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"data\":",
    )
    .unwrap();
    let got = read_until_closed(&mut s);
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("\"status\":\"error\""), "{got}");
}

#[test]
fn connections_past_the_cap_wait_for_a_free_slot() {
    let d = Daemon::start_with(&["--max-connections", "1"]);
    let mut first = connect(&d);
    first.write_all(HEALTH).unwrap();
    assert!(read_response(&mut first).starts_with("HTTP/1.1 200"));
    // `first` holds the only slot (keep-alive): the second is not served meanwhile.
    let mut second = connect(&d);
    second.write_all(HEALTH).unwrap();
    second
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    match second.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("served past the connection cap: {other:?}"),
    }
    drop(first);
    second.set_read_timeout(Some(CLOSE_BOUND)).unwrap();
    assert!(read_response(&mut second).starts_with("HTTP/1.1 200"));
}

// ---- small ones --------------------------------------------------------------------------------

/// An event no module handles: accepted (and dropped), whatever its size.
fn padded_event(bytes: usize) -> Value {
    json!({"Event-Category": "nobody", "Event-Name": "nothing", "pad": "x".repeat(bytes)})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_over_two_mib_follow_max_body_bytes() {
    let limit = 4 * 1024 * 1024;
    let d = Daemon::start_with(&["--max-body-bytes", &limit.to_string()]);
    let (master, _) = d.master().await;
    let r = master
        .send("POST", "/v2/events", Some(padded_event(3 * 1024 * 1024)))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body["data"]);
    let r = master
        .send("POST", "/v2/events", Some(padded_event(5 * 1024 * 1024)))
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.body["data"]["file"]["maxSize"]["target"], limit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_id_that_is_not_utf8_gets_a_crossbar_error() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let r = master
        .get(&format!("/v2/accounts/{root}/webhooks/%ff%fe"))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["status"], "error");
    assert_eq!(r.body["error"], "400");
    assert!(r.body["request_id"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_an_account_refuses_its_tokens_and_api_key() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let child = master.create_account(&root, "tenant").await;
    let key = master.get(&format!("/v2/accounts/{child}/api_key")).await;
    let key = key.data()["api_key"].as_str().unwrap().to_owned();
    let mut tenant = d.client();
    tenant.login(&key).await;
    let own = format!("/v2/accounts/{child}");
    assert_eq!(tenant.get(&own).await.status, 200);
    // A token cannot switch its own account off.
    assert_eq!(
        tenant.patch(&own, json!({"enabled": false})).await.status,
        403
    );

    let r = master.patch(&own, json!({"enabled": false})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.data()["enabled"], false);
    assert_eq!(tenant.get(&own).await.status, 401);
    let login = d
        .client()
        .send(
            "PUT",
            "/v2/api_auth",
            Some(json!({"data": {"api_key": key}})),
        )
        .await;
    assert_eq!(login.status, 401);

    let r = master.patch(&own, json!({"enabled": true})).await;
    assert_eq!(r.data()["enabled"], true);
    assert_eq!(tenant.get(&own).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_token_ttl_does_not_make_tokens_born_expired() {
    let d = Daemon::start_with(&["--token-ttl-secs", &u64::MAX.to_string()]);
    let (master, root) = d.master().await;
    let r = master.get(&format!("/v2/accounts/{root}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_an_invalid_event_dispatches_none_of_it() {
    let rx = Receiver::start_on("127.0.0.2:0").await;
    let d = Daemon::start();
    let (master, root) = d.master().await;
    master
        .create_hook(
            &root,
            json!({"name": "n", "uri": rx.url("/batch"), "hook": "channel_create", "format": "json"}),
        )
        .await;
    let event = channel_create(&root);
    let invalid = json!({"Event-Name": "CHANNEL_CREATE"});
    let r = master
        .send("POST", "/v2/events", Some(json!([event, invalid])))
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.body["data"]["event"]["invalid"]["index"], 1);
    // The valid event alone goes through; had the batch dispatched it, it would arrive twice.
    let r = master
        .send("POST", "/v2/events", Some(json!([event])))
        .await;
    assert_eq!(r.status, 202);
    rx.wait_for("/batch", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.received_at("/batch").len(), 1);
}

// ---- account deletion --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_account_id_is_never_handed_out_again() {
    let d = Daemon::start();
    let (master, root) = d.master().await;
    let chosen = "0123456789abcdef0123456789abcdef";
    let r = master
        .put(
            &format!("/v2/accounts/{root}"),
            json!({"name": "first", "id": chosen}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let key = master.get(&format!("/v2/accounts/{chosen}/api_key")).await;
    let mut old = d.client();
    old.login(key.data()["api_key"].as_str().unwrap()).await;

    assert_eq!(
        master
            .delete(&format!("/v2/accounts/{chosen}"))
            .await
            .status,
        200
    );
    // The deleted account's token is dead at once ...
    assert_eq!(old.get(&format!("/v2/accounts/{chosen}")).await.status, 401);
    // ... and nobody gets the id again, so nothing the deleted account left is inherited.
    let r = master
        .put(
            &format!("/v2/accounts/{root}"),
            json!({"name": "squatter", "id": chosen}),
        )
        .await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(r.body["status"], "error");
    assert_eq!(r.body["message"], "account_id_retired");
    assert_eq!(
        old.get(&format!("/v2/accounts/{chosen}/webhooks/attempts"))
            .await
            .status,
        401
    );
}

// ---- quotas ------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_data_over_the_cap_is_refused() {
    let d = Daemon::start_with(&["--max-custom-data-bytes", "1024"]);
    let (master, root) = d.master().await;
    let path = format!("/v2/accounts/{root}/webhooks");
    let mut big = common::hook("big");
    big["custom_data"] = json!({"k": "x".repeat(2000)});
    let r = master.put(&path, big.clone()).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.data()["custom_data"]["maxSize"]["target"], 1024);

    let mut small = common::hook("small");
    small["custom_data"] = json!({"k": "v"});
    let id = master.create_hook(&root, small).await;
    let r = master
        .patch(
            &format!("{path}/{id}"),
            json!({"custom_data": big["custom_data"]}),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_holds_at_most_max_hooks_per_account() {
    let d = Daemon::start_with(&["--max-hooks-per-account", "2"]);
    let (master, root) = d.master().await;
    let path = format!("/v2/accounts/{root}/webhooks");
    let first = master.create_hook(&root, common::hook("1")).await;
    master.create_hook(&root, common::hook("2")).await;
    let r = master.put(&path, common::hook("3")).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.data()["webhooks"]["maxItems"]["target"], 2);
    // A deleted hook frees its place.
    assert_eq!(master.delete(&format!("{path}/{first}")).await.status, 200);
    master.create_hook(&root, common::hook("3")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_size_is_capped_and_unpaginated_listings_are_bounded() {
    let d = Daemon::start_with(&["--max-page-size", "2"]);
    let (master, root) = d.master().await;
    let path = format!("/v2/accounts/{root}/webhooks");
    for n in ["1", "2"] {
        master.create_hook(&root, common::hook(n)).await;
    }
    let r = master.get(&format!("{path}?page_size=3")).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.data()["page_size"]["maximum"]["target"], 2);
    assert_eq!(master.get(&format!("{path}?page_size=2")).await.status, 200);
    let r = master.get(&format!("{path}?paginate=false")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.data().as_array().unwrap().len(), 2);

    master.create_hook(&root, common::hook("3")).await;
    let r = master.get(&format!("{path}?paginate=false")).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.data()["paginate"]["maximum"]["target"], 2);
    let r = master
        .get(&format!(
            "/v2/accounts/{root}/webhooks/attempts?paginate=false"
        ))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}
