//! The archive on NATS: the listeners that archive the shop's events from JetStream (each event
//! once per archive, whichever instance takes it), and an endpoint that reads an order's record.

use std::sync::Arc;

use ecommerce_contracts::events::{OrderCancelledEvent, OrderPlacedEvent};
use natsrpc::{EndpointOptions, Service, ServiceBuilder, ServiceError, State};

use crate::contracts::{ArchivedOrder, GetArchivedOrder};
use crate::error::ArchiveError;
use crate::store::Archive;

/// The service's name (its durable consumers are `archive_events_ecommerce_order_*`).
pub const SERVICE: &str = "archive";

/// The archive's listeners over `archive`, ready to start.
pub fn service(archive: Arc<Archive>) -> ServiceBuilder<Arc<Archive>> {
    Service::builder(SERVICE, env!("CARGO_PKG_VERSION"))
        .description("The shop's orders of record, archived in PostgreSQL")
        .state(archive)
        .endpoint_with(get_archived_order, EndpointOptions::new().cancel_at_deadline())
        .listener(placed)
        .listener(cancelled)
}

async fn get_archived_order(
    State(archive): State<Arc<Archive>>,
    request: GetArchivedOrder,
) -> Result<ArchivedOrder, ServiceError> {
    let events = archive.order(&request.order_id).await?;
    if events.is_empty() {
        return Err(ServiceError::not_found("order_not_archived", "the archive holds no such order"));
    }
    Ok(ArchivedOrder { order_id: request.order_id, events })
}

async fn placed(State(archive): State<Arc<Archive>>, event: OrderPlacedEvent) -> Result<(), ArchiveError> {
    archive.placed(&event).await.map(drop)
}

async fn cancelled(
    State(archive): State<Arc<Archive>>,
    event: OrderCancelledEvent,
) -> Result<(), ArchiveError> {
    archive.cancelled(&event).await.map(drop)
}
