//! The table a run prints (Markdown, so it can be pasted into BENCHMARKS.md as is), and the
//! verdict on each of issue 7's targets.

use std::fmt::Write;

use serde_json::Value;

use crate::scenarios::Plan;

fn thousands(v: f64) -> String {
    let digits = (v.round() as u64).to_string();
    let head = match digits.len() % 3 {
        0 => 3.min(digits.len()),
        r => r,
    };
    let mut out = digits[..head].to_owned();
    for group in digits.as_bytes()[head..].chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).unwrap_or_default());
    }
    out
}

fn ms(ns: &Value) -> String {
    ns.as_f64()
        .map(|v| format!("{:.2} ms", v / 1e6))
        .unwrap_or_else(|| "–".into())
}

fn mib(kib: &Value) -> String {
    kib.as_f64()
        .map(|v| format!("{:.0} MiB", v / 1024.0))
        .unwrap_or_else(|| "–".into())
}

fn found<'a>(results: &'a [(&str, Result<Value, String>)], name: &str) -> Option<&'a Value> {
    results
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, r)| r.as_ref().ok())
}

fn label(name: &str, plan: &Plan) -> String {
    match name {
        "ceiling" => "ceiling: the engine's HTTP client → receiver, 64 in flight, no engine".into(),
        "inproc-1" => "engine, in-process `Engine::publish`, 1 hook per event".into(),
        "inproc-10" => "engine, in-process `Engine::publish`, 10 hooks per event".into(),
        "inproc-1-nolog" => {
            "engine, in-process, 1 hook per event, KAZOO's default: failures logged only".into()
        }
        "inproc-10-nolog" => {
            "engine, in-process, 10 hooks per event, KAZOO's default: failures logged only".into()
        }
        "http-1" => "engine, `POST /v2/events`, 1 hook per event".into(),
        "http-10" => "engine, `POST /v2/events`, 10 hooks per event".into(),
        "amqp-1" => "engine, RabbitMQ `callevt` → `webhooks-amqp`, 1 hook per event".into(),
        "amqp-10" => "engine, RabbitMQ `callevt` → `webhooks-amqp`, 10 hooks per event".into(),
        "fault" => "fault mix: in-process, 10 hooks, 1 in 10 never answers (healthy only)".into(),
        "matching" => format!(
            "matching: `find` in {} hooks over {} accounts",
            thousands(plan.matching_hooks as f64),
            thousands(plan.matching_accounts as f64)
        ),
        "attempts" => {
            "attempt store alone: `save_attempts`, the engine's batches (4096), on disk".into()
        }
        "disk" => {
            "disk: sequential append, and `fdatasync` after 256 B / 64 KiB (p99 of one)".into()
        }
        "startup" => format!(
            "start-up: `Engine::start` on {} stored hooks",
            thousands(plan.startup_hooks as f64)
        ),
        "recovery" => format!(
            "recovery: a fresh engine sends the {} deliveries a SIGKILLed one left in its journal",
            thousands(plan.recovery_pending as f64)
        ),
        "ws-1000" => format!(
            "live events: `EventTap::event` → {} websocket clients on `call.CHANNEL_CREATE.*`, {} accounts",
            thousands(plan.ws_clients as f64),
            plan.ws_accounts
        ),
        other => other.into(),
    }
}

