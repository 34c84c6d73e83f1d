//! KAZOO's own tokens: RS256 JWTs that crossbar (`kazoo_auth`) signs with a system key, and
//! that either side accepts from the other.
//!
//! What KAZOO keeps, and what this file reads and writes through the store:
//!
//! - **The keys.** KAZOO's `system_auth` database holds one document per key, its `_id` the key
//!   id (`pvt_type: system_key`), the PKCS#1 PEM private key as its `private_key.pem`
//!   attachment. Here: [`AuthKeyStore`](webhooks_core::store::AuthKeyStore), the PEM by key id.
//!   A token's header names its key (`kid`); the public key that checks it is derived from the
//!   private one.
//! - **Which key signs.** `system_config/auth`, `default.system_key` (KAZOO's layout; a
//!   top-level `system_key` is read too). When there is none, KAZOO picks a random id, saves it
//!   there and generates a 2048-bit key under it; so does [`KazooKeys::issue`], saving the key
//!   before the setting, so that a setting never names a key that is not there yet.
//! - **The identity signature.** `identity_sig` is base64url(HMAC-SHA256(account secret ++
//!   system secret, identity)): the account's `pvt_signature_secret` and
//!   `system_config/auth` `default.secret_for_user_signature`, each 32 random hex characters
//!   made the first time a token needs them. The identity is the account id for api-key
//!   tokens, the user (`owner_id`) or device for logins. Changing the account's secret revokes
//!   every token it had.
//!
//! Keys are cached per id: a found key for [`KEY_TTL`], after which it is read again (a key
//! rotated in the store is picked up); a signature that fails against a key older than
//! [`REFETCH_GAP`] reads the key again once; an unknown id is asked again at most once per
//! [`REFETCH_GAP`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::Value;
use sha2::Sha256;
use webhooks_core::ids::random_hex;
use webhooks_core::{AccountId, Doc, Store, StoreError};

use crate::claims::Claims;

/// KAZOO's `system_config` category of auth settings.
pub const AUTH_CATEGORY: &str = "auth";
/// The setting that names the key new tokens are signed with.
pub const SYSTEM_KEY_SETTING: &str = "system_key";
/// The system half of the identity signature's key.
pub const SYSTEM_SECRET_SETTING: &str = "secret_for_user_signature";
/// The account half of the identity signature's key, on the account document.
pub const ACCOUNT_SECRET_FIELD: &str = "pvt_signature_secret";
/// KAZOO's `RSA_KEY_SIZE`.
pub const KEY_BITS: usize = 2048;
/// How long a key, a system key choice or the system secret is used before it is read again.
pub const KEY_TTL: Duration = Duration::from_secs(60);
/// The shortest time between two reads of one key id.
pub const REFETCH_GAP: Duration = Duration::from_secs(5);
/// Key ids remembered at most; tokens naming random ids cannot grow the cache past it.
const MAX_CACHED_KEYS: usize = 256;
/// Saves retried when another writer got in between (two nodes creating the system key).
const CONFLICT_RETRIES: usize = 3;

/// Errors of the KAZOO token machinery that are not simply "this token is invalid".
#[derive(Debug, thiserror::Error)]
pub enum KazooTokenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored key that is not an RSA private key in PEM (PKCS#1 or PKCS#8).
    #[error("key {0:?} is not an RSA private key in PEM")]
    BadKey(String),
    #[error("token signing failed: {0}")]
    Signing(String),
}

/// A new RSA private key of [`KEY_BITS`], as KAZOO stores it (PKCS#1 PEM). Slow (a second or
/// more in a debug build): call it on a blocking thread.
pub fn generate_key() -> Result<Vec<u8>, KazooTokenError> {
    let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, KEY_BITS)
        .map_err(|e| KazooTokenError::Signing(e.to_string()))?;
    let pem = key
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| KazooTokenError::Signing(e.to_string()))?;
    Ok(pem.as_bytes().to_vec())
}

fn parse_private(pem: &[u8]) -> Option<RsaPrivateKey> {
    let text = std::str::from_utf8(pem).ok()?;
    RsaPrivateKey::from_pkcs1_pem(text)
        .ok()
        .or_else(|| RsaPrivateKey::from_pkcs8_pem(text).ok())
}

