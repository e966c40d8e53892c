//! `ecommerce`: the e-commerce service on NATS.
//!
//! Environment: `NATS_URL` (default `nats://127.0.0.1:4222`) and the NATS credentials and TLS
//! variables of `natsrpc::NatsConfig::from_env`; `ECOMMERCE_SKUS` and
//! `ECOMMERCE_STOCK` (catalog size and units of each item, default 1000 and 1,000,000);
//! `FAULTS_FILE` and `FAULT_*` for injected faults (see the `faults` crate); `RUST_LOG`.
//! `get_order_overview` calls analytics and fileproc (and this service) over the same NATS.

use std::sync::Arc;
use std::time::Duration;

use ecommerce::domain::{MemoryStore, Shop};
use faults::{FaultSettings, Faults};
use natsrpc::Client;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `--help`: what it is and what configures it (`NATS_*` from [`natsrpc::settings::NATS_HELP`]).
const ABOUT: &str = "ecommerce: the e-commerce service on NATS (orders, inventory, order overviews)

Usage: ecommerce    (serves until SIGTERM or Ctrl-C)

Environment:
";
const SETTINGS: &str = "  ECOMMERCE_SKUS      the catalog's size (default 1000)
  ECOMMERCE_STOCK     units of each item at start (default 1000000)
  FAULTS_FILE, FAULT_*  injected faults (declines, transient failures, latency)
  RUST_LOG            the log's level (default info)
";

#[tokio::main]
async fn main() -> Result<(), natsrpc::MainError> {
    let help =
        format!("{ABOUT}{}{}{SETTINGS}", natsrpc::settings::NATS_HELP, natsrpc::settings::TELEMETRY_HELP);
    natsrpc::settings::command_line(&help, concat!("ecommerce ", env!("CARGO_PKG_VERSION")), &[]);
    natsrpc::init_tracing();
    // METRICS_ADDR: Prometheus metrics of every service in the process, while it runs;
    // OTEL_EXPORTER_OTLP_ENDPOINT: every request's span to a collector.
    let _metrics = natsrpc::metrics::serve_from_env().await?;
    natsrpc::trace::export_from_env()?;
    // Caught from here on: a SIGTERM while starting is a graceful stop too.
    let stop = natsrpc::shutdown_signal();
    let skus: u32 = natsrpc::settings::env_or("ECOMMERCE_SKUS", 1000, "a whole number")?;
    let units: u64 = natsrpc::settings::env_or("ECOMMERCE_STOCK", 1_000_000, "a whole number")?;
    let faults = Arc::new(Faults::new(FaultSettings::from_env()?));
    tracing::info!(skus, units, "ecommerce starting");
    // NATS_URL, and NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_NKEY, NATS_CREDS, NATS_CA, NATS_CERT/NATS_KEY.
    let nats = natsrpc::NatsConfig::from_env()?.with_name("ecommerce").connect().await?;
    let shop =
        Shop::new(MemoryStore::with_catalog(skus, units), faults).with_peers(Client::new(nats.clone()));
    let shop = Arc::new(shop);
    shop.sweep(ecommerce::domain::SWEEP_EVERY);
    let service = ecommerce::service(shop).start(&nats).await?;
    service.run_until(stop, Duration::from_secs(10)).await?;
    Ok(())
}
