//! The store contract (`webhooks_store::contract`), run against the CouchDB store on a real
//! CouchDB-compatible server (testkit's shared PouchDB Server): each case gets databases of its
//! own through a fresh random prefix.

async fn fresh_store() -> webhooks_store::CouchStore {
    let config = webhooks_store::CouchConfig {
        prefix: format!("t{}_", webhooks_core::ids::random_hex(6)),
        ..webhooks_store::CouchConfig::new(webhooks_testkit::couchdb::shared_url())
    };
    webhooks_store::CouchStore::connect(config).await.unwrap()
}

webhooks_store::store_contract_tests!(fresh_store().await);
