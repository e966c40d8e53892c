//! `analytics`: the analytics service on NATS.
//!
//! Environment: `NATS_URL` (default `nats://127.0.0.1:4222`); `ANALYTICS_RETENTION_MINUTES`
//! (default 60); `FAULTS_FILE` and `FAULT_*` for injected faults (see the `faults` crate); `RUST_LOG`.

use std::sync::Arc;

use analytics::domain::{Analytics, MemoryStore};
use faults::{FaultSettings, Faults};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    natsrpc::init_tracing();
    let minutes: u64 = match std::env::var("ANALYTICS_RETENTION_MINUTES") {
        Ok(value) => value
            .parse()
            .map_err(|_| format!("ANALYTICS_RETENTION_MINUTES={value:?} is not a whole number"))?,
        Err(_) => 60,
    };
    let settings = FaultSettings::from_env()?;
    let store = MemoryStore::new(minutes * 60_000, settings.seed);
    tracing::info!(retention_minutes = minutes, "analytics starting");
    analytics::service(Arc::new(Analytics::new(store, Arc::new(Faults::new(settings))))).run().await?;
    Ok(())
}
