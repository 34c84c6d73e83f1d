//! Hook matching at scale: which hooks an event reaches, in a table of 1,000,000 hooks over
//! 100,000 accounts with reseller trees two and three deep (the shape is described in
//! `webhooks_bench::fixture`). Accounts are picked at random, so lookups miss the cache the
//! way a busy platform's do. Issue 7's target: under 1 µs per event.
//!
//! `cargo bench --bench matching` (building the table takes a few seconds, once).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use kazoo_webhooks::core::{AccountId, HookFinder, WebhookModule};
use kazoo_webhooks::modules::ChannelCreate;
use webhooks_bench::fixture::{self, CallEvents};

// The allocator `webhooksd` runs with, so the figures are the daemon's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const HOOKS: usize = 1_000_000;
const ACCOUNTS: usize = 100_000;

fn matching(c: &mut Criterion) {
    let (table, population, _) = fixture::hook_table(HOOKS, ACCOUNTS);
    let pick = |accounts: &[kazoo_webhooks::core::Account]| -> Vec<AccountId> {
        (0..1 << 16)
            .map(|i| accounts[fixture::pick(i, accounts.len())].id.clone())
            .collect()
    };
    let customers = pick(population.customers());
    let resellers = pick(&population.accounts[1..=population.resellers]);
    let events = CallEvents::new();
    let customer_events: Vec<_> = customers[..1024]
        .iter()
        .map(|a| events.event(a, "LOADT0".into()))
        .collect();

    let mut g = c.benchmark_group("matching 1M hooks");
    let mut i = 0usize;
    let mut next = move || {
        i = (i + 1) & 0xffff;
        i
    };
    g.bench_function("snapshot + find channel_create, random customer", |b| {
        b.iter(|| {
            let snapshot = table.snapshot();
            black_box(snapshot.find("channel_create", &customers[next()]))
        })
    });
    g.bench_function("snapshot + find object, random customer", |b| {
        b.iter(|| {
            let snapshot = table.snapshot();
            black_box(snapshot.find("object", &customers[next()]))
        })
    });
    g.bench_function("snapshot + find notifications, random reseller", |b| {
        b.iter(|| {
            let snapshot = table.snapshot();
            black_box(snapshot.find("notifications", &resellers[next()]))
        })
    });
    g.bench_function("snapshot + reseller_of, random customer", |b| {
        b.iter(|| {
            let snapshot = table.snapshot();
            black_box(snapshot.reseller_of(&customers[next()]))
        })
    });
    g.bench_function("snapshot only", |b| b.iter(|| black_box(table.snapshot())));
    g.bench_function(
        "channel_create module: match + payload, random customer",
        |b| {
            b.iter(|| {
                let snapshot = table.snapshot();
                let event = &customer_events[next() & 1023];
                black_box(ChannelCreate.handle_event(event, snapshot.as_ref()))
            })
        },
    );
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = matching
}
criterion_main!(benches);
