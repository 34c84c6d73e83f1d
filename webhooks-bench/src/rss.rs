//! Memory of this process, from `/proc/self/status` (Linux).

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resident set size now, in KiB.
pub fn current_kib() -> Option<u64> {
    status_kib("VmRSS")
}

/// The highest resident set size so far (the high-water mark), in KiB.
pub fn peak_kib() -> Option<u64> {
    status_kib("VmHWM")
}
