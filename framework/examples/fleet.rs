//! A service named `fleet` whose endpoints listen in the ways the NATS Services API allows, for a
//! look with `natsrpc info fleet` (and `nats micro info fleet`):
//!
//! - `status` on `fleet.status`, in the service's queue group (the default);
//! - `drain` in the group `fleet.admin`, on `fleet.admin.drain`;
//! - `health` on a subject of its own, `health.fleet`;
//! - `whoami` on `fleet.whoami`, in no queue group: every instance answers, for a caller that
//!   gathers the answers (`client.request_many`).
//!
//! ```text
//! cargo run -p natsrpc --example fleet          # twice, in two terminals: two instances
//! natsrpc info fleet
//! ```

use std::time::Duration;

use natsrpc::{Client, EndpointOptions, Service, ServiceError, State};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Debug, Serialize, Deserialize, Validate)]
struct Status {}
natsrpc::request!(Status => String, service = "fleet", endpoint = "status", idempotent = true);

#[derive(Debug, Serialize, Deserialize, Validate)]
struct Drain {
    #[validate(range(max = 3600))]
    seconds: u32,
}
natsrpc::request!(Drain => String, service = "fleet", endpoint = "drain", group = "fleet.admin");

#[derive(Debug, Serialize, Deserialize, Validate)]
struct Health {}
natsrpc::request!(Health => bool, service = "fleet", endpoint = "health", subject = "health.fleet");

#[derive(Debug, Serialize, Deserialize, Validate)]
struct Whoami {}
natsrpc::request!(Whoami => String, service = "fleet", endpoint = "whoami", idempotent = true);

/// This instance's name, as each endpoint answers it.
type Instance = &'static str;

async fn status(State(me): State<Instance>, _: Status) -> Result<String, ServiceError> {
    Ok(format!("{me}: serving"))
}

async fn drain(State(me): State<Instance>, req: Drain) -> Result<String, ServiceError> {
    Ok(format!("{me}: would drain within {} s", req.seconds))
}

async fn health(_: Health) -> Result<bool, ServiceError> {
    Ok(true)
}

async fn whoami(State(me): State<Instance>, _: Whoami) -> Result<String, ServiceError> {
    Ok(me.to_string())
}

const ABOUT: &str =
    "fleet: a natsrpc service with endpoint groups, a subject of its own and an endpoint in no queue group

Usage: fleet    (serves until SIGTERM or Ctrl-C)

Environment:
";

#[tokio::main]
async fn main() -> Result<(), natsrpc::MainError> {
    let stop = natsrpc::shutdown_signal();
    let help = format!("{ABOUT}{}", natsrpc::settings::NATS_HELP);
    natsrpc::settings::command_line(&help, "fleet example", &[]);
    natsrpc::init_tracing();
    let nats = natsrpc::NatsConfig::from_env()?.with_name("fleet").connect().await?;
    // A name of its own per process, so that `whoami`'s answers tell instances apart.
    let me: Instance = Box::leak(format!("fleet-{}", std::process::id()).into_boxed_str());
    let service = Service::builder("fleet", "1.0.0")
        .description("Endpoint groups, a subject of its own, and an endpoint every instance answers")
        .state(me)
        .endpoint(status)
        .endpoint(drain)
        .endpoint(health)
        .endpoint_with(whoami, EndpointOptions::new().no_queue_group())
        .start(&nats)
        .await?;

    let client = Client::new(nats);
    let instances = client.request_many(&Whoami {}, 100, Duration::from_millis(200)).await?;
    tracing::info!(
        instances = instances.len(),
        "fleet serving; health.fleet answers {}",
        client.call(&Health {}).await?
    );
    service.run_until(stop, Duration::from_secs(10)).await?;
    Ok(())
}
