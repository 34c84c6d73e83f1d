//! The hook table: which hooks fire for which (account, event), in memory.
//!
//! Every event asks the table; edits are rare. So readers get an immutable [`Snapshot`] through
//! an atomic pointer load and never wait, and a writer builds the next snapshot and swaps it in.
//! The map is persistent (structural sharing), so a write copies one small part of it and the
//! edited account's short entry, not the whole table: with a million hooks an edit stays cheap.
//! Writers serialise on a mutex no reader ever touches.
//!
//! The layout is chosen for lookups that miss the CPU caches, as they do on a platform with
//! a hundred thousand accounts: one map keyed by the account id itself (inline, no pointer to
//! chase), one entry per account holding both its place in the tree (ancestors, so reseller
//! hooks are found without a store round trip) and its hooks, and, per hook, the event's hash
//! and the `include_subaccounts` flag beside the pointer, so only the hooks that match are ever
//! dereferenced.

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use smallvec::SmallVec;

use crate::account::Account;
use crate::doc::Doc;
use crate::hook::{doc_is_enabled, Hook};
use crate::ids::AccountId;
use crate::module::HookFinder;
use crate::registry::ModuleRegistry;
use crate::tag::{event_tag, FLAG_BITS};

/// The account map's hasher: foldhash, seeded per process (ids can be chosen by API clients,
/// so the seed keeps them from aiming at one bucket).
type Hasher = foldhash::fast::RandomState;

/// The accounts, persistent: 1024 small hash tables behind shared pointers. A lookup hashes the
/// id once, picks the table from the hash and probes it: the table list stays in cache, so a
/// lookup that misses the cache waits for memory about twice (the probe, the entry), where a
/// hash trie waits once per level. An edit copies the list of pointers and the one table it
/// touches (a hundred entries at 100 000 accounts), so snapshots still share everything else.
#[derive(Clone)]
struct AccountMap {
    hasher: Hasher,
    shards: Arc<Vec<Arc<Shard>>>,
}

type Shard = hashbrown::HashTable<(AccountId, AccountEntry)>;

impl Default for AccountMap {
    fn default() -> Self {
        AccountMap::with_hasher(Hasher::default())
    }
}

impl AccountMap {
    const SHARDS: usize = 1024;

    fn with_hasher(hasher: Hasher) -> Self {
        AccountMap {
            hasher,
            shards: Arc::new((0..Self::SHARDS).map(|_| Arc::default()).collect()),
        }
    }

    fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// The table of a hash: bits 32 to 41, away from the low bits the table indexes buckets
    /// with and the top seven it keeps as tags, so entries of one table still spread out.
    fn shard_of(hash: u64) -> usize {
        (hash >> 32) as usize % Self::SHARDS
    }

    fn get(&self, id: &AccountId) -> Option<&AccountEntry> {
        let hash = self.hasher.hash_one(id);
        self.shards[Self::shard_of(hash)]
            .find(hash, |(k, _)| k == id)
            .map(|(_, e)| e)
    }

    /// The table of `hash`, made this map's own (copied if a snapshot shares it).
    fn shard_mut(shards: &mut Arc<Vec<Arc<Shard>>>, hash: u64) -> &mut Shard {
        Arc::make_mut(&mut Arc::make_mut(shards)[Self::shard_of(hash)])
    }

    fn insert(&mut self, id: AccountId, entry: AccountEntry) {
        let hasher = &self.hasher;
        let hash = hasher.hash_one(&id);
        let shard = Self::shard_mut(&mut self.shards, hash);
        match shard.find_mut(hash, |(k, _)| *k == id) {
            Some(slot) => slot.1 = entry,
            None => {
                shard.insert_unique(hash, (id, entry), |(k, _)| hasher.hash_one(k));
            }
        }
    }

    fn remove(&mut self, id: &AccountId) -> Option<AccountEntry> {
        let hash = self.hasher.hash_one(id);
        // Only an id that is there is worth copying its table for.
        self.shards[Self::shard_of(hash)].find(hash, |(k, _)| k == id)?;
        let shard = Self::shard_mut(&mut self.shards, hash);
        let found = shard.find_entry(hash, |(k, _)| k == id).ok()?;
        Some(found.remove().0 .1)
    }

    fn values(&self) -> impl Iterator<Item = &AccountEntry> {
        self.shards.iter().flat_map(|s| s.iter().map(|(_, e)| e))
    }
}

/// One hook as the table keeps it, 16 bytes: the hook's event tag with its flags, and the
/// pointer to the rest. An account's slots sit side by side, so filtering ten hooks reads
/// three cache lines and dereferences only the hooks that match.
#[derive(Clone)]
struct Slot {
    tag: u64,
    hook: Arc<Hook>,
}

