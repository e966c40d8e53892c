//! One request through one endpoint: the shell around its stack of layers (the request's span,
//! stats and reply), and the stack's innermost service, which decodes, validates, handles and
//! encodes. Every transport, and the test harness, goes through [`Endpoint::process`], so tests
//! exercise exactly the path the wire does.

use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio_util::task::TaskTracker;
use tower::{Layer, Service};
use tracing::Instrument;

use super::context::RequestContext;
use super::handler::Handler;
use super::head::RequestHead;
use super::layers::{
    BoxEndpointService, Call, CatchPanic, Deadline, Gate, InFlightLimitLayer, LateReply, Wrap,
};
use super::reply::Dispatched;
use super::stats::EndpointCounters;
use crate::codec::Codec;
use crate::contract::Request;
use crate::envelope;
use crate::error::ServiceError;

/// Limits of one endpoint.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) cancel_at_deadline: bool,
    pub(crate) metadata: Vec<(String, String)>,
    pub(crate) queue_group: QueueGroup,
    pub(crate) idempotent_replies: Option<Duration>,
    pub(crate) layers: Vec<Wrap>,
}

/// Which instances of a service get an endpoint's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QueueGroup {
    /// The service's queue group: one instance.
    Service,
    /// A queue group of the endpoint's own: one instance of those in it.
    Own(String),
    /// None: every instance, each answering (for a scatter-gather, `Client::request_many`).
    None,
}

impl EndpointOptions {
    /// The service's defaults.
    pub fn new() -> Self {
        Self {
            max_in_flight: None,
            timeout: None,
            cancel_at_deadline: false,
            metadata: Vec::new(),
            queue_group: QueueGroup::Service,
            idempotent_replies: None,
            layers: Vec::new(),
        }
    }

    /// Keeps the reply to each request that carries an `Idempotency-Key` for `ttl`: a retry with
    /// the same key, on any instance, gets the first reply again instead of running the request
    /// twice (a lost reply to `create_order` costs no second order). Kept in a JetStream stream
    /// of the service's, opened by the first keyed request, for the longest `ttl` of its
    /// endpoints; see the `idempotency` module's page for how instances agree. Requests without
    /// the header are handled as ever, at no cost. A keyed request needs JetStream: without it,
    /// it is answered 503 (and the service logs why), and the others are served as ever.
    pub fn idempotent_replies(mut self, ttl: Duration) -> Self {
        self.idempotent_replies = Some(ttl.max(Duration::from_secs(1)));
        self
    }

    /// Takes the endpoint's requests in a queue group of its own rather than the service's: one
    /// instance among those in `group` answers each (as the NATS Services API's per-endpoint
    /// queue groups).
    pub fn queue_group(mut self, group: impl Into<String>) -> Self {
        self.queue_group = QueueGroup::Own(group.into());
        self
    }

    /// Takes the endpoint's requests in no queue group: every instance answers each, for callers
    /// that gather their answers ([`Client::request_many`](crate::Client::request_many)), such
    /// as a health or inventory question put to all instances at once.
    pub fn no_queue_group(mut self) -> Self {
        self.queue_group = QueueGroup::None;
        self
    }

    /// At most `n` requests handled at once; request `n + 1` is answered 503 at once.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = Some(n.max(1));
        self
    }

    /// The caller is answered 504 when the handler is still running after `timeout` (or after the
    /// caller's own `X-Deadline-Ms`, when sooner). The handler itself runs on to its end unless
    /// the endpoint [cancels at the deadline](Self::cancel_at_deadline).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Drops the handler at the deadline instead of letting it finish.
    ///
    /// By default a handler that has started runs to its end whatever happens to its caller (a
    /// deadline, a disconnect): the caller is answered 504 at the deadline, and the handler goes
    /// on, holding its in-flight place, so that it never stops between two steps of a change (stock
    /// taken but no order recorded). For a handler that changes nothing, such as a query, stopping
    /// early only saves work: say so with this option.
    pub fn cancel_at_deadline(mut self) -> Self {
        self.cancel_at_deadline = true;
        self
    }

    /// Wraps this endpoint's requests in `layer`, inside the service's layers (see
    /// [`crate::server::layers`]); layers added later go outside those added before.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<BoxEndpointService> + Send + Sync + 'static,
        L::Service:
            tower::Service<Call, Response = Bytes, Error = ServiceError> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<Call>>::Future: Send + 'static,
    {
        self.layers.push(Wrap::new(layer));
        self
    }

    /// Metadata shown in the endpoint's `$SRV.INFO` entry.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }
}

