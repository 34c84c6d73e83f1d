//! Rate limits at a real receiver: a hook limited to N requests a second receives at most N a
//! second plus its burst of N, and an unlimited hook on another destination is not slowed by
//! it; a destination limit does the same for every hook of that destination. Nothing over a
//! limit is dropped or failed.

mod common;

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use webhooks_engine::EngineConfig;

const EVENTS: usize = 20;
const LIMIT: usize = 5;

/// The most arrivals within any one second.
fn busiest_second(arrivals: &[Instant]) -> usize {
    let mut at: Vec<Instant> = arrivals.to_vec();
    at.sort();
    (0..at.len())
        .map(|i| {
            at[i..]
                .iter()
                .take_while(|t| t.duration_since(at[i]) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

async fn publish_events(s: &Setup) {
    let e = &webhooks_modules::sample_events("channel_create").unwrap()[0];
    for _ in 0..EVENTS {
        s.engine.publish(event(e)).await.unwrap();
    }
}

fn times(rx: &Receiver, path: &str) -> Vec<Instant> {
    rx.received_at(path).iter().map(|r| r.at).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_hook_gets_at_most_its_rate_and_slows_no_other_destination() {
    let limited = Receiver::start().await;
    let free = Receiver::start_on("127.0.0.3:0").await;
    let hooks = vec![
        hook(
            "slow",
            ACCOUNT,
            "channel_create",
            &limited.url("/limited"),
            json!({"rate_limit": LIMIT}),
        ),
        hook(
            "fast",
            ACCOUNT,
            "channel_create",
            &free.url("/free"),
            json!({}),
        ),
    ];
    let s = engine(hooks, json!({}), EngineConfig::default()).await;
    publish_events(&s).await;

    free.wait_for("/free", EVENTS).await;
    let limited_so_far = limited.received_at("/limited").len();
    assert!(
        limited_so_far < EVENTS,
        "the unlimited destination waited for the limited one ({limited_so_far} limited arrivals)"
    );
    limited.wait_for("/limited", EVENTS).await;
    settle(&s.engine).await;
    let at = times(&limited, "/limited");
    assert!(
        busiest_second(&at) <= 2 * LIMIT,
        "{} in one second",
        busiest_second(&at)
    );
    let span = at
        .iter()
        .max()
        .unwrap()
        .duration_since(*at.iter().min().unwrap());
    // After the burst of LIMIT, one every 1/LIMIT s: (EVENTS - LIMIT) / LIMIT seconds at least.
    assert!(
        span >= Duration::from_millis(2_500),
        "all {EVENTS} in {span:?}"
    );
    let stats = s.engine.stats();
    assert_eq!(stats.deliveries_succeeded, 2 * EVENTS as u64);
    assert_eq!(stats.tries_failed, 0, "waiting is no failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_limit_covers_every_hook_of_that_destination() {
    let rx = Receiver::start().await;
    let hooks = vec![
        hook("a", ACCOUNT, "channel_create", &rx.url("/a"), json!({})),
        hook("b", ACCOUNT, "channel_create", &rx.url("/b"), json!({})),
    ];
    let config = EngineConfig {
        destination_rate_limit: NonZeroU32::new(LIMIT as u32),
        ..EngineConfig::default()
    };
    let s = engine(hooks, json!({}), config).await;
    publish_events(&s).await;
    rx.wait_for("/", 2 * EVENTS).await;
    // The receiver has the last request before the engine has read its answer.
    settle(&s.engine).await;
    let at = times(&rx, "/");
    assert!(
        busiest_second(&at) <= 2 * LIMIT,
        "{} in one second",
        busiest_second(&at)
    );
    assert_eq!(s.engine.stats().deliveries_succeeded, 2 * EVENTS as u64);
}
