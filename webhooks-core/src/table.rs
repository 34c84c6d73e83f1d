//! The hook table: which hooks fire for which (account, event), in memory.
//!
//! Every event asks the table; edits are rare. So readers get an immutable [`Snapshot`] through
//! an atomic pointer load and never wait, and a writer builds the next snapshot and swaps it in.
//! The maps are persistent (structural sharing), so a write copies a path of the tree and the
//! edited account's short hook list, not the whole table: with a million hooks an edit stays
//! cheap. Writers serialise on a mutex no reader ever touches.
//!
//! The table also keeps each account's ancestors, so reseller hooks (`include_subaccounts`)
//! are found without a store round trip per event.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use imbl::HashMap;

use crate::account::Account;
use crate::doc::Doc;
use crate::hook::{doc_is_enabled, Hook};
use crate::ids::AccountId;
use crate::module::HookFinder;
use crate::registry::ModuleRegistry;

/// One immutable state of the table.
#[derive(Clone, Default)]
pub struct Snapshot {
    /// Every hook, by owner.
    by_account: HashMap<AccountId, Arc<[Arc<Hook>]>>,
    /// Ancestors of each known account, root first.
    trees: HashMap<AccountId, Arc<[AccountId]>>,
    hook_count: usize,
}

impl Snapshot {
    pub fn hook_count(&self) -> usize {
        self.hook_count
    }

    /// The hooks an account owns.
    pub fn hooks_of(&self, account: &AccountId) -> &[Arc<Hook>] {
        self.by_account.get(account).map(|h| &h[..]).unwrap_or(&[])
    }

    /// Every hook, owner by owner (order unspecified).
    pub fn all_hooks(&self) -> impl Iterator<Item = &Arc<Hook>> {
        self.by_account.values().flat_map(|h| h.iter())
    }

    /// The account's ancestors, root first (empty for unknown accounts and the root).
    pub fn ancestors(&self, account: &AccountId) -> &[AccountId] {
        self.trees.get(account).map(|t| &t[..]).unwrap_or(&[])
    }
}

fn matches(hook: &Hook, event: &str) -> bool {
    hook.event == event || hook.event == "all"
}

impl HookFinder for Snapshot {
    fn find(&self, hook_event: &str, account: &AccountId) -> Vec<Arc<Hook>> {
        let mut out: Vec<Arc<Hook>> = self
            .hooks_of(account)
            .iter()
            .filter(|h| matches(h, hook_event))
            .cloned()
            .collect();
        for ancestor in self.ancestors(account) {
            out.extend(
                self.hooks_of(ancestor)
                    .iter()
                    .filter(|h| h.include_subaccounts && matches(h, hook_event))
                    .cloned(),
            );
        }
        out
    }

    /// KAZOO's reseller of an account: here the root of its tree (the master account sells to
    /// everyone below it); the root is its own reseller.
    fn reseller_of(&self, account: &AccountId) -> Option<AccountId> {
        Some(self.ancestors(account).first().unwrap_or(account).clone())
    }
}

/// Builds a whole table from documents handed in one at a time, so a start-up load can read the
/// store page by page and drop each page once its hooks are built: memory holds the hooks,
/// never every hook document at once.
pub struct TableLoader {
    trees: HashMap<AccountId, Arc<[AccountId]>>,
    grouped: std::collections::HashMap<AccountId, Vec<Arc<Hook>>>,
    skipped: usize,
}

impl TableLoader {
    /// Starts from the account tree.
    pub fn new(accounts: &[Account]) -> Self {
        TableLoader {
            trees: accounts
                .iter()
                .map(|a| (a.id.clone(), a.tree.clone().into()))
                .collect(),
            grouped: Default::default(),
            skipped: 0,
        }
    }

    /// Adds one stored document: an enabled, live hook joins its owner's list; a disabled or
    /// deleted one is left out; one that cannot become a hook (unknown event, bad verb, ...)
    /// is counted as skipped. A later version of the same hook replaces the earlier one.
    pub fn add(&mut self, doc: &Doc, registry: &ModuleRegistry) {
        let (Some(id), Some(account)) = (
            doc.id(),
            doc.account_id().and_then(|a| AccountId::parse(a).ok()),
        ) else {
            self.skipped += !doc.is_deleted() as usize;
            return;
        };
        let list = self.grouped.entry(account).or_default();
        list.retain(|h| h.id != id);
        if doc.is_deleted() || !doc_is_enabled(doc) {
            return;
        }
        match Hook::from_doc(doc, |e| registry.is_available(e)) {
            Ok(h) => list.push(Arc::new(h)),
            Err(_) => self.skipped += 1,
        }
    }

    /// Replaces `table`'s contents with what was added; returns how many documents were
    /// skipped.
    pub fn finish(self, table: &HookTable) -> usize {
        let mut snap = Snapshot {
            trees: self.trees,
            ..Snapshot::default()
        };
        for (account, hooks) in self.grouped {
            if hooks.is_empty() {
                continue;
            }
            snap.hook_count += hooks.len();
            snap.by_account.insert(account, hooks.into());
        }
        let _guard = table.writer.lock().unwrap_or_else(|e| e.into_inner());
        table.current.store(Arc::new(snap));
        self.skipped
    }
}

