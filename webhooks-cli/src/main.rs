//! `webhooks`: KAZOO's `sup webhooks_maintenance` as a command, and a local listen/trigger
//! loop for receiver authors.
//!
//! Wiring only: read the flags, run one command from the `webhooks_cli` library, turn its
//! error into one line and an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use webhooks_cli::{Command, Options};

/// Maintenance commands for the KAZOO-compatible webhooks engine. Hooks, configuration and
/// definitions are read and written in the store, whether or not webhooksd runs; failure
/// counts, attempts, replays and triggers go through the running daemon's API.
#[derive(Parser, Debug)]
#[command(name = "webhooks", version)]
struct Args {
    /// Directory of the embedded store: the daemon's --data-dir.
    #[arg(
        long,
        env = "WEBHOOKS_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    data_dir: PathBuf,

    /// KAZOO's CouchDB (the daemon's --couchdb-url, credentials inside it) instead of the
    /// embedded store.
    #[arg(
        long,
        env = "WEBHOOKS_COUCHDB_URL",
        hide_env_values = true,
        global = true
    )]
    couchdb_url: Option<String>,

    /// The daemon's API, for the commands that ask the daemon.
    #[arg(
        long,
        env = "WEBHOOKS_API",
        default_value = "http://127.0.0.1:8000",
        global = true
    )]
    api: String,

    /// The master account's api key, for the commands that ask the daemon. Default: read
    /// from the store (--data-dir or --couchdb-url).
    #[arg(long, env = "WEBHOOKS_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,

    /// Print listings as JSON, for scripts.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

// One command at a time: a single-threaded runtime is all it needs.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let options = Options {
        data_dir: args.data_dir,
        couchdb_url: args.couchdb_url,
        api: args.api,
        api_key: args.api_key,
        json: args.json,
    };
    let out = &mut std::io::stdout();
    match webhooks_cli::run(&options, &args.command, out).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
