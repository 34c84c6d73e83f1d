//! An event its transport holds (the AMQP message, unacknowledged) until every delivery of it
//! is settled: finished, or its retry written to the journal (see
//! [`webhooks_core::EventSink::publish_held`]). Each delivery carries a [`HoldShare`]; the
//! share is dropped when the delivery settles (or is dropped for any other reason: cancelled,
//! cut at shutdown), and the last one dropped completes the event's [`Settled`] future.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use webhooks_core::Settled;

struct EventHold {
    left: AtomicUsize,
    done: Mutex<Option<oneshot::Sender<()>>>,
}

/// One delivery's part of its event's hold.
pub(crate) struct HoldShare(Arc<EventHold>);

impl Drop for HoldShare {
    fn drop(&mut self) {
        if self.0.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            let done = self.0.done.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(done) = done {
                let _ = done.send(());
            }
        }
    }
}

/// `n` shares and the future that completes once all of them are dropped.
pub(crate) fn hold(n: usize) -> (Vec<HoldShare>, Settled) {
    if n == 0 {
        return (Vec::new(), Box::pin(std::future::ready(())));
    }
    let (tx, rx) = oneshot::channel();
    let hold = Arc::new(EventHold {
        left: AtomicUsize::new(n),
        done: Mutex::new(Some(tx)),
    });
    let shares = (0..n).map(|_| HoldShare(hold.clone())).collect();
    (
        shares,
        Box::pin(async move {
            let _ = rx.await;
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::task::{Context, Waker};

    fn ready(f: &mut Settled) -> bool {
        f.as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    }

    #[test]
    fn settles_when_the_last_share_goes() {
        let (mut shares, mut settled) = hold(3);
        assert!(!ready(&mut settled));
        shares.pop();
        shares.pop();
        assert!(!ready(&mut settled));
        shares.pop();
        assert!(ready(&mut settled));
        let (_, mut none) = hold(0);
        assert!(ready(&mut none));
    }
}
