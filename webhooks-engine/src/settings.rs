//! KAZOO's `webhooks` settings (timeouts, thresholds, success logging), read from the store.
//! The disabler re-reads them on every tick; everyone else holds a [`Settings`] and reads the
//! current value.

use std::sync::Arc;

use arc_swap::ArcSwap;
use webhooks_core::config::WebhooksConfig;
use webhooks_core::{Store, StoreError};

/// The current settings, shared. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Settings(Arc<ArcSwap<WebhooksConfig>>);

impl Settings {
    /// Reads the settings from the store.
    pub(crate) async fn read(store: &dyn Store) -> Result<Settings, StoreError> {
        let doc = store.system_config("webhooks").await?;
        Ok(Settings(Arc::new(ArcSwap::from_pointee(
            WebhooksConfig::from_doc(doc.as_ref()),
        ))))
    }

    pub(crate) fn current(&self) -> Arc<WebhooksConfig> {
        self.0.load_full()
    }

    /// Whether successes are recorded too. Asked after every try: a guard, not a counted
    /// reference, so the tries on both cores do not fight over one reference count.
    pub(crate) fn log_successful_attempts(&self) -> bool {
        self.0.load().log_successful_attempts
    }

    /// Reads them again now.
    pub(crate) async fn reload(&self, store: &dyn Store) -> Result<(), StoreError> {
        let doc = store.system_config("webhooks").await?;
        self.0
            .store(Arc::new(WebhooksConfig::from_doc(doc.as_ref())));
        Ok(())
    }
}
