//! The shared queue: where the cluster's events arrive, one node each.
//!
//! Every delivery is handled in its own task (at most `prefetch` at a time: the broker sends
//! no more unacknowledged messages than that) and is acknowledged only once the engine has
//! taken the event, so a message this node has not finished with is never lost: if the
//! connection drops first, the broker gives it again, to this node or another.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use serde_json::Value;
use webhooks_core::Event;

use crate::reenable;
use crate::stats::inc;
use crate::transport::Ctx;

/// Largest body accepted after gunzipping: a compressed message can expand a thousandfold,
/// and nothing KAZOO publishes comes near this.
const MAX_DECODED_BYTES: u64 = 64 * 1024 * 1024;

/// Why a message cannot be handled. It is rejected without requeue (to the dead-letter
/// exchange when configured): giving it again would fail again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) String);

/// What became of one message.
pub(crate) enum Outcome {
    /// The engine took it (or the re-enable was done and answered): acknowledge.
    Done,
    /// Not finished (a reply could not be sent): requeue, so it is handled again.
    Again,
    Malformed(Malformed),
}

/// Reads a delivery as a KAZOO message: gunzipped when `content_encoding` says `gzip` (KAZOO
/// compresses large MMS), a JSON object, with `Event-Category` and `Event-Name` strings.
pub(crate) fn decode(delivery: &Delivery) -> Result<Event, Malformed> {
    let gzip = delivery
        .properties
        .content_encoding()
        .as_ref()
        .is_some_and(|e| e.as_str().eq_ignore_ascii_case("gzip"));
    let inflated;
    let body: &[u8] = if gzip {
        inflated = gunzip(&delivery.data)?;
        &inflated
    } else {
        &delivery.data
    };
    parse(body)
}

fn gunzip(data: &[u8]) -> Result<Vec<u8>, Malformed> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(MAX_DECODED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| Malformed(format!("gzip body cannot be decoded: {e}")))?;
    if out.len() as u64 > MAX_DECODED_BYTES {
        return Err(Malformed(format!(
            "gzip body larger than {MAX_DECODED_BYTES} bytes"
        )));
    }
    Ok(out)
}

pub(crate) fn parse(body: &[u8]) -> Result<Event, Malformed> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Malformed(format!("not JSON: {e}")))?;
    let event = Event::from_value(value).map_err(|e| Malformed(e.to_string()))?;
    for header in ["Event-Category", "Event-Name"] {
        event
            .required_str(header)
            .map_err(|e| Malformed(e.to_string()))?;
    }
    Ok(event)
}

/// Handles one delivery from the shared queue and acknowledges or rejects it.
pub(crate) async fn handle(ctx: Arc<Ctx>, delivery: Delivery) {
    inc(&ctx.stats.consumed);
    let fingerprint = fingerprint(&delivery);
    if delivery.redelivered && ctx.handled.take_redelivered(fingerprint) {
        inc(&ctx.stats.duplicates_suppressed);
        tracing::debug!(routing_key = %delivery.routing_key, "redelivery of a message already handled");
        ack(&ctx, &delivery, None).await;
        return;
    }
    let outcome = match decode(&delivery) {
        Err(why) => Outcome::Malformed(why),
        Ok(event) if reenable::is_request(&event) => reenable::handle(&ctx, &event).await,
        Ok(event) => match ctx.events.publish(event).await {
            Ok(_) => Outcome::Done,
            Err(e) => Outcome::Malformed(Malformed(e.to_string())),
        },
    };
    match outcome {
        Outcome::Done => ack(&ctx, &delivery, Some(fingerprint)).await,
        Outcome::Again => {
            let requeue = BasicRejectOptions { requeue: true };
            if let Err(e) = delivery.acker.reject(requeue).await {
                tracing::debug!(error = %e, "requeue not sent; the broker will redeliver");
            }
        }
        Outcome::Malformed(Malformed(why)) => {
            inc(&ctx.stats.rejected_malformed);
            tracing::warn!(
                exchange = %delivery.exchange,
                routing_key = %delivery.routing_key,
                reason = %why,
                "malformed message rejected"
            );
            let requeue = BasicRejectOptions { requeue: false };
            if let Err(e) = delivery.acker.reject(requeue).await {
                tracing::debug!(error = %e, "reject not sent; the broker will redeliver");
            }
        }
    }
}

/// Acknowledges a handled message, noting it in [`Handled`] (see there why).
async fn ack(ctx: &Ctx, delivery: &Delivery, handled: Option<u64>) {
    match delivery.acker.ack(BasicAckOptions::default()).await {
        Ok(true) => {
            inc(&ctx.stats.acked);
            if let Some(fingerprint) = handled {
                ctx.handled.acked(fingerprint);
            }
        }
        Ok(false) | Err(_) => {
            if let Some(fingerprint) = handled {
                ctx.handled.unacked(fingerprint);
            }
            tracing::debug!(routing_key = %delivery.routing_key, "ack not sent; connection lost");
        }
    }
}

/// Identifies a message across redeliveries (AMQP gives it no id of its own; KAZOO sets no
/// `message_id`): its exchange, routing key and body.
fn fingerprint(delivery: &Delivery) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    delivery.exchange.as_str().hash(&mut h);
    delivery.routing_key.as_str().hash(&mut h);
    delivery.data.hash(&mut h);
    h.finish()
}

