//! The accounts, hooks and events every benchmark and load scenario is built from.
//!
//! One shape at every size: a master account, resellers below it (one per thousand accounts),
//! nine sub-resellers below each reseller, and customers spread over all of them, so customer
//! trees are two or three accounts deep. Each account owns the same number of hooks, one per
//! hook type in turn; every other hook of a reseller includes sub-accounts. A customer's event
//! therefore meets its own hooks and several ancestors' lists, as on a real reseller platform.
//! Ids are deterministic but spread like random ones, so hash maps see realistic keys.

use serde_json::{json, Map, Value};
use std::sync::Arc;
use webhooks_core::config::DEFAULT_OBJECT_TYPES;
use webhooks_core::table::HookTable;

use webhooks_core::{
    Account, AccountId, Doc, Event, Hook, HookFinder, ModuleRegistry, Store, StoreError,
};

/// KAZOO's modules with the default object types: what `webhooksd` registers.
pub fn registry() -> ModuleRegistry {
    let types: Vec<String> = DEFAULT_OBJECT_TYPES.iter().map(|s| s.to_string()).collect();
    webhooks_modules::kazoo_registry(&types)
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn hex_id(n: u64, salt: u64) -> [u8; 16] {
    let hi = splitmix64(n ^ salt);
    let lo = splitmix64(hi ^ n);
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&hi.to_be_bytes());
    b[8..].copy_from_slice(&lo.to_be_bytes());
    b
}

/// The `n`th account id of the fixtures.
pub fn account_id(n: u64) -> AccountId {
    AccountId::from_bytes(hex_id(n, 0xacc0))
}

/// The `n`th hook id of the fixtures (32 hex characters, like a CouchDB id).
pub fn hook_id(n: u64) -> String {
    webhooks_core::ids::hex32(hex_id(n, 0x4004))
}

/// A pseudo-random sequence for picking accounts, the same every run.
pub fn pick(i: u64, len: usize) -> usize {
    (splitmix64(i ^ 0x5eed) % len as u64) as usize
}

/// An account tree.
pub struct Population {
    /// Index 0 is the master account; then resellers, sub-resellers and customers.
    pub accounts: Vec<Account>,
    /// How many accounts (after the master) resell: they own `include_subaccounts` hooks.
    pub resellers: usize,
}

impl Population {
    /// `n` accounts (at least 3).
    pub fn new(n: usize) -> Population {
        let n = n.max(3);
        let top = (n / 1000).max(1);
        let subs = (top * 9).min(n.saturating_sub(1 + top + 1));
        let resellers = top + subs;
        let mut accounts = Vec::with_capacity(n);
        let account = |i: usize, tree: Vec<AccountId>| Account {
            id: account_id(i as u64),
            name: format!("account {i}"),
            realm: Some(format!("a{i}.sip.example.test")),
            tree,
            enabled: true,
            superduper_admin: i == 0,
        };
        accounts.push(account(0, vec![]));
        for i in 1..=top {
            accounts.push(account(i, vec![account_id(0)]));
        }
        for s in 0..subs {
            let parent = 1 + s % top;
            let tree = vec![account_id(0), account_id(parent as u64)];
            accounts.push(account(1 + top + s, tree));
        }
        for i in (1 + resellers)..n {
            let parent = 1 + (i % resellers);
            let mut tree = accounts[parent].tree.clone();
            tree.push(accounts[parent].id.clone());
            accounts.push(account(i, tree));
        }
        Population {
            accounts,
            resellers,
        }
    }

    /// The customers: accounts below every reseller, the ones events usually name.
    pub fn customers(&self) -> &[Account] {
        &self.accounts[1 + self.resellers..]
    }

    pub fn is_reseller(&self, index: usize) -> bool {
        (1..=self.resellers).contains(&index)
    }

    /// `per_account` hook documents for every account, hook types in turn, every other hook
    /// of a reseller including sub-accounts; `uri(account index, hook index)` says where each
    /// one points.
    pub fn hook_docs<'a>(
        &'a self,
        per_account: usize,
        hook_types: &'a [String],
        uri: impl Fn(usize, usize) -> String + 'a,
    ) -> impl Iterator<Item = Doc> + 'a {
        let uri = std::rc::Rc::new(uri);
        self.accounts.iter().enumerate().flat_map(move |(a, acc)| {
            let uri = uri.clone();
            (0..per_account).map(move |j| {
                let hook = &hook_types[(a + j) % hook_types.len()];
                let n = (a * per_account + j) as u64;
                hook_doc(
                    &hook_id(n),
                    &acc.id,
                    hook,
                    &uri(a, j),
                    self.is_reseller(a) && j % 2 == 0,
                )
            })
        })
    }
}

