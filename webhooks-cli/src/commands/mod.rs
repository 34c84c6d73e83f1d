//! One file per command group, each function taking the store and the output to print to.

mod config;
mod hooks;
mod reenable;
mod views;

pub use config::{set_disable_threshold, set_failure_expiry};
pub use hooks::hooks_configured;
pub use reenable::{enable_account_hooks, enable_descendant_hooks};
pub use views::register_views;
