//! `ecommerce`: the e-commerce service on NATS.
//!
//! Environment: `NATS_URL` (default `nats://127.0.0.1:4222`); `ECOMMERCE_SKUS` and
//! `ECOMMERCE_STOCK` (catalog size and units of each item, default 1000 and 1,000,000);
//! `FAULTS_FILE` and `FAULT_*` for injected faults (see the `faults` crate); `RUST_LOG`.

use std::sync::Arc;
use std::time::Duration;

use ecommerce::domain::{MemoryStore, Shop};
use faults::{FaultSettings, Faults};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string());
    let skus = number("ECOMMERCE_SKUS", 1000)?;
    let units = number("ECOMMERCE_STOCK", 1_000_000)?;
    let faults = Arc::new(Faults::new(FaultSettings::from_env().map_err(|e| e.to_string())?));
    let shop = Arc::new(Shop::new(
        MemoryStore::with_catalog(u32::try_from(skus).unwrap_or(u32::MAX), units),
        faults,
    ));

    let nats = natsrpc::connect(&url).await.map_err(|e| e.to_string())?;
    let service = ecommerce::service(shop).start(&nats).await.map_err(|e| e.to_string())?;
    tracing::info!(skus, units, "ecommerce serving");
    service
        .run_until(natsrpc::shutdown_signal(), Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn number(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(value) => value.parse().map_err(|_| format!("{name}={value:?} is not a whole number")),
        Err(_) => Ok(default),
    }
}