/// Acks written in this window before a connection loss may not have reached the broker: it
/// ignores frames that arrive after it decided to close, and the client only learns of the
/// close a little later.
const DOUBT_WINDOW: Duration = Duration::from_secs(1);
const REMEMBER_AT_MOST: usize = 65_536;
const REMEMBER_FOR: Duration = Duration::from_secs(600);

/// Messages this node handed to the engine whose acknowledgement may not have reached the
/// broker, so that their redelivery is acknowledged without a second handover.
///
/// Two kinds qualify: acks that could not be sent (the channel was already gone), and acks
/// sent within [`DOUBT_WINDOW`] before the connection was found lost. Only a message the
/// broker marks `redelivered` is looked up, and each entry matches once. The cost of the
/// doubt window is that an ack that did arrive leaves an entry behind until it expires: a
/// byte-identical message (same exchange, key and body, which KAZOO's `Msg-ID` and
/// timestamps make unlikely) redelivered meanwhile would be taken for it. Entries are bounded
/// in number and age; one whose redelivery went to another node also just expires.
#[derive(Default)]
pub(crate) struct Handled {
    inner: Mutex<HandledInner>,
}

#[derive(Default)]
struct HandledInner {
    /// Recent acks on the current connection, oldest first.
    acked: VecDeque<(u64, Instant)>,
    /// Handled, acknowledgement in doubt.
    in_doubt: VecDeque<(u64, Instant)>,
}

impl Handled {
    fn lock(&self) -> std::sync::MutexGuard<'_, HandledInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn acked(&self, fingerprint: u64) {
        let mut inner = self.lock();
        let now = Instant::now();
        while inner
            .acked
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) > DOUBT_WINDOW)
            || inner.acked.len() >= REMEMBER_AT_MOST
        {
            inner.acked.pop_front();
        }
        inner.acked.push_back((fingerprint, now));
    }

    pub(crate) fn unacked(&self, fingerprint: u64) {
        push_bounded(&mut self.lock().in_doubt, fingerprint, Instant::now());
    }

    /// The connection was found lost at `lost_at`: acks sent shortly before are in doubt.
    pub(crate) fn connection_lost(&self, lost_at: Instant) {
        let mut inner = self.lock();
        let recent: Vec<(u64, Instant)> = inner.acked.drain(..).collect();
        for (fingerprint, at) in recent {
            if lost_at.saturating_duration_since(at) <= DOUBT_WINDOW {
                push_bounded(&mut inner.in_doubt, fingerprint, at);
            }
        }
    }

    /// Is this redelivered message one already handled? Matches (and forgets) one entry.
    pub(crate) fn take_redelivered(&self, fingerprint: u64) -> bool {
        let mut inner = self.lock();
        while inner
            .in_doubt
            .front()
            .is_some_and(|(_, at)| at.elapsed() > REMEMBER_FOR)
        {
            inner.in_doubt.pop_front();
        }
        match inner.in_doubt.iter().position(|(f, _)| *f == fingerprint) {
            Some(i) => {
                inner.in_doubt.remove(i);
                true
            }
            None => false,
        }
    }
}

fn push_bounded(q: &mut VecDeque<(u64, Instant)>, fingerprint: u64, at: Instant) {
    if q.len() >= REMEMBER_AT_MOST {
        q.pop_front();
    }
    q.push_back((fingerprint, at));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_requires_an_object_with_string_headers() {
        assert!(parse(b"not json").is_err());
        assert!(parse(b"[1,2]").is_err());
        assert!(parse(br#"{"Event-Category":"call_event"}"#).is_err());
        assert!(parse(br#"{"Event-Category":"call_event","Event-Name":5}"#).is_err());
        let e = parse(br#"{"Event-Category":"call_event","Event-Name":"X","A":1}"#).unwrap();
        assert_eq!(e.name(), Some("X"));
    }

    #[test]
    fn gunzip_reads_what_gzip_wrote() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(br#"{"Event-Category":"mms","Event-Name":"inbound"}"#)
            .unwrap();
        let zipped = enc.finish().unwrap();
        let e = parse(&gunzip(&zipped).unwrap()).unwrap();
        assert_eq!(e.category(), Some("mms"));
        assert!(gunzip(b"plain text").is_err());
    }

    #[test]
    fn unsent_acks_match_one_redelivery_each() {
        let h = Handled::default();
        h.unacked(7);
        h.unacked(7);
        assert!(h.take_redelivered(7));
        assert!(h.take_redelivered(7));
        assert!(!h.take_redelivered(7));
        assert!(!h.take_redelivered(8));
    }

    #[test]
    fn only_acks_just_before_a_loss_are_in_doubt() {
        let h = Handled::default();
        h.acked(1);
        assert!(
            !h.take_redelivered(1),
            "an ack on a live connection is trusted"
        );
        h.connection_lost(Instant::now());
        assert!(h.take_redelivered(1));
        h.acked(2);
        h.connection_lost(Instant::now() + DOUBT_WINDOW * 2);
        assert!(!h.take_redelivered(2), "acked long before the loss");
    }
}
