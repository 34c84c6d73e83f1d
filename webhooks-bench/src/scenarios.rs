//! The measurements, one per child process.
//!
//! The parent ([`crate::harness`]) starts `webhooks-loadtest --scenario NAME` for each row, so
//! every row's peak RSS is its own and no row inherits another's heap, connections or threads.
//! A scenario prints one `RESULT {json}` line; everything else goes to stderr.
//!
//! Every scenario is bounded twice, by time and by count, and everything it talks to is on
//! 127.0.0.1.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, ConnectionProperties};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::task::JoinSet;
use webhooks_amqp::{AmqpConfig, AmqpTransport};
use webhooks_api::{ApiConfig, ApiState, Bootstrap};
use webhooks_core::delivery::{Delivery, HttpRequest, Outcome};
use webhooks_core::destination::DestinationPolicy;
use webhooks_core::pending::DeliveryJournal;
use webhooks_core::store::AttemptStore;
use webhooks_core::{AccountId, Doc, Hook, HookFinder, HttpVerb, Store, WebhookModule};
use webhooks_engine::sender::{HttpSender, SenderConfig};
use webhooks_engine::{Engine, EngineConfig};
use webhooks_store::{CouchConfig, CouchStore, EmbeddedStore, FileJournal, JournalConfig};
use webhooks_testkit::rabbitmq::Vhost;

use crate::clock;
use crate::fixture::{self, CallEvents, Only, Population};
pub use crate::plan::{scratch_dir, BoxError, Plan};
use crate::receiver::{self, Arrivals};
use crate::rss;

/// The master api key of every scenario's store.
const API_KEY: &str = "loadtest-master-key";

/// Requests in flight from the ceiling's client: the engine's default per-destination cap, so
/// the ceiling and the engine may hold the same number of connections to the receiver.
const CEILING_IN_FLIGHT: usize = 64;

/// How events reach the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `Engine::publish`, as an embedder calls it.
    InProcess,
    /// `POST /v2/events` on the API, one event per request.
    Http,
    /// KAZOO's way: published on the `callevt` exchange of a local RabbitMQ (a vhost of the
    /// run's own), consumed by `webhooks-amqp`.
    Amqp,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::InProcess => "inproc",
            Transport::Http => "http",
            Transport::Amqp => "amqp",
        }
    }
}

/// One child's measurement.
#[derive(Debug, Clone, PartialEq)]
pub enum Scenario {
    Ceiling,
    /// `log_successes` off (`inproc-1-nolog`) is a diagnostic: the same run without the
    /// attempt document of every success, to show what logging them costs.
    Engine {
        transport: Transport,
        fanout: usize,
        log_successes: bool,
    },
    /// In-process, 10 hooks per event, one of which points at a destination that never
    /// answers; `pace` (deliveries/s) adds a latency phase at that rate.
    Fault {
        pace: Option<f64>,
    },
    Matching,
    /// The attempt writer's ceiling: `save_attempts` alone, the engine's batches of success documents,
    /// into a store on the real disk (or tmpfs, `attempts-tmpfs`, to set fsync apart).
    Attempts {
        tmpfs: bool,
    },
    /// The disk's own rates: sequential append, and `fdatasync` after a small and a large
    /// write (`disk.rs`).
    Disk,
    /// Fills a store in `dir` for [`Scenario::Startup`] (not measured).
    BuildStore {
        dir: PathBuf,
    },
    Startup {
        dir: PathBuf,
    },
    /// Journals deliveries in `dir` and dies with SIGKILL (`recovery.rs`).
    RecoveryFill {
        dir: PathBuf,
    },
    /// Sends what `RecoveryFill` left in `dir`, timed.
    Recovery {
        dir: PathBuf,
    },
    /// Live events fanned out to websocket clients (`live.rs`).
    Websockets,
}

impl Scenario {
    pub fn parse(name: &str, dir: Option<PathBuf>, pace: Option<f64>) -> Result<Scenario, String> {
        let need_dir = || {
            dir.clone()
                .ok_or_else(|| format!("--scenario {name} needs --dir"))
        };
        Ok(match name {
            "ceiling" => Scenario::Ceiling,
            "fault" => Scenario::Fault { pace },
            "matching" => Scenario::Matching,
            "attempts" => Scenario::Attempts { tmpfs: false },
            "disk" => Scenario::Disk,
            "attempts-tmpfs" => Scenario::Attempts { tmpfs: true },
            "build-store" => Scenario::BuildStore { dir: need_dir()? },
            "startup" => Scenario::Startup { dir: need_dir()? },
            "recovery-fill" => Scenario::RecoveryFill { dir: need_dir()? },
            "recovery" => Scenario::Recovery { dir: need_dir()? },
            "ws-1000" => Scenario::Websockets,
            other => {
                let (base, log_successes) = match other.strip_suffix("-nolog") {
                    Some(base) => (base, false),
                    None => (other, true),
                };
                let (t, f) = base
                    .split_once('-')
                    .ok_or_else(|| format!("unknown scenario {other:?}"))?;
                let transport = match t {
                    "inproc" => Transport::InProcess,
                    "http" => Transport::Http,
                    "amqp" => Transport::Amqp,
                    _ => return Err(format!("unknown scenario {other:?}")),
                };
                let fanout = f
                    .parse()
                    .map_err(|_| format!("unknown scenario {other:?}"))?;
                Scenario::Engine {
                    transport,
                    fanout,
                    log_successes,
                }
            }
        })
    }