/// The shared, swappable table.
#[derive(Default)]
pub struct HookTable {
    current: ArcSwap<Snapshot>,
    writer: Mutex<()>,
}

impl HookTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current state; hold it for the length of one event so all lookups agree.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        let _guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = Snapshot::clone(&self.current.load());
        f(&mut next);
        self.current.store(Arc::new(next));
    }

    /// Replaces the whole table (start-up load). Returns how many documents were skipped
    /// because they could not become hooks (unknown event, bad verb, ...).
    pub fn load(
        &self,
        accounts: &[Account],
        hook_docs: &[Doc],
        registry: &ModuleRegistry,
    ) -> usize {
        let mut loader = TableLoader::new(accounts);
        for doc in hook_docs {
            loader.add(doc, registry);
        }
        loader.finish(self)
    }

    /// Applies a saved webhook document: an enabled, live hook is inserted or replaced; a
    /// disabled, deleted or unloadable one is removed. (KAZOO adds a hook created with
    /// `enabled: false` until its next edit: bug §16.13, not repeated here.)
    pub fn apply_doc(&self, doc: &Doc, registry: &ModuleRegistry) {
        let (Some(id), Some(account)) = (
            doc.id(),
            doc.account_id().and_then(|a| AccountId::parse(a).ok()),
        ) else {
            return;
        };
        let hook = (!doc.is_deleted() && doc_is_enabled(doc))
            .then(|| Hook::from_doc(doc, |e| registry.is_available(e)).ok())
            .flatten();
        match hook {
            Some(h) => self.upsert(h),
            None => self.remove(&account, id),
        }
    }

    pub fn upsert(&self, hook: Hook) {
        self.update(|s| {
            let account = hook.account_id.clone();
            let old = s
                .by_account
                .get(&account)
                .cloned()
                .unwrap_or_else(|| Arc::from([]));
            let mut list: Vec<Arc<Hook>> =
                old.iter().filter(|h| h.id != hook.id).cloned().collect();
            s.hook_count = s.hook_count + 1 - (old.len() - list.len());
            list.push(Arc::new(hook));
            s.by_account.insert(account, list.into());
        });
    }

    pub fn remove(&self, account: &AccountId, hook_id: &str) {
        if !self
            .snapshot()
            .hooks_of(account)
            .iter()
            .any(|h| h.id == hook_id)
        {
            return;
        }
        self.update(|s| {
            let old = s
                .by_account
                .get(account)
                .cloned()
                .unwrap_or_else(|| Arc::from([]));
            let list: Vec<Arc<Hook>> = old.iter().filter(|h| h.id != hook_id).cloned().collect();
            s.hook_count -= old.len() - list.len();
            if list.is_empty() {
                s.by_account.remove(account);
            } else {
                s.by_account.insert(account.clone(), list.into());
            }
        });
    }

    /// Records (or updates) an account's place in the tree.
    pub fn set_account(&self, account: &Account) {
        self.update(|s| {
            s.trees
                .insert(account.id.clone(), account.tree.clone().into());
        });
    }

    /// Drops an account and every hook it owns (its descendants are untouched, as in KAZOO).
    pub fn remove_account(&self, account: &AccountId) {
        self.update(|s| {
            if let Some(old) = s.by_account.remove(account) {
                s.hook_count -= old.len();
            }
            s.trees.remove(account);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROOT: &str = "00000000000000000000000000000001";
    const RESELLER: &str = "00000000000000000000000000000002";
    const CHILD: &str = "00000000000000000000000000000003";
    const SIBLING: &str = "00000000000000000000000000000004";

    fn id(s: &str) -> AccountId {
        AccountId::parse(s).unwrap()
    }

    fn account(s: &str, tree: &[&str]) -> Account {
        Account::from_doc(
            &Doc::from_value(json!({"_id": s, "pvt_type": "account", "pvt_tree": tree})).unwrap(),
        )
        .unwrap()
    }

    fn hook_doc(hid: &str, owner: &str, event: &str, subaccounts: bool) -> Doc {
        Doc::from_value(
            json!({"_id": hid, "pvt_account_id": owner, "uri": "http://x/", "hook": event,
            "include_subaccounts": subaccounts}),
        )
        .unwrap()
    }

    fn registry() -> ModuleRegistry {
        webhooks_modules_stub::registry()
    }

    /// A registry knowing `channel_create` and `object`, without depending on the modules crate.
    mod webhooks_modules_stub {
        use crate::event::{Event, EventError};
        use crate::module::*;
        use crate::registry::ModuleRegistry;
        struct M(&'static str);
        impl WebhookModule for M {
            fn init(&self) -> ModuleMetadata {
                ModuleMetadata {
                    id: self.0.into(),
                    name: self.0.into(),
                    description: String::new(),
                    modifiers: None,
                }
            }
            fn bindings_and_responders(&self) -> Vec<Binding> {
                vec![]
            }
            fn handle_event(
                &self,
                _: &Event,
                _: &dyn HookFinder,
            ) -> Result<Vec<Dispatch>, EventError> {
                Ok(vec![])
            }
        }
        pub fn registry() -> ModuleRegistry {
            ModuleRegistry::new()
                .register(M("channel_create"))
                .register(M("object"))
        }
    }

    fn table() -> HookTable {
        let t = HookTable::new();
        let accounts = [
            account(ROOT, &[]),
            account(RESELLER, &[ROOT]),
            account(CHILD, &[ROOT, RESELLER]),
            account(SIBLING, &[ROOT]),
        ];
        let docs = [
            hook_doc("own", CHILD, "channel_create", false),
            hook_doc("own-all", CHILD, "all", false),
            hook_doc("own-object", CHILD, "object", false),
            hook_doc("reseller-sub", RESELLER, "channel_create", true),
            hook_doc("reseller-plain", RESELLER, "channel_create", false),
            hook_doc("root-sub", ROOT, "all", true),
            hook_doc("sibling-sub", SIBLING, "channel_create", true),
            hook_doc("unknown", CHILD, "nope", false),
        ];
        assert_eq!(t.load(&accounts, &docs, &registry()), 1);
        t
    }

    fn ids(hooks: Vec<Arc<Hook>>) -> Vec<String> {
        hooks.iter().map(|h| h.id.clone()).collect()
    }

    #[test]
    fn find_returns_own_then_ancestors_subaccount_hooks_root_first() {
        let t = table();
        let s = t.snapshot();
        assert_eq!(
            ids(s.find("channel_create", &id(CHILD))),
            vec!["own", "own-all", "root-sub", "reseller-sub"]
        );
        assert_eq!(
            ids(s.find("channel_create", &id(SIBLING))),
            vec!["sibling-sub", "root-sub"]
        );
        assert_eq!(s.hook_count(), 7);
        assert_eq!(s.reseller_of(&id(CHILD)), Some(id(ROOT)));
    }

    #[test]
    fn edits_swap_snapshots_without_disturbing_readers() {
        let t = table();
        let before = t.snapshot();
        let mut d = hook_doc("own", CHILD, "channel_create", false);
        d.set("enabled", false);
        t.apply_doc(&d, &registry());
        assert_eq!(
            ids(before.find("channel_create", &id(CHILD)))[0],
            "own",
            "old snapshot unchanged"
        );
        assert!(!ids(t.snapshot().find("channel_create", &id(CHILD))).contains(&"own".to_string()));
        assert_eq!(t.snapshot().hook_count(), 6);
        t.apply_doc(
            &hook_doc("own", CHILD, "channel_create", false),
            &registry(),
        );
        assert_eq!(t.snapshot().hook_count(), 7);
        t.apply_doc(
            &hook_doc("own", CHILD, "channel_create", false),
            &registry(),
        );
        assert_eq!(t.snapshot().hook_count(), 7, "replacing does not duplicate");
        let mut gone = hook_doc("own", CHILD, "channel_create", false);
        gone.set("pvt_deleted", true);
        t.apply_doc(&gone, &registry());
        assert_eq!(t.snapshot().hook_count(), 6);
    }

    #[test]
    fn removing_an_account_drops_its_hooks_only() {
        let t = table();
        t.remove_account(&id(RESELLER));
        let s = t.snapshot();
        assert_eq!(
            ids(s.find("channel_create", &id(CHILD))),
            vec!["own", "own-all", "root-sub"]
        );
        assert_eq!(s.hook_count(), 5);
    }

    #[test]
    fn a_loader_keeps_each_hooks_latest_version_only() {
        let t = HookTable::new();
        let mut loader = TableLoader::new(&[account(ROOT, &[])]);
        let r = registry();
        loader.add(&hook_doc("a", ROOT, "channel_create", false), &r);
        loader.add(&hook_doc("b", ROOT, "channel_create", false), &r);
        loader.add(&hook_doc("c", ROOT, "channel_create", false), &r);
        // Later in the feed: "a" became an object hook, "b" was disabled, "c" deleted.
        loader.add(&hook_doc("a", ROOT, "object", false), &r);
        let mut b = hook_doc("b", ROOT, "channel_create", false);
        b.set("enabled", false);
        loader.add(&b, &r);
        let mut c = hook_doc("c", ROOT, "channel_create", false);
        c.set("pvt_deleted", true);
        loader.add(&c, &r);
        loader.add(&hook_doc("bad", ROOT, "nope", false), &r);
        assert_eq!(loader.finish(&t), 1, "one document could not become a hook");
        let s = t.snapshot();
        assert_eq!(s.hook_count(), 1);
        assert_eq!(ids(s.find("object", &id(ROOT))), vec!["a"]);
        assert!(s.find("channel_create", &id(ROOT)).is_empty());
    }
}
