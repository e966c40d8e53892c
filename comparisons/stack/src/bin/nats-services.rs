//! `nats-services`: the three services on NATS in one process, over the store `STORE` names
//! (`memory` or `redis`; default `redis`, the control that tells transport cost from state-store
//! cost). Environment as in [`stack::Hosting::from_env`], plus `NATS_URL`.

use std::time::Duration;

use stack::{Hosting, StoreKind};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), natsrpc::MainError> {
    natsrpc::init_tracing();
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
