//! One request through one endpoint: decode, validate, handle, encode. The NATS loop and the test
//! harness both go through [`Endpoint::admit`] and [`Admitted::process`], so tests exercise exactly the
//! path the wire does.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::context::RequestContext;
use super::handler::Handler;
use super::head::RequestHead;
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

/// The type-erased pipeline of one endpoint's request type and handler.
type Pipeline = Arc<dyn Fn(RequestHead, Bytes, Admitted) -> BoxFuture<'static, Dispatched> + Send + Sync>;

/// What the pipeline needs besides the request.
#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) service: String,
    pub(crate) name: String,
    pub(crate) timeout: Duration,
    pub(crate) max_payload: Option<usize>,
    pub(crate) max_in_flight: usize,
    pub(crate) stats: EndpointCounters,
    pub(crate) in_flight: AtomicUsize,
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
    pub(crate) fn new<H, T, S>(
        handler: H,
        state: Arc<S>,
        limits: Limits,
        metadata: Vec<(String, String)>,
    ) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
        S: Send + Sync + 'static,
    {
        let pipeline: Pipeline = Arc::new(move |head, payload, admitted| {
            let handler = handler.clone();
            let state = Arc::clone(&state);
            Box::pin(process::<H, T, S>(handler, state, head, payload, admitted))
        });
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
            limits: Arc::new(limits),
            pipeline,
        }
    }

    /// Handlers running now.
    pub(crate) fn in_flight(&self) -> usize {
        self.limits.in_flight.load(Ordering::Relaxed)
    }

    /// Whether the request would pass decoding and validation (and the size bound).
    pub(crate) fn check(&self, head: &RequestHead, payload: &[u8]) -> Result<(), ServiceError> {
        (self.check)(head, payload, self.limits.max_payload)
    }

    /// Takes a request in, or refuses it at once when the endpoint is at its in-flight bound.
    pub(crate) fn admit(&self) -> Result<Admitted, ServiceError> {
        let limits = &self.limits;
        if limits.in_flight.fetch_add(1, Ordering::AcqRel) >= limits.max_in_flight {
            limits.in_flight.fetch_sub(1, Ordering::AcqRel);
            limits.stats.record_overloaded(limits.max_in_flight);
            return Err(ServiceError::overloaded(limits.max_in_flight));
        }
        let place = Place(Arc::clone(limits));
        Ok(Admitted { limits: Arc::clone(limits), pipeline: Arc::clone(&self.pipeline), place, late: None })
    }
}

/// A request admitted to its endpoint, with the in-flight place it holds.
pub(crate) struct Admitted {
    limits: Arc<Limits>,
    pipeline: Pipeline,
    place: Place,
    /// Where the reply goes when the handler ends after its caller was answered 504 (a keyed
    /// request's, which is kept for the caller's retries).
    late: Option<LateReply>,
}

/// The reply of a handler that ended after its deadline, when someone waits for it.
pub(crate) type LateReply = tokio::sync::oneshot::Sender<Dispatched>;

/// One of an endpoint's in-flight places, given back when dropped. It goes wherever the handler
/// goes: a handler that outlives its caller's deadline keeps its place until it ends, so that
/// handlers left running can never exceed the endpoint's bound.
struct Place(Arc<Limits>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admitted {
    /// Sends the reply of a handler that outlives its deadline to `late`, after the caller has
    /// been answered 504.
    pub(crate) fn with_late_reply(mut self, late: LateReply) -> Self {
        self.late = Some(late);
        self
    }

    /// The whole pipeline for this request as one future. It is boxed once here so that the
    /// caller can poll it in place and only spawn it when it really has to wait.
    pub(crate) fn process(self, head: RequestHead, payload: Bytes) -> BoxFuture<'static, Dispatched> {
        let pipeline = Arc::clone(&self.pipeline);
        pipeline(head, payload, self)
    }
}

