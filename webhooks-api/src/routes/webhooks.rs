//! `/v2/webhooks` and `/v2/accounts/{A}/webhooks/...`: crossbar's `cb_webhooks` (spec §3).

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::routing::{get, patch};
use axum::Router;
use serde_json::{json, Map, Value};
use webhooks_core::ids::new_doc_id;
use webhooks_core::reenable::reenable_tree;
use webhooks_core::signature::SecretChange;
use webhooks_core::store::{AttemptCursor, AttemptQuery};
use webhooks_core::validate::{validate_webhook, WebhookRules};
use webhooks_core::{Account, Doc};

use super::{list_params, paginate, Pairs};
use crate::auth::{request_token, Auth};
use crate::body::RequestData;
use crate::envelope::{ApiError, ApiResult, Reply};
use crate::ApiState;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v2/webhooks", get(catalogue))
        .route("/v2/webhooks/samples", get(sample_ids))
        .route("/v2/webhooks/samples/{sample_id}", get(samples))
        .route(
            "/v2/accounts/{account_id}/webhooks",
            get(summary).put(create).patch(reenable_account),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks/attempts",
            get(account_attempts),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks/samples",
            get(account_sample_ids),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks/samples/{sample_id}",
            get(account_samples),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks/{hook_id}",
            get(read).post(replace).patch(update).delete(delete),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks/{hook_id}/attempts",
            get(hook_attempts),
        )
        .route(
            "/v2/accounts/{account_id}/descendants/webhooks",
            patch(reenable_descendants),
        )
}

/// Notification types crossbar hides from callers who are not the super-duper admin. Hiding is
/// cosmetic, as in KAZOO: creating such a hook is still allowed.
const ADMIN_ONLY_NOTIFICATIONS: &[&str] = &["system_alert", "webhook_disabled"];

/// `GET /v2/webhooks`: the catalogue of hook types, from the registered modules' metadata,
/// sorted by name, descending unless `ascending=true`. Public.
async fn catalogue(State(state): State<ApiState>, parts: Parts, q: Pairs) -> ApiResult {
    let params = list_params(&state, &q)?;
    // Who asks only decides what is shown, so a token that does not hold is a public caller.
    let is_admin = match request_token(&parts) {
        Some(token) => Auth::from_token(&state, token)
            .await
            .is_ok_and(|a| a.account.superduper_admin),
        None => false,
    };
    let mut entries: Vec<&webhooks_core::ModuleMetadata> = state.registry().catalogue();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    if params.descending.unwrap_or(true) {
        entries.reverse();
    }
    let items = entries
        .into_iter()
        .map(|m| {
            let mut v = m.to_json();
            if !is_admin {
                if let Some(items) = v
                    .pointer_mut("/modifiers/type/items")
                    .and_then(Value::as_object_mut)
                {
                    for hidden in ADMIN_ONLY_NOTIFICATIONS {
                        items.remove(*hidden);
                    }
                }
            }
            v
        })
        .filter(|v| params.matches(v))
        .collect();
    Ok(Reply::list(items))
}

fn sample_list(state: &ApiState) -> Reply {
    let ids = state
        .registry()
        .sample_ids()
        .into_iter()
        .map(Value::String)
        .collect();
    Reply::ok(Value::Array(ids))
}

fn sample_items(state: &ApiState, sample_id: &str, q: &Pairs) -> ApiResult {
    let params = list_params(state, q)?;
    let samples = state.registry().samples(sample_id).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "bad identifier",
            json!([sample_id]),
        )
    })?;
    Ok(Reply::list(
        samples.into_iter().filter(|s| params.matches(s)).collect(),
    ))
}

async fn sample_ids(State(state): State<ApiState>) -> Reply {
    sample_list(&state)
}

async fn samples(
    State(state): State<ApiState>,
    Path(sample_id): Path<String>,
    q: Pairs,
) -> ApiResult {
    sample_items(&state, &sample_id, &q)
}

async fn account_sample_ids(
    State(state): State<ApiState>,
    auth: Auth,
    Path(account_id): Path<String>,
) -> ApiResult {
    auth.account(&state, &account_id).await?;
    Ok(sample_list(&state))
}

async fn account_samples(
    State(state): State<ApiState>,
    auth: Auth,
    Path((account_id, sample_id)): Path<(String, String)>,
    q: Pairs,
) -> ApiResult {
    auth.account(&state, &account_id).await?;
    sample_items(&state, &sample_id, &q)
}

/// A webhook as the API shows it: public fields, `id`, and `disable_reason` when the disabler
/// switched it off.
pub(super) fn hook_view(doc: &Doc) -> Map<String, Value> {
    let mut v = doc.to_api();
    if let Some(reason) = doc.get("pvt_disabled_message") {
        v.insert("disable_reason".into(), reason.clone());
    }
    // Only that the hook signs (an unsigned hook looks as KAZOO shows it): the secret itself
    // is served by `GET .../secret` alone.
    if doc.get("pvt_signing_secret").is_some() {
        v.insert("signed".into(), Value::Bool(true));
    }
    v
}

