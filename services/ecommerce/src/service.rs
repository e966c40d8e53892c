//! The e-commerce service on natsrpc: each endpoint hands its validated request to the [`Shop`].

use std::sync::Arc;

use natsrpc::{CallOptions, RequestContext, Service, ServiceBuilder, State};

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
        .endpoint(create_order::<S>)
        .endpoint(get_order::<S>)
        .endpoint(cancel_order::<S>)
        .endpoint(reserve_inventory::<S>)
        .endpoint(restock::<S>)
        .endpoint(get_stock::<S>)
        .endpoint(get_order_overview::<S>)
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
