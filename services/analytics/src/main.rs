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

/// `--help`: what it is and what configures it (`NATS_*` from [`natsrpc::settings::NATS_HELP`]).
const ABOUT: &str = "analytics: the analytics service on NATS (events in; aggregates, time series, top N out)

Usage: analytics    (serves until SIGTERM or Ctrl-C)

Environment:
";
const SETTINGS: &str = "  ANALYTICS_RETENTION_MINUTES  how long events count (default 60)
  ANALYTICS_MAX_EVENTS         events held at most (default 2000000)
  FAULTS_FILE, FAULT_*  injected faults (declines, transient failures, latency)
  RUST_LOG            the log's level (default info)
";

#[tokio::main]
async fn main() -> Result<(), natsrpc::MainError> {
    let help =
        format!("{ABOUT}{}{}{SETTINGS}", natsrpc::settings::NATS_HELP, natsrpc::settings::TELEMETRY_HELP);
    natsrpc::settings::command_line(&help, concat!("analytics ", env!("CARGO_PKG_VERSION")), &[]);
    natsrpc::init_tracing();
    let minutes: u64 = natsrpc::settings::env_or("ANALYTICS_RETENTION_MINUTES", 60, "a whole number")?;
    let max_events: usize = natsrpc::settings::env_or(
        "ANALYTICS_MAX_EVENTS",
        analytics::domain::DEFAULT_MAX_EVENTS,
        "a whole number",
    )?;
    let settings = FaultSettings::from_env()?;
    let store = MemoryStore::new(minutes.saturating_mul(60_000), settings.seed).with_max_events(max_events);
    tracing::info!(retention_minutes = minutes, "analytics starting");
    analytics::service(Arc::new(Analytics::new(store, Arc::new(Faults::new(settings))))).run().await?;
    Ok(())
}
