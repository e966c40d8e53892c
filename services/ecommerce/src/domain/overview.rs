//! `get_order_overview`: one request in, K requests out, at once, over the stack's transport (even
//! to this very service), joined under the caller's deadline. A part that fails or is late is named
//! in the error, so the caller learns which dependency let it down rather than only that it waited.

use analytics_contracts::{UserActivity, Window, now_ms};
use fileproc_contracts::UploadStatus;
use futures::future::join_all;
use natsrpc::{CallOptions, Client, RpcError, ServiceError};

use crate::contracts::{
    AttachmentStatus, CustomerActivity, GetStock, OrderOverview, OrderReceipt, StockLevel,
};
use crate::error::ShopError;

/// How far back the customer's activity goes.
pub const ACTIVITY_WINDOW_MS: u64 = 60 * 60 * 1000;

/// Asks for every part of `order`'s overview at once and joins the answers.
pub(super) async fn gather(
    peers: &Client,
    order: OrderReceipt,
    attachments: Vec<String>,
    calls: CallOptions,
) -> Result<OrderOverview, ShopError> {
    let mut skus: Vec<&str> = Vec::new();
    for line in &order.lines {
        if !skus.contains(&line.sku.as_str()) {
            skus.push(&line.sku);
        }
    }
    let now = now_ms();
    let since_ms = now.saturating_sub(ACTIVITY_WINDOW_MS);
    let activity = UserActivity {
        user_id: order.customer_id.clone(),
        window: Window { from_ms: since_ms, to_ms: now + 1 },
    };
    let stock = join_all(skus.iter().map(|sku| {
        let request = GetStock { sku: sku.to_string() };
        let calls = calls.clone();
        async move { (format!("ecommerce.get_stock[{sku}]"), peers.call_with(&request, calls).await) }
    }));
    let files = join_all(attachments.iter().map(|id| {
        let request = UploadStatus { upload_id: id.clone() };
        let calls = calls.clone();
        async move { (format!("fileproc.upload_status[{id}]"), peers.call_with(&request, calls).await) }
    }));
    let activity =
        async { ("analytics.user_activity".to_string(), peers.call_with(&activity, calls.clone()).await) };
    let (stock, files, activity) = futures::join!(stock, files, activity);

    let sub_requests = u32::try_from(stock.len() + 1 + files.len()).unwrap_or(u32::MAX);
    let mut failures = Failures::default();
    let stock: Vec<StockLevel> =
        stock.into_iter().filter_map(|(part, answer)| failures.keep(part, answer)).collect();
    let attachments: Vec<AttachmentStatus> = files
        .into_iter()
        .filter_map(|(part, answer)| failures.keep(part, answer))
        .map(|state| AttachmentStatus {
            upload_id: state.upload_id,
            phase: serde_json::to_value(state.phase)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            received_bytes: state.received_bytes,
        })
        .collect();
    let activity = failures.keep(activity.0, activity.1);
    // Every part answered, or the error names those that did not.
    match (failures.into_error(sub_requests), activity) {
        (None, Some(activity)) => {
            let activity =
                CustomerActivity { customer_id: activity.user_id, events: activity.events, since_ms };
            Ok(OrderOverview { order, stock, activity, attachments, sub_requests })
        }
        (error, _) => Err(ShopError::Overview(
            error.unwrap_or_else(|| ServiceError::internal("the overview lost its activity part")),
        )),
    }
}

/// The parts that failed, each as the error its caller should see.
#[derive(Default)]
struct Failures(Vec<ServiceError>);

impl Failures {
    fn keep<T>(&mut self, part: String, answer: Result<T, RpcError>) -> Option<T> {
        answer.map_err(|error| self.0.push(error.part_failed(&part))).ok()
    }

    /// One error naming every failed part: late parts first (the caller's deadline is what they
    /// cost), then the others; status, code and path are the first one's.
    fn into_error(mut self, parts: u32) -> Option<ServiceError> {
        self.0.sort_by_key(|error| error.code != "part_late");
        let first = self.0.first()?.clone();
        let all: Vec<&str> = self.0.iter().map(|error| error.message.as_str()).collect();
        let message = format!("{} of {parts} parts of the overview failed: {}", all.len(), all.join("; "));
        Some(ServiceError { message, ..first })
    }
}
