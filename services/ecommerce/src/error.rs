//! The e-commerce service's error, and its one mapping to the wire.

use natsrpc::ServiceError;

/// What can go wrong in the shop.
#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    /// Not enough stock of an item (409 `out_of_stock`).
    #[error("only {available} of {sku} in stock, {requested} requested")]
    OutOfStock {
        /// The item.
        sku: String,
        /// Units asked for.
        requested: u64,
        /// Units there are.
        available: u64,
    },
    /// An item the catalog does not have (422 `unknown_sku`).
    #[error("{0} is not in the catalog")]
    UnknownSku(String),
    /// No order with that id (404 `order_not_found`).
    #[error("no order {0}")]
    OrderNotFound(String),
    /// The same order is being placed by another request right now (409 `order_in_progress`).
    #[error("order {0} is being placed by another request")]
    OrderInProgress(String),
    /// An order id used again for a different order (409 `order_id_reused`).
    #[error("order {0} already exists with different content")]
    OrderIdReused(String),
    /// The order is already cancelled (409 `already_cancelled`).
    #[error("order {0} is already cancelled")]
    AlreadyCancelled(String),
    /// The payment was declined (422 `payment_declined`).
    #[error("payment declined: {0}")]
    PaymentDeclined(String),
    /// Placing the order took longer than its claim lasts: its stock went back and any charge was
    /// voided (503 `order_expired`; place it again).
    #[error("placing order {order_id} took longer than {after:?}; nothing was charged, place it again")]
    OrderExpired {
        /// The order.
        order_id: String,
        /// How long a claim lasts.
        after: std::time::Duration,
    },
    /// The payment gateway kept failing after the retries (503 `payment_unavailable`).
    #[error("the payment gateway failed {attempts} times")]
    PaymentUnavailable {
        /// Attempts made.
        attempts: u32,
    },
    /// A part of an order overview failed or was late (502, 503 or 504, every such part named).
    #[error("{0}")]
    Overview(ServiceError),
    /// The overview needs calls to other services, which this shop was not given (503).
    #[error("this deployment makes no calls to other services, which get_order_overview needs")]
    NoPeers,
    /// An injected internal failure (500).
    #[error("injected internal error")]
    InjectedFault,
    /// The state store failed (500).
    #[error("store: {0}")]
    Store(String),
}

impl From<ShopError> for ServiceError {
    fn from(error: ShopError) -> Self {
        let message = error.to_string();
        match error {
            ShopError::OutOfStock { sku, .. } => {
                ServiceError::conflict(faults::codes::OUT_OF_STOCK, message).with_path(sku)
            }
            ShopError::UnknownSku(sku) => ServiceError::unprocessable("unknown_sku", message).with_path(sku),
            ShopError::OrderNotFound(_) => ServiceError::not_found("order_not_found", message),
            ShopError::OrderInProgress(_) => ServiceError::conflict("order_in_progress", message),
            ShopError::OrderIdReused(_) => ServiceError::conflict("order_id_reused", message),
            ShopError::AlreadyCancelled(_) => ServiceError::conflict("already_cancelled", message),
            ShopError::PaymentDeclined(_) => {
                ServiceError::unprocessable(faults::codes::PAYMENT_DECLINED, message)
            }
            ShopError::OrderExpired { .. } => ServiceError::business(503, "order_expired", message),
            ShopError::PaymentUnavailable { .. } => {
                ServiceError::business(503, faults::codes::PAYMENT_UNAVAILABLE, message)
            }
            ShopError::Overview(error) => error,
            ShopError::NoPeers => ServiceError::unavailable(message),
            ShopError::InjectedFault => ServiceError::internal("internal error"),
            ShopError::Store(detail) => {
                // The detail stays in the log; callers learn only that the service failed.
                tracing::error!(%detail, "store failure");
                ServiceError::internal("internal error")
            }
        }
    }
}
