//! The disabler (spec §8): every `attempt_failure_expiry_ms / 4`, hooks with at least
//! `attempt_failure_count` failed tries within `attempt_failure_expiry_ms` are switched off
//! (`enabled: false`, `pvt_disabled_message`), dropped from the table, and a
//! `webhook_disabled` notification is published. A hook whose receiver answered `410 Gone`
//! is switched off the same way at once (the recorder hands it over), with that reason.
//!
//! Thresholds are looked up per account: the account's own `configs_webhooks`, else the
//! nearest ancestor's, else the system value (KAZOO's account → reseller → system chain).
//! Unlike KAZOO, turning `disable_disabler` off again takes effect without a restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use webhooks_core::config::WebhooksConfig;
use webhooks_core::failures::Threshold;
use webhooks_core::hook::{doc_is_enabled, AUTO_DISABLED_MESSAGE};
use webhooks_core::live::LiveHooks;
use webhooks_core::transport::Notifier;
use webhooks_core::{AccountId, Event, Store, StoreError};

use crate::recorder::{GoneHook, GONE_MESSAGE};
use crate::settings::Settings;
use crate::stats::{inc, EngineStats};

/// Where the disabler's `webhook_disabled` notices go: to the transport once one is attached
/// (they come back in through it, as in KAZOO), else to `local` (the engine's own intake), so
/// `notifications` hooks for `webhook_disabled` (or `all`) fire once either way.
pub(crate) struct Notices {
    pub(crate) transport: ArcSwapOption<Box<dyn Notifier>>,
    pub(crate) local: Box<dyn Notifier>,
}

impl Notices {
    async fn send(&self, event: &Event) -> Result<(), String> {
        match self.transport.load_full() {
            Some(n) => n.notify(event).await,
            None => self.local.notify(event).await,
        }
    }
}

pub(crate) struct Disabler {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) hooks: Arc<LiveHooks>,
    pub(crate) settings: Settings,
    pub(crate) stats: Arc<EngineStats>,
    pub(crate) notices: Arc<Notices>,
    /// `Node` of the notices.
    pub(crate) node: String,
    /// Hooks whose receiver answered 410 Gone, disabled as they come.
    pub(crate) gone: tokio::sync::mpsc::UnboundedReceiver<GoneHook>,
}

