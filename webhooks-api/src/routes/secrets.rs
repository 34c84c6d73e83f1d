//! `/v2/accounts/{A}/webhooks/{H}/secret`: a hook's Standard Webhooks signing secret (ours;
//! KAZOO has no signatures). `GET` hands the secret to whoever may edit the hook; `POST`
//! rotates it, the old one signing beside the new one for a grace period (24 h unless
//! `grace_period_s` says otherwise), and returns the new one. Setting or removing it goes
//! through the hook body's `secret` (`webhooks.rs`).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use webhooks_core::signature::{self, SecretChange, SigningSecret};

use super::webhooks::{hook_view, invalid_secret, load_hook};
use crate::auth::Auth;
use crate::body::RequestData;
use crate::envelope::{ApiError, ApiResult, Reply};
use crate::ApiState;

/// How long a rotated-out secret keeps signing unless the request says otherwise.
const DEFAULT_GRACE_SECS: i64 = 24 * 3600;
/// The longest grace period accepted (30 days).
const MAX_GRACE_SECS: i64 = 30 * 24 * 3600;

pub fn routes() -> Router<ApiState> {
    Router::new().route(
        "/v2/accounts/{account_id}/webhooks/{hook_id}/secret",
        get(read).post(rotate),
    )
}

async fn read(
    State(state): State<ApiState>,
    auth: Auth,
    Path((account_id, hook_id)): Path<(String, String)>,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    let doc = load_hook(&state, &account, &hook_id).await?;
    let Some(secret) = doc.get("pvt_signing_secret").cloned() else {
        return Err(ApiError::validation(json!({"secret": {"required": {
            "message": "this webhook has no secret: set \"secret\": \"generate\" on it first"}}})));
    };
    let mut data = json!({"secret": secret});
    if let Some(until) = doc.get("pvt_signing_secret_previous_until") {
        data["previous_secret_signs_until"] = until.clone();
    }
    Ok(Reply::doc(data, doc.rev()))
}

async fn rotate(
    State(state): State<ApiState>,
    auth: Auth,
    Path((account_id, hook_id)): Path<(String, String)>,
    RequestData(data): RequestData,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    let mut doc = load_hook(&state, &account, &hook_id).await?;
    // The body's `secret` reads as on a hook; `null` (stop signing) is no rotation.
    let new = match data.get("secret").map(SecretChange::from_value) {
        None => SigningSecret::generate(),
        Some(Ok(SecretChange::Set(secret))) => secret,
        Some(Ok(SecretChange::Remove)) => {
            return Err(invalid_secret(
                "a rotation needs \"generate\" or a whsec_ secret",
            ))
        }
        Some(Err(e)) => return Err(invalid_secret(&e.to_string())),
    };
    let grace = match data.get("grace_period_s") {
        None => DEFAULT_GRACE_SECS,
        Some(v) => v
            .as_i64()
            .filter(|g| (0..=MAX_GRACE_SECS).contains(g))
            .ok_or_else(|| {
                ApiError::validation(json!({"grace_period_s": {"maximum": {
                    "message": format!("an integer from 0 to {MAX_GRACE_SECS}"),
                    "target": MAX_GRACE_SECS}}}))
            })?,
    };
    signature::rotate(&mut doc, &new, grace, webhooks_core::time::now_unix());
    doc.touch();
    let saved = state.store().save_hook(doc).await?;
    state.hooks().apply_doc(&saved);
    let mut view = hook_view(&saved);
    view.insert("secret".into(), Value::String(new.to_text()));
    Ok(Reply::doc(Value::Object(view), saved.rev()))
}
