//! Live events over websockets against a running daemon, with a real websocket client:
//! blackhole's protocol (subscribe, unsubscribe, ping, its replies and error strings), events
//! posted to the daemon and published through RabbitMQ, Monster UI's own exchange, crossbar's
//! `/v2/websockets` views, and a client that never reads.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(d: &Daemon) -> Ws {
    let url = d.websocket.as_ref().expect("a websocket endpoint");
    tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("websocket connects")
        .0
}

async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::text(message.to_string())).await.unwrap();
}

/// The next text frame, as JSON (waits at most 20 s).
async fn next(ws: &mut Ws) -> Value {
    let deadline = Duration::from_secs(20);
    loop {
        let frame = tokio::time::timeout(deadline, ws.next())
            .await
            .expect("a frame within 20 s")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(text.as_str()).expect("JSON frame");
        }
    }
}

/// Sends a message and returns its reply.
async fn ask(ws: &mut Ws, message: Value) -> Value {
    send(ws, message).await;
    let reply = next(ws).await;
    assert_eq!(reply["action"], "reply", "{reply}");
    reply
}

fn subscribe(token: &str, id: &str, account: &str, binding: &str) -> Value {
    json!({"action": "subscribe", "auth_token": token, "request_id": id,
           "data": {"account_id": account, "binding": binding}})
}

/// A daemon, a customer account under the master, a sibling with its own token.
struct Setup {
    d: Daemon,
    master: Client,
    root: String,
    token: String,
    customer: String,
    sibling_token: String,
    sibling: String,
}

async fn setup_with(extra: &[&str]) -> Setup {
    let d = Daemon::start_with(extra);
    let (master, root) = d.master().await;
    let token = master.token.clone().unwrap();
    let customer = master.create_account(&root, "customer").await;
    let sibling = master.create_account(&root, "sibling").await;
    let key = master.get(&format!("/v2/accounts/{sibling}/api_key")).await;
    let mut other = d.client();
    other.login(key.data()["api_key"].as_str().unwrap()).await;
    Setup {
        d,
        master,
        root,
        token,
        customer,
        sibling_token: other.token.unwrap(),
        sibling,
    }
}

fn call_event(account: &str, call: &str) -> Value {
    let mut e = channel_create(account);
    e["Call-ID"] = json!(call);
    e
}

fn user_created(account: &str) -> Value {
    let mut e = webhooks_modules::sample_events("object").unwrap().remove(0);
    let id = webhooks_core::AccountId::parse(account).unwrap();
    e["Account-ID"] = json!(account);
    e["Database"] = json!(id.db_name().replace('/', "%2F"));
    e
}

