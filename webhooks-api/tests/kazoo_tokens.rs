//! KAZOO's own tokens through the router, in process, over the embedded store: a token minted
//! the way crossbar mints one (RS256 with a key KAZOO keeps in `system_auth`, `kid` header,
//! KAZOO's claims and identity signature) lists and creates hooks; and in KAZOO mode,
//! `PUT /v2/api_auth` issues that kind of token.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey, LineEnding};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use tower::ServiceExt;
use webhooks_api::kazoo_tokens::identity_signature;
use webhooks_api::{bootstrap, router, ApiConfig, ApiState, Bootstrap, TokenMode};
use webhooks_core::live::LiveHooks;
use webhooks_core::store::{AccountStore, AuthKeyStore, ConfigStore};
use webhooks_core::{AccountId, Doc};
use webhooks_store::EmbeddedStore;

/// An RSA key, made here as KAZOO makes its system key (2048 bits, PKCS#1 PEM); one per test
/// binary, since making one takes a moment.
fn kazoo_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap())
}

const KID: &str = "5f1e0b1a9c3d4e6f7a8b9c0d1e2f3a4b";
const ACCOUNT_SECRET: &str = "0123456789abcdef0123456789abcdef";
const SYSTEM_SECRET: &str = "fedcba9876543210fedcba9876543210";

struct Rig {
    store: EmbeddedStore,
    boot: Bootstrap,
    master: AccountId,
    child: AccountId,
    outsider: AccountId,
}

/// A store as a KAZOO installation leaves it: the master account with its signature secret,
/// a child of it, an account outside its tree, the system key in `system_auth` named by
/// `system_config/auth`, and the system signature secret.
async fn kazoo_store() -> Rig {
    let store = EmbeddedStore::open_in_memory().unwrap();
    let boot = bootstrap(&store, None).await.unwrap();
    let master = boot.master_account_id.clone();
    let mut doc = store.account(&master).await.unwrap().unwrap();
    doc.set("pvt_signature_secret", ACCOUNT_SECRET);
    store.save_account(doc).await.unwrap();
    let (child, outsider) = (AccountId::random(), AccountId::random());
    for (id, tree) in [(&child, json!([master.as_str()])), (&outsider, json!([]))] {
        let doc = json!({"_id": id.as_str(), "pvt_type": "account", "name": id.as_str(),
            "pvt_tree": tree, "pvt_enabled": true, "pvt_signature_secret": ACCOUNT_SECRET});
        store
            .save_account(Doc::from_value(doc).unwrap())
            .await
            .unwrap();
    }
    let pem = kazoo_key().to_pkcs1_pem(LineEnding::LF).unwrap();
    store.save_auth_key(KID, pem.as_bytes()).await.unwrap();
    let auth = json!({"_id": "auth", "default": {"system_key": KID,
        "secret_for_user_signature": SYSTEM_SECRET}});
    store
        .save_system_config("auth", Doc::from_value(auth).unwrap())
        .await
        .unwrap();
    Rig {
        store,
        boot,
        master,
        child,
        outsider,
    }
}

fn api(rig: &Rig, mode: TokenMode) -> axum::Router {
    let registry = webhooks_modules::kazoo_registry(&[]);
    let config = ApiConfig {
        tokens: mode,
        ..ApiConfig::default()
    };
    router(ApiState::new(
        Arc::new(rig.store.clone()),
        Arc::new(LiveHooks::new(registry)),
        &rig.boot.signing_secret,
        config,
    ))
}

/// A token as crossbar's `cb_api_auth` mints one: header `alg`, `typ`, `kid`; claims
/// `identity_sig`, `iss`, `account_id`, `method`, `exp`.
fn crossbar_token(account: &AccountId, exp: i64, account_secret: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.into());
    let claims = json!({
        "identity_sig": identity_signature(account_secret, SYSTEM_SECRET, account.as_str()),
        "iss": "kazoo",
        "account_id": account.as_str(),
        "method": "cb_api_auth",
        "exp": exp,
    });
    let der = kazoo_key().to_pkcs1_der().unwrap();
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_der(der.as_bytes())).unwrap()
}

fn in_an_hour() -> i64 {
    webhooks_core::time::now_unix() + 3600
}

async fn call(
    app: &axum::Router,
    method: &str,
    token: Option<&str>,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("x-auth-token", token);
    }
    let body = match body {
        Some(v) => Body::from(json!({"data": v}).to_string()),
        None => Body::empty(),
    };
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn hook(name: &str) -> Value {
    json!({"name": name, "uri": "http://my.server.com/calls", "hook": "channel_create"})
}

