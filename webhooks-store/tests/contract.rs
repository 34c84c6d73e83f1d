//! The store contract (`webhooks_store::contract`), run against the embedded store: a fresh
//! in-memory store per case.

webhooks_store::store_contract_tests!(webhooks_store::EmbeddedStore::open_in_memory().unwrap());
