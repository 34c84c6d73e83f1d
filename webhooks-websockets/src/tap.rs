//! Events handed to this node directly (`POST /v2/events`, or an embedder's own publish)
//! reach the live streams too: [`Tapped`] is an [`EventSink`] that shows each event it passes
//! on to the hub. Events from RabbitMQ reach the hub through the node's own queue instead, so
//! an event is never streamed twice.

use std::sync::Arc;

use webhooks_core::event::EventError;
use webhooks_core::transport::EventTap;
use webhooks_core::{Event, EventSink, PublishReport, Settled};

pub struct Tapped {
    sink: Arc<dyn EventSink>,
    tap: Arc<dyn EventTap>,
}

impl Tapped {
    pub fn new(sink: Arc<dyn EventSink>, tap: Arc<dyn EventTap>) -> Tapped {
        Tapped { sink, tap }
    }
}

/// The event is shown to the tap once the sink took it: a malformed event is streamed no
/// more than it is delivered.
#[async_trait::async_trait]
impl EventSink for Tapped {
    async fn publish(&self, event: Event) -> Result<PublishReport, EventError> {
        let copy = event.clone();
        let report = self.sink.publish(event).await?;
        self.tap.event(None, &copy);
        Ok(report)
    }

    async fn publish_held(&self, event: Event) -> Result<(PublishReport, Settled), EventError> {
        let copy = event.clone();
        let taken = self.sink.publish_held(event).await?;
        self.tap.event(None, &copy);
        Ok(taken)
    }
}
