//! `http-redis`: the HTTP+Redis stack. An axum API (`POST /{service}/{endpoint}`, `GET /health`)
//! whose three services keep their state in Redis, so that any number of these processes can
//! serve behind a load balancer. With `STORE=memory` it is the control that measures HTTP alone.
//!
//! The services call each other over HTTP (a pooled client; `PEERS` says where services this
//! process does not host answer, such as `analytics=http://127.0.0.1:8091`), and with
//! `ORDER_EVENTS=on` the shop's events go through a Redis stream that analytics follows in a
//! consumer group, and the archive (with `ARCHIVE_URL`) in another.
//!
//! Environment: `HTTP_ADDR` (default `127.0.0.1:8080`), `HTTP_TLS_CERT` + `HTTP_TLS_KEY` (PEM files:
//! serve HTTPS), `PEERS`, `PEERS_CA` (a PEM CA to trust for `https://` peers, this process
//! included, instead of the system's), and the settings of
//! [`stack::Hosting::from_env`] (`REDIS_URL`, `REDIS_PREFIX`, `SERVICES`, `FAULT_*`, ...).

use std::sync::Arc;

use http_api::client::{HttpTransport, Routes};
use stack::redis::streams::{self, RedisStreamEvents};
use stack::{Hosting, Links, StoreKind, links};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `--help`: what it is and what configures it.
const ABOUT: &str =
    "http-redis: the three services behind an axum HTTP API, state in Redis (the HTTP+Redis stack)

Usage: http-redis    (serves POST /{service}/{endpoint} and GET /health until SIGTERM or Ctrl-C)

Environment (STORE defaults to redis; memory is the HTTP-alone control):
  HTTP_ADDR           where to listen (default 127.0.0.1:8080)
  HTTP_TLS_CERT + HTTP_TLS_KEY  PEM files: serve HTTPS
  PEERS               where services this process does not host answer: analytics=http://...
  PEERS_CA            a PEM CA to trust for https:// peers
";

#[tokio::main]
async fn main() -> Result<(), natsrpc::MainError> {
    // First: a SIGTERM from here on stops the process gracefully, even one that comes while it
    // starts.
    let help = format!("{ABOUT}{}{}", stack::HOSTING_HELP, natsrpc::settings::TELEMETRY_HELP);
    natsrpc::settings::command_line(&help, concat!("http-redis ", env!("CARGO_PKG_VERSION")), &[]);
    let signal = natsrpc::shutdown_signal();
    natsrpc::init_tracing();
    // METRICS_ADDR: Prometheus metrics of every service in the process, while it runs;
    // OTEL_EXPORTER_OTLP_ENDPOINT: every request's span to a collector.
    let _metrics = natsrpc::metrics::serve_from_env().await?;
    natsrpc::trace::export_from_env()?;
    let hosting = Hosting::from_env(StoreKind::Redis)?;
    let address = std::env::var("HTTP_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_string());
    let tls = http_api::ServerTls::from_env()?;
    // Calls to the services this process hosts come back to it, over HTTPS when it serves HTTPS.
    let scheme = if tls.is_some() { "https" } else { "http" };
    let routes = Routes::all_at(format!("{scheme}://{address}"))
        .with_list(&std::env::var("PEERS").unwrap_or_default())?;
    let peers_ca = std::env::var_os("PEERS_CA").filter(|ca| !ca.is_empty()).map(std::path::PathBuf::from);
    let peers = HttpTransport::trusting(routes, peers_ca.as_deref())?;
    let mut links = Links { peers: Some(natsrpc::Client::over(peers)), events: None };
    let mut events = None;
    if hosting.order_events {
        let pool = hosting.redis_pool().await?;
        events = Some(streams::stream_key(&pool));
        links.events = Some(Arc::new(RedisStreamEvents::new(pool)));
    }
    let hosted = hosting.host(links).await?;
    let follows = hosting.hosts(analytics::contracts::SERVICE);
    let mut _following = Vec::new();
    if let Some(key) = events.filter(|_| follows) {
        let (url, ca) = (&hosting.redis_url, hosting.redis_ca.as_deref());
        _following.push(streams::follow(url, ca, key.clone(), links::ANALYTICS, hosted.follower).await?);
        if let Some(archive) = hosted.archive {
            _following.push(streams::follow(url, ca, key, links::ARCHIVE, archive).await?);
        }
    }
    let finishing: Vec<natsrpc::Finishing> = hosted.dispatchers.iter().map(|d| d.finishing()).collect();
    let app = http_api::app(hosted.dispatchers);
    let listener = tokio::net::TcpListener::bind(&address).await?;
    tracing::info!(%address, tls = tls.is_some(), store = ?hosting.store, services = ?hosting.services, "http-redis listening");
    http_api::serve(listener, app, tls.as_ref(), signal).await?;
    // Handlers still running past their callers' deadlines end what they began.
    let abandoned = natsrpc::Finishing::wait_all(finishing, std::time::Duration::from_secs(10)).await;
    tracing::info!(abandoned, "http-redis stopped");
    Ok(())
}
