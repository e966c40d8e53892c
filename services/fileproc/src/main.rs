//! `fileproc`: the file-processing service on NATS.
//!
//! Environment: `NATS_URL` (default `nats://127.0.0.1:4222`) and the NATS credentials and TLS
//! variables of `natsrpc::NatsConfig::from_env`; `FILE_*` for what the service holds
//! at most (see `fileproc::domain::FileLimits`); `FAULTS_FILE` and `FAULT_*` for injected faults
//! (see the `faults` crate); `RUST_LOG`. A job's accepted records go on to
//! analytics over the same NATS.

use std::sync::Arc;
use std::time::Duration;

use faults::{FaultSettings, Faults};
use fileproc::domain::{FileLimits, FileProcessor, Forwarding, MemoryStore};
use natsrpc::Client;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `--help`: what it is and what configures it (`NATS_*` from [`natsrpc::settings::NATS_HELP`]).
const ABOUT: &str = "fileproc: the file-processing service on NATS (chunked uploads, batch jobs)

Usage: fileproc    (serves until SIGTERM or Ctrl-C)

Environment:
";
const SETTINGS: &str = "  FILE_MAX_BYTES, FILE_MAX_OPEN_UPLOADS, FILE_MAX_OPEN_BYTES, FILE_UPLOAD_IDLE_SECS,
  FILE_RETENTION_SECS, FILE_MAX_JOBS, FILE_CHECKS_AT_ONCE
                      what the service holds at most, and for how long
  FAULTS_FILE, FAULT_*  injected faults (declines, transient failures, latency)
  RUST_LOG            the log's level (default info)
";

#[tokio::main]
async fn main() -> Result<(), natsrpc::MainError> {
    let help =
        format!("{ABOUT}{}{}{SETTINGS}", natsrpc::settings::NATS_HELP, natsrpc::settings::TELEMETRY_HELP);
    natsrpc::settings::command_line(&help, concat!("fileproc ", env!("CARGO_PKG_VERSION")), &[]);
    natsrpc::init_tracing();
    // METRICS_ADDR: Prometheus metrics of every service in the process, while it runs;
    // OTEL_EXPORTER_OTLP_ENDPOINT: every request's span to a collector.
    let _metrics = natsrpc::metrics::serve_from_env().await?;
    natsrpc::trace::export_from_env()?;
    // Caught from here on: a SIGTERM while starting is a graceful stop too.
    let stop = natsrpc::shutdown_signal();
    let faults = Arc::new(Faults::new(FaultSettings::from_env()?));
    tracing::info!("fileproc starting");
    // NATS_URL, and NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_NKEY, NATS_CREDS, NATS_CA, NATS_CERT/NATS_KEY.
    let nats = natsrpc::NatsConfig::from_env()?.with_name("fileproc").connect().await?;
    let forwarding = Forwarding::new(Client::new(nats.clone()));
    let limits = FileLimits::from_env()?;
    let processor = FileProcessor::new(MemoryStore::new(limits), faults)
        .with_checks_at_once(limits.checks_at_once)
        .with_forwarding(forwarding);
    let service = fileproc::service(Arc::new(processor)).start(&nats).await?;
    service.run_until(stop, Duration::from_secs(10)).await?;
    Ok(())
}
