//! The engine's and the AMQP transport's counters, read at scrape time: nothing is counted
//! twice, and nothing costs anything between scrapes.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use webhooks_amqp::AmqpHandle;
use webhooks_engine::{Engine, HistogramSnapshot};

#[derive(Clone)]
pub(crate) struct EngineCollector {
    pub(crate) engine: Engine,
    pub(crate) amqp: Option<AmqpHandle>,
    pub(crate) hub: Option<webhooks_websockets::Hub>,
}

impl std::fmt::Debug for EngineCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineCollector").finish_non_exhaustive()
    }
}

/// Writes one metric family after another.
struct Out<'a>(DescriptorEncoder<'a>);

type Res = Result<(), std::fmt::Error>;

impl Out<'_> {
    /// A counter (`_total` is added to `name`).
    fn counter(&mut self, name: &str, help: &str, value: u64) -> Res {
        let c = ConstCounter::new(value);
        c.encode(
            self.0
                .encode_descriptor(name, help, None, c.metric_type())?,
        )
    }

    fn gauge(&mut self, name: &str, help: &str, value: i64) -> Res {
        let g = ConstGauge::new(value);
        g.encode(
            self.0
                .encode_descriptor(name, help, None, g.metric_type())?,
        )
    }

    /// A counter family with one label set a value.
    fn counters<'l>(
        &mut self,
        name: &str,
        help: &str,
        rows: impl IntoIterator<Item = (Vec<(&'l str, &'l str)>, u64)>,
    ) -> Res {
        let mut family = self
            .0
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        for (labels, value) in rows {
            family
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        Ok(())
    }

    fn gauges<'l>(
        &mut self,
        name: &str,
        help: &str,
        rows: impl IntoIterator<Item = (Vec<(&'l str, &'l str)>, i64)>,
    ) -> Res {
        let mut family = self
            .0
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (labels, value) in rows {
            family.encode_family(&labels)?.encode_gauge(&value)?;
        }
        Ok(())
    }

    /// A histogram in seconds (`_seconds` is added to `name`).
    fn seconds(&mut self, name: &str, help: &str, h: &HistogramSnapshot) -> Res {
        let mut buckets: Vec<(f64, u64)> = h
            .bounds
            .iter()
            .copied()
            .zip(h.counts.iter().copied())
            .collect();
        // The last count is above every bound: the `+Inf` bucket.
        buckets.push((f64::MAX, h.counts.last().copied().unwrap_or(0)));
        self.0
            .encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?
            .encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &buckets, None)
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Collector for EngineCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Res {
        let mut out = Out(encoder);
        let s = self.engine.stats();
        out.counter(
            "webhooks_events_received",
            "Events handed to the engine.",
            s.events_received,
        )?;
        out.counter(
            "webhooks_events_rejected",
            "Malformed events refused (bad or missing headers).",
            s.events_rejected,
        )?;
        out.counter(
            "webhooks_events_without_account",
            "Valid events dropped because they name no account.",
            s.events_without_account,
        )?;
        out.counter(
            "webhooks_events_unhandled",
            "Valid events no module answers.",
            s.events_unhandled,
        )?;
        out.counter(
            "webhooks_events_not_durable",
            "Events refused because the journal could not make their deliveries durable.",
            s.events_not_durable,
        )?;
        out.counter(
            "webhooks_deliveries_dispatched",
            "Deliveries created (one per event and hook).",
            s.deliveries_dispatched,
        )?;
        let finished = self.engine.finished();
        out.counters(
            "webhooks_deliveries",
            "Deliveries finished, by result (succeeded, failed after their last try) and class of their last answer (none: no answer).",
            finished.iter().map(|f| (vec![("result", f.result), ("status_class", f.status_class)], f.count)),
        )?;
        out.counter("webhooks_deliveries_cancelled", "Queued deliveries and retries dropped because their hook was disabled, deleted or edited meanwhile.", s.deliveries_cancelled)?;
        out.counter(
            "webhooks_deliveries_cut_by_shutdown",
            "Deliveries a shutdown ended before they were sent or answered.",
            s.deliveries_cut_by_shutdown,
        )?;
        out.counter(
            "webhooks_deliveries_resumed",
            "Deliveries the journal held at start and the engine took up again.",
            s.deliveries_resumed,
        )?;
        out.counter(
            "webhooks_delivery_tries_failed",
            "Failed tries (each counts towards auto-disable).",
            s.tries_failed,
        )?;
        out.counter(
            "webhooks_retries_scheduled",
            "Retries scheduled.",
            s.retries_scheduled,
        )?;
        out.counter("webhooks_retries_dropped_by_shutdown", "Retries waiting for their time when the engine shut down (kept in the journal, if any).", s.retries_dropped_by_shutdown)?;
        let load = self.engine.load();
        out.gauges(
            "webhooks_deliveries_pending",
            "Deliveries the engine holds now, by state: queued (waiting for a slot), in_flight (HTTP request out), retry_waiting (waiting for the retry's due time).",
            [
                (vec![("state", "queued")], gauge_value(load.queued)),
                (vec![("state", "in_flight")], gauge_value(load.in_flight)),
                (vec![("state", "retry_waiting")], gauge_value(load.waiting_retries)),
            ],
        )?;
        out.gauge(
            "webhooks_destinations_stalled",
            "Destinations with requests out and none answered for the stall time (2 s).",
            gauge_value(load.destinations_stalled),
        )?;
        out.gauge(
            "webhooks_attempts_pending",
            "Attempt documents queued or being written.",
            gauge_value(load.attempts_pending),
        )?;
        out.counter(
            "webhooks_attempts_written",
            "Attempt documents written to the store.",
            s.attempts_written,
        )?;
        out.counter(
            "webhooks_attempts_lost",
            "Attempt documents the store refused for good.",
            s.attempts_lost,
        )?;
        out.counters(
            "webhooks_hooks_disabled",
            "Hooks the disabler switched off, by reason: failures (too many in the window), gone (the receiver answered 410 Gone).",
            [
                (vec![("reason", "failures")], s.hooks_disabled),
                (vec![("reason", "gone")], s.hooks_gone),
            ],
        )?;
        let latencies = self.engine.latencies();
        out.seconds(
            "webhooks_delivery_latency",
            "From the moment a try could be sent (its event accepted, or its retry due) to its outcome: the wait for a slot or a rate limit, and the HTTP exchange.",
            &latencies.delivery,
        )?;
        out.seconds(
            "webhooks_attempt_write_duration",
            "Writing one batch of attempt documents to the store.",
            &latencies.attempt_write,
        )?;
        out.gauge(
            "webhooks_intake_open",
            "1 while the engine takes events, 0 once it is stopping.",
            i64::from(self.engine.is_accepting()),
        )?;
        if let Some(amqp) = &self.amqp {
            let a = amqp.stats();
            out.gauge(
                "webhooks_amqp_connected",
                "1 while the connection to the broker is up.",
                i64::from(amqp.is_connected()),
            )?;
            out.counter(
                "webhooks_amqp_messages_consumed",
                "Messages received from the shared queue (redeliveries included).",
                a.consumed,
            )?;
            out.counter(
                "webhooks_amqp_messages_redelivered",
                "Messages received that the broker marked redelivered.",
                a.redelivered,
            )?;
            out.counter(
                "webhooks_amqp_messages_acked",
                "Messages acknowledged once the engine took them.",
                a.acked,
            )?;
            out.counter(
                "webhooks_amqp_messages_rejected",
                "Malformed messages rejected without requeue (dead-lettered when configured).",
                a.rejected_malformed,
            )?;
            out.counter("webhooks_amqp_messages_requeued", "Messages rejected with requeue (the engine was stopping or could not journal them).", a.requeued)?;
            out.counter("webhooks_amqp_duplicates_suppressed", "Redeliveries of messages already handed to the engine, acknowledged without a second handover.", a.duplicates_suppressed)?;
            out.counter(
                "webhooks_amqp_messages_acked_unsettled",
                "Messages acknowledged before their deliveries settled (the hold passed).",
                a.acked_unsettled,
            )?;
            out.counter(
                "webhooks_amqp_reconnects",
                "Times the broker connection was re-established after it was lost.",
                a.reconnects,
            )?;
            out.counter(
                "webhooks_amqp_notifications_published",
                "Notifications published on the notifications exchange.",
                a.notifications_published,
            )?;
            out.counter(
                "webhooks_amqp_reenable_requests",
                "Re-enable requests from crossbar handled.",
                a.reenable_requests,
            )?;
            out.counter(
                "webhooks_amqp_config_notices",
                "Document change notices applied from this node's queue.",
                a.config_notices,
            )?;
            out.counter(
                "webhooks_amqp_failures_shared",
                "This node's failed tries sent to the other nodes.",
                a.failures_shared,
            )?;
            out.counter(
                "webhooks_amqp_failures_unshared",
                "This node's failed tries the other nodes were not told about.",
                a.failures_unshared,
            )?;
            out.counter(
                "webhooks_amqp_peer_failures",
                "Failed tries other nodes reported.",
                a.peer_failures,
            )?;
        }
        if let Some(hub) = &self.hub {
            live_streams(&mut out, hub.stats())?;
        }
        Ok(())
    }
}