    pub fn name(&self) -> String {
        match self {
            Scenario::Ceiling => "ceiling".into(),
            Scenario::Engine {
                transport,
                fanout,
                log_successes,
            } => format!(
                "{}-{fanout}{}",
                transport.name(),
                if *log_successes { "" } else { "-nolog" }
            ),
            Scenario::Fault { .. } => "fault".into(),
            Scenario::Matching => "matching".into(),
            Scenario::Disk => "disk".into(),
            Scenario::Attempts { tmpfs: false } => "attempts".into(),
            Scenario::Attempts { tmpfs: true } => "attempts-tmpfs".into(),
            Scenario::BuildStore { .. } => "build-store".into(),
            Scenario::Startup { .. } => "startup".into(),
            Scenario::RecoveryFill { .. } => "recovery-fill".into(),
            Scenario::Recovery { .. } => "recovery".into(),
            Scenario::Websockets => "ws-1000".into(),
        }
    }
}

/// Runs one scenario in this process and returns its result, with the process's peak RSS.
pub fn run(scenario: &Scenario, plan: &Plan) -> Result<Value, BoxError> {
    let cpu = rss::CpuSample::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut result = runtime.block_on(async {
        match scenario {
            Scenario::Ceiling => ceiling(plan).await,
            Scenario::Engine {
                transport,
                fanout,
                log_successes,
            } => engine(plan, *transport, *fanout, *log_successes).await,
            Scenario::Fault { pace } => fault(plan, *pace).await,
            Scenario::Matching => matching(plan),
            Scenario::Disk => disk(plan).await,
            Scenario::Attempts { tmpfs } => attempts(plan, *tmpfs).await,
            Scenario::BuildStore { dir } => build_store(plan, dir).await,
            Scenario::Startup { dir } => startup(plan, dir).await,
            Scenario::RecoveryFill { dir } => {
                crate::recovery::fill(plan.accounts, plan.recovery_pending, dir).await
            }
            Scenario::Recovery { dir } => crate::recovery::recover(dir, plan.drain * 4).await,
            Scenario::Websockets => crate::live::websockets(plan).await,
        }
    })?;
    result["scenario"] = json!(scenario.name());
    result["peak_rss_kib"] = json!(rss::peak_kib());
    let others = cpu
        .zip(rss::CpuSample::now())
        .and_then(|(a, b)| b.others_since(&a));
    result["others_cpu"] = json!(others);
    // The engine's tasks are still running; the caller exits the process rather than wait.
    runtime.shutdown_background();
    Ok(result)
}

/// A store with one reseller, `plan.accounts` customers below it and `fanout` channel_create
/// hooks each, an engine started on it, and the receiver its hooks point at.
struct Rig {
    engine: Engine,
    store: Arc<dyn Store>,
    boot: Bootstrap,
    accounts: Vec<AccountId>,
    fanout: usize,
    arrivals: Arc<Arrivals>,
    journal: Option<Arc<FileJournal>>,
    _dir: TempDir,
}

/// How a rig's hooks and settings are set up.
#[derive(Clone, Copy)]
struct Setup {
    fanout: usize,
    /// Hook 0 of every account points at a destination that never answers, and the disabler
    /// is off so that it keeps receiving traffic for the whole run.
    dead: bool,
    /// KAZOO's `log_successful_attempts`: an attempt document for every success too.
    log_successes: bool,
}

async fn rig(plan: &Plan, setup: Setup) -> Result<Rig, BoxError> {
    let Setup {
        fanout,
        dead,
        log_successes,
    } = setup;
    let (addr, arrivals) = receiver::counting().await?;
    let dead_addr = match dead {
        true => Some(receiver::black_hole().await?),
        false => None,
    };
    // On the real disk: attempt batches pay for their fsync as they would in production.
    let dir = tempfile::Builder::new()
        .prefix("webhooks-loadtest-")
        .tempdir()?;
    let store = open_store(plan, dir.path()).await?;
    let settings = json!({"log_successful_attempts": log_successes, "disable_disabler": dead});
    store
        .save_system_config(
            "webhooks",
            Doc(settings.as_object().cloned().unwrap_or_default()),
        )
        .await?;
    let boot = webhooks_api::bootstrap(store.as_ref(), Some(API_KEY)).await?;
    let accounts =
        fixture::save_customers(store.as_ref(), &boot.master_account_id, plan.accounts).await?;
    for (i, customer) in accounts.iter().enumerate() {
        for j in 0..fanout {
            let to = match dead_addr {
                Some(d) if j == 0 => d,
                _ => addr,
            };
            let id = fixture::hook_id((i * fanout + j) as u64);
            let uri = format!("http://{to}/{i}/{j}");
            let doc = fixture::hook_doc(&id, customer, "channel_create", &uri, false);
            store.save_hook(doc).await?;
        }
    }
    let registry = fixture::registry();
    // The receivers listen on loopback, which the SSRF guard refuses by default.
    let config = EngineConfig {
        cluster_id: Some(boot.cluster_id.clone()),
        destinations: DestinationPolicy::loopback_allowed(),
        ..EngineConfig::default()
    };
    // At least once, as the daemon runs by default: the journal on the same real disk.
    let journal = match plan.at_most_once {
        true => None,
        false => Some(Arc::new(FileJournal::open(
            &dir.path().join("journal"),
            JournalConfig::default(),
        )?)),
    };
    let engine = Engine::start_with_journal(
        store.clone(),
        registry,
        config,
        journal.clone().map(|j| j as Arc<dyn DeliveryJournal>),
    )
    .await?;
    Ok(Rig {
        engine,
        store,
        boot,
        accounts,
        fanout,
        arrivals,
        journal,
        _dir: dir,
    })
}

