//! The parent of a load run: starts one child process per scenario, collects their results,
//! prints the table and the verdict on each target.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::scenarios::Plan;

/// Rows in the order they are run and printed; `fault` needs `inproc-10`'s peak.
pub const SCENARIOS: &[&str] = &[
    "ceiling",
    "inproc-1",
    "inproc-10",
    "inproc-1-nolog",
    "inproc-10-nolog",
    "http-1",
    "http-10",
    "amqp-1",
    "amqp-10",
    "fault",
    "attempts",
    "disk",
    "matching",
    "startup",
    "recovery",
    "ws-1000",
];

/// The figure a scenario is judged by, for picking the median of repeated runs.
fn key(v: &Value) -> f64 {
    let k = match v["kind"].as_str() {
        Some("matching") => &v["ns_per_event"],
        Some("startup") => &v["ms"],
        Some("attempts") => &v["rate"],
        Some("disk") => &v["syncs_small_s"],
        Some("recovery") => &v["ms"],
        _ => &v["peak"]["rate"],
    };
    k.as_f64().unwrap_or(0.0)
}

/// A run during which other processes took more than this share of the machine's CPU is
/// run again (when repeating), since on two cores it measures them as much as the engine.
const BUSY_MACHINE: f64 = 0.25;

/// Runs a scenario `repeat` times and lets the run with the median figure stand for it, with
/// the range of the runs in `range`. With `repeat > 1`, a run disturbed by other processes
/// (see [`BUSY_MACHINE`]) does not count, and another is made, up to twice `repeat` runs in
/// all; if too few are undisturbed, the median is taken over every run. RabbitMQ's own CPU
/// counts as another process's, so the broker rows are never undisturbed; they take the
/// median of all their runs.
fn repeated(repeat: usize, broker: bool, mut once: impl FnMut() -> Outcome) -> Outcome {
    let repeat = repeat.max(1);
    let quiet = |v: &Value| broker || v["others_cpu"].as_f64().unwrap_or(0.0) <= BUSY_MACHINE;
    let mut runs = Vec::with_capacity(repeat);
    while runs.len() < 2 * repeat && runs.iter().filter(|v| quiet(v)).count() < repeat {
        runs.push(once()?);
        if repeat == 1 {
            break;
        }
    }
    let disturbed = runs.iter().filter(|v| !quiet(v)).count();
    if disturbed < runs.len() {
        runs.retain(|v| quiet(v));
    }
    runs.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let (lo, hi) = (key(&runs[0]), key(&runs[runs.len() - 1]));
    let n = runs.len();
    let mut median = runs.swap_remove(n / 2);
    median["runs"] = n.into();
    median["disturbed_runs"] = disturbed.into();
    median["range"] = serde_json::json!([lo, hi]);
    Ok(median)
}

type Outcome = Result<Value, String>;

/// Runs `webhooks-loadtest --scenario NAME ARGS...` and returns its `RESULT` line. The child is
/// killed if it outlives `limit`.
fn child(name: &str, args: &[String], plan: &Plan, limit: Duration) -> Outcome {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.arg("--scenario").arg(name).args(args);
    if plan.quick {
        cmd.arg("--quick");
    }
    if let Some(url) = &plan.couchdb {
        cmd.arg("--couchdb-url").arg(url);
    }
    if plan.at_most_once {
        cmd.arg("--at-most-once");
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{name}: killed after {}s", limit.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("{name}: {e}")),
        }
    };
    let out = reader.join().unwrap_or_default();
    // `recovery-fill` ends itself with SIGKILL, as the daemon it stands for is killed.
    let killed_itself = name == "recovery-fill"
        && std::os::unix::process::ExitStatusExt::signal(&status) == Some(9);
    if !status.success() && !killed_itself {
        return Err(format!("{name}: exited with {status}"));
    }
    out.lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .ok_or_else(|| format!("{name}: no RESULT line"))
        .and_then(|json| serde_json::from_str(json).map_err(|e| format!("{name}: {e}")))
}

/// Runs the scenarios in `only` (all when empty), each `repeat` times; prints the table.
/// Returns how many failed.
pub fn run(plan: &Plan, only: &[String], repeat: usize) -> usize {
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let limit = if plan.quick {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(300)
    };
    let mut results: Vec<(&str, Outcome)> = Vec::new();
    let started = Instant::now();
    for &name in SCENARIOS.iter().filter(|n| wanted(n)) {
        eprintln!("loadtest: {name} ...");
        let t = Instant::now();
        let outcome = repeated(repeat, name.starts_with("amqp"), || match name {
            "fault" => {
                let clean = results
                    .iter()
                    .find(|(n, _)| *n == "inproc-10")
                    .and_then(|(_, r)| r.as_ref().ok())
                    .and_then(|v| v["peak"]["rate"].as_f64());
                let args = match clean {
                    Some(rate) => vec!["--pace".into(), format!("{}", rate / 2.0)],
                    None => vec![],
                };
                child(name, &args, plan, limit)
            }
            "startup" => startup(plan, limit),
            "recovery" => recovery(plan, limit),
            _ => child(name, &[], plan, limit),
        });
        if let Err(e) = &outcome {
            eprintln!("loadtest: {e}");
        }
        eprintln!("loadtest: {name} done in {:.1}s", t.elapsed().as_secs_f64());
        results.push((name, outcome));
    }
    print!("{}", crate::report::render(plan, &results));
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    println!(
        "loadtest: {} scenarios run, {failed} failed, {:.0}s",
        results.len(),
        started.elapsed().as_secs_f64()
    );
    failed
}

/// Builds a store in a scratch directory (on tmpfs when there is one: a hundred thousand
/// single-document transactions on a real disk take minutes and measure nothing of interest),
/// then measures the engine's start on it in a fresh process.
fn startup(plan: &Plan, limit: Duration) -> Outcome {
    let dir = crate::scenarios::scratch_dir(true).map_err(|e| e.to_string())?;
    let args = vec!["--dir".to_string(), dir.path().display().to_string()];
    // CouchDB makes a database per account (KAZOO's layout): ten thousand of them take PouchDB
    // Server several minutes. The build is not measured; it is still bounded.
    let build_limit = match plan.couchdb {
        Some(_) => limit * 4,
        None => limit,
    };
    child("build-store", &args, plan, build_limit)?;
    child("startup", &args, plan, limit)
}

/// Journals deliveries in a scratch directory on the real disk and kills that process with
/// SIGKILL, then times a fresh process sending them all (`recovery.rs`).
fn recovery(plan: &Plan, limit: Duration) -> Outcome {
    let dir = crate::scenarios::scratch_dir(false).map_err(|e| e.to_string())?;
    let args = vec!["--dir".to_string(), dir.path().display().to_string()];
    child("recovery-fill", &args, plan, limit)?;
    child("recovery", &args, plan, limit)
}
