//! Which tokens the API issues and accepts ([`TokenMode`]), and the engine's own kind: HS256
//! JWTs signed with the secret [`bootstrap()`](crate::bootstrap()) keeps in the store.
//!
//! Whatever the mode, a token whose header says RS256 (or RS384, RS512) with a `kid` is
//! KAZOO's kind and is checked against the key the store holds under that id
//! (`kazoo_tokens`). The mode decides what `PUT /v2/api_auth` issues, and whether HS256
//! tokens are accepted at all.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use webhooks_core::{AccountId, Doc, Store};

use crate::claims::Claims;
use crate::envelope::ApiError;
use crate::kazoo_tokens::{KazooKeys, KazooTokenError};

/// The tokens an API issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenMode {
    /// The engine's own HS256 tokens, signed with the bootstrap secret. KAZOO's RS256 tokens
    /// are accepted too, when their key is in the store.
    #[default]
    Local,
    /// KAZOO's RS256 tokens, signed with the system key `system_config/auth` names (created
    /// when there is none), so crossbar accepts them and the engine accepts crossbar's. HS256
    /// tokens are refused: beside crossbar, a token only one side accepts would be a trap.
    Kazoo,
}

/// The longest token lifetime: 100 years. Longer ones are cut to it, so `now + ttl` always
/// fits the `exp` claim.
pub const MAX_TOKEN_TTL_SECS: u64 = 100 * 365 * 86_400;

/// Issues and checks tokens in the configured mode.
pub struct Tokens {
    mode: TokenMode,
    ttl_secs: i64,
    local: LocalKeys,
    kazoo: KazooKeys,
}

impl Tokens {
    /// `ttl_secs` is capped at [`MAX_TOKEN_TTL_SECS`]: a larger one would overflow `exp`
    /// (it wrapped negative once, and every token was born expired).
    pub fn new(mode: TokenMode, secret: &[u8], ttl_secs: u64) -> Self {
        Tokens {
            mode,
            ttl_secs: ttl_secs.min(MAX_TOKEN_TTL_SECS) as i64,
            local: LocalKeys::new(secret),
            kazoo: KazooKeys::new(),
        }
    }

    pub fn mode(&self) -> TokenMode {
        self.mode
    }

    /// Checks signature and expiry; `None` for anything invalid. An error only when the store,
    /// which holds KAZOO's keys, could not be read.
    pub async fn verify(&self, store: &dyn Store, token: &str) -> Result<Option<Claims>, ApiError> {
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return Ok(None);
        };
        match header.alg {
            Algorithm::HS256 if self.mode == TokenMode::Local => Ok(self.local.verify(token)),
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
                Ok(self.kazoo.verify(store, token, &header).await?)
            }
            _ => Ok(None),
        }
    }

    /// Whether the token's `identity_sig`, if it carries one, matches the account's secret
    /// (KAZOO's revocation: a new `pvt_signature_secret` voids every token signed before).
    pub async fn identity_holds(
        &self,
        store: &dyn Store,
        claims: &Claims,
        account: &Doc,
    ) -> Result<bool, ApiError> {
        Ok(self.kazoo.identity_holds(store, claims, account).await?)
    }

    /// Issues a token for an account, valid for the configured lifetime.
    pub async fn issue(
        &self,
        store: &dyn Store,
        account: &AccountId,
        method: &str,
    ) -> Result<String, ApiError> {
        match self.mode {
            TokenMode::Local => self.local.issue(account, method, self.ttl_secs),
            TokenMode::Kazoo => self
                .kazoo
                .issue(store, account, method, self.ttl_secs)
                .await
                .map_err(|e| match e {
                    KazooTokenError::Store(e) => ApiError::from(e),
                    other => {
                        tracing::error!(error = %other, "token signing failed");
                        ApiError::datastore_fault()
                    }
                }),
        }
    }
}

/// The engine's own tokens: HS256 with one secret.
struct LocalKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl LocalKeys {
    fn new(secret: &[u8]) -> Self {
        LocalKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    fn issue(&self, account: &AccountId, method: &str, ttl_secs: i64) -> Result<String, ApiError> {
        let now = webhooks_core::time::now_unix();
        let claims = Claims {
            iat: Some(now),
            ..Claims::for_account(account, method, now + ttl_secs)
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| {
            tracing::error!(error = %e, "token signing failed");
            ApiError::datastore_fault()
        })
    }

    fn verify(&self, token: &str) -> Option<Claims> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_required_spec_claims(&["exp"]);
        v.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .ok()
            .map(|d| d.claims)
            .filter(|c| c.exp > webhooks_core::time::now_unix())
    }
}

#[cfg(test)]
mod tests {
    use webhooks_store::EmbeddedStore;

    use super::*;

    const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

    #[tokio::test]
    async fn local_tokens_round_trip_and_reject_tampering() {
        let store = EmbeddedStore::open_in_memory().unwrap();
        let keys = Tokens::new(TokenMode::Local, b"secret", 3600);
        let id = AccountId::parse(ACCOUNT).unwrap();
        let t = keys.issue(&store, &id, "cb_api_auth").await.unwrap();
        let claims = keys.verify(&store, &t).await.unwrap().unwrap();
        assert_eq!(claims.account_id, id.as_str());
        assert!(claims.iat.is_some());
        let other = Tokens::new(TokenMode::Local, b"other", 3600);
        assert!(other.verify(&store, &t).await.unwrap().is_none());
        assert!(keys.verify(&store, "garbage").await.unwrap().is_none());
        // No leeway: a token is dead from its `exp` second on.
        let expired = Tokens::new(TokenMode::Local, b"secret", 0);
        // A lifetime too large for `exp` is capped, not wrapped into the past.
        let forever = Tokens::new(TokenMode::Local, b"secret", u64::MAX);
        let t_forever = forever.issue(&store, &id, "cb_api_auth").await.unwrap();
        let c = keys.verify(&store, &t_forever).await.unwrap().unwrap();
        assert!(c.exp > webhooks_core::time::now_unix() + 99 * 365 * 86_400);
        let t = expired.issue(&store, &id, "cb_api_auth").await.unwrap();
        assert!(keys.verify(&store, &t).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn hs256_tokens_are_refused_in_kazoo_mode() {
        let store = EmbeddedStore::open_in_memory().unwrap();
        let local = Tokens::new(TokenMode::Local, b"secret", 3600);
        let id = AccountId::parse(ACCOUNT).unwrap();
        let t = local.issue(&store, &id, "cb_api_auth").await.unwrap();
        let kazoo = Tokens::new(TokenMode::Kazoo, b"secret", 3600);
        assert!(kazoo.verify(&store, &t).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn unsigned_tokens_are_refused_in_either_mode() {
        let store = EmbeddedStore::open_in_memory().unwrap();
        // `alg: none`, which some JWT libraries once accepted.
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJhY2NvdW50X2lkIjoiMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYiLCJleHAiOjQxMDI0NDQ4MDB9.";
        for mode in [TokenMode::Local, TokenMode::Kazoo] {
            let tokens = Tokens::new(mode, b"secret", 3600);
            assert!(tokens.verify(&store, none).await.unwrap().is_none());
        }
    }
}
