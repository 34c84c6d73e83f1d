//! Run the whole engine inside your own program, exactly as `webhooksd` does: the embedded
//! store, the delivery engine and the crossbar API, stopped gracefully when you say so.
//!
//! `cargo run --example run_server` serves on 127.0.0.1:8000 with its data in `./data` until
//! Ctrl-C. Pass `--check` to serve on a free port in a temporary directory, ask the API for
//! its health once, shut down, and exit (CI runs it that way).

use std::time::Duration;

use kazoo_webhooks::server::{Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let check = std::env::args().any(|a| a == "--check");
    if !check {
        // One call: returns after Ctrl-C (or SIGTERM) and a graceful drain.
        let config = ServerConfig::new("./data");
        kazoo_webhooks::server::run(config, kazoo_webhooks::server::signals::terminate()).await?;
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!("run_server_example_{}", std::process::id()));
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse()?,
        drain_deadline: Duration::from_secs(2),
        ..ServerConfig::new(&dir)
    };
    // In two steps, to learn the address before serving.
    let server = Server::start(config).await?;
    let addr = server.local_addr()?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run_until(async {
        let _ = done_rx.await;
    }));
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /v2/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut resp = String::new();
    stream.read_to_string(&mut resp).await?;
    let _ = done_tx.send(());
    serving.await??;
    let _ = std::fs::remove_dir_all(&dir);
    let ok = resp.starts_with("HTTP/1.1 200");
    println!("GET /v2/health -> {}", resp.lines().next().unwrap_or(""));
    println!("server stopped");
    if ok {
        Ok(())
    } else {
        Err("health not served".into())
    }
}
