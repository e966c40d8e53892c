//! Prometheus metrics of every service in the process, over HTTP.
//!
//! Every service started on NATS and every [`Dispatcher`](crate::Dispatcher) (the HTTP stacks'
//! services) counts its requests whether or not anything reads them: the same counters
//! `$SRV.STATS` reports. A [`MetricsServer`] shows them all in Prometheus's text format at
//! `GET /metrics`; every service binary of this project (the three services, `nats-services`,
//! `http-redis`, `http-rabbitmq`) starts one when `METRICS_ADDR` is set ([`serve_from_env`]).
//!
//! Per endpoint (labels `service`, `endpoint`):
//!
//! | metric | type | what |
//! |---|---|---|
//! | `natsrpc_requests_total` | counter | requests answered, refused ones included |
//! | `natsrpc_request_errors_total` | counter | error replies, by `status` and `code` |
//! | `natsrpc_request_duration_seconds` | histogram | from arrival to reply, 100 us to 10 s |
//! | `natsrpc_requests_in_flight` | gauge | handlers running now |
//! | `natsrpc_validation_seconds_total` | counter | time spent validating requests |
//!
//! And `natsrpc_service_info{service, version}` (always 1), and per event listener (labels
//! `service`, `subject`) `natsrpc_events_received_total` and `natsrpc_events_total` by `outcome`
//! (`handled`, `failed`, `invalid`), and per timer (labels `service`, `timer`)
//! `natsrpc_timer_runs_total` by `outcome` (`ok`, `failed`, `skipped`). Two instances of one service in a process are summed.
//!
//! Nothing here is on a request's way: a scrape reads the counters the request path keeps anyway.
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize, validator::Validate)] struct Ping { #[validate(range(max = 9))] n: u8 }
//! # natsrpc::request!(Ping => u8, service = "metered", endpoint = "ping");
//! # async fn ping(p: Ping) -> Result<u8, natsrpc::ServiceError> { Ok(p.n) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let metered = natsrpc::Dispatcher::new(natsrpc::Service::builder("metered", "1.0.0").endpoint(ping))?;
//! metered.dispatch(natsrpc::RequestHead::new("metered.ping"), r#"{"n": 12}"#.into()).await;
//!
//! let text = natsrpc::metrics::render();
//! assert!(text.contains(r#"natsrpc_request_errors_total{service="metered",endpoint="ping",status="400",code="validation_failed"} 1"#));
//!
//! // What `METRICS_ADDR=127.0.0.1:9464` starts in a service binary:
//! let server = natsrpc::metrics::MetricsServer::bind("127.0.0.1:0").await?;
//! println!("scrape http://{}/metrics", server.address());
//! server.stop().await;
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

mod exposition;
mod http;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

pub use http::MetricsServer;

use crate::error::RpcError;
use crate::server::{Background, Listeners, Router};

/// The variable that turns the metrics server on, such as `127.0.0.1:9464`.
pub const METRICS_ADDR: &str = "METRICS_ADDR";

/// What a service registers: its endpoints, and its listeners when it has any.
struct Registered {
    router: Weak<Router>,
    background: Option<Weak<Background>>,
}

impl Registered {
    fn alive(&self) -> bool {
        self.router.strong_count() > 0
    }
}

/// The services of this process. A service that has gone is dropped from it at the next change
/// or scrape.
static REGISTRY: Mutex<Vec<Registered>> = Mutex::new(Vec::new());

fn registry() -> std::sync::MutexGuard<'static, Vec<Registered>> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts `router`'s endpoints (and `listeners`' events) in the process's metrics while it lives.
pub(crate) fn register(router: &Arc<Router>, listeners: Option<&Listeners>) {
    let mut registry = registry();
    registry.retain(Registered::alive);
    registry.push(Registered { router: Arc::downgrade(router), background: listeners.map(Arc::downgrade) });
}

/// Every registered service's metrics, in Prometheus's text format (version 0.0.4).
pub fn render() -> String {
    let live: Vec<(Arc<Router>, Option<Listeners>)> = {
        let mut registry = registry();
        registry.retain(Registered::alive);
        registry
            .iter()
            .filter_map(|r| Some((r.router.upgrade()?, r.background.as_ref().and_then(Weak::upgrade))))
            .collect()
    };
    let mut endpoints: BTreeMap<(String, String), exposition::Endpoint> = BTreeMap::new();
    let mut versions = std::collections::BTreeSet::new();
    let mut listeners: BTreeMap<(String, &'static str), crate::events::ListenerStats> = BTreeMap::new();
    let mut timers: BTreeMap<(String, String), crate::TimerStats> = BTreeMap::new();
    for (router, serving) in &live {
        let service = &router.service;
        versions.insert((service.name.clone(), service.version.clone()));
        for endpoint in router.endpoints() {
            let key = (service.name.clone(), endpoint.name.clone());
            let entry = endpoints.entry(key).or_default();
            entry.add(endpoint.limits.stats.metrics(), endpoint.in_flight());
        }
        for (subject, counters) in serving.iter().flat_map(|b| b.listeners.iter()) {
            let stats = counters.snapshot(subject);
            let entry = listeners.entry((service.name.clone(), subject)).or_default();
            entry.received += stats.received;
            entry.handled += stats.handled;
            entry.failed += stats.failed;
            entry.invalid += stats.invalid;
        }
        for counters in serving.iter().flat_map(|b| b.timers.iter()) {
            let stats = counters.snapshot();
            let entry = timers.entry((service.name.clone(), stats.name.clone())).or_default();
            entry.runs += stats.runs;
            entry.failed += stats.failed;
            entry.skipped += stats.skipped;
        }
    }
    exposition::write(&versions, &endpoints, &listeners, &timers)
}

/// Starts a [`MetricsServer`] at `METRICS_ADDR` when it is set; `None` when it is not (or empty).
/// A service binary calls it once, at its start.
pub async fn serve_from_env() -> Result<Option<MetricsServer>, RpcError> {
    let address = std::env::var(METRICS_ADDR).unwrap_or_default();
    if address.trim().is_empty() {
        return Ok(None);
    }
    let server = MetricsServer::bind(address.trim()).await.map_err(|error| {
        RpcError::config_explained(
            format!("{METRICS_ADDR}={:?} cannot be listened on", crate::escape::escape(&address, 64)),
            error,
        )
    })?;
    tracing::info!(address = %server.address(), "metrics at /metrics");
    Ok(Some(server))
}
