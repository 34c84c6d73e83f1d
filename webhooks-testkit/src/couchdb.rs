//! A real CouchDB-compatible server for tests: PouchDB Server, a node program that speaks
//! CouchDB's HTTP API. [`PouchServer`] runs one as a child process on a free loopback port,
//! in memory or over a directory; [`shared_url`] is the one a whole test binary shares.
//!
//! The binary comes from `WEBHOOKS_POUCHDB_SERVER`, else from the workspace's
//! `.tools/pouchdb` (where `scripts/test` installs it). Its working files (`config.json`,
//! `log.txt`) go to a directory of its own under the target directory's `tmp/`, never into git.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The variable naming the pouchdb-server binary.
pub const BINARY_VAR: &str = "WEBHOOKS_POUCHDB_SERVER";
/// The variable naming a running server every test of a run shares (`scripts/test` sets it).
pub const URL_VAR: &str = "WEBHOOKS_TEST_COUCHDB_URL";

/// A pouchdb-server child process on 127.0.0.1. Killed, with its process group (node may
/// start helpers), when dropped.
pub struct PouchServer {
    port: u16,
    /// The database directory; `None` keeps everything in memory (lost on restart).
    data: Option<PathBuf>,
    /// Where the server writes its config and log.
    work: PathBuf,
    child: Option<Child>,
}

impl PouchServer {
    /// A server whose databases live in memory only.
    pub async fn in_memory() -> PouchServer {
        Self::start(None).await
    }

    /// A server whose databases live in `dir`, so they survive [`stop`](Self::stop) and
    /// [`start_again`](Self::start_again).
    pub async fn in_dir(dir: impl AsRef<Path>) -> PouchServer {
        Self::start(Some(dir.as_ref().to_owned())).await
    }

    async fn start(data: Option<PathBuf>) -> PouchServer {
        let mut server = PouchServer {
            port: free_port(),
            data,
            work: work_dir(),
            child: None,
        };
        server.start_again().await;
        server
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its whole process group) and waits for it to exit.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&child);
            let _ = child.kill().await;
        }
    }

    /// Starts the server again on the same port and directory, and waits until it answers.
    pub async fn start_again(&mut self) {
        self.stop().await;
        if let Some(dir) = &self.data {
            std::fs::create_dir_all(dir).expect("create the pouchdb data directory");
        }
        let mut command = Command::new(binary());
        command
            .args(["-p", &self.port.to_string(), "-o", "127.0.0.1", "-n"])
            .current_dir(&self.work)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            // Its own group, so that killing it reaches node's children too.
            .process_group(0);
        match &self.data {
            Some(dir) => command.arg("-d").arg(dir),
            None => command.arg("--in-memory"),
        };
        self.child = Some(command.spawn().expect("pouchdb-server starts"));
        self.wait_until_up().await;
    }

    async fn wait_until_up(&mut self) {
        let addr = format!("127.0.0.1:{}", self.port);
        for _ in 0..300 {
            if answers_root(&addr).await {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "pouchdb-server exited with {status}; see {}",
                    self.work.join("log.txt").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("pouchdb-server did not answer on {addr} within 30 s");
    }
}

impl Drop for PouchServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            kill_group(child);
        }
    }
}

/// The URL of a server for tests that only need one, with databases of their own (prefixes):
/// `WEBHOOKS_TEST_COUCHDB_URL` when set (`scripts/test` starts one for the whole run), else an
/// in-memory server started once for this test process. That server is leaked on purpose: it
/// must outlive every test's runtime, and no drop runs at a process's exit. So that it does not
/// outlive the test process either, a small `sh` watchdog kills its process group once this
/// process is gone; it is in memory, so nothing is left on disk.
pub fn shared_url() -> String {
    if let Ok(url) = std::env::var(URL_VAR) {
        if !url.is_empty() {
            return url;
        }
    }
    static SHARED: OnceLock<String> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            // A runtime of its own: the server must not belong to one test's runtime.
            std::thread::spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime to start pouchdb-server");
                let server = rt.block_on(PouchServer::in_memory());
                let url = server.url();
                if let Some(pid) = server.child.as_ref().and_then(Child::id) {
                    kill_group_after_this_process(pid);
                }
                std::mem::forget(server);
                url
            })
            .join()
            .expect("pouchdb-server starts")
        })
        .clone()
}

/// The pouchdb-server binary: `WEBHOOKS_POUCHDB_SERVER`, else the workspace's `.tools` copy.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os(BINARY_VAR).filter(|p| !p.is_empty()) {
        return path.into();
    }
    let local = workspace().join(".tools/pouchdb/node_modules/.bin/pouchdb-server");
    if local.exists() {
        return local;
    }
    panic!(
        "pouchdb-server is not installed: run scripts/test (it installs it), or \
         `npm install --prefix .tools/pouchdb --no-audit --no-fund pouchdb-server@4.2.0` at the \
         workspace root, or set {BINARY_VAR} to a pouchdb-server binary"
    );
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the testkit lives inside the workspace")
        .to_owned()
}

/// A fresh directory for one server's config and log, under the target directory.
fn work_dir() -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let dir = target.join("tmp/pouchdb").join(format!(
        "{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create the pouchdb work directory");
    dir
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().unwrap().port()
}

/// Kills the child's whole process group (it was started as its leader).
fn kill_group(child: &Child) {
    if let Some(group) = child.id().filter(|&pid| pid > 1) {
        let _ = std::process::Command::new("sh")
            .args(["-c", &kill_group_command(group)])
            .status();
    }
}

/// The shell command that kills a whole process group. The shell's own `kill`, never
/// `/usr/bin/kill`: procps-ng 4.0.2 misreads negative pids (`kill -KILL -<group>` does not
/// signal the group and may signal far more; `-s KILL -- -<group>` is refused for some).
fn kill_group_command(group: u32) -> String {
    format!("kill -s KILL -- -{group} 2>/dev/null")
}

/// Starts a detached watchdog that kills process group `group` when this process has exited.
fn kill_group_after_this_process(group: u32) {
    if group <= 1 {
        return;
    }
    let script = format!(
        "while kill -0 {} 2>/dev/null; do sleep 1; done; {}",
        std::process::id(),
        kill_group_command(group)
    );
    let _ = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// Whether `GET /` answers 200, by hand so the testkit needs no HTTP client.
async fn answers_root(addr: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut head)).await;
    matches!(read, Ok(Ok(_))) && head.ends_with(b"200")
}
