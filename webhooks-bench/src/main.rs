//! `webhooks-loadtest`: the load harness. Without `--scenario` it runs every scenario, each in a
//! child process of itself, and prints the table (see BENCHMARKS.md); with `--scenario` it is
//! that child.

use std::path::PathBuf;

use clap::Parser;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use webhooks_bench::scenarios::{self, Plan, Scenario};

/// Measures the webhooks engine on loopback and prints one table of results.
#[derive(Parser, Debug)]
#[command(name = "webhooks-loadtest")]
struct Args {
    /// Small counts and short phases: a smoke test that finishes in well under two minutes.
    #[arg(long)]
    quick: bool,

    /// Run only these scenarios (comma-separated): ceiling, inproc-1, inproc-10,
    /// inproc-1-nolog, inproc-10-nolog, http-1, http-10, amqp-1, amqp-10, fault, attempts,
    /// disk, matching, startup, recovery, ws-1000.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,

    /// Run each scenario this many times and report the median run (by its main figure).
    #[arg(long, default_value_t = 1)]
    repeat: usize,

    /// Run the engine scenarios and `startup` on this CouchDB (KAZOO's layout, databases of
    /// each run's own) instead of the embedded store.
    #[arg(long, env = "WEBHOOKS_LOADTEST_COUCHDB_URL")]
    couchdb_url: Option<String>,

    /// Run the engine rows at most once (no delivery journal, KAZOO's way) instead of at
    /// least once (the daemon's default).
    #[arg(long)]
    at_most_once: bool,

    /// Internal: run one scenario in this process and print its `RESULT` line.
    #[arg(long, hide = true)]
    scenario: Option<String>,

    /// Internal: the store directory of `build-store` and `startup`.
    #[arg(long, hide = true)]
    dir: Option<PathBuf>,

    /// Internal: the fault mix's latency phase rate, deliveries/s.
    #[arg(long, hide = true)]
    pace: Option<f64>,
}

fn main() {
    let args = Args::parse();
    let mut plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    plan.couchdb = args.couchdb_url.clone();
    plan.at_most_once = args.at_most_once;
    let Some(name) = args.scenario else {
        let failed = webhooks_bench::harness::run(&plan, &args.only, args.repeat);
        std::process::exit(i32::from(failed > 0));
    };
    let outcome = Scenario::parse(&name, args.dir, args.pace)
        .map_err(Into::into)
        .and_then(|s| scenarios::run(&s, &plan));
    match outcome {
        Ok(result) => {
            println!("RESULT {result}");
            // Exit now: the engine's background tasks would otherwise keep the runtime alive.
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::exit(1);
        }
    }
}