/// The live-event endpoint's sockets and fan-out.
fn live_streams(out: &mut Out, h: webhooks_websockets::HubStats) -> Res {
    let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    out.gauge(
        "webhooks_websockets_open",
        "Websockets open on this node.",
        gauge(h.sockets),
    )?;
    out.gauge(
        "webhooks_websockets_node_bindings",
        "Bindings the live streams hold on this node's queue.",
        gauge(h.sources),
    )?;
    out.counter(
        "webhooks_websockets_events",
        "Events that reached the live-event hub.",
        h.events,
    )?;
    out.counter(
        "webhooks_websockets_events_matched",
        "Events that matched at least one socket's subscription.",
        h.events_matched,
    )?;
    out.counter(
        "webhooks_websockets_frames_queued",
        "Event frames queued to sockets.",
        h.frames,
    )?;
    out.counter(
        "webhooks_websockets_frames_dropped",
        "Event frames dropped, oldest first, for sockets that read too slowly.",
        h.frames_dropped,
    )?;
    out.counter(
        "webhooks_websockets_connections_refused",
        "Upgrades refused: the peer address had max_connections_per_ip sockets.",
        h.refused_connections,
    )?;
    out.counter(
        "webhooks_websockets_messages_rate_limited",
        "Client messages refused by the per-socket rate limit.",
        h.rate_limited,
    )
}
