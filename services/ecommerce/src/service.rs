//! The e-commerce service on natsrpc: each endpoint hands its validated request to the [`Shop`].

use std::sync::Arc;

use natsrpc::{CallOptions, EndpointOptions, RequestContext, Service, ServiceBuilder, State};

use crate::contracts::{
    CancelOrder, CreateOrder, GetOrder, GetOrderOverview, GetStock, InventoryReserved, OrderCancelled,
    OrderOverview, OrderReceipt, ReserveInventory, Restock, Restocked, SERVICE, StockLevel,
};
use crate::domain::{Shop, ShopStore};
use crate::error::ShopError;

/// The service's endpoints over `shop`, ready to start (or to test with `natsrpc::testing::Harness`).
pub fn service<S: ShopStore>(shop: Arc<Shop<S>>) -> ServiceBuilder<Arc<Shop<S>>> {
    Service::builder(SERVICE, env!("CARGO_PKG_VERSION"))
        .description("Orders, stock and payments")
        .state(shop)
        .endpoint_with(create_order::<S>, EndpointOptions::new().idempotent_replies(IDEMPOTENT_REPLIES))
        .endpoint_with(get_order::<S>, read_only())
        .endpoint(cancel_order::<S>)
        .endpoint(reserve_inventory::<S>)
        .endpoint(restock::<S>)
        .endpoint_with(get_stock::<S>, read_only())
        .endpoint_with(get_order_overview::<S>, read_only())
}

/// How long `create_order` keeps its reply to a request with an `Idempotency-Key`: a client's
/// retry within it gets the first receipt without a second saga, on any instance. (A retry with
/// the same `order_id` and no key finds the order too, but runs the shop's lookup to do so.)
pub const IDEMPOTENT_REPLIES: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Reads change nothing: a caller's deadline stops them. Every other endpoint changes stock or
/// orders and runs to its end whatever happens to its caller (natsrpc's default).
fn read_only() -> EndpointOptions {
    EndpointOptions::new().cancel_at_deadline()
}

async fn create_order<S: ShopStore>(
    State(shop): State<Arc<Shop<S>>>,
    req: CreateOrder,
) -> Result<OrderReceipt, ShopError> {
    shop.create_order(req).await
}

async fn get_order<S: ShopStore>(
    State(shop): State<Arc<Shop<S>>>,
    req: GetOrder,
) -> Result<OrderReceipt, ShopError> {
    shop.get_order(req).await
}

async fn cancel_order<S: ShopStore>(
    State(shop): State<Arc<Shop<S>>>,
    req: CancelOrder,
) -> Result<OrderCancelled, ShopError> {
    shop.cancel_order(req).await
}

async fn reserve_inventory<S: ShopStore>(
    State(shop): State<Arc<Shop<S>>>,
    req: ReserveInventory,
) -> Result<InventoryReserved, ShopError> {
    shop.reserve_inventory(req).await
}

async fn restock<S: ShopStore>(
    State(shop): State<Arc<Shop<S>>>,
    req: Restock,
) -> Result<Restocked, ShopError> {
    shop.restock(req).await
}

async fn get_stock<S: ShopStore>(
    State(shop): State<Arc<Shop<S>>>,
    req: GetStock,
) -> Result<StockLevel, ShopError> {
    shop.get_stock(req).await
}

async fn get_order_overview<S: ShopStore>(
    State(shop): State<Arc<Shop<S>>>,
    ctx: RequestContext,
    req: GetOrderOverview,
) -> Result<OrderOverview, ShopError> {
    shop.order_overview(req, CallOptions::new().within(&ctx)).await
}