/// Renders the table, its footnotes and the targets.
pub fn render(plan: &Plan, results: &[(&str, Result<Value, String>)]) -> String {
    let mut out = String::new();
    let ceiling = found(results, "ceiling").and_then(|v| v["peak"]["rate"].as_f64());
    let clean = found(results, "inproc-10").and_then(|v| v["peak"]["rate"].as_f64());
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Engine rows {}.",
        match plan.at_most_once {
            true => "at most once (no delivery journal, KAZOO's way)",
            false => "at least once (the daemon's default: deliveries journaled before each acknowledgement)",
        }
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| scenario | throughput | ratio | CPU at peak | p50 | p99 | p99.9 | latency measured at | peak RSS | others' CPU |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let mut notes = Vec::new();
    for (name, result) in results {
        let v = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = writeln!(out, "| {} | failed: {e} | | | | | | |", label(name, plan));
                continue;
            }
        };
        if v["kind"] == "skipped" {
            let why = v["reason"].as_str().unwrap_or("skipped");
            let _ = writeln!(
                out,
                "| {} | not run: {why} | | | | | | | | |",
                label(name, plan)
            );
            continue;
        }
        let rss = format!(
            "{} | {}",
            mib(&v["peak_rss_kib"]),
            v["others_cpu"]
                .as_f64()
                .map_or("–".into(), |o| format!("{:.0}%", o * 100.0))
        );
        let cpu = v["peak"]["cpu"]
            .as_f64()
            .map_or("–".into(), |c| format!("{:.0}%", c * 100.0));
        let row = match *name {
            "ceiling" => {
                let r = v["peak"]["rate"].as_f64().unwrap_or(0.0);
                format!(
                    "{} req/s | 1.00 | {cpu} | – | – | – | – | {rss}",
                    thousands(r)
                )
            }
            "fault" => {
                let r = v["peak"]["rate"].as_f64().unwrap_or(0.0);
                let ratio =
                    fault_ratio(v, clean).map_or("–".into(), |f| format!("{f:.2} × clean"));
                let p = &v["paced"];
                let at = v["paced_target"]
                    .as_f64()
                    .map_or("–".into(), |t| format!("{}/s", thousands(t)));
                format!(
                    "{}/s | {ratio} | {cpu} | {} | {} | {} | {at} | {rss}",
                    thousands(r),
                    ms(&p["p50_ns"]),
                    ms(&p["p99_ns"]),
                    ms(&p["p999_ns"])
                )
            }
            "matching" => format!(
                "{} ns/event | {} ns in cache | – | – | – | – | – | {rss}",
                thousands(v["ns_per_event"].as_f64().unwrap_or(0.0)),
                thousands(v["ns_per_event_cached"].as_f64().unwrap_or(0.0))
            ),
            "attempts" => format!(
                "{} docs/s | – | – | – | – | – | – | {rss}",
                thousands(v["rate"].as_f64().unwrap_or(0.0))
            ),
            "disk" => format!(
                "{} MB/s appended | {} syncs/s (256 B), {} syncs/s (64 KiB) | – | – | {} µs / {} µs | – | – | {rss}",
                thousands(v["append_mb_s"].as_f64().unwrap_or(0.0)),
                thousands(v["syncs_small_s"].as_f64().unwrap_or(0.0)),
                thousands(v["syncs_large_s"].as_f64().unwrap_or(0.0)),
                thousands(v["small_p99_us"].as_f64().unwrap_or(0.0)),
                thousands(v["large_p99_us"].as_f64().unwrap_or(0.0))
            ),
            "startup" => format!(
                "{:.2} s | {} B/hook settled ({} B at the load's end) | – | – | – | – | – | {rss}",
                v["ms"].as_f64().unwrap_or(0.0) / 1e3,
                thousands(v["bytes_per_hook_trimmed"].as_f64().unwrap_or(0.0)),
                thousands(v["bytes_per_hook"].as_f64().unwrap_or(0.0))
            ),
            "recovery" => format!(
                "{:.2} s until all arrived | {} deliveries/s (journal read in {:.0} ms) | – | – | – | – | – | {rss}",
                v["ms"].as_f64().unwrap_or(0.0) / 1e3,
                thousands(v["rate"].as_f64().unwrap_or(0.0)),
                v["journal_open_ms"].as_f64().unwrap_or(0.0)
            ),
            "ws-1000" => {
                let (peak, paced) = (&v["peak"], &v["paced"]);
                let per_event = peak["frames"].as_f64().unwrap_or(0.0)
                    / peak["published"].as_f64().unwrap_or(0.0).max(1.0);
                format!(
                    "{} events/s, {} frames/s | {per_event:.0} frames/event, {} dropped | {cpu} | {} | {} | {} | {} events/s | {rss}",
                    thousands(peak["events_rate"].as_f64().unwrap_or(0.0)),
                    thousands(peak["rate"].as_f64().unwrap_or(0.0)),
                    thousands(peak["dropped"].as_f64().unwrap_or(0.0)),
                    ms(&paced["p50_ns"]),
                    ms(&paced["p99_ns"]),
                    ms(&paced["p999_ns"]),
                    thousands(paced["events_rate"].as_f64().unwrap_or(0.0))
                )
            }
            _ => {
                let r = v["peak"]["rate"].as_f64().unwrap_or(0.0);
                let ratio = ceiling.map_or("–".into(), |c| format!("{:.2} × ceiling", r / c));
                let p = &v["paced"];
                format!(
                    "{}/s | {ratio} | {cpu} | {} | {} | {} | {}/s | {rss}",
                    thousands(r),
                    ms(&p["p50_ns"]),
                    ms(&p["p99_ns"]),
                    ms(&p["p999_ns"]),
                    thousands(p["rate"].as_f64().unwrap_or(0.0))
                )
            }
        };
        let _ = writeln!(out, "| {} | {row} |", label(name, plan));
        if let (Some(runs), Some(lo), Some(hi)) = (
            v["runs"]
                .as_u64()
                .filter(|n| *n > 1 || v["disturbed_runs"].as_u64() > Some(0)),
            v["range"][0].as_f64(),
            v["range"][1].as_f64(),
        ) {
            let disturbed = match v["disturbed_runs"].as_u64() {
                Some(0) | None => String::new(),
                Some(d) => format!(" ({d} more discarded: other processes were busy)"),
            };
            notes.push(format!(
                "{name}: median of {runs} runs{disturbed}; its figure ranged {} to {}",
                thousands(lo),
                thousands(hi)
            ));
        }
        for phase in ["peak", "paced"] {
            let p = &v[phase];
            let (arrived, expected) = (p["arrived"].as_u64(), p["expected"].as_u64());
            if let (Some(a), Some(e)) = (arrived, expected) {
                if a < e {
                    notes.push(format!(
                        "{name} ({phase}): {} of {} deliveries arrived within the drain time",
                        a, e
                    ));
                }
            }
            if let Some(err) = p["first_error"].as_str() {
                notes.push(format!(
                    "{name} ({phase}): {} publishes failed, first: {err}",
                    p["failed"]
                ));
            }
        }
        if *name == "ws-1000" {
            notes.extend(live_notes(v));
        }
    }
    let _ = writeln!(out);
    for n in &notes {
        let _ = writeln!(out, "note: {n}");
    }
    out.push_str(&targets(plan, results, ceiling, clean));
    out
}

