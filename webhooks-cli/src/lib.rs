//! # webhooks-cli: the maintenance commands, and a local loop for receiver authors
//!
//! KAZOO operators look after webhooks with `sup webhooks_maintenance <function> [args]`: list
//! the hooks that would fire, see and flush failure counts, re-enable hooks the disabler
//! switched off, tune the disabler's threshold and window, reset hook definitions (spec §12).
//! The `webhooks` binary offers the same commands, with KAZOO's output lines, as
//! `webhooks <command> [args]`, plus `attempts`, `replay`, `recover`, and for whoever writes
//! a receiver, `listen` (a local receiver that prints what arrives) and `trigger` (a sample
//! event sent through the daemon).
//!
//! Two kinds of command, by where their answer lives:
//! - **on the store** (the embedded store, or KAZOO's CouchDB with `--couchdb-url`): hooks,
//!   configuration, definitions. They work whether or not `webhooksd` runs (SQLite in WAL mode
//!   lets a second process read and write alongside it).
//! - **through the daemon's API** ([`daemon`]): failure counts live in the running daemons'
//!   memory (every node holds every node's counts), and replays are deliveries the engine
//!   sends. These reach `--api` with the master account's api key (`--api-key`, else read
//!   from the store).
//!
//! Start reading with [`Command`] (the command line) and [`run`] (which hands each command to
//! its file under `commands/`). Every command prints to a [`Write`], so tests read what they
//! print. This crate owns no domain logic: re-enabling is `webhooks_core::reenable`, hook
//! conversion is `webhooks_core::hook`, and the list of known hook names comes from
//! `webhooks_modules`.

pub mod commands;
pub mod daemon;
pub mod listen;

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use webhooks_core::store::StoreError;
use webhooks_core::{AccountId, Store};
use webhooks_store::{CouchConfig, CouchStore, EmbeddedStore};

