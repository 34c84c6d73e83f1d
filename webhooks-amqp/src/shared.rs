//! The shared queue: where the cluster's events arrive, one node each.
//!
//! Every delivery is handled in its own task (at most `prefetch` at a time: the broker sends
//! no more unacknowledged messages than that) and is acknowledged only once the engine has
//! taken the event (its deliveries are in the engine's journal) and they have settled (sent,
//! or their retry journaled) or `hold_until_settled` has passed. So a message this node has
//! not finished with is never lost: if the node dies or the connection drops first, the
//! broker gives it again, to this node or another.
//!
//! When the session ends the consumer is cancelled first, so the broker sends nothing more;
//! the handovers in progress finish and are acknowledged on the still-open channel; messages
//! received but not started are left unacknowledged, and the broker requeues them when the
//! connection closes.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use lapin::{Channel, Consumer};
use tokio::task::JoinSet;
use webhooks_core::event::EventError;
use webhooks_core::EventSink;

use crate::ending::{cancel_consumer, SessionEnd, SessionEnding};
use crate::message::{decode, Malformed, Outcome};
use crate::redelivery::{fingerprint, Handled};
use crate::reenable::{self, Reenabler};
use crate::stats::{inc, AmqpStats};

/// The shared queue consumer's state, kept across connections.
pub(crate) struct SharedQueue {
    events: Arc<dyn EventSink>,
    reenabler: Reenabler,
    /// Handed-over messages whose ack may not have reached the broker.
    handled: Handled,
    stats: Arc<AmqpStats>,
    /// See [`AmqpConfig::hold_until_settled`](crate::AmqpConfig::hold_until_settled).
    hold_until_settled: std::time::Duration,
}

/// What the shared queue's consumer left when its session ended.
#[derive(Debug, Default)]
pub(crate) struct WindDown {
    /// Handovers in progress when the session began to end. All of them finished.
    pub(crate) finished: usize,
    /// Of those, the ones whose ack (or reject) could not be sent: the broker redelivers them.
    pub(crate) unsettled: usize,
    /// Received but not started: never acknowledged, so the broker requeues them when the
    /// connection closes.
    pub(crate) not_started: usize,
}

impl SharedQueue {
    pub(crate) fn new(
        events: Arc<dyn EventSink>,
        reenabler: Reenabler,
        stats: Arc<AmqpStats>,
        hold_until_settled: std::time::Duration,
    ) -> Arc<Self> {
        Arc::new(SharedQueue {
            events,
            reenabler,
            handled: Handled::default(),
            stats,
            hold_until_settled,
        })
    }