impl Default for EndpointOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// The type-erased pipeline of one endpoint: its shell and stack.
type Pipeline = Arc<dyn Fn(RequestHead, Bytes, Keyed) -> BoxFuture<'static, Dispatched> + Send + Sync>;

/// What a keyed request carries besides itself: where a late reply goes, and its gate.
type Keyed = (Option<LateReply>, Option<Gate>);

/// What the pipeline needs besides the request.
#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) service: String,
    pub(crate) name: String,
    pub(crate) timeout: Duration,
    pub(crate) max_payload: Option<usize>,
    /// The endpoint's in-flight bound, the innermost of its layers.
    pub(crate) bound: InFlightLimitLayer,
    pub(crate) stats: EndpointCounters,
    /// Whether a handler still running at the deadline is dropped (the caller is answered 504
    /// either way); see [`EndpointOptions::cancel_at_deadline`].
    pub(crate) cancel_at_deadline: bool,
    /// Handlers that outlived their caller's deadline and run on to their end.
    pub(crate) finishing: TaskTracker,
}

/// One registered endpoint.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) name: String,
    pub(crate) subject: String,
    /// The endpoint's queue group, set when the service is built: `None` for none.
    pub(crate) queue_group: Option<String>,
    /// Whether it has a subscription of its own, apart from the service's `{name}.>` (a subject
    /// elsewhere, or a queue group other than the service's).
    pub(crate) own_subscription: bool,
    /// How long replies to requests with an `Idempotency-Key` are kept, when they are.
    pub(crate) idempotent_replies: Option<Duration>,
    pub(crate) metadata: Vec<(String, String)>,
    pub(crate) limits: Arc<Limits>,
    pipeline: Pipeline,
    check: Check,
}

/// Decodes and validates a request without handling it: what a keyed request must pass before
/// it claims its key (see `idempotency`), so that a request refused anyway claims and keeps
/// nothing.
type Check = Arc<dyn Fn(&RequestHead, &[u8], Option<usize>) -> Result<(), ServiceError> + Send + Sync>;

impl Endpoint {
    /// The endpoint of `handler`, its requests going through `layers` (the first innermost).
    pub(crate) fn new<H, T, S>(
        handler: H,
        state: Arc<S>,
        limits: Limits,
        metadata: Vec<(String, String)>,
        layers: &[Wrap],
    ) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
        S: Send + Sync + 'static,
    {
        let limits = Arc::new(limits);
        let handle = Handle { handler, state, limits: Arc::clone(&limits), shape: PhantomData };
        let bounded = limits.bound.layer(handle);
        let (cancel, finishing) = (limits.cancel_at_deadline, limits.finishing.clone());
        // Without layers of the user's, the stack is one concrete type, its futures unboxed.
        let pipeline = if layers.is_empty() {
            pipeline(CatchPanic::new(Deadline::new(bounded, cancel, finishing)), &limits)
        } else {
            let layered = Wrap::all(layers, BoxEndpointService::new(bounded));
            pipeline(CatchPanic::new(Deadline::new(layered, cancel, finishing)), &limits)
        };
        let check: Check = Arc::new(|head, payload, max_payload| {
            within(payload, max_payload)?;
            let codec = head.codec(payload)?;
            decode_valid::<H::Request>(codec, payload, None).map(|_| ())
        });
        Self {
            check,
            name: <H::Request as Request>::ENDPOINT.to_string(),
            subject: <H::Request as Request>::SUBJECT.to_string(),
            queue_group: None,
            own_subscription: false,
            idempotent_replies: None,
            metadata,
            limits,
            pipeline,
        }
    }

    /// Handlers running now.
    pub(crate) fn in_flight(&self) -> usize {
        self.limits.bound.in_flight()
    }