/// The maintenance commands, named after KAZOO's `webhooks_maintenance` functions.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// List the hooks that fire: enabled, not deleted, with a known event.
    HooksConfigured {
        /// Only this account's hooks (its id, or its database name).
        #[arg(value_name = "ACCOUNT_ID", value_parser = parse_account_id)]
        account: Option<AccountId>,
    },
    /// Re-enable an account's hooks that were disabled after too many failed attempts.
    ///
    /// Hooks disabled by hand stay disabled.
    EnableAccountHooks {
        /// The account (its id, or its database name).
        #[arg(value_name = "ACCOUNT_ID", value_parser = parse_account_id)]
        account: AccountId,
    },
    /// Re-enable auto-disabled hooks of an account and of every account below it.
    EnableDescendantHooks {
        /// The account (its id, or its database name).
        #[arg(value_name = "ACCOUNT_ID", value_parser = parse_account_id)]
        account: AccountId,
    },
    /// Set the window (ms) in which failed attempts count towards disabling a hook.
    ///
    /// Sets the system default, or one account's value when ACCOUNT_ID is given.
    // KAZOO puts the optional account first (`set_failure_expiry(Account, Ms)`); clap needs
    // `allow_missing_positional` to fill the last positional first when only one is given,
    // and `allow_negative_numbers` so that `-5` reaches the integer check instead of being
    // taken for a flag.
    #[command(allow_missing_positional = true, allow_negative_numbers = true)]
    SetFailureExpiry {
        /// Set the value of this account (its id, or its database name) instead of the
        /// system default.
        #[arg(value_name = "ACCOUNT_ID", value_parser = parse_account_id)]
        account: Option<AccountId>,
        /// The window in milliseconds (an integer).
        // Kept as text so that a non-integer gets KAZOO's own error line, not a usage error.
        #[arg(value_name = "MS")]
        ms: String,
    },
    /// Set how many failed attempts within the window disable a hook.
    ///
    /// Sets the system default, or one account's value when ACCOUNT_ID is given.
    #[command(allow_missing_positional = true, allow_negative_numbers = true)]
    SetDisableThreshold {
        /// Set the value of this account (its id, or its database name) instead of the
        /// system default.
        #[arg(value_name = "ACCOUNT_ID", value_parser = parse_account_id)]
        account: Option<AccountId>,
        /// The number of failed attempts (an integer).
        #[arg(value_name = "COUNT")]
        count: String,
    },
    /// Install (or bring up to date) the CouchDB design documents KAZOO's code queries.
    ///
    /// On KAZOO's CouchDB (`--couchdb-url`) only: the embedded store has no views.
    RegisterViews,
    /// Failed attempts the daemon counts towards disabling each hook (KAZOO's Account / Hook
    /// / Count table). Asks the running daemon.
    FailureStatus {
        /// Only this account's hooks (its id, or its database name).
        #[arg(value_name = "ACCOUNT_ID", value_parser = parse_account_id)]
        account: Option<AccountId>,
    },
    /// Forget the failure counts of every hook of an account, on every node.
    FlushAccountFailures {
        /// The account (its id, or its database name).
        #[arg(value_name = "ACCOUNT_ID", value_parser = parse_account_id)]
        account: AccountId,
    },
    /// Forget one hook's failure counts, on every node.
    FlushHookFailures {
        /// The hook's account (its id, or its database name).
        #[arg(value_name = "ACCOUNT_ID", value_parser = parse_account_id)]
        account: AccountId,
        /// The hook's id.
        #[arg(value_name = "HOOK_ID")]
        hook: String,
    },
    /// Delete every stored hook definition (`webhooks_*` in the master account) and write
    /// each module's afresh.
    ResetHookDefinitions,
    /// Delete one stored hook definition and write it afresh.
    ResetHookDefinition {
        /// The hook name, with or without its `webhooks_` prefix.
        #[arg(value_name = "HOOK")]
        hook: String,
    },
    /// Write one module's hook definition, so crossbar lists and accepts its hooks.
    StartModule {
        /// The module, with or without its `webhooks_` prefix (`webhooks_parking`, `parking`).
        #[arg(value_name = "MODULE")]
        module: String,
    },
    /// List the delivery attempts of an account, or of one of its hooks, newest first.
    /// Asks the running daemon.
    Attempts {
        /// The account (its id, or its database name).
        #[arg(value_name = "ACCOUNT_ID", value_parser = parse_account_id)]
        account: AccountId,
        /// Only this hook's attempts.
        #[arg(value_name = "HOOK_ID")]
        hook: Option<String>,
        #[command(flatten)]
        range: CreatedRange,
    },
    /// Send one delivery again (a new try, the same webhook-id, the hook's current uri and
    /// secret). Asks the running daemon.
    Replay {
        /// The hook's account (its id, or its database name).
        #[arg(value_name = "ACCOUNT_ID", value_parser = parse_account_id)]
        account: AccountId,
        /// The hook's id.
        #[arg(value_name = "HOOK_ID")]
        hook: String,
        /// The delivery's webhook-id (`msg_...`), as its attempts show it.
        #[arg(value_name = "WEBHOOK_ID")]
        webhook_id: String,
    },
    /// Send again every delivery of an account (or of one of its hooks) whose last try
    /// failed in a time range. Asks the running daemon.
    Recover {
        /// The account (its id, or its database name).
        #[arg(value_name = "ACCOUNT_ID", value_parser = parse_account_id)]
        account: AccountId,
        /// Only this hook's deliveries.
        #[arg(value_name = "HOOK_ID")]
        hook: Option<String>,
        #[command(flatten)]
        range: CreatedRange,
    },
    /// Run a local receiver on 127.0.0.1 that prints every request it gets and answers with
    /// the chosen status; with --secret, checks each signature.
    Listen(listen::ListenArgs),
    /// Send KAZOO's sample event of a kind through the daemon, as if KAZOO had published it,
    /// so the account's hooks for it fire (try it with `listen`).
    Trigger {
        /// The kind: a hook name (channel_create, channel_answer, channel_bridge,
        /// channel_destroy, parking, object) or a notification (missed_call, voicemail_new...).
        #[arg(value_name = "EVENT")]
        event: String,
        /// The account the event happens in.
        #[arg(long, value_name = "ACCOUNT_ID", value_parser = parse_account_id)]
        account: AccountId,
    },
}

