//! The two body encodings of a delivery, byte for byte KAZOO's: the url-encoded form
//! (`json_to_querystring`, also a GET's query string) and pretty JSON, on the largest channel
//! payload (CHANNEL_DESTROY) and a notification payload. Throughput is in output bytes.
//!
//! `cargo bench --bench encoding`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kazoo_webhooks::core::{encode, AccountId, Event, Hook, HookFinder};
use serde_json::{Map, Value};
use webhooks_bench::fixture;

// The allocator `webhooksd` runs with, so the figures are the daemon's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

struct OneHook(Arc<Hook>);

impl HookFinder for OneHook {
    fn find(&self, _: &str, _: &AccountId) -> Vec<Arc<Hook>> {
        vec![self.0.clone()]
    }
}

/// The payload module `id` builds for the first of its samples named `event_name` (any if
/// `None`).
fn payload(id: &str, event_name: Option<&str>) -> Map<String, Value> {
    let registry = fixture::registry();
    let module = registry
        .modules()
        .find(|m| m.init().id == id)
        .expect("a KAZOO module");
    let doc = fixture::hook_doc("h", &fixture::account_id(0), "all", "http://x.test/", false);
    let finder = OneHook(Arc::new(
        Hook::from_doc(&doc, |_| true).expect("valid hook"),
    ));
    kazoo_webhooks::modules::sample_events(id)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| Event::from_value(v).ok())
        .filter(|e| event_name.is_none() || e.name() == event_name)
        .find_map(|e| module.handle_event(&e, &finder).ok()?.pop())
        .map(|d| d.payload)
        .expect("a sample payload")
}

fn encoding(c: &mut Criterion) {
    let cases = [
        ("channel_destroy", payload("channel_destroy", None)),
        (
            "notifications voicemail_new",
            payload("notifications", Some("voicemail_new")),
        ),
        ("object doc_edited", payload("object", Some("doc_edited"))),
    ];
    let mut g = c.benchmark_group("encoding");
    for (name, p) in &cases {
        let form = encode::querystring(p);
        g.throughput(Throughput::Bytes(form.len() as u64));
        g.bench_function(format!("form {name}"), |b| {
            b.iter(|| black_box(encode::querystring(black_box(p))))
        });
        g.bench_function(format!("GET url {name}"), |b| {
            b.iter(|| {
                black_box(encode::get_url(
                    "http://hooks.example.test/in?k=v",
                    &encode::querystring(black_box(p)),
                ))
            })
        });
        let json = encode::json_body(p);
        g.throughput(Throughput::Bytes(json.len() as u64));
        g.bench_function(format!("json {name}"), |b| {
            b.iter(|| black_box(encode::json_body(black_box(p))))
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
    targets = encoding
}
criterion_main!(benches);