impl Disabler {
    /// Ticks until `stop`: re-reads the settings, then disables what is due.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        loop {
            if let Err(e) = self.settings.reload(self.store.as_ref()).await {
                tracing::warn!(error = %e, "could not read webhooks settings");
            }
            let settings = self.settings.current();
            let tick = Duration::from_millis((settings.attempt_failure_expiry_ms / 4).max(100));
            if !settings.disable_disabler {
                if let Err(e) = self.check(&settings).await {
                    tracing::warn!(error = %e, "disabler check failed");
                }
            }
            let sleep = tokio::time::sleep(tick);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = &mut sleep => break,
                    Some(gone) = self.gone.recv() => self.disable_gone(gone).await,
                }
            }
        }
    }

    /// Disables a hook whose receiver answered 410 Gone (the first such answer is enough).
    async fn disable_gone(&self, gone: GoneHook) {
        match self.disable(&gone.account, &gone.hook, GONE_MESSAGE).await {
            Ok(true) => {
                inc(&self.stats.hooks_gone);
                tracing::warn!(account = %gone.account, hook = %gone.hook, "hook disabled: its receiver answered 410 Gone");
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, hook = %gone.hook, "could not disable a hook whose receiver answered 410 Gone")
            }
        }
    }

    /// One check: disable every hook at or over its threshold.
    async fn check(&self, system: &WebhooksConfig) -> Result<usize, StoreError> {
        let failures = self.hooks.failures();
        let mut thresholds = HashMap::new();
        for account in failures.accounts() {
            let t = threshold(self.store.as_ref(), &self.hooks, &account, system).await?;
            thresholds.insert(account, t);
        }
        let default = Threshold {
            count: system.attempt_failure_count,
            window_ms: system.attempt_failure_expiry_ms,
        };
        let due = failures.due_for_disable(webhooks_core::time::now_unix_ms(), |a| {
            thresholds.get(a).copied().unwrap_or(default)
        });
        let mut disabled = 0;
        for (account, hook, count) in due {
            if self.disable(&account, &hook, AUTO_DISABLED_MESSAGE).await? {
                inc(&self.stats.hooks_disabled);
                tracing::warn!(%account, hook, failures = count, "hook auto-disabled: too many failed attempts");
                disabled += 1;
            }
        }
        Ok(disabled)
    }

    /// Switches one hook off, saying why in `pvt_disabled_message`, and publishes
    /// `webhook_disabled`. Returns false when there was nothing to disable (a callflow's
    /// ad-hoc hook has no document; a hook already disabled or deleted).
    async fn disable(
        &self,
        account: &AccountId,
        hook_id: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        for _ in 0..3 {
            let Some(mut doc) = self.store.hook(hook_id).await? else {
                tracing::info!(%account, hook = hook_id, "failing hook has no document (callflow webhook); not disabled");
                self.hooks.forget_failures(account, hook_id);
                return Ok(false);
            };
            if doc.account_id() != Some(account.as_str())
                || doc.is_deleted()
                || !doc_is_enabled(&doc)
            {
                // Already off: the table follows the document, and the count has nothing
                // left to act on.
                self.hooks.apply_doc(&doc);
                self.hooks.forget_failures(account, hook_id);
                return Ok(false);
            }
            doc.set("enabled", false);
            doc.set("pvt_disabled_message", reason);
            doc.touch();
            match self.store.save_hook(doc).await {
                Ok(saved) => {
                    // Out of the table, and its count starts over (the hook fires no more).
                    self.hooks.apply_doc(&saved);
                    self.notify(account, hook_id);
                    return Ok(true);
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// KAZOO's `webhook_disabled` notification (§4.5), sent without holding up the check.
    fn notify(&self, account: &AccountId, hook_id: &str) {
        let event = json!({
            "Account-ID": account,
            "Hook-ID": hook_id,
            "Event-Category": "notification",
            "Event-Name": "webhook_disabled",
            "App-Name": "webhooks",
            "App-Version": env!("CARGO_PKG_VERSION"),
            "Node": self.node,
        });
        let notices = self.notices.clone();
        tokio::spawn(async move {
            let Ok(event) = Event::from_value(event) else {
                return;
            };
            if let Err(e) = notices.send(&event).await {
                tracing::warn!(error = %e, "webhook_disabled notification not published");
            }
        });
    }
}

/// An account's disable threshold and window: its own `configs_webhooks`, else the nearest
/// ancestor's, else the system's (KAZOO's account → reseller → system chain).
pub(crate) async fn threshold(
    store: &dyn Store,
    hooks: &LiveHooks,
    account: &AccountId,
    system: &WebhooksConfig,
) -> Result<Threshold, StoreError> {
    let snap = hooks.snapshot();
    let mut chain = vec![account.clone()];
    chain.extend(snap.ancestors(account).iter().rev().cloned());
    let (mut count, mut window) = (None, None);
    for a in chain {
        if count.is_some() && window.is_some() {
            break;
        }
        if let Some(doc) = store.account_config(&a, "webhooks").await? {
            count = count.or_else(|| doc.get("attempt_failure_count").and_then(Value::as_u64));
            window =
                window.or_else(|| doc.get("attempt_failure_expiry_ms").and_then(Value::as_u64));
        }
    }
    Ok(Threshold {
        count: count
            .map(|c| c as u32)
            .unwrap_or(system.attempt_failure_count),
        window_ms: window.unwrap_or(system.attempt_failure_expiry_ms),
    })
}
