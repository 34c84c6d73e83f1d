//! The engine: [`Engine::publish`] takes an event, the modules turn it into deliveries, the
//! router sends them, and what happens is recorded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use rand::RngCore;
use tokio::sync::mpsc;
use webhooks_core::config::WebhooksConfig;
use webhooks_core::delivery::{attempt_doc, Delivery, Outcome};
use webhooks_core::event::{Event, EventError};
use webhooks_core::failures::FailureTracker;
use webhooks_core::table::{HookTable, TableLoader};
use webhooks_core::transport::{ConfigListener, DocAction, DocChange, Notifier};
use webhooks_core::{
    Account, AccountId, Doc, EventSink, ModuleRegistry, PublishReport, Store, StoreError,
};

use crate::config::EngineConfig;
use crate::lanes::Router;
use crate::sender::{HttpSender, SenderConfig, SenderError};
use crate::stats::{inc, EngineStats, StatsSnapshot};

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("loading hooks: {0}")]
    Store(#[from] StoreError),
    #[error("http client: {0}")]
    Sender(#[from] SenderError),
}

/// A delivery on its way, and whether its hook came from the hook table (a callflow's ad-hoc
/// hook does not, and is never cancelled by a table change).
pub(crate) struct Job {
    pub(crate) delivery: Delivery,
    pub(crate) from_table: bool,
}

/// What every task of the engine shares.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: ModuleRegistry,
    pub(crate) hooks: Arc<HookTable>,
    pub(crate) failures: Arc<FailureTracker>,
    pub(crate) sender: HttpSender,
    /// KAZOO's settings from the store, refreshed by the disabler's tick.
    pub(crate) settings: ArcSwap<WebhooksConfig>,
    pub(crate) config: EngineConfig,
    pub(crate) stats: Arc<EngineStats>,
    attempts: mpsc::Sender<Doc>,
    /// Attempt documents the writer has taken from the queue and not yet stored.
    attempts_writing: Arc<AtomicUsize>,
    /// Where notifications go when a transport is attached (see [`Engine::set_notifier`]).
    pub(crate) notifier: ArcSwapOption<Box<dyn Notifier>>,
    queued: AtomicUsize,
    in_flight: AtomicUsize,
    waiting_retries: AtomicUsize,
}

impl Shared {
    /// Records one try's outcome; returns the job when it should be tried again.
    pub(crate) async fn after_try(&self, job: &mut Job, outcome: Outcome) -> Option<Job> {
        let d = &mut job.delivery;
        let tries_left_before = d.tries_left();
        d.tries += 1;
        let now = webhooks_core::time::now_unix();
        if outcome.is_success() {
            inc(&self.stats.deliveries_succeeded);
            if self.settings.load().log_successful_attempts {
                let _ = self
                    .attempts
                    .send(attempt_doc(d, &outcome, tries_left_before, now))
                    .await;
            }
            return None;
        }
        self.failures.record(
            &d.hook.account_id,
            &d.hook.id,
            webhooks_core::time::now_unix_ms(),
        );
        inc(&self.stats.tries_failed);
        tracing::debug!(hook = %d.hook.id, uri = %d.hook.uri, ?outcome, "delivery try failed");
        let _ = self
            .attempts
            .send(attempt_doc(d, &outcome, tries_left_before, now))
            .await;
        if outcome.is_retryable() && d.tries_left() > 0 {
            inc(&self.stats.retries_scheduled);
            Some(Job {
                delivery: d.clone(),
                from_table: job.from_table,
            })
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

    pub(crate) fn publish_load(&self, queued: usize, in_flight: usize, retries: usize) {
        self.queued.store(queued, Ordering::Relaxed);
        self.in_flight.store(in_flight, Ordering::Relaxed);
        self.waiting_retries.store(retries, Ordering::Relaxed);
    }
}

/// The delivery engine. Cheap to clone; every clone feeds the same tasks.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    intake: mpsc::Sender<Job>,
}

/// What is in flight right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    pub queued: usize,
    pub in_flight: usize,
    pub waiting_retries: usize,
    pub attempts_pending: usize,
}