impl Slot {
    /// The hook's event is `all`.
    const ALL: u64 = 1;
    /// The hook has `include_subaccounts`.
    const SUBACCOUNTS: u64 = 2;
    const FLAGS: u64 = FLAG_BITS;
    const _FLAGS_FIT: () = assert!(Self::ALL | Self::SUBACCOUNTS == FLAG_BITS);

    fn new(hook: Arc<Hook>) -> Slot {
        let mut tag = event_tag(&hook.event);
        if hook.event == "all" {
            tag |= Self::ALL;
        }
        if hook.include_subaccounts {
            tag |= Self::SUBACCOUNTS;
        }
        Slot { tag, hook }
    }

    fn matches(&self, tag: u64) -> bool {
        self.tag & Self::ALL != 0 || self.tag & !Self::FLAGS == tag
    }

    fn for_subaccounts(&self) -> bool {
        self.tag & Self::SUBACCOUNTS != 0
    }
}

/// Ancestors, root first. Inline up to three levels (master, reseller, sub-reseller), the
/// depth of nearly every KAZOO tree; deeper trees spill to the heap.
type Ancestors = SmallVec<[AccountId; 3]>;

/// What the table knows of one account.
#[derive(Clone, Default)]
struct AccountEntry {
    /// Ancestors, root first (empty for the root and for accounts whose tree is unknown).
    ancestors: Ancestors,
    hooks: Arc<[Slot]>,
}

impl AccountEntry {
    fn is_empty(&self) -> bool {
        self.ancestors.is_empty() && self.hooks.is_empty()
    }
}

/// One immutable state of the table.
#[derive(Clone, Default)]
pub struct Snapshot {
    accounts: AccountMap,
    hook_count: usize,
}

impl Snapshot {
    pub fn hook_count(&self) -> usize {
        self.hook_count
    }

    /// The hooks an account owns.
    pub fn hooks_of(&self, account: &AccountId) -> impl Iterator<Item = &Arc<Hook>> + '_ {
        self.accounts
            .get(account)
            .into_iter()
            .flat_map(|e| e.hooks.iter().map(|s| &s.hook))
    }

    /// Every hook, owner by owner (order unspecified).
    pub fn all_hooks(&self) -> impl Iterator<Item = &Arc<Hook>> {
        self.accounts
            .values()
            .flat_map(|e| e.hooks.iter().map(|s| &s.hook))
    }

    /// The account's ancestors, root first (empty for unknown accounts and the root).
    pub fn ancestors(&self, account: &AccountId) -> &[AccountId] {
        self.accounts
            .get(account)
            .map(|e| &e.ancestors[..])
            .unwrap_or(&[])
    }
}

