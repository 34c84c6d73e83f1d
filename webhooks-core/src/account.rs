//! Accounts and their tree.
//!
//! KAZOO accounts form a tree: every account document carries `pvt_tree`, the list of its
//! ancestors root first. Authorisation ("a token may act on its own account and its
//! descendants") and reseller hooks (`include_subaccounts`) both reduce to "is X in Y's tree",
//! which [`Account::is_descendant_of`] answers without touching storage.

use serde_json::Value;

use crate::doc::Doc;
use crate::ids::AccountId;

/// A typed view of an account document.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub realm: Option<String>,
    /// Ancestors, root first; empty for the master (root) account.
    pub tree: Vec<AccountId>,
    pub enabled: bool,
    pub superduper_admin: bool,
}

impl Account {
    /// Reads an account from its document; `None` when it is not a usable account doc.
    pub fn from_doc(doc: &Doc) -> Option<Account> {
        if doc.pvt_type() != Some("account") || doc.is_deleted() {
            return None;
        }
        let id = AccountId::parse(doc.id()?).ok()?;
        let tree = doc
            .get("pvt_tree")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter_map(|s| AccountId::parse(s).ok())
                    .collect()
            })
            .unwrap_or_default();
        Some(Account {
            id,
            name: doc.str("name").unwrap_or_default().to_owned(),
            realm: doc.str("realm").map(str::to_owned),
            tree,
            enabled: doc.bool("pvt_enabled").unwrap_or(true),
            superduper_admin: doc.bool("pvt_superduper_admin").unwrap_or(false),
        })
    }

    /// The direct parent, if any.
    pub fn parent(&self) -> Option<&AccountId> {
        self.tree.last()
    }

    /// True when `ancestor` is a strict ancestor of this account.
    pub fn is_descendant_of(&self, ancestor: &AccountId) -> bool {
        self.tree.contains(ancestor)
    }

    /// True when this account is `other` or one of its descendants: the rule for what a token
    /// issued to `other` may act on.
    pub fn is_within(&self, other: &AccountId) -> bool {
        &self.id == other || self.is_descendant_of(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROOT: &str = "00000000000000000000000000000001";
    const MID: &str = "00000000000000000000000000000002";
    const LEAF: &str = "00000000000000000000000000000003";

    fn leaf() -> Account {
        Account::from_doc(
            &Doc::from_value(json!({
                "_id": LEAF, "pvt_type": "account", "name": "leaf", "pvt_tree": [ROOT, MID]
            }))
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn tree_answers_descendancy() {
        let a = leaf();
        assert!(a.is_descendant_of(&AccountId::parse(ROOT).unwrap()));
        assert!(a.is_within(&AccountId::parse(LEAF).unwrap()));
        assert!(!a.is_descendant_of(&AccountId::parse(LEAF).unwrap()));
        assert_eq!(a.parent().unwrap().as_str(), MID);
    }

    #[test]
    fn deleted_or_foreign_docs_are_not_accounts() {
        let d = Doc::from_value(json!({"_id": LEAF, "pvt_type": "webhook"})).unwrap();
        assert!(Account::from_doc(&d).is_none());
        let d = Doc::from_value(json!({"_id": LEAF, "pvt_type": "account", "pvt_deleted": true}))
            .unwrap();
        assert!(Account::from_doc(&d).is_none());
    }
}
