//! An order at a glance, gathered from three services at once: `get_order_overview` asks for the
//! stock of each of the order's items (`get_stock`, on this service), the customer's recent activity
//! (analytics) and the status of each attached upload (file processing), concurrently, under the
//! caller's one deadline.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use validator::{Validate, ValidationError};

use super::{OrderReceipt, StockLevel, rules};

/// The most attachments an overview looks up.
pub const MAX_ATTACHMENTS: usize = 16;

/// Stock of one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct GetStock {
    /// The item.
    #[validate(regex(path = *rules::SKU, code = "sku_format", message = "must be 3 to 32 capital letters, digits or -"))]
    pub sku: String,
}

/// An order with the stock of its items, its customer's recent activity and its attachments'
/// status. Sub-requests: one per distinct item, one for the activity, one per attachment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct GetOrderOverview {
    /// The order.
    #[validate(regex(path = *rules::ORDER_ID, code = "order_id_format", message = "must be ord_ followed by 6 to 60 letters, digits, _ or -"))]
    pub order_id: String,
    /// Uploads attached to the order (upload ids, `upl_...`), up to 16.
    #[serde(default)]
    #[validate(custom(function = "attachment_ids"))]
    pub attachments: Vec<String>,
}

fn attachment_ids(ids: &[String]) -> Result<(), ValidationError> {
    if ids.len() > MAX_ATTACHMENTS {
        return Err(ValidationError::new("too_many_attachments")
            .with_message(format!("at most {MAX_ATTACHMENTS} attachments").into()));
    }
    // The file service checks the rest of the id's format; this catches what is plainly not one.
    match ids.iter().find(|id| !id.starts_with("upl_") || id.len() > 64) {
        Some(_) => Err(ValidationError::new("upload_id_format")
            .with_message("an attachment is an upload id (upl_..., up to 64 characters)".into())),
        None => Ok(()),
    }
}

/// What `get_order_overview` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderOverview {
    /// The order.
    pub order: OrderReceipt,
    /// Stock of each distinct item of the order, in the order's line order.
    pub stock: Vec<StockLevel>,
    /// The customer's activity over the last hour.
    pub activity: CustomerActivity,
    /// Each attachment's status, in the request's order.
    pub attachments: Vec<AttachmentStatus>,
    /// Sub-requests made (K): items + 1 + attachments.
    pub sub_requests: u32,
}

/// A customer's recent activity, as analytics counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerActivity {
    /// The customer.
    pub customer_id: String,
    /// Events counted for them in the window (orders, cancellations, anything else ingested).
    pub events: u64,
    /// The window's start, milliseconds since the Unix epoch.
    pub since_ms: u64,
}

/// Where an attached upload stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AttachmentStatus {
    /// The upload.
    pub upload_id: String,
    /// Its phase, as the file service names it (`receiving`, `checking`, `completed`, `failed`).
    pub phase: String,
    /// Bytes received so far.
    pub received_bytes: u64,
}

natsrpc::request!(GetStock => StockLevel, service = "ecommerce", endpoint = "get_stock", idempotent = true, schema);
natsrpc::request!(GetOrderOverview => OrderOverview, service = "ecommerce", endpoint = "get_order_overview", idempotent = true, schema);
