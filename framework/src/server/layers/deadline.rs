//! The deadline: the request's caller is answered 504 when the inner services are still at work
//! at the request's deadline (the endpoint's timeout from the request's arrival, or the caller's
//! own `X-Deadline-Ms` when sooner; see [`RequestContext::remaining`](crate::RequestContext::remaining)).
//!
//! Most requests finish on their first poll: only one that has to wait pays for a timer, and,
//! unless the endpoint cancels at the deadline, for a task of its own. That task runs the request
//! on to its end, holding its in-flight place (inside it), in the request's span, and says how
//! it ended when nobody was left to hear it: a handler never stops between two steps of a
//! change because its caller stopped waiting.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::Call;
use crate::codec::Codec;
use crate::error::ServiceError;
use crate::server::RequestContext;
use crate::server::reply::Dispatched;

/// The reply of a handler that ended after its deadline, when someone waits for it (a keyed
/// request's claim, to keep the reply for retries).
pub(crate) type LateReply = tokio::sync::oneshot::Sender<Dispatched>;

/// An endpoint's deadline, outermost but for panic isolation (see the module's page).
#[derive(Debug, Clone)]
pub(crate) struct Deadline<S> {
    inner: S,
    settings: Arc<Settings>,
}

#[derive(Debug)]
struct Settings {
    /// Whether a request still running at the deadline is dropped (the caller is answered 504
    /// either way); see [`EndpointOptions::cancel_at_deadline`](crate::EndpointOptions::cancel_at_deadline).
    cancel: bool,
    /// Requests that outlived their caller's deadline and run on to their end.
    finishing: TaskTracker,
}

impl<S> Deadline<S> {
    pub(crate) fn new(inner: S, cancel: bool, finishing: TaskTracker) -> Self {
        Self { inner, settings: Arc::new(Settings { cancel, finishing }) }
    }
}

impl<S> tower::Service<Call> for Deadline<S>
where
    S: tower::Service<Call, Response = Bytes, Error = ServiceError>,
    S::Future: Unpin + Send + 'static,
{
    type Response = Bytes;
    type Error = ServiceError;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ServiceError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut call: Call) -> Self::Future {
        let deadline = call.ctx.deadline();
        let budget = call.ctx.budget().unwrap_or(Duration::MAX);
        // Read only for a keyed request: its late reply is encoded as the caller's would have been.
        let late = call.late.take().map(|sender| Late { sender, codec: call.codec });
        // A copy of the context is a count; it names the request in what the slow path logs.
        let ctx = call.ctx.clone();
        let first = Some(self.inner.call(call));
        let settings = Arc::clone(&self.settings);
        DeadlineFuture { first, waiting: None, deadline, budget, settings, late, ctx }
    }
}

/// Where a late reply goes, and how to encode it.
struct Late {
    sender: LateReply,
    codec: Codec,
}

/// The future of [`Deadline`]: the inner future polled in place first, then, if it has to wait,
/// the wait for it against the deadline.
pub(crate) struct DeadlineFuture<F> {
    first: Option<F>,
    waiting: Option<BoxFuture<'static, Result<Bytes, ServiceError>>>,
    deadline: Option<Instant>,
    budget: Duration,
    settings: Arc<Settings>,
    late: Option<Late>,
    ctx: RequestContext,
}

impl<F> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Bytes, ServiceError>> + Unpin + Send + 'static,
{
    type Output = Result<Bytes, ServiceError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(first) = this.first.as_mut() {
            if let Poll::Ready(result) = Pin::new(first).poll(cx) {
                this.first = None;
                return Poll::Ready(result);
            }
            if let Some(inner) = this.first.take() {
                let waiting =
                    wait(inner, (this.deadline, this.budget), &this.settings, this.late.take(), &this.ctx);
                this.waiting = Some(Box::pin(waiting));
            }
        }
        match this.waiting.as_mut() {
            Some(waiting) => waiting.as_mut().poll(cx),
            None => Poll::Ready(Err(ServiceError::internal("a finished request was polled again"))),
        }
    }
}

/// Waits for a request that did not finish at once, until its deadline (none: one the clock
/// cannot hold).
fn wait<F>(
    inner: F,
    (deadline, budget): (Option<Instant>, Duration),
    settings: &Settings,
    late: Option<Late>,
    ctx: &RequestContext,
) -> impl Future<Output = Result<Bytes, ServiceError>> + Send + 'static
where
    F: Future<Output = Result<Bytes, ServiceError>> + Unpin + Send + 'static,
{
    let until = |deadline: Instant| tokio::time::Instant::from_std(deadline);
    let cancel = settings.cancel;
    let finishing = settings.finishing.clone();
    let ctx = ctx.clone();
    async move {
        if cancel {
            let Some(deadline) = deadline else { return inner.await };
            return match tokio::time::timeout_at(until(deadline), inner).await {
                Ok(result) => result,
                Err(_elapsed) => Err(timed_out(&ctx, budget)),
            };
        }
        let (outcome, finished) = tokio::sync::oneshot::channel();
        let on_ctx = ctx.clone();
        let running_on = async move {
            let ended = AssertUnwindSafe(inner).catch_unwind().await;
            if let Err(unheard) = outcome.send(ended) {
                let correlation_id = on_ctx.correlation_id();
                let result = ended_unheard(unheard, correlation_id);
                // Someone waits for how it ended: a keyed request's claim, to keep the reply.
                if let Some(Late { sender, codec }) = late {
                    let reply = match result {
                        Ok(body) => Dispatched::success(codec, body),
                        Err(error) => Dispatched::failure(codec, correlation_id, error),
                    };
                    let _ = sender.send(reply);
                }
            }
        };
        finishing.spawn(running_on.in_current_span());
        let ended = match deadline {
            Some(deadline) => tokio::time::timeout_at(until(deadline), finished).await,
            None => Ok(finished.await),
        };
        match ended {
            Ok(Ok(Ok(result))) => result,
            // Panic isolation, outside, answers it with the request's correlation id.
            Ok(Ok(Err(panic))) => std::panic::resume_unwind(panic),
            Ok(Err(_dropped)) => {
                let correlation_id = ctx.correlation_id();
                tracing::error!(%correlation_id, "the request's task was dropped (the runtime is shutting down)");
                Err(ServiceError::internal(format!("internal error (correlation id {correlation_id})")))
            }
            Err(_elapsed) => Err(timed_out(&ctx, budget)),
        }
    }
}

type Ended = std::thread::Result<Result<Bytes, ServiceError>>;

/// Logs how a request ended after its caller had gone.
fn ended_unheard(unheard: Ended, correlation_id: &str) -> Result<Bytes, ServiceError> {
    match unheard {
        Ok(Ok(body)) => {
            tracing::info!(%correlation_id, "handler finished after its caller had gone");
            Ok(body)
        }
        Ok(Err(error)) => {
            tracing::info!(%correlation_id, code = %error.code, "handler failed after its caller had gone");
            Err(error)
        }
        Err(panic) => {
            let text = crate::escape::escape(super::catch_panic::panic_text(panic.as_ref()), 1024);
            tracing::error!(%correlation_id, panic = %text, "handler panicked after its caller had gone");
            Err(ServiceError::internal(format!("internal error (correlation id {correlation_id})")))
        }
    }
}

fn timed_out(ctx: &RequestContext, budget: Duration) -> ServiceError {
    tracing::warn!(correlation_id = ctx.correlation_id(), timeout = ?budget, "handler did not finish by its deadline");
    ServiceError::timeout(budget)
}
