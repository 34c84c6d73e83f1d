//! Sending deliveries again (ours; KAZOO has no replay):
//!
//! - `POST /v2/accounts/{A}/webhooks/{H}/replay` with `{"data": {"webhook_id": ID}}`: the
//!   delivery whose attempts carry that `webhook_id`, sent once more;
//! - `POST /v2/accounts/{A}/webhooks/{H}/recover` and `POST /v2/accounts/{A}/webhooks/recover`
//!   with `{"data": {"created_from": T1, "created_to": T2}}` (gregorian seconds, both optional,
//!   the same range rules as the attempts listing): every delivery of the hook, or of the
//!   account, whose last try failed in that range.
//!
//! The attempts are the record (`webhooks_core::replay` says which qualify and builds the
//! request); the engine sends, with the same `webhook-id`, to the hook as it is now. A hook
//! that is disabled or deleted is not sent to. Answers are 202 with how many were queued:
//! queued deliveries are as safe as an event's (journaled first when the engine keeps a
//! journal). Permissions are the hook's: whoever may edit it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Map, Value};
use webhooks_core::delivery::Delivery;
use webhooks_core::event::EventError;
use webhooks_core::hook::Hook;
use webhooks_core::replay::{replay_delivery, Recovery};
use webhooks_core::store::{AttemptCursor, AttemptQuery};
use webhooks_core::{Account, Doc};

use super::webhooks::{attempt_range, load_hook};
use crate::auth::Auth;
use crate::body::RequestData;
use crate::envelope::{ApiError, ApiResult, Reply};
use crate::ApiState;

/// Attempts read per store query.
const PAGE: usize = 1000;
/// Deliveries one recovery sends at most; the answer says where to go on from.
const MAX_RECOVERED: usize = 10_000;
/// Deliveries handed to the engine at once.
const BATCH: usize = 256;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/v2/accounts/{account_id}/webhooks/{hook_id}/replay",
            post(replay),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks/{hook_id}/recover",
            post(recover_hook),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks/recover",
            post(recover_account),
        )
}

async fn replay(
    State(state): State<ApiState>,
    auth: Auth,
    Path((account_id, hook_id)): Path<(String, String)>,
    RequestData(data): RequestData,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    load_hook(&state, &account, &hook_id).await?;
    let hook = live_hook(&state, &account, &hook_id)?;
    let Some(webhook_id) = data.get("webhook_id").and_then(Value::as_str) else {
        return Err(ApiError::validation(json!({"webhook_id": {"required": {
            "message": "the webhook_id of the delivery to send again (as its attempts show it)"}}})));
    };
    let (from, to) = range(&state, &data)?;
    let attempt = find_attempt(&state, &account, &hook_id, webhook_id, (from, to)).await?;
    let delivery = replay_delivery(&attempt, hook).map_err(|e| {
        ApiError::validation(json!({"webhook_id": {"invalid": {"message": e.to_string()}}}))
    })?;
    let queued = send(&state, vec![delivery]).await?;
    accepted(json!({"queued": queued, "webhook_id": webhook_id}))
}

async fn recover_hook(
    State(state): State<ApiState>,
    auth: Auth,
    Path((account_id, hook_id)): Path<(String, String)>,
    RequestData(data): RequestData,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    load_hook(&state, &account, &hook_id).await?;
    live_hook(&state, &account, &hook_id)?;
    recover(state, account, Some(hook_id), data).await
}

async fn recover_account(
    State(state): State<ApiState>,
    auth: Auth,
    Path(account_id): Path<String>,
    RequestData(data): RequestData,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    recover(state, account, None, data).await
}