impl HookFinder for Snapshot {
    fn find(&self, hook_event: &str, account: &AccountId) -> Vec<Arc<Hook>> {
        let Some(entry) = self.accounts.get(account) else {
            return Vec::new();
        };
        let tag = event_tag(hook_event);
        let mut out: Vec<Arc<Hook>> = entry
            .hooks
            .iter()
            .filter(|s| s.matches(tag))
            .map(|s| s.hook.clone())
            .collect();
        for ancestor in entry.ancestors.iter() {
            if let Some(e) = self.accounts.get(ancestor) {
                out.extend(
                    e.hooks
                        .iter()
                        .filter(|s| s.for_subaccounts() && s.matches(tag))
                        .map(|s| s.hook.clone()),
                );
            }
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
    trees: std::collections::HashMap<AccountId, Ancestors>,
    grouped: std::collections::HashMap<AccountId, Vec<Arc<Hook>>>,
    skipped: usize,
}

impl TableLoader {
    /// Starts from the account tree.
    pub fn new(accounts: &[Account]) -> Self {
        TableLoader {
            trees: accounts
                .iter()
                .map(|a| (a.id.clone(), a.tree.iter().cloned().collect()))
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
        let mut entries: std::collections::HashMap<AccountId, AccountEntry> = self
            .trees
            .into_iter()
            .map(|(account, ancestors)| {
                let hooks = Arc::new([]);
                (account, AccountEntry { ancestors, hooks })
            })
            .collect();
        let mut snap = table.empty_snapshot();
        for (account, hooks) in self.grouped {
            snap.hook_count += hooks.len();
            entries.entry(account).or_default().hooks = hooks.into_iter().map(Slot::new).collect();
        }
        for (account, entry) in entries {
            if !entry.is_empty() {
                snap.accounts.insert(account, entry);
            }
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

    /// An empty snapshot with this table's hasher (a fresh one would reseed).
    fn empty_snapshot(&self) -> Snapshot {
        Snapshot {
            accounts: AccountMap::with_hasher(self.current.load().accounts.hasher().clone()),
            hook_count: 0,
        }
    }

    fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        let _guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = Snapshot::clone(&self.current.load());
        f(&mut next);
        self.current.store(Arc::new(next));
    }

    /// Changes one account's entry (created when missing; dropped when left empty).
    fn edit(&self, account: &AccountId, f: impl FnOnce(&mut AccountEntry, &mut usize)) {
        self.update(|s| {
            let mut entry = s.accounts.get(account).cloned().unwrap_or_default();
            f(&mut entry, &mut s.hook_count);
            if entry.is_empty() {
                s.accounts.remove(account);
            } else {
                s.accounts.insert(account.clone(), entry);
            }
        });
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

    /// Inserts a hook or replaces the one with its id. Changes of documents go through
    /// `LiveHooks::apply_doc` (`live.rs`), which decides this.
    pub fn upsert(&self, hook: Hook) {
        let account = hook.account_id.clone();
        self.edit(&account, |entry, count| {
            let mut hooks: Vec<Slot> = entry
                .hooks
                .iter()
                .filter(|s| s.hook.id != hook.id)
                .cloned()
                .collect();
            *count = *count + 1 - (entry.hooks.len() - hooks.len());
            hooks.push(Slot::new(Arc::new(hook)));
            entry.hooks = hooks.into();
        });
    }

    /// Takes a hook out (nothing happens when it is not there).
    pub fn remove(&self, account: &AccountId, hook_id: &str) {
        if !self.snapshot().hooks_of(account).any(|h| h.id == hook_id) {
            return;
        }
        self.edit(account, |entry, count| {
            let hooks: Vec<Slot> = entry
                .hooks
                .iter()
                .filter(|s| s.hook.id != hook_id)
                .cloned()
                .collect();
            *count -= entry.hooks.len() - hooks.len();
            entry.hooks = hooks.into();
        });
    }

    /// Records (or updates) an account's place in the tree.
    pub fn set_account(&self, account: &Account) {
        self.edit(&account.id, |entry, _| {
            entry.ancestors = account.tree.iter().cloned().collect();
        });
    }

    /// Drops an account and every hook it owns (its descendants are untouched, as in KAZOO).
    pub fn remove_account(&self, account: &AccountId) {
        self.update(|s| {
            if let Some(old) = s.accounts.remove(account) {
                s.hook_count -= old.hooks.len();
            }
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
        use crate::test_modules::StandIn;
        ModuleRegistry::new()
            .register(StandIn::named("channel_create"))
            .register(StandIn::named("object"))
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

    /// What `LiveHooks::apply_doc` does to the table, without its revision bookkeeping.
    fn apply(t: &HookTable, doc: &Doc) {
        let r = registry();
        match Hook::from_doc(doc, |e| r.is_available(e)) {
            Ok(h) if !doc.is_deleted() && doc_is_enabled(doc) => t.upsert(h),
            _ => t.remove(
                &AccountId::parse(doc.account_id().unwrap()).unwrap(),
                doc.id().unwrap(),
            ),
        }
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
        apply(&t, &d);
        assert_eq!(
            ids(before.find("channel_create", &id(CHILD)))[0],
            "own",
            "old snapshot unchanged"
        );
        assert!(!ids(t.snapshot().find("channel_create", &id(CHILD))).contains(&"own".to_string()));
        assert_eq!(t.snapshot().hook_count(), 6);
        apply(&t, &hook_doc("own", CHILD, "channel_create", false));
        assert_eq!(t.snapshot().hook_count(), 7);
        apply(&t, &hook_doc("own", CHILD, "channel_create", false));
        assert_eq!(t.snapshot().hook_count(), 7, "replacing does not duplicate");
        let mut gone = hook_doc("own", CHILD, "channel_create", false);
        gone.set("pvt_deleted", true);
        apply(&t, &gone);
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

    #[test]
    fn many_accounts_edited_one_by_one_keep_every_snapshot_whole() {
        let t = HookTable::new();
        let accounts: Vec<AccountId> = (0..5000u32)
            .map(|n| {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&n.to_be_bytes());
                AccountId::from_bytes(b)
            })
            .collect();
        for (n, a) in accounts.iter().enumerate() {
            apply(&t, &hook_doc(&format!("h{n}"), a.as_str(), "object", false));
        }
        let full = t.snapshot();
        for a in accounts.iter().step_by(2) {
            t.remove_account(a);
        }
        let half = t.snapshot();
        assert_eq!((full.hook_count(), half.hook_count()), (5000, 2500));
        for (n, a) in accounts.iter().enumerate() {
            assert_eq!(ids(full.find("object", a)), vec![format!("h{n}")]);
            assert_eq!(half.find("object", a).len(), n % 2, "{n}");
        }
        assert_eq!(half.all_hooks().count(), 2500);
    }
}
