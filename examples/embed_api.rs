//! Mount the crossbar-compatible webhooks API inside your own axum server.
//!
//! Run with `cargo run --example embed_api`; it serves on 127.0.0.1:8080 with an in-memory
//! store, prints the master api key, and adds one route of its own next to the API.
//! Pass `--check` to answer one request to itself and exit (CI runs it that way).

use std::sync::Arc;

use axum::routing::get;
use kazoo_webhooks::api::{bootstrap, router, ApiConfig, ApiState};
use kazoo_webhooks::core::config::DEFAULT_OBJECT_TYPES;
use kazoo_webhooks::core::live::LiveHooks;
use kazoo_webhooks::modules::kazoo_registry;
use kazoo_webhooks::store::EmbeddedStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let check = std::env::args().any(|a| a == "--check");
    let store = Arc::new(EmbeddedStore::open_in_memory()?);
    let boot = bootstrap(store.as_ref(), None).await?;
    println!("master api key: {}", boot.master_api_key);

    // The API applies every hook it saves to a `LiveHooks`. With a delivery engine running,
    // pass the engine's (`engine.hooks().clone()`) so edits fire at once; this API runs
    // alone, so it gets one of its own.
    let object_types: Vec<String> = DEFAULT_OBJECT_TYPES.iter().map(|s| s.to_string()).collect();
    let hooks = Arc::new(LiveHooks::new(kazoo_registry(&object_types)));
    let state = ApiState::new(store, hooks, &boot.signing_secret, ApiConfig::default());

    // The API is an ordinary axum Router: merge it with your own routes.
    let app =
        router(state).merge(axum::Router::new().route("/my/health", get(|| async { "mine" })));

    let addr = if check {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:8080"
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    println!("listening on {local}");
    if check {
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut stream = tokio::net::TcpStream::connect(local).await?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /v2/webhooks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await?;
        let mut resp = String::new();
        stream.read_to_string(&mut resp).await?;
        let ok = resp.starts_with("HTTP/1.1 200") && resp.contains("\"channel_create\"");
        println!(
            "GET /v2/webhooks -> {}",
            if ok {
                "200 with the catalogue"
            } else {
                "unexpected"
            }
        );
        return if ok {
            Ok(())
        } else {
            Err("catalogue not served".into())
        };
    }
    axum::serve(listener, app).await?;
    Ok(())
}
