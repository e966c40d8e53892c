//! A service's endpoints without NATS: the same route, decode, validate, handle and encode path,
//! for other transports (the HTTP stacks of the comparison) and for tests.

use bytes::Bytes;

use super::{Begun, Dispatched, RequestHead, Router, ServiceBuilder};
use crate::error::RpcError;

/// Answers requests for one service's endpoints, given each request's head and body.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, validator::Validate)] struct Ping { #[validate(range(max = 9))] n: u8 }
/// # natsrpc::request!(Ping => u8, service = "pinger", endpoint = "ping");
/// # async fn ping(p: Ping) -> Result<u8, natsrpc::ServiceError> { Ok(p.n) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let pinger = natsrpc::Dispatcher::new(natsrpc::Service::builder("pinger", "1.0.0").endpoint(ping))?;
/// let head = natsrpc::RequestHead::new("pinger.ping").with_content_type("application/json");
/// let reply = pinger.dispatch(head, r#"{"n": 12}"#.into()).await;
/// assert_eq!(reply.status, 400);
/// assert_eq!(reply.error.unwrap().violations[0].path, "n");
/// # Ok::<(), natsrpc::RpcError>(()) }).unwrap();
/// ```
pub struct Dispatcher {
    router: std::sync::Arc<Router>,
}

/// A service's handlers still running after their callers' deadlines, from
/// [`Dispatcher::finishing`].
#[derive(Debug, Clone)]
pub struct Finishing(tokio_util::task::TaskTracker);

impl Finishing {
    /// Waits up to `grace` for them to end; answers how many did not.
    pub async fn wait(self, grace: std::time::Duration) -> usize {
        self.0.close();
        let _ = tokio::time::timeout(grace, self.0.wait()).await;
        self.0.len()
    }

    /// Waits up to `grace`, at once, for the handlers of every service in `all`; answers how many
    /// did not end.
    pub async fn wait_all(all: impl IntoIterator<Item = Finishing>, grace: std::time::Duration) -> usize {
        futures::future::join_all(all.into_iter().map(|finishing| finishing.wait(grace)))
            .await
            .into_iter()
            .sum()
    }
}

impl Dispatcher {
    /// Builds the service's endpoints, with its state and limits, without starting anything.
    pub fn new<S: Send + Sync + 'static>(service: ServiceBuilder<S>) -> Result<Self, RpcError> {
        let router = std::sync::Arc::new(service.router()?);
        crate::metrics::register(&router, None);
        Ok(Self { router })
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        &self.router.service.name
    }

    /// Its handlers still running after their callers' deadlines (a handler runs to its end, see
    /// [`EndpointOptions::cancel_at_deadline`](crate::EndpointOptions::cancel_at_deadline)): wait
    /// for them when the transport has stopped taking requests, before the process exits.
    pub fn finishing(&self) -> Finishing {
        Finishing(self.router.finishing.clone())
    }

    /// The service's `$SRV.INFO` answer (JSON): its endpoints, subjects and schemas, as a caller
    /// sees them (what [`crate::compat`] compares across versions).
    pub fn info(&self) -> Vec<u8> {
        super::discovery::answer(&self.router, "$SRV.INFO", None).unwrap_or_default()
    }

    /// The service's `$SRV.STATS` answer (JSON), for transports without the Services API: the
    /// same per-endpoint counts, latencies and validation time as over NATS.
    pub fn stats(&self) -> Vec<u8> {
        super::discovery::answer(&self.router, "$SRV.STATS", None).unwrap_or_default()
    }

    /// Answers one request, its head read by the transport from its own framing.
    pub async fn dispatch(&self, head: RequestHead, body: Bytes) -> Dispatched {
        match self.router.begin(head, body, false) {
            Begun::Running(pipeline) => pipeline.await,
            Begun::Refused(refused) => refused,
            // Only a request through a NATS service's `{name}.>` can be another's to answer.
            Begun::Elsewhere => Dispatched::failure(
                crate::Codec::Json,
                &nuid::next().to_string(),
                crate::ServiceError::internal("a request routed elsewhere reached a dispatcher"),
            ),
        }
    }
}
