//! # ecommerce-contracts
//!
//! The e-commerce service's contracts: request and response types with their validation rules,
//! and the events it publishes; shared by every stack that hosts the service and by the services
//! that call it or follow its events. They are a crate of their own so that analytics, which
//! follows the shop's orders, need not depend on the shop, which calls analytics.
//!
//! Endpoints: `create_order`, `get_order`, `cancel_order`, `reserve_inventory`, `restock`,
//! `get_stock`, `get_order_overview`; events ([`events`]): `order_placed`, `order_cancelled`.

pub mod events;
mod inventory;
mod order;
mod overview;
pub mod rules;

pub use inventory::{InventoryReserved, ReserveInventory, Restock, Restocked, StockLevel, StockLine};
pub use order::{
    Address, CancelOrder, Card, CreateOrder, Customer, GetOrder, Gift, LineItem, Money, OrderCancelled,
    OrderReceipt, OrderStatus, Payment, PaymentMethod, PaymentSummary, ReceiptLine, Recipient,
};
pub use overview::{
    AttachmentStatus, CustomerActivity, GetOrderOverview, GetStock, MAX_ATTACHMENTS, OrderOverview,
};

/// The service's name on NATS and in the Services API.
pub const SERVICE: &str = "ecommerce";
