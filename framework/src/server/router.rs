//! From a subject to its endpoint.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio_util::task::TaskTracker;

use tokio::sync::oneshot;

use super::endpoint::Endpoint;
use super::head::RequestHead;
use super::layers::{Gate, Verdict};
use super::reply::Dispatched;
use crate::error::ServiceError;

/// Who this service instance is, as the Services API reports it.
#[derive(Debug, Clone)]
pub(crate) struct ServiceIdentity {
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) version: String,
    pub(crate) description: String,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) queue_group: String,
    /// RFC 3339, UTC.
    pub(crate) started: String,
}

/// How a request starts.
pub(crate) enum Begun {
    /// Admitted: its pipeline, not yet polled.
    Running(BoxFuture<'static, Dispatched>),
    /// Refused before any endpoint saw it (404, 503): the reply.
    Refused(Dispatched),
    /// Not this subscription's to answer: it came through the service's `{name}.>`, and its
    /// endpoint takes requests on a subscription of its own, which answers it.
    Elsewhere,
}

/// A keyed request under way: its pipeline, and the receiving side's ends of its channels.
pub(crate) struct KeyedRun {
    pub(crate) pipeline: BoxFuture<'static, Dispatched>,
    /// The reply of a handler that ends after its caller was answered 504.
    pub(crate) finished: oneshot::Receiver<Dispatched>,
    /// Fires when the request has passed the user's layers (fails when they refused it).
    pub(crate) at_gate: oneshot::Receiver<()>,
    pub(crate) verdict: oneshot::Sender<Verdict>,
}

/// A service's endpoints, in registration order (which `INFO` and `STATS` list them in).
pub(crate) struct Router {
    pub(crate) service: ServiceIdentity,
    endpoints: Vec<Endpoint>,
    /// Handlers still running after their caller's deadline: a graceful stop waits for them too.
    pub(crate) finishing: TaskTracker,
    /// Where replies to requests with an `Idempotency-Key` are kept: opened on NATS by the first
    /// keyed request, so that a service needs JetStream only once it is asked to keep a reply.
    pub(crate) replies: tokio::sync::OnceCell<super::idempotency::Replies>,
    /// How long those replies are kept: the longest of its endpoints' (`None`: none keeps them).
    pub(crate) replies_ttl: Option<std::time::Duration>,
}

impl Router {
    pub(crate) fn new(service: ServiceIdentity, endpoints: Vec<Endpoint>, finishing: TaskTracker) -> Self {
        let replies_ttl = endpoints.iter().filter_map(|e| e.idempotent_replies).max();
        Self { service, endpoints, finishing, replies: tokio::sync::OnceCell::new(), replies_ttl }
    }

    /// A scan rather than a hash map: a service has a handful of endpoints, and comparing a few
    /// short strings costs less than hashing one with SipHash.
    pub(crate) fn route(&self, subject: &str) -> Result<&Endpoint, ServiceError> {
        self.endpoints
            .iter()
            .find(|e| e.subject == subject)
            .ok_or_else(|| ServiceError::unknown_endpoint(subject))
    }

    /// Routes a request to its pipeline. Every transport starts a request here; `service_wide` says it
    /// came through the service's `{name}.>` subscription.
    pub(crate) fn begin(&self, head: RequestHead, payload: Bytes, service_wide: bool) -> Begun {
        let routed = self.route(head.subject());
        if service_wide && routed.as_ref().is_ok_and(|e| e.own_subscription) {
            return Begun::Elsewhere;
        }
        match routed {
            Ok(endpoint) => Begun::Running(endpoint.process(head, payload, None, None)),
            Err(error) => Begun::Refused(Dispatched::refused(head, &payload, error)),
        }
    }

    /// Routes a keyed request (see `idempotency`): its pipeline, which stops at the gate inside
    /// the user's layers for the claim's verdict, and where the reply of a handler that outlives
    /// its deadline will come.
    pub(crate) fn begin_keyed(&self, head: RequestHead, payload: Bytes) -> Result<KeyedRun, Box<Dispatched>> {
        match self.route(head.subject()) {
            Ok(endpoint) => {
                let (late, finished) = oneshot::channel();
                let (passed, at_gate) = oneshot::channel();
                let (verdict, told) = oneshot::channel();
                let gate = Gate { passed, verdict: told };
                let pipeline = endpoint.process(head, payload, Some(late), Some(gate));
                Ok(KeyedRun { pipeline, finished, at_gate, verdict })
            }
            Err(error) => Err(Box::new(Dispatched::refused(head, &payload, error))),
        }
    }

    pub(crate) fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.endpoints.iter()
    }
}