/// A time range as crossbar's filters name it, in gregorian seconds; the daemon fills in what
/// is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::Args)]
pub struct CreatedRange {
    /// From this time (gregorian seconds); default: the API's longest range before
    /// --created-to.
    #[arg(long)]
    pub created_from: Option<i64>,
    /// Up to this time (gregorian seconds); default: now.
    #[arg(long)]
    pub created_to: Option<i64>,
}

/// Why a command failed. The messages are KAZOO's where KAZOO has one.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("error in expiry time, must be an integer (milliseconds)")]
    BadExpiry,
    #[error("error in count, must be an integer")]
    BadCount,
    /// Writing configuration for an account that does not exist would leave an orphan
    /// document that nothing reads (KAZOO fails too: the account database is missing).
    #[error("account {0} does not exist")]
    UnknownAccount(AccountId),
    #[error("no store at {} (start webhooksd once to create it, or pass --data-dir)", .0.display())]
    NoStore(PathBuf),
    #[error("the embedded store has no views to register (register-views is for --couchdb-url)")]
    NoViews,
    #[error("cannot reach CouchDB: {0}")]
    Couch(StoreError),
    #[error("cannot open the store in {}: {source}", dir.display())]
    Open { dir: PathBuf, source: StoreError },
    #[error("failed to load hooks for account {account}: {source}")]
    LoadHooks {
        account: AccountId,
        source: StoreError,
    },
    #[error("failed to find descendants for account {account}: {source}")]
    FindDescendants {
        account: AccountId,
        source: StoreError,
    },
    #[error("cannot reach the daemon at {api}: {why}")]
    Unreachable { api: String, why: String },
    #[error("the daemon at {0} refused the api key (give the master account's key with --api-key or WEBHOOKS_API_KEY)")]
    BadKey(String),
    #[error("no api key: give the master account's key with --api-key or WEBHOOKS_API_KEY")]
    NoKey,
    #[error("the daemon answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("{0}")]
    Listen(#[from] listen::ListenError),
    #[error("unknown event {0:?}: `webhooks trigger` knows {1}")]
    UnknownEvent(String, String),
    /// `start-module` of a module the registry does not have: the text given, and the
    /// definition ids of the modules there are.
    #[error("unknown module {0:?}: the modules are {1}")]
    UnknownModule(String, String),
    #[error("failed to clear old hook definitions: {0}")]
    ClearDefinitions(StoreError),
    /// Definitions `reset-hook-definitions` could not delete (the others were reset).
    #[error("failed to delete hook definitions: {}", .0.join(", "))]
    DeleteDefinitions(Vec<String>),
    #[error("failed to clear hook {id}: {source}")]
    ClearHook { id: String, source: StoreError },
    #[error("store error: {0}")]
    Store(#[from] StoreError),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// The process exit code: 2 for a bad argument (as clap uses for usage errors), 1 for a
    /// command that could not do its work.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::UnknownAccount(_)
            | CliError::UnknownEvent(..)
            | CliError::UnknownModule(..) => 2,
            _ => 1,
        }
    }
}

/// A store the commands run on: the daemon's embedded store, or KAZOO's CouchDB.
pub enum Opened {
    Embedded(EmbeddedStore),
    Couch(CouchStore),
}

impl Opened {
    /// The CouchDB store, when that is what was opened.
    pub fn couch(&self) -> Option<&CouchStore> {
        match self {
            Opened::Couch(store) => Some(store),
            Opened::Embedded(_) => None,
        }
    }

