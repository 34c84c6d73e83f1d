//! After a restart: the deliveries the journal still held go back to the router, each due
//! when it was due before (at once if that time has passed), with its tries so far and its
//! `webhook-id`, so a receiver sees the next try of the same delivery.
//!
//! A delivery is resumed only if its hook is still in the table, enabled, with the same verb
//! and target (its request was built for that target); otherwise it is finished unsent, as a
//! retry of a hook disabled or edited meanwhile would be.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use webhooks_core::delivery::Delivery;
use webhooks_core::live::LiveHooks;
use webhooks_core::pending::{DeliveryJournal, JournalEntry, PendingDelivery};
use webhooks_core::Hook;

use crate::intake::Job;
use crate::stats::{inc, EngineStats};

/// Hands the recovered deliveries to the router (through the intake channel, so the router's
/// bounds apply); ends early if the engine stops meanwhile (the journal still has the rest).
pub(crate) async fn resume(
    recovered: Vec<PendingDelivery>,
    hooks: Arc<LiveHooks>,
    jobs: mpsc::Sender<Job>,
    journal: Arc<dyn DeliveryJournal>,
    stats: Arc<EngineStats>,
) {
    let total = recovered.len();
    let mut resumed = 0;
    for p in recovered {
        let Some(hook) = hook_of(&hooks, &p) else {
            inc(&stats.deliveries_cancelled);
            journal.note(JournalEntry::Finished { id: p.id });
            continue;
        };
        let job = job_of(p, hook);
        if jobs.send(job).await.is_err() {
            break;
        }
        inc(&stats.deliveries_resumed);
        resumed += 1;
    }
    tracing::info!(
        pending = total,
        resumed,
        "deliveries resumed from the journal"
    );
}

fn hook_of(hooks: &LiveHooks, p: &PendingDelivery) -> Option<Arc<Hook>> {
    hooks
        .snapshot()
        .hooks_of(&p.account_id)
        .find(|h| {
            h.id == p.hook_id
                && h.http_verb == p.request.method
                && p.request.url.starts_with(&h.uri)
        })
        .cloned()
}

fn job_of(p: PendingDelivery, hook: Arc<Hook>) -> Job {
    let wait = p.due_unix_ms - webhooks_core::time::now_unix_ms();
    let due = Instant::now() + Duration::from_millis(wait.max(0) as u64);
    Job {
        delivery: Delivery {
            hook,
            event_id: p.event_id,
            webhook_id: p.webhook_id,
            request: p.request,
            tries: p.tries,
            // The journal does not keep it: a replay resumed after a restart records its
            // success only as `log_successful_attempts` says.
            replay: false,
        },
        from_table: true,
        journal_id: Some(p.id),
        due: Some(due),
        since: due,
        hold: None,
    }
}