#[tokio::test]
async fn a_crossbar_token_lists_and_creates_hooks_in_its_tree_in_either_mode() {
    let rig = kazoo_store().await;
    for mode in [TokenMode::Local, TokenMode::Kazoo] {
        let app = api(&rig, mode);
        let token = crossbar_token(&rig.master, in_an_hour(), ACCOUNT_SECRET);
        let (master, child) = (&rig.master, &rig.child);

        let path = format!("/v2/accounts/{master}/webhooks");
        let (status, body) = call(&app, "GET", Some(&token), &path, None).await;
        assert_eq!(status, StatusCode::OK, "{mode:?} {body}");

        // The child is in the token's tree: a hook is created there and listed.
        let path = format!("/v2/accounts/{child}/webhooks");
        let name = format!("{mode:?}");
        let (status, body) = call(&app, "PUT", Some(&token), &path, Some(hook(&name))).await;
        assert_eq!(status, StatusCode::CREATED, "{mode:?} {body}");
        let (status, body) = call(&app, "GET", Some(&token), &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let names: Vec<&str> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["name"].as_str())
            .collect();
        assert!(names.contains(&name.as_str()), "{body}");

        // An account outside the tree is forbidden, whatever the token's kind.
        let path = format!("/v2/accounts/{}/webhooks", rig.outsider);
        let (status, body) = call(&app, "GET", Some(&token), &path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, _) = call(&app, "PUT", Some(&token), &path, Some(hook("x"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn expired_tampered_or_revoked_crossbar_tokens_are_401() {
    let rig = kazoo_store().await;
    let app = api(&rig, TokenMode::Kazoo);
    let path = format!("/v2/accounts/{}/webhooks", rig.master);
    let now = webhooks_core::time::now_unix();

    let expired = crossbar_token(&rig.master, now - 1, ACCOUNT_SECRET);
    // Claims swapped for the outsider's under the master's signature.
    let genuine = crossbar_token(&rig.master, in_an_hour(), ACCOUNT_SECRET);
    let (head, rest) = genuine.split_once('.').unwrap();
    let signature = rest.split_once('.').unwrap().1;
    let outsider_claims = crossbar_token(&rig.outsider, in_an_hour(), ACCOUNT_SECRET);
    let swapped_claims = outsider_claims.split('.').nth(1).unwrap();
    let tampered = format!("{head}.{swapped_claims}.{signature}");
    // Signed by the right key, but with an identity secret the account no longer has.
    let revoked = crossbar_token(
        &rig.master,
        in_an_hour(),
        "ffffffffffffffffffffffffffffffff",
    );
    // Naming a key id KAZOO does not have.
    let unknown_kid = {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("0000".into());
        let der = kazoo_key().to_pkcs1_der().unwrap();
        let claims =
            json!({"iss": "kazoo", "account_id": rig.master.as_str(), "exp": in_an_hour()});
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_der(der.as_bytes())).unwrap()
    };
    for (what, token) in [
        ("expired", expired),
        ("tampered", tampered),
        ("revoked", revoked),
        ("unknown kid", unknown_kid),
    ] {
        let (status, body) = call(&app, "GET", Some(&token), &path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    }
    let (status, _) = call(&app, "GET", Some(&genuine), &path, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn in_kazoo_mode_api_auth_issues_an_rs256_token_that_verifies_with_the_stored_key() {
    let rig = kazoo_store().await;
    let app = api(&rig, TokenMode::Kazoo);
    let key = json!({"api_key": rig.boot.master_api_key});
    let (status, body) = call(&app, "PUT", None, "/v2/api_auth", Some(key.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["auth_token"].as_str().unwrap().to_owned();

    // Signed with the system key the store names, checked here with nothing but its public
    // half: what crossbar does with it.
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some(KID));
    let public = kazoo_key().to_public_key().to_pkcs1_der().unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_rsa_der(public.as_bytes()),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["iss"], "kazoo");
    assert_eq!(claims["account_id"], rig.master.as_str());
    assert_eq!(claims["method"], "cb_api_auth");
    assert_eq!(
        claims["identity_sig"],
        identity_signature(ACCOUNT_SECRET, SYSTEM_SECRET, rig.master.as_str())
    );

    let path = format!("/v2/accounts/{}/webhooks", rig.master);
    let (status, body) = call(&app, "GET", Some(&token), &path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The engine's own HS256 tokens are not accepted beside crossbar.
    let local = app_token(&rig, TokenMode::Local, &key).await;
    assert_eq!(
        jsonwebtoken::decode_header(&local).unwrap().alg,
        Algorithm::HS256
    );
    let (status, _) = call(&app, "GET", Some(&local), &path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // While a local-mode API accepts both kinds.
    let local_app = api(&rig, TokenMode::Local);
    for t in [&local, &token] {
        let (status, body) = call(&local_app, "GET", Some(t), &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

#[tokio::test]
async fn in_kazoo_mode_a_store_without_a_system_key_gets_one() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    let boot = bootstrap(&store, None).await.unwrap();
    let rig = Rig {
        master: boot.master_account_id.clone(),
        child: AccountId::random(),
        outsider: AccountId::random(),
        store,
        boot,
    };
    let key = json!({"api_key": rig.boot.master_api_key});
    let token = app_token(&rig, TokenMode::Kazoo, &key).await;
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let auth = rig.store.system_config("auth").await.unwrap().unwrap();
    assert_eq!(auth.get("default").unwrap()["system_key"], kid.as_str());
    assert!(rig.store.auth_key(&kid).await.unwrap().is_some());
    // Another API over the same store (another node) accepts it.
    let path = format!("/v2/accounts/{}/webhooks", rig.master);
    let (status, body) = call(
        &api(&rig, TokenMode::Kazoo),
        "GET",
        Some(&token),
        &path,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn app_token(rig: &Rig, mode: TokenMode, key: &Value) -> String {
    let (status, body) = call(
        &api(rig, mode),
        "PUT",
        None,
        "/v2/api_auth",
        Some(key.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["auth_token"].as_str().unwrap().to_owned()
}
