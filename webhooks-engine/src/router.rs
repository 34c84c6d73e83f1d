//! The router: one task that owns every queued delivery and decides what is sent when.
//!
//! Deliveries are grouped into lanes by destination (scheme, host, port). A lane sends at
//! most `per_destination_in_flight` requests at once; all lanes together send at most
//! `max_in_flight`. So a destination that never answers holds its own slots and no more.
//!
//! Queues are bounded too, in two ways. All lanes together hold at most `max_queued`, and a
//! lane past `destination_backlog` pauses intake while it is still answering: a burst to a
//! healthy destination is absorbed by slowing the publisher, never by dropping. A lane that
//! has stalled (in flight, nothing finished for `stall_after`) instead fails its overflow at
//! once, so a dead destination cannot pause intake for everyone.
//!
//! A send over a rate limit (the destination's or the hook's, `limits.rs`) waits in its own
//! task, holding its lane's slot: it slows that destination only.
//!
//! A retry is data, not a sleeping task: the delivery goes into a heap keyed by its due time
//! (the recorder sets it: the hook's schedule, a receiver's `Retry-After`), and the router's
//! loop wakes for the earliest one. Nothing holds a slot while it waits. Deliveries resumed
//! from the journal after a restart come in the same way, with their due times.
//!
//! Shutting down (the engine's `stop` token): the router closes its intake and takes what was
//! already handed to it, so every event `publish` accepted is still sent; it stops scheduling
//! retries (their earlier try is recorded; a journal keeps them for the next start) and
//! returns once nothing is queued or in flight.
//! If the deadline comes first (the `abort` token), the sends in flight are cut and everything
//! still queued fails, each recorded as a failed attempt, so nothing accepted goes unrecorded.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use webhooks_core::delivery::Outcome;

use crate::config::EngineConfig;
use crate::intake::Job;
use crate::limits::RateLimits;
use crate::recorder::TryRecorder;
use crate::sender::HttpSender;

/// What the client error of a delivery the shutdown ended says.
const CUT_BY_SHUTDOWN: &str = "engine shut down before delivery";

struct Lane {
    queue: VecDeque<Job>,
    in_flight: usize,
    /// Listed in `Router::waiting` (has work, blocked by the global cap).
    waiting: bool,
    /// When a request of this lane was last answered (or the lane was created). A request
    /// that timed out or failed to connect is not progress: counting it would make a dead
    /// destination look alive again after every wave of timeouts, and it would pause intake
    /// for everyone while its backlog refilled.
    last_progress: Instant,
}

impl Lane {
    fn new(now: Instant) -> Self {
        Lane {
            queue: VecDeque::new(),
            in_flight: 0,
            waiting: false,
            last_progress: now,
        }
    }

    /// Requests out and none answered for `after`.
    fn stalled(&self, now: Instant, after: std::time::Duration) -> bool {
        self.in_flight > 0 && now.duration_since(self.last_progress) >= after
    }
}

/// A send finished (or a delivery failed without being sent).
struct Done {
    lane: Arc<str>,
    /// Whether it held a lane slot.
    started: bool,
    /// Whether the destination answered (any HTTP status).
    answered: bool,
    retry: Option<Job>,
}

/// What the router is doing, for `Engine::load`. The router writes; the engine reads.
#[derive(Default)]
pub(crate) struct RouterLoad {
    queued: AtomicUsize,
    in_flight: AtomicUsize,
    waiting_retries: AtomicUsize,
    /// Destinations stalled at the last stall check (requests out, none answered lately).
    stalled: AtomicUsize,
}

impl RouterLoad {
    /// (queued, in flight, waiting retries).
    pub(crate) fn get(&self) -> (usize, usize, usize) {
        (
            self.queued.load(Ordering::Relaxed),
            self.in_flight.load(Ordering::Relaxed),
            self.waiting_retries.load(Ordering::Relaxed),
        )
    }

    /// Destinations stalled at the last stall check.
    pub(crate) fn stalled(&self) -> usize {
        self.stalled.load(Ordering::Relaxed)
    }
}

/// The router's two signals: `stop` (finish what was accepted, take nothing new) and `abort`
/// (the deadline passed: cut what is left, recording it).
pub(crate) struct Shutdown {
    pub(crate) stop: CancellationToken,
    pub(crate) abort: CancellationToken,
}

/// What every send task needs, behind one pointer: a send costs one reference count, not one
/// per handle (with thousands of sends a second on two cores, each shared count is a cache
/// line the cores pass back and forth).
struct SendContext {
    sender: HttpSender,
    recorder: TryRecorder,
    limits: RateLimits,
    /// Children of the `abort` token, one per group of sends: a send waiting on a token
    /// registers with it under a lock, and one token for every send in flight would make that
    /// lock the one all sends queue for.
    abort: Vec<CancellationToken>,
    done: mpsc::UnboundedSender<Done>,
}

