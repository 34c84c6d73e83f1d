//! One file per resource, as crossbar has one module per resource.

pub mod accounts;
pub mod api_auth;
pub mod events;
pub mod failures;
pub mod replay;
pub mod secrets;
pub mod stats;
pub mod webhooks;

use axum::extract::Query;
use serde_json::json;

use crate::envelope::{ApiError, ApiResult, Reply};
use crate::query::ListParams;
use crate::{ApiConfig, ApiState};

/// Unknown routes: a crossbar 404.
pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// Liveness for load balancers and tests.
pub async fn health() -> Reply {
    Reply::ok(json!("ok"))
}

/// Query pairs of a listing; unknown keys are kept for the filters and otherwise ignored.
pub type Pairs = Query<Vec<(String, String)>>;

/// The listing's parameters, with `page_size` held to `ApiConfig::max_page_size` (crossbar
/// sets no maximum: any page it is asked for is read whole into memory).
pub fn list_params(state: &ApiState, q: &Pairs) -> Result<ListParams, ApiError> {
    let params = ListParams::parse(&q.0)?;
    let max = state.config().max_page_size;
    match params.page_size {
        Some(n) if n > max => Err(ApiError::validation(json!({"page_size": {"maximum": {
            "message": format!("Value must be at most {max}"), "target": max, "value": n}}}))),
        _ => Ok(params),
    }
}

/// A `paginate=false` listing with more than `max` items: refused, rather than cut short
/// silently (a client that asked for everything would take a part for the whole).
pub fn too_many_unpaginated(max: usize) -> ApiError {
    ApiError::validation(json!({"paginate": {"maximum": {
        "message": format!("more than {max} items: page through them with page_size and start_key"),
        "target": max}}}))
}

/// Pages a listing already sorted in the requested direction. `key` gives each item's sort key
/// (a string); `start_key` is inclusive, as in CouchDB, and `next_start_key` is the key of the
/// first item not returned.
pub fn paginate(
    items: Vec<(String, serde_json::Value)>,
    params: &ListParams,
    config: &ApiConfig,
    descending: bool,
) -> ApiResult {
    let start = params.start_key.clone();
    let iter = items.into_iter().filter(|(k, _)| match &start {
        None => true,
        Some(s) if descending => k.as_str() <= s.as_str(),
        Some(s) => k.as_str() >= s.as_str(),
    });
    if !params.paginate {
        let max = config.max_page_size;
        let all: Vec<serde_json::Value> =
            iter.take(max.saturating_add(1)).map(|(_, v)| v).collect();
        if all.len() > max {
            return Err(too_many_unpaginated(max));
        }
        return Ok(Reply::list(all));
    }
    let size = params
        .page_size
        .unwrap_or(config.default_page_size)
        .min(config.max_page_size);
    let mut page: Vec<(String, serde_json::Value)> = iter.take(size + 1).collect();
    let next = (page.len() > size)
        .then(|| page.pop().map(|(k, _)| json!(k)))
        .flatten();
    Ok(Reply::page(
        page.into_iter().map(|(_, v)| v).collect(),
        start.map(|s| json!(s)),
        next,
    ))
}
