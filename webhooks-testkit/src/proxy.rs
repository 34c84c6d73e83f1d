//! A TCP proxy on loopback that a test can cut and restore: a daemon connected through it
//! loses its connection (to RabbitMQ, say) without the shared broker being stopped for every
//! other test running beside it.
//!
//! ```no_run
//! # async fn f() {
//! let proxy = webhooks_testkit::proxy::Proxy::start("127.0.0.1:5672".parse().unwrap()).await;
//! // ... connect through `proxy.addr()` ...
//! proxy.close().await; // open connections are cut, new ones refused
//! proxy.open().await; // listening again, on the same address
//! # }
//! ```

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

/// Forwards every connection made to [`addr`](Proxy::addr) to the target, until closed.
pub struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    running: Mutex<Option<Running>>,
}

struct Running {
    /// Set to true to stop accepting and cut every open connection.
    stop: watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        Proxy {
            addr,
            target,
            running: Mutex::new(Some(run(listener, target))),
        }
    }

    /// Where to connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and cuts every open connection: a client sees its connection reset
    /// and its reconnects refused. Returns once nothing of it runs.
    pub async fn close(&self) {
        if let Some(running) = self.running.lock().await.take() {
            running.stop.send_replace(true);
            let _ = running.accepting.await;
        }
    }

    /// Listens again on the same address (retrying for a few seconds while the port is
    /// released).
    pub async fn open(&self) {
        let mut running = self.running.lock().await;
        if running.is_some() {
            return;
        }
        for _ in 0..100 {
            if let Ok(listener) = TcpListener::bind(self.addr).await {
                *running = Some(run(listener, self.target));
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("proxy could not listen on {} again", self.addr);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(running) = self.running.get_mut().take() {
            running.stop.send_replace(true);
            running.accepting.abort();
        }
    }
}

fn run(listener: TcpListener, target: SocketAddr) -> Running {
    let (stop, stopped) = watch::channel(false);
    let accepting = tokio::spawn(accept(listener, target, stopped));
    Running { stop, accepting }
}

async fn accept(listener: TcpListener, target: SocketAddr, mut stopped: watch::Receiver<bool>) {
    loop {
        let inbound = tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            accepted = listener.accept() => match accepted {
                Ok((inbound, _)) => inbound,
                Err(_) => continue,
            },
        };
        tokio::spawn(forward(inbound, target, stopped.clone()));
    }
}

/// Copies both ways until either side closes or the proxy is closed; dropping the sockets
/// then closes both connections.
async fn forward(mut inbound: TcpStream, target: SocketAddr, mut stopped: watch::Receiver<bool>) {
    let Ok(mut outbound) = TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = stopped.wait_for(|s| *s) => {}
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-connection echo server.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(addr: SocketAddr) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await?;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn a_closed_proxy_cuts_and_refuses_then_forwards_again_once_open() {
        let proxy = Proxy::start(echo().await).await;
        assert_eq!(round_trip(proxy.addr()).await.unwrap(), b"ping");

        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        open.write_all(b"x").await.unwrap();
        proxy.close().await;
        let mut buf = [0u8; 8];
        // Whatever was echoed before the cut, the connection then ends.
        let mut ended = false;
        for _ in 0..3 {
            match open.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    ended = true;
                    break;
                }
                Ok(_) => {}
            }
        }
        assert!(ended, "the open connection was not cut");
        assert!(
            round_trip(proxy.addr()).await.is_err(),
            "a closed proxy accepted"
        );

        proxy.open().await;
        assert_eq!(round_trip(proxy.addr()).await.unwrap(), b"ping");
    }
}