    pub fn store(&self) -> &dyn Store {
        match self {
            Opened::Embedded(store) => store,
            Opened::Couch(store) => store,
        }
    }
}

/// Opens the store the daemon uses in `dir`. A missing store is refused rather than created:
/// a mistyped `--data-dir` would otherwise report "no webhooks configured" from a fresh, empty
/// store and leave it behind.
pub fn open_store(dir: &Path) -> Result<Opened, CliError> {
    if !dir.join(EmbeddedStore::FILE_NAME).is_file() {
        return Err(CliError::NoStore(dir.join(EmbeddedStore::FILE_NAME)));
    }
    let store = EmbeddedStore::open(dir).map_err(|source| CliError::Open {
        dir: dir.to_owned(),
        source,
    })?;
    Ok(Opened::Embedded(store))
}

/// Opens KAZOO's CouchDB at `url` (credentials inside it), installing the design documents
/// the commands query when they are missing, as the daemon does at start.
pub async fn open_couchdb(url: &str) -> Result<Opened, CliError> {
    let store = CouchStore::connect(CouchConfig::new(url))
        .await
        .map_err(CliError::Couch)?;
    Ok(Opened::Couch(store))
}

/// Where the commands find the store and the daemon, and how they print.
#[derive(Debug, Clone)]
pub struct Options {
    /// The embedded store's directory (the daemon's `--data-dir`).
    pub data_dir: PathBuf,
    /// KAZOO's CouchDB instead of the embedded store.
    pub couchdb_url: Option<String>,
    /// The daemon's API, for the commands that ask it.
    pub api: String,
    /// The master account's api key; read from the store when not given.
    pub api_key: Option<String>,
    /// Listings as JSON, for scripts, instead of KAZOO's tables.
    pub json: bool,
}

/// Opens the store `options` name: KAZOO's CouchDB, or the embedded store.
pub async fn open(options: &Options) -> Result<Opened, CliError> {
    match &options.couchdb_url {
        Some(url) => open_couchdb(url).await,
        None => open_store(&options.data_dir),
    }
}

/// Runs one command, printing to `out`: `listen` on its own, the daemon's commands through
/// its API, the rest on the store.
pub async fn run(
    options: &Options,
    command: &Command,
    out: &mut (impl Write + Send),
) -> Result<(), CliError> {
    use commands::{attempts, failures, trigger};
    let json = options.json;
    let daemon = || daemon::Daemon::connect(options);
    match command {
        Command::Listen(args) => Ok(listen::listen(args, out).await?),
        Command::FailureStatus { account } => {
            failures::failure_status(&daemon().await?, account.as_ref(), json, out).await
        }
        Command::FlushAccountFailures { account } => {
            failures::flush_account_failures(&daemon().await?, account, out).await
        }
        Command::FlushHookFailures { account, hook } => {
            failures::flush_hook_failures(&daemon().await?, account, hook, out).await
        }
        Command::Attempts {
            account,
            hook,
            range,
        } => attempts::attempts(&daemon().await?, account, hook.as_deref(), range, json, out).await,
        Command::Replay {
            account,
            hook,
            webhook_id,
        } => attempts::replay(&daemon().await?, account, hook, webhook_id, out).await,
        Command::Recover {
            account,
            hook,
            range,
        } => attempts::recover(&daemon().await?, account, hook.as_deref(), range, out).await,
        Command::Trigger { event, account } => {
            trigger::trigger(&daemon().await?, event, account, out).await
        }
        on_store => run_on_store(&open(options).await?, on_store, json, out).await,
    }
}

