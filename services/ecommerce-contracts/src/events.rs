//! The events the shop publishes, for the services that follow its orders (analytics counts orders
//! and revenue from them). Both travel on JetStream: revenue must not go missing while a listener
//! is down.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::rules;

/// An order was placed (and paid).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct OrderPlacedEvent {
    /// The order.
    #[validate(regex(path = *rules::ORDER_ID, code = "order_id_format", message = "must be ord_ followed by 6 to 60 letters, digits, _ or -"))]
    pub order_id: String,
    /// Who placed it.
    #[validate(length(min = 1, max = 64))]
    pub customer_id: String,
    /// What was charged, in cents.
    pub amount_cents: u64,
    /// ISO 4217 currency of the amount.
    #[validate(length(equal = 3))]
    pub currency: String,
    /// Units ordered, all lines together.
    #[validate(range(min = 1))]
    pub units: u64,
    /// When it was placed, milliseconds since the Unix epoch.
    pub placed_at_ms: u64,
}
natsrpc::event!(
    OrderPlacedEvent,
    subject = "events.ecommerce.order_placed",
    id = order_id,
    jetstream = "ECOMMERCE_EVENTS"
);

/// A placed order was cancelled (and refunded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct OrderCancelledEvent {
    /// The order.
    #[validate(regex(path = *rules::ORDER_ID, code = "order_id_format", message = "must be ord_ followed by 6 to 60 letters, digits, _ or -"))]
    pub order_id: String,
    /// Whose order it was.
    #[validate(length(min = 1, max = 64))]
    pub customer_id: String,
    /// What was refunded, in cents.
    pub refunded_cents: u64,
    /// When it was cancelled, milliseconds since the Unix epoch.
    pub cancelled_at_ms: u64,
}
natsrpc::event!(
    OrderCancelledEvent,
    subject = "events.ecommerce.order_cancelled",
    id = order_id,
    jetstream = "ECOMMERCE_EVENTS"
);
