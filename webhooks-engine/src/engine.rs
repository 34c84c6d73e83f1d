//! The engine: the one handle an embedder holds. [`Engine::start`] loads the hook table and
//! starts the parts, each a task with its own state:
//!
//! ```text
//!  publish ─▶ intake ─▶ router ─▶ sends ─▶ recorder ─▶ attempt writer ─▶ store
//!                          ▲                   │
//!                          └──── retries ──────┘
//!  follower (change feed) ─▶ LiveHooks ◀─ disabler (failures ─▶ enabled: false)
//! ```
//!
//! Only this file knows all the parts; each part knows the handles it was given and nothing
//! above it. [`Engine::shutdown`] stops them in order: no new events, the accepted ones sent
//! (or cut and recorded at the deadline), every attempt written.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use webhooks_core::config::WebhooksConfig;
use webhooks_core::delivery_stats::{DeliveryCounts, HookCounts, TryObserver};
use webhooks_core::event::{Event, EventError};
use webhooks_core::failures::{FailureCount, FailureDesk};
use webhooks_core::live::LiveHooks;
use webhooks_core::pending::DeliveryJournal;
use webhooks_core::reenable::reenable_tree;
use webhooks_core::replay::Resend;
use webhooks_core::transport::{
    ConfigListener, DocAction, DocChange, FailedTry, FailureShare, FlushedFailures, Notifier,
};
use webhooks_core::{
    Account, AccountId, Doc, EventSink, ModuleRegistry, PublishReport, Settled, Store, StoreError,
};

use crate::attempts::{AttemptsPending, WriterConfig};
use crate::config::EngineConfig;
use crate::disabler::{threshold, Disabler, Notices};
use crate::hook_stats::HookStats;
use crate::intake::Intake;
use crate::peers::Peers;
use crate::recorder::TryRecorder;
use crate::router::{Router, RouterLoad, Shutdown};
use crate::sender::{HttpSender, SenderConfig, SenderError};
use crate::settings::Settings;
use crate::stats::{EngineStats, FinishedDeliveries, Latencies, StatsSnapshot};

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("loading hooks: {0}")]
    Store(#[from] StoreError),
    #[error("http client: {0}")]
    Sender(#[from] SenderError),
}

/// What is in flight right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    pub queued: usize,
    pub in_flight: usize,
    pub waiting_retries: usize,
    pub attempts_pending: usize,
    /// Destinations with requests out and none answered for `stall_after` (as of the
    /// router's last check, a few times a `stall_after`).
    pub destinations_stalled: usize,
}

/// The delivery engine. Cheap to clone; every clone drives the same tasks. When the last clone
/// is dropped the tasks stop as on [`Engine::shutdown`], without waiting for them.
#[derive(Clone)]
pub struct Engine {
    intake: Intake,
    hooks: Arc<LiveHooks>,
    store: Arc<dyn Store>,
    settings: Settings,
    stats: Arc<EngineStats>,
    router_load: Arc<RouterLoad>,
    attempts_pending: AttemptsPending,
    notices: Arc<Notices>,
    peers: Arc<Peers>,
    hook_stats: Arc<HookStats>,
    /// Whoever watches tries live; the recorder reads it.
    observer: Arc<ArcSwapOption<Box<dyn TryObserver>>>,
    tasks: Arc<Tasks>,
}

/// The engine's tasks and the signals that stop them.
struct Tasks {
    /// Cancelled to stop: intake closes, periodic tasks end, the router finishes.
    stop: CancellationToken,
    /// Cancelled at the shutdown deadline: the router cuts what is left.
    abort: CancellationToken,
    /// Stops everything when the last `Engine` is dropped.
    _stop_on_drop: DropGuard,
    running: Mutex<Option<Running>>,
}

struct Running {
    router: JoinHandle<()>,
    writer: JoinHandle<()>,
    /// Follower, disabler, pruning, and the resumption of journaled deliveries: they end as
    /// soon as `stop` is cancelled (the last when the router closes its intake).
    periodic: Vec<JoinHandle<()>>,
}

impl Engine {
    /// Loads the hook table from the store and starts the engine's tasks (router, attempt
    /// writer, disabler, change-feed follower, attempt pruning), with no delivery journal:
    /// accepted deliveries live in memory only, as in KAZOO (at most once: a crash loses
    /// what was in flight). Must run inside a tokio runtime.
    pub async fn start(
        store: Arc<dyn Store>,
        registry: ModuleRegistry,
        config: EngineConfig,
    ) -> Result<Engine, EngineError> {
        Engine::start_with_journal(store, registry, config, None).await
    }

