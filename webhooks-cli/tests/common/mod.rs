//! What the CLI's test files share: running the `webhooks` binary on a data directory and
//! reading what it printed, and driving the store's async calls from a plain test.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use webhooks_core::Doc;

pub fn block<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

pub fn doc(v: Value) -> Doc {
    Doc::from_value(v).expect("object")
}

/// `webhooks --data-dir <dir> <args>`, without the environment's store settings.
pub fn webhooks(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_webhooks"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("WEBHOOKS_DATA_DIR")
        .env_remove("WEBHOOKS_COUCHDB_URL")
        .output()
        .expect("run webhooks")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8")
}