    /// Whether the endpoint has as many requests in flight as it takes.
    pub(crate) fn is_full(&self) -> bool {
        self.in_flight() >= self.limits.bound.max()
    }

    /// Whether the request would pass decoding and validation (and the size bound).
    pub(crate) fn check(&self, head: &RequestHead, payload: &[u8]) -> Result<(), ServiceError> {
        (self.check)(head, payload, self.limits.max_payload)
    }

    /// The whole way of one request through the endpoint, as one future, boxed once so that the
    /// caller can poll it in place and spawn it only when it really has to wait. `late` gets the
    /// reply of a handler that ends after its caller was answered 504, and a keyed request
    /// stops at its `gate` for the claim of its key.
    pub(crate) fn process(
        &self,
        head: RequestHead,
        payload: Bytes,
        late: Option<LateReply>,
        gate: Option<Gate>,
    ) -> BoxFuture<'static, Dispatched> {
        (self.pipeline)(head, payload, (late, gate))
    }
}

/// The pipeline of a stack: each request gets a copy of the stack (a few reference counts).
fn pipeline<St>(stack: St, limits: &Arc<Limits>) -> Pipeline
where
    St: Service<Call, Response = Bytes, Error = ServiceError> + Clone + Send + Sync + 'static,
    St::Future: Send,
{
    let limits = Arc::clone(limits);
    Arc::new(move |head, payload, keyed| {
        Box::pin(shell(stack.clone(), Arc::clone(&limits), head, payload, keyed))
    })
}

/// Around the stack: the request's deadline, span, stats and trace, and its reply.
async fn shell<St>(
    mut stack: St,
    limits: Arc<Limits>,
    head: RequestHead,
    payload: Bytes,
    (late, gate): Keyed,
) -> Dispatched
where
    St: Service<Call, Response = Bytes, Error = ServiceError>,
{
    let started = Instant::now();
    // The wall clock only for a span to export: most services export none.
    let wall_start = crate::trace::exporting().then(std::time::SystemTime::now);
    let detected = head.codec(&payload);
    // The caller's patience, when it said, bounds the endpoint's own deadline.
    let timeout = head.budget().map_or(limits.timeout, |budget| budget.min(limits.timeout));
    // From the request's arrival: decoding and validating count against it too.
    let ctx = RequestContext::with_deadline(head, started.checked_add(timeout), Some(timeout));
    let span = tracing::info_span!(
        "request",
        service = %limits.service,
        endpoint = %limits.name,
        correlation_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
        duration_us = tracing::field::Empty,
    );
    if !span.is_disabled() {
        span.record("correlation_id", tracing::field::display(ctx.correlation_id()));
        // A trace id is made up only when something follows traces: a caller that sent one, or an
        // exporter.
        if wall_start.is_some() || ctx.head().traceparent().is_some() {
            span.record("trace_id", tracing::field::display(ctx.trace().trace_id()));
        }
    }
    let (codec, result) = match detected {
        // The request's codec is unknown, so the error goes back in the default one.
        Err(error) => (Codec::Json, Err(error)),
        Ok(codec) => {
            let call = Call { ctx: ctx.clone(), payload, codec, late, gate };
            let deadline = ctx.deadline();
            let stacked = async move {
                ready(&mut stack, deadline, timeout).await?;
                stack.call(call).await
            };
            (codec, stacked.instrument(span.clone()).await)
        }
    };
    let reply = match result {
        Ok(body) => Dispatched::success(codec, body),
        Err(error) => Dispatched::failure(codec, ctx.correlation_id(), error),
    };
    let elapsed = started.elapsed();
    limits.stats.record(elapsed, reply.error.as_ref());
    span.record("duration_us", elapsed.as_micros() as u64);
    span.record("outcome", tracing::field::display(reply.error.as_ref().map_or("ok", |e| e.code.as_str())));
    span.in_scope(|| tracing::debug!("handled"));
    if let Some(start) = wall_start {
        crate::trace::record(crate::trace::SpanRecord {
            service: limits.service.clone(),
            name: format!("{}.{}", limits.service, limits.name),
            kind: crate::trace::SpanKind::Server,
            context: ctx.trace(),
            parent: ctx.caller_trace(),
            start,
            end: start + elapsed,
            status: reply.status,
            code: reply.error.as_ref().map(|e| e.code.clone()),
            correlation_id: ctx.correlation_id().to_string(),
        });
    }
    reply
}

