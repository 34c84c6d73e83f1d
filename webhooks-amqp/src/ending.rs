//! How a session ends: who says so, why, and how a consumer stops. A session is one
//! connection with its consumers; this file imports nothing from the rest of the crate.

use std::time::Duration;

use lapin::options::BasicCancelOptions;
use lapin::{Channel, Consumer};
use tokio::sync::watch;

/// How long the broker may take to confirm a consumer's cancellation.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a session (one connection and its consumers) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    /// [`AmqpHandle::shutdown`](crate::AmqpHandle::shutdown) was called.
    Stopped,
    /// The connection or one of its channels failed.
    Lost(String),
}

/// Tells every part of one session that it is ending, and why. The first to know (the
/// transport's shutdown, or a consumer whose channel failed) says so; what is said after that
/// is ignored, so every part agrees on one reason.
#[derive(Clone)]
pub(crate) struct SessionEnding(watch::Sender<Option<SessionEnd>>);

impl SessionEnding {
    pub(crate) fn new() -> Self {
        SessionEnding(watch::Sender::new(None))
    }

    /// Ends the session, unless it is ending already.
    pub(crate) fn end(&self, why: SessionEnd) {
        self.0.send_if_modified(|now| {
            if now.is_some() {
                return false;
            }
            *now = Some(why);
            true
        });
    }

    /// Resolves once the session is ending, with the reason.
    pub(crate) async fn ended(&self) -> SessionEnd {
        let mut ending = self.0.subscribe();
        // `self` holds a sender, so the channel cannot close under the wait.
        let why = match ending.wait_for(Option::is_some).await {
            Ok(why) => why.clone(),
            Err(_) => None,
        };
        why.unwrap_or(SessionEnd::Stopped)
    }

    /// A guard that ends the session, as lost, when dropped. A consumer holds one for as
    /// long as it runs: one that stops for any reason, a panic included, takes its session
    /// with it rather than leaving it half served. A consumer that stops because the session
    /// is ending changes nothing.
    pub(crate) fn end_when_dropped(&self, consumer: &'static str) -> EndWhenDropped {
        EndWhenDropped {
            ending: self.clone(),
            consumer,
        }
    }
}

pub(crate) struct EndWhenDropped {
    ending: SessionEnding,
    consumer: &'static str,
}

impl Drop for EndWhenDropped {
    fn drop(&mut self) {
        self.ending
            .end(SessionEnd::Lost(format!("the {} stopped", self.consumer)));
    }
}

/// Asks the broker to stop delivering to `consumer`; true once it confirmed. The consumer's
/// stream then gives what it had already received and ends. On a channel already gone this
/// fails at once, and the stream ends with the channel.
pub(crate) async fn cancel_consumer(channel: &Channel, consumer: &Consumer, what: &str) -> bool {
    let cancelling = channel.basic_cancel(consumer.tag(), BasicCancelOptions::default());
    match tokio::time::timeout(CANCEL_TIMEOUT, cancelling).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "cancelling the {what} failed");
            false
        }
        Err(_) => {
            tracing::debug!("the broker did not confirm the cancel of the {what}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_reason_wins() {
        let ending = SessionEnding::new();
        ending.end(SessionEnd::Lost("node queue".into()));
        ending.end(SessionEnd::Stopped);
        drop(ending.end_when_dropped("shared queue consumer"));
        assert_eq!(ending.ended().await, SessionEnd::Lost("node queue".into()));
    }

    #[tokio::test]
    async fn a_consumer_that_stops_ends_its_session() {
        let ending = SessionEnding::new();
        drop(ending.end_when_dropped("configuration consumer"));
        assert_eq!(
            ending.ended().await,
            SessionEnd::Lost("the configuration consumer stopped".into())
        );
    }
}