/// Where the harness's events go in.
enum Inlet {
    Engine(Engine),
    Api(Box<Api>),
    /// A publisher of its own on the broker, with confirms, as a KAZOO node publishes.
    Broker(Box<Broker>),
}

/// `POST /v2/events` at `url` with the master's token.
struct Api {
    client: HttpSender,
    url: String,
    token: String,
}

struct Broker {
    channel: lapin::Channel,
    /// The engine's consumer; it runs as long as this is kept.
    _transport: webhooks_amqp::AmqpHandle,
    /// Deleted (with everything in it) when dropped.
    _vhost: Vhost,
}

/// Publishes stamped CHANNEL_CREATE events, accounts in turn.
struct Source {
    inlet: Inlet,
    events: CallEvents,
    accounts: Vec<AccountId>,
    /// Deliveries per event, for inlets that do not report them.
    per_event: usize,
}

impl Source {
    /// Publishes event `k`; returns how many deliveries it made.
    async fn publish(&self, k: u64) -> Result<usize, String> {
        let account = &self.accounts[k as usize % self.accounts.len()];
        let call_id = clock::stamp(clock::now_ns());
        match &self.inlet {
            Inlet::Engine(engine) => engine
                .publish(self.events.event(account, call_id))
                .await
                .map(|r| r.dispatched)
                .map_err(|e| e.to_string()),
            Inlet::Api(api) => {
                let Api { client, url, token } = api.as_ref();
                let body = serde_json::to_string(&self.events.json(account, call_id))
                    .map_err(|e| e.to_string())?;
                let request = HttpRequest {
                    method: HttpVerb::Post,
                    url: url.clone(),
                    headers: vec![
                        ("X-Auth-Token".into(), token.clone()),
                        ("Content-Type".into(), "application/json".into()),
                    ],
                    body,
                };
                match client.send(&request).await {
                    Outcome::Response {
                        status: 202, body, ..
                    } => serde_json::from_str::<Value>(&body)
                        .ok()
                        .and_then(|v| v["data"]["dispatched"].as_u64())
                        .map(|n| n as usize)
                        .ok_or_else(|| format!("unexpected reply {body}")),
                    other => Err(format!("{other:?}").chars().take(300).collect()),
                }
            }
            Inlet::Broker(broker) => {
                let key = webhooks_amqp::call_event_key("CHANNEL_CREATE", &call_id);
                let body = serde_json::to_vec(&self.events.json(account, call_id))
                    .map_err(|e| e.to_string())?;
                let properties =
                    BasicProperties::default().with_content_type("application/json".into());
                let confirm = broker
                    .channel
                    .basic_publish(
                        webhooks_amqp::exchanges::CALL_EVENTS.into(),
                        key.as_str().into(),
                        BasicPublishOptions::default(),
                        &body,
                        properties,
                    )
                    .await
                    .map_err(|e| e.to_string())?
                    .await
                    .map_err(|e| e.to_string())?;
                match confirm.is_ack() {
                    // The engine's answer stays in the transport; every event of the run
                    // reaches the same number of hooks.
                    true => Ok(self.per_event),
                    false => Err("the broker refused the event".into()),
                }
            }
        }
    }
}

