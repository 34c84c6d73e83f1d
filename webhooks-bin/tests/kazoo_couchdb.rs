//! `webhooksd --couchdb-url`: the daemon inside a KAZOO cluster, on documents exactly as KAZOO
//! writes them (seeded here over CouchDB's plain HTTP API, on a real PouchDB Server).

mod common;

use std::time::Duration;

use common::{Daemon, Kazoo, MASTER_KEY};
use serde_json::{json, Value};
use webhooks_core::delivery::modb_name;
use webhooks_core::AccountId;
use webhooks_testkit::couchdb::PouchServer;
use webhooks_testkit::{Answer, Receiver};

const MASTER: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f801";
const RESELLER: &str = "2b3c4d5e6f708192a3b4c5d6e7f80192";
const CUSTOMER: &str = "3c4d5e6f708192a3b4c5d6e7f8019203";
const CUSTOMER_KEY: &str = "c0ffee0000000000000000000000000000000000000000000000000000000001";
/// KAZOO's system key id (`system_config/auth` `default.system_key`), and the secrets of the
/// identity signature.
const KID: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const SYSTEM_SECRET: &str = "5ec2e75ec2e75ec2e75ec2e75ec2e75e";
const ACCOUNT_SECRET: &str = "acc05ec2e7acc05ec2e7acc05ec2e7aa";

/// A 2048-bit RSA key in PKCS#1 PEM, as KAZOO stores its system key (made with openssl: the
/// RSA crate is slow to generate one in a debug build).
fn kazoo_private_key() -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .output()
        .expect("openssl genrsa");
    assert!(out.status.success(), "openssl genrsa failed");
    out.stdout
}

/// A token as crossbar's `cb_api_auth` mints one: RS256, `kid` in the header, KAZOO's claims
/// and identity signature.
fn crossbar_token(pem: &[u8], account: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(KID.into());
    let claims = json!({
        "identity_sig": webhooks_api::kazoo_tokens::identity_signature(ACCOUNT_SECRET, SYSTEM_SECRET, account),
        "iss": "kazoo", "account_id": account, "method": "cb_api_auth",
        "exp": webhooks_core::time::now_unix() + 3600,
    });
    use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(std::str::from_utf8(pem).unwrap()).unwrap();
    let key = jsonwebtoken::EncodingKey::from_rsa_der(key.to_pkcs1_der().unwrap().as_bytes());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// The header of a JWT, decoded.
fn jwt_header(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// CouchDB's HTTP API, as KAZOO's own code (or an operator with curl) uses it.
struct Couch {
    http: reqwest::Client,
    url: String,
}

/// A KAZOO database name, encoded for a URL (`account%2Fxx%2Fyy%2Frest`).
fn encoded(name: &str) -> String {
    name.replace('/', "%2F")
}

/// The account's own database, encoded.
fn account_db(id: &str) -> String {
    encoded(&AccountId::parse(id).unwrap().db_name())
}

/// The account's database for this month's attempts (KAZOO's MODB), encoded.
fn modb(id: &str) -> String {
    let account = AccountId::parse(id).unwrap();
    encoded(&modb_name(&account, webhooks_core::time::now_unix()))
}

impl Couch {
    fn new(url: &str) -> Couch {
        Couch {
            http: reqwest::Client::new(),
            url: url.to_owned(),
        }
    }

    async fn create_db(&self, db: &str) {
        let r = self
            .http
            .put(format!("{}/{db}", self.url))
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success() || r.status() == 412,
            "create {db}: {}",
            r.status()
        );
    }

    /// Writes a document (creating or replacing it) and returns its new `_rev`.
    async fn put(&self, db: &str, doc: Value) -> String {
        let id = doc["_id"].as_str().unwrap().replace('/', "%2F");
        let r = self
            .http
            .put(format!("{}/{db}/{id}", self.url))
            .json(&doc)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert!(status.is_success(), "put {db}/{id}: {body}");
        body["rev"].as_str().unwrap().to_owned()
    }

    async fn attach(
        &self,
        db: &str,
        id: &str,
        rev: &str,
        name: &str,
        content_type: &str,
        body: &[u8],
    ) {
        let r = self
            .http
            .put(format!("{}/{db}/{id}/{name}?rev={rev}", self.url))
            .header("content-type", content_type)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "attach {db}/{id}/{name}: {}",
            r.status()
        );
    }

    /// Waits (up to `patience`) until the hook is switched off in `webhooks`.
    async fn wait_disabled(&self, id: &str, patience: Duration) {
        within(patience, "the failing hook to be disabled", || async {
            self.get("webhooks", id).await["enabled"] == false
        })
        .await;
    }

    async fn get(&self, db: &str, id: &str) -> Value {
        let r = self
            .http
            .get(format!("{}/{db}/{id}", self.url))
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }

    async fn rows(&self, db: &str, path: &str) -> Vec<Value> {
        let r = self
            .http
            .get(format!("{}/{db}/{path}", self.url))
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        body["rows"].as_array().cloned().unwrap_or_default()
    }
}

