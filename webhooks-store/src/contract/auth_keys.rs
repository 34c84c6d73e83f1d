//! Token signing keys ([`AuthKeyStore`]): a PEM per key id, read back byte for byte.
//!
//! [`AuthKeyStore`]: webhooks_core::store::AuthKeyStore

use webhooks_core::Store;

const PEM_A: &[u8] = b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
const PEM_B: &[u8] = b"-----BEGIN RSA PRIVATE KEY-----\nBBBB\n-----END RSA PRIVATE KEY-----\n";

pub async fn an_unknown_key_id_has_no_key<S: Store>(store: S) {
    assert_eq!(store.auth_key("0123456789abcdef").await.unwrap(), None);
    assert_eq!(store.auth_key("").await.unwrap(), None);
}

pub async fn a_saved_key_is_read_back_byte_for_byte<S: Store>(store: S) {
    // Bytes that are not UTF-8 too: a backend stores what it was given, not text it re-encodes.
    let pem = [PEM_A, &[0xff, 0x00, b'\r', b'\n']].concat();
    store.save_auth_key("kid-1", &pem).await.unwrap();
    assert_eq!(store.auth_key("kid-1").await.unwrap(), Some(pem));
}

pub async fn saving_under_a_used_id_replaces_the_key<S: Store>(store: S) {
    store.save_auth_key("kid-1", PEM_A).await.unwrap();
    store.save_auth_key("kid-1", PEM_B).await.unwrap();
    assert_eq!(
        store.auth_key("kid-1").await.unwrap().as_deref(),
        Some(PEM_B)
    );
}

pub async fn keys_are_kept_per_id<S: Store>(store: S) {
    store.save_auth_key("kid-1", PEM_A).await.unwrap();
    store.save_auth_key("kid-2", PEM_B).await.unwrap();
    assert_eq!(
        store.auth_key("kid-1").await.unwrap().as_deref(),
        Some(PEM_A)
    );
    assert_eq!(
        store.auth_key("kid-2").await.unwrap().as_deref(),
        Some(PEM_B)
    );
    // Key ids are exact, not prefixes or case-folded.
    assert_eq!(store.auth_key("KID-1").await.unwrap(), None);
    assert_eq!(store.auth_key("kid-").await.unwrap(), None);
}