/// Serves the API over the rig's store and engine on a free port; returns the events url and
/// a master token.
async fn serve_api(rig: &Rig) -> Result<(String, String), BoxError> {
    let store = rig.store.clone();
    let state = ApiState::new(
        store,
        rig.engine.hooks().clone(),
        &rig.boot.signing_secret,
        ApiConfig::default(),
    )
    .with_events(Arc::new(rig.engine.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = webhooks_api::router(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let client = HttpSender::new(&SenderConfig {
        destinations: Arc::new(DestinationPolicy::loopback_allowed()),
        ..SenderConfig::default()
    })?;
    let auth = HttpRequest {
        method: HttpVerb::Put,
        url: format!("http://{addr}/v2/api_auth"),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: json!({"data": {"api_key": API_KEY}}).to_string(),
    };
    let token = match client.send(&auth).await {
        Outcome::Response { body, .. } => serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["auth_token"].as_str().map(str::to_owned)),
        Outcome::Transport { .. } => None,
    }
    .ok_or("no auth token from PUT /v2/api_auth")?;
    Ok((format!("http://{addr}/v2/events"), token))
}

async fn source(rig: &Rig, transport: Transport, posters: usize) -> Result<Source, BoxError> {
    let inlet = match transport {
        Transport::InProcess => Inlet::Engine(rig.engine.clone()),
        Transport::Http => {
            let (url, token) = serve_api(rig).await?;
            let client = HttpSender::new(&SenderConfig {
                pool_max_idle_per_host: posters,
                request_timeout: Duration::from_secs(60),
                // The API listens on loopback, which the SSRF guard refuses by default.
                destinations: Arc::new(DestinationPolicy::loopback_allowed()),
                ..SenderConfig::default()
            })?;
            Inlet::Api(Box::new(Api { client, url, token }))
        }
        Transport::Amqp => {
            let vhost = Vhost::create("loadtest").await;
            let mut config = AmqpConfig::new(vhost.url());
            config.node = "webhooks-loadtest".into();
            if rig.journal.is_none() {
                // As the daemon at most once: acknowledged once taken, not held.
                config.hold_until_settled = Duration::ZERO;
            }
            let engine = Arc::new(rig.engine.clone());
            let transport = AmqpTransport::start(
                config,
                rig.engine.hooks().registry().clone(),
                engine.clone(),
                engine,
            )
            .await?;
            let connection =
                lapin::Connection::connect(&vhost.url(), ConnectionProperties::default()).await?;
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            Inlet::Broker(Box::new(Broker {
                channel,
                _transport: transport,
                _vhost: vhost,
            }))
        }
    };
    Ok(Source {
        inlet,
        events: CallEvents::new(),
        accounts: rig.accounts.clone(),
        per_event: rig.fanout,
    })
}

/// Deliveries published but not arrived beyond which saturating publishers wait. The engine
/// holds about this many itself before it pushes back (its intake queue and one destination's
/// backlog); a broker has no such bound and would otherwise pile up a queue that outlives the
/// phase.
const MAX_OUTSTANDING: u64 = 16_384;

/// One stretch of publishing.
#[derive(Clone, Copy)]
struct Phase {
    duration: Duration,
    /// Events per second, or as fast as they are taken.
    pace: Option<f64>,
    /// Concurrent publishers.
    workers: usize,
    max_events: u64,
    drain: Duration,
    /// The share of deliveries expected to arrive (the fault mix's dead hooks never do).
    arriving: f64,
}

#[derive(Debug, Default)]
struct PhaseResult {
    published: u64,
    dispatched: u64,
    failed: u64,
    first_error: Option<String>,
    arrived: u64,
    expected: u64,
    /// From the first publish to the last arrival.
    seconds: f64,
    /// Deliveries arrived per second.
    rate: f64,
    latency_ns: [Option<u64>; 3],
    /// This process's share of the machine's CPU during the phase.
    cpu: Option<f64>,
}

impl PhaseResult {
    fn to_json(&self) -> Value {
        json!({
            "published": self.published, "dispatched": self.dispatched,
            "failed": self.failed, "first_error": self.first_error,
            "arrived": self.arrived, "expected": self.expected,
            "seconds": self.seconds, "rate": self.rate,
            "p50_ns": self.latency_ns[0], "p99_ns": self.latency_ns[1],
            "p999_ns": self.latency_ns[2], "cpu": self.cpu,
        })
    }
}

/// Runs one phase. It ends when the deliveries have arrived *and* the engine has written their
/// attempt documents: a rate that left a backlog of unwritten attempts behind would overstate
/// what the engine sustains, and the next phase would start while the backlog is still being
/// written.
async fn run_phase(
    source: &Arc<Source>,
    arrivals: &Arc<Arrivals>,
    engine: &Engine,
    phase: Phase,
) -> PhaseResult {
    arrivals.reset();
    let cpu = rss::CpuSample::now();
    let start_ns = clock::now_ns();
    let start = tokio::time::Instant::now();
    let deadline = start + phase.duration;
    let next = Arc::new(AtomicU64::new(0));
    let published = Arc::new(AtomicU64::new(0));
    let dispatched = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let mut workers = JoinSet::new();
    for _ in 0..phase.workers {
        let (source, next) = (source.clone(), next.clone());
        let (published, dispatched) = (published.clone(), dispatched.clone());
        let (failed, first_error) = (failed.clone(), first_error.clone());
        let arrivals = arrivals.clone();
        workers.spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= phase.max_events {
                    break;
                }
                match phase.pace {
                    Some(rate) => {
                        let due = start + Duration::from_secs_f64(k as f64 / rate);
                        if due >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(due).await;
                    }
                    None => loop {
                        if tokio::time::Instant::now() >= deadline {
                            return;
                        }
                        let due = dispatched.load(Ordering::Relaxed) as f64 * phase.arriving;
                        if (due as u64).saturating_sub(arrivals.count()) < MAX_OUTSTANDING {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    },
                }
                published.fetch_add(1, Ordering::Relaxed);
                match source.publish(k).await {
                    Ok(n) => {
                        dispatched.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        first_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                    }
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let dispatched = dispatched.load(Ordering::Relaxed);
    let expected = (dispatched as f64 * phase.arriving).round() as u64;
    let drain_until = tokio::time::Instant::now() + phase.drain;
    while arrivals.count() < expected && tokio::time::Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let arrived = arrivals.count();
    let mut end_ns = arrivals.last_ns();
    // Attempts only: in the fault mix the dead destination's lane keeps a queue for as long as
    // its requests take to time out, which is not the healthy deliveries' business.
    let busy = |l: webhooks_engine::Load| l.attempts_pending > 0;
    if busy(engine.load()) {
        while busy(engine.load()) && tokio::time::Instant::now() < drain_until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        end_ns = end_ns.max(clock::now_ns());
    }
    let seconds = end_ns.saturating_sub(start_ns) as f64 / 1e9;
    let first_error = first_error.lock().unwrap_or_else(|p| p.into_inner()).take();
    PhaseResult {
        published: published.load(Ordering::Relaxed),
        dispatched,
        failed: failed.load(Ordering::Relaxed),
        first_error,
        arrived,
        expected,
        seconds,
        rate: if seconds > 0.0 {
            arrived as f64 / seconds
        } else {
            0.0
        },
        latency_ns: [0.5, 0.99, 0.999].map(|q| arrivals.latency.quantile(q)),
        cpu: cpu
            .zip(rss::CpuSample::now())
            .and_then(|(a, b)| b.own_since(&a)),
    }
}

/// Publishers for a transport: enough to keep the engine busy, or (paced) to keep up with the
/// schedule while each waits for its own request.
fn workers(plan: &Plan, transport: Transport, paced: bool) -> usize {
    match (transport, paced) {
        // At least once, each publish waits for the journal's commit (about a millisecond: one
        // sync per `commit_every` serves every publish waiting), so deliveries/s are publishes
        // in flight over that wait: it takes a few hundred in flight to saturate the engine,
        // as the AMQP consumer has (one per unacknowledged message, `--amqp-prefetch`). At
        // most once, two publishers saturate it.
        (Transport::InProcess, false) if !plan.at_most_once => 256,
        (Transport::InProcess, true) if !plan.at_most_once => 64,
        (Transport::InProcess, false) => 2,
        (Transport::InProcess, true) => 8,
        (Transport::Http, false) => 32,
        (Transport::Http, true) => 128,
        // Each waits for the broker's confirm: in-flight publishes, as a busy KAZOO has.
        (Transport::Amqp, false) => 64,
        (Transport::Amqp, true) => 128,
    }
}

fn phase(plan: &Plan, duration: Duration, pace: Option<f64>, workers: usize) -> Phase {
    Phase {
        duration,
        pace,
        workers,
        max_events: plan.max_events,
        drain: plan.drain,
        arriving: 1.0,
    }
}

/// Why the RabbitMQ rows cannot run here, if they cannot: they need the broker the tests use
/// and `rabbitmqctl` to give the run a vhost of its own.
fn broker_missing() -> Option<String> {
    let broker = webhooks_testkit::rabbitmq::BROKER;
    let addr: std::net::SocketAddr = broker.parse().ok()?;
    if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
        return Some(format!("no RabbitMQ on {broker}"));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if !std::env::split_paths(&path).any(|d| d.join("rabbitmqctl").is_file()) {
        return Some("no rabbitmqctl to create a vhost with".into());
    }
    None
}

/// Deliveries/s at saturation, then latency at half that rate.
async fn engine(
    plan: &Plan,
    transport: Transport,
    fanout: usize,
    log_successes: bool,
) -> Result<Value, BoxError> {
    if let (Transport::Amqp, Some(why)) = (transport, broker_missing()) {
        return Ok(json!({"kind": "skipped", "reason": why}));
    }
    let setup = Setup {
        fanout,
        dead: false,
        log_successes,
    };
    let rig = rig(plan, setup).await?;
    let paced_workers = workers(plan, transport, true);
    let source = Arc::new(source(&rig, transport, paced_workers).await?);
    let busy = workers(plan, transport, false);
    run_phase(
        &source,
        &rig.arrivals,
        &rig.engine,
        phase(plan, plan.warmup, None, busy),
    )
    .await;
    let peak = run_phase(
        &source,
        &rig.arrivals,
        &rig.engine,
        phase(plan, plan.saturate, None, busy),
    )
    .await;
    if peak.arrived == 0 {
        // A row that delivered nothing measured nothing: fail it rather than report zeros
        // (and pace the next phase at zero events a second).
        return Err(format!(
            "nothing arrived at peak load; first error: {}",
            peak.first_error.as_deref().unwrap_or("none")
        )
        .into());
    }
    let half = peak.rate / 2.0;
    let paced = phase(plan, plan.paced, Some(half / fanout as f64), paced_workers);
    let paced = run_phase(&source, &rig.arrivals, &rig.engine, paced).await;
    // The process exits without running destructors: drop the source (and with it a broker
    // vhost) here.
    drop(source);
    let stats = rig.engine.stats();
    Ok(json!({
        "kind": "engine", "transport": transport.name(), "fanout": fanout,
        "peak": peak.to_json(), "paced": paced.to_json(), "paced_target": half,
        "attempts_written": stats.attempts_written,
        "deliveries_succeeded": stats.deliveries_succeeded,
        "tries_failed": stats.tries_failed,
        "journal": rig.journal.as_ref().map(|j| {
            let s = j.stats();
            json!({"commits": s.commits, "records": s.records, "bytes": s.bytes,
                   "write_seconds": s.write_seconds})
        }),
    }))
}

/// The in-process, 10-hook run with one hook in ten dead: healthy deliveries/s at saturation,
/// and latency of healthy deliveries at `pace` (the clean run's half peak) when given.
async fn fault(plan: &Plan, pace: Option<f64>) -> Result<Value, BoxError> {
    const FANOUT: usize = 10;
    let setup = Setup {
        fanout: FANOUT,
        dead: true,
        log_successes: true,
    };
    let rig = rig(plan, setup).await?;
    let source = Arc::new(source(&rig, Transport::InProcess, 8).await?);
    let healthy = (FANOUT - 1) as f64 / FANOUT as f64;
    let busy = workers(plan, Transport::InProcess, false);
    let measure = |duration, pace, workers| Phase {
        arriving: healthy,
        ..phase(plan, duration, pace, workers)
    };
    run_phase(
        &source,
        &rig.arrivals,
        &rig.engine,
        measure(plan.warmup, None, busy),
    )
    .await;
    let peak = run_phase(
        &source,
        &rig.arrivals,
        &rig.engine,
        measure(plan.fault, None, busy),
    )
    .await;
    let paced = match pace {
        Some(deliveries) => {
            let events = deliveries / FANOUT as f64;
            let p = measure(
                plan.paced,
                Some(events),
                workers(plan, Transport::InProcess, true),
            );
            Some(
                run_phase(&source, &rig.arrivals, &rig.engine, p)
                    .await
                    .to_json(),
            )
        }
        None => None,
    };
    let stats = rig.engine.stats();
    Ok(json!({
        "kind": "fault", "fanout": FANOUT, "healthy_share": healthy,
        "peak": peak.to_json(), "paced": paced,
        "paced_target": pace.map(|p| p * healthy),
        "attempts_written": stats.attempts_written, "tries_failed": stats.tries_failed,
        "deliveries_failed": stats.deliveries_failed,
    }))
}

/// The request the engine sends for one CHANNEL_CREATE to a channel_create hook at `addr`.
fn sample_request(addr: std::net::SocketAddr) -> Result<HttpRequest, BoxError> {
    let account = fixture::account_id(2);
    let doc = fixture::hook_doc(
        &fixture::hook_id(0),
        &account,
        "channel_create",
        &format!("http://{addr}/0/0"),
        false,
    );
    let hook = Hook::from_doc(&doc, |_| true)?;
    let event = CallEvents::new().event(&account, clock::stamp(0));
    let dispatch = webhooks_modules::ChannelCreate
        .handle_event(&event, &Only(Arc::new(hook)))?
        .pop()
        .ok_or("no dispatch")?;
    let delivery =
        Delivery::from_dispatch(dispatch, Some("0123456789abcdef"), "0a1b2c3d4e".into(), 1)
            .ok_or("filtered out")?;
    Ok(Arc::unwrap_or_clone(delivery.request))
}

/// The engine's HTTP client sending the engine's request to the counting receiver, no engine in
/// between, 64 in flight.
async fn ceiling(plan: &Plan) -> Result<Value, BoxError> {
    let (addr, arrivals) = receiver::counting().await?;
    let request = Arc::new(sample_request(addr)?);
    let client = HttpSender::new(&SenderConfig {
        pool_max_idle_per_host: CEILING_IN_FLIGHT,
        // The receiver listens on loopback, which the SSRF guard refuses by default.
        destinations: Arc::new(DestinationPolicy::loopback_allowed()),
        ..SenderConfig::default()
    })?;
    let mut result = json!({"kind": "ceiling", "in_flight": CEILING_IN_FLIGHT});
    for (name, duration) in [("warmup", plan.warmup), ("peak", plan.saturate)] {
        arrivals.reset();
        let cpu = rss::CpuSample::now();
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut tasks = JoinSet::new();
        for _ in 0..CEILING_IN_FLIGHT {
            let (client, request) = (client.clone(), request.clone());
            let (ok, failed) = (ok.clone(), failed.clone());
            tasks.spawn(async move {
                let mut n = 0u64;
                while start.elapsed() < duration && n < plan_cap(duration) {
                    n += 1;
                    match client.send(&request).await.is_success() {
                        true => ok.fetch_add(1, Ordering::Relaxed),
                        false => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let seconds = start.elapsed().as_secs_f64();
        let ok = ok.load(Ordering::Relaxed);
        if ok == 0 {
            // Every ratio of the run is taken against this figure: fail rather than report 0.
            return Err(format!("the ceiling's {name} phase had no successful request").into());
        }
        result[name] = json!({
            "requests": ok, "failed": failed.load(Ordering::Relaxed),
            "arrived": arrivals.count(), "seconds": seconds, "rate": ok as f64 / seconds,
            "cpu": cpu.zip(rss::CpuSample::now()).and_then(|(a, b)| b.own_since(&a)),
        });
    }
    Ok(result)
}

/// Requests one ceiling worker sends at most in `d` (a count bound on top of the time bound).
fn plan_cap(d: Duration) -> u64 {
    d.as_secs_f64().ceil() as u64 * 50_000
}

/// `HookFinder::find` over a table of `plan.matching_hooks` hooks, customers picked at random.
fn matching(plan: &Plan) -> Result<Value, BoxError> {
    let before = rss::current_kib().unwrap_or(0);
    let built = Instant::now();
    let (table, population, _) = fixture::hook_table(plan.matching_hooks, plan.matching_accounts);
    let build_ms = built.elapsed().as_secs_f64() * 1e3;
    let after = rss::current_kib().unwrap_or(0);
    let customers = population.customers();
    // The ids themselves, side by side: an event's account id is in hand (just parsed) when
    // the table is asked, so reaching it must not cost the lookup a cache miss of its own.
    let picks: Vec<AccountId> = (0..plan.lookups.min(1 << 20) as u64)
        .map(|i| customers[fixture::pick(i, customers.len())].id.clone())
        .collect();
    let mut found = 0usize;
    let mut measure = |n: usize, picks: &[AccountId]| {
        let t = Instant::now();
        for i in 0..n {
            let snapshot = table.snapshot();
            let hooks = snapshot.find("channel_create", &picks[i % picks.len()]);
            found += std::hint::black_box(hooks).len();
        }
        t.elapsed().as_nanos() as f64 / n as f64
    };
    measure(plan.lookups / 10, &picks);
    let ns = measure(plan.lookups, &picks);
    // The same lookups over 64 accounts only, whose entries stay in the CPU's caches: the
    // difference from `ns` is what waiting for memory costs.
    let ns_cached = measure(plan.lookups, &picks[..64]);
    Ok(json!({
        "kind": "matching", "hooks": table.snapshot().hook_count(),
        "accounts": population.accounts.len(), "lookups": plan.lookups,
        "ns_per_event": ns, "ns_per_event_cached": ns_cached,
        "hooks_found_per_event": found as f64 / (2 * plan.lookups + plan.lookups / 10) as f64,
        "build_ms": build_ms, "table_rss_kib": after.saturating_sub(before),
    }))
}

/// The disk's own rates, in a scratch directory on the real disk.
async fn disk(plan: &Plan) -> Result<Value, BoxError> {
    let dir = scratch_dir(false)?;
    let disk = plan.disk;
    let path = dir.path().to_owned();
    Ok(tokio::task::spawn_blocking(move || crate::disk::measure(&path, disk)).await??)
}

/// `save_attempts` alone, as the engine's attempt writer calls it under load: full batches of
/// the document a successful delivery of [`sample_request`] leaves, for the accounts and hooks
/// of the 10-hook engine rows.
async fn attempts(plan: &Plan, tmpfs: bool) -> Result<Value, BoxError> {
    let batch_size = EngineConfig::default().attempt_batch;
    let dir = scratch_dir(tmpfs)?;
    let store = EmbeddedStore::open(dir.path())?;
    let addr: std::net::SocketAddr = "127.0.0.1:8000".parse()?;
    let request = sample_request(addr)?;
    let doc = fixture::hook_doc(
        &fixture::hook_id(0),
        &fixture::account_id(2),
        "channel_create",
        &request.url,
        false,
    );
    let delivery = Delivery {
        hook: Arc::new(Hook::from_doc(&doc, |_| true)?),
        event_id: "0a1b2c3d4e".into(),
        webhook_id: webhooks_core::delivery::webhook_id(1, &fixture::hook_id(0)),
        request: Arc::new(request),
        tries: 1,
        replay: false,
    };
    let outcome = Outcome::Response {
        status: 200,
        headers: vec![
            ("content-length".into(), "0".into()),
            ("date".into(), "Thu, 01 Jan 2026 00:00:00 GMT".into()),
        ],
        body: String::new(),
    };
    // The engine's order: events name the accounts in turn, each reaches all ten hooks of its
    // account, so a batch spreads over many accounts and hooks (and index pages).
    const FANOUT: u64 = 10;
    let accounts = plan.accounts as u64;
    let mut written = 0u64;
    let mut busy = Duration::ZERO;
    let run = Instant::now();
    while run.elapsed() < plan.saturate && written < plan.max_events {
        let now = webhooks_core::time::now_unix();
        let one = webhooks_core::delivery::attempt_doc(&delivery, &outcome, 3, now);
        let batch: Arc<[Doc]> = (written..written + batch_size as u64)
            .map(|n| {
                let account = (n / FANOUT) % accounts;
                let mut doc = one.clone();
                doc.set("pvt_account_id", fixture::account_id(2 + account).as_str());
                doc.set("hook_id", fixture::hook_id(account * FANOUT + n % FANOUT));
                doc
            })
            .collect();
        let t = Instant::now();
        store.save_attempts(batch).await?;
        busy += t.elapsed();
        written += batch_size as u64;
    }
    let doc_json = serde_json::to_vec(&webhooks_core::delivery::attempt_doc(
        &delivery, &outcome, 3, 0,
    ))?;
    let doc_bytes = doc_json.len();
    // What the embedded store keeps of it (it stores attempts LZ4-compressed).
    let doc_bytes_stored = lz4_flex::compress_prepend_size(&doc_json).len();
    Ok(json!({
        "kind": "attempts", "tmpfs": tmpfs, "batch": batch_size, "written": written,
        "seconds": busy.as_secs_f64(), "rate": written as f64 / busy.as_secs_f64(),
        "doc_bytes": doc_bytes, "doc_bytes_stored": doc_bytes_stored,
    }))
}

/// The store a scenario runs on: the embedded store in `dir`, or, with `plan.couchdb`, CouchDB
/// databases of this run's own (prefixed with a name made from `dir`, so `build-store` and
/// `startup`, two processes, meet on the same ones).
async fn open_store(plan: &Plan, dir: &std::path::Path) -> Result<Arc<dyn Store>, BoxError> {
    let Some(url) = &plan.couchdb else {
        return Ok(Arc::new(EmbeddedStore::open(dir)?));
    };
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let prefix: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    let config = CouchConfig {
        prefix: format!("lt{prefix}_"),
        ..CouchConfig::new(url.clone())
    };
    Ok(Arc::new(CouchStore::connect(config).await?))
}

/// Writes `plan.startup_hooks` hooks (ten per account) into the store of `dir`.
async fn build_store(plan: &Plan, dir: &std::path::Path) -> Result<Value, BoxError> {
    let store = open_store(plan, dir).await?;
    let population = Population::new(plan.startup_hooks / 10);
    let mut writes = Writes::new(&store);
    for a in &population.accounts {
        let doc = fixture::account_doc(a);
        writes
            .spawn(|store| async move { store.save_account(doc).await.map(drop) })
            .await?;
    }
    writes.finish().await?;
    let types = fixture::registry().hook_names();
    let docs = population
        .hook_docs(10, &types, |a, j| {
            format!("http://hooks{}.example.test/in/{j}", a % 64)
        })
        .take(plan.startup_hooks);
    let mut n = 0;
    for doc in docs {
        writes
            .spawn(|store| async move { store.save_hook(doc).await.map(drop) })
            .await?;
        n += 1;
    }
    writes.finish().await?;
    Ok(json!({"kind": "build-store", "hooks": n, "accounts": population.accounts.len()}))
}

/// Store writes with up to [`Writes::IN_FLIGHT`] at once: one at a time, a build on CouchDB
/// spends its minutes waiting on round trips (the build is not what is measured).
struct Writes {
    store: Arc<dyn Store>,
    running: tokio::task::JoinSet<Result<(), webhooks_core::StoreError>>,
}

impl Writes {
    const IN_FLIGHT: usize = 32;

    fn new(store: &Arc<dyn Store>) -> Writes {
        Writes {
            store: store.clone(),
            running: tokio::task::JoinSet::new(),
        }
    }

    async fn spawn<F, Fut>(&mut self, write: F) -> Result<(), BoxError>
    where
        F: FnOnce(Arc<dyn Store>) -> Fut,
        Fut: std::future::Future<Output = Result<(), webhooks_core::StoreError>> + Send + 'static,
    {
        if self.running.len() >= Self::IN_FLIGHT {
            if let Some(done) = self.running.join_next().await {
                done??;
            }
        }
        self.running.spawn(write(self.store.clone()));
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), BoxError> {
        while let Some(done) = self.running.join_next().await {
            done??;
        }
        Ok(())
    }
}

/// `Engine::start` on the store [`build_store`] wrote: time to a loaded table, and resident
/// memory added per hook.
async fn startup(plan: &Plan, dir: &std::path::Path) -> Result<Value, BoxError> {
    let registry = fixture::registry();
    let before = rss::current_kib().unwrap_or(0);
    let started = Instant::now();
    let store = open_store(plan, dir).await?;
    let engine = Engine::start(store, registry, EngineConfig::default()).await?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let after = rss::current_kib().unwrap_or(0);
    let hooks = engine.hooks().snapshot().hook_count().max(1);
    // What stays once the allocator hands freed pages back: the table itself, without the
    // documents the load read and dropped.
    let kept = rss::trim()
        .and_then(|()| rss::current_kib())
        .unwrap_or(after);
    let per_hook = |kib: u64| (kib.saturating_sub(before) * 1024) as f64 / hooks as f64;
    Ok(json!({
        "kind": "startup", "hooks": hooks, "ms": ms,
        "rss_before_kib": before, "rss_after_kib": after, "rss_trimmed_kib": kept,
        "bytes_per_hook": per_hook(after), "bytes_per_hook_trimmed": per_hook(kept),
    }))
}