/// An account as KAZOO keeps it: in `accounts` and in its own database.
fn account(id: &str, name: &str, tree: &[&str], api_key: &str) -> Value {
    json!({
        "_id": id, "name": name, "realm": format!("{name}.kazoo.test"),
        "pvt_type": "account", "pvt_tree": tree, "pvt_api_key": api_key,
        "pvt_enabled": true, "pvt_superduper_admin": tree.is_empty(),
        "pvt_account_id": id, "pvt_account_db": account_db(id),
        "pvt_created": 63_800_000_000i64, "pvt_modified": 63_800_000_000i64, "pvt_vsn": "1",
        "pvt_signature_secret": ACCOUNT_SECRET,
    })
}

/// A hook exactly as crossbar writes it (spec §2.1).
fn kazoo_hook(id: &str, owner: &str, uri: &str, retries: u32) -> Value {
    json!({
        "_id": id, "name": id, "uri": uri, "hook": "channel_create", "http_verb": "post",
        "retries": retries, "format": "json", "enabled": true, "include_internal_legs": true,
        "pvt_type": "webhook", "pvt_account_id": owner, "pvt_account_db": "webhooks",
        "pvt_vsn": "1", "pvt_created": 63_800_000_000i64, "pvt_modified": 63_800_000_000i64,
        "pvt_request_id": "req-1", "pvt_is_authenticated": true,
        "pvt_auth_account_id": owner, "pvt_alphanum_name": id,
    })
}

/// Seeds a KAZOO cluster's documents: a master, a reseller and a customer account, the
/// customer's hooks, and `system_config` (settings under `default`, as KAZOO keeps them).
async fn seed_kazoo(couch: &Couch, hooks: &[Value], webhooks_settings: Value) -> Vec<u8> {
    for db in ["accounts", "webhooks", "system_config", "system_auth"] {
        couch.create_db(db).await;
    }
    for (id, name, tree, key) in [
        (MASTER, "master", vec![], MASTER_KEY),
        (RESELLER, "reseller", vec![MASTER], "reseller-key"),
        (CUSTOMER, "customer", vec![MASTER, RESELLER], CUSTOMER_KEY),
    ] {
        let doc = account(id, name, &tree, key);
        couch.put("accounts", doc.clone()).await;
        couch.create_db(&account_db(id)).await;
        couch.put(&account_db(id), doc).await;
    }
    for hook in hooks {
        couch.put("webhooks", hook.clone()).await;
    }
    let config = |id: &str, default: Value| {
        json!({"_id": id, "default": default, "pvt_type": "config",
               "pvt_account_id": "system_config", "pvt_account_db": "system_config"})
    };
    couch
        .put(
            "system_config",
            config("accounts", json!({"master_account_id": MASTER})),
        )
        .await;
    couch
        .put("system_config", config("webhooks", webhooks_settings))
        .await;
    let auth = json!({"system_key": KID, "secret_for_user_signature": SYSTEM_SECRET});
    couch.put("system_config", config("auth", auth)).await;
    let pem = kazoo_private_key();
    let rev = couch
        .put("system_auth", json!({"_id": KID, "pvt_type": "system_key"}))
        .await;
    couch
        .attach(
            "system_auth",
            KID,
            &rev,
            "private_key.pem",
            "application/x-pem-file",
            &pem,
        )
        .await;
    pem
}

