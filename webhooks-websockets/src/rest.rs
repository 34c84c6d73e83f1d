//! Crossbar's `cb_websockets` (spec §9): read-only views of the live streams, mounted into the
//! REST API's router (`webhooks_api::router_with`) so they share its envelope and auth.
//!
//! - `GET /v2/websockets`: the bindings a socket may subscribe to (public);
//! - `GET /v2/accounts/{A}/websockets`: the sockets authenticated as A on this node;
//! - `GET /v2/accounts/{A}/websockets/{SOCKET_ID}`: one of them.
//!
//! Unlike crossbar, a socket id that is not one of A's is a 404 (crossbar crashes on an unknown
//! id and shows any account's socket to anyone, bug B14), and the caller's own sockets are not
//! mixed into another account's list. Only this node's sockets are listed: crossbar asks every
//! blackhole node over AMQP, which this engine does not answer yet.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::Value;
use webhooks_api::{ApiError, ApiResult, ApiState, Auth, Reply};

use crate::hub::Hub;

pub fn routes(hub: Hub) -> Router<ApiState> {
    Router::new()
        .route("/v2/websockets", get(catalogue))
        .route("/v2/accounts/{account_id}/websockets", get(sockets))
        .route(
            "/v2/accounts/{account_id}/websockets/{socket_id}",
            get(socket),
        )
        .layer(Extension(hub))
}

async fn catalogue() -> Reply {
    Reply::ok(crate::bindings::catalogue())
}

async fn sockets(
    State(state): State<ApiState>,
    Extension(hub): Extension<Hub>,
    auth: Auth,
    Path(account_id): Path<String>,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    Ok(Reply::ok(Value::Array(hub.sockets_of(&account.id))))
}

async fn socket(
    State(state): State<ApiState>,
    Extension(hub): Extension<Hub>,
    auth: Auth,
    Path((account_id, socket_id)): Path<(String, String)>,
) -> ApiResult {
    let account = auth.account(&state, &account_id).await?;
    match hub.socket(&socket_id) {
        Some((Some(owner), view)) if owner == account.id => Ok(Reply::ok(view)),
        _ => Err(ApiError::bad_identifier(&socket_id)),
    }
}
