//! A service's endpoints without NATS: the same route, decode, validate, handle and encode path,
//! for other transports (the HTTP stacks of the comparison) and for tests.

use async_nats::HeaderMap;
use bytes::Bytes;

use super::{Begun, Incoming, Router, ServiceBuilder};
use crate::codec::Codec;
use crate::error::{RpcError, ServiceError};
use crate::headers;

/// Answers requests for one service's endpoints, given a subject, headers and a body.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, validator::Validate)] struct Ping { #[validate(range(max = 9))] n: u8 }
/// # natsrpc::request!(Ping => u8, service = "pinger", endpoint = "ping");
/// # async fn ping(p: Ping) -> Result<u8, natsrpc::ServiceError> { Ok(p.n) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let pinger = natsrpc::Dispatcher::new(natsrpc::Service::builder("pinger", "1.0.0").endpoint(ping))?;
/// let reply = pinger.dispatch("pinger.ping", Some("application/json"), None, r#"{"n": 12}"#.into()).await;
/// assert_eq!(reply.status, 400);
/// assert_eq!(reply.error.unwrap().violations[0].path, "n");
/// # Ok::<(), natsrpc::RpcError>(()) }).unwrap();
/// ```
pub struct Dispatcher {
    router: Router,
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

/// A reply as a transport should send it.
#[derive(Debug, Clone)]
pub struct Dispatched {
    /// 200, or the error's status.
    pub status: u16,
    /// The codec the body is in (the request's).
    pub codec: Codec,
    /// The envelope.
    pub body: Bytes,
    /// For error replies: the correlation id (the caller's, or one made up to find the log line).
    pub correlation_id: Option<String>,
    /// For error replies: the error the envelope carries.
    pub error: Option<ServiceError>,
    /// The headers the NATS reply carries (none on success).
    pub headers: HeaderMap,
}

impl Dispatcher {
    /// Builds the service's endpoints, with its state and limits, without starting anything.
    pub fn new<S: Send + Sync + 'static>(service: ServiceBuilder<S>) -> Result<Self, RpcError> {
        Ok(Self { router: service.router()? })
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

    /// The service's `$SRV.STATS` answer (JSON), for transports without the Services API: the
    /// same per-endpoint counts, latencies and validation time as over NATS.
    pub fn stats(&self) -> Vec<u8> {
        super::discovery::answer(&self.router, "$SRV.STATS", Vec::new).unwrap_or_default()
    }

    /// Answers one request for `subject` (`{service}.{endpoint}`).
    pub async fn dispatch(
        &self,
        subject: &str,
        content_type: Option<&str>,
        correlation_id: Option<&str>,
        body: Bytes,
    ) -> Dispatched {
        self.dispatch_within(subject, content_type, correlation_id, None, body).await
    }

    /// Answers one request whose caller waits at most `deadline` (its `X-Deadline-Ms`): the
    /// handler gives up then, if that is sooner than the endpoint's own timeout.
    pub async fn dispatch_within(
        &self,
        subject: &str,
        content_type: Option<&str>,
        correlation_id: Option<&str>,
        deadline: Option<std::time::Duration>,
        body: Bytes,
    ) -> Dispatched {
        let mut request_headers = HeaderMap::new();
        if let Some(value) = content_type {
            headers::insert(&mut request_headers, headers::CONTENT_TYPE, value);
        }
        if let Some(value) = correlation_id {
            headers::insert(&mut request_headers, headers::CORRELATION_ID, value);
        }
        if let Some(deadline) = deadline {
            request_headers.insert(headers::DEADLINE, deadline.as_millis().to_string().as_str());
        }
        let headers = (!request_headers.is_empty()).then_some(request_headers);
        let incoming = Incoming { subject: subject.into(), headers, payload: body };
        let outgoing = match self.router.begin(incoming) {
            Begun::Running(pipeline) => pipeline.await,
            Begun::Refused(refused) => refused,
        };
        let headers = outgoing.headers.unwrap_or_default();
        let correlation_id = headers.get(headers::names::CORRELATION_ID).map(|v| v.as_str().to_string());
        Dispatched {
            status: outgoing.error.as_ref().map_or(200, |e| e.status),
            codec: outgoing.codec,
            body: outgoing.payload,
            correlation_id,
            error: outgoing.error,
            headers,
        }
    }
}