/// Polls `check` every 50 ms for up to `within`; panics with `what` when it never holds.
async fn within<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {within:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoos_documents_are_served_fired_recorded_and_disabled_in_kazoos_format() {
    let server = PouchServer::in_memory().await;
    let couch = Couch::new(&server.url());
    let rx = Receiver::start_on("127.0.0.2:0").await;
    rx.answer("/failing", Answer::Status(500));
    let pem = seed_kazoo(
        &couch,
        &[
            kazoo_hook(
                "0000000000000000000000000000aaaa",
                CUSTOMER,
                &rx.url("/ok"),
                1,
            ),
            kazoo_hook(
                "0000000000000000000000000000bbbb",
                CUSTOMER,
                &rx.url("/failing"),
                1,
            ),
        ],
        json!({"attempt_failure_count": 2, "attempt_failure_expiry_ms": 4000}),
    )
    .await;
    let d = daemon(&server, &[]);

    // The reseller comes with a token crossbar minted; the customer is below it.
    let mut reseller = d.client();
    reseller.token = Some(crossbar_token(&pem, RESELLER));
    let listed = reseller
        .get(&format!("/v2/accounts/{CUSTOMER}/webhooks"))
        .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let mut ids: Vec<&str> = listed
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "0000000000000000000000000000aaaa",
            "0000000000000000000000000000bbbb"
        ]
    );
    // The customer's token reaches nothing above the customer.
    let mut customer = d.client();
    customer.token = Some(crossbar_token(&pem, CUSTOMER));
    assert_eq!(
        customer
            .get(&format!("/v2/accounts/{RESELLER}/webhooks"))
            .await
            .status,
        403
    );
    // An api key logs in as crossbar would let it: the token is KAZOO's kind.
    let mut by_key = d.client();
    assert_eq!(by_key.login("reseller-key").await, RESELLER);
    let header = jwt_header(by_key.token.as_deref().unwrap());
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("RS256"), Some(KID))
    );
    assert_eq!(
        by_key
            .get(&format!("/v2/accounts/{CUSTOMER}/webhooks"))
            .await
            .status,
        200
    );

    // A hook created through us is a KAZOO document crossbar's own views list.
    let created = reseller
        .create_hook(
            CUSTOMER,
            json!({"name": "ours", "uri": rx.url("/ours"), "hook": "channel_create"}),
        )
        .await;
    let doc = couch.get("webhooks", &created).await;
    assert_eq!(doc["pvt_type"], "webhook");
    assert_eq!(doc["pvt_account_id"], CUSTOMER);
    assert_eq!(doc["pvt_account_db"], "webhooks");
    assert_eq!(doc["pvt_vsn"], "1");
    assert!(doc["pvt_created"].as_i64().unwrap() > 63_000_000_000);
    let listing = couch
        .rows("webhooks", &format!("_design/webhooks/_view/crossbar_listing?startkey=[\"{CUSTOMER}\"]&endkey=[\"{CUSTOMER}\",{{}}]"))
        .await;
    assert_eq!(listing.len(), 3, "{listing:?}");
    assert!(listing.iter().any(|r| r["id"] == created.as_str()));

    // Two calls: the seeded hooks and ours fire; the failing hook's tries land in the
    // customer's monthly database, and two failures disable it as KAZOO does.
    let (events, _) = d.master().await;
    for call in ["call-1", "call-2"] {
        let r = events
            .send(
                "POST",
                "/v2/events",
                Some(event_of("channel_create", CUSTOMER, call)),
            )
            .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
    }
    rx.wait_for("/ok", 2).await;
    rx.wait_for("/ours", 2).await;
    rx.wait_for("/failing", 2).await;
    couch
        .wait_disabled("0000000000000000000000000000bbbb", Duration::from_secs(10))
        .await;
    let disabled = couch
        .get("webhooks", "0000000000000000000000000000bbbb")
        .await;
    assert_eq!(disabled["pvt_disabled_message"], "too many failed attempts");
    within(
        Duration::from_secs(10),
        "two attempts in the monthly database",
        || async {
            couch
                .rows(
                    &modb(CUSTOMER),
                    "_design/webhooks/_view/attempts_by_hook_listing?include_docs=true",
                )
                .await
                .len()
                >= 2
        },
    )
    .await;
    let attempts = couch
        .rows(
            &modb(CUSTOMER),
            "_design/webhooks/_view/attempts_by_hook_listing?include_docs=true",
        )
        .await;
    for row in &attempts {
        let a = &row["doc"];
        assert_eq!(a["pvt_type"], "webhook_attempt");
        assert_eq!(a["hook_id"], "0000000000000000000000000000bbbb");
        assert_eq!(a["result"], "failure");
        assert_eq!(a["resp_status_code"], "500");
        assert_eq!(a["pvt_account_db"].as_str().unwrap(), modb(CUSTOMER));
    }
    let through_api = reseller
        .get(&format!(
            "/v2/accounts/{CUSTOMER}/webhooks/0000000000000000000000000000bbbb/attempts"
        ))
        .await;
    assert_eq!(
        through_api.data().as_array().unwrap().len(),
        2,
        "{:?}",
        through_api.body
    );

    // Re-enabled through us: KAZOO's fields go as crossbar removes them.
    let r = reseller
        .patch(
            &format!("/v2/accounts/{CUSTOMER}/webhooks"),
            json!({"re-enable": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let doc = couch
        .get("webhooks", "0000000000000000000000000000bbbb")
        .await;
    assert_eq!(doc["enabled"], true);
    assert!(doc.get("pvt_disabled_message").is_none(), "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_edited_directly_in_couchdb_takes_effect_live() {
    let server = PouchServer::in_memory().await;
    let couch = Couch::new(&server.url());
    let rx = Receiver::start_on("127.0.0.2:0").await;
    let hook = kazoo_hook(
        "0000000000000000000000000000cccc",
        CUSTOMER,
        &rx.url("/before"),
        1,
    );
    seed_kazoo(&couch, std::slice::from_ref(&hook), json!({})).await;
    let d = daemon(&server, &[]);
    // Only the master account may publish events.
    let (client, master) = d.master().await;
    assert_eq!(master, MASTER);

    let mut edited = couch
        .get("webhooks", "0000000000000000000000000000cccc")
        .await;
    edited["uri"] = json!(rx.url("/after"));
    couch.put("webhooks", edited).await;
    let edited_at = tokio::time::Instant::now();
    let mut call = 0;
    within(Duration::from_secs(5), "the edit to take effect", || {
        call += 1;
        let event = event_of("channel_create", CUSTOMER, &format!("call-{call}"));
        let (client, rx) = (&client, &rx);
        async move {
            client.send("POST", "/v2/events", Some(event)).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            !rx.received_at("/after").is_empty()
        }
    })
    .await;
    // The follower polls every 250 ms; how long it took is printed, not asserted (timings on a
    // shared machine are measured, never asserted).
    eprintln!(
        "direct CouchDB edit picked up after {:?}",
        edited_at.elapsed()
    );
}

fn event_of(module: &str, account: &str, call: &str) -> Value {
    let mut e = webhooks_modules::sample_events(module).unwrap().remove(0);
    e["Custom-Channel-Vars"]["Account-ID"] = json!(account);
    e["Call-ID"] = json!(call);
    e
}

/// A daemon on `server`, with a data directory of its own (only its delivery journal is
/// there: everything else is in CouchDB).
fn daemon(server: &PouchServer, extra: &[&str]) -> Daemon {
    let url = server.url();
    let mut args = vec!["--couchdb-url", url.as_str()];
    args.extend_from_slice(extra);
    Daemon::start_with(&args)
}

/// One node of a cluster: a daemon on `server` and `vhost`, named `webhooksd@<name>`.
fn node(server: &PouchServer, vhost: &webhooks_testkit::rabbitmq::Vhost, name: &str) -> Daemon {
    let node_name = format!("webhooksd@{name}");
    daemon(
        server,
        &["--amqp-url", &vhost.url(), "--node-name", &node_name],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_one_couchdb_and_one_broker_behave_as_one() {
    let server = PouchServer::in_memory().await;
    let couch = Couch::new(&server.url());
    let vhost = webhooks_testkit::rabbitmq::Vhost::create("two-nodes").await;
    let rx = Receiver::start_on("127.0.0.2:0").await;
    rx.answer("/failing", Answer::Status(500));
    let mut failing = kazoo_hook(
        "0000000000000000000000000000ffff",
        CUSTOMER,
        &rx.url("/failing"),
        1,
    );
    failing["hook"] = json!("channel_destroy");
    let mut told = kazoo_hook(
        "0000000000000000000000000000dddd",
        CUSTOMER,
        &rx.url("/disabled"),
        1,
    );
    told["hook"] = json!("notifications");
    told["custom_data"] = json!({"type": "webhook_disabled"});
    seed_kazoo(
        &couch,
        &[
            kazoo_hook(
                "0000000000000000000000000000cccc",
                CUSTOMER,
                &rx.url("/calls"),
                1,
            ),
            failing,
            told,
        ],
        json!({"attempt_failure_count": 4, "attempt_failure_expiry_ms": 4000}),
    )
    .await;
    let a = node(&server, &vhost, "a");
    let _b = node(&server, &vhost, "b");
    let kazoo = Kazoo::connect(&vhost).await;

    // 1,000 calls through the broker: each delivered once, by one node or the other.
    for i in 0..1000 {
        kazoo
            .publish(&event_of("channel_create", CUSTOMER, &format!("call-{i}")))
            .await;
    }
    rx.wait_for("/calls", 1000).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        (
            rx.received_at("/calls").len(),
            common::ids_by_call(&rx, "/calls").len()
        ),
        (1000, 1000),
        "each call once"
    );

    // An edit through node A: afterwards both nodes send to the new address.
    let mut through_a = a.client();
    through_a.login("reseller-key").await;
    let r = through_a
        .patch(
            &format!("/v2/accounts/{CUSTOMER}/webhooks/0000000000000000000000000000cccc"),
            json!({"uri": rx.url("/moved")}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Node B follows the change feed every 250 ms; two seconds leave room on a busy machine.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..100 {
        kazoo
            .publish(&event_of("channel_create", CUSTOMER, &format!("moved-{i}")))
            .await;
    }
    rx.wait_for("/moved", 100).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rx.received_at("/calls").len(),
        1000,
        "no call went to the old address"
    );

    // Four failures, wherever they happen, disable the hook once, with one notice.
    for i in 0..4 {
        kazoo
            .publish(&event_of(
                "channel_destroy",
                CUSTOMER,
                &format!("hangup-{i}"),
            ))
            .await;
    }
    rx.wait_for("/failing", 4).await;
    couch
        .wait_disabled("0000000000000000000000000000ffff", Duration::from_secs(15))
        .await;
    rx.wait_for("/disabled", 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rx.received_at("/disabled").len(), 1, "one webhook_disabled");
    let doc = couch
        .get("webhooks", "0000000000000000000000000000ffff")
        .await;
    assert_eq!(doc["pvt_disabled_message"], "too many failed attempts");
}

/// `webhooks --couchdb-url <server> --api <node> <args>`: the master key is read from KAZOO's
/// documents.
async fn cli_on(server: &PouchServer, node: &Daemon, args: &[&str]) -> common::CliRun {
    let mut all: Vec<std::ffi::OsString> = vec![
        "--couchdb-url".into(),
        server.url().into(),
        "--api".into(),
        node.base.clone().into(),
    ];
    all.extend(args.iter().map(std::ffi::OsString::from));
    common::webhooks_cli(all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_counts_are_the_clusters_whichever_node_is_asked_or_flushed() {
    const HOOK: &str = "0000000000000000000000000000eeee";
    let server = PouchServer::in_memory().await;
    let couch = Couch::new(&server.url());
    let vhost = webhooks_testkit::rabbitmq::Vhost::create("failure-status").await;
    let rx = Receiver::start_on("127.0.0.2:0").await;
    rx.answer("/failing", Answer::Status(500));
    let mut failing = kazoo_hook(HOOK, CUSTOMER, &rx.url("/failing"), 1);
    failing["hook"] = json!("channel_destroy");
    let settings = json!({"attempt_failure_count": 100, "attempt_failure_expiry_ms": 600000});
    seed_kazoo(&couch, &[failing], settings).await;
    let a = node(&server, &vhost, "a");
    let b = node(&server, &vhost, "b");
    let kazoo = Kazoo::connect(&vhost).await;
    for i in 0..6 {
        let hangup = event_of("channel_destroy", CUSTOMER, &format!("hangup-{i}"));
        kazoo.publish(&hangup).await;
    }
    rx.wait_for("/failing", 6).await;

    // Whichever node made each try, both count all six.
    let row = format!("| {CUSTOMER:<32} | {HOOK:<32} | {:>5} |", 6);
    for n in [&a, &b] {
        within(
            Duration::from_secs(10),
            "six failures on each node",
            || async {
                let status = cli_on(&server, n, &["failure-status", CUSTOMER]).await;
                assert_eq!(status.code, 0, "{}", status.stderr);
                status.stdout.contains(&row)
            },
        )
        .await;
    }

    // A flush through one node empties the other's count too.
    let flushed = cli_on(&server, &a, &["flush-hook-failures", CUSTOMER, HOOK]).await;
    assert_eq!(flushed.code, 0, "{}", flushed.stderr);
    assert_eq!(
        flushed.stdout,
        format!("flushed 6 failure entries for {HOOK}\n")
    );
    within(
        Duration::from_secs(10),
        "the flush on the other node",
        || async {
            let status = cli_on(&server, &b, &["failure-status", "--json"]).await;
            status.stdout.trim() == "[]"
        },
    )
    .await;
    let json = cli_on(&server, &a, &["failure-status", "--json"]).await;
    assert_eq!(json.stdout.trim(), "[]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn couchdb_stopped_and_started_mid_stream_loses_no_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = PouchServer::in_dir(dir.path()).await;
    let couch = Couch::new(&server.url());
    let vhost = webhooks_testkit::rabbitmq::Vhost::create("couch-outage").await;
    let rx = Receiver::start_on("127.0.0.2:0").await;
    seed_kazoo(
        &couch,
        &[kazoo_hook(
            "0000000000000000000000000000cccc",
            CUSTOMER,
            &rx.url("/calls"),
            1,
        )],
        json!({"log_successful_attempts": true}),
    )
    .await;
    let d = node(&server, &vhost, "solo");
    let mut client = d.client();
    client.login(CUSTOMER_KEY).await;
    let kazoo = Kazoo::connect(&vhost).await;
    let mut published = 0;
    let mut publish = |n: usize| {
        let kazoo = &kazoo;
        let first = published;
        published += n;
        async move {
            for i in first..first + n {
                kazoo
                    .publish(&event_of("channel_create", CUSTOMER, &format!("call-{i}")))
                    .await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };

    publish(100).await;
    server.stop().await;
    // CouchDB is down: the API says so as crossbar does; deliveries go on from memory.
    let r = client
        .get(&format!("/v2/accounts/{CUSTOMER}/webhooks"))
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (503, Some("503")),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["message"], "datastore_fault");
    publish(100).await;
    rx.wait_for("/calls", 200).await;
    server.start_again().await;
    publish(100).await;
    rx.wait_for("/calls", 300).await;

    // Every delivery's attempt reaches the monthly database once CouchDB is back.
    let view = "_design/webhooks/_view/attempts_by_time_listing";
    within(
        Duration::from_secs(30),
        "300 attempts in the monthly database",
        || async { couch.rows(&modb(CUSTOMER), view).await.len() >= 300 },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(couch.rows(&modb(CUSTOMER), view).await.len(), 300);
}

/// Issue 13: a node dies mid-stream (SIGKILL) and the other node delivers its work. The
/// broker holds each event until its deliveries have settled, so what the dead node had not
/// finished goes back to the queue and to the other node; it is never restarted here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_leaves_its_work_to_the_other() {
    let server = PouchServer::in_memory().await;
    let couch = Couch::new(&server.url());
    let vhost = webhooks_testkit::rabbitmq::Vhost::create("node-death").await;
    let rx = Receiver::start_on("127.0.0.2:0").await;
    // A receiver that takes 0.2 s a request: deliveries queue up in the nodes.
    rx.answer("/calls", Answer::Slow(Duration::from_millis(200)));
    seed_kazoo(
        &couch,
        &[kazoo_hook(
            "0000000000000000000000000000cccc",
            CUSTOMER,
            &rx.url("/calls"),
            1,
        )],
        json!({}),
    )
    .await;
    let a = node(&server, &vhost, "a");
    let _b = node(&server, &vhost, "b");
    let kazoo = Kazoo::connect(&vhost).await;
    let publishing = tokio::spawn(async move {
        let mut confirmed = Vec::new();
        for i in 0..2000 {
            let call = format!("call-{i}");
            kazoo
                .publish(&event_of("channel_create", CUSTOMER, &call))
                .await;
            confirmed.push(call);
        }
        confirmed
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = rx.received_at("/calls").len();
    a.kill();
    let confirmed = publishing.await.unwrap();
    assert!(before < 2000, "killed mid-stream: {before} delivered");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let ids_by_call = loop {
        let ids = common::ids_by_call(&rx, "/calls");
        if confirmed.iter().all(|c| ids.contains_key(c)) {
            break ids;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} confirmed calls never arrived",
            confirmed.iter().filter(|c| !ids.contains_key(*c)).count(),
            confirmed.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for call in &confirmed {
        assert_eq!(
            ids_by_call[call].len(),
            1,
            "{call}: one webhook-id however often it came"
        );
    }
    eprintln!(
        "{} confirmed, {before} delivered before node A died, {} arrivals in all",
        confirmed.len(),
        rx.received_at("/calls").len()
    );
}
