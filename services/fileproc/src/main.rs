//! `fileproc`: the file-processing service on NATS.
//!
//! Environment: `NATS_URL` (default `nats://127.0.0.1:4222`); `FAULTS_FILE` and `FAULT_*` for
//! injected faults (see the `faults` crate); `RUST_LOG`.

use std::sync::Arc;

use faults::{FaultSettings, Faults};
use fileproc::domain::{FileProcessor, MemoryStore};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    natsrpc::init_tracing();
    let faults = Arc::new(Faults::new(FaultSettings::from_env()?));
    tracing::info!("fileproc starting");
    fileproc::service(Arc::new(FileProcessor::new(MemoryStore::default(), faults))).run().await?;
    Ok(())
}
