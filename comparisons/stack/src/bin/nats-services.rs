//! `nats-services`: the three services on NATS in one process, over the store `STORE` names
//! (`memory` or `redis`; default `redis`, the control that tells transport cost from state-store
//! cost). Environment as in [`stack::Hosting::from_env`], plus `NATS_URL`.

use std::time::Duration;

use stack::{Hosting, StoreKind};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `--help`: what it is and what configures it.
const ABOUT: &str = "nats-services: the three services on NATS in one process (the benchmark's NATS stack)

Usage: nats-services    (serves until SIGTERM or Ctrl-C)

Environment (STORE defaults to redis):
";

#[tokio::main]
async fn main() -> Result<(), natsrpc::MainError> {
    let help = format!(
        "{ABOUT}{}{}{}",
        natsrpc::settings::NATS_HELP,
        stack::HOSTING_HELP,
        natsrpc::settings::TELEMETRY_HELP
    );
    natsrpc::settings::command_line(&help, concat!("nats-services ", env!("CARGO_PKG_VERSION")), &[]);
    natsrpc::init_tracing();
    // METRICS_ADDR: Prometheus metrics of every service in the process, while it runs;
    // OTEL_EXPORTER_OTLP_ENDPOINT: every request's span to a collector.
    let _metrics = natsrpc::metrics::serve_from_env().await?;
    natsrpc::trace::export_from_env()?;
    // Caught from here on: a SIGTERM while starting is a graceful stop too.
    let stop = natsrpc::shutdown_signal();
    let hosting = Hosting::from_env(StoreKind::Redis)?;
    // NATS_URL, and NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_NKEY, NATS_CREDS, NATS_CA, NATS_CERT/NATS_KEY.
    let nats = natsrpc::NatsConfig::from_env()?.with_name("nats-services").connect().await?;
    let services = hosting.start_on(&nats).await?;
    stop.await;
    for service in services {
        service.stop(Duration::from_secs(10)).await?;
    }
    Ok(())
}
