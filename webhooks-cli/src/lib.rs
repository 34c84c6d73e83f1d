//! # webhooks-cli: the maintenance commands
//!
//! KAZOO operators look after webhooks with `sup webhooks_maintenance <function> [args]`: list
//! the hooks that would fire, re-enable hooks the disabler switched off, tune the disabler's
//! threshold and window (spec §12). The `webhooks` binary offers the same commands, with
//! KAZOO's output lines, as `webhooks <command> [args]`.
//!
//! It opens the store directly rather than asking the daemon, so it works whether or not
//! `webhooksd` runs: the embedded store (SQLite in WAL mode lets a second process read and
//! write alongside it), or KAZOO's CouchDB with `--couchdb-url`.
//!
//! Start reading with [`Command`] (the command line) and [`run`] (which hands each command to
//! its file under `commands/`). Every command takes a [`Store`] and a [`Write`] for its output,
//! so tests drive them on any store and read what they print. This crate owns no domain logic:
//! re-enabling is `webhooks_core::reenable`, hook conversion is `webhooks_core::hook`, and the
//! list of known hook names comes from `webhooks_modules`.

pub mod commands;

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
    /// Install (or bring up to date) the CouchDB design documents KAZOO's code queries.
    ///
    /// On KAZOO's CouchDB (`--couchdb-url`) only: the embedded store has no views.
    RegisterViews,
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
            CliError::UnknownAccount(_) => 2,
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

/// Runs one command against `opened`, printing to `out`.
pub async fn run(opened: &Opened, command: &Command, out: &mut impl Write) -> Result<(), CliError> {
    let store = opened.store();
    match command {
        Command::RegisterViews => commands::register_views(opened.couch(), out).await,
        Command::HooksConfigured { account } => {
            commands::hooks_configured(store, account.as_ref(), out).await
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
    }
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