/// Takes `secret` out of a request's data (it is never a public field) and reads what it
/// asks for: a validation error in crossbar's shape when it is not one of its three forms.
fn take_secret(data: &mut Map<String, Value>) -> Result<Option<SecretChange>, ApiError> {
    let Some(value) = data.remove("secret") else {
        return Ok(None);
    };
    SecretChange::from_value(&value)
        .map(Some)
        .map_err(|e| invalid_secret(&e.to_string()))
}

/// The validation error of a `secret` that is none of its forms.
pub(super) fn invalid_secret(message: &str) -> ApiError {
    ApiError::validation(json!({"secret": {"invalid": {"message": message}}}))
}

/// The summary item of a listing (KAZOO's `crossbar_listing` view value).
fn summary_item(doc: &Doc) -> Value {
    let mut m = Map::new();
    for k in ["hook", "name", "uri"] {
        if let Some(v) = doc.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    m.insert("id".into(), json!(doc.id()));
    m.insert("enabled".into(), json!(doc.bool("enabled") != Some(false)));
    if let Some(g) = doc.get("group") {
        m.insert("group".into(), g.clone());
    }
    if let Some(reason) = doc.get("pvt_disabled_message") {
        m.insert("disable_reason".into(), reason.clone());
    }
    Value::Object(m)
}

async fn summary(
    State(state): State<ApiState>,
    auth: Auth,
    Path(account_id): Path<String>,
    q: Pairs,
) -> ApiResult {
    let params = list_params(&state, &q)?;
    let account = auth.account(&state, &account_id).await?;
    let descending = params.descending.unwrap_or(true);
    let mut items: Vec<(String, Value)> = state
        .store()
        .hooks_of_account(&account.id)
        .await?
        .into_iter()
        .filter(|d| d.pvt_type() == Some("webhook"))
        .filter(|d| params.matches(&Value::Object(d.0.clone())))
        .map(|d| (d.id().unwrap_or_default().to_owned(), summary_item(&d)))
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if descending {
        items.reverse();
    }
    paginate(items, &params, state.config(), descending)
}

fn rules(state: &ApiState) -> WebhookRules<'_> {
    WebhookRules {
        registry: state.registry(),
        blacklist: &state.config().uri_blacklist,
        destinations: &state.config().destinations,
    }
}

/// A client-chosen document id (crossbar copies `id` from a PUT body): letters, digits, `-`
/// and `_`, at most 128 characters, so it is safe in a URL path.
fn client_id(data: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match data.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && s != "attempts"
                && s != "samples" =>
        {
            Ok(Some(s.clone()))
        }
        Some(v) => Err(ApiError::validation(json!({"id": {"pattern": {
            "message": "id must be 1 to 128 letters, digits, '-' or '_'", "value": v}}}))),
    }
}

/// `custom_data` is merged into every payload the hook sends, so its size is capped
/// (`ApiConfig::max_custom_data_bytes`, as JSON).
fn check_custom_data(state: &ApiState, public: &Map<String, Value>) -> Result<(), ApiError> {
    let max = state.config().max_custom_data_bytes;
    let size = public
        .get("custom_data")
        .map_or(0, |v| serde_json::to_vec(v).map_or(usize::MAX, |b| b.len()));
    if size > max {
        return Err(ApiError::validation(json!({"custom_data": {"maxSize": {
            "message": format!("custom_data must not be more than {max} bytes of JSON"),
            "target": max, "value": size}}})));
    }
    Ok(())
}

/// An account holds at most `ApiConfig::max_hooks_per_account` webhooks (soft-deleted ones
/// not counted). Two creates racing at the limit may both pass: the cap bounds the table,
/// it is not a billing count.
async fn check_hook_count(state: &ApiState, account: &Account) -> Result<(), ApiError> {
    let max = state.config().max_hooks_per_account;
    let count = state
        .store()
        .hooks_of_account(&account.id)
        .await?
        .iter()
        .filter(|d| d.pvt_type() == Some("webhook"))
        .count();
    if count >= max {
        return Err(ApiError::validation(json!({"webhooks": {"maxItems": {
            "message": format!("an account may have at most {max} webhooks"),
            "target": max}}})));
    }
    Ok(())
}