impl Setup {
    async fn post(&self, event: Value) {
        let r = self.master.send("POST", "/v2/events", Some(event)).await;
        assert_eq!(r.status, 202, "{:?}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_subscribes_receives_pings_and_unsubscribes() {
    let s = setup_with(&[]).await;
    let mut ws = connect(&s.d).await;
    let reply = ask(
        &mut ws,
        subscribe(&s.token, "s1", &s.customer, "call.CHANNEL_CREATE.*"),
    )
    .await;
    assert_eq!(
        reply,
        json!({"action": "reply", "request_id": "s1", "status": "success",
               "data": {"subscribed": ["call.CHANNEL_CREATE.*"]}})
    );

    s.post(call_event(&s.customer, "call-1@example.com")).await;
    let event = next(&mut ws).await;
    assert_eq!(event["action"], "event");
    assert_eq!(event["subscribed_key"], "call.CHANNEL_CREATE.*");
    assert_eq!(
        event["subscription_key"],
        format!("call.{}.CHANNEL_CREATE.*", s.customer)
    );
    assert_eq!(event["name"], "CHANNEL_CREATE");
    assert_eq!(
        event["routing_key"],
        format!("call.{}.CHANNEL_CREATE.call-1%40example%2Ecom", s.customer)
    );
    // The payload as blackhole normalises it: snake_case keys, envelope headers gone.
    let data = &event["data"];
    assert_eq!(data["call_id"], "call-1@example.com");
    assert_eq!(data["custom_channel_vars"]["account_id"], json!(s.customer));
    assert!(
        data.get("node").is_none() && data.get("Call-ID").is_none(),
        "{data}"
    );

    // A second binding of another module, on the same socket.
    let reply = ask(
        &mut ws,
        subscribe(&s.token, "s2", &s.customer, "object.doc_created.user"),
    )
    .await;
    assert_eq!(
        reply["data"]["subscribed"],
        json!(["call.CHANNEL_CREATE.*", "object.doc_created.user"])
    );
    s.post(user_created(&s.customer)).await;
    let event = next(&mut ws).await;
    assert_eq!(event["subscribed_key"], "object.doc_created.user");
    assert_eq!(event["name"], "doc_created");
    assert_eq!(event["data"]["type"], "user");

    let pong = ask(&mut ws, json!({"action": "ping", "request_id": "p1"})).await;
    assert_eq!(pong["data"], json!({"response": "pong"}));

    let reply = ask(
        &mut ws,
        json!({"action": "unsubscribe", "request_id": "u1",
               "data": {"account_id": s.customer, "binding": "call.CHANNEL_CREATE.*"}}),
    )
    .await;
    assert_eq!(
        reply["data"],
        json!({"unsubscribed": ["call.CHANNEL_CREATE.*"], "subscribed": ["object.doc_created.user"]})
    );
    // Frames are queued in order: the call event, had it been queued, would come first.
    s.post(call_event(&s.customer, "call-2")).await;
    s.post(user_created(&s.customer)).await;
    assert_eq!(
        next(&mut ws).await["subscribed_key"],
        "object.doc_created.user"
    );

    // crossbar's views: the catalogue, and this socket under the account that authenticated it.
    let catalogue = s.master.get("/v2/websockets").await;
    assert!(catalogue.data()["call"]
        .as_array()
        .unwrap()
        .contains(&json!("call.CHANNEL_CREATE.{CALL_ID}")));
    let root = s
        .master
        .get(&format!("/v2/accounts/{}/websockets", s.root))
        .await;
    let sockets = root.data().as_array().unwrap().clone();
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    assert_eq!(sockets[0]["bindings"], json!(["object.doc_created.user"]));
    let id = sockets[0]["websocket_session_id"].as_str().unwrap();
    let one = s
        .master
        .get(&format!("/v2/accounts/{}/websockets/{id}", s.root))
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(one.data()["source"], "127.0.0.1");
    let unknown = s
        .master
        .get(&format!("/v2/accounts/{}/websockets/1.2.3.4:5", s.root))
        .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_events_and_bad_messages_get_blackholes_errors() {
    let s = setup_with(&[]).await;
    let mut ws = connect(&s.d).await;
    let errors = |r: &Value| {
        r["data"]["errors"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    let r = ask(&mut ws, json!({"action": "ping", "request_id": "p"})).await;
    assert_eq!(errors(&r), "authentication token required");
    let r = ask(
        &mut ws,
        subscribe("not-a-token", "s", &s.sibling, "call.*.*"),
    )
    .await;
    assert!(
        errors(&r).starts_with("failed to authenticate token"),
        "{r}"
    );

    // The sibling's token: its own events yes, the customer's (another tree) and `*` no.
    let r = ask(
        &mut ws,
        subscribe(&s.sibling_token, "s", &s.customer, "call.*.*"),
    )
    .await;
    assert_eq!(r["status"], "error");
    assert_eq!(errors(&r), "unauthorized account id");
    let r = ask(&mut ws, subscribe(&s.sibling_token, "s", "*", "call.*.*")).await;
    assert_eq!(errors(&r), "unauthorized wildcard account id");
    let r = ask(
        &mut ws,
        subscribe(&s.sibling_token, "s", &s.sibling, "call.*.*"),
    )
    .await;
    assert_eq!(r["status"], "success", "{r}");
    // The socket stays the sibling's: a later master token changes nothing.
    let r = ask(&mut ws, subscribe(&s.token, "s", &s.customer, "call.*.*")).await;
    assert_eq!(errors(&r), "unauthorized account id");

    // Validation, with blackhole's words.
    let cases = [
        (
            json!({"action": "subscribe", "request_id": "v"}),
            "missing required keys in data object",
        ),
        (
            json!({"action": "subscribe", "data": {"account_id": s.sibling, "bindings": ["call.*.*"]}}),
            "missing required keys : binding",
        ),
        (
            json!({"action": "subscribe", "data": {"account_id": s.sibling, "binding": "call.NOPE.*"}}),
            "event NOPE not supported",
        ),
        (
            json!({"action": "subscribe", "data": {"account_id": s.sibling, "binding": "call.x"}}),
            "invalid format for call subscription : x",
        ),
        (
            json!({"action": "subscribe", "data": {"account_id": s.sibling, "binding": "nothing.here"}}),
            "no available subscriptions to requested binding",
        ),
    ];
    for (message, error) in cases {
        let r = ask(&mut ws, message.clone()).await;
        assert_eq!(errors(&r), error, "{message}");
    }
    // Not JSON: an error reply, and the socket stays open (KAZOO drops the connection).
    ws.send(Message::text("{not json")).await.unwrap();
    let r = next(&mut ws).await;
    assert_eq!(r["status"], "error");
    let r = ask(&mut ws, json!({"action": "ping", "request_id": "after"})).await;
    assert_eq!(r["data"]["response"], "pong");

    // An unsubscribe of what another socket holds cannot cut it off (KAZOO's bug B1).
    let mut other = connect(&s.d).await;
    let r = ask(
        &mut other,
        subscribe(&s.token, "o", &s.customer, "call.CHANNEL_CREATE.*"),
    )
    .await;
    assert_eq!(r["status"], "success");
    let r = ask(
        &mut ws,
        json!({"action": "unsubscribe", "data": {"account_id": s.customer, "binding": "call.CHANNEL_CREATE.*"}}),
    )
    .await;
    assert_eq!(r["status"], "success");
    s.post(call_event(&s.customer, "still-here")).await;
    assert_eq!(next(&mut other).await["data"]["call_id"], "still-here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exchange_of_monster_uis_socket_client_works_and_survives_a_reconnect() {
    let s = setup_with(&[]).await;
    // monster.socket.js: a fresh GUID per request, one binding, the current token; replies
    // matched by request_id, events routed by subscribed_key.
    let guid = |n: u32| format!("{n:08x}-4b5c-4d6e-8f70-0123456789ab");
    let bindings = [
        "call.CHANNEL_CREATE.*",
        "call.CHANNEL_ANSWER.*",
        "call.CHANNEL_DESTROY.*",
    ];
    for round in 0..2 {
        let mut ws = connect(&s.d).await;
        for (i, binding) in bindings.iter().enumerate() {
            let id = guid(round * 10 + i as u32);
            let reply = ask(&mut ws, subscribe(&s.token, &id, &s.customer, binding)).await;
            assert_eq!(reply["request_id"], json!(id));
            assert_eq!(reply["status"], "success", "{reply}");
        }
        for name in ["channel_create", "channel_answer", "channel_destroy"] {
            let mut e = webhooks_modules::sample_events(name).unwrap().remove(0);
            e["Custom-Channel-Vars"]["Account-ID"] = json!(s.customer);
            e["Call-ID"] = json!(format!("{name}-{round}"));
            s.post(e).await;
        }
        let mut routed: Vec<String> = Vec::new();
        for _ in 0..3 {
            let frame = next(&mut ws).await;
            assert_eq!(frame["action"], "event");
            // What the demo app reads.
            assert!(frame["data"]["custom_channel_vars"].is_object());
            routed.push(frame["subscribed_key"].as_str().unwrap().to_owned());
        }
        routed.sort();
        let mut expected: Vec<String> = bindings.iter().map(|b| b.to_string()).collect();
        expected.sort();
        assert_eq!(routed, expected);
        // Monster UI's close and reconnect: the new socket subscribes again from scratch.
        ws.close(None).await.unwrap();
    }
    // An expired or revoked token on reconnect: the prefix Monster UI re-logs in on.
    let mut ws = connect(&s.d).await;
    let r = ask(
        &mut ws,
        subscribe(
            "eyJhbGciOiJIUzI1NiJ9.e30.x",
            &guid(99),
            &s.customer,
            bindings[0],
        ),
    )
    .await;
    assert!(r["data"]["errors"][0]
        .as_str()
        .unwrap()
        .starts_with("failed to authenticate token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_costs_a_bounded_amount_of_memory() {
    let s = setup_with(&[]).await;
    let mut ws = connect(&s.d).await;
    let r = ask(&mut ws, subscribe(&s.token, "s", &s.customer, "call.*.*")).await;
    assert_eq!(r["status"], "success");
    // From here on the client reads nothing.
    let rss = || rss_kib(s.d.pid());
    // Warm up (the allocator's first arenas, the API's buffers), then measure.
    post_batches(&s, 2, 200).await;
    let before = rss();
    post_batches(&s, 40, 200).await;
    let after = rss();
    let metrics = s.d.metrics().await;
    let dropped = metric(&metrics, "webhooks_websockets_frames_dropped_total").unwrap();
    let queued = metric(&metrics, "webhooks_websockets_frames_queued_total").unwrap();
    // 8,400 frames of about 2 KiB (17 MiB) for a socket whose outbox holds 100 (256 KiB at
    // most); what the kernel's socket buffers took is all the rest that got through. Most
    // are dropped, and the daemon grows by a fraction of what the frames would have taken.
    eprintln!(
        "frames queued {queued}, dropped {dropped}; RSS {before} KiB before, {after} KiB after"
    );
    assert_eq!(queued, 8400.0);
    assert!(dropped >= queued / 2.0, "dropped {dropped} of {queued}");
    assert!(
        after.saturating_sub(before) < 8 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    drop(ws);
}

/// Posts `batches` arrays of `size` call events (one request each).
async fn post_batches(s: &Setup, batches: usize, size: usize) {
    for b in 0..batches {
        let events: Vec<Value> = (0..size)
            .map(|i| call_event(&s.customer, &format!("slow-{b}-{i}")))
            .collect();
        let r = s
            .master
            .send("POST", "/v2/events", Some(Value::Array(events)))
            .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_through_rabbitmq_reach_the_sockets_of_every_node() {
    let vhost = webhooks_testkit::rabbitmq::Vhost::create("websockets").await;
    let a = setup_with(&["--amqp-url", &vhost.url(), "--node-name", "webhooksd@a"]).await;
    let tmp = tempfile::tempdir().unwrap();
    // Node B shares nothing with A but the broker: its socket authenticates on its own store.
    let b = Daemon::start_in(
        tmp.path(),
        &["--amqp-url", &vhost.url(), "--node-name", "webhooksd@b"],
    );
    let (b_master, _) = b.master().await;
    let b_token = b_master.token.clone().unwrap();
    let mut on_a = connect(&a.d).await;
    let mut on_b = connect(&b).await;
    let r = ask(
        &mut on_a,
        subscribe(&a.token, "a", &a.customer, "call.CHANNEL_CREATE.*"),
    )
    .await;
    assert_eq!(r["status"], "success");
    let r = ask(
        &mut on_b,
        subscribe(&b_token, "b", "*", "call.CHANNEL_CREATE.*"),
    )
    .await;
    assert_eq!(r["status"], "success", "{r}");
    let kazoo = Kazoo::connect(&vhost).await;
    // The subscribe replies before the node's queue is bound (as in KAZOO): publish until the
    // first frame shows the binding is there, then count from a fresh call.
    let mut n = 0;
    let first = loop {
        kazoo
            .publish(&call_event(&a.customer, &format!("warm-{n}")))
            .await;
        n += 1;
        if let Ok(frame) = tokio::time::timeout(Duration::from_millis(200), next(&mut on_a)).await {
            break frame;
        }
        assert!(n < 100, "no event reached the socket on node A");
    };
    assert_eq!(first["subscribed_key"], "call.CHANNEL_CREATE.*");
    kazoo
        .publish(&call_event(&a.customer, "through-the-broker"))
        .await;
    // Both nodes' sockets see it, whichever node the shared queue gave it to.
    for ws in [&mut on_a, &mut on_b] {
        loop {
            let frame = next(ws).await;
            if frame["data"]["call_id"] == "through-the-broker" {
                assert_eq!(
                    frame["routing_key"],
                    format!("call.{}.CHANNEL_CREATE.through-the-broker", a.customer)
                );
                break;
            }
        }
    }
    // Object events come on the configuration exchange.
    let r = ask(
        &mut on_a,
        subscribe(&a.token, "o", &a.customer, "object.doc_created.user"),
    )
    .await;
    assert_eq!(r["status"], "success");
    let mut seen = false;
    for _ in 0..100 {
        kazoo.publish(&user_created(&a.customer)).await;
        if let Ok(frame) = tokio::time::timeout(Duration::from_millis(200), next(&mut on_a)).await {
            if frame["subscribed_key"] == "object.doc_created.user" {
                seen = true;
                break;
            }
        }
    }
    assert!(seen, "no object event reached the socket");
    let metrics = a.d.metrics().await;
    assert!(
        metric(&metrics, "webhooks_websockets_node_bindings").unwrap() >= 2.0,
        "{metrics}"
    );
    let _ = (a.sibling, b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limits_of_system_config_blackhole_hold() {
    use webhooks_core::store::ConfigStore;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = webhooks_store::EmbeddedStore::open(dir.path()).unwrap();
        let limits = json!({"max_connections_per_ip": 2, "max_bindings_per_socket": 2,
                            "max_bucket_tokens": 6, "tokens_fill_rate": 1});
        store
            .save_system_config("blackhole", webhooks_core::Doc::from_value(limits).unwrap())
            .await
            .unwrap();
    }
    let d = Daemon::start_in(dir.path(), &[]);
    let (master, root) = d.master().await;
    let token = master.token.clone().unwrap();
    let url = d.websocket.clone().unwrap();

    // A sub-protocol is refused with 400, as blackhole refuses it.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            url.as_str(),
        )
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "chat".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        other => panic!("expected a 400, got {other:?}"),
    }

    // Two sockets from this address, and the third is a 429.
    let mut first = connect(&d).await;
    let _second = connect(&d).await;
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 429),
        other => panic!("expected a 429, got {other:?}"),
    }

    // Two bindings a socket.
    for (i, binding) in ["call.CHANNEL_CREATE.*", "call.CHANNEL_ANSWER.*"]
        .iter()
        .enumerate()
    {
        let r = ask(
            &mut first,
            subscribe(&token, &format!("b{i}"), &root, binding),
        )
        .await;
        assert_eq!(r["status"], "success", "{r}");
    }
    let r = ask(
        &mut first,
        subscribe(&token, "b3", &root, "call.CHANNEL_DESTROY.*"),
    )
    .await;
    assert_eq!(
        r["data"]["errors"][0],
        "too many bindings on this socket (at most 2)"
    );

    // The bucket held 6 and three were taken: a burst runs dry, with blackhole's words.
    let mut refused = None;
    for i in 0..10 {
        let r = ask(
            &mut first,
            json!({"action": "ping", "request_id": format!("p{i}")}),
        )
        .await;
        if r["status"] == "error" {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("the rate limit refused a message");
    let error = refused["data"]["errors"][0].as_str().unwrap();
    assert!(
        error.starts_with("rate limiting threshold hit for 127.0.0.1:") && error.ends_with('!'),
        "{error}"
    );
    let metrics = d.metrics().await;
    assert_eq!(
        metric(&metrics, "webhooks_websockets_connections_refused_total"),
        Some(1.0)
    );
    assert!(metric(&metrics, "webhooks_websockets_messages_rate_limited_total").unwrap() >= 1.0);
    assert_eq!(metric(&metrics, "webhooks_websockets_open"), Some(2.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_try_streams_to_delivery_subscribers() {
    let s = setup_with(&[]).await;
    let rx = webhooks_testkit::Receiver::start_on("127.0.0.2:0").await;
    rx.answer("/in", webhooks_testkit::Answer::Sequence(vec![503, 200]));
    let hook = s
        .master
        .create_hook(
            &s.customer,
            json!({"name": "tail", "uri": rx.url("/in"), "hook": "channel_create", "retries": 2}),
        )
        .await;
    let mut ws = connect(&s.d).await;
    let r = ask(
        &mut ws,
        subscribe(&s.token, "d", &s.customer, "webhooks.delivery.*"),
    )
    .await;
    assert_eq!(r["status"], "success", "{r}");
    s.post(call_event(&s.customer, "tailed")).await;
    // A failed try, then its retry succeeding: two frames, in that order.
    let first = next(&mut ws).await;
    let second = next(&mut ws).await;
    for frame in [&first, &second] {
        assert_eq!(frame["subscribed_key"], "webhooks.delivery.*");
        assert_eq!(frame["name"], "delivery");
        assert_eq!(
            frame["routing_key"],
            format!("webhooks.delivery.{}.{hook}", s.customer)
        );
        assert_eq!(frame["data"]["hook_id"], json!(hook));
        assert_eq!(frame["data"]["uri"], json!(rx.url("/in")));
        assert!(frame["data"]["latency_ms"].is_u64(), "{frame}");
    }
    let (a, b) = (&first["data"], &second["data"]);
    assert_eq!(
        (
            a["result"].as_str(),
            a["status"].as_u64(),
            a["last"].as_bool()
        ),
        (Some("failure"), Some(503), Some(false))
    );
    assert_eq!(
        (
            b["result"].as_str(),
            b["status"].as_u64(),
            b["last"].as_bool()
        ),
        (Some("success"), Some(200), Some(true))
    );
    assert_eq!(a["webhook_id"], b["webhook_id"]);
    assert_eq!(
        (a["attempt"].as_u64(), b["attempt"].as_u64()),
        (Some(1), Some(2))
    );
    // Another tree's user may not watch the customer's deliveries.
    let mut other = connect(&s.d).await;
    let r = ask(
        &mut other,
        subscribe(&s.sibling_token, "x", &s.customer, "webhooks.delivery.*"),
    )
    .await;
    assert_eq!(r["data"]["errors"][0], "unauthorized account id", "{r}");
}
