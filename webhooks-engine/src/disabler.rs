//! The disabler (spec §8): every `attempt_failure_expiry_ms / 4`, hooks with at least
//! `attempt_failure_count` failed tries within `attempt_failure_expiry_ms` are switched off
//! (`enabled: false`, `pvt_disabled_message`), dropped from the table, and a
//! `webhook_disabled` notification is published.
//!
//! Thresholds are looked up per account: the account's own `configs_webhooks`, else the
//! nearest ancestor's, else the system value (KAZOO's account → reseller → system chain).
//! Unlike KAZOO, turning `disable_disabler` off again takes effect without a restart.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use webhooks_core::config::WebhooksConfig;
use webhooks_core::failures::Threshold;
use webhooks_core::hook::{doc_is_enabled, AUTO_DISABLED_MESSAGE};
use webhooks_core::{AccountId, Event, StoreError};

use crate::engine::Engine;
use crate::stats::inc;

pub(crate) async fn run(engine: Engine) {
    loop {
        if let Err(e) = engine.reload_settings().await {
            tracing::warn!(error = %e, "could not read webhooks settings");
        }
        let settings = engine.settings();
        let tick = Duration::from_millis((settings.attempt_failure_expiry_ms / 4).max(100));
        if !settings.disable_disabler {
            if let Err(e) = check(&engine, &settings).await {
                tracing::warn!(error = %e, "disabler check failed");
            }
        }
        tokio::time::sleep(tick).await;
    }
}

/// One check: disable every hook at or over its threshold.
pub(crate) async fn check(engine: &Engine, system: &WebhooksConfig) -> Result<usize, StoreError> {
    let shared = engine.shared();
    let mut thresholds = HashMap::new();
    for account in shared.failures.accounts() {
        let t = threshold(engine, &account, system).await?;
        thresholds.insert(account, t);
    }
    let default = Threshold {
        count: system.attempt_failure_count,
        window_ms: system.attempt_failure_expiry_ms,
    };
    let due = shared
        .failures
        .due_for_disable(webhooks_core::time::now_unix_ms(), |a| {
            thresholds.get(a).copied().unwrap_or(default)
        });
    let mut disabled = 0;
    for (account, hook, count) in due {
        if disable(engine, &account, &hook, count).await? {
            disabled += 1;
        }
    }
    Ok(disabled)
}

async fn threshold(
    engine: &Engine,
    account: &AccountId,
    system: &WebhooksConfig,
) -> Result<Threshold, StoreError> {
    let shared = engine.shared();
    let snap = shared.hooks.snapshot();
    let mut chain = vec![account.clone()];
    chain.extend(snap.ancestors(account).iter().rev().cloned());
    let (mut count, mut window) = (None, None);
    for a in chain {
        if count.is_some() && window.is_some() {
            break;
        }
        if let Some(doc) = shared.store.account_config(&a, "webhooks").await? {
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

/// Switches one hook off. Returns false when there was nothing to disable (a callflow's ad-hoc
/// hook has no document; a hook already disabled or deleted).
async fn disable(
    engine: &Engine,
    account: &AccountId,
    hook_id: &str,
    count: usize,
) -> Result<bool, StoreError> {
    let shared = engine.shared();
    for _ in 0..3 {
        let Some(mut doc) = shared.store.hook(hook_id).await? else {
            tracing::info!(%account, hook = hook_id, "failing hook has no document (callflow webhook); not disabled");
            shared.failures.flush_hook(account, hook_id);
            return Ok(false);
        };
        if doc.account_id() != Some(account.as_str()) || doc.is_deleted() || !doc_is_enabled(&doc) {
            shared.hooks.apply_doc(&doc, &shared.registry);
            shared.failures.flush_hook(account, hook_id);
            return Ok(false);
        }
        doc.set("enabled", false);
        doc.set("pvt_disabled_message", AUTO_DISABLED_MESSAGE);
        doc.set("pvt_modified", webhooks_core::time::now_gregorian());
        match shared.store.save_hook(doc).await {
            Ok(saved) => {
                shared.hooks.apply_doc(&saved, &shared.registry);
                shared.failures.flush_hook(account, hook_id);
                inc(&shared.stats.hooks_disabled);
                tracing::warn!(%account, hook = hook_id, failures = count, "hook auto-disabled: too many failed attempts");
                notify(engine, account, hook_id);
                return Ok(true);
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// KAZOO's `webhook_disabled` notification (§4.5): to the transport when one is attached (it
/// comes back through it, as in KAZOO), else straight into the engine, so that
/// `notifications` hooks for `webhook_disabled` (or `all`) fire once either way.
fn notify(engine: &Engine, account: &AccountId, hook_id: &str) {
    let event = json!({
        "Account-ID": account,
        "Hook-ID": hook_id,
        "Event-Category": "notification",
        "Event-Name": "webhook_disabled",
        "App-Name": "webhooks",
        "App-Version": env!("CARGO_PKG_VERSION"),
        "Node": "webhooksd",
    });
    let engine = engine.clone();
    tokio::spawn(async move {
        let Ok(event) = Event::from_value(event) else {
            return;
        };
        let notifier = engine.shared().notifier.load_full();
        let sent = match notifier {
            Some(n) => n.notify(&event).await.map_err(|e| e.to_string()),
            None => engine
                .publish(event)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "webhook_disabled notification not published");
        }
    });
}
