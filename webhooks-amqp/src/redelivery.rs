//! Recognising the redelivery of a message this node already handed to the engine.
//!
//! An ack can be lost with the connection that carried it; the broker then gives the message
//! again, marked `redelivered`. Handing it to the engine a second time would fire its hooks
//! twice, so the shared queue's consumer remembers, for a while, the handovers whose ack is in
//! doubt, and acknowledges their redelivery without a second handover.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lapin::message::Delivery;

/// Identifies a message across redeliveries (AMQP gives it no id of its own; KAZOO sets no
/// `message_id`): its exchange, routing key and body.
pub(crate) fn fingerprint(delivery: &Delivery) -> u64 {
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