fn targets(
    plan: &Plan,
    results: &[(&str, Result<Value, String>)],
    ceiling: Option<f64>,
    clean: Option<f64>,
) -> String {
    let mut out = String::new();
    let inproc: Vec<&Value> = ["inproc-1", "inproc-10"]
        .iter()
        .filter_map(|n| found(results, n))
        .collect();
    let mut lines: Vec<(String, Option<(String, bool)>)> = Vec::new();
    // The worse of the named rows' rates, as a share of the ceiling.
    let worst_ratio = |names: [&str; 2]| {
        names
            .iter()
            .filter_map(|n| found(results, n))
            .filter_map(|v| Some(v["peak"]["rate"].as_f64()? / ceiling?))
            .reduce(f64::min)
    };
    lines.push((
        "in-process deliveries/s ≥ 0.50 × ceiling (worse of 1 and 10 hooks, successes logged)"
            .into(),
        worst_ratio(["inproc-1", "inproc-10"]).map(|r| (format!("{r:.2}"), r >= 0.5)),
    ));
    let worst_p99 = inproc
        .iter()
        .filter_map(|v| v["paced"]["p99_ns"].as_f64())
        .reduce(f64::max);
    lines.push((
        "  the same with KAZOO's default, successes not logged".into(),
        worst_ratio(["inproc-1-nolog", "inproc-10-nolog"]).map(|r| (format!("{r:.2}"), r >= 0.5)),
    ));
    lines.push((
        "in-process p99 publish → arrival < 5 ms at half the peak rate".into(),
        worst_p99.map(|p| (format!("{:.2} ms", p / 1e6), p < 5e6)),
    ));
    let fault = found(results, "fault").and_then(|v| fault_ratio(v, clean));
    lines.push((
        "fault mix: healthy hooks' deliveries/s ≥ 0.90 × theirs in the clean run".into(),
        fault.map(|r| (format!("{r:.2}"), r >= 0.9)),
    ));
    let matching = found(results, "matching").and_then(|v| v["ns_per_event"].as_f64());
    lines.push((
        format!(
            "matching < 1 µs per event at {} hooks",
            thousands(plan.matching_hooks as f64)
        ),
        matching.map(|ns| (format!("{:.3} µs", ns / 1e3), ns < 1e3)),
    ));
    // Settled: once the allocator has handed back the pages of the documents the load read
    // and dropped (jemalloc does so by itself within seconds), what a running daemon keeps.
    let per_hook = found(results, "startup").and_then(|v| v["bytes_per_hook_trimmed"].as_f64());
    lines.push((
        "memory per loaded hook < 1 KiB (settled)".into(),
        per_hook.map(|b| (format!("{b:.0} B"), b < 1024.0)),
    ));
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "targets{}:",
        if plan.quick {
            " (quick mode: counts too small to judge; a smoke test)"
        } else {
            ""
        }
    );
    for (what, verdict) in lines {
        let v = match verdict {
            Some((value, true)) => format!("{value}  met"),
            Some((value, false)) => format!("{value}  MISSED"),
            None => "not measured".into(),
        };
        let _ = writeln!(out, "  {what:<70} {v}");
    }
    out
}

