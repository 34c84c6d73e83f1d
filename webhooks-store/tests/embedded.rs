//! What only the embedded store promises: a file that survives reopening and `kill -9`, WAL
//! mode, reads through a second connection, compressed attempts, and how it spells positions.
//! The behaviour every store shares is the contract suite (`tests/contract.rs`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;
use webhooks_core::store::{
    AccountStore, AttemptCursor, AttemptQuery, AttemptStore, ConfigStore, FeedPosition, HookStore,
    StoreError,
};
use webhooks_core::Doc;
use webhooks_store::contract::fixtures::{
    account_id, attempt, doc, generation, hook_doc, query, seed_attempts,
};
use webhooks_store::EmbeddedStore;

// ---- positions and cursors -------------------------------------------------------------------

/// CouchDB's feed positions are opaque strings; this store's must not read as numbers either,
/// or a caller that parsed them would pass here and fail against CouchDB.
#[tokio::test]
async fn positions_and_cursors_never_read_as_numbers() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    store
        .save_hook(hook_doc("h1", &account_id(1)))
        .await
        .unwrap();
    let page = store
        .hook_changes(&FeedPosition::beginning(), 10)
        .await
        .unwrap();
    assert!(
        page.last.as_str().parse::<i64>().is_err(),
        "{:?}",
        page.last
    );
    // Position 1 exists, but not spelt as a bare number.
    assert!(matches!(
        store.hook_changes(&FeedPosition::new("1"), 10).await,
        Err(StoreError::BadPosition(_))
    ));

    seed_attempts(&store).await;
    let q = AttemptQuery {
        limit: 5,
        ..query(&account_id(1))
    };
    let next = store.attempts(q.clone()).await.unwrap().next.unwrap();
    assert!(next.as_str().parse::<i64>().is_err(), "{next:?}");
    // Neither is the `<created>-<seq>` spelling earlier builds handed to clients.
    let old = AttemptCursor::new("1006-60");
    assert!(matches!(
        store
            .attempts(AttemptQuery {
                start: Some(old),
                ..q
            })
            .await,
        Err(StoreError::BadPosition(_))
    ));
}

// ---- files -----------------------------------------------------------------------------------

/// A file-backed store reads through a second connection: every write is visible to the read
/// that follows it, while attempt batches are being written meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_each_write_at_once_while_batches_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let a = account_id(1);
    let writer = {
        let store = store.clone();
        let a = a.clone();
        tokio::spawn(async move {
            for n in 0..20i64 {
                let batch: Vec<Doc> = (0..200)
                    .map(|i| attempt(&a, "h1", n, (n * 200 + i) as usize))
                    .collect();
                store.save_attempts(batch.into()).await.unwrap();
            }
        })
    };
    let mut hook = store.save_hook(hook_doc("h1", &a)).await.unwrap();
    for n in 0..50 {
        hook.set("name", format!("edit {n}"));
        hook = store.save_hook(hook).await.unwrap();
        assert_eq!(store.hook("h1").await.unwrap().as_ref(), Some(&hook));
        let changes = store
            .hook_changes(&FeedPosition::beginning(), 10)
            .await
            .unwrap();
        assert_eq!(changes.docs.last(), Some(&hook), "{n}");
    }
    writer.await.unwrap();
    let mut q = query(&a);
    q.limit = 10_000;
    assert_eq!(store.attempts(q).await.unwrap().attempts.len(), 4000);
}

#[tokio::test]
async fn documents_survive_reopening_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let a = account_id(1);
    let (hook, config) = {
        let store = EmbeddedStore::open(&data).unwrap();
        assert_eq!(
            store.path(),
            Some(data.join(EmbeddedStore::FILE_NAME).as_path())
        );
        store
            .save_account(doc(json!({"_id": a.as_str(), "pvt_api_key": "k"})))
            .await
            .unwrap();
        store
            .save_attempts(vec![attempt(&a, "h1", 7, 0)].into())
            .await
            .unwrap();
        (
            store.save_hook(hook_doc("h1", &a)).await.unwrap(),
            store
                .save_system_config("webhooks", doc(json!({"x": 1})))
                .await
                .unwrap(),
        )
    };
    let store = EmbeddedStore::open(&data).unwrap();
    assert_eq!(store.hook("h1").await.unwrap(), Some(hook.clone()));
    assert_eq!(store.system_config("webhooks").await.unwrap(), Some(config));
    assert!(store.account_by_api_key("k").await.unwrap().is_some());
    assert_eq!(store.attempts(query(&a)).await.unwrap().attempts.len(), 1);
    // Revisions carry on from the stored one.
    assert_eq!(generation(&store.save_hook(hook).await.unwrap()), 2);
}

