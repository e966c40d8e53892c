//! The e-commerce service's contracts: request and response types with their validation rules,
//! shared by every stack that hosts the service.
//!
//! Endpoints: `create_order`, `get_order`, `cancel_order`, `reserve_inventory`, `restock`; events
//! (`events`): `order_placed`, `order_cancelled`.

pub mod events;
mod inventory;
mod order;
pub mod rules;

pub use inventory::{InventoryReserved, ReserveInventory, Restock, Restocked, StockLevel, StockLine};
pub use order::{
    Address, CancelOrder, Card, CreateOrder, Customer, GetOrder, Gift, LineItem, Money, OrderCancelled,
    OrderReceipt, OrderStatus, Payment, PaymentMethod, PaymentSummary, ReceiptLine, Recipient,
};

/// The service's name on NATS and in the Services API.
pub const SERVICE: &str = "ecommerce";