impl SendContext {
    /// Waits for the rate limits that apply (the wait is no failure and holds only this
    /// destination's slot), then sends, signed if the hook signs.
    /// Returns the outcome and how long the request took (the rate limit's wait excluded).
    async fn send_when_allowed(&self, job: &Job, lane: &Arc<str>) -> (Outcome, Duration) {
        let hook = &job.delivery.hook;
        if self.limits.applies(hook) {
            self.limits.until_ready(lane, hook).await;
        }
        let sent = Instant::now();
        // Signed as it leaves, after any wait, so the timestamp is the send's.
        let outcome = match job.delivery.signed_request(webhooks_core::time::now_unix()) {
            Some(signed) => self.sender.send(&signed).await,
            None => self.sender.send(&job.delivery.request).await,
        };
        (outcome, sent.elapsed())
    }
}

/// Groups of sends sharing an abort token (see [`SendContext::abort`]).
const ABORT_GROUPS: usize = 16;

pub(crate) struct Router {
    config: EngineConfig,
    sends: Arc<SendContext>,
    load: Arc<RouterLoad>,
    shutdown: Shutdown,
    stopping: bool,
    aborted: bool,
    /// Sends (and failures without a send) spawned and not yet reported back.
    tasks_out: usize,
    /// Sends spawned so far (picks each one's abort group).
    tasks_spawned: usize,
    intake: mpsc::Receiver<Job>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    lanes: HashMap<Arc<str>, Lane>,
    waiting: VecDeque<Arc<str>>,
    retries: BinaryHeap<Reverse<(Instant, u64)>>,
    retry_jobs: HashMap<u64, Job>,
    seq: u64,
    in_flight: usize,
    queued: usize,
    /// Lanes past their backlog that still answer: intake pauses while any exists.
    backed_up: HashSet<Arc<str>>,
}

/// The lane of a url: `scheme://authority`, or the raw text when it does not parse.
fn lane_key(url: &str) -> Arc<str> {
    match url.parse::<hyper::Uri>() {
        Ok(u) => match (u.scheme_str(), u.authority()) {
            (Some(s), Some(a)) => format!("{s}://{a}").into(),
            _ => url.into(),
        },
        Err(_) => url.into(),
    }
}

