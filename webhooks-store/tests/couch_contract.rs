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

/// The attempt writer sends a batch again when the answer to the first write was lost (the
/// server may have written it): attempts carry ids given when they were made, and the second
/// write keeps each once. (The embedded store writes a batch in one transaction, so a batch
/// it reports failed was not written.)
#[tokio::test]
async fn an_attempt_batch_written_twice_is_kept_once() {
    use webhooks_core::store::{AttemptQuery, AttemptStore};
    let store = fresh_store().await;
    let account = webhooks_core::AccountId::random();
    let now = webhooks_core::time::now_gregorian();
    let batch: std::sync::Arc<[webhooks_core::Doc]> = (0..3)
        .map(|n| {
            let mut a = webhooks_store::contract::fixtures::attempt(&account, "h", now, n);
            a.set("_id", webhooks_core::ids::ordered_doc_id());
            a
        })
        .collect();
    store.save_attempts(batch.clone()).await.unwrap();
    store.save_attempts(batch).await.unwrap();
    let page = store
        .attempts(AttemptQuery {
            account,
            hook: None,
            created_from: now - 10,
            created_to: now + 10,
            ascending: true,
            limit: 100,
            start: None,
        })
        .await
        .unwrap();
    assert_eq!(
        webhooks_store::contract::fixtures::ns(&page.attempts),
        [0, 1, 2]
    );
}