fn event_id() -> String {
    let mut b = [0u8; 5];
    rand::rng().fill_bytes(&mut b);
    webhooks_core::ids::hex(&b)
}

/// Loads the table from the store's change feed, a page at a time, migrating legacy hooks on
/// the way; returns the feed position reached (following starts exactly there), the documents
/// skipped and the hooks migrated. Only one page of documents is in memory at once.
async fn load_table(
    store: &dyn Store,
    accounts: &[Account],
    hooks: &HookTable,
    registry: &ModuleRegistry,
) -> Result<(u64, usize, usize), EngineError> {
    use crate::migrate::{migrate_legacy_hook, Migration};
    let mut loader = TableLoader::new(accounts);
    let (mut since, mut migrated) = (0, 0);
    loop {
        let page = store.hook_changes(since, crate::follow::PAGE).await?;
        let n = page.docs.len();
        // A migration (ours or another node's) put newer documents past this page: read on.
        let mut moved = false;
        for doc in &page.docs {
            match migrate_legacy_hook(store, doc).await? {
                Migration::Current => loader.add(doc, registry),
                Migration::Migrated => (migrated, moved) = (migrated + 1, true),
                Migration::Superseded => moved = true,
            }
        }
        since = page.last;
        if n < crate::follow::PAGE && !moved {
            return Ok((since, loader.finish(hooks), migrated));
        }
    }
}

