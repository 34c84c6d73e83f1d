//! The recovery row (issue 13): how long a fresh engine takes to send everything a killed
//! one left in its delivery journal.
//!
//! `recovery-fill` builds a store (a reseller, `accounts` customers with one
//! channel_create hook each, all pointing at one receiver port it picks and keeps in
//! `<dir>/port`), journals `pending` deliveries of KAZOO's CHANNEL_CREATE
//! sample, each made durable, then kills itself with SIGKILL: the journal is exactly what a
//! daemon killed with that many deliveries pending leaves. `recovery` then starts a receiver
//! on that port, opens the store and the journal, starts the engine, and times until every
//! pending delivery has arrived.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use webhooks_core::delivery::Delivery;
use webhooks_core::pending::{DeliveryJournal, JournalEntry};
use webhooks_core::store::{ConfigStore, HookStore};
use webhooks_core::{Doc, Hook, WebhookModule};
use webhooks_engine::{Engine, EngineConfig};
use webhooks_store::{EmbeddedStore, FileJournal, JournalConfig};

use crate::fixture::{self, CallEvents, Only};
use crate::{clock, receiver};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Deliveries journaled per append (each append waits for its commit).
const APPEND: usize = 1000;

/// Journals `pending` deliveries to the hooks of `accounts` customers, then SIGKILLs itself.
pub async fn fill(accounts: usize, pending: usize, dir: &Path) -> Result<Value, BoxError> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    std::fs::write(dir.join("port"), port.to_string())?;
    let store = EmbeddedStore::open(dir)?;
    store
        .save_system_config("webhooks", Doc(Default::default()))
        .await?;
    let boot = webhooks_api::bootstrap(&store, Some("recovery")).await?;
    let customers = fixture::save_customers(&store, &boot.master_account_id, accounts).await?;
    let mut hooks = Vec::with_capacity(accounts);
    for (i, customer) in customers.iter().enumerate() {
        let uri = format!("http://127.0.0.1:{port}/{i}/0");
        let doc = fixture::hook_doc(
            &fixture::hook_id(i as u64),
            customer,
            "channel_create",
            &uri,
            false,
        );
        let saved = store.save_hook(doc).await?;
        hooks.push(Arc::new(Hook::from_doc(&saved, |_| true)?));
    }
    let journal = FileJournal::open(&dir.join("journal"), JournalConfig::default())?;
    let events = CallEvents::new();
    let mut written = 0;
    while written < pending {
        let n = APPEND.min(pending - written);
        let first = journal.new_ids(n);
        let mut entries = Vec::with_capacity(n);
        for (k, id) in (first..first + n as u64).enumerate() {
            let hook = &hooks[(written + k) % hooks.len()];
            let event = events.event(&hook.account_id, clock::stamp((written + k) as u64));
            let dispatch = webhooks_modules::ChannelCreate
                .handle_event(&event, &Only(hook.clone()))?
                .pop()
                .ok_or("no dispatch")?;
            let key = webhooks_core::delivery::event_key(&event);
            let d =
                Delivery::from_dispatch(dispatch, Some(&boot.cluster_id), "0a1b2c3d4e".into(), key)
                    .ok_or("filtered out")?;
            entries.push(JournalEntry::Accepted(
                webhooks_core::pending::PendingDelivery {
                    id,
                    webhook_id: d.webhook_id,
                    event_id: d.event_id,
                    hook_id: hook.id.clone(),
                    account_id: hook.account_id.clone(),
                    request: d.request,
                    tries: 0,
                    due_unix_ms: 0,
                },
            ));
        }
        journal.append(entries).await?;
        written += n;
    }
    println!(
        "RESULT {}",
        json!({"kind": "recovery-fill", "pending": written, "port": port})
    );
    // As a daemon killed mid-stream: no close, no destructor.
    let _ = std::process::Command::new("kill")
        .args(["-9", &std::process::id().to_string()])
        .status();
    std::thread::sleep(Duration::from_secs(10));
    Err("still alive after kill -9".into())
}

/// Sends what `fill` left in `dir`; fails if it is not all sent within `limit`.
pub async fn recover(dir: &Path, limit: Duration) -> Result<Value, BoxError> {
    let port: u16 = std::fs::read_to_string(dir.join("port"))?.trim().parse()?;
    let (_, arrivals) = receiver::counting_on(&format!("127.0.0.1:{port}")).await?;
    let started = Instant::now();
    let store = Arc::new(EmbeddedStore::open(dir)?);
    let journal = Arc::new(FileJournal::open(
        &dir.join("journal"),
        JournalConfig::default(),
    )?);
    let pending = journal.open_report().pending as u64;
    let opened_ms = started.elapsed().as_secs_f64() * 1e3;
    let engine = Engine::start_with_journal(
        store,
        fixture::registry(),
        EngineConfig {
            destinations: webhooks_core::destination::DestinationPolicy::loopback_allowed(),
            ..EngineConfig::default()
        },
        Some(journal.clone() as Arc<dyn DeliveryJournal>),
    )
    .await?;
    let deadline = started + limit;
    while arrivals.count() < pending && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let arrived = arrivals.count();
    engine.shutdown(Duration::from_secs(10)).await;
    if arrived < pending {
        return Err(format!("only {arrived} of {pending} pending deliveries arrived").into());
    }
    Ok(json!({
        "kind": "recovery", "pending": pending, "ms": secs * 1e3, "journal_open_ms": opened_ms,
        "rate": pending as f64 / secs,
    }))
}