/// The key that checks signatures made with the private key `pem`.
pub fn public_key(pem: &[u8]) -> Option<DecodingKey> {
    let key = parse_private(pem)?;
    Some(DecodingKey::from_rsa_raw_components(
        &key.n().to_bytes_be(),
        &key.e().to_bytes_be(),
    ))
}

/// The key that signs with the private key `pem`.
fn signing_key(pem: &[u8]) -> Option<EncodingKey> {
    let der = parse_private(pem)?.to_pkcs1_der().ok()?;
    Some(EncodingKey::from_rsa_der(der.as_bytes()))
}

/// KAZOO's `identity_sig`: base64url, unpadded, of HMAC-SHA256 keyed with the identity's secret
/// followed by the system secret, over the identity (account, user or device id).
pub fn identity_signature(identity_secret: &str, system_secret: &str, identity: &str) -> String {
    URL_SAFE_NO_PAD.encode(
        identity_mac(identity_secret, system_secret, identity)
            .finalize()
            .into_bytes(),
    )
}

fn identity_mac(identity_secret: &str, system_secret: &str, identity: &str) -> Hmac<Sha256> {
    let key = [identity_secret.as_bytes(), system_secret.as_bytes()].concat();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes keys of any length");
    mac.update(identity.as_bytes());
    mac
}

/// A setting of `system_config/auth`: KAZOO keeps them under `default` (a node's own value
/// under its name would win there; this engine has no KAZOO node name); a top-level key, this
/// engine's usual layout, is read as well.
pub fn auth_setting<'a>(doc: &'a Doc, key: &str) -> Option<&'a str> {
    doc.get("default")
        .and_then(|d| d.get(key))
        .and_then(Value::as_str)
        .or_else(|| doc.str(key))
        .filter(|v| !v.is_empty())
}

/// Writes a setting where KAZOO writes it: `default.<key>`.
fn set_auth_setting(doc: &mut Doc, key: &str, value: &str) {
    let mut default = doc
        .get("default")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    default.insert(key.to_owned(), value.into());
    doc.set("default", Value::Object(default));
}

/// A key id's public key as last read from the store (`None`: there was none).
struct Cached {
    key: Option<Arc<DecodingKey>>,
    read_at: Instant,
}

/// The system key new tokens are signed with.
struct SystemKey {
    kid: String,
    key: Arc<EncodingKey>,
    read_at: Instant,
}

/// Checks and issues KAZOO's tokens, caching keys per id. One per API.
pub struct KazooKeys {
    public: Mutex<HashMap<String, Cached>>,
    system: Mutex<Option<SystemKey>>,
    secret: Mutex<Option<(Arc<str>, Instant)>>,
    /// [`KEY_TTL`] and [`REFETCH_GAP`]; shorter in tests.
    ttl: Duration,
    gap: Duration,
}

