//! Payload building: each module's KAZOO sample events through `handle_event` and
//! `Delivery::from_dispatch` (custom_data merge, `cluster_id`, form encoding), everything the
//! engine does per event and hook except the table lookup (`matching`) and the network.
//!
//! `cargo bench --bench payloads`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kazoo_webhooks::core::delivery::Delivery;
use kazoo_webhooks::core::{AccountId, Event, Hook, HookFinder};
use webhooks_bench::fixture;

// The allocator `webhooksd` runs with, so the figures are the daemon's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Every lookup finds one `all` hook (which every module fires), with `custom_data` to merge.
struct OneHook(Arc<Hook>);

impl HookFinder for OneHook {
    fn find(&self, _: &str, _: &AccountId) -> Vec<Arc<Hook>> {
        vec![self.0.clone()]
    }

    fn reseller_of(&self, account: &AccountId) -> Option<AccountId> {
        Some(account.clone())
    }
}

fn payloads(c: &mut Criterion) {
    let registry = fixture::registry();
    let mut doc = fixture::hook_doc(
        &fixture::hook_id(0),
        &fixture::account_id(0),
        "all",
        "http://hooks.example.test/in",
        false,
    );
    doc.set(
        "custom_data",
        serde_json::json!({"crm": "sales", "tier": "gold"}),
    );
    let finder = OneHook(Arc::new(
        Hook::from_doc(&doc, |_| true).expect("valid hook"),
    ));

    let mut g = c.benchmark_group("payload");
    for module in registry.modules() {
        let id = module.init().id;
        let Some(samples) = kazoo_webhooks::modules::sample_events(&id) else {
            continue;
        };
        let events: Vec<Event> = samples
            .into_iter()
            .filter_map(|v| Event::from_value(v).ok())
            .collect();
        let name = match events.len() {
            1 => id.clone(),
            n => format!("{id} ({n} samples)"),
        };
        g.throughput(Throughput::Elements(events.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                for event in &events {
                    for d in module.handle_event(event, &finder).unwrap_or_default() {
                        let delivery =
                            Delivery::from_dispatch(d, Some("cluster"), "0a1b2c3d4e".into(), 1);
                        black_box(delivery);
                    }
                }
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = payloads
}
criterion_main!(benches);
