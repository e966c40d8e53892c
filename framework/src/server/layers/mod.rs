//! What a service does around each request, as [tower] layers.
//!
//! Every request to an endpoint goes through one stack of tower services, from the outside in:
//!
//! 1. panic isolation: a panic anywhere inside fails this request only (500, its correlation id
//!    in the message and the panic in the log);
//! 2. the deadline: the endpoint's timeout, or the caller's `X-Deadline-Ms` when sooner, answered
//!    504 (the handler runs on to its end unless the endpoint
//!    [cancels at the deadline](crate::EndpointOptions::cancel_at_deadline));
//! 3. **your layers**: the service's ([`ServiceBuilder::layer`](crate::ServiceBuilder::layer)),
//!    then the endpoint's ([`EndpointOptions::layer`](crate::EndpointOptions::layer));
//! 4. the endpoint's in-flight bound, an [`InFlightLimitLayer`]: one request more is answered
//!    503 at once;
//! 5. the endpoint itself: the size bound, decoding, validation, the handler, encoding.
//!
//! A layer sees a [`Call`]: the [`RequestContext`] (subject, headers, correlation id, deadline,
//! and [extensions](RequestContext::insert) that layers keep for the handler) and the body, not
//! yet decoded. It answers with the encoded reply ([`Bytes`]) or a [`ServiceError`], which the
//! caller receives as any other error, counted in `$SRV.STATS` and the metrics. Layers run
//! before decoding: refusing a caller costs no decoding, and an outer layer's refusal never
//! takes an in-flight place. A request with an `Idempotency-Key` to an endpoint that keeps
//! replies claims its key just inside your layers: one they refuse claims nothing, and a kept
//! reply is sent again only to a caller they let through. The time a layer makes a request wait,
//! in its `poll_ready` (tower's `ConcurrencyLimit`) or its future, counts against the deadline.
//!
//! Built in: [`check`] (a plain function over the call: authentication from headers, say),
//! [`RateLimitLayer`] (a token bucket per caller), [`InFlightLimitLayer`] (a bound on the
//! requests handled at once, which several endpoints may share). Any tower layer over a
//! [`BoxEndpointService`] whose errors are [`ServiceError`]s fits: tower's `MapFuture`,
//! `ConcurrencyLimit` or `Then` as they are; those that fail with tower's own `BoxError`
//! (`Timeout`, `LoadShed`) inside a `MapErr` that makes it a [`ServiceError`].
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize, validator::Validate)] struct Whoami {}
//! # natsrpc::request!(Whoami => String, service = "users", endpoint = "whoami");
//! use natsrpc::server::layers::{self, Call, RateLimitLayer};
//! use natsrpc::{RequestContext, ServiceError};
//!
//! /// Who sent the request, as the authentication layer found it.
//! #[derive(Clone)]
//! struct Caller(String);
//!
//! /// Reads the caller from the `Authorization` header; a request without one is refused 401.
//! fn authenticate(call: &mut Call) -> Result<(), ServiceError> {
//!     let token = call.ctx.header("Authorization").and_then(|h| h.strip_prefix("Bearer "));
//!     let caller = match token {
//!         Some("s3cret") => Caller("alice".into()),
//!         _ => return Err(ServiceError::unauthorized("a valid bearer token is required")),
//!     };
//!     call.ctx.insert(caller);
//!     Ok(())
//! }
//!
//! async fn whoami(ctx: RequestContext, _: Whoami) -> Result<String, ServiceError> {
//!     let caller = ctx.extension::<Caller>().ok_or_else(|| ServiceError::internal("no caller"))?;
//!     Ok(caller.0.clone())
//! }
//!
//! let service = natsrpc::Service::builder("users", "1.0.0")
//!     .endpoint(whoami)
//!     // Inner first: each caller's rate is limited once it is known.
//!     .layer(RateLimitLayer::per_caller(100.0, 20, |call: &Call| {
//!         call.ctx.extension::<Caller>().map(|caller| caller.0.clone())
//!     }))
//!     .layer(layers::check(authenticate));
//! # let _ = service;
//! ```
//!
//! [tower]: https://docs.rs/tower

mod catch_panic;
mod check;
mod deadline;
mod gate;
mod in_flight;
mod rate_limit;

use std::sync::Arc;

use bytes::Bytes;

pub use check::{CallCheck, Check, CheckLayer, check};
pub use in_flight::{InFlightFuture, InFlightLimit, InFlightLimitLayer};
pub use rate_limit::{RateLimit, RateLimitLayer, RateLimiter};

pub(crate) use catch_panic::{CatchPanic, panic_text};
pub(crate) use deadline::{Deadline, LateReply};
pub(crate) use gate::{Gate, GateLayer, Verdict};

use super::context::RequestContext;
use crate::codec::Codec;
use crate::error::ServiceError;

/// A request as layers see it: its context and its body, not yet decoded.
#[derive(Debug)]
#[non_exhaustive]
pub struct Call {
    /// Its subject, headers, correlation id and deadline, and what layers keep for the handler.
    pub ctx: RequestContext,
    /// Its body, as it came.
    pub payload: Bytes,
    /// The body's codec, told once from the head and the body, before the stack.
    pub(crate) codec: Codec,
    /// Where the reply of a handler that ends after its deadline goes (a keyed request's): the
    /// deadline layer takes it.
    pub(crate) late: Option<LateReply>,
    /// Where a keyed request waits for its claim, inside the user's layers.
    pub(crate) gate: Option<Gate>,
}

impl Call {
    /// The codec the body is in (JSON or MessagePack), as its `Content-Type` or first byte says.
    pub fn codec(&self) -> Codec {
        self.codec
    }
}

/// An endpoint's stack below your layers, type-erased: what a layer of yours wraps.
pub type BoxEndpointService = tower::util::BoxCloneSyncService<Call, Bytes, ServiceError>;

/// A layer of the user's, type-erased, applied when the endpoint is built.
#[derive(Clone)]
pub(crate) struct Wrap(Arc<dyn Fn(BoxEndpointService) -> BoxEndpointService + Send + Sync>);

impl std::fmt::Debug for Wrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Layer")
    }
}

impl Wrap {
    pub(crate) fn new<L>(layer: L) -> Self
    where
        L: tower::Layer<BoxEndpointService> + Send + Sync + 'static,
        L::Service:
            tower::Service<Call, Response = Bytes, Error = ServiceError> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<Call>>::Future: Send + 'static,
    {
        Self(Arc::new(move |inner| BoxEndpointService::new(layer.layer(inner))))
    }

    /// Wraps `inner` in `layers`, the first innermost.
    pub(crate) fn all(layers: &[Wrap], inner: BoxEndpointService) -> BoxEndpointService {
        layers.iter().fold(inner, |inner, wrap| (wrap.0)(inner))
    }
}