impl Default for KazooKeys {
    fn default() -> Self {
        KazooKeys::with_timing(KEY_TTL, REFETCH_GAP)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl KazooKeys {
    pub fn new() -> Self {
        KazooKeys::default()
    }

    fn with_timing(ttl: Duration, gap: Duration) -> Self {
        KazooKeys {
            public: Mutex::default(),
            system: Mutex::default(),
            secret: Mutex::default(),
            ttl,
            gap,
        }
    }

    /// Checks an RS256/384/512 token (whose header is `header`) against the key its `kid`
    /// names, and its `exp` with no leeway. `None` for anything invalid; an error only when
    /// the store could not be read.
    pub async fn verify(
        &self,
        store: &dyn Store,
        token: &str,
        header: &Header,
    ) -> Result<Option<Claims>, StoreError> {
        if !matches!(
            header.alg,
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512
        ) {
            return Ok(None);
        }
        let Some(kid) = header.kid.as_deref() else {
            return Ok(None);
        };
        let Some(key) = self.public_key(store, kid).await? else {
            return Ok(None);
        };
        match decode(token, &key, header.alg) {
            Ok(claims) => Ok(Some(claims)),
            // The key may have been replaced in the store since it was read: read it once more.
            Err(ErrorKind::InvalidSignature) => match self.reread(store, kid, &key).await? {
                Some(newer) => Ok(decode(token, &newer, header.alg).ok()),
                None => Ok(None),
            },
            Err(_) => Ok(None),
        }
        .map(|claims| claims.filter(|c| c.exp > webhooks_core::time::now_unix()))
    }

    /// The public key of `kid`, from the cache while fresh.
    async fn public_key(
        &self,
        store: &dyn Store,
        kid: &str,
    ) -> Result<Option<Arc<DecodingKey>>, StoreError> {
        if let Some(c) = lock(&self.public).get(kid) {
            let age = c.read_at.elapsed();
            let fresh = if c.key.is_some() { self.ttl } else { self.gap };
            if age < fresh {
                return Ok(c.key.clone());
            }
        }
        self.fetch(store, kid).await
    }

    /// After `stale` failed a signature: the key as stored now, or `None` when it was read
    /// too recently to try again or is the same key.
    async fn reread(
        &self,
        store: &dyn Store,
        kid: &str,
        stale: &Arc<DecodingKey>,
    ) -> Result<Option<Arc<DecodingKey>>, StoreError> {
        let recent = lock(&self.public)
            .get(kid)
            .is_some_and(|c| c.read_at.elapsed() < self.gap);
        if recent {
            return Ok(None);
        }
        Ok(self
            .fetch(store, kid)
            .await?
            .filter(|k| !Arc::ptr_eq(k, stale)))
    }

    async fn fetch(
        &self,
        store: &dyn Store,
        kid: &str,
    ) -> Result<Option<Arc<DecodingKey>>, StoreError> {
        let key = match store.auth_key(kid).await? {
            Some(pem) => {
                let key = public_key(&pem);
                if key.is_none() {
                    tracing::warn!(kid, "stored auth key is not an RSA private key in PEM");
                }
                key.map(Arc::new)
            }
            None => None,
        };
        let mut cache = lock(&self.public);
        if cache.len() >= MAX_CACHED_KEYS && !cache.contains_key(kid) {
            let ttl = self.ttl;
            cache.retain(|_, c| c.key.is_some() && c.read_at.elapsed() < ttl);
            if cache.len() >= MAX_CACHED_KEYS {
                cache.clear();
            }
        }
        cache.insert(
            kid.to_owned(),
            Cached {
                key: key.clone(),
                read_at: Instant::now(),
            },
        );
        Ok(key)
    }

    /// Issues KAZOO's kind of token for an account, as crossbar's `cb_api_auth` does: RS256
    /// with the system key (header `kid`, `typ: JWT`), claims `iss`, `account_id`, `method`,
    /// `exp` and `identity_sig`. Creates the system key and the secrets when missing.
    pub async fn issue(
        &self,
        store: &dyn Store,
        account: &AccountId,
        method: &str,
        ttl_secs: i64,
    ) -> Result<String, KazooTokenError> {
        let (kid, key) = self.system_key(store).await?;
        let identity_sig = self.sign_identity(store, account).await?;
        let claims = Claims {
            identity_sig: Some(identity_sig),
            ..Claims::for_account(account, method, webhooks_core::time::now_unix() + ttl_secs)
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid);
        // An RSA signature is a millisecond of arithmetic: off the async threads.
        tokio::task::spawn_blocking(move || jsonwebtoken::encode(&header, &claims, &key))
            .await
            .map_err(|e| KazooTokenError::Signing(e.to_string()))?
            .map_err(|e| KazooTokenError::Signing(e.to_string()))
    }

    /// The key id and signing key the `system_key` setting names, created when missing.
    async fn system_key(
        &self,
        store: &dyn Store,
    ) -> Result<(String, Arc<EncodingKey>), KazooTokenError> {
        if let Some(k) = lock(&self.system).as_ref() {
            if k.read_at.elapsed() < self.ttl {
                return Ok((k.kid.clone(), k.key.clone()));
            }
        }
        for _ in 0..CONFLICT_RETRIES {
            let doc = store.system_config(AUTH_CATEGORY).await?;
            let named = doc
                .as_ref()
                .and_then(|d| auth_setting(d, SYSTEM_KEY_SETTING));
            if let Some(kid) = named {
                if let Some(pem) = store.auth_key(kid).await? {
                    let key =
                        signing_key(&pem).ok_or_else(|| KazooTokenError::BadKey(kid.into()))?;
                    return Ok(self.remember_system_key(kid, key));
                }
            }
            // None yet, or the one named is gone: a new key under a new id, stored before the
            // setting names it. KAZOO keeps the id and regenerates the key under it; a new id
            // cannot race another node writing a different key under the same one.
            let kid = random_hex(16);
            let pem = tokio::task::spawn_blocking(generate_key)
                .await
                .map_err(|e| KazooTokenError::Signing(e.to_string()))??;
            store.save_auth_key(&kid, &pem).await?;
            let mut doc = doc.unwrap_or_default();
            set_auth_setting(&mut doc, SYSTEM_KEY_SETTING, &kid);
            match store.save_system_config(AUTH_CATEGORY, doc).await {
                Ok(_) => {
                    tracing::info!(kid, "created the system key that signs auth tokens");
                    let key =
                        signing_key(&pem).ok_or_else(|| KazooTokenError::BadKey(kid.clone()))?;
                    return Ok(self.remember_system_key(&kid, key));
                }
                // Another node set one meanwhile: use theirs.
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    fn remember_system_key(&self, kid: &str, key: EncodingKey) -> (String, Arc<EncodingKey>) {
        let key = Arc::new(key);
        *lock(&self.system) = Some(SystemKey {
            kid: kid.to_owned(),
            key: key.clone(),
            read_at: Instant::now(),
        });
        (kid.to_owned(), key)
    }

    /// The account's identity signature, creating the account's and the system's secrets
    /// when missing (as KAZOO does on its first token for them).
    async fn sign_identity(
        &self,
        store: &dyn Store,
        account: &AccountId,
    ) -> Result<String, KazooTokenError> {
        let system = self
            .system_secret(store, true)
            .await?
            .ok_or(StoreError::Conflict)?;
        for _ in 0..CONFLICT_RETRIES {
            let mut doc = store.account(account).await?.ok_or(StoreError::NotFound)?;
            if let Some(secret) = doc.str(ACCOUNT_SECRET_FIELD).filter(|s| !s.is_empty()) {
                return Ok(identity_signature(secret, &system, account.as_str()));
            }
            let secret = random_hex(16);
            doc.set(ACCOUNT_SECRET_FIELD, secret.as_str());
            match store.save_account(doc).await {
                Ok(_) => return Ok(identity_signature(&secret, &system, account.as_str())),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// `secret_for_user_signature`, cached; made and saved when `create` and there is none.
    async fn system_secret(
        &self,
        store: &dyn Store,
        create: bool,
    ) -> Result<Option<Arc<str>>, StoreError> {
        if let Some((s, at)) = lock(&self.secret).as_ref() {
            if at.elapsed() < self.ttl {
                return Ok(Some(s.clone()));
            }
        }
        for _ in 0..CONFLICT_RETRIES {
            let doc = store.system_config(AUTH_CATEGORY).await?;
            let secret = match doc
                .as_ref()
                .and_then(|d| auth_setting(d, SYSTEM_SECRET_SETTING))
            {
                Some(s) => s.to_owned(),
                None if !create => return Ok(None),
                None => {
                    let s = random_hex(16);
                    let mut doc = doc.unwrap_or_default();
                    set_auth_setting(&mut doc, SYSTEM_SECRET_SETTING, &s);
                    match store.save_system_config(AUTH_CATEGORY, doc).await {
                        Ok(_) => s,
                        Err(StoreError::Conflict) => continue,
                        Err(e) => return Err(e),
                    }
                }
            };
            let secret: Arc<str> = secret.into();
            *lock(&self.secret) = Some((secret.clone(), Instant::now()));
            return Ok(Some(secret));
        }
        Err(StoreError::Conflict)
    }

    /// KAZOO's identity check, for a token that carries `identity_sig`: it must match the
    /// signature of the account's current secret. Tokens without one pass, as in KAZOO. User
    /// and device tokens are signed with the user's or device's secret, documents this engine
    /// does not keep; they pass on their RS256 signature alone.
    pub async fn identity_holds(
        &self,
        store: &dyn Store,
        claims: &Claims,
        account: &Doc,
    ) -> Result<bool, StoreError> {
        let Some(sig) = claims.identity_sig.as_deref() else {
            return Ok(true);
        };
        if claims.owner_id.is_some() || claims.device_id.is_some() {
            return Ok(true);
        }
        let Some(secret) = account.str(ACCOUNT_SECRET_FIELD).filter(|s| !s.is_empty()) else {
            return Ok(false);
        };
        let Some(system) = self.system_secret(store, false).await? else {
            return Ok(false);
        };
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig.trim_end_matches('=')) else {
            return Ok(false);
        };
        Ok(identity_mac(secret, &system, &claims.account_id)
            .verify_slice(&sig)
            .is_ok())
    }
}

fn decode(token: &str, key: &DecodingKey, alg: Algorithm) -> Result<Claims, ErrorKind> {
    let mut v = Validation::new(alg);
    v.set_required_spec_claims(&["exp"]);
    v.leeway = 0;
    jsonwebtoken::decode::<Claims>(token, key, &v)
        .map(|d| d.claims)
        .map_err(|e| e.into_kind())
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use serde_json::json;
    use webhooks_core::store::{AccountStore, AuthKeyStore, ConfigStore};
    use webhooks_store::EmbeddedStore;

    use super::*;

    /// Two keys for the whole test binary: generating one takes a while in a debug build.
    fn key_pair() -> &'static (Vec<u8>, Vec<u8>) {
        static KEYS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
        KEYS.get_or_init(|| (generate_key().unwrap(), generate_key().unwrap()))
    }

    /// A token as crossbar makes one for a user login: RS256, `kid` header, KAZOO's claims.
    fn crossbar_token(pem: &[u8], kid: &str, account: &str, exp: i64) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        let claims = json!({"iss": "kazoo", "account_id": account, "method": "cb_user_auth",
            "owner_id": "u1", "exp": exp});
        jsonwebtoken::encode(&header, &claims, &signing_key(pem).unwrap()).unwrap()
    }

    fn header(token: &str) -> Header {
        jsonwebtoken::decode_header(token).unwrap()
    }

    const ACCOUNT: &str = "4a3c2b1d4a3c2b1d4a3c2b1d4a3c2b1d";

    fn in_an_hour() -> i64 {
        webhooks_core::time::now_unix() + 3600
    }

    async fn check(keys: &KazooKeys, store: &EmbeddedStore, token: &str) -> Option<Claims> {
        keys.verify(store, token, &header(token)).await.unwrap()
    }

    #[tokio::test]
    async fn a_token_signed_with_a_stored_key_verifies() {
        let store = EmbeddedStore::open_in_memory().unwrap();
        let (a, _) = key_pair();
        store.save_auth_key("kid-a", a).await.unwrap();
        let keys = KazooKeys::new();
        let token = crossbar_token(a, "kid-a", ACCOUNT, in_an_hour());
        let claims = check(&keys, &store, &token).await.unwrap();
        assert_eq!(claims.account_id, ACCOUNT);
        assert_eq!(claims.owner_id.as_deref(), Some("u1"));
        assert_eq!(claims.method, "cb_user_auth");
        assert_eq!(claims.iat, None);
        // A PKCS#8 key (what `openssl genpkey` writes) does as well as KAZOO's PKCS#1.
        let private = parse_private(a).unwrap();
        let pkcs8 = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&private, LineEnding::LF).unwrap();
        store
            .save_auth_key("kid-p8", pkcs8.as_bytes())
            .await
            .unwrap();
        let token = crossbar_token(a, "kid-p8", ACCOUNT, in_an_hour());
        assert!(check(&keys, &store, &token).await.is_some());
    }

    #[tokio::test]
    async fn expired_tampered_or_unkeyed_tokens_are_refused() {
        let store = EmbeddedStore::open_in_memory().unwrap();
        let (a, b) = key_pair();
        store.save_auth_key("kid-a", a).await.unwrap();
        let keys = KazooKeys::new();
        let now = webhooks_core::time::now_unix();
        // No leeway: a token is dead from its `exp` second on.
        for exp in [now, now - 1, now - 3600] {
            let token = crossbar_token(a, "kid-a", ACCOUNT, exp);
            assert!(check(&keys, &store, &token).await.is_none(), "exp {exp}");
        }
        // Signed with another key than the one its kid names, or naming a kid not stored.
        let wrong_key = crossbar_token(b, "kid-a", ACCOUNT, in_an_hour());
        assert!(check(&keys, &store, &wrong_key).await.is_none());
        let wrong_kid = crossbar_token(a, "kid-x", ACCOUNT, in_an_hour());
        assert!(check(&keys, &store, &wrong_kid).await.is_none());
        // Claims edited after signing.
        let token = crossbar_token(a, "kid-a", ACCOUNT, in_an_hour());
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(
            json!({"iss": "kazoo", "account_id": "f".repeat(32), "exp": in_an_hour()}).to_string(),
        );
        parts[1] = &forged;
        assert!(check(&keys, &store, &parts.join(".")).await.is_none());
        // No kid at all.
        let claims = json!({"account_id": ACCOUNT, "exp": in_an_hour()});
        let no_kid = jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &signing_key(a).unwrap(),
        )
        .unwrap();
        assert!(check(&keys, &store, &no_kid).await.is_none());
    }

    #[tokio::test]
    async fn a_key_replaced_in_the_store_is_picked_up_at_most_once_per_gap() {
        let store = EmbeddedStore::open_in_memory().unwrap();
        let (a, b) = key_pair();
        let gap = Duration::from_millis(300);
        let keys = KazooKeys::with_timing(Duration::from_secs(60), gap);
        // Unknown at first: refused, and not asked again within the gap.
        let token_a = crossbar_token(a, "kid", ACCOUNT, in_an_hour());
        assert!(check(&keys, &store, &token_a).await.is_none());
        store.save_auth_key("kid", a).await.unwrap();
        assert!(check(&keys, &store, &token_a).await.is_none());
        tokio::time::sleep(gap).await;
        assert!(check(&keys, &store, &token_a).await.is_some());
        // Rotated under the same id: a failed signature reads the key again, once per gap.
        store.save_auth_key("kid", b).await.unwrap();
        let token_b = crossbar_token(b, "kid", ACCOUNT, in_an_hour());
        tokio::time::sleep(gap).await;
        assert!(check(&keys, &store, &token_b).await.is_some());
        // The old key went with it, and is not read again so soon.
        assert!(check(&keys, &store, &token_a).await.is_none());
    }

    #[tokio::test]
    async fn a_failed_signature_within_the_gap_does_not_read_the_store_again() {
        let store = EmbeddedStore::open_in_memory().unwrap();
        let (a, b) = key_pair();
        let keys = KazooKeys::with_timing(Duration::from_secs(60), Duration::from_secs(60));
        store.save_auth_key("kid", a).await.unwrap();
        let token_a = crossbar_token(a, "kid", ACCOUNT, in_an_hour());
        assert!(check(&keys, &store, &token_a).await.is_some());
        store.save_auth_key("kid", b).await.unwrap();
        // The cached key is younger than the gap: the new one is not seen yet.
        let token_b = crossbar_token(b, "kid", ACCOUNT, in_an_hour());
        assert!(check(&keys, &store, &token_b).await.is_none());
        assert!(check(&keys, &store, &token_a).await.is_some());
    }

    #[tokio::test]
    async fn a_key_is_read_again_after_its_ttl() {
        let store = EmbeddedStore::open_in_memory().unwrap();
        let (a, _) = key_pair();
        let ttl = Duration::from_millis(200);
        let keys = KazooKeys::with_timing(ttl, Duration::ZERO);
        store.save_auth_key("kid", a).await.unwrap();
        let token = crossbar_token(a, "kid", ACCOUNT, in_an_hour());
        assert!(check(&keys, &store, &token).await.is_some());
        // Replaced by something that is not a key: still trusted until the TTL passes.
        store.save_auth_key("kid", b"not a key").await.unwrap();
        assert!(check(&keys, &store, &token).await.is_some());
        tokio::time::sleep(ttl).await;
        assert!(check(&keys, &store, &token).await.is_none());
    }

    #[test]
    fn identity_signature_is_kazoos_hmac() {
        // Computed independently: base64url(HMAC-SHA256(account secret ++ system secret, id)).
        assert_eq!(
            identity_signature(
                "0123456789abcdef0123456789abcdef",
                "fedcba9876543210fedcba9876543210",
                ACCOUNT
            ),
            "h5tQkvaiG1N6enZOFVs43UJ1lU8Zu1pqvX76wfuEIKw"
        );
    }

    #[tokio::test]
    async fn issuing_creates_the_system_key_and_secrets_once_and_signs_the_identity() {
        let store = EmbeddedStore::open_in_memory().unwrap();
        let account = AccountId::parse(ACCOUNT).unwrap();
        let doc =
            Doc::from_value(json!({"_id": ACCOUNT, "pvt_type": "account", "name": "a"})).unwrap();
        store.save_account(doc).await.unwrap();
        let keys = KazooKeys::new();
        let token = keys
            .issue(&store, &account, "cb_api_auth", 3600)
            .await
            .unwrap();

        let header = header(&token);
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let auth = store.system_config(AUTH_CATEGORY).await.unwrap().unwrap();
        let kid = auth_setting(&auth, SYSTEM_KEY_SETTING).unwrap().to_owned();
        assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
        assert_eq!(
            auth.get("default").unwrap()[SYSTEM_KEY_SETTING],
            kid.as_str()
        );
        let system_secret = auth_setting(&auth, SYSTEM_SECRET_SETTING)
            .unwrap()
            .to_owned();
        let pem = store.auth_key(&kid).await.unwrap().unwrap();
        assert!(pem.starts_with(b"-----BEGIN RSA PRIVATE KEY-----"));
        assert_eq!(parse_private(&pem).unwrap().n().bits(), KEY_BITS);

        // A fresh cache (another node) checks it with the stored key alone.
        let claims = check(&KazooKeys::new(), &store, &token).await.unwrap();
        assert_eq!(claims.iss, "kazoo");
        assert_eq!(claims.account_id, ACCOUNT);
        assert_eq!(claims.method, "cb_api_auth");
        let doc = store.account(&account).await.unwrap().unwrap();
        let account_secret = doc.str(ACCOUNT_SECRET_FIELD).unwrap().to_owned();
        assert_eq!(
            claims.identity_sig.as_deref(),
            Some(identity_signature(&account_secret, &system_secret, ACCOUNT).as_str())
        );
        assert!(keys.identity_holds(&store, &claims, &doc).await.unwrap());

        // The second token uses what the first made.
        let again = KazooKeys::new()
            .issue(&store, &account, "cb_api_auth", 3600)
            .await
            .unwrap();
        assert_eq!(jsonwebtoken::decode_header(&again).unwrap().kid, Some(kid));
        let doc_after = store.account(&account).await.unwrap().unwrap();
        assert_eq!(
            doc_after.str(ACCOUNT_SECRET_FIELD),
            Some(account_secret.as_str())
        );

        // A new account secret revokes the tokens signed before it.
        let mut reset = doc_after;
        reset.set(ACCOUNT_SECRET_FIELD, "00000000000000000000000000000000");
        let reset = store.save_account(reset).await.unwrap();
        assert!(!keys.identity_holds(&store, &claims, &reset).await.unwrap());
        // Tokens without the claim pass, as in KAZOO; an empty one does not.
        let mut bare = claims.clone();
        bare.identity_sig = None;
        assert!(keys.identity_holds(&store, &bare, &reset).await.unwrap());
        bare.identity_sig = Some(String::new());
        assert!(!keys.identity_holds(&store, &bare, &reset).await.unwrap());
    }

    #[tokio::test]
    async fn a_system_key_setting_naming_a_missing_key_gets_a_new_key_and_id() {
        let store = EmbeddedStore::open_in_memory().unwrap();
        let account = AccountId::parse(ACCOUNT).unwrap();
        let doc = Doc::from_value(json!({"_id": ACCOUNT, "pvt_type": "account"})).unwrap();
        store.save_account(doc).await.unwrap();
        let cfg = Doc::from_value(json!({"default": {"system_key": "gone"}, "other": 1})).unwrap();
        store.save_system_config(AUTH_CATEGORY, cfg).await.unwrap();
        let token = KazooKeys::new()
            .issue(&store, &account, "cb_api_auth", 60)
            .await
            .unwrap();
        let kid = header(&token).kid.unwrap();
        assert_ne!(kid, "gone");
        let auth = store.system_config(AUTH_CATEGORY).await.unwrap().unwrap();
        assert_eq!(auth_setting(&auth, SYSTEM_KEY_SETTING), Some(kid.as_str()));
        assert_eq!(auth.get("other"), Some(&json!(1)), "the rest is kept");
        assert!(store.auth_key(&kid).await.unwrap().is_some());
    }
}
