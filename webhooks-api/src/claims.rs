//! The claims inside a token, named as KAZOO names them. Both kinds of token carry them: the
//! engine's own HS256 tokens and KAZOO's RS256 ones (`tokens`, `kazoo_tokens`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// `kazoo` for every token either side issues.
    #[serde(default)]
    pub iss: String,
    pub account_id: String,
    /// Set for user logins only; api-key tokens carry none, as in KAZOO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// Set by KAZOO for device logins (provisioning); never issued here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// The crossbar module that issued the token (`cb_api_auth`, `cb_user_auth`, ...).
    #[serde(default)]
    pub method: String,
    /// Issue time: the engine's own tokens carry it, KAZOO's do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Unix seconds; a token is refused from that second on.
    pub exp: i64,
    /// KAZOO's signature over the identity (HMAC-SHA256, base64url): lets KAZOO revoke every
    /// token of an account by changing its `pvt_signature_secret` (`kazoo_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_sig: Option<String>,
}

impl Claims {
    /// An api-key token's claims (`cb_api_auth`-style): the account, the method, the expiry;
    /// no user, no device, no issue time and no identity signature until the issuer adds them.
    pub fn for_account(account: &webhooks_core::AccountId, method: &str, exp: i64) -> Self {
        Claims {
            iss: "kazoo".into(),
            account_id: account.to_string(),
            owner_id: None,
            device_id: None,
            method: method.into(),
            iat: None,
            exp,
            identity_sig: None,
        }
    }
}