/// Waits until the stack can take the request: at once, unless a layer of the user's makes it
/// wait (tower's `ConcurrencyLimit`, say), which counts against the request's deadline too.
async fn ready<St>(stack: &mut St, deadline: Option<Instant>, timeout: Duration) -> Result<(), ServiceError>
where
    St: Service<Call, Response = Bytes, Error = ServiceError>,
{
    let mut ready = std::pin::pin!(std::future::poll_fn(|cx| stack.poll_ready(cx)));
    if let Poll::Ready(ready) = futures::poll!(ready.as_mut()) {
        return ready;
    }
    let Some(deadline) = deadline else { return ready.await };
    match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), ready).await {
        Ok(ready) => ready,
        Err(_elapsed) => {
            tracing::warn!(?timeout, "the request waited for a layer until its deadline");
            Err(ServiceError::timeout(timeout))
        }
    }
}

/// The innermost service of an endpoint's stack: the size bound, decoding, validation (timed),
/// the handler, encoding.
struct Handle<H, T, S> {
    handler: H,
    state: Arc<S>,
    limits: Arc<Limits>,
    /// Which of the handler shapes `H` is.
    shape: PhantomData<fn() -> T>,
}

impl<H: Clone, T, S> Clone for Handle<H, T, S> {
    fn clone(&self) -> Self {
        let (handler, state, limits) =
            (self.handler.clone(), Arc::clone(&self.state), Arc::clone(&self.limits));
        Self { handler, state, limits, shape: PhantomData }
    }
}

impl<H, T, S> Service<Call> for Handle<H, T, S>
where
    H: Handler<T, S>,
    S: Send + Sync + 'static,
{
    type Response = Bytes;
    type Error = ServiceError;
    type Future = BoxFuture<'static, Result<Bytes, ServiceError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ServiceError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let Call { ctx, payload, codec, .. } = call;
        let limits = &self.limits;
        let decoded = within(&payload, limits.max_payload).and_then(|()| {
            #[cfg(not(feature = "unvalidated-control"))]
            let request: H::Request = {
                let mut validation = Duration::ZERO;
                let request = decode_valid(codec, &payload, Some(&mut validation));
                limits.stats.record_validation(validation);
                request?
            };
            // The control build measures what validating costs by not doing it.
            #[cfg(feature = "unvalidated-control")]
            let request: H::Request = codec.decode(&payload)?;
            Ok((codec, request))
        });
        match decoded {
            Ok((codec, request)) => {
                let handled = self.handler.call(request, &ctx, &self.state);
                Box::pin(async move {
                    let response = handled.await?;
                    envelope::encode_success(codec, &response).map(Bytes::from)
                })
            }
            Err(refused) => Box::pin(std::future::ready(Err(refused))),
        }
    }
}

/// A body no larger than the service's `max_payload`, when it has one; else 413.
fn within(payload: &[u8], max_payload: Option<usize>) -> Result<(), ServiceError> {
    match max_payload.filter(|limit| payload.len() > *limit) {
        Some(limit) => Err(ServiceError::payload_too_large(payload.len(), limit)),
        None => Ok(()),
    }
}

/// Decodes and validates a body: the steps every request takes before its handler, and every event
/// before its listener. Sets `timed`, when given, to the time validating took.
pub(crate) fn decode_valid<T: serde::de::DeserializeOwned + validator::Validate>(
    codec: Codec,
    payload: &[u8],
    timed: Option<&mut Duration>,
) -> Result<T, ServiceError> {
    let value: T = codec.decode(payload)?;
    let validated = match timed {
        Some(timed) => {
            let validating = Instant::now();
            let validated = value.validate();
            *timed = validating.elapsed();
            validated
        }
        None => value.validate(),
    };
    validated.map_err(|errors| ServiceError::validation(crate::validation::violations(&errors)))?;
    Ok(value)
}
