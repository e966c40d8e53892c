//! Where the shop's events go: a sink the transport provides (NATS events on the NATS stack), or
//! nowhere. The shop publishes after the fact it reports is stored; a publish that fails leaves
//! the event in the store's outbox, which the relay publishes from later, and the order stands.

use std::future::Future;
use std::pin::Pin;

use crate::contracts::events::{OrderCancelledEvent, OrderPlacedEvent};

/// One of the shop's events.
#[derive(Debug, Clone, PartialEq)]
pub enum ShopEvent {
    /// An order was placed.
    Placed(OrderPlacedEvent),
    /// An order was cancelled.
    Cancelled(OrderCancelledEvent),
}

/// What publishing an event comes to: `Err` is why it did not go out (the broker's error, or the
/// event's own).
pub type Published<'a> = Pin<Box<dyn Future<Output = Result<(), natsrpc::error::BoxError>> + Send + 'a>>;

/// Takes the shop's events to whoever follows them.
pub trait EventSink: Send + Sync + 'static {
    /// Publishes `event`.
    fn publish(&self, event: ShopEvent) -> Published<'_>;
}
