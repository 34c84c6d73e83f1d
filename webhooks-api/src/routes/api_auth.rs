//! `PUT /v2/api_auth`: an api key in, a token out (crossbar's `cb_api_auth`).

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{json, Value};
use webhooks_core::Account;

use crate::body::RequestData;
use crate::envelope::{ApiError, ApiResult, Reply};
use crate::ApiState;

pub async fn create(State(state): State<ApiState>, RequestData(data): RequestData) -> ApiResult {
    let key = match data.get("api_key") {
        Some(Value::String(k)) if !k.is_empty() => k.clone(),
        Some(v) => {
            return Err(ApiError::validation(json!({"api_key": {"type": {
                "message": "Value did not match type(s): string", "target": "string", "value": v}}})))
        }
        None => {
            return Err(ApiError::validation(json!({"api_key": {"required": {
                "message": "Field is required but missing"}}})))
        }
    };
    // A wrong key is a 401 here; crossbar answers 404 `bad identifier` echoing the key.
    let doc = state.store().account_by_api_key(&key).await?;
    let account = doc
        .as_ref()
        .and_then(Account::from_doc)
        .filter(|a| a.enabled)
        .ok_or_else(ApiError::unauthorized)?;
    let token = state
        .tokens()
        .issue(state.store(), &account.id, "cb_api_auth")
        .await?;
    let reseller_id = account.tree.first().map(|a| a.to_string());
    let data = json!({
        "account_id": account.id,
        "account_name": account.name,
        "apps": [],
        "language": "en-US",
        "is_reseller": account.tree.is_empty(),
        "reseller_id": reseller_id.unwrap_or_else(|| account.id.to_string()),
        "is_master_account": account.superduper_admin,
        "capabilities": {},
        "ui_config": {},
    });
    let mut reply = Reply::ok(data);
    reply.status = StatusCode::CREATED;
    reply.issued_token = Some(token);
    Ok(reply)
}
