//! What a client does around each call, as [tower] layers: a [`CircuitBreakerLayer`] (fed by
//! its own calls, and optionally by the service's `$SRV.STATS`), a [`BulkheadLayer`], a
//! [`FallbackLayer`], and any layer of your own (or of tower's, such as a `ServiceBuilder`
//! stack) over a [`TransportService`]: a tower `Service` from an [`EncodedCall`] to its
//! [`EncodedReply`], failing with [`RpcError`].
//!
//! [`Client::layer`](super::Client::layer) wraps a client's transport; layers added later go
//! outside those added before. The typed client's own steps (validating, encoding, retries by
//! [`RetryPolicy`](super::RetryPolicy), decoding) stay around the layers, so a retry goes through
//! them again: a breaker counts each attempt, and refuses the retries once it opens. A client is
//! cheap to clone: `client.clone().layer(...)` layers the calls of one call site only.
//! Scatter-gather ([`Client::request_many`](super::Client::request_many)) goes around them.
//!
//! ```no_run
//! # async fn run(nats: natsrpc::async_nats::Client) {
//! use std::time::Duration;
//! use natsrpc::client::layers::{BulkheadLayer, CircuitBreakerLayer};
//!
//! let client = natsrpc::Client::new(nats)
//!     // At most 64 calls at once and 256 waiting; more are refused at once.
//!     .layer(BulkheadLayer::new(64, 256))
//!     // Five failures within 10 s open an endpoint's circuit for 5 s.
//!     .layer(CircuitBreakerLayer::new(5, Duration::from_secs(10), Duration::from_secs(5)));
//! # }
//! ```
//!
//! [tower]: https://docs.rs/tower

/// The service of a layer that guards each call, and the layer's `tower::Layer` impl: the
/// service keeps the inner service and the layer, and hands each call to the layer's
/// `guard(&self, inner, call)`.
macro_rules! guarding_layer {
    ($layer:ident => $service:ident, $doc:literal) => {
        impl<S> tower::Layer<S> for $layer {
            type Service = $service<S>;

            fn layer(&self, inner: S) -> $service<S> {
                $service { inner, layer: self.clone() }
            }
        }

        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $service<S> {
            inner: S,
            layer: $layer,
        }

        impl<S> tower::Service<$crate::client::EncodedCall> for $service<S>
        where
            S: tower::Service<
                    $crate::client::EncodedCall,
                    Response = $crate::client::EncodedReply,
                    Error = $crate::RpcError,
                > + Send
                + 'static,
            S::Future: Send + 'static,
        {
            type Response = $crate::client::EncodedReply;
            type Error = $crate::RpcError;
            type Future =
                futures::future::BoxFuture<'static, Result<$crate::client::EncodedReply, $crate::RpcError>>;

            fn poll_ready(
                &mut self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), $crate::RpcError>> {
                self.inner.poll_ready(cx)
            }

            fn call(&mut self, call: $crate::client::EncodedCall) -> Self::Future {
                self.layer.guard(&mut self.inner, call)
            }
        }
    };
}

mod breaker;
mod bulkhead;
mod fallback;
mod stats_feed;

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;

pub use breaker::{CircuitBreaker, CircuitBreakerLayer};
pub use bulkhead::{Bulkhead, BulkheadLayer};
pub use fallback::{Fallback, FallbackLayer};

use super::{EncodedCall, EncodedReply, PendingReplies, PendingReply, Transport};
use crate::error::RpcError;

/// A client's transport as a tower `Service`: the innermost service of its layers.
#[derive(Clone)]
pub struct TransportService(pub(crate) Arc<dyn Transport>);

impl std::fmt::Debug for TransportService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportService").finish_non_exhaustive()
    }
}

impl tower::Service<EncodedCall> for TransportService {
    type Response = EncodedReply;
    type Error = RpcError;
    type Future = BoxFuture<'static, Result<EncodedReply, RpcError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), RpcError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: EncodedCall) -> Self::Future {
        let transport = Arc::clone(&self.0);
        Box::pin(async move { transport.request(&call).await })
    }
}

/// Layered services, seen by the typed client as a transport again.
pub(crate) struct Layered<S> {
    pub(crate) service: S,
    /// The transport under the layers: for what layers do not wrap (scatter-gather, and whether
    /// idempotency keys get through).
    pub(crate) inner: Arc<dyn Transport>,
}

impl<S> Transport for Layered<S>
where
    S: tower::Service<EncodedCall, Response = EncodedReply, Error = RpcError> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    fn request<'a>(&'a self, request: &'a EncodedCall) -> PendingReply<'a> {
        use tower::ServiceExt;
        let service = self.service.clone();
        let call = request.clone();
        Box::pin(service.oneshot(call))
    }

    fn request_many<'a>(
        &'a self,
        request: &'a EncodedCall,
        max: usize,
        stall: std::time::Duration,
    ) -> PendingReplies<'a> {
        self.inner.request_many(request, max, stall)
    }

    fn carries_idempotency_keys(&self) -> bool {
        self.inner.carries_idempotency_keys()
    }
}
