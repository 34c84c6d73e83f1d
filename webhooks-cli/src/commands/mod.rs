//! One file per command group. Commands on the store take it and the output to print to;
//! commands that ask the daemon take a [`crate::daemon::Daemon`].

pub mod attempts;
mod config;
mod definitions;
pub mod failures;
mod hooks;
mod reenable;
pub mod trigger;
mod views;

pub use config::{set_disable_threshold, set_failure_expiry};
pub use definitions::{reset_hook_definition, reset_hook_definitions, start_module};
pub use hooks::hooks_configured;
pub use reenable::{enable_account_hooks, enable_descendant_hooks};
pub use views::register_views;
