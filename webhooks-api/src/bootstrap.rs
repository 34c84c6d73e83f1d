//! First start: the master account, its api key, and the token signing secret.
//!
//! KAZOO is installed with a master ("super-duper admin") account; a standalone engine creates
//! one the first time it starts on an empty store. The api key is the operator's choice
//! (`--master-api-key`) or generated once and printed by the daemon; either way it is stored,
//! so later starts need nothing.

use serde_json::json;
use webhooks_core::ids::{new_doc_id, random_hex};
use webhooks_core::store::StoreResult;
use webhooks_core::{AccountId, Doc, Store};

/// What a start found or created.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub master_account_id: AccountId,
    pub master_api_key: String,
    /// True when this start created the master account (the daemon then prints the key).
    pub created: bool,
    pub signing_secret: Vec<u8>,
    /// KAZOO's `cluster.cluster_id`: random, persisted at the first start, added to payloads.
    pub cluster_id: String,
}

/// Finds or creates the master account and the signing secret. With `api_key`, the master's
/// key is set to it (so an operator can rotate it by restarting with a new value).
pub async fn bootstrap(store: &dyn Store, api_key: Option<&str>) -> StoreResult<Bootstrap> {
    let mut accounts_cfg = store.system_config("accounts").await?.unwrap_or_default();
    let existing = match accounts_cfg
        .str("master_account_id")
        .and_then(|id| AccountId::parse(id).ok())
    {
        Some(id) => store.account(&id).await?,
        None => None,
    };
    let (master, created) = match existing {
        Some(mut doc) => {
            if let Some(key) = api_key {
                if doc.str("pvt_api_key") != Some(key) {
                    doc.set("pvt_api_key", key);
                    doc = store.save_account(doc).await?;
                }
            }
            (doc, false)
        }
        None => {
            let id = AccountId::random();
            let now = webhooks_core::time::now_gregorian();
            let key = api_key.map(str::to_owned).unwrap_or_else(|| random_hex(32));
            let doc = Doc::from_value(json!({
                "_id": id.as_str(),
                "name": "master",
                "realm": "master.webhooks.local",
                "pvt_type": "account",
                "pvt_tree": [],
                "pvt_api_key": key,
                "pvt_enabled": true,
                "pvt_superduper_admin": true,
                "pvt_account_id": id.as_str(),
                "pvt_account_db": id.db_name(),
                "pvt_created": now,
                "pvt_modified": now,
            }))
            .expect("object");
            let saved = store.save_account(doc).await?;
            accounts_cfg.set("master_account_id", id.as_str());
            store.save_system_config("accounts", accounts_cfg).await?;
            (saved, true)
        }
    };
    let mut crossbar_cfg = store.system_config("crossbar").await?.unwrap_or_default();
    let secret = match crossbar_cfg.str("token_signing_secret") {
        Some(s) => s.to_owned(),
        None => {
            let s = random_hex(32);
            crossbar_cfg.set("token_signing_secret", s.as_str());
            store.save_system_config("crossbar", crossbar_cfg).await?;
            s
        }
    };
    let mut cluster_cfg = store.system_config("cluster").await?.unwrap_or_default();
    let cluster_id = match cluster_cfg.str("cluster_id") {
        Some(c) => c.to_owned(),
        None => {
            let c = new_doc_id();
            cluster_cfg.set("cluster_id", c.as_str());
            store.save_system_config("cluster", cluster_cfg).await?;
            c
        }
    };
    Ok(Bootstrap {
        cluster_id,
        master_account_id: AccountId::parse(master.id().unwrap_or_default())
            .expect("stored master id is valid"),
        master_api_key: master.str("pvt_api_key").unwrap_or_default().to_owned(),
        created,
        signing_secret: secret.into_bytes(),
    })
}
