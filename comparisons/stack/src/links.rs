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

/// The consumer of the shop's events of analytics (its durable consumer, consumer group or queue
/// is named after it).
pub const ANALYTICS: &str = "analytics";
/// The consumer of the archive's, beside analytics': every event reaches both.
pub const ARCHIVE: &str = "archive";

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

/// Hands each of the shop's events to `archive`: an order archived once, however often it comes.
pub fn archive_follower(archive: Arc<archive::Archive>) -> Follower {
    Arc::new(move |event| {
        let archive = Arc::clone(&archive);
        Box::pin(async move {
            let archived = match &event {
                ShopEvent::Placed(event) => archive.placed(event).await,
                ShopEvent::Cancelled(event) => archive.cancelled(event).await,
            };
            archived.map(drop).map_err(Into::into)
        })
    })
}

/// A follower's failures, logged when a streak of them begins and when it ends rather than once per
/// event: while a database is down, every event fails, thousands a second.
#[derive(Debug, Default)]
pub struct Failures(std::sync::atomic::AtomicU64);

impl Failures {
    /// An event failed with `error` (escaped here: an event's text may be anybody's); it comes
    /// again.
    pub fn failed(&self, error: &dyn std::fmt::Display) {
        let error = natsrpc::escape::header_value(&error.to_string()).into_owned();
        if self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 {
            tracing::warn!(%error, "order events fail; they wait and come again");
        } else {
            tracing::debug!(%error, "an order event failed again");
        }
    }

    /// An event was handled: a streak of failures, if one, is over.
    pub fn handled(&self) {
        let failed = self.0.swap(0, std::sync::atomic::Ordering::Relaxed);
        if failed > 0 {
            tracing::info!(failed, "order events are handled again");
        }
    }
}

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

/// Why an event cannot travel, or cannot be handled once it has. The texts name no values from
/// the event: they go to the log.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// It breaks its contract's rules at these paths.
    #[error("invalid {subject} event at {paths}")]
    Invalid {
        /// The event's subject.
        subject: &'static str,
        /// The fields at fault.
        paths: String,
    },
    /// It could not be written in JSON.
    #[error("{subject}: {source}")]
    Encode {
        /// The event's subject.
        subject: &'static str,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// It is not the JSON of its type.
    #[error("{subject}: {source}")]
    Decode {
        /// The event's subject.
        subject: &'static str,
        /// Where and why.
        #[source]
        source: natsrpc::codec::DecodeError,
    },
    /// Its subject is no event of the shop's (escaped).
    #[error("no such event: {0}")]
    Unknown(String),
}

/// The event's rules, checked as analytics will check them.
fn validated<E: Event>(event: &E) -> Result<(), EventError> {
    event.validate().map_err(|errors| {
        let paths: Vec<String> =
            natsrpc::validation::violations(&errors).into_iter().map(|v| v.path).collect();
        EventError::Invalid { subject: E::SUBJECT, paths: paths.join(", ") }
    })
}

/// The event, validated and in JSON.
pub fn encode(event: &ShopEvent) -> Result<Encoded, EventError> {
    fn typed<E: Event>(event: &E) -> Result<Encoded, EventError> {
        validated(event)?;
        let body =
            serde_json::to_vec(event).map_err(|source| EventError::Encode { subject: E::SUBJECT, source })?;
        Ok(Encoded { subject: E::SUBJECT, id: format!("{}:{}", E::SUBJECT, event.event_id()), body })
    }
    match event {
        ShopEvent::Placed(event) => typed(event),
        ShopEvent::Cancelled(event) => typed(event),
    }
}

/// An event that arrived as `subject` with `body`, decoded and validated; `Err` says why it can
/// never be handled (such an event is dropped, not redelivered).
pub fn decode(subject: &str, body: &[u8]) -> Result<ShopEvent, EventError> {
    fn typed<E: Event>(body: &[u8]) -> Result<E, EventError> {
        let event: E = natsrpc::Codec::Json
            .decode(body)
            .map_err(|source| EventError::Decode { subject: E::SUBJECT, source })?;
        validated(&event)?;
        Ok(event)
    }
    match subject {
        OrderPlacedEvent::SUBJECT => typed(body).map(ShopEvent::Placed),
        OrderCancelledEvent::SUBJECT => typed(body).map(ShopEvent::Cancelled),
        other => Err(EventError::Unknown(natsrpc::escape::header_value(other).into_owned())),
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
            published.map_err(Into::into)
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
        assert!(decode(encoded.subject, broken).unwrap_err().to_string().contains("order_id"));
        assert!(decode("events.elsewhere", &encoded.body).unwrap_err().to_string().contains("no such event"));
    }
}
