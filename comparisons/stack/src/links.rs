//! What joins the services on a stack: the client one service calls another with (over the stack's
//! transport), where the shop's events go, and what hands them to analytics at the other end.
//!
//! The events travel the same way on every stack, only over different brokers: the subject says
//! the type, the body is the event in JSON, and the consumer decodes, validates, hands it to
//! analytics and acknowledges it only then. A redelivered event is counted once, because
//! analytics keeps an order's event id once.

use std::sync::Arc;

use ecommerce::contracts::events::{OrderCancelledEvent, OrderPlacedEvent};
use ecommerce::domain::{EventSink, Published, ShopEvent};
use natsrpc::events::Event;

/// How the services of a stack reach each other.
#[derive(Clone, Default)]
pub struct Links {
    /// Calls to other services (`get_order_overview`'s parts, `process_batch`'s forwarding),
    /// over the stack's transport. Without it, those features answer 503.
    pub peers: Option<natsrpc::Client>,
    /// Where the shop's events go. Without it, none are published.
    pub events: Option<Arc<dyn EventSink>>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("peers", &self.peers.is_some())
            .field("events", &self.events.is_some())
            .finish()
    }
}

/// The future a follower answers with: `Err` leaves the event to be delivered again.
pub type Followed = Published<'static>;

/// Hands one of the shop's events to analytics (in this process).
pub type Follower = Arc<dyn Fn(ShopEvent) -> Followed + Send + Sync>;

/// An event as it travels: its subject (which says its type), its id, and its JSON.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// `events.ecommerce.order_placed` or `events.ecommerce.order_cancelled`.
    pub subject: &'static str,
    /// Unique per event type and order: `{subject}:{order_id}`.
    pub id: String,
    /// The event.
    pub body: Vec<u8>,
}

/// The event, validated and in JSON.
pub fn encode(event: &ShopEvent) -> Result<Encoded, String> {
    fn typed<E: Event>(event: &E) -> Result<Encoded, String> {
        event.validate().map_err(|errors| format!("invalid {} event: {errors}", E::SUBJECT))?;
        let body = serde_json::to_vec(event).map_err(|error| error.to_string())?;
        Ok(Encoded { subject: E::SUBJECT, id: format!("{}:{}", E::SUBJECT, event.event_id()), body })
    }
    match event {
        ShopEvent::Placed(event) => typed(event),
        ShopEvent::Cancelled(event) => typed(event),
    }
}

/// An event that arrived as `subject` with `body`, decoded and validated; `Err` says why it can
/// never be handled (such an event is dropped, not redelivered).
pub fn decode(subject: &str, body: &[u8]) -> Result<ShopEvent, String> {
    // The reasons name no values from the event: they go to the log.
    fn typed<E: Event>(body: &[u8]) -> Result<E, String> {
        let event: E =
            natsrpc::Codec::Json.decode(body).map_err(|error| format!("{}: {error}", E::SUBJECT))?;
        event.validate().map_err(|errors| {
            let paths: Vec<String> =
                natsrpc::validation::violations(&errors).into_iter().map(|v| v.path).collect();
            format!("invalid {} event at {}", E::SUBJECT, paths.join(", "))
        })?;
        Ok(event)
    }
    match subject {
        OrderPlacedEvent::SUBJECT => typed(body).map(ShopEvent::Placed),
        OrderCancelledEvent::SUBJECT => typed(body).map(ShopEvent::Cancelled),
        other => Err(format!("no such event: {}", natsrpc::escape::header_value(other))),
    }
}

/// The subjects of the shop's events.
pub const SUBJECTS: [&str; 2] = [OrderPlacedEvent::SUBJECT, OrderCancelledEvent::SUBJECT];

/// The shop's events as natsrpc events on NATS (JetStream).
pub struct NatsEvents(pub natsrpc::events::Publisher);

impl EventSink for NatsEvents {
    fn publish(&self, event: ShopEvent) -> Published<'_> {
        Box::pin(async move {
            let published = match &event {
                ShopEvent::Placed(e) => self.0.publish(e).await,
                ShopEvent::Cancelled(e) => self.0.publish(e).await,
            };
            published.map_err(|error| error.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_travel_as_json_and_come_back_validated() {
        let placed = ShopEvent::Placed(OrderPlacedEvent {
            order_id: "ord_round_trip".into(),
            customer_id: "cus_1".into(),
            amount_cents: 1250,
            currency: "EUR".into(),
            units: 2,
            placed_at_ms: 1,
        });
        let encoded = encode(&placed).unwrap();
        assert_eq!(encoded.id, "events.ecommerce.order_placed:ord_round_trip");
        assert_eq!(decode(encoded.subject, &encoded.body).unwrap(), placed);
        let broken = br#"{"order_id":"nope","customer_id":"c","amount_cents":1,"currency":"EUR","units":1,"placed_at_ms":1}"#;
        assert!(decode(encoded.subject, broken).unwrap_err().contains("order_id"));
        assert!(decode("events.elsewhere", &encoded.body).unwrap_err().contains("no such event"));
    }
}
