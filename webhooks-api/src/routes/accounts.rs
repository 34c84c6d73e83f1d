//! Accounts, enough of crossbar's `cb_accounts` to run standalone: create children, read,
//! replace, patch, delete, list children and descendants, read the api key.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};
use webhooks_core::{Account, AccountId, Doc};

use super::{list_params, paginate, Pairs};
use crate::auth::Auth;
use crate::body::RequestData;
use crate::envelope::{ApiError, ApiResult, Reply};
use crate::ApiState;
use webhooks_core::ids::random_hex;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v2/accounts", axum::routing::put(create_under_caller))
        .route(
            "/v2/accounts/{account_id}",
            get(read)
                .put(create_child)
                .post(replace)
                .patch(patch)
                .delete(delete),
        )
        .route("/v2/accounts/{account_id}/children", get(children))
        .route("/v2/accounts/{account_id}/descendants", get(descendants))
        .route("/v2/accounts/{account_id}/api_key", get(api_key))
}

/// Checks the public fields of an account: `name` is a required string, `realm` an optional
/// string unique across accounts.
async fn validate_account(
    state: &ApiState,
    data: &Map<String, Value>,
    own_id: Option<&str>,
) -> Result<(), ApiError> {
    let mut errors = Map::new();
    match data.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(Value::String(_)) => {
            errors.insert("name".into(), json!({"minLength": {"message": "String must have at least 1 characters", "target": 1}}));
        }
        Some(v) => {
            errors.insert("name".into(), json!({"type": {"message": "Value did not match type(s): string", "target": "string", "value": v}}));
        }
        None => {
            errors.insert(
                "name".into(),
                json!({"required": {"message": "Field is required but missing"}}),
            );
        }
    }
    match data.get("realm") {
        None => {}
        Some(Value::String(realm)) => {
            let taken = state.store().accounts().await?.iter().any(|d| {
                d.str("realm")
                    .is_some_and(|r| r.eq_ignore_ascii_case(realm))
                    && d.id() != own_id
            });
            if taken {
                errors.insert(
                    "realm".into(),
                    json!({"unique": {"message": "Account realm already in use", "cause": realm}}),
                );
            }
        }
        Some(v) => {
            errors.insert("realm".into(), json!({"type": {"message": "Value did not match type(s): string", "target": "string", "value": v}}));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(Value::Object(errors)))
    }
}

async fn create_under_caller(
    State(state): State<ApiState>,
    auth: Auth,
    data: RequestData,
) -> ApiResult {
    let parent = auth.account.clone();
    create(state, parent, data.0).await
}

async fn create_child(
    State(state): State<ApiState>,
    auth: Auth,
    Path(parent_id): Path<String>,
    data: RequestData,
) -> ApiResult {
    let parent = auth.account(&state, &parent_id).await?;
    create(state, parent, data.0).await
}

async fn create(state: ApiState, parent: Account, data: Map<String, Value>) -> ApiResult {
    // crossbar takes the new account's id from `id` when the client gives one.
    let chosen = match data.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if AccountId::parse(s).is_ok() => AccountId::parse(s).ok(),
        Some(v) => {
            return Err(ApiError::validation(json!({"id": {"pattern": {
                "message": "an account id is 32 lowercase hex characters", "value": v}}})))
        }
    };
    let mut public: Map<String, Value> = data
        .into_iter()
        .filter(|(k, _)| {
            webhooks_core::doc::is_public_key(k) && k != "id" && !LEAKED.contains(&k.as_str())
        })
        .collect();
    // crossbar generates a realm when none is given, and strips spaces from a given one.
    match public.get("realm") {
        None | Some(Value::Null) => {
            public.insert(
                "realm".into(),
                json!(format!("{}.sip.webhooks.local", random_hex(3))),
            );
        }
        Some(Value::String(r)) => {
            let r: String = r.chars().filter(|c| !c.is_whitespace()).collect();
            public.insert("realm".into(), json!(r));
        }
        Some(_) => {}
    }
    validate_account(&state, &public, None).await?;
    let id = chosen.unwrap_or_else(AccountId::random);
    let mut tree: Vec<Value> = parent.tree.iter().map(|a| json!(a)).collect();
    tree.push(json!(parent.id));
    let now = webhooks_core::time::now_gregorian();
    let mut doc = Doc::from(public);
    doc.set("_id", id.as_str());
    doc.set("pvt_type", "account");
    doc.set("pvt_tree", Value::Array(tree));
    doc.set("pvt_parent_id", parent.id.as_str());
    doc.set("pvt_vsn", "1");
    doc.set("pvt_api_key", random_hex(32));
    doc.set("pvt_enabled", true);
    doc.set("pvt_account_id", id.as_str());
    doc.set("pvt_account_db", id.db_name());
    doc.set("pvt_created", now);
    doc.set("pvt_modified", now);
    let saved = match state.store().save_account(doc).await {
        // The store refuses an id in use and the id of a deleted account alike (ids are
        // never reused); which one it was is only for the message.
        Err(webhooks_core::StoreError::Conflict) if state.store().account(&id).await?.is_none() => {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "account_id_retired",
                json!({"id": {"unique": {
                    "message": "this id belonged to a deleted account and is not used again",
                    "cause": id}}}),
            ))
        }
        Err(webhooks_core::StoreError::Conflict) => {
            return Err(ApiError::validation(json!({"id": {"unique": {
                "message": "an account with this id already exists", "cause": id}}})))
        }
        other => other?,
    };
    if let Some(a) = Account::from_doc(&saved) {
        state.hooks().set_account(&a);
    }
    Ok(Reply::created(
        account_view(&saved),
        id.as_str(),
        saved.rev(),
    ))
}

