//! What a run is made of: its sizes and durations ([`Plan`], full or quick), shared by every
//! scenario file, and the scratch directories they work in.

use std::time::Duration;

use tempfile::TempDir;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Sizes and durations of a run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub quick: bool,
    /// Load before each measurement, not counted.
    pub warmup: Duration,
    /// Publishing as fast as the engine takes events (deliveries/s).
    pub saturate: Duration,
    /// Publishing at half the measured peak (latency).
    pub paced: Duration,
    /// The fault mix runs longer: its dead destination's requests time out after 10 s, and the
    /// run should see what that does.
    pub fault: Duration,
    /// Waiting for queued deliveries after publishing stops.
    pub drain: Duration,
    /// Events published per phase at most.
    pub max_events: u64,
    /// Accounts of the engine scenarios (each with `fanout` hooks).
    pub accounts: usize,
    pub matching_hooks: usize,
    pub matching_accounts: usize,
    pub lookups: usize,
    pub startup_hooks: usize,
    /// Deliveries a killed engine leaves pending for the recovery row.
    pub recovery_pending: usize,
    /// The disk's own rates (`disk`): how much to append and sync, and for how long at most.
    pub disk: crate::disk::DiskPlan,
    /// Websocket clients of the live-event row (`ws-1000`), spread over this many accounts.
    pub ws_clients: usize,
    pub ws_accounts: usize,
    /// Run the engine scenarios and `startup` on KAZOO's CouchDB at this url (a fresh set of
    /// prefixed databases per run) instead of the embedded store.
    pub couchdb: Option<String>,
    /// Run the engine rows without the delivery journal (`--delivery at-most-once`, KAZOO's
    /// way) instead of at least once, the daemon's default.
    pub at_most_once: bool,
}

impl Plan {
    pub fn full() -> Plan {
        Plan {
            quick: false,
            warmup: Duration::from_secs(1),
            saturate: Duration::from_secs(8),
            paced: Duration::from_secs(8),
            fault: Duration::from_secs(25),
            drain: Duration::from_secs(30),
            max_events: 5_000_000,
            accounts: 100,
            matching_hooks: 1_000_000,
            matching_accounts: 100_000,
            lookups: 2_000_000,
            startup_hooks: 100_000,
            recovery_pending: 100_000,
            disk: crate::disk::DiskPlan {
                append_bytes: 512 * 1024 * 1024,
                syncs: 5_000,
                phase: Duration::from_secs(10),
            },
            ws_clients: 1_000,
            ws_accounts: 10,
            couchdb: None,
            at_most_once: false,
        }
    }

    /// Small counts: every code path once, in seconds. A smoke test; its figures mean little.
    pub fn quick() -> Plan {
        Plan {
            quick: true,
            warmup: Duration::from_millis(200),
            saturate: Duration::from_secs(1),
            paced: Duration::from_secs(1),
            fault: Duration::from_secs(3),
            drain: Duration::from_secs(15),
            max_events: 200_000,
            accounts: 10,
            matching_hooks: 100_000,
            matching_accounts: 10_000,
            lookups: 200_000,
            startup_hooks: 10_000,
            recovery_pending: 5_000,
            disk: crate::disk::DiskPlan {
                append_bytes: 8 * 1024 * 1024,
                syncs: 50,
                phase: Duration::from_secs(2),
            },
            ws_clients: 50,
            ws_accounts: 10,
            couchdb: None,
            at_most_once: false,
        }
    }
}

/// A scratch directory on tmpfs (`/dev/shm`) when `tmpfs` and there is one, else under the
/// system's temporary directory (the real disk).
pub fn scratch_dir(tmpfs: bool) -> std::io::Result<TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("webhooks-loadtest-");
    let shm = std::path::Path::new("/dev/shm");
    if tmpfs && shm.is_dir() {
        builder.tempdir_in(shm)
    } else {
        builder.tempdir()
    }
}