/// The live-event row's frames dropped for clients that fell behind (a client that keeps up
/// loses none), and its latency at full speed, where frames wait behind the publisher's window.
fn live_notes(v: &Value) -> Vec<String> {
    let mut notes = Vec::new();
    for phase in ["peak", "paced"] {
        let dropped = v[phase]["dropped"].as_u64().unwrap_or(0);
        if dropped > 0 {
            notes.push(format!(
                "ws-1000 ({phase}): the hub dropped {} of {} frames for clients that fell behind",
                thousands(dropped as f64),
                thousands(v[phase]["frames"].as_f64().unwrap_or(0.0))
            ));
        }
    }
    let peak = &v["peak"];
    notes.push(format!(
        "ws-1000 (peak): publish → frame p50 {}, p99 {}, p99.9 {} at full speed ({} frames out at most)",
        ms(&peak["p50_ns"]),
        ms(&peak["p99_ns"]),
        ms(&peak["p999_ns"]),
        thousands(v["window"].as_f64().unwrap_or(0.0)),
    ));
    notes.push(format!(
        "ws-1000: {} clients connected and subscribed in {:.2} s, {} KiB of RSS each once idle (client and endpoint ends together)",
        thousands(v["clients"].as_f64().unwrap_or(0.0)),
        v["connect_seconds"].as_f64().unwrap_or(0.0),
        v["connected_kib_per_client"]
            .as_f64()
            .map_or("–".into(), |k| format!("{k:.0}"))
    ));
    notes
}

/// The fault row's healthy deliveries/s against what the same hooks (9 in 10) received in the
/// clean 10-hook run: how much the dead tenth slows the rest down.
fn fault_ratio(fault: &Value, clean: Option<f64>) -> Option<f64> {
    let rate = fault["peak"]["rate"].as_f64()?;
    let share = fault["healthy_share"].as_f64()?;
    Some(rate / (clean? * share))
}