/// The document an account is stored as.
pub fn account_doc(a: &Account) -> Doc {
    Doc(json!({
        "_id": a.id, "pvt_type": "account", "name": a.name, "realm": a.realm,
        "pvt_tree": a.tree, "pvt_enabled": a.enabled,
    })
    .as_object()
    .cloned()
    .unwrap_or_default())
}

/// A webhook document as crossbar would store it. `object` and `notifications` hooks take
/// every type and action, as most do.
pub fn hook_doc(id: &str, account: &AccountId, hook: &str, uri: &str, subaccounts: bool) -> Doc {
    let mut m = json!({
        "_id": id, "pvt_type": "webhook", "pvt_account_id": account,
        "name": format!("{hook} hook"), "hook": hook, "uri": uri,
        "http_verb": "post", "retries": 3, "enabled": true,
        "include_subaccounts": subaccounts,
    });
    match hook {
        "object" => m["custom_data"] = json!({"type": "all", "action": "all"}),
        "notifications" => m["custom_data"] = json!({"type": "all"}),
        _ => {}
    }
    Doc(m.as_object().cloned().unwrap_or_default())
}

/// A hook table of `hooks` hooks over `accounts` accounts, loaded the way the engine loads
/// its store at start. Building a million hooks takes a few seconds and about a gigabyte
/// while the documents exist.
pub fn hook_table(hooks: usize, accounts: usize) -> (HookTable, Population, ModuleRegistry) {
    let registry = registry();
    let population = Population::new(accounts);
    let per_account = hooks.div_ceil(population.accounts.len());
    let types = registry.hook_names();
    let docs: Vec<Doc> = population
        .hook_docs(per_account, &types, |a, j| {
            format!("http://hooks{}.example.test/in/{j}", a % 64)
        })
        .take(hooks)
        .collect();
    let table = HookTable::new();
    table.load(&population.accounts, &docs, &registry);
    (table, population, registry)
}

/// KAZOO's CHANNEL_CREATE sample, re-addressed per account and call.
pub struct CallEvents {
    template: Map<String, Value>,
}

impl CallEvents {
    pub fn new() -> CallEvents {
        let template = webhooks_modules::sample_events("channel_create")
            .and_then(|mut v| v.pop())
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        CallEvents { template }
    }

    /// The event for `account`, with `Call-ID` set to `call_id`.
    pub fn json(&self, account: &AccountId, call_id: String) -> Map<String, Value> {
        let mut m = self.template.clone();
        m.insert("Call-ID".into(), Value::String(call_id));
        if let Some(Value::Object(ccv)) = m.get_mut("Custom-Channel-Vars") {
            ccv.insert("Account-ID".into(), Value::String(account.to_string()));
        }
        m
    }

    pub fn event(&self, account: &AccountId, call_id: String) -> Event {
        Event(self.json(account, call_id))
    }
}

impl Default for CallEvents {
    fn default() -> Self {
        Self::new()
    }
}

/// Saves one reseller under `master` and `n` customers under it (ids `account_id(2)` on) in
/// `store`; returns the customers' ids, in order.
pub async fn save_customers(
    store: &dyn Store,
    master: &AccountId,
    n: usize,
) -> Result<Vec<AccountId>, StoreError> {
    let reseller = Account {
        id: account_id(1),
        name: "reseller".into(),
        realm: None,
        tree: vec![master.clone()],
        enabled: true,
        superduper_admin: false,
    };
    store.save_account(account_doc(&reseller)).await?;
    let mut customers = Vec::with_capacity(n);
    for i in 0..n {
        let customer = Account {
            id: account_id(2 + i as u64),
            name: format!("customer {i}"),
            tree: vec![master.clone(), reseller.id.clone()],
            ..reseller.clone()
        };
        store.save_account(account_doc(&customer)).await?;
        customers.push(customer.id);
    }
    Ok(customers)
}

/// Answers every lookup with one hook: a module's payload for that hook, without a table.
pub struct Only(pub Arc<Hook>);

impl HookFinder for Only {
    fn find(&self, _: &str, _: &AccountId) -> Vec<Arc<Hook>> {
        vec![self.0.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webhooks_core::HookFinder;

    #[test]
    fn trees_are_two_or_three_deep_and_hooks_match() {
        let (table, population, _) = hook_table(10_000, 1_000);
        assert_eq!(table.snapshot().hook_count(), 10_000);
        assert!(population
            .customers()
            .iter()
            .all(|a| (2..=3).contains(&a.tree.len())));
        let snap = table.snapshot();
        let found: usize = population
            .customers()
            .iter()
            .map(|a| snap.find("channel_create", &a.id).len())
            .sum();
        assert!(
            found > population.customers().len(),
            "own and reseller hooks match"
        );
        let event = CallEvents::new().event(&population.accounts[5].id, "LOADT1".into());
        assert_eq!(event.str("Call-ID"), Some("LOADT1"));
        assert_eq!(
            event.ccv("Account-ID"),
            Some(population.accounts[5].id.as_str())
        );
    }
}
