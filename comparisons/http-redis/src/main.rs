//! `http-redis`: the HTTP+Redis stack. An axum API (`POST /{service}/{endpoint}`, `GET /health`)
//! whose three services keep their state in Redis, so that any number of these processes can
//! serve behind a load balancer. With `STORE=memory` it is the control that measures HTTP alone.
//!
//! Environment: `HTTP_ADDR` (default `127.0.0.1:8080`), and the settings of
//! [`stack::Hosting::from_env`] (`REDIS_URL`, `REDIS_PREFIX`, `FAULT_*`, ...).

use stack::{Hosting, StoreKind};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    natsrpc::init_tracing();
    let hosting = Hosting::from_env(StoreKind::Redis)?;
    let address = std::env::var("HTTP_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_string());
    let app = http_api::app(hosting.dispatchers().await?);
    let listener = tokio::net::TcpListener::bind(&address).await?;
    tracing::info!(%address, store = ?hosting.store, "http-redis listening");
    axum::serve(listener, app).with_graceful_shutdown(natsrpc::server::shutdown_signal()).await?;
    Ok(())
}
