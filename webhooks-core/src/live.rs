//! The hooks that fire and the failures counted against them, kept in step.
//!
//! Two things must move together when a webhook document changes: the hook table (what fires)
//! and the failure counts the disabler reads (what fails). [`LiveHooks`] owns both, and every
//! change goes through [`LiveHooks::apply_doc`], whoever saw it first: the API after a save,
//! the change-feed follower, a KAZOO notice over AMQP, the disabler, a re-enable. So the same
//! change arriving twice is applied once, a copy older than what is applied is ignored, and
//! a failure count starts over only when what it was about changed (where and how requests go,
//! or whether the hook fires at all), never because a renamed hook or a late echo went by.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::account::Account;
use crate::doc::{Doc, Revision};
use crate::failures::FailureTracker;
use crate::hook::{doc_is_enabled, Hook};
use crate::ids::AccountId;
use crate::registry::ModuleRegistry;
use crate::table::{HookTable, Snapshot, TableLoader};

/// What [`LiveHooks::apply_doc`] did with a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Not a hook document (no `_id` or no valid owner).
    NotAHook,
    /// This revision, or a newer one, was applied before: nothing changed.
    AlreadyApplied,
    /// The table follows the document; `failures_cleared` when its target changed.
    Applied { failures_cleared: bool },
}

/// The engine's hooks and their failure counts. One per engine; the API and the engine's parts
/// hold it behind an `Arc`.
pub struct LiveHooks {
    registry: ModuleRegistry,
    table: HookTable,
    failures: FailureTracker,
    /// Revisions of hooks known to be out of the table (disabled or soft-deleted), so a late
    /// copy of an older revision cannot put one back. Hooks in the table carry their own.
    /// The lock also makes each apply one step: read what is there, decide, write.
    absent: Mutex<HashMap<String, Revision>>,
}

impl LiveHooks {
    pub fn new(registry: ModuleRegistry) -> Self {
        LiveHooks {
            registry,
            table: HookTable::new(),
            failures: FailureTracker::new(),
            absent: Mutex::new(HashMap::new()),
        }
    }

    pub fn registry(&self) -> &ModuleRegistry {
        &self.registry
    }