impl Engine {
    /// Loads the hook table from the store and starts the engine's tasks (router, attempt
    /// writer, disabler, attempt pruning). Must run inside a tokio runtime.
    pub async fn start(
        store: Arc<dyn Store>,
        registry: ModuleRegistry,
        hooks: Arc<HookTable>,
        failures: Arc<FailureTracker>,
        config: EngineConfig,
    ) -> Result<Engine, EngineError> {
        let settings = WebhooksConfig::from_doc(store.system_config("webhooks").await?.as_ref());
        crate::attempts::prune_once(store.as_ref(), settings.attempts_retention_days).await;
        let accounts: Vec<Account> = store
            .accounts()
            .await?
            .iter()
            .filter_map(Account::from_doc)
            .collect();
        let (feed_position, skipped, migrated) =
            load_table(store.as_ref(), &accounts, &hooks, &registry).await?;
        tracing::info!(
            hooks = hooks.snapshot().hook_count(),
            accounts = accounts.len(),
            skipped,
            migrated,
            "hook table loaded"
        );
        let sender = HttpSender::new(&SenderConfig {
            connect_timeout: Duration::from_millis(settings.connect_timeout_ms),
            request_timeout: Duration::from_millis(settings.request_timeout_ms),
            max_response_body: config.max_response_body,
            pool_max_idle_per_host: config.per_destination_in_flight,
            ..SenderConfig::default()
        })?;
        let (attempts_tx, attempts_rx) = mpsc::channel(config.attempt_queue);
        let attempts_writing = Arc::new(AtomicUsize::new(0));
        let (intake_tx, intake_rx) = mpsc::channel(config.intake_capacity);
        let stats = Arc::new(EngineStats::default());
        let shared = Arc::new(Shared {
            store: store.clone(),
            registry,
            hooks,
            failures,
            sender,
            settings: ArcSwap::from_pointee(settings),
            config: config.clone(),
            stats: stats.clone(),
            attempts: attempts_tx,
            attempts_writing: attempts_writing.clone(),
            notifier: ArcSwapOption::empty(),
            queued: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            waiting_retries: AtomicUsize::new(0),
        });
        tokio::spawn(crate::attempts::write_attempts(
            store.clone(),
            attempts_rx,
            config.attempt_batch,
            config.attempt_linger,
            stats,
            attempts_writing,
        ));
        tokio::spawn(Router::new(shared.clone(), intake_rx).run());
        tokio::spawn(crate::follow::follow(
            store.clone(),
            shared.registry.clone(),
            shared.hooks.clone(),
            shared.failures.clone(),
            feed_position,
            config.follow_every,
        ));
        let engine = Engine {
            shared: shared.clone(),
            intake: intake_tx,
        };
        tokio::spawn(crate::disabler::run(engine.clone()));
        let s = shared.clone();
        tokio::spawn(crate::attempts::prune_attempts(store, move || {
            s.settings.load().attempts_retention_days
        }));
        Ok(engine)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The hook table the engine reads (the API writes to the same one).
    pub fn hooks(&self) -> &Arc<HookTable> {
        &self.shared.hooks
    }

    pub fn failures(&self) -> &Arc<FailureTracker> {
        &self.shared.failures
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    pub fn load(&self) -> Load {
        Load {
            queued: self.shared.queued.load(Ordering::Relaxed)
                + (self.intake.max_capacity() - self.intake.capacity()),
            in_flight: self.shared.in_flight.load(Ordering::Relaxed),
            waiting_retries: self.shared.waiting_retries.load(Ordering::Relaxed),
            attempts_pending: self.shared.attempts.max_capacity() - self.shared.attempts.capacity()
                + self.shared.attempts_writing.load(Ordering::Relaxed),
        }
    }

    /// Sends the notifications the engine raises (`webhook_disabled`) to `notifier` (the AMQP
    /// transport) instead of straight back into the engine. As in KAZOO, they then come back
    /// in through the transport, so `notifications` hooks fire exactly once.
    pub fn set_notifier(&self, notifier: Box<dyn Notifier>) {
        self.shared.notifier.store(Some(Arc::new(notifier)));
    }

    /// Re-reads KAZOO's settings from the store now (the disabler does it every tick).
    pub async fn reload_settings(&self) -> Result<(), StoreError> {
        let doc = self.shared.store.system_config("webhooks").await?;
        self.shared
            .settings
            .store(Arc::new(WebhooksConfig::from_doc(doc.as_ref())));
        Ok(())
    }

    pub fn settings(&self) -> Arc<WebhooksConfig> {
        self.shared.settings.load_full()
    }

    /// Waits, up to `deadline`, for queued and in-flight deliveries to finish and their
    /// attempts to be written; call it after the event sources stopped. Retries still waiting
    /// are not awaited.
    pub async fn shutdown(&self, deadline: Duration) {
        let until = tokio::time::Instant::now() + deadline;
        let mut idle_before = false;
        while tokio::time::Instant::now() < until {
            let l = self.load();
            let idle = l.queued == 0 && l.in_flight == 0 && l.attempts_pending == 0;
            // Twice in a row: a batch leaving the attempt queue is counted a moment later.
            if idle && idle_before {
                return;
            }
            idle_before = idle;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!(load = ?self.load(), "shutdown deadline passed with work pending");
    }

    /// Takes one KAZOO event (see [`EventSink::publish`]).
    pub async fn publish(&self, event: Event) -> Result<PublishReport, EventError> {
        let stats = &self.shared.stats;
        inc(&stats.events_received);
        let headers = event
            .required_str("Event-Category")
            .and_then(|c| event.required_str("Event-Name").map(|n| (c, n)));
        let (category, name) = match headers {
            Ok(h) => h,
            Err(e) => {
                inc(&stats.events_rejected);
                tracing::warn!(error = %e, "malformed event rejected");
                return Err(e);
            }
        };
        let snap = self.shared.hooks.snapshot();
        let cluster_id = self.shared.config.cluster_id.as_deref();
        let mut jobs = Vec::new();
        let (mut answered, mut no_account, mut first_err) = (false, false, None);
        for module in self.shared.registry.responders(category, name) {
            answered = true;
            match module.handle_event(&event, snap.as_ref()) {
                Ok(dispatches) => {
                    for d in dispatches {
                        let from_table = snap
                            .hooks_of(&d.hook.account_id)
                            .any(|h| Arc::ptr_eq(h, &d.hook));
                        if let Some(delivery) = Delivery::from_dispatch(d, cluster_id, event_id()) {
                            jobs.push(Job {
                                delivery,
                                from_table,
                            });
                        }
                    }
                }
                Err(EventError::NoAccount) => no_account = true,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if !answered {
            inc(&stats.events_unhandled);
            return Ok(PublishReport {
                dispatched: 0,
                dropped: Some("no module handles this event"),
            });
        }
        if jobs.is_empty() {
            if let Some(e) = first_err {
                inc(&stats.events_rejected);
                tracing::warn!(error = %e, category, name, "malformed event rejected");
                return Err(e);
            }
            if no_account {
                inc(&stats.events_without_account);
                tracing::info!(category, name, "event names no account, dropped");
                return Ok(PublishReport {
                    dispatched: 0,
                    dropped: Some("event names no account"),
                });
            }
        }
        let n = jobs.len();
        stats
            .deliveries_dispatched
            .fetch_add(n as u64, Ordering::Relaxed);
        for job in jobs {
            if self.intake.send(job).await.is_err() {
                tracing::error!("engine router stopped; delivery not queued");
            }
        }
        Ok(PublishReport {
            dispatched: n,
            dropped: None,
        })
    }
}

#[async_trait::async_trait]
impl EventSink for Engine {
    async fn publish(&self, event: Event) -> Result<PublishReport, EventError> {
        Engine::publish(self, event).await
    }
}

#[async_trait::async_trait]
impl ConfigListener for Engine {
    /// KAZOO's listener (spec §10.2): a webhook document is re-read and applied (enabled and
    /// live: in the table; otherwise out) and its failure count starts over; a deleted account
    /// loses its hooks and counts.
    async fn doc_changed(&self, change: &DocChange) {
        let shared = &self.shared;
        if change.doc_type == "account" && change.action == DocAction::Deleted {
            if let Some(account) = &change.account_id {
                shared.hooks.remove_account(account);
                shared.failures.flush_account(account);
            }
            return;
        }
        if change.doc_type != "webhook" {
            return;
        }
        match shared.store.hook(&change.id).await {
            Ok(Some(doc)) => {
                shared.hooks.apply_doc(&doc, &shared.registry);
                if let Some(account) = doc.account_id().and_then(|a| AccountId::parse(a).ok()) {
                    shared.failures.flush_hook(&account, &change.id);
                }
            }
            Ok(None) => {
                if let Some(account) = &change.account_id {
                    shared.hooks.remove(account, &change.id);
                    shared.failures.flush_hook(account, &change.id);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, hook = %change.id, "could not reload changed hook")
            }
        }
    }

    async fn reenable(&self, account: &AccountId, descendants: bool) -> Result<usize, StoreError> {
        let shared = &self.shared;
        let mut accounts = vec![account.clone()];
        if descendants {
            accounts.extend(
                shared
                    .store
                    .accounts()
                    .await?
                    .iter()
                    .filter_map(Account::from_doc)
                    .filter(|a| a.is_descendant_of(account))
                    .map(|a| a.id),
            );
        }
        let mut total = 0;
        for a in &accounts {
            let done =
                webhooks_core::reenable::reenable_account_hooks(shared.store.as_ref(), a).await?;
            for doc in &done {
                shared.hooks.apply_doc(doc, &shared.registry);
                if let Some(id) = doc.id() {
                    shared.failures.flush_hook(a, id);
                }
            }
            if !done.is_empty() {
                tracing::info!(account = %a, count = done.len(), "re-enabled hooks");
            }
            total += done.len();
        }
        Ok(total)
    }
}
