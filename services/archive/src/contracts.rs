//! The archive's one endpoint: an order's record as archived.

use ecommerce_contracts::rules;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use validator::Validate;

/// Reads what the archive holds of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct GetArchivedOrder {
    /// The order's id.
    #[validate(custom(function = "rules::order_id_format"))]
    #[schemars(regex(pattern = rules::ORDER_ID_PATTERN))]
    pub order_id: String,
}

/// What `get_archived_order` answers: each event of the order the archive holds, placed first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ArchivedOrder {
    /// The order's id.
    pub order_id: String,
    /// Its rows, in the order they happened.
    pub events: Vec<ArchivedRow>,
}

/// One row of the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ArchivedRow {
    /// `placed` or `cancelled`.
    pub event: String,
    /// Whose order.
    pub customer_id: String,
    /// Charged (placed) or refunded (cancelled), in cents.
    pub amount_cents: u64,
    /// The currency of a placed order.
    pub currency: Option<String>,
    /// Units of a placed order.
    pub units: Option<u64>,
    /// When it happened at the shop, milliseconds since the Unix epoch.
    pub at_ms: u64,
}

natsrpc::request!(GetArchivedOrder => ArchivedOrder, service = "archive", endpoint = "get_archived_order", idempotent = true, schema);
