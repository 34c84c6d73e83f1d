//! Authentication and authorisation, KAZOO-style.
//!
//! `PUT /v2/api_auth` trades an account's api key for a token; every other call carries it in
//! `X-Auth-Token`. Tokens are JWTs (HS256) like KAZOO's, so clients that decode the middle part
//! (Monster UI reads `account_id` from it at login) keep working; they are stateless and signed
//! with a secret kept in the store, so they survive a restart. A token may act on its own
//! account and that account's descendants, nothing else.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use webhooks_core::{Account, AccountId};

use crate::envelope::ApiError;
use crate::ApiState;

/// The claims inside a token, named as KAZOO names them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub account_id: String,
    /// Set for user logins only; api-key tokens carry none, as in KAZOO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    pub method: String,
    pub iat: i64,
    pub exp: i64,
}

/// Signs and checks tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_secs: i64,
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl_secs: ttl_secs as i64,
        }
    }

    /// Issues a token for an account, valid for the configured lifetime.
    pub fn issue(&self, account: &AccountId, method: &str) -> Result<String, ApiError> {
        let now = webhooks_core::time::now_unix();
        let claims = Claims {
            iss: "kazoo".into(),
            account_id: account.to_string(),
            owner_id: None,
            method: method.into(),
            iat: now,
            exp: now + self.ttl_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| {
            tracing::error!(error = %e, "token signing failed");
            ApiError::datastore_fault()
        })
    }

    /// Checks signature and expiry; `None` for anything invalid.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_required_spec_claims(&["exp"]);
        v.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .ok()
            .map(|d| d.claims)
    }
}

/// An authenticated caller: the account its token belongs to, and the token.
#[derive(Debug, Clone)]
pub struct Auth {
    pub account: Account,
    pub token: String,
}

/// The token a request carries: `X-Auth-Token`, or `Authorization: Bearer`. An empty header
/// counts as absent (Monster UI sends `X-Auth-Token:` on public routes).
pub fn request_token(parts: &Parts) -> Option<String> {
    if let Some(t) = parts
        .headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
    {
        let t = t.trim();
        if !t.is_empty() {
            return Some(t.to_owned());
        }
    }
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<ApiState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let token = request_token(parts).ok_or_else(ApiError::unauthorized)?;
        let claims = state
            .tokens()
            .verify(&token)
            .ok_or_else(ApiError::unauthorized)?;
        let id = AccountId::parse(&claims.account_id).map_err(|_| ApiError::unauthorized())?;
        // The account must still exist and be enabled: deleting an account revokes its tokens.
        let doc = state
            .store()
            .account(&id)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        let account = Account::from_doc(&doc).ok_or_else(ApiError::unauthorized)?;
        if !account.enabled {
            return Err(ApiError::unauthorized());
        }
        Ok(Auth { account, token })
    }
}

impl Auth {
    /// Loads the account named in a URL and checks the caller may act on it.
    ///
    /// A malformed id is a 404. An id the caller may not see is a 403 whether it exists or
    /// not, so ids outside the caller's tree cannot be probed; only the master account, which
    /// may see everything, learns that an id does not exist (404).
    pub async fn account(&self, state: &ApiState, id: &str) -> Result<Account, ApiError> {
        let parsed = AccountId::parse(id).map_err(|_| ApiError::bad_account_id(id))?;
        if parsed == self.account.id {
            return Ok(self.account.clone());
        }
        let found = state
            .store()
            .account(&parsed)
            .await?
            .and_then(|d| Account::from_doc(&d));
        match found {
            Some(a) if a.is_within(&self.account.id) => Ok(a),
            Some(_) => Err(ApiError::forbidden()),
            None if self.account.superduper_admin => Err(ApiError::bad_identifier(id)),
            None => Err(ApiError::forbidden()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let keys = TokenKeys::new(b"secret", 3600);
        let id = AccountId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let t = keys.issue(&id, "cb_api_auth").unwrap();
        assert_eq!(keys.verify(&t).unwrap().account_id, id.as_str());
        let other = TokenKeys::new(b"other", 3600);
        assert!(other.verify(&t).is_none());
        assert!(keys.verify("garbage").is_none());
        let expired = TokenKeys::new(b"secret", 0);
        let t = expired.issue(&id, "cb_api_auth").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(keys.verify(&t).is_none());
    }
}
