//! Where a keyed request (see `idempotency`) stops to claim its key: inside the user's layers, so
//! that a caller they refuse (authentication, a rate) claims nothing and is never sent a kept
//! reply, and outside the in-flight bound. The request waits here while the receiving side
//! claims the key, and goes on, or answers what the claim says (a refusal), as told.

use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::{BoxFuture, Either};
use tokio::sync::oneshot;

use super::Call;
use crate::error::ServiceError;

/// What the claim says to a request at the gate.
pub(crate) enum Verdict {
    /// The key is this request's: on to the handler.
    Proceed,
    /// The request is answered without its handler: a refusal, or (for a kept reply, which the
    /// receiving side sends itself) anything, which is not sent.
    Answer(Result<Bytes, ServiceError>),
}

/// A keyed request's side of the gate.
pub(crate) struct Gate {
    /// Says the request passed the user's layers.
    pub(crate) passed: oneshot::Sender<()>,
    pub(crate) verdict: oneshot::Receiver<Verdict>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

/// The gate of endpoints that keep replies; a request without one goes straight through.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GateLayer;

impl<S> tower::Layer<S> for GateLayer {
    type Service = Gated<S>;

    fn layer(&self, inner: S) -> Gated<S> {
        Gated { inner }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Gated<S> {
    inner: S,
}

impl<S> tower::Service<Call> for Gated<S>
where
    S: tower::Service<Call, Response = Bytes, Error = ServiceError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Bytes;
    type Error = ServiceError;
    type Future = Either<S::Future, BoxFuture<'static, Result<Bytes, ServiceError>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ServiceError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut call: Call) -> Self::Future {
        let Some(Gate { passed, verdict }) = call.gate.take() else {
            return Either::Left(self.inner.call(call));
        };
        // The inner service was made ready for this call: the copy taken with it is too.
        let mut inner = self.inner.clone();
        std::mem::swap(&mut inner, &mut self.inner);
        Either::Right(Box::pin(async move {
            let _ = passed.send(());
            match verdict.await {
                Ok(Verdict::Proceed) => inner.call(call).await,
                Ok(Verdict::Answer(answer)) => answer,
                Err(_gone) => Err(ServiceError::unavailable("the request's claim was given up; retry later")),
            }
        }))
    }
}