async fn create(
    State(state): State<ApiState>,
    auth: Auth,
    Path(account_id): Path<String>,
    RequestData(data): RequestData,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    let mut data = data;
    let secret = take_secret(&mut data)?;
    let id = client_id(&data)?.unwrap_or_else(new_doc_id);
    let public = validate_webhook(data, &rules(&state))?;
    check_custom_data(&state, &public)?;
    check_hook_count(&state, &account).await?;
    let now = webhooks_core::time::now_gregorian();
    let mut doc = Doc::from(public);
    doc.set("_id", id.as_str());
    doc.set("pvt_type", "webhook");
    doc.set("pvt_account_id", account.id.as_str());
    doc.set("pvt_account_db", "webhooks");
    doc.set("pvt_vsn", "1");
    doc.set("pvt_created", now);
    doc.set("pvt_modified", now);
    doc.set("pvt_auth_account_id", auth.account.id.as_str());
    if let Some(change) = secret {
        change.apply(&mut doc);
    }
    let saved = match state.store().save_hook(doc).await {
        Err(webhooks_core::StoreError::Conflict) => {
            return Err(ApiError::validation(json!({"id": {"unique": {
                "message": "a webhook with this id already exists", "cause": id}}})))
        }
        other => other?,
    };
    state.hooks().apply_doc(&saved);
    Ok(Reply::created(
        Value::Object(hook_view(&saved)),
        &id,
        saved.rev(),
    ))
}

/// Loads a webhook of `account`: missing, soft-deleted, not a webhook, or owned by another
/// account are all the same 404 (KAZOO serves other accounts' hooks here: bug §16.14).
pub(super) async fn load_hook(
    state: &ApiState,
    account: &Account,
    hook_id: &str,
) -> Result<Doc, ApiError> {
    let doc = state.store().hook(hook_id).await?;
    doc.filter(|d| {
        d.pvt_type() == Some("webhook")
            && !d.is_deleted()
            && d.account_id() == Some(account.id.as_str())
    })
    .ok_or_else(|| ApiError::bad_identifier(hook_id))
}

async fn read(
    State(state): State<ApiState>,
    auth: Auth,
    Path((account_id, hook_id)): Path<(String, String)>,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    let doc = load_hook(&state, &account, &hook_id).await?;
    Ok(Reply::doc(Value::Object(hook_view(&doc)), doc.rev()))
}

/// Saves new public fields over a stored hook. As in crossbar, a result that is not
/// explicitly `enabled: false` is enabled and loses any auto-disable reason (§3.3.7).
async fn save_public(
    state: &ApiState,
    mut doc: Doc,
    public: Map<String, Value>,
    secret: Option<SecretChange>,
) -> ApiResult {
    doc.replace_public(public);
    if let Some(change) = secret {
        change.apply(&mut doc);
    }
    if doc.bool("enabled") != Some(false) {
        doc.set("enabled", true);
        doc.remove("pvt_disabled_message");
    }
    doc.touch();
    let saved = state.store().save_hook(doc).await?;
    state.hooks().apply_doc(&saved);
    Ok(Reply::doc(Value::Object(hook_view(&saved)), saved.rev()))
}

async fn replace(
    State(state): State<ApiState>,
    auth: Auth,
    Path((account_id, hook_id)): Path<(String, String)>,
    RequestData(data): RequestData,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    let doc = load_hook(&state, &account, &hook_id).await?;
    let mut data = data;
    let secret = take_secret(&mut data)?;
    let public = validate_webhook(data, &rules(&state))?;
    check_custom_data(&state, &public)?;
    save_public(&state, doc, public, secret).await
}

async fn update(
    State(state): State<ApiState>,
    auth: Auth,
    Path((account_id, hook_id)): Path<(String, String)>,
    RequestData(data): RequestData,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    let doc = load_hook(&state, &account, &hook_id).await?;
    let mut data = data;
    let secret = take_secret(&mut data)?;
    let mut merged = doc.public();
    merged.extend(data);
    let public = validate_webhook(merged, &rules(&state))?;
    check_custom_data(&state, &public)?;
    save_public(&state, doc, public, secret).await
}

/// Soft delete, as crossbar does: the document stays with `pvt_deleted: true` and the reply is
/// the deleted hook with `_read_only.deleted`.
async fn delete(
    State(state): State<ApiState>,
    auth: Auth,
    Path((account_id, hook_id)): Path<(String, String)>,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    let mut doc = load_hook(&state, &account, &hook_id).await?;
    doc.set("pvt_deleted", true);
    doc.touch();
    let saved = state.store().save_hook(doc).await?;
    state.hooks().apply_doc(&saved);
    let mut data = hook_view(&saved);
    data.insert("_read_only".into(), json!({"deleted": true}));
    Ok(Reply::doc(Value::Object(data), saved.rev()))
}