    /// The table as it is now; hold it for the length of one event so all lookups agree.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.table.snapshot()
    }

    /// Read access to the failure counts (the disabler's question, `failure_status`).
    pub fn failures(&self) -> &FailureTracker {
        &self.failures
    }

    /// A start-up load: replaces the table with what `loader` gathered; returns the documents
    /// it skipped.
    pub fn load(&self, loader: TableLoader) -> usize {
        let _one_at_a_time = self.absent.lock().unwrap_or_else(|e| e.into_inner());
        loader.finish(&self.table)
    }

    /// Applies a saved webhook document (see the module's documentation). An enabled, live
    /// hook is put in the table; a disabled, deleted or unloadable one is taken out. A
    /// tombstone (no `_rev`) is always applied. KAZOO adds a hook created with
    /// `enabled: false` until its next edit (bug §16.13); not repeated here.
    pub fn apply_doc(&self, doc: &Doc) -> Applied {
        let (Some(id), Some(account)) = (
            doc.id(),
            doc.account_id().and_then(|a| AccountId::parse(a).ok()),
        ) else {
            return Applied::NotAHook;
        };
        let mut absent = self.absent.lock().unwrap_or_else(|e| e.into_inner());
        let current = self
            .table
            .snapshot()
            .hooks_of(&account)
            .find(|h| h.id == id)
            .cloned();
        let known = match &current {
            Some(hook) => hook.rev,
            None => absent.get(id).copied(),
        };
        if let (Some(rev), Some(known)) = (doc.revision(), known) {
            if rev.is_superseded_by(&known) {
                return Applied::AlreadyApplied;
            }
        }
        let next = (!doc.is_deleted() && doc_is_enabled(doc))
            .then(|| Hook::from_doc(doc, |e| self.registry.is_available(e)).ok())
            .flatten();
        let retargeted = match (&current, &next) {
            (Some(before), Some(after)) => !before.same_target(after),
            (None, None) => false,
            _ => true,
        };
        match next {
            Some(hook) => {
                absent.remove(id);
                self.table.upsert(hook);
            }
            None => {
                match doc.revision() {
                    Some(rev) => absent.insert(id.to_owned(), rev),
                    None => absent.remove(id),
                };
                self.table.remove(&account, id);
            }
        }
        if retargeted {
            self.failures.flush_hook(&account, id);
        }
        Applied::Applied {
            failures_cleared: retargeted,
        }
    }

    /// Records (or updates) an account's place in the tree.
    pub fn set_account(&self, account: &Account) {
        self.table.set_account(account);
    }

    /// An account was deleted: its hooks stop firing and their counts go.
    pub fn remove_account(&self, account: &AccountId) {
        self.table.remove_account(account);
        self.failures.flush_account(account);
    }

    /// One failed try of a hook, at `now_ms` (unix milliseconds).
    pub fn record_failure(&self, account: &AccountId, hook: &str, now_ms: i64) {
        self.failures.record(account, hook, now_ms);
    }

    /// Forgets a hook's failures: nothing can be done about them (a callflow's hook has no
    /// document to disable; the hook is already off), or an operator flushed them. Returns
    /// how many there were.
    pub fn forget_failures(&self, account: &AccountId, hook: &str) -> usize {
        self.failures.flush_hook(account, hook)
    }

    /// Forgets the failures of every hook of an account (an operator flushed them); returns
    /// how many there were.
    pub fn forget_account_failures(&self, account: &AccountId) -> usize {
        self.failures.flush_account(account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OWNER: &str = "00000000000000000000000000000001";

    fn live() -> LiveHooks {
        let registry =
            ModuleRegistry::new().register(crate::test_modules::StandIn::named("channel_destroy"));
        LiveHooks::new(registry)
    }

    fn owner() -> AccountId {
        AccountId::parse(OWNER).unwrap()
    }

    fn hook(rev: &str, fields: serde_json::Value) -> Doc {
        let mut doc = Doc::from_value(json!({"_id": "h", "_rev": rev, "pvt_account_id": OWNER,
            "hook": "channel_destroy", "uri": "http://a.test/", "name": "n"}))
        .unwrap();
        for (k, v) in fields.as_object().unwrap() {
            doc.set(k, v.clone());
        }
        doc
    }

    fn failures(live: &LiveHooks) -> usize {
        live.failures()
            .counts(10, |_| 1_000)
            .iter()
            .map(|(_, _, n)| n)
            .sum()
    }

    fn fail_three_times(live: &LiveHooks) {
        for t in 0..3 {
            live.record_failure(&owner(), "h", t);
        }
    }

    #[test]
    fn the_same_revision_seen_again_keeps_the_failures() {
        // The API applies a save, failures follow, then the change feed brings the same save.
        let live = live();
        assert!(matches!(
            live.apply_doc(&hook("1-a", json!({}))),
            Applied::Applied { .. }
        ));
        fail_three_times(&live);
        assert_eq!(
            live.apply_doc(&hook("1-a", json!({}))),
            Applied::AlreadyApplied
        );
        assert_eq!(failures(&live), 3);
    }

    #[test]
    fn an_older_revision_arriving_late_changes_nothing() {
        let live = live();
        live.apply_doc(&hook("1-a", json!({})));
        live.apply_doc(&hook("2-b", json!({"enabled": false})));
        assert_eq!(
            live.apply_doc(&hook("1-a", json!({}))),
            Applied::AlreadyApplied
        );
        assert_eq!(live.snapshot().hook_count(), 0, "the disable stands");
    }

    #[test]
    fn only_a_change_of_target_or_of_enabled_clears_the_failures() {
        let live = live();
        live.apply_doc(&hook("1-a", json!({})));
        fail_three_times(&live);
        let renamed = live.apply_doc(&hook("2-b", json!({"name": "other", "retries": 3})));
        assert_eq!(
            renamed,
            Applied::Applied {
                failures_cleared: false
            }
        );
        assert_eq!(failures(&live), 3);
        live.apply_doc(&hook("3-c", json!({"uri": "http://b.test/"})));
        assert_eq!(failures(&live), 0, "a new uri starts over");
        fail_three_times(&live);
        live.apply_doc(&hook(
            "4-d",
            json!({"uri": "http://b.test/", "enabled": false}),
        ));
        assert_eq!(failures(&live), 0, "disabling starts over");
    }

    #[test]
    fn a_tombstone_always_applies_and_a_recreated_hook_comes_back() {
        let live = live();
        live.apply_doc(&hook("5-a", json!({})));
        let tombstone =
            Doc::from_value(json!({"_id": "h", "pvt_account_id": OWNER, "pvt_deleted": true}))
                .unwrap();
        live.apply_doc(&tombstone);
        assert_eq!(live.snapshot().hook_count(), 0);
        live.apply_doc(&hook("1-z", json!({})));
        assert_eq!(live.snapshot().hook_count(), 1);
    }
}