/// Attempts are stored compressed; rows an earlier build wrote as plain JSON text still read,
/// in their place in the listing.
#[tokio::test]
async fn attempts_stored_as_text_by_an_earlier_build_still_list() {
    let dir = tempfile::tempdir().unwrap();
    let a = account_id(1);
    let old = attempt(&a, "h1", 100, 1);
    drop(EmbeddedStore::open(dir.path()).unwrap());
    rusqlite::Connection::open(dir.path().join(EmbeddedStore::FILE_NAME))
        .unwrap()
        .execute(
            "INSERT INTO attempts (account_id, hook_id, created, doc) VALUES (?1, 'h1', 100, ?2)",
            rusqlite::params![a.as_str(), serde_json::to_string(&old).unwrap()],
        )
        .unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let new = attempt(&a, "h1", 200, 2);
    store.save_attempts(vec![new.clone()].into()).await.unwrap();
    let compressed: Vec<u8> = rusqlite::Connection::open(store.path().unwrap())
        .unwrap()
        .query_row("SELECT doc FROM attempts WHERE created = 200", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(compressed.len() < serde_json::to_vec(&new).unwrap().len() + 16);
    assert_eq!(
        store.attempts(query(&a)).await.unwrap().attempts,
        vec![new, old]
    );
}

#[test]
fn a_file_from_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(EmbeddedStore::open(dir.path()).unwrap());
    let file = dir.path().join(EmbeddedStore::FILE_NAME);
    rusqlite::Connection::open(&file)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    match EmbeddedStore::open(dir.path()) {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("newer"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_file_is_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    drop(EmbeddedStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(EmbeddedStore::FILE_NAME)).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

// ---- crash safety ----------------------------------------------------------------------------

/// Set for the child process of `killed_writer_loses_no_committed_write`: its data directory.
const CRASH_DIR_ENV: &str = "WEBHOOKS_STORE_CRASH_TEST_DIR";
/// Bounds on the child, in case the parent never kills it.
const CHILD_MAX_WRITES: usize = 20_000;
const CHILD_MAX_TIME: Duration = Duration::from_secs(60);
/// The parent kills the child once this many writes are acknowledged (or after the timeout):
/// enough for the WAL to pass its 1000-page auto-checkpoint, so checkpoints are exercised too.
const KILL_AFTER: usize = 800;
const PARENT_WAIT: Duration = Duration::from_secs(60);

fn crash_hook(n: usize) -> Doc {
    let mut d = hook_doc(&format!("crash{n:06}"), &account_id(1));
    // Several pages per document, so commits span many writes and WAL checkpoints happen.
    d.set(
        "custom_data",
        json!({ "pad": "x".repeat(6000), "n": n.to_string() }),
    );
    d
}

/// Not a test on its own: the writer process `killed_writer_loses_no_committed_write` starts
/// and kills. It prints `committed <n>` only after `save_hook` returned, i.e. after the commit.
#[test]
#[ignore = "child process of killed_writer_loses_no_committed_write"]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = EmbeddedStore::open(&dir).unwrap();
        let started = Instant::now();
        for n in 0..CHILD_MAX_WRITES {
            if started.elapsed() > CHILD_MAX_TIME {
                break;
            }
            store.save_hook(crash_hook(n)).await.unwrap();
            println!("committed {n}");
        }
    });
}

#[test]
fn killed_writer_loses_no_committed_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_writer_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Read the child's acknowledgements on a thread so the wait below can time out.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("committed ") {
                if tx.send(n.parse::<usize>().unwrap()).is_err() {
                    break;
                }
            }
        }
    });
    let mut committed = Vec::new();
    let deadline = Instant::now() + PARENT_WAIT;
    while committed.len() < KILL_AFTER {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(n) => committed.push(n),
            Err(_) => break,
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no flush, no checkpoint.
    child.wait().unwrap();
    // Acknowledgements already in the pipe when the child died count too.
    committed.extend(rx.iter());
    reader.join().unwrap();
    assert!(!committed.is_empty(), "the writer never committed anything");
    assert!(
        committed.len() < CHILD_MAX_WRITES,
        "the writer finished before it was killed"
    );

    let file = dir.path().join(EmbeddedStore::FILE_NAME);
    let check: String = rusqlite::Connection::open(&file)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");

    let store = EmbeddedStore::open(dir.path()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        for &n in &committed {
            let want = crash_hook(n);
            let got = store
                .hook(want.id().unwrap())
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("committed write {n} was lost"));
            assert_eq!(got.get("custom_data"), want.get("custom_data"));
        }
    });
}
