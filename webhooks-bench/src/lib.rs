//! # webhooks-bench: how fast the engine is, on this machine
//!
//! Two things live here. [`fixture`] builds the account trees, hook tables and events that the
//! criterion benchmarks (`benches/` of the root package) and the load harness share. The load
//! harness (`webhooks-loadtest`, BENCHMARKS.md) runs the engine against a receiver on loopback
//! and prints one table: the ceiling (the engine's HTTP client and the receiver, nothing in
//! between), the engine fed in-process, over `POST /v2/events` and through RabbitMQ, a fault
//! mix, the attempt store alone, the disk's own rates, hook matching, start-up, recovery
//! after a kill with deliveries pending ([`recovery`]), and live events fanned out to a
//! thousand websocket clients ([`live`]).
//!
//! Read [`harness`] (the parent: one child process per scenario, the table), then
//! [`scenarios`] (what each child measures); [`receiver`] and [`clock`] explain how latency is
//! taken: the publish instant rides in the event's `Call-ID` and the receiver subtracts it from
//! its arrival time, both read from one monotonic clock in one process.
//!
//! Nothing here asserts a speed: figures are printed, and judged against issue 7's targets in
//! the printout.

pub mod clock;
pub mod disk;
pub mod fixture;
pub mod harness;
pub mod hist;
pub mod live;
pub mod plan;
pub mod receiver;
pub mod recovery;
pub mod report;
pub mod rss;
pub mod scenarios;
