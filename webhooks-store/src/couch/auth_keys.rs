//! Token signing keys as kazoo_auth keeps them: document `system_auth/<kid>`
//! (`pvt_type: system_key`) with the PEM as its attachment `private_key.pem`
//! (`application/x-pem-file`). couch_rs has no attachment calls, so these are plain requests.

use serde_json::json;
use webhooks_core::store::StoreError;
use webhooks_core::Doc;

use super::client::{answer, Couch};
use super::names::SYSTEM_AUTH;

const ATTACHMENT: &str = "private_key.pem";
const CONTENT_TYPE: &str = "application/x-pem-file";
/// Writers of one key race only when two processes bootstrap at once.
const ROUNDS: usize = 5;

pub(super) async fn get(couch: &Couch, kid: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let path = attachment_path(couch, kid);
    let resp = couch
        .req(reqwest::Method::GET, &path)
        .send()
        .await
        .map_err(|e| StoreError::Backend(format!("couchdb unreachable: {e}")))?;
    let status = resp.status().as_u16();
    let body = resp
        .bytes()
        .await
        .map_err(|e| StoreError::Backend(format!("couchdb unreachable: {e}")))?;
    match status {
        200 => Ok(Some(body.to_vec())),
        404 => Ok(None),
        _ => Err(answer(status, &serde_json::Value::Null, &path)),
    }
}

/// Creates the key's document when missing, then writes the attachment at its revision.
pub(super) async fn save(couch: &Couch, kid: &str, pem: &[u8]) -> Result<(), StoreError> {
    for _ in 0..ROUNDS {
        let rev = match couch.get(SYSTEM_AUTH, kid).await? {
            Some(doc) => doc.rev().unwrap_or_default().to_owned(),
            None => match couch.save(SYSTEM_AUTH, key_doc(kid)).await {
                Ok(saved) => saved.rev().unwrap_or_default().to_owned(),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            },
        };
        let req = couch
            .req(reqwest::Method::PUT, &attachment_path(couch, kid))
            .query(&[("rev", rev.as_str())])
            .body(pem.to_vec());
        match couch.send(with_content_type(req, CONTENT_TYPE)?).await? {
            (201 | 202, _) => return Ok(()),
            (409, _) => continue,
            (status, body) => return Err(answer(status, &body, SYSTEM_AUTH)),
        }
    }
    Err(StoreError::Conflict)
}

/// The request with its content type replaced: couch_rs's requests carry
/// `application/json`, and a second `Content-Type` header would not override it.
fn with_content_type(
    req: reqwest::RequestBuilder,
    content_type: &'static str,
) -> Result<reqwest::RequestBuilder, StoreError> {
    let (client, req) = req.build_split();
    let mut req = req.map_err(|e| StoreError::Backend(format!("bad request: {e}")))?;
    req.headers_mut().insert(
        reqwest::header::CONTENT_TYPE,
        reqwest::header::HeaderValue::from_static(content_type),
    );
    Ok(reqwest::RequestBuilder::from_parts(client, req))
}

/// The document kazoo_auth writes before attaching a key (its `update_pvt_parameters`).
fn key_doc(kid: &str) -> Doc {
    let now = webhooks_core::time::now_gregorian();
    Doc::from_value(json!({
        "_id": kid,
        "pvt_type": "system_key",
        "pvt_account_db": SYSTEM_AUTH,
        "pvt_vsn": "1",
        "pvt_created": now,
        "pvt_modified": now,
    }))
    .expect("an object")
}

fn attachment_path(couch: &Couch, kid: &str) -> String {
    let kid: String = url::form_urlencoded::byte_serialize(kid.as_bytes()).collect();
    format!("{}/{kid}/{ATTACHMENT}", couch.db_path(SYSTEM_AUTH))
}
