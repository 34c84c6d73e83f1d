//! A RabbitMQ vhost of a test's own, so tests against the real broker can run in parallel.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The broker the tests use: RabbitMQ on this machine, guest/guest.
pub const BROKER: &str = "127.0.0.1:5672";

/// A vhost of its own, so tests can run in parallel; deleted on drop.
pub struct Vhost {
    pub name: String,
}

impl Vhost {
    /// Creates `webhooks-<tag>-<pid>-<n>` with full rights for guest.
    pub async fn create(tag: &str) -> Vhost {
        let addr: SocketAddr = BROKER.parse().unwrap();
        if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
            panic!(
                "RabbitMQ is not answering on {BROKER}: start it (`rabbitmq-server -detached`) \
                 or run the tests with scripts/test, which does"
            );
        }
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "webhooks-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        rabbitmqctl(&["add_vhost", &name]).await;
        let vhost = Vhost { name };
        vhost.set_access(true).await;
        vhost
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{BROKER}/{}", self.name)
    }

    /// Gives or takes away the guest user's access to the vhost.
    pub async fn set_access(&self, allowed: bool) {
        if allowed {
            rabbitmqctl(&[
                "set_permissions",
                "-p",
                &self.name,
                "guest",
                ".*",
                ".*",
                ".*",
            ])
            .await;
        } else {
            rabbitmqctl(&["clear_permissions", "-p", &self.name, "guest"]).await;
        }
    }

    /// What an operator does with `rabbitmqctl close_all_connections`.
    pub async fn close_all_connections(&self) {
        rabbitmqctl(&["close_all_connections", "--vhost", &self.name, "test"]).await;
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl")
            .args(["-q", "delete_vhost", &self.name])
            .output();
    }
}

async fn rabbitmqctl(args: &[&str]) {
    let out = tokio::process::Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .output()
        .await
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
