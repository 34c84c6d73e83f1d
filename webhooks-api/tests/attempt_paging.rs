//! Attempt paging through the router, in process, over the embedded store: crossbar's
//! `next_start_key` is the store's cursor as it made it, and `start_key` hands it back.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use webhooks_api::{bootstrap, router, ApiConfig, ApiState};
use webhooks_core::live::LiveHooks;
use webhooks_core::store::AttemptStore;
use webhooks_core::{AccountId, Doc, ModuleRegistry};
use webhooks_store::EmbeddedStore;

/// The router over a fresh store holding `attempts` of the master account, and a token.
async fn api_with_attempts(attempts: usize) -> (axum::Router, AccountId, String) {
    let store = EmbeddedStore::open_in_memory().unwrap();
    let boot = bootstrap(&store, None).await.unwrap();
    let master = boot.master_account_id.clone();
    let now = webhooks_core::time::now_gregorian();
    let docs: Vec<Doc> = (0..attempts)
        .map(|n| {
            Doc::from_value(json!({
                "hook_id": "h1", "event_id": format!("e{n:02}"), "result": "failure",
                "pvt_account_id": master.as_str(), "pvt_type": "webhook_attempt",
                // Two attempts a second: pages must split ties without repeating or skipping.
                "pvt_created": now - 100 + (n / 2) as i64,
            }))
            .unwrap()
        })
        .collect();
    store.save_attempts(docs.into()).await.unwrap();
    let state = ApiState::new(
        Arc::new(store),
        Arc::new(LiveHooks::new(ModuleRegistry::new())),
        &boot.signing_secret,
        ApiConfig::default(),
    );
    let token = state
        .tokens()
        .issue(state.store(), &master, "cb_api_auth")
        .await
        .unwrap();
    (router(state), master, token)
}

async fn get(app: &axum::Router, token: &str, uri: &str) -> (StatusCode, Value) {
    let request = Request::get(uri)
        .header("x-auth-token", token)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn next_start_key_is_handed_back_unchanged_and_pages_cover_every_attempt_once() {
    let (app, master, token) = api_with_attempts(7).await;
    let base = format!("/v2/accounts/{master}/webhooks/attempts?page_size=3");
    let (mut seen, mut url, mut sent_key) = (Vec::new(), base.clone(), None::<String>);
    for _ in 0..10 {
        let (status, body) = get(&app, &token, &url).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // The key the client sent is echoed as it was sent.
        assert_eq!(body["start_key"].as_str(), sent_key.as_deref(), "{body}");
        let page = body["data"].as_array().unwrap();
        seen.extend(
            page.iter()
                .map(|a| a["event_id"].as_str().unwrap().to_owned()),
        );
        match body["next_start_key"].as_str() {
            Some(key) => {
                url = format!("{base}&start_key={key}");
                sent_key = Some(key.to_owned());
            }
            None => break,
        }
    }
    let want: Vec<String> = (0..7).rev().map(|n| format!("e{n:02}")).collect();
    assert_eq!(seen, want, "newest first, each once");
}

#[tokio::test]
async fn a_start_key_the_store_did_not_make_is_a_validation_error() {
    let (app, master, token) = api_with_attempts(3).await;
    let base = format!("/v2/accounts/{master}/webhooks/attempts");
    // Garbage, and the `<created>-<seq>` form earlier builds handed out.
    for key in ["garbage", "63900000000-1"] {
        let (status, body) = get(&app, &token, &format!("{base}?start_key={key}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["message"], "validation error", "{body}");
        assert_eq!(body["data"]["start_key"]["type"]["value"], key, "{body}");
    }
}
