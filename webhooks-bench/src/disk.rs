//! The disk's own rates, the ceiling any durable write path works under: how fast it takes a
//! sequential append, and how many `fdatasync` calls it completes per second with a small and
//! with a large write before each. A design that makes deliveries durable (issue 13) is judged
//! against these, as the engine's HTTP rows are judged against the ceiling.
//!
//! Every loop is bounded twice, by a count and by time. The file lives in a scratch directory
//! on the real disk (never tmpfs: its sync costs nothing) and is deleted afterwards.

use std::fs::File;
use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub struct DiskPlan {
    /// Bytes appended in the sequential phase, at most.
    pub append_bytes: u64,
    /// `fdatasync` calls per sync phase, at most.
    pub syncs: usize,
    /// Time each phase may take, at most.
    pub phase: Duration,
}

const CHUNK: usize = 64 * 1024;
const SMALL: usize = 256;

/// Runs the three phases in a fresh file under `dir`; blocking.
pub fn measure(dir: &std::path::Path, plan: DiskPlan) -> std::io::Result<Value> {
    let path = dir.join("disk-rates.log");
    let append = append_rate(&path, plan)?;
    let small = sync_rate(&path, plan, SMALL)?;
    let large = sync_rate(&path, plan, CHUNK)?;
    let _ = std::fs::remove_file(&path);
    Ok(json!({
        "kind": "disk",
        "append_mb_s": append,
        "syncs_small_s": small.0, "small_bytes": SMALL, "small_p99_us": small.1,
        "syncs_large_s": large.0, "large_bytes": CHUNK, "large_p99_us": large.1,
    }))
}

/// Sequential 64 KiB appends, then one `fdatasync` (counted): MB/s reaching the disk.
fn append_rate(path: &std::path::Path, plan: DiskPlan) -> std::io::Result<f64> {
    let mut file = File::create(path)?;
    let chunk = vec![0x5a_u8; CHUNK];
    let started = Instant::now();
    let mut written = 0u64;
    while written < plan.append_bytes && started.elapsed() < plan.phase {
        file.write_all(&chunk)?;
        written += CHUNK as u64;
    }
    file.sync_data()?;
    Ok(written as f64 / 1e6 / started.elapsed().as_secs_f64())
}

/// `bytes` appended then `fdatasync`, again and again: syncs per second, and the p99 of one
/// sync in microseconds.
fn sync_rate(path: &std::path::Path, plan: DiskPlan, bytes: usize) -> std::io::Result<(f64, f64)> {
    let mut file = File::create(path)?;
    let block = vec![0xa5_u8; bytes];
    let mut each = Vec::with_capacity(plan.syncs);
    let started = Instant::now();
    while each.len() < plan.syncs && started.elapsed() < plan.phase {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        each.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let rate = each.len() as f64 / started.elapsed().as_secs_f64();
    each.sort_by(f64::total_cmp);
    let p99 = each
        .get((each.len() * 99 / 100).min(each.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0);
    Ok((rate, p99))
}