/// Fields crossbar derives from private ones and shows with an account; never stored as
/// public fields when a client echoes them back.
const LEAKED: &[&str] = &[
    "created",
    "enabled",
    "superduper_admin",
    "reseller_id",
    "is_reseller",
    "_read_only",
];

/// An account as crossbar shows it: public fields, `id`, and the derived fields.
fn account_view(doc: &Doc) -> Value {
    let mut v = doc.to_api();
    v.insert("created".into(), json!(doc.i64("pvt_created")));
    v.insert(
        "enabled".into(),
        json!(doc.bool("pvt_enabled").unwrap_or(true)),
    );
    v.insert(
        "superduper_admin".into(),
        json!(doc.bool("pvt_superduper_admin").unwrap_or(false)),
    );
    if let Some(a) = Account::from_doc(doc) {
        let reseller = a.tree.first().unwrap_or(&a.id);
        v.insert("reseller_id".into(), json!(reseller));
        v.insert("is_reseller".into(), json!(a.tree.is_empty()));
    }
    Value::Object(v)
}

async fn load(state: &ApiState, id: &AccountId) -> Result<Doc, ApiError> {
    state
        .store()
        .account(id)
        .await?
        .ok_or_else(|| ApiError::bad_identifier(id.as_str()))
}

async fn read(State(state): State<ApiState>, auth: Auth, Path(id): Path<String>) -> ApiResult {
    let account = auth.account(&state, &id).await?;
    let doc = load(&state, &account.id).await?;
    Ok(Reply::doc(account_view(&doc), doc.rev()))
}

/// `enabled` in a POST or PATCH body: crossbar keeps it as `pvt_enabled`. Disabling an account
/// revokes its tokens and its api key (`Auth` and `api_auth` refuse a disabled account); a
/// token cannot disable its own account, as it cannot delete it.
fn requested_enabled(
    auth: &Auth,
    account: &Account,
    data: &Map<String, Value>,
) -> Result<Option<bool>, ApiError> {
    match data.get("enabled") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(false)) if account.id == auth.account.id => Err(ApiError::forbidden()),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(ApiError::validation(json!({"enabled": {"type": {
            "message": "Value did not match type(s): boolean", "target": "boolean", "value": v}}}))),
    }
}

async fn save_public(
    state: &ApiState,
    mut doc: Doc,
    public: Map<String, Value>,
    enabled: Option<bool>,
) -> ApiResult {
    validate_account(state, &public, doc.id()).await?;
    doc.replace_public(public);
    if let Some(enabled) = enabled {
        doc.set("pvt_enabled", enabled);
    }
    doc.touch();
    let saved = state.store().save_account(doc).await?;
    if let Some(a) = Account::from_doc(&saved) {
        state.hooks().set_account(&a);
    }
    Ok(Reply::doc(account_view(&saved), saved.rev()))
}

