//! Which MODBs hold attempts: CouchDB cannot say (`_all_dbs` lists every database of the
//! server, and PouchDB's drops the `/` from the names), so the store keeps the list itself, in
//! `_local/attempt_months` of the `webhooks` database: `{"months": {account: [YYYYMM...]}}`.
//! A `_local` document is never replicated nor shown in `_changes` or views, so KAZOO's tools
//! never see it.
//!
//! A process remembers the MODBs it made ready (created, `_design/webhooks` installed, listed
//! here), so only an attempt in a new month costs more than its `_bulk_docs`.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, PoisonError};

use serde_json::json;
use webhooks_core::store::StoreError;
use webhooks_core::{AccountId, Doc};

use super::client::Couch;
use super::names::{modb, Month, WEBHOOKS};
use super::views;

const REGISTRY: &str = "_local/attempt_months";
/// Rounds of read-then-write before a registry update gives up (writers race only when they
/// add a month at the same moment).
const ROUNDS: usize = 10;

#[derive(Default)]
pub(super) struct Months {
    ready: Mutex<HashSet<(AccountId, Month)>>,
}

type Registry = BTreeMap<String, Vec<Month>>;

impl Months {
    /// Makes an account's MODB ready for attempts, as KAZOO creates one: the database, its
    /// `_design/webhooks`, and (here) its place in the registry.
    pub async fn ensure(
        &self,
        couch: &Couch,
        account: &AccountId,
        month: Month,
    ) -> Result<(), StoreError> {
        let key = (account.clone(), month);
        if self.lock().contains(&key) {
            return Ok(());
        }
        let db = modb(account, month);
        couch.create_db(&db).await?;
        views::ensure(couch, &db, views::MODB_DESIGN).await?;
        update(couch, |r| {
            let months = r.entry(account.to_string()).or_default();
            let new = !months.contains(&month);
            if new {
                months.push(month);
                months.sort_unstable();
            }
            new
        })
        .await?;
        self.lock().insert(key);
        Ok(())
    }

    /// Forgets that a MODB was ready (another process dropped it).
    pub fn forget(&self, account: &AccountId, month: Month) {
        self.lock().remove(&(account.clone(), month));
    }

    /// Takes a dropped MODB out of the registry.
    pub async fn remove(
        &self,
        couch: &Couch,
        account: &AccountId,
        month: Month,
    ) -> Result<(), StoreError> {
        self.forget(account, month);
        update(couch, |r| {
            let Some(months) = r.get_mut(account.as_str()) else {
                return false;
            };
            months.retain(|m| *m != month);
            if months.is_empty() {
                r.remove(account.as_str());
            }
            true
        })
        .await
    }

    pub async fn of_account(
        &self,
        couch: &Couch,
        account: &AccountId,
    ) -> Result<Vec<Month>, StoreError> {
        let (registry, _) = read(couch).await?;
        Ok(registry.get(account.as_str()).cloned().unwrap_or_default())
    }

    pub async fn all(&self, couch: &Couch) -> Result<Vec<(AccountId, Month)>, StoreError> {
        let (registry, _) = read(couch).await?;
        Ok(registry
            .into_iter()
            .filter_map(|(a, months)| Some((AccountId::parse(&a).ok()?, months)))
            .flat_map(|(a, months)| months.into_iter().map(move |m| (a.clone(), m)))
            .collect())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<(AccountId, Month)>> {
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The registry and its revision (`None` before the first write).
async fn read(couch: &Couch) -> Result<(Registry, Option<String>), StoreError> {
    let Some(doc) = couch.get_raw(WEBHOOKS, REGISTRY).await? else {
        return Ok((Registry::new(), None));
    };
    let registry = doc
        .get("months")
        .cloned()
        .and_then(|m| serde_json::from_value(m).ok())
        .unwrap_or_default();
    Ok((registry, doc.rev().map(str::to_owned)))
}

/// Applies `change` (which says whether it changed anything) and writes the result, again
/// from a fresh read when another writer got there first.
async fn update(couch: &Couch, change: impl Fn(&mut Registry) -> bool) -> Result<(), StoreError> {
    for _ in 0..ROUNDS {
        let (mut registry, rev) = read(couch).await?;
        if !change(&mut registry) {
            return Ok(());
        }
        let mut doc = Doc::from_value(json!({"months": registry})).expect("an object");
        if let Some(rev) = rev {
            doc.set("_rev", rev);
        }
        match couch.put_raw(WEBHOOKS, REGISTRY, &doc).await {
            Err(StoreError::Conflict) => continue,
            other => return other.map(drop),
        }
    }
    Err(StoreError::Backend(
        "the attempt month registry kept changing".into(),
    ))
}