/// Runs a command that works on the store alone.
pub async fn run_on_store(
    opened: &Opened,
    command: &Command,
    json: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let store = opened.store();
    match command {
        Command::RegisterViews => commands::register_views(opened.couch(), out).await,
        Command::HooksConfigured { account } => {
            commands::hooks_configured(store, account.as_ref(), json, out).await
        }
        Command::EnableAccountHooks { account } => {
            commands::enable_account_hooks(store, account, out).await
        }
        Command::EnableDescendantHooks { account } => {
            commands::enable_descendant_hooks(store, account, out).await
        }
        Command::SetFailureExpiry { account, ms } => {
            commands::set_failure_expiry(store, account.as_ref(), ms, out).await
        }
        Command::SetDisableThreshold { account, count } => {
            commands::set_disable_threshold(store, account.as_ref(), count, out).await
        }
        Command::ResetHookDefinitions => commands::reset_hook_definitions(store, out).await,
        Command::ResetHookDefinition { hook } => {
            commands::reset_hook_definition(store, hook, out).await
        }
        Command::StartModule { module } => commands::start_module(store, module, out).await,
        other => unreachable!("{other:?} does not run on the store"),
    }
}

/// The master account's api key as the store keeps it (`system_config/accounts`
/// `master_account_id`, then that account's `pvt_api_key`): on the daemon's own machine the
/// commands that ask the daemon need no key typed.
pub async fn master_api_key(store: &dyn Store) -> Result<Option<String>, CliError> {
    let Some(master) = store
        .system_config("accounts")
        .await?
        .and_then(|doc| doc.str("master_account_id").map(str::to_owned))
        .and_then(|id| AccountId::parse(&id).ok())
    else {
        return Ok(None);
    };
    Ok(store
        .account(&master)
        .await?
        .and_then(|doc| doc.str("pvt_api_key").map(str::to_owned)))
}

/// Reads an account argument the way KAZOO's maintenance functions do
/// (`kzs_util:format_account_id`): the raw id, or the account's database name, encoded
/// (`account%2Fxx%2Fyy%2F...`) or not (`account/xx/yy/...`), so an id copied from a CouchDB url
/// or a KAZOO log line works as is.
pub fn parse_account_id(arg: &str) -> Result<AccountId, String> {
    let refuse = || {
        format!(
            "not an account id: {arg:?} (expected 32 lowercase hex characters, \
             or the account database name account/xx/yy/...)"
        )
    };
    let decoded = arg.replace("%2F", "/").replace("%2f", "/");
    let raw = match decoded.strip_prefix("account/") {
        Some(rest) => match rest.split('/').collect::<Vec<_>>()[..] {
            [a, b, c] if a.len() == 2 && b.len() == 2 && c.len() == 28 => format!("{a}{b}{c}"),
            _ => return Err(refuse()),
        },
        None => arg.to_owned(),
    };
    AccountId::parse(&raw).map_err(|_| refuse())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn account_ids_are_accepted_raw_or_as_database_names() {
        for arg in [
            ID,
            "account/01/23/456789abcdef0123456789abcdef",
            "account%2F01%2F23%2F456789abcdef0123456789abcdef",
            "account%2f01%2f23%2f456789abcdef0123456789abcdef",
        ] {
            assert_eq!(parse_account_id(arg).unwrap().as_str(), ID, "{arg}");
        }
    }

    #[test]
    fn malformed_account_ids_are_refused_with_the_argument_named() {
        for arg in [
            "",
            "acme",
            "0123456789ABCDEF0123456789abcdef",
            "account/0123/456789abcdef0123456789abcdef",
            "account/01/23/456789abcdef0123456789abcdef/x",
        ] {
            let e = parse_account_id(arg).unwrap_err();
            assert!(e.contains(&format!("{arg:?}")), "{e}");
        }
    }

    #[test]
    fn only_an_unknown_account_is_a_usage_error() {
        let id = AccountId::parse(ID).unwrap();
        assert_eq!(CliError::UnknownAccount(id).exit_code(), 2);
        assert_eq!(CliError::BadCount.exit_code(), 1);
        assert_eq!(CliError::Store(StoreError::Conflict).exit_code(), 1);
    }
}