/// Reads the range oldest first, then sends each delivery whose last attempt is a final
/// failure, in batches. At most [`MAX_RECOVERED`] deliveries per call: past that, the answer
/// names where to go on from.
async fn recover(
    state: ApiState,
    account: Account,
    hook: Option<String>,
    data: Map<String, Value>,
) -> ApiResult {
    let (from, to) = range(&state, &data)?;
    let mut recovery = Recovery::default();
    let mut start: Option<AttemptCursor> = None;
    let mut next_from = None;
    'pages: loop {
        let page = state
            .store()
            .attempts(query(
                &account,
                hook.clone(),
                (from, to),
                true,
                start.take(),
            ))
            .await?;
        for attempt in &page.attempts {
            if recovery.len() == MAX_RECOVERED {
                next_from = attempt.i64("pvt_created");
                break 'pages;
            }
            recovery.read(attempt);
        }
        match page.next {
            Some(next) => start = Some(next),
            None => break,
        }
    }
    let snap = state.hooks().snapshot();
    let live = |id: &str| snap.hooks_of(&account.id).find(|h| h.id == id).cloned();
    let (mut queued, mut skipped, mut batch) = (0, 0, Vec::new());
    for attempt in recovery.into_attempts() {
        let hook_id = attempt.str("hook_id").unwrap_or_default();
        match live(hook_id).map(|h| replay_delivery(&attempt, h)) {
            Some(Ok(delivery)) => batch.push(delivery),
            // Its hook is off or gone, or the attempt predates webhook ids.
            _ => skipped += 1,
        }
        if batch.len() == BATCH {
            queued += send(&state, std::mem::take(&mut batch)).await?;
        }
    }
    queued += send(&state, batch).await?;
    let mut answer = json!({
        "queued": queued, "skipped": skipped, "created_from": from, "created_to": to,
        "complete": next_from.is_none(),
    });
    if let Some(next) = next_from {
        answer["next_created_from"] = json!(next);
    }
    accepted(answer)
}

/// The delivery's newest attempt in the range, whatever its result.
async fn find_attempt(
    state: &ApiState,
    account: &Account,
    hook_id: &str,
    webhook_id: &str,
    range: (i64, i64),
) -> Result<Doc, ApiError> {
    let mut start = None;
    loop {
        let q = query(account, Some(hook_id.to_owned()), range, false, start);
        let page = state.store().attempts(q).await?;
        if let Some(found) =
            (page.attempts.into_iter()).find(|a| a.str("webhook_id") == Some(webhook_id))
        {
            return Ok(found);
        }
        match page.next {
            Some(next) => start = Some(next),
            None => return Err(ApiError::bad_identifier(webhook_id)),
        }
    }
}

fn query(
    account: &Account,
    hook: Option<String>,
    (from, to): (i64, i64),
    ascending: bool,
    start: Option<AttemptCursor>,
) -> AttemptQuery {
    AttemptQuery {
        account: account.id.clone(),
        hook,
        created_from: from,
        created_to: to,
        ascending,
        limit: PAGE,
        start,
    }
}

/// The hook as the engine holds it: only an enabled hook is sent to.
fn live_hook(state: &ApiState, account: &Account, hook_id: &str) -> Result<Arc<Hook>, ApiError> {
    let snap = state.hooks().snapshot();
    let found = snap
        .hooks_of(&account.id)
        .find(|h| h.id == hook_id)
        .cloned();
    found.ok_or_else(|| {
        ApiError::validation(json!({"enabled": {"disabled": {
            "message": "the webhook is disabled: enable it before sending its deliveries again"}}}))
    })
}

/// `created_from` / `created_to` of the body, integers when given.
fn range(state: &ApiState, data: &Map<String, Value>) -> Result<(i64, i64), ApiError> {
    let read = |key: &str| {
        match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| {
            ApiError::validation(json!({ key: {"type": {
                "message": "an integer: gregorian seconds, as crossbar's created_from/created_to"}}}))
        }),
    }
    };
    attempt_range(state, read("created_from")?, read("created_to")?)
}

async fn send(state: &ApiState, deliveries: Vec<Delivery>) -> Result<usize, ApiError> {
    if deliveries.is_empty() {
        return Ok(0);
    }
    let Some(sink) = state.resend() else {
        return Err(ApiError::no_engine("sends no deliveries"));
    };
    sink.resend(deliveries).await.map_err(|e| match e {
        EventError::NotDurable(why) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "datastore_fault",
            json!({"message": format!("the deliveries could not be stored ({why}); ask again later")}),
        ),
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down",
            json!({"message": "the engine is shutting down; ask again later"}),
        ),
    })
}

fn accepted(data: Value) -> ApiResult {
    let mut reply = Reply::ok(data);
    reply.status = StatusCode::ACCEPTED;
    Ok(reply)
}
