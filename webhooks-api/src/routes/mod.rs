//! One file per resource, as crossbar has one module per resource.

pub mod accounts;
pub mod api_auth;
pub mod events;
pub mod webhooks;

use axum::extract::Query;
use serde_json::json;

use crate::envelope::{ApiError, ApiResult, Reply};
use crate::query::ListParams;

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

pub fn list_params(q: &Pairs) -> Result<ListParams, ApiError> {
    ListParams::parse(&q.0)
}

/// Pages a listing already sorted in the requested direction. `key` gives each item's sort key
/// (a string); `start_key` is inclusive, as in CouchDB, and `next_start_key` is the key of the
/// first item not returned.
pub fn paginate(
    items: Vec<(String, serde_json::Value)>,
    params: &ListParams,
    default_page_size: usize,
    descending: bool,
) -> ApiResult {
    let start = params.start_key.clone();
    let iter = items.into_iter().filter(|(k, _)| match &start {
        None => true,
        Some(s) if descending => k.as_str() <= s.as_str(),
        Some(s) => k.as_str() >= s.as_str(),
    });
    if !params.paginate {
        return Ok(Reply::list(iter.map(|(_, v)| v).collect()));
    }
    let size = params.page_size.unwrap_or(default_page_size);
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
