//! `analytics`: the analytics service on NATS.
//!
//! Environment: `NATS_URL` (default `nats://127.0.0.1:4222`) and the NATS credentials and TLS
//! variables of `natsrpc::NatsConfig::from_env`; `ANALYTICS_RETENTION_MINUTES`
//! (default 60); `ANALYTICS_MAX_EVENTS` (events held at most, default 2,000,000); `FAULTS_FILE` and `FAULT_*` for injected faults (see the `faults` crate); `RUST_LOG`.

use std::sync::Arc;

use analytics::domain::{Analytics, MemoryStore};
use faults::{FaultSettings, Faults};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), natsrpc::MainError> {
    natsrpc::init_tracing();
    let minutes: u64 = env_or("ANALYTICS_RETENTION_MINUTES", 60)?;
    let max_events: usize = env_or("ANALYTICS_MAX_EVENTS", analytics::domain::DEFAULT_MAX_EVENTS)?;
    let settings = FaultSettings::from_env()?;
    let store = MemoryStore::new(minutes.saturating_mul(60_000), settings.seed).with_max_events(max_events);
    tracing::info!(retention_minutes = minutes, "analytics starting");
    analytics::service(Arc::new(Analytics::new(store, Arc::new(Faults::new(settings))))).run().await?;
    Ok(())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(value) => value.parse().map_err(|_| format!("{name}={value:?} is not a whole number")),
        Err(_) => Ok(default),
    }
}
