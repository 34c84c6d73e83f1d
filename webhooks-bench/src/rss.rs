//! What this process uses, and what the rest of the machine took meanwhile (Linux `/proc`).

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

/// Asks the allocator to return the free memory it holds to the system (jemalloc's arena purge
/// when built with it, glibc's `malloc_trim` otherwise); `None` where there is no such call.
pub fn trim() -> Option<()> {
    #[cfg(feature = "jemalloc")]
    {
        // "arena.<MALLCTL_ARENAS_ALL>.purge": every arena gives its unused dirty pages back.
        // SAFETY: a void mallctl takes no input or output pointers; the name is NUL-terminated.
        let rc = unsafe {
            tikv_jemalloc_sys::mallctl(
                c"arena.4096.purge".as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        (rc == 0).then_some(())
    }
    #[cfg(all(not(feature = "jemalloc"), target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: `malloc_trim` only releases free heap pages; it has no preconditions.
        unsafe { malloc_trim(0) };
        Some(())
    }
    #[cfg(all(
        not(feature = "jemalloc"),
        not(all(target_os = "linux", target_env = "gnu"))
    ))]
    None
}

/// CPU time counters, in clock ticks: the machine's and this process's.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    /// All CPUs, every state.
    total: u64,
    /// All CPUs, busy in processes (user, nice, system) or lost to the hypervisor (steal).
    /// Interrupt time is left out: loopback traffic is mostly processed in softirq, which the
    /// kernel charges to no process, so it would count our own packets as someone else's.
    busy: u64,
    /// This process (user + system).
    own: u64,
}

impl CpuSample {
    pub fn now() -> Option<CpuSample> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal
        let field = |i: usize| cpu.get(i).copied().unwrap_or(0);
        let busy = field(0) + field(1) + field(2) + field(7);
        let total = busy + field(3) + field(4) + field(5) + field(6);
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which may hold spaces) start at state, field 3.
        let after = own_stat.rsplit_once(')')?.1;
        let f: Vec<u64> = after
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|v| v.parse().ok())
            .collect();
        Some(CpuSample {
            total,
            busy,
            own: f.iter().sum(),
        })
    }

    /// The share of the machine's CPU (0..=1, all cores) this process used between `earlier`
    /// and `self` (interrupt time excluded, see `busy`).
    pub fn own_since(&self, earlier: &CpuSample) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let own = self.own.checked_sub(earlier.own)?;
        (total > 0).then(|| own as f64 / total as f64)
    }

    /// The share of the machine's CPU (0..=1) that other processes and the hypervisor took
    /// between `earlier` and `self`.
    pub fn others_since(&self, earlier: &CpuSample) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let busy = self.busy.checked_sub(earlier.busy)?;
        let own = self.own.checked_sub(earlier.own)?;
        (total > 0).then(|| busy.saturating_sub(own) as f64 / total as f64)
    }
}