    /// Hands deliveries over until the session ends, then winds down (see [`wind_down`]).
    pub(crate) async fn consume(
        self: Arc<Self>,
        channel: Channel,
        mut consumer: Consumer,
        ending: SessionEnding,
    ) -> WindDown {
        let _guard = ending.end_when_dropped("shared queue consumer");
        let mut in_flight = JoinSet::new();
        // Whether the stream is still open when the loop ends: the session is ending for
        // another reason than this consumer's own failure.
        let stream_open = loop {
            tokio::select! {
                _ = ending.ended() => break true,
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        in_flight.spawn(self.clone().handle(delivery));
                    }
                    Some(Err(e)) => {
                        ending.end(SessionEnd::Lost(format!("shared queue: {e}")));
                        break false;
                    }
                    None => {
                        let why = "shared queue consumer cancelled by the broker";
                        ending.end(SessionEnd::Lost(why.into()));
                        break false;
                    }
                },
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    settled(done);
                }
            }
        };
        wind_down(&channel, &mut consumer, in_flight, stream_open).await
    }

    /// The connection was found lost at `lost_at`: acks sent shortly before are in doubt.
    pub(crate) fn connection_lost(&self, lost_at: Instant) {
        self.handled.connection_lost(lost_at);
    }

    /// Handles one delivery and acknowledges or rejects it; false if that could not be sent.
    async fn handle(self: Arc<Self>, delivery: Delivery) -> bool {
        inc(&self.stats.consumed);
        if delivery.redelivered {
            inc(&self.stats.redelivered);
        }
        let fingerprint = fingerprint(&delivery);
        if delivery.redelivered && self.handled.take_redelivered(fingerprint) {
            inc(&self.stats.duplicates_suppressed);
            tracing::debug!(routing_key = %delivery.routing_key, "redelivery of a message already handled");
            return self.ack(&delivery, None).await;
        }
        let outcome = match decode(&delivery) {
            Err(why) => Outcome::Malformed(why),
            Ok(event) if reenable::is_request(&event) => self.reenabler.handle(&event).await,
            Ok(event) => match self.events.publish_held(event).await {
                Ok((_, settled)) => {
                    if tokio::time::timeout(self.hold_until_settled, settled)
                        .await
                        .is_err()
                    {
                        inc(&self.stats.acked_unsettled);
                    }
                    Outcome::Done
                }
                // Not taken, not malformed: back to the queue, for this node later or another.
                Err(EventError::Stopped | EventError::NotDurable(_)) => Outcome::Again,
                Err(e) => Outcome::Malformed(Malformed(e.to_string())),
            },
        };
        match outcome {
            Outcome::Done => self.ack(&delivery, Some(fingerprint)).await,
            Outcome::Again => {
                inc(&self.stats.requeued);
                reject(&delivery, true).await
            }
            Outcome::Malformed(Malformed(why)) => {
                inc(&self.stats.rejected_malformed);
                tracing::warn!(
                    exchange = %delivery.exchange,
                    routing_key = %delivery.routing_key,
                    reason = %why,
                    "malformed message rejected"
                );
                reject(&delivery, false).await
            }
        }
    }

    /// Acknowledges a handled message, noting it in [`Handled`] (see there why).
    async fn ack(&self, delivery: &Delivery, handed_over: Option<u64>) -> bool {
        let sent = matches!(
            delivery.acker.ack(BasicAckOptions::default()).await,
            Ok(true)
        );
        if sent {
            inc(&self.stats.acked);
        } else {
            tracing::debug!(routing_key = %delivery.routing_key, "ack not sent; connection lost");
        }
        if let Some(fingerprint) = handed_over {
            if sent {
                self.handled.acked(fingerprint);
            } else {
                self.handled.unacked(fingerprint);
            }
        }
        sent
    }
}

/// Stops the broker's deliveries (when the consumer is still `open`: a failed one is gone
/// already) and lets the handovers in progress finish, acknowledging on the channel.
async fn wind_down(
    channel: &Channel,
    consumer: &mut Consumer,
    mut in_flight: JoinSet<bool>,
    open: bool,
) -> WindDown {
    let mut left = WindDown {
        finished: in_flight.len(),
        ..WindDown::default()
    };
    if open && cancel_consumer(channel, consumer, "shared queue consumer").await {
        // What the broker sent before it confirmed the cancel: not started, not acked.
        while let Some(Ok(_)) = consumer.next().await {
            left.not_started += 1;
        }
    }
    // A handler is never aborted: one stopped halfway through handing an event to the
    // engine would leave some of its deliveries queued and some not.
    while let Some(done) = in_flight.join_next().await {
        if !settled(done) {
            left.unsettled += 1;
        }
    }
    left
}

/// Rejects a message: requeued to be handled again, or not (dead-lettered when configured).
async fn reject(delivery: &Delivery, requeue: bool) -> bool {
    match delivery.acker.reject(BasicRejectOptions { requeue }).await {
        Ok(sent) => sent,
        Err(e) => {
            tracing::debug!(error = %e, "reject not sent; the broker will redeliver");
            false
        }
    }
}

/// Whether a finished handler settled its message; a handler that panicked did not (the
/// broker redelivers its message).
fn settled(done: Result<bool, tokio::task::JoinError>) -> bool {
    done.unwrap_or_else(|e| {
        tracing::error!(error = %e, "message handler failed; the message will be redelivered");
        false
    })
}
