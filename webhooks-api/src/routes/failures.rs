//! Failure counts (ours; KAZOO shows them only in `sup webhooks_maintenance failure_status`):
//! the failed tries the running engine counts towards disabling each hook, and flushing them.
//! The maintenance CLI's `failure-status` and `flush-*` commands use these.
//!
//! - `GET /v2/webhooks/failures`: every account's (the master account only);
//! - `GET /v2/accounts/{A}/webhooks/failures`: one account's (whoever may edit its hooks);
//! - `DELETE /v2/accounts/{A}/webhooks/failures` and `.../webhooks/{H}/failures`: forget them,
//!   on this node and, through the transport, on every other node.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use webhooks_core::failures::FailureDesk;
use webhooks_core::AccountId;

use crate::auth::Auth;
use crate::envelope::{ApiError, ApiResult, Reply};
use crate::ApiState;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v2/webhooks/failures", get(all))
        .route(
            "/v2/accounts/{account_id}/webhooks/failures",
            get(of_account).delete(flush_account),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks/{hook_id}/failures",
            axum::routing::delete(flush_hook),
        )
}

async fn all(State(state): State<ApiState>, auth: Auth) -> ApiResult {
    if !auth.account.superduper_admin {
        return Err(ApiError::forbidden());
    }
    counts(&state, None).await
}

async fn of_account(
    State(state): State<ApiState>,
    auth: Auth,
    Path(account_id): Path<String>,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    counts(&state, Some(&account.id)).await
}

async fn counts(state: &ApiState, account: Option<&AccountId>) -> ApiResult {
    let counts = desk(state)?.failure_counts(account).await?;
    Ok(Reply::ok(json!(counts)))
}

async fn flush_account(
    State(state): State<ApiState>,
    auth: Auth,
    Path(account_id): Path<String>,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    let flushed = desk(&state)?.flush_account_failures(&account.id);
    tracing::info!(account = %account.id, flushed, "failure counts flushed");
    Ok(Reply::ok(json!({ "flushed": flushed })))
}

async fn flush_hook(
    State(state): State<ApiState>,
    auth: Auth,
    Path((account_id, hook_id)): Path<(String, String)>,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    // Counts are kept per (account, hook): only this account's hook can be reached, and a
    // deleted hook's counts can still be flushed.
    let flushed = desk(&state)?.flush_hook_failures(&account.id, &hook_id);
    tracing::info!(account = %account.id, hook = hook_id, flushed, "failure counts flushed");
    Ok(Reply::ok(json!({ "flushed": flushed })))
}

fn desk(state: &ApiState) -> Result<&dyn FailureDesk, ApiError> {
    (state.failures().map(|d| d.as_ref())).ok_or_else(|| ApiError::no_engine("counts no failures"))
}
