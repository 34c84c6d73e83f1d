//! `register-views`: KAZOO's `webhooks_maintenance:register_views/0`, which installs the
//! design documents the webhooks code queries. Only CouchDB has them.

use std::io::Write;

use webhooks_store::CouchStore;

use crate::CliError;

/// Installs (or brings up to date) the design documents on `couch`; `None` is the embedded
/// store, which has no views.
pub async fn register_views(
    couch: Option<&CouchStore>,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let couch = couch.ok_or(CliError::NoViews)?;
    couch.register_views().await?;
    writeln!(out, "registered the webhooks views")?;
    Ok(())
}
