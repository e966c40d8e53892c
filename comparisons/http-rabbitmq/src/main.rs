//! `http-rabbitmq gateway` and `http-rabbitmq worker`: the two kinds of process of the
//! HTTP+RabbitMQ stack.
//!
//! Both read `AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`; user, password and virtual
//! host in it, `amqps://` for TLS), `AMQP_CA` and `AMQP_CERT` + `AMQP_KEY` (see [`Broker`]), `QUEUE_PREFIX`
//! (default `rpc`: the queues are `rpc.ecommerce`, `rpc.analytics` and `rpc.fileproc`).
//! - `gateway`: `HTTP_ADDR` (default `127.0.0.1:8081`), `HTTP_TLS_CERT` + `HTTP_TLS_KEY` (PEM: serve
//!   HTTPS), `GATEWAY_TIMEOUT_MS` (default 5000),
//!   `AMQP_CHANNELS` (default 4).
//! - `worker`: `WORKER_PREFETCH` (requests held per service, default 64), and the services'
//!   settings of `stack::Hosting::from_env`, with `STORE` defaulting to `redis` so that any number
//!   of workers share one state. Services call each other over AMQP RPC through the broker; with
//!   `ORDER_EVENTS=on` the shop's events go through a durable exchange and a queue per consumer
//!   (`events`): analytics', and the archive's with `ARCHIVE_URL`.
//!   `SERVICES` picks the services a worker serves, so each can run in workers of its own.

use std::sync::Arc;
use std::time::Duration;

use http_rabbitmq::events::{self, AmqpEvents};
use http_rabbitmq::rpc::{AmqpRpc, AmqpTransport};
use http_rabbitmq::{Broker, DEFAULT_QUEUE_PREFIX, gateway::Gateway, worker};
use natsrpc::settings::env_or;
use stack::{Hosting, Links, StoreKind, links};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `--help`: what it is and what configures it.
const ABOUT: &str = "http-rabbitmq: the HTTP+RabbitMQ stack's two kinds of process

Usage: http-rabbitmq gateway    an axum API that sends each request over AMQP RPC and waits
       http-rabbitmq worker     serves the requests of the services' queues

Environment, both:
  AMQP_URL            (default amqp://guest:guest@127.0.0.1:5672/%2f; amqps:// for TLS)
  AMQP_CA, AMQP_CERT + AMQP_KEY  PEM files for TLS
  QUEUE_PREFIX        the services' queues' prefix (default rpc)
The gateway:
  HTTP_ADDR           where to listen (default 127.0.0.1:8081)
  HTTP_TLS_CERT + HTTP_TLS_KEY  PEM files: serve HTTPS
  GATEWAY_TIMEOUT_MS  how long a request waits for its answer (default 5000)
  AMQP_CHANNELS       channels publishing requests (default 4)
A worker (STORE defaults to redis, so that workers share one state):
  WORKER_PREFETCH     requests held per service (default 64)
";

#[tokio::main]
async fn main() -> Result<(), natsrpc::MainError> {
    let help = format!("{ABOUT}{}{}", stack::HOSTING_HELP, natsrpc::settings::TELEMETRY_HELP);
    let role = natsrpc::settings::command_line(
        &help,
        concat!("http-rabbitmq ", env!("CARGO_PKG_VERSION")),
        &["gateway", "worker"],
    );
    // First: a SIGTERM from here on stops the process gracefully, even one that comes while it
    // starts and already answers.
    let signal = natsrpc::shutdown_signal();
    natsrpc::init_tracing();
    // METRICS_ADDR: Prometheus metrics of every service in the process, while it runs;
    // OTEL_EXPORTER_OTLP_ENDPOINT: every request's span to a collector.
    let _metrics = natsrpc::metrics::serve_from_env().await?;
    natsrpc::trace::export_from_env()?;
    let broker = Broker::from_env()?;
    let prefix = std::env::var("QUEUE_PREFIX").unwrap_or_else(|_| DEFAULT_QUEUE_PREFIX.to_string());
    match role {
        Some("gateway") => {
            let timeout = Duration::from_millis(env_or("GATEWAY_TIMEOUT_MS", 5000, "a whole number")?);
            let services = stack::SERVICES.iter().map(|s| s.to_string()).collect();
            let gateway = Gateway::connect(
                &broker,
                &prefix,
                services,
                env_or("AMQP_CHANNELS", 4, "a whole number")?,
                timeout,
            )
            .await?;
            let address = std::env::var("HTTP_ADDR").unwrap_or_else(|_| "127.0.0.1:8081".to_string());
            let tls = http_api::ServerTls::from_env()?;
            let listener = tokio::net::TcpListener::bind(&address).await?;
            tracing::info!(%address, tls = tls.is_some(), ?timeout, "http-rabbitmq gateway listening");
            http_api::serve(listener, http_api::app_over(gateway), tls.as_ref(), signal).await?;
        }
        Some("worker") => {
            let hosting = Hosting::from_env(StoreKind::Redis)?;
            // Calls to other services go back through the broker, as the gateway's do.
            let rpc = AmqpRpc::connect(&broker, "http-rabbitmq worker calls", &prefix, 2).await?;
            let peers = natsrpc::Client::over(AmqpTransport(Arc::new(rpc)));
            let mut links = Links { peers: Some(peers), events: None };
            if hosting.order_events {
                let consumers = hosting.event_consumers();
                links.events = Some(Arc::new(AmqpEvents::connect(&broker, &prefix, consumers).await?));
            }
            let hosted = hosting.host(links).await?;
            let mut _following = Vec::new();
            if hosting.order_events && hosting.hosts(analytics::contracts::SERVICE) {
                _following.push(events::follow(&broker, &prefix, links::ANALYTICS, hosted.follower).await?);
                if let Some(archive) = hosted.archive {
                    _following.push(events::follow(&broker, &prefix, links::ARCHIVE, archive).await?);
                }
            }
            let prefetch = env_or("WORKER_PREFETCH", 64, "a whole number")?;
            let stop = tokio_util::sync::CancellationToken::new();
            let stopping = stop.clone();
            tokio::spawn(async move {
                signal.await;
                stopping.cancel();
            });
            let finishing: Vec<natsrpc::Finishing> =
                hosted.dispatchers.iter().map(|d| d.finishing()).collect();
            worker::serve_until(
                &broker,
                &prefix,
                hosted.dispatchers,
                prefetch,
                Duration::from_secs(10),
                stop,
            )
            .await;
            // Handlers still running past their callers' deadlines end what they began.
            let abandoned = natsrpc::Finishing::wait_all(finishing, Duration::from_secs(10)).await;
            tracing::info!(abandoned, "worker stopped");
        }
        _ => return Err("usage: http-rabbitmq gateway|worker (see --help)".into()),
    }
    Ok(())
}
