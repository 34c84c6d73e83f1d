//! `hooks-configured`: the hook table as KAZOO prints it (`webhooks_shared_listener`).

use std::io::Write;

use webhooks_core::config::WebhooksConfig;
use webhooks_core::hook::{doc_is_enabled, Hook};
use webhooks_core::{AccountId, Store};

use crate::CliError;

/// Prints the hooks the engine loads at start: enabled, not soft-deleted, and convertible
/// (a hook naming an event no module handles is skipped, as KAZOO's loader skips it).
///
/// KAZOO dumps the running node's in-memory table; this reads the store and applies the same
/// load rules, so it shows what a (re)started daemon fires, whether or not one runs.
///
/// With `json`, the same hooks as a JSON array of objects with the table's columns and the
/// hook's id.
pub async fn hooks_configured(
    store: &dyn Store,
    account: Option<&AccountId>,
    json: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let config = WebhooksConfig::from_doc(store.system_config("webhooks").await?.as_ref());
    let registry = webhooks_modules::kazoo_registry(&config.object_types);
    let docs = match account {
        Some(account) => store.hooks_of_account(account).await?,
        None => store.all_hooks().await?,
    };
    let mut hooks: Vec<Hook> = docs
        .iter()
        .filter(|doc| doc_is_enabled(doc))
        .filter_map(|doc| Hook::from_doc(doc, |event| registry.is_available(event)).ok())
        .collect();
    // KAZOO's table has no order; grouping by account makes the listing readable.
    hooks.sort_by(|a, b| (&a.account_id, &a.id).cmp(&(&b.account_id, &b.id)));

    if json {
        let rows: Vec<serde_json::Value> = hooks
            .iter()
            .map(|hook| {
                serde_json::json!({
                    "id": hook.id,
                    "uri": hook.uri,
                    "http_verb": hook.http_verb.as_str(),
                    "event": hook.internal_event(),
                    "retries": hook.retries,
                    "account_id": hook.account_id,
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&rows).unwrap_or_default();
        writeln!(out, "{text}")?;
        return Ok(());
    }
    if hooks.is_empty() {
        writeln!(out, "no webhooks configured")?;
        return Ok(());
    }
    writeln!(
        out,
        "{}",
        row("URI", "VERB", "EVENT", "RETRIES", "ACCOUNT ID")
    )?;
    for hook in &hooks {
        writeln!(
            out,
            "{}",
            row(
                &hook.uri,
                hook.http_verb.as_str(),
                &hook.internal_event(),
                &hook.retries.to_string(),
                hook.account_id.as_str(),
            )
        )?;
    }
    writeln!(out, "found {} webhooks", hooks.len())?;
    Ok(())
}

/// One table line, KAZOO's `"| ~-45s | ~-5s | ~-20s | ~-10s | ~-32s |"`. Erlang's `~-Ns`
/// pads *and truncates* to N, so a uri longer than 45 characters is cut here too, keeping the
/// columns aligned and the lines identical to KAZOO's for anything that parses them.
fn row(uri: &str, verb: &str, event: &str, retries: &str, account: &str) -> String {
    format!("| {uri:<45.45} | {verb:<5.5} | {event:<20.20} | {retries:<10.10} | {account:<32.32} |")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_row_matches_kazoo_column_widths() {
        assert_eq!(
            row("URI", "VERB", "EVENT", "RETRIES", "ACCOUNT ID"),
            format!(
                "| URI{} | VERB  | EVENT{} | RETRIES    | ACCOUNT ID{} |",
                " ".repeat(42),
                " ".repeat(15),
                " ".repeat(22)
            )
        );
    }

    #[test]
    fn every_row_has_the_same_width_and_long_values_are_cut_like_erlang() {
        let long_uri = format!("https://example.com/{}", "x".repeat(60));
        let short = row("http://a", "get", "all", "1", "a");
        let long = row(
            &long_uri,
            "post",
            "CHANNEL_DESTROY",
            "5",
            "0123456789abcdef0123456789abcdef",
        );
        assert_eq!(short.chars().count(), long.chars().count());
        assert!(long.starts_with(&format!("| {} | post  |", &long_uri[..45])));
    }

    #[test]
    fn non_ascii_values_are_cut_on_characters_not_bytes() {
        let uri = "https://é.example/".repeat(5);
        let line = row(&uri, "get", "all", "2", "a");
        let expected: String = uri.chars().take(45).collect();
        assert!(line.starts_with(&format!("| {expected} |")));
    }
}