    /// [`start`](Self::start), with deliveries kept in `journal` until they are finished
    /// (at least once): `publish` returns only once its deliveries are durable there, and
    /// what the journal held from before (a crash, a restart) is taken up again at its due
    /// times. `webhooks_store::FileJournal` is the journal on the local disk.
    pub async fn start_with_journal(
        store: Arc<dyn Store>,
        registry: ModuleRegistry,
        config: EngineConfig,
        journal: Option<Arc<dyn DeliveryJournal>>,
    ) -> Result<Engine, EngineError> {
        let settings = Settings::read(store.as_ref()).await?;
        let current = settings.current();
        crate::attempts::prune_once(store.as_ref(), current.attempts_retention_days).await;
        let hooks = Arc::new(LiveHooks::new(registry));
        let feed_position = load_table(store.as_ref(), &hooks).await?;
        let sender = HttpSender::new(&sender_config(&current, &config))?;
        let stats = Arc::new(EngineStats::default());
        let (stop, abort) = (CancellationToken::new(), CancellationToken::new());

        let (attempts, attempts_pending, writer) = crate::attempts::start_writer(
            store.clone(),
            WriterConfig {
                queue: config.attempt_queue,
                batch: config.attempt_batch,
                linger: config.attempt_linger,
                backlog: config.attempt_backlog,
            },
            stats.clone(),
        );
        let peers = Arc::new(Peers::default());
        let hook_stats = Arc::new(HookStats::default());
        let observer: Arc<ArcSwapOption<Box<dyn TryObserver>>> = Arc::default();
        let (gone_tx, gone_rx) = mpsc::unbounded_channel();
        let recorder = TryRecorder {
            hooks: hooks.clone(),
            attempts,
            settings: settings.clone(),
            stats: stats.clone(),
            peers: peers.clone(),
            hook_stats: hook_stats.clone(),
            observer: observer.clone(),
            journal: journal.clone(),
            retry_delay: config.retry_delay,
            gone: gone_tx,
            stop: stop.clone(),
        };
        let (jobs_tx, jobs_rx) = mpsc::channel(config.intake_capacity);
        let intake = Intake::new(
            hooks.clone(),
            stats.clone(),
            config.cluster_id.clone(),
            jobs_tx.clone(),
            journal.clone(),
            stop.clone(),
        );
        let shutdown = Shutdown {
            stop: stop.clone(),
            abort: abort.clone(),
        };
        let router = Router::new(config.clone(), sender, recorder, jobs_rx, shutdown);
        let router_load = router.load();
        let router = tokio::spawn(router.run());

        let notices = Arc::new(Notices {
            transport: Default::default(),
            local: Box::new(intake.clone()),
        });
        let disabler = Disabler {
            store: store.clone(),
            hooks: hooks.clone(),
            settings: settings.clone(),
            stats: stats.clone(),
            notices: notices.clone(),
            node: config.node.clone(),
            gone: gone_rx,
        };
        let retention = settings.clone();
        let mut periodic = vec![
            tokio::spawn(disabler.run(stop.clone())),
            tokio::spawn(crate::follow::follow(
                store.clone(),
                hooks.clone(),
                feed_position,
                config.follow_every,
                stop.clone(),
            )),
            tokio::spawn(crate::attempts::prune_attempts(
                store.clone(),
                move || retention.current().attempts_retention_days,
                stop.clone(),
            )),
        ];
        if let Some(journal) = journal {
            let recovered = journal.take_recovered();
            if !recovered.is_empty() {
                periodic.push(tokio::spawn(crate::resume::resume(
                    recovered,
                    hooks.clone(),
                    jobs_tx,
                    journal,
                    stats.clone(),
                )));
            }
        }
        Ok(Engine {
            intake,
            hooks,
            store,
            settings,
            stats,
            router_load,
            attempts_pending,
            notices,
            peers,
            hook_stats,
            observer,
            tasks: Arc::new(Tasks {
                _stop_on_drop: stop.clone().drop_guard(),
                stop,
                abort,
                running: Mutex::new(Some(Running {
                    router,
                    writer,
                    periodic,
                })),
            }),
        })
    }

    /// The hooks the engine fires and their failure counts. Give it to the API
    /// (`ApiState::new`), so edits made through the API take effect for the next event.
    pub fn hooks(&self) -> &Arc<LiveHooks> {
        &self.hooks
    }

    /// The engine's counters, as they are now.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Finished deliveries by result and by the class of their last answer, as they are now.
    pub fn finished(&self) -> Vec<FinishedDeliveries> {
        self.stats.finished()
    }