impl Router {
    pub(crate) fn new(
        config: EngineConfig,
        sender: HttpSender,
        recorder: TryRecorder,
        intake: mpsc::Receiver<Job>,
        shutdown: Shutdown,
    ) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let sends = Arc::new(SendContext {
            sender,
            recorder,
            limits: RateLimits::new(config.destination_rate_limit),
            abort: (0..ABORT_GROUPS)
                .map(|_| shutdown.abort.child_token())
                .collect(),
            done: done_tx,
        });
        Router {
            config,
            sends,
            load: Arc::default(),
            shutdown,
            stopping: false,
            aborted: false,
            tasks_out: 0,
            tasks_spawned: 0,
            intake,
            done_rx,
            lanes: HashMap::new(),
            waiting: VecDeque::new(),
            retries: BinaryHeap::new(),
            retry_jobs: HashMap::new(),
            seq: 0,
            in_flight: 0,
            queued: 0,
            backed_up: HashSet::new(),
        }
    }

    /// The load gauges this router keeps up to date.
    pub(crate) fn load(&self) -> Arc<RouterLoad> {
        self.load.clone()
    }

    /// Routes until shut down (see the module's documentation).
    pub(crate) async fn run(mut self) {
        let mut stall_check = tokio::time::interval(self.config.stall_after / 4);
        stall_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (stop, abort) = (self.shutdown.stop.clone(), self.shutdown.abort.clone());
        loop {
            self.publish_load();
            if self.stopping && self.queued == 0 && self.tasks_out == 0 {
                break;
            }
            let next_due = self.retries.peek().map(|Reverse((t, _))| *t);
            let accepting =
                !self.stopping && self.queued < self.config.max_queued && self.backed_up.is_empty();
            tokio::select! {
                biased;
                _ = abort.cancelled(), if self.stopping && !self.aborted => self.cut_everything(),
                _ = stop.cancelled(), if !self.stopping => self.begin_stop(),
                Some(done) = self.done_rx.recv() => self.on_done(done),
                _ = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() && !self.stopping => {
                    self.release_due();
                }
                _ = stall_check.tick() => self.check_stalls(),
                // The intake never closes under a running router (the engine's parts hold it):
                // what ends the router is `stop`, also cancelled when the last `Engine` drops.
                Some(job) = self.intake.recv(), if accepting => self.enqueue(job),
            }
        }
        self.publish_load();
        tracing::info!("router stopped: nothing queued or in flight");
    }

    fn publish_load(&self) {
        let l = &self.load;
        l.queued.store(self.queued, Ordering::Relaxed);
        l.in_flight.store(self.in_flight, Ordering::Relaxed);
        l.waiting_retries
            .store(self.retry_jobs.len(), Ordering::Relaxed);
    }

    /// Takes nothing new, but everything already handed over; drops the waiting retries.
    fn begin_stop(&mut self) {
        self.stopping = true;
        self.intake.close();
        let mut taken = 0;
        while let Ok(job) = self.intake.try_recv() {
            self.enqueue(job);
            taken += 1;
        }
        let retries = self.retry_jobs.len();
        self.retries.clear();
        self.retry_jobs.clear();
        self.sends
            .recorder
            .stats
            .retries_dropped_by_shutdown
            .fetch_add(retries as u64, Ordering::Relaxed);
        tracing::info!(
            queued = self.queued,
            in_flight = self.in_flight,
            taken_from_intake = taken,
            retries_dropped = retries,
            "engine stopping: finishing accepted deliveries (waiting retries leave memory: the journal keeps them for the next start, if there is one; their last try is recorded)"
        );
    }

    /// The deadline passed: sends in flight are cut (each sees `abort`), queued deliveries
    /// fail unsent; all are recorded as failed attempts.
    fn cut_everything(&mut self) {
        self.aborted = true;
        let in_flight = self.in_flight;
        let mut queued = Vec::new();
        for (key, lane) in self.lanes.iter_mut() {
            queued.extend(lane.queue.drain(..).map(|job| (job, key.clone())));
        }
        self.queued = 0;
        self.backed_up.clear();
        let cut = (in_flight + queued.len()) as u64;
        self.sends
            .recorder
            .stats
            .deliveries_cut_by_shutdown
            .fetch_add(cut, Ordering::Relaxed);
        tracing::warn!(
            in_flight,
            queued = queued.len(),
            "shutdown deadline passed: cutting deliveries, each recorded as a failed attempt"
        );
        for (job, key) in queued {
            let outcome = Outcome::Transport {
                error: CUT_BY_SHUTDOWN.into(),
            };
            self.spawn_send(job, key, false, Some(outcome));
        }
    }

    /// Files a job in the retry heap, keyed by its due time.
    fn wait_until_due(&mut self, job: Job) {
        let due = job.due.unwrap_or_else(Instant::now);
        self.seq += 1;
        self.retries.push(Reverse((due, self.seq)));
        self.retry_jobs.insert(self.seq, job);
    }

    fn enqueue(&mut self, job: Job) {
        if job.due.is_some_and(|due| due > Instant::now()) {
            // A delivery resumed from the journal, due later. While stopping it is left to
            // the journal, which keeps it for the next start.
            if !self.stopping {
                self.wait_until_due(job);
            }
            return;
        }
        if self.aborted {
            let key = lane_key(&job.delivery.request.url);
            let outcome = Outcome::Transport {
                error: CUT_BY_SHUTDOWN.into(),
            };
            self.spawn_send(job, key, false, Some(outcome));
            return;
        }
        let now = Instant::now();
        let key = lane_key(&job.delivery.request.url);
        let backlog = self.config.destination_backlog;
        let lane = self
            .lanes
            .entry(key.clone())
            .or_insert_with(|| Lane::new(now));
        if lane.queue.len() >= backlog && lane.stalled(now, self.config.stall_after) {
            self.fail_fast(job, key);
            return;
        }
        lane.queue.push_back(job);
        if lane.queue.len() > backlog {
            self.backed_up.insert(key.clone());
        }
        self.queued += 1;
        self.pump(&key);
    }

    /// Fails a delivery without sending it: its destination stalled with a full backlog.
    fn fail_fast(&mut self, job: Job, key: Arc<str>) {
        let outcome = Outcome::Transport {
            error: "destination backlog full".into(),
        };
        self.spawn_send(job, key, false, Some(outcome));
    }

    /// Backed-up lanes that stopped answering give up their overflow, so intake can resume.
    /// Counts the stalled destinations (for `Engine::load`) and sheds the overflow of those
    /// backed up. A scan of the lanes, one per destination with work, a few times a
    /// `stall_after`.
    fn check_stalls(&mut self) {
        let (now, after) = (Instant::now(), self.config.stall_after);
        let stalled = self
            .lanes
            .values()
            .filter(|l| l.stalled(now, after))
            .count();
        self.load.stalled.store(stalled, Ordering::Relaxed);
        if !self.backed_up.is_empty() {
            self.shed_stalled();
        }
    }

    fn shed_stalled(&mut self) {
        let now = Instant::now();
        let backlog = self.config.destination_backlog;
        for key in self.backed_up.clone() {
            let Some(lane) = self.lanes.get_mut(&key) else {
                self.backed_up.remove(&key);
                continue;
            };
            if !lane.stalled(now, self.config.stall_after) {
                continue;
            }
            let mut shed = Vec::new();
            while lane.queue.len() > backlog {
                shed.extend(lane.queue.pop_back());
            }
            self.queued -= shed.len();
            self.backed_up.remove(&key);
            tracing::warn!(destination = %key, shed = shed.len(), "destination stalled; failing its overflow");
            for job in shed {
                self.fail_fast(job, key.clone());
            }
        }
    }

    /// Starts as many of a lane's deliveries as its and the global limits allow.
    fn pump(&mut self, key: &Arc<str>) {
        let per_dest = self.config.per_destination_in_flight;
        let max = self.config.max_in_flight;
        loop {
            let Some(lane) = self.lanes.get_mut(key) else {
                return;
            };
            if lane.in_flight >= per_dest || lane.queue.is_empty() {
                break;
            }
            if self.in_flight >= max {
                if !lane.waiting {
                    lane.waiting = true;
                    self.waiting.push_back(key.clone());
                }
                return;
            }
            let job = lane.queue.pop_front().expect("non-empty");
            self.queued -= 1;
            if job.from_table && !self.sends.recorder.hook_is_live(&job) {
                // Disabled, deleted or edited while it waited: not sent.
                self.sends.recorder.cancelled(&job);
                continue;
            }
            lane.in_flight += 1;
            self.in_flight += 1;
            self.spawn_send(job, key.clone(), true, None);
        }
        if self
            .lanes
            .get(key)
            .is_some_and(|l| l.queue.len() <= self.config.destination_backlog)
        {
            self.backed_up.remove(key);
        }
        self.drop_if_idle(key);
    }

    fn drop_if_idle(&mut self, key: &Arc<str>) {
        if let Some(l) = self.lanes.get(key) {
            if l.queue.is_empty() && l.in_flight == 0 && !l.waiting {
                self.lanes.remove(key);
            }
        }
    }

    /// Sends a job (or, with `forced`, records that outcome without sending) in a task of its
    /// own, which reports back as a [`Done`].
    fn spawn_send(&mut self, job: Job, lane: Arc<str>, started: bool, forced: Option<Outcome>) {
        let sends = self.sends.clone();
        let group = self.tasks_spawned % ABORT_GROUPS;
        self.tasks_spawned += 1;
        self.tasks_out += 1;
        tokio::spawn(async move {
            let (outcome, took) = match forced {
                Some(o) => (o, None),
                None => tokio::select! {
                    (o, took) = sends.send_when_allowed(&job, &lane) => (o, Some(took)),
                    _ = sends.abort[group].cancelled() => (Outcome::Transport { error: CUT_BY_SHUTDOWN.into() }, None),
                },
            };
            let answered = matches!(outcome, Outcome::Response { .. });
            let retry = sends.recorder.after_try(job, outcome, took).await;
            let _ = sends.done.send(Done {
                lane,
                started,
                answered,
                retry,
            });
        });
    }

    fn on_done(&mut self, done: Done) {
        self.tasks_out -= 1;
        if done.started {
            self.in_flight -= 1;
            if let Some(l) = self.lanes.get_mut(&done.lane) {
                l.in_flight -= 1;
                if done.answered {
                    l.last_progress = Instant::now();
                }
            }
        }
        if let Some(job) = done.retry.filter(|_| !self.stopping) {
            self.wait_until_due(job);
        }
        self.pump(&done.lane);
        while self.in_flight < self.config.max_in_flight {
            let Some(key) = self.waiting.pop_front() else {
                break;
            };
            if let Some(l) = self.lanes.get_mut(&key) {
                l.waiting = false;
            }
            self.pump(&key);
        }
    }

    fn release_due(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((due, seq))) = self.retries.peek().copied() {
            if due > now {
                break;
            }
            self.retries.pop();
            let Some(job) = self.retry_jobs.remove(&seq) else {
                continue;
            };
            if job.from_table && !self.sends.recorder.hook_is_live(&job) {
                self.sends.recorder.cancelled(&job);
                continue;
            }
            self.enqueue(job);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lane_key;

    #[test]
    fn lanes_are_per_scheme_host_and_port() {
        assert_eq!(&*lane_key("http://a.b:8080/x?y=1"), "http://a.b:8080");
        assert_eq!(&*lane_key("https://a.b/x"), "https://a.b");
        assert_ne!(lane_key("http://a.b/x"), lane_key("http://a.b:81/x"));
    }
}
