//! `failure-status`, `flush-account-failures`, `flush-hook-failures` (spec §12): the failed
//! tries the running daemon counts towards disabling each hook. The counts live in the nodes'
//! memory (each node hears of every node's failures), so these ask the daemon; a flush reaches
//! every node through the one that is asked.

use std::io::Write;

use serde_json::Value;
use webhooks_core::AccountId;

use crate::daemon::Daemon;
use crate::CliError;

/// Prints KAZOO's table: a dashed rule, `Account | Hook | Count`, a row per hook sorted by
/// (account, hook), and the rule again. With `json`, the rows as a JSON array.
pub async fn failure_status(
    daemon: &Daemon,
    account: Option<&AccountId>,
    json: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let path = match account {
        Some(account) => format!("/v2/accounts/{account}/webhooks/failures"),
        None => "/v2/webhooks/failures".to_owned(),
    };
    let rows = daemon.get(&path).await?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        )?;
        return Ok(());
    }
    let text = |row: &Value, key: &str| match &row[key] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    writeln!(out, "{}", rule())?;
    writeln!(out, "{}", line("Account", "Hook", "Count"))?;
    for row in rows.as_array().into_iter().flatten() {
        let (account, hook) = (text(row, "account_id"), text(row, "hook_id"));
        writeln!(out, "{}", line(&account, &hook, &text(row, "count")))?;
    }
    writeln!(out, "{}", rule())?;
    Ok(())
}

/// `flushed N failure entries`
pub async fn flush_account_failures(
    daemon: &Daemon,
    account: &AccountId,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let data = daemon
        .delete(&format!("/v2/accounts/{account}/webhooks/failures"))
        .await?;
    writeln!(out, "flushed {} failure entries", data["flushed"])?;
    Ok(())
}

/// `flushed N failure entries for <HookId>`
pub async fn flush_hook_failures(
    daemon: &Daemon,
    account: &AccountId,
    hook: &str,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let data = daemon
        .delete(&format!("/v2/accounts/{account}/webhooks/{hook}/failures"))
        .await?;
    writeln!(
        out,
        "flushed {} failure entries for {hook}",
        data["flushed"]
    )?;
    Ok(())
}

/// KAZOO's `"| ~32.32c | ~32.32c | ~5.5c |"` with `-`.
fn rule() -> String {
    format!(
        "| {} | {} | {} |",
        "-".repeat(32),
        "-".repeat(32),
        "-".repeat(5)
    )
}

/// KAZOO's `"| ~-32s | ~-32s | ~5s |"`: the count right-aligned. Erlang's `~5s` pads to 5
/// without cutting a longer value; so does this.
fn line(account: &str, hook: &str, count: &str) -> String {
    format!("| {account:<32} | {hook:<32} | {count:>5} |")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_kazoos_widths() {
        assert_eq!(rule().len(), line("Account", "Hook", "Count").len());
        assert_eq!(
            line("Account", "Hook", "Count"),
            format!(
                "| Account{} | Hook{} | Count |",
                " ".repeat(25),
                " ".repeat(28)
            )
        );
        assert!(line("a", "h", "7").ends_with("|     7 |"));
    }
}
