//! What happens after each try (spec §7): a success ends the delivery; a failure is counted
//! towards auto-disable, recorded as an attempt document and, when it deserves a retry and has
//! tries left, handed back to the router.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use webhooks_core::delivery::{attempt_doc, Outcome};
use webhooks_core::live::LiveHooks;

use crate::attempts::AttemptQueue;
use crate::intake::Job;
use crate::peers::Peers;
use crate::settings::Settings;
use crate::stats::{inc, EngineStats};

/// Records tries. Cheap to clone: each send holds one.
#[derive(Clone)]
pub(crate) struct TryRecorder {
    pub(crate) hooks: Arc<LiveHooks>,
    pub(crate) attempts: AttemptQueue,
    pub(crate) settings: Settings,
    pub(crate) stats: Arc<EngineStats>,
    /// The other nodes, told about every failed try so they count it too.
    pub(crate) peers: Arc<Peers>,
    /// Once cancelled (shutdown), a failed try is final: no retry is scheduled.
    pub(crate) stop: CancellationToken,
}

impl TryRecorder {
    /// Records one try's outcome; returns the job when it should be tried again.
    pub(crate) async fn after_try(&self, mut job: Job, outcome: Outcome) -> Option<Job> {
        let d = &mut job.delivery;
        let tries_left_before = d.tries_left();
        d.tries += 1;
        let now = webhooks_core::time::now_unix();
        if outcome.is_success() {
            inc(&self.stats.deliveries_succeeded);
            if self.settings.log_successful_attempts() {
                let doc = attempt_doc(d, &outcome, tries_left_before, now);
                self.attempts.push(doc).await;
            }
            return None;
        }
        let failed_at = webhooks_core::time::now_unix_ms();
        self.hooks
            .record_failure(&d.hook.account_id, &d.hook.id, failed_at);
        self.peers.failed(&d.hook.account_id, &d.hook.id, failed_at);
        inc(&self.stats.tries_failed);
        tracing::debug!(hook = %d.hook.id, uri = %d.hook.uri, ?outcome, "delivery try failed");
        let doc = attempt_doc(d, &outcome, tries_left_before, now);
        self.attempts.push(doc).await;
        if outcome.is_retryable() && d.tries_left() > 0 && !self.stop.is_cancelled() {
            inc(&self.stats.retries_scheduled);
            Some(job)
        } else {
            inc(&self.stats.deliveries_failed);
            None
        }
    }

    /// Is the job's hook still in the table, unchanged? A retry of a hook that was disabled,
    /// deleted or edited meanwhile is dropped.
    pub(crate) fn hook_is_live(&self, job: &Job) -> bool {
        let hook = &job.delivery.hook;
        self.hooks
            .snapshot()
            .hooks_of(&hook.account_id)
            .any(|h| Arc::ptr_eq(h, hook) || **h == **hook)
    }
}
