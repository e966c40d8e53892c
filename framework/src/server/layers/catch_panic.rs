//! Panic isolation, the outermost layer of every endpoint: a panic anywhere in a request's way
//! (a layer's `call`, decoding, validating, the handler, encoding) fails that request only. The
//! panic's text stays in the log (escaped: it may quote the request); the caller learns only that
//! the request failed, and the correlation id to find the log line by.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;

use super::Call;
use crate::error::ServiceError;
use crate::server::RequestContext;

/// Answers a panic inside `inner` as a 500.
#[derive(Debug, Clone)]
pub(crate) struct CatchPanic<S> {
    inner: S,
    /// A panic in `poll_ready` (logged there), answered at `call`.
    panicked: bool,
}

impl<S> CatchPanic<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self { inner, panicked: false }
    }
}

impl<S> tower::Service<Call> for CatchPanic<S>
where
    S: tower::Service<Call, Response = Bytes, Error = ServiceError>,
    S::Future: Unpin,
{
    type Response = Bytes;
    type Error = ServiceError;
    type Future = CatchPanicFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ServiceError>> {
        match catch_unwind(AssertUnwindSafe(|| self.inner.poll_ready(cx))) {
            Ok(ready) => ready,
            Err(panic) => {
                logged(None, panic.as_ref());
                self.panicked = true;
                Poll::Ready(Ok(()))
            }
        }
    }

    fn call(&mut self, call: Call) -> Self::Future {
        // A copy of the context is a count: the id a panic is answered with is made only then.
        let ctx = call.ctx.clone();
        if std::mem::take(&mut self.panicked) {
            let refused = Some(internal(ctx.correlation_id()));
            return CatchPanicFuture { inner: None, ctx, refused };
        }
        match catch_unwind(AssertUnwindSafe(|| self.inner.call(call))) {
            Ok(inner) => CatchPanicFuture { inner: Some(inner), ctx, refused: None },
            Err(panic) => {
                let refused = Some(logged(Some(&ctx), panic.as_ref()));
                CatchPanicFuture { inner: None, ctx, refused }
            }
        }
    }
}

/// The future of [`CatchPanic`].
pub(crate) struct CatchPanicFuture<F> {
    inner: Option<F>,
    ctx: RequestContext,
    refused: Option<ServiceError>,
}

impl<F: Future<Output = Result<Bytes, ServiceError>> + Unpin> Future for CatchPanicFuture<F> {
    type Output = Result<Bytes, ServiceError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            let refused = this.refused.take();
            return Poll::Ready(Err(refused.unwrap_or_else(|| ServiceError::internal("polled again"))));
        };
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => {
                this.inner = None;
                Poll::Ready(result)
            }
            Err(panic) => {
                this.inner = None;
                Poll::Ready(Err(logged(Some(&this.ctx), panic.as_ref())))
            }
        }
    }
}

/// Logs a panic and makes the error it is answered with.
fn logged(ctx: Option<&RequestContext>, panic: &(dyn Any + Send)) -> ServiceError {
    let text = crate::escape::escape(panic_text(panic), 1024);
    match ctx {
        Some(ctx) => {
            let correlation_id = ctx.correlation_id();
            tracing::error!(%correlation_id, panic = %text, "request panicked");
            internal(correlation_id)
        }
        None => {
            tracing::error!(panic = %text, "request panicked");
            ServiceError::internal("internal error")
        }
    }
}

fn internal(correlation_id: &str) -> ServiceError {
    ServiceError::internal(format!("internal error (correlation id {correlation_id})"))
}

/// What a panic said, when it said it with a string.
pub(crate) fn panic_text(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}