async fn process<H, T, S>(
    handler: H,
    state: Arc<S>,
    head: RequestHead,
    payload: Bytes,
    admitted: Admitted,
) -> Dispatched
where
    H: Handler<T, S>,
    S: Send + Sync + 'static,
{
    let started = Instant::now();
    // The wall clock only for a span to export: most services export none.
    let wall_start = crate::trace::exporting().then(std::time::SystemTime::now);
    let Admitted { limits, place, late, .. } = admitted;
    let detected = head.codec(&payload);
    // The caller's patience, when it said, bounds the endpoint's own deadline.
    let timeout = head.budget().map_or(limits.timeout, |budget| budget.min(limits.timeout));
    // From the request's arrival: decoding and validating count against it too.
    let deadline = started.checked_add(timeout);
    let ctx = RequestContext::new(head).with_deadline(deadline, timeout);
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
    #[cfg_attr(feature = "unvalidated-control", allow(unused_mut))]
    let mut validation = Duration::ZERO;
    let (codec, result) = match detected {
        // The request's codec is unknown, so the error goes back in the default one.
        Err(error) => (Codec::Json, Err(error)),
        Ok(codec) => {
            let steps = async {
                within(&payload, limits.max_payload)?;
                #[cfg(not(feature = "unvalidated-control"))]
                let request: H::Request = decode_valid(codec, &payload, Some(&mut validation))?;
                // The control build measures what validating costs by not doing it.
                #[cfg(feature = "unvalidated-control")]
                let request: H::Request = codec.decode(&payload)?;
                let call = handler.call(request, &ctx, &state);
                // A late reply is the one the caller would have had: encoded the same way.
                let late = late.map(|late| {
                    let correlation_id = ctx.correlation_id().to_string();
                    move |ended: Result<<H::Request as Request>::Response, ServiceError>| {
                        let encoded = ended.and_then(|response| envelope::encode_success(codec, &response));
                        let reply = match encoded {
                            Ok(payload) => Dispatched::success(codec, payload),
                            Err(error) => Dispatched::failure(codec, &correlation_id, error),
                        };
                        let _ = late.send(reply);
                    }
                });
                let response = run_handler(call, &ctx, &limits, deadline, place, late).await?;
                envelope::encode_success(codec, &response)
            };
            // A panic anywhere in decoding, validating, handling or encoding fails this request only.
            let result = match AssertUnwindSafe(steps).catch_unwind().instrument(span.clone()).await {
                Ok(result) => result,
                Err(panic) => Err(panicked(&ctx, panic.as_ref())),
            };
            (codec, result)
        }
    };
    let reply = match result {
        Ok(payload) => Dispatched::success(codec, payload),
        Err(error) => Dispatched::failure(codec, ctx.correlation_id(), error),
    };
    let elapsed = started.elapsed();
    limits.stats.record(elapsed, validation, reply.error.as_ref());
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

/// Runs the handler until `deadline` (none: a deadline the clock cannot hold).
///
/// Most handlers finish on their first poll; only one that has to wait pays for a timer, and, unless
/// the endpoint cancels at the deadline, for a task of its own: the caller is answered at the
/// deadline (or goes away) while the handler runs on, holding `place`, to its end, in the request's
/// span, and says how it ended when nobody was left to hear it.
async fn run_handler<R: Send + 'static>(
    call: impl Future<Output = Result<R, ServiceError>> + Send + 'static,
    ctx: &RequestContext,
    limits: &Limits,
    deadline: Option<Instant>,
    place: Place,
    late: Option<impl FnOnce(Result<R, ServiceError>) + Send + 'static>,
) -> Result<R, ServiceError> {
    let mut call = Box::pin(call);
    if let std::task::Poll::Ready(result) = futures::poll!(call.as_mut()) {
        return result;
    }
    let until = |deadline: Instant| tokio::time::Instant::from_std(deadline);
    if limits.cancel_at_deadline {
        let Some(deadline) = deadline else { return call.await };
        return match tokio::time::timeout_at(until(deadline), call).await {
            Ok(result) => result,
            Err(_elapsed) => Err(timed_out(ctx, limits)),
        };
    }
    let (outcome, finished) = tokio::sync::oneshot::channel();
    let correlation_id = ctx.correlation_id().to_string();
    let finishing = async move {
        let _place = place;
        let ended = AssertUnwindSafe(call).catch_unwind().await;
        if let Err(unheard) = outcome.send(ended) {
            let result = match unheard {
                Ok(result) => {
                    match &result {
                        Ok(_) => {
                            tracing::info!(%correlation_id, "handler finished after its caller had gone")
                        }
                        Err(error) => {
                            tracing::info!(%correlation_id, code = %error.code, "handler failed after its caller had gone")
                        }
                    }
                    result
                }
                Err(panic) => {
                    tracing::error!(%correlation_id, panic = %crate::escape::escape(panic_text(panic.as_ref()), 1024),
                    "handler panicked after its caller had gone");
                    Err(ServiceError::internal(format!("internal error (correlation id {correlation_id})")))
                }
            };
            // Someone waits for how it ended: a keyed request's claim, to keep the reply.
            if let Some(late) = late {
                late(result);
            }
        }
    };
    limits.finishing.spawn(finishing.in_current_span());
    let ended = match deadline {
        Some(deadline) => tokio::time::timeout_at(until(deadline), finished).await,
        None => Ok(finished.await),
    };
    match ended {
        Ok(Ok(Ok(result))) => result,
        Ok(Ok(Err(panic))) => Err(panicked(ctx, panic.as_ref())),
        Ok(Err(_dropped)) => {
            Err(panicked(ctx, &"the handler's task was dropped (the runtime is shutting down)"))
        }
        Err(_elapsed) => Err(timed_out(ctx, limits)),
    }
}

fn timed_out(ctx: &RequestContext, limits: &Limits) -> ServiceError {
    // The time the request had: the caller's, when it said so and it was shorter.
    let timeout = ctx.budget().unwrap_or(limits.timeout);
    tracing::warn!(correlation_id = ctx.correlation_id(), ?timeout, "handler did not finish by its deadline");
    ServiceError::timeout(timeout)
}

/// The error a panic in a request's path becomes. The panic's text stays in the log (escaped: it
/// may quote the request); the caller learns only that the request failed, and the correlation id
/// to find it by.
fn panicked(ctx: &RequestContext, panic: &(dyn Any + Send)) -> ServiceError {
    let correlation_id = ctx.correlation_id();
    let text = panic_text(panic);
    tracing::error!(%correlation_id, panic = %crate::escape::escape(text, 1024), "request panicked");
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
