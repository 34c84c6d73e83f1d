//! What a hook's deliveries came to lately (ours; crossbar has none): this node's tries over the
//! last hour in one-minute buckets, and the success rate. The dashboard draws its chart and its
//! rates from these.
//!
//! - `GET /v2/accounts/{A}/webhooks/stats`: `[{"hook_id", "succeeded", "failed", "success_rate"}]`
//!   for the account's hooks that made a try in the hour;
//! - `GET /v2/accounts/{A}/webhooks/{H}/stats`: `{"bucket_s", "buckets": [{"start",
//!   "succeeded", "failed"}], "succeeded", "failed", "success_rate"}`.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use webhooks_core::delivery_stats::DeliveryCounts;

use super::webhooks::load_hook;
use crate::auth::Auth;
use crate::envelope::{ApiError, ApiResult, Reply};
use crate::ApiState;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v2/accounts/{account_id}/webhooks/stats", get(of_account))
        .route(
            "/v2/accounts/{account_id}/webhooks/{hook_id}/stats",
            get(of_hook),
        )
}

async fn of_account(
    State(state): State<ApiState>,
    auth: Auth,
    Path(account_id): Path<String>,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    let rows: Vec<_> = counts(&state)?
        .account_counts(&account.id)
        .into_iter()
        .map(|(hook, c)| {
            json!({"hook_id": hook, "succeeded": c.succeeded, "failed": c.failed,
                   "success_rate": c.success_rate})
        })
        .collect();
    Ok(Reply::ok(json!(rows)))
}

async fn of_hook(
    State(state): State<ApiState>,
    auth: Auth,
    Path((account_id, hook_id)): Path<(String, String)>,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    load_hook(&state, &account, &hook_id).await?;
    let c = counts(&state)?.hook_counts(&account.id, &hook_id);
    Ok(Reply::ok(json!(c)))
}

fn counts(state: &ApiState) -> Result<&dyn DeliveryCounts, ApiError> {
    (state.counts().map(|c| c.as_ref())).ok_or_else(|| ApiError::no_engine("counts no deliveries"))
}