async fn replace(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    RequestData(data): RequestData,
) -> ApiResult {
    let account = auth.account(&state, &id).await?;
    let enabled = requested_enabled(&auth, &account, &data)?;
    let doc = load(&state, &account.id).await?;
    let public = data
        .into_iter()
        .filter(|(k, _)| k != "id" && !LEAKED.contains(&k.as_str()))
        .collect();
    save_public(&state, doc, public, enabled).await
}

async fn patch(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    RequestData(data): RequestData,
) -> ApiResult {
    let account = auth.account(&state, &id).await?;
    let enabled = requested_enabled(&auth, &account, &data)?;
    let doc = load(&state, &account.id).await?;
    let mut public = doc.public();
    public.extend(
        data.into_iter()
            .filter(|(k, _)| k != "id" && !LEAKED.contains(&k.as_str())),
    );
    save_public(&state, doc, public, enabled).await
}

/// Deleting an account removes its hooks with it. An account with sub-accounts is refused
/// (delete the leaves first), and nobody deletes the account their own token belongs to.
async fn delete(State(state): State<ApiState>, auth: Auth, Path(id): Path<String>) -> ApiResult {
    let account = auth.account(&state, &id).await?;
    if account.id == auth.account.id {
        return Err(ApiError::forbidden());
    }
    let doc = load(&state, &account.id).await?;
    let has_children = state
        .store()
        .accounts()
        .await?
        .iter()
        .filter_map(Account::from_doc)
        .any(|a| a.is_descendant_of(&account.id));
    if has_children {
        // crossbar answers 500 here; a refusal of the client's request is a 400.
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "account_has_descendants",
            json!({"message": "account has descendants"}),
        ));
    }
    state.store().delete_account(&account.id).await?;
    state.hooks().remove_account(&account.id);
    let mut data = account_view(&doc);
    data["_read_only"] = json!({"deleted": true});
    Ok(Reply::doc(data, doc.rev()))
}

/// A `children` item: `{id, name, realm, descendants_count, flags}`.
fn child_item(a: &Account, all: &[Account]) -> Value {
    let descendants = all.iter().filter(|d| d.is_descendant_of(&a.id)).count();
    json!({"id": a.id, "name": a.name, "realm": a.realm, "descendants_count": descendants, "flags": []})
}

/// A `descendants` item: `{id, name, realm, tree, flags}`.
fn descendant_item(a: &Account, _all: &[Account]) -> Value {
    json!({"id": a.id, "name": a.name, "realm": a.realm, "tree": a.tree, "flags": []})
}

async fn tree_listing(
    state: ApiState,
    auth: Auth,
    id: String,
    q: Pairs,
    pick: impl Fn(&Account, &AccountId) -> bool,
    item: fn(&Account, &[Account]) -> Value,
) -> ApiResult {
    let params = list_params(&state, &q)?;
    let account = auth.account(&state, &id).await?;
    let docs = state.store().accounts().await?;
    let all: Vec<Account> = docs.iter().filter_map(Account::from_doc).collect();
    let descending = params.descending.unwrap_or(false);
    let mut items: Vec<(String, Value)> = docs
        .iter()
        .filter_map(|d| Account::from_doc(d).map(|a| (a, d)))
        .filter(|(a, _)| pick(a, &account.id))
        .filter(|(_, d)| params.matches(&Value::Object(d.0.clone())))
        .map(|(a, _)| (format!("{}{}", a.name, a.id), item(&a, &all)))
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if descending {
        items.reverse();
    }
    paginate(items, &params, state.config(), descending)
}

async fn children(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    q: Pairs,
) -> ApiResult {
    tree_listing(
        state,
        auth,
        id,
        q,
        |a, parent| a.parent() == Some(parent),
        child_item,
    )
    .await
}

async fn descendants(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
    q: Pairs,
) -> ApiResult {
    tree_listing(
        state,
        auth,
        id,
        q,
        |a, root| a.is_descendant_of(root),
        descendant_item,
    )
    .await
}

async fn api_key(State(state): State<ApiState>, auth: Auth, Path(id): Path<String>) -> ApiResult {
    let account = auth.account(&state, &id).await?;
    let doc = load(&state, &account.id).await?;
    Ok(Reply::ok(json!({"api_key": doc.str("pvt_api_key")})))
}
