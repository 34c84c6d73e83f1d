//! The parent of a load run: starts one child process per scenario, collects their results,
//! prints the table and the verdict on each target.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::scenarios::Plan;

/// Rows in the order they are run and printed; `fault` needs `inproc-10`'s peak.
pub const SCENARIOS: &[&str] = &[
    "ceiling",
    "inproc-1",
    "inproc-10",
    "http-1",
    "http-10",
    "fault",
    "matching",
    "startup",
];

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
    if !status.success() {
        return Err(format!("{name}: exited with {status}"));
    }
    out.lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .ok_or_else(|| format!("{name}: no RESULT line"))
        .and_then(|json| serde_json::from_str(json).map_err(|e| format!("{name}: {e}")))
}

/// Runs the scenarios in `only` (all when empty); prints the table. Returns how many failed.
pub fn run(plan: &Plan, only: &[String]) -> usize {
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
        let outcome = match name {
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
            _ => child(name, &[], plan, limit),
        };
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
    let base = Path::new("/dev/shm");
    let dir = if base.is_dir() {
        tempfile::Builder::new()
            .prefix("webhooks-loadtest-")
            .tempdir_in(base)
    } else {
        tempfile::Builder::new()
            .prefix("webhooks-loadtest-")
            .tempdir()
    }
    .map_err(|e| e.to_string())?;
    let args = vec!["--dir".to_string(), dir.path().display().to_string()];
    child("build-store", &args, plan, limit)?;
    child("startup", &args, plan, limit)
}
