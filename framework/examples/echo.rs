//! A service named `echo` whose `echo` endpoint returns its JSON body's fields unchanged, and a
//! client that calls it once. Serves until Ctrl-C (or SIGTERM), then drains.
//!
//! ```text
//! cargo run -p natsrpc --example echo                  # NATS_URL defaults to nats://127.0.0.1:4222
//! echo '{"hello": "world"}' | natsrpc call echo.echo   # from another terminal (framework/cli)
//! natsrpc info echo
//! ```

use std::time::Duration;

use natsrpc::{Client, Service, ServiceError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use validator::{Validate, ValidationErrors};

// glibc's allocator spends a fifth of a small service's time in malloc and free under load;
// mimalloc costs one line.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Any JSON object; its fields come back as they went.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
struct Echo(Map<String, Value>);

/// Every object is a valid echo: there is nothing to check.
impl Validate for Echo {
    fn validate(&self) -> Result<(), ValidationErrors> {
        Ok(())
    }
}

natsrpc::request!(Echo => Echo, service = "echo", endpoint = "echo", idempotent = true);

async fn echo(request: Echo) -> Result<Echo, ServiceError> {
    Ok(request)
}

const ABOUT: &str = "echo: a natsrpc service whose echo.echo endpoint answers its JSON body

Usage: echo    (serves until SIGTERM or Ctrl-C)

Environment:
";

#[tokio::main]
async fn main() -> Result<(), natsrpc::MainError> {
    // First: a SIGTERM from here on drains the service instead of killing the process, even one
    // that comes while the service starts and already answers.
    let stop = natsrpc::shutdown_signal();
    // `--help` says what configures it (the environment), and nothing else is taken.
    let help = format!("{ABOUT}{}", natsrpc::settings::NATS_HELP);
    natsrpc::settings::command_line(&help, "echo example", &[]);
    natsrpc::init_tracing();
    // NATS_URL, and NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_NKEY, NATS_CREDS, NATS_CA, NATS_CERT/NATS_KEY.
    let nats = natsrpc::NatsConfig::from_env()?.with_name("echo").connect().await?;

    let service = Service::builder("echo", "1.0.0")
        .description("Returns its JSON body's fields unchanged")
        .endpoint(echo)
        .start(&nats)
        .await?;

    let client = Client::new(nats);
    let mut fields = Map::new();
    fields.insert("hello".into(), "world".into());
    let reply = client.call(&Echo(fields)).await?;
    let reply = Value::Object(reply.0);
    tracing::info!(%reply, "echo answered; serving on `echo.echo` until Ctrl-C");

    let report = service.run_until(stop, Duration::from_secs(10)).await?;
    tracing::info!(abandoned = report.abandoned, "bye");
    Ok(())
}
