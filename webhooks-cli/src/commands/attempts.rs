//! `attempts`, `replay` and `recover`: what was sent to a receiver, and sending it again.
//!
//! Attempts are listed through the daemon's API (crossbar's attempts listing, every page), so
//! they read the same whichever store the daemon uses. A replay or a recovery is work for the
//! engine: the daemon queues the deliveries and answers how many.

use std::io::Write;

use reqwest::Method;
use serde_json::{json, Map, Value};
use webhooks_core::AccountId;

use crate::daemon::Daemon;
use crate::{CliError, CreatedRange};

/// Lists the attempts of an account (or of one hook), newest first: a table, or with `json`
/// the attempts as crossbar returns them.
pub async fn attempts(
    daemon: &Daemon,
    account: &AccountId,
    hook: Option<&str>,
    range: &CreatedRange,
    json: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let base = match hook {
        Some(hook) => format!("/v2/accounts/{account}/webhooks/{hook}/attempts"),
        None => format!("/v2/accounts/{account}/webhooks/attempts"),
    };
    let mut query = vec!["page_size=1000".to_owned()];
    if let Some(from) = range.created_from {
        query.push(format!("created_from={from}"));
    }
    if let Some(to) = range.created_to {
        query.push(format!("created_to={to}"));
    }
    let items = daemon
        .get_all(&format!("{base}?{}", query.join("&")))
        .await?;
    if json {
        let text = serde_json::to_string_pretty(&items).unwrap_or_default();
        writeln!(out, "{text}")?;
        return Ok(());
    }
    if items.is_empty() {
        writeln!(out, "no attempts")?;
        return Ok(());
    }
    writeln!(
        out,
        "{}",
        row("TIME (UTC)", "HOOK", "RESULT", "ANSWER", "WEBHOOK ID")
    )?;
    for a in &items {
        let time = a["timestamp"].as_i64().map(utc).unwrap_or_default();
        let answer = match (a["resp_status_code"].as_str(), a["client_error"].as_str()) {
            (Some(status), _) => status.to_owned(),
            (None, Some(error)) => error.to_owned(),
            (None, None) => String::new(),
        };
        let cell = |key: &str| a[key].as_str().unwrap_or_default().to_owned();
        let line = row(
            &time,
            &cell("hook_id"),
            &cell("result"),
            &answer,
            &cell("webhook_id"),
        );
        writeln!(out, "{line}")?;
    }
    writeln!(out, "found {} attempts", items.len())?;
    Ok(())
}

/// Sends one delivery of a hook again.
pub async fn replay(
    daemon: &Daemon,
    account: &AccountId,
    hook: &str,
    webhook_id: &str,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let path = format!("/v2/accounts/{account}/webhooks/{hook}/replay");
    let data = daemon
        .send(Method::POST, &path, json!({ "webhook_id": webhook_id }))
        .await?;
    writeln!(out, "queued {} deliveries: {webhook_id}", data["queued"])?;
    Ok(())
}

/// Sends again every delivery of the account (or hook) whose last try failed in the range.
pub async fn recover(
    daemon: &Daemon,
    account: &AccountId,
    hook: Option<&str>,
    range: &CreatedRange,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let path = match hook {
        Some(hook) => format!("/v2/accounts/{account}/webhooks/{hook}/recover"),
        None => format!("/v2/accounts/{account}/webhooks/recover"),
    };
    let mut data = Map::new();
    if let Some(from) = range.created_from {
        data.insert("created_from".into(), json!(from));
    }
    if let Some(to) = range.created_to {
        data.insert("created_to".into(), json!(to));
    }
    let answer = daemon
        .send(Method::POST, &path, Value::Object(data))
        .await?;
    writeln!(
        out,
        "queued {} deliveries that failed between {} and {}",
        answer["queued"],
        answer["created_from"].as_i64().map(utc).unwrap_or_default(),
        answer["created_to"].as_i64().map(utc).unwrap_or_default(),
    )?;
    if answer["complete"] == json!(false) {
        writeln!(
            out,
            "more remain: run it again with --created-from {}",
            answer["next_created_from"]
        )?;
    }
    Ok(())
}

fn row(time: &str, hook: &str, result: &str, answer: &str, webhook_id: &str) -> String {
    format!("| {time:<19} | {hook:<32} | {result:<7} | {answer:<24.24} | {webhook_id:<36} |")
}

/// Gregorian seconds as `YYYY-MM-DD HH:MM:SS` (UTC).
fn utc(gregorian: i64) -> String {
    let unix = webhooks_core::time::gregorian_to_unix(gregorian);
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (year, month, day) = webhooks_core::time::civil_date(days);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gregorian_seconds_read_as_utc() {
        let unix_2024 = 1_704_067_200; // 2024-01-01 00:00:00
        let g = webhooks_core::time::unix_to_gregorian(unix_2024 + 86_400 * 59 + 3_723);
        assert_eq!(utc(g), "2024-02-29 01:02:03");
        assert_eq!(
            utc(webhooks_core::time::unix_to_gregorian(0)),
            "1970-01-01 00:00:00"
        );
    }
}
