//! Authentication and authorisation, KAZOO-style.
//!
//! `PUT /v2/api_auth` trades an account's api key for a token; every other call carries it in
//! `X-Auth-Token`. Tokens are JWTs with KAZOO's claims, so clients that decode the middle part
//! (Monster UI reads `account_id` from it at login) keep working; they are stateless, so they
//! survive a restart. Which kind is issued and accepted is `tokens`' business (the engine's
//! HS256, or KAZOO's RS256). A token may act on its own account and that account's
//! descendants, nothing else.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use webhooks_core::{Account, AccountId};

use crate::envelope::ApiError;
use crate::ApiState;

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
        Auth::from_token(state, token).await
    }
}

impl Auth {
    /// Checks a token and loads the account it names: 401 unless the token is valid and the
    /// account exists, is enabled and still holds the token's identity signature.
    pub async fn from_token(state: &ApiState, token: String) -> Result<Auth, ApiError> {
        let store = state.store();
        let claims = state
            .tokens()
            .verify(store, &token)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        let id = AccountId::parse(&claims.account_id).map_err(|_| ApiError::unauthorized())?;
        // The account must still exist and be enabled: deleting an account revokes its tokens.
        let doc = store
            .account(&id)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        if !state.tokens().identity_holds(store, &claims, &doc).await? {
            return Err(ApiError::unauthorized());
        }
        let account = Account::from_doc(&doc).ok_or_else(ApiError::unauthorized)?;
        if !account.enabled {
            return Err(ApiError::unauthorized());
        }
        Ok(Auth { account, token })
    }

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