    /// The delivery and attempt-write latency histograms, as they are now.
    pub fn latencies(&self) -> Latencies {
        self.stats.latencies()
    }

    /// Does `publish` take events? False from the start of [`Engine::shutdown`] on.
    pub fn is_accepting(&self) -> bool {
        !self.tasks.stop.is_cancelled()
    }

    pub fn load(&self) -> Load {
        let (queued, in_flight, waiting_retries) = self.router_load.get();
        Load {
            queued: queued + self.intake.waiting(),
            in_flight,
            waiting_retries,
            attempts_pending: self.attempts_pending.get(),
            destinations_stalled: self.router_load.stalled(),
        }
    }

    /// Sends the notifications the engine raises (`webhook_disabled`) to `notifier` (the AMQP
    /// transport) instead of straight back into the engine. As in KAZOO, they then come back
    /// in through the transport, so `notifications` hooks fire exactly once.
    pub fn set_notifier(&self, notifier: Box<dyn Notifier>) {
        self.notices.transport.store(Some(Arc::new(notifier)));
    }

    /// Tells the other nodes (through `share`, the AMQP transport) about every failed try, so
    /// that each node counts every node's failures towards auto-disable; they tell this one
    /// through [`ConfigListener::peer_failures`].
    pub fn set_failure_share(&self, share: Box<dyn FailureShare>) {
        self.peers.attach(share);
    }

    /// Tells `observer` about every try as it finishes (the websockets hub, for live tails of
    /// deliveries).
    pub fn set_try_observer(&self, observer: Box<dyn TryObserver>) {
        self.observer.store(Some(Arc::new(observer)));
    }

    /// Re-reads KAZOO's settings from the store now (the disabler does it every tick).
    pub async fn reload_settings(&self) -> Result<(), StoreError> {
        self.settings.reload(self.store.as_ref()).await
    }

    pub fn settings(&self) -> Arc<WebhooksConfig> {
        self.settings.current()
    }

    /// Takes one KAZOO event (see [`EventSink::publish`]).
    pub async fn publish(&self, event: Event) -> Result<PublishReport, EventError> {
        self.intake.publish(event).await
    }

    /// Stops the engine; call it after the event sources stopped. From now on `publish`
    /// answers [`EventError::Stopped`]. Every event accepted before is still delivered; what
    /// is not finished within `deadline` is cut, each recorded as a failed attempt. Retries
    /// waiting for their time leave memory (their last try is recorded); with a journal,
    /// they and the cut deliveries stay there for the next start. Returns once every
    /// attempt document is written and every task has ended. A second call returns at once.
    pub async fn shutdown(&self, deadline: Duration) {
        let Some(running) = self
            .tasks
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        self.tasks.stop.cancel();
        let mut router = running.router;
        if tokio::time::timeout(deadline, &mut router).await.is_err() {
            self.tasks.abort.cancel();
            log_join("router", router.await);
        }
        // The router and its sends held the last attempt queues: the writer now stores what
        // they queued and ends.
        log_join("attempt writer", running.writer.await);
        for task in running.periodic {
            log_join("periodic task", task.await);
        }
        let stats = self.stats();
        tracing::info!(
            cut = stats.deliveries_cut_by_shutdown,
            retries_dropped = stats.retries_dropped_by_shutdown,
            attempts_written = stats.attempts_written,
            attempts_lost = stats.attempts_lost,
            "engine stopped"
        );
    }
}

fn log_join(task: &str, done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(task, error = %e, "engine task failed");
    }
}

fn sender_config(settings: &WebhooksConfig, config: &EngineConfig) -> SenderConfig {
    SenderConfig {
        connect_timeout: Duration::from_millis(settings.connect_timeout_ms),
        request_timeout: Duration::from_millis(settings.request_timeout_ms),
        max_response_body: config.max_response_body,
        pool_max_idle_per_host: config.per_destination_in_flight,
        destinations: Arc::new(config.destinations.clone()),
        ..SenderConfig::default()
    }
}

/// The start-up load; returns the change-feed position to follow from.
async fn load_table(
    store: &dyn Store,
    hooks: &LiveHooks,
) -> Result<webhooks_core::store::FeedPosition, StoreError> {
    let accounts: Vec<Account> = store
        .accounts()
        .await?
        .iter()
        .filter_map(Account::from_doc)
        .collect();
    let loaded = crate::follow::load(store, &accounts, hooks).await?;
    tracing::info!(
        hooks = hooks.snapshot().hook_count(),
        accounts = accounts.len(),
        skipped = loaded.skipped,
        migrated = loaded.migrated,
        "hook table loaded"
    );
    Ok(loaded.position)
}