/// The range of an attempts query, in gregorian seconds, as crossbar reads it: `created_to`
/// defaults to now and `created_from` to the longest range before it; a range that is
/// reversed or longer than `max_range_secs` is refused.
pub(super) fn attempt_range(
    state: &ApiState,
    created_from: Option<i64>,
    created_to: Option<i64>,
) -> Result<(i64, i64), ApiError> {
    let max = state.config().max_range_secs;
    let to = created_to.unwrap_or_else(webhooks_core::time::now_gregorian);
    let from = created_from.unwrap_or(to - max);
    if from > to {
        return Err(ApiError::validation(
            json!({"created_from": {"date_range": {
            "message": "created_from is after created_to", "cause": from}}}),
        ));
    }
    if to - from > max {
        return Err(ApiError::validation(
            json!({"created_from": {"date_range": {
            "message": format!("created_to is more than {max} seconds from created_from"),
            "cause": from}}}),
        ));
    }
    Ok((from, to))
}

async fn attempts(state: ApiState, account: Account, hook: Option<String>, q: Pairs) -> ApiResult {
    let params = list_params(&state, &q)?;
    let (from, to) = attempt_range(&state, params.created_from, params.created_to)?;
    // The store's cursor travels to the client and back as text, untouched: only the store
    // can read it, and it refuses one it did not make (a 400 on `start_key`).
    let start = params.start_key.as_deref().map(AttemptCursor::new);
    let max = state.config().max_page_size;
    let limit = if params.paginate {
        params
            .page_size
            .unwrap_or(state.config().default_page_size)
            .min(max)
    } else {
        // One more than may be answered, to tell "exactly max" from "too many".
        max.saturating_add(1)
    };
    let page = state
        .store()
        .attempts(AttemptQuery {
            account: account.id.clone(),
            hook,
            created_from: from,
            created_to: to,
            ascending: params.descending == Some(false),
            limit,
            start,
        })
        .await?;
    if !params.paginate && page.attempts.len() > max {
        return Err(super::too_many_unpaginated(max));
    }
    let items: Vec<Value> = page
        .attempts
        .iter()
        // Filters see the whole stored document (created_* read pvt_created), as in crossbar.
        .filter(|d| params.matches(&Value::Object(d.0.clone())))
        .map(|d| {
            let mut v = d.public();
            v.insert("timestamp".into(), json!(d.i64("pvt_created")));
            Value::Object(v)
        })
        .collect();
    if !params.paginate {
        return Ok(Reply::list(items));
    }
    Ok(Reply::page(
        items,
        params.start_key.map(Value::String),
        page.next.map(|c| Value::String(c.as_str().to_owned())),
    ))
}

async fn account_attempts(
    State(state): State<ApiState>,
    auth: Auth,
    Path(account_id): Path<String>,
    q: Pairs,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    attempts(state, account, None, q).await
}

async fn hook_attempts(
    State(state): State<ApiState>,
    auth: Auth,
    Path((account_id, hook_id)): Path<(String, String)>,
    q: Pairs,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    // Attempts of a deleted hook stay readable; another account's hook is a 404.
    let owned = state
        .store()
        .hook(&hook_id)
        .await?
        .is_some_and(|d| d.account_id() == Some(account.id.as_str()));
    if !owned {
        return Err(ApiError::bad_identifier(&hook_id));
    }
    attempts(state, account, Some(hook_id), q).await
}

/// The body of a bulk re-enable must carry a truthy `re-enable` (§3.3.9).
fn check_reenable(data: &Map<String, Value>) -> Result<(), ApiError> {
    match data.get("re-enable") {
        None => Err(ApiError::validation(json!({"re-enable": {"required": {
            "message": "re-enable is required to patch collections"}}}))),
        Some(Value::Bool(true)) => Ok(()),
        Some(Value::String(s)) if s == "true" => Ok(()),
        Some(_) => Err(ApiError::validation(json!({"re-enable": {"enum": {
            "message": "value not found in enumerated list of values", "target": [true]}}}))),
    }
}

/// Re-enables the auto-disabled hooks of `account` (and its descendants), applying each to
/// the running engine.
async fn reenable(state: &ApiState, account: &Account, descendants: bool) -> ApiResult {
    let done = reenable_tree(state.store(), &account.id, descendants).await?;
    for (a, saved) in &done {
        for doc in saved {
            state.hooks().apply_doc(doc);
        }
        if !saved.is_empty() {
            let ids: Vec<&str> = saved.iter().filter_map(Doc::id).collect();
            tracing::info!(account = %a, count = saved.len(), ids = ?ids, "re-enabled hooks");
        }
    }
    Ok(Reply::ok(json!("hooks updated")))
}

async fn reenable_account(
    State(state): State<ApiState>,
    auth: Auth,
    Path(account_id): Path<String>,
    RequestData(data): RequestData,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    check_reenable(&data)?;
    reenable(&state, &account, false).await
}

async fn reenable_descendants(
    State(state): State<ApiState>,
    auth: Auth,
    Path(account_id): Path<String>,
    RequestData(data): RequestData,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    check_reenable(&data)?;
    reenable(&state, &account, true).await
}
