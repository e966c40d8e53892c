//! Stock: holding it for a cart and adding to it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::rules;

/// Holds stock for a cart, all lines or none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct ReserveInventory {
    /// The holder's id (a cart, a checkout).
    #[validate(length(min = 1, max = 64))]
    pub reservation_id: String,
    /// What to hold: 1 to 100 lines.
    #[validate(length(min = 1, max = 100), nested)]
    pub lines: Vec<StockLine>,
}

/// A quantity of one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct StockLine {
    /// The item.
    #[validate(custom(function = "rules::sku_format"))]
    #[schemars(regex(pattern = rules::SKU_PATTERN))]
    pub sku: String,
    /// How many, 1 to 1000.
    #[validate(range(min = 1, max = 1000))]
    pub quantity: u32,
}

/// What `reserve_inventory` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryReserved {
    /// The holder's id.
    pub reservation_id: String,
    /// Stock left of each item after the reservation.
    pub remaining: Vec<StockLevel>,
}

/// Stock of one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StockLevel {
    /// The item.
    pub sku: String,
    /// Units available.
    pub available: u64,
}

/// Adds stock of one item (new items are added to the catalog).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct Restock {
    /// The item.
    #[validate(custom(function = "rules::sku_format"))]
    #[schemars(regex(pattern = rules::SKU_PATTERN))]
    pub sku: String,
    /// Units added, 1 to 1,000,000.
    #[validate(range(min = 1, max = 1_000_000))]
    pub quantity: u32,
}

/// What `restock` answers.
pub type Restocked = StockLevel;

natsrpc::request!(ReserveInventory => InventoryReserved, service = "ecommerce", endpoint = "reserve_inventory", schema);
natsrpc::request!(Restock => Restocked, service = "ecommerce", endpoint = "restock", schema);