#[async_trait::async_trait]
impl EventSink for Engine {
    async fn publish(&self, event: Event) -> Result<PublishReport, EventError> {
        Engine::publish(self, event).await
    }

    async fn publish_held(&self, event: Event) -> Result<(PublishReport, Settled), EventError> {
        self.intake.publish_held(event).await
    }
}

/// Replays and recoveries (the API's `replay.rs` routes) go in as an event's deliveries do.
#[async_trait::async_trait]
impl Resend for Engine {
    async fn resend(
        &self,
        deliveries: Vec<webhooks_core::delivery::Delivery>,
    ) -> Result<usize, EventError> {
        self.intake.resend(deliveries).await
    }
}

#[async_trait::async_trait]
impl ConfigListener for Engine {
    /// KAZOO's listener (spec §10.2): a webhook document is re-read and applied (enabled and
    /// live: in the table; otherwise out); a deleted account loses its hooks and counts.
    async fn doc_changed(&self, change: &DocChange) {
        if change.doc_type == "account" && change.action == DocAction::Deleted {
            if let Some(account) = &change.account_id {
                self.hooks.remove_account(account);
            }
            return;
        }
        if change.doc_type != "webhook" {
            return;
        }
        match self.store.hook(&change.id).await {
            Ok(Some(doc)) => {
                self.hooks.apply_doc(&doc);
            }
            Ok(None) => {
                if let Some(account) = &change.account_id {
                    self.hooks
                        .apply_doc(&Doc::tombstone(&change.id, Some(account.as_str())));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, hook = %change.id, "could not reload changed hook")
            }
        }
    }

    async fn reenable(&self, account: &AccountId, descendants: bool) -> Result<usize, StoreError> {
        let mut total = 0;
        for (a, saved) in reenable_tree(self.store.as_ref(), account, descendants).await? {
            for doc in &saved {
                self.hooks.apply_doc(doc);
            }
            if !saved.is_empty() {
                tracing::info!(account = %a, count = saved.len(), "re-enabled hooks");
            }
            total += saved.len();
        }
        Ok(total)
    }

    fn peer_failures(&self, failures: &[FailedTry]) {
        for failure in failures {
            self.hooks
                .record_failure(&failure.account, &failure.hook, failure.at_ms);
        }
    }

    fn peer_flushed(&self, flushed: &FlushedFailures) {
        match &flushed.hook {
            Some(hook) => self.hooks.forget_failures(&flushed.account, hook),
            None => self.hooks.forget_account_failures(&flushed.account),
        };
    }
}

/// The failure counts for the maintenance commands (through the API). Counts are read with
/// each account's own window, as the disabler reads them; a flush is told to the other nodes,
/// which hold the same counts.
#[async_trait::async_trait]
impl FailureDesk for Engine {
    async fn failure_counts(
        &self,
        account: Option<&AccountId>,
    ) -> Result<Vec<FailureCount>, StoreError> {
        let system = self.settings.current();
        let failures = self.hooks.failures();
        let mut windows = std::collections::HashMap::new();
        for a in failures.accounts() {
            if account.is_none_or(|wanted| *wanted == a) {
                let t = threshold(self.store.as_ref(), &self.hooks, &a, &system).await?;
                windows.insert(a, t.window_ms);
            }
        }
        let now = webhooks_core::time::now_unix_ms();
        let counts = failures.counts(now, |a| {
            windows
                .get(a)
                .copied()
                .unwrap_or(system.attempt_failure_expiry_ms)
        });
        Ok(counts
            .into_iter()
            .filter(|(a, _, _)| account.is_none_or(|wanted| wanted == a))
            .map(|(account_id, hook_id, count)| FailureCount {
                account_id,
                hook_id,
                count,
            })
            .collect())
    }

    fn flush_account_failures(&self, account: &AccountId) -> usize {
        self.peers.flushed(account, None);
        self.hooks.forget_account_failures(account)
    }

    fn flush_hook_failures(&self, account: &AccountId, hook: &str) -> usize {
        self.peers.flushed(account, Some(hook));
        self.hooks.forget_failures(account, hook)
    }
}

/// Each hook's tries on this node over the last hour (the API's `.../stats`).
impl DeliveryCounts for Engine {
    fn hook_counts(&self, account: &AccountId, hook: &str) -> HookCounts {
        self.hook_stats
            .hook(account, hook, webhooks_core::time::now_unix())
    }

    fn account_counts(&self, account: &AccountId) -> Vec<(String, HookCounts)> {
        self.hook_stats
            .account(account, webhooks_core::time::now_unix())
    }
}
