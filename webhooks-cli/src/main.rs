//! `webhooks`: KAZOO's `sup webhooks_maintenance` as a command.
//!
//! Wiring only: read the flags, open the store the daemon uses, run one command from the
//! `webhooks_cli` library, turn its error into a message and an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use webhooks_cli::Command;

/// Maintenance commands for the KAZOO-compatible webhooks engine. They work on the store
/// directly, whether or not webhooksd runs.
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

    #[command(subcommand)]
    command: Command,
}

// One command, one store connection: a single-threaded runtime is all it needs.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let out = &mut std::io::stdout().lock();
    let opened = match &args.couchdb_url {
        Some(url) => webhooks_cli::open_couchdb(url).await,
        None => webhooks_cli::open_store(&args.data_dir),
    };
    let result = match opened {
        Ok(store) => webhooks_cli::run(&store, &args.command, out).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
