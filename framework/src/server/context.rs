//! What a handler may want to know about its request besides the body, and the shared state it may
//! want: both are handler arguments, taken only when the handler names them.

use std::any::{Any, TypeId};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;

use super::head::RequestHead;
use crate::escape::{MAX_CORRELATION_ID, escape, is_safe};
use crate::trace::TraceContext;

/// The request's head (subject, correlation id, the caller's deadline), and its headers when it
/// came over NATS.
///
/// Take it as a handler argument: `async fn cancel(ctx: RequestContext, req: Cancel)`. Pass
/// [`RequestContext::correlation_id`] on to the calls a handler makes, so their logs join up.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// What every copy shares: a handler's copy, a layer's and the pipeline's name the same
    /// request, and what is made up when first asked for (a correlation id, a span) is made once.
    request: Arc<Shared>,
    /// What layers learned about the request (who sent it, say), for the handler.
    extensions: Extensions,
}

#[derive(Debug)]
struct Shared {
    head: RequestHead,
    /// Made only when asked for and the caller sent none (or one that had to be escaped): most
    /// requests never need one.
    generated_id: OnceLock<String>,
    /// When the request's handler is given up on.
    deadline: Option<Instant>,
    /// The time the request had from its arrival (the endpoint's, or the caller's when shorter).
    budget: Option<Duration>,
    /// This request's span and its caller's, made when first asked for.
    trace: OnceLock<(TraceContext, Option<TraceContext>)>,
}

/// Values of distinct types, as `http::Extensions`: a handful at most, so a list.
#[derive(Clone, Default)]
struct Extensions(Vec<(TypeId, Arc<dyn Any + Send + Sync>)>);

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Extensions({} values)", self.0.len())
    }
}

impl RequestContext {
    pub(crate) fn new(head: RequestHead) -> Self {
        Self::with_deadline(head, None, None)
    }

    /// `deadline` is `None` when the clock cannot hold it (a timeout of centuries).
    pub(crate) fn with_deadline(
        head: RequestHead,
        deadline: Option<Instant>,
        budget: Option<Duration>,
    ) -> Self {
        let shared = Shared { head, generated_id: OnceLock::new(), deadline, budget, trace: OnceLock::new() };
        Self { request: Arc::new(shared), extensions: Extensions::default() }
    }

    /// Keeps `value` with the request, for the layers inside this one and the handler to read with
    /// [`extension`](Self::extension); it replaces a value of the same type. What an
    /// authentication layer does with the caller it found.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        let id = TypeId::of::<T>();
        self.extensions.0.retain(|(kept, _)| *kept != id);
        self.extensions.0.push((id, Arc::new(value)));
    }

    /// The value of type `T` a layer kept with the request, if any.
    pub fn extension<T: Send + Sync + 'static>(&self) -> Option<&T> {
        let id = TypeId::of::<T>();
        let (_, value) = self.extensions.0.iter().find(|(kept, _)| *kept == id)?;
        value.downcast_ref()
    }

    /// When the request is given up on, if the clock can hold it.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.request.deadline
    }

    /// The time the request had from its arrival.
    pub(crate) fn budget(&self) -> Option<Duration> {
        self.request.budget
    }

    /// The time left before the request is given up on (the endpoint's deadline, or the caller's
    /// if sooner): pass it on to the calls the handler makes, as
    /// [`CallOptions::within`](crate::CallOptions::within) does.
    pub fn remaining(&self) -> Option<Duration> {
        self.request.deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// The subject the request arrived on, such as `shop.create_order`.
    pub fn subject(&self) -> &str {
        self.request.head.subject()
    }

    /// The caller's correlation id, or a new one when the caller sent none. An id with characters
    /// outside printable ASCII, or longer than [`MAX_CORRELATION_ID`] bytes, is escaped and cut
    /// (see [`crate::escape`]): it goes into reply headers and log lines.
    pub fn correlation_id(&self) -> &str {
        let request = &*self.request;
        match request.head.correlation_id() {
            Some(id) if is_safe(id, MAX_CORRELATION_ID) => id,
            Some(id) => request.generated_id.get_or_init(|| escape(id, MAX_CORRELATION_ID).into_owned()),
            None => request.generated_id.get_or_init(|| nuid::next().to_string()),
        }
    }

    /// This request's span in its trace: a child of the caller's `traceparent`, or the first span
    /// of a new trace when the caller sent none (or one that does not read). Calls made
    /// [within](crate::CallOptions::within) the request carry it on.
    pub fn trace(&self) -> TraceContext {
        self.traced().0
    }

    /// The caller's span, when it sent a `traceparent` that reads.
    pub fn caller_trace(&self) -> Option<TraceContext> {
        self.traced().1
    }

    fn traced(&self) -> &(TraceContext, Option<TraceContext>) {
        self.request.trace.get_or_init(|| {
            let caller = self.request.head.traceparent().and_then(TraceContext::parse);
            (caller.map_or_else(TraceContext::new_root, |caller| caller.child()), caller)
        })
    }

    /// A request header's first value, for a request that came over NATS with headers (other
    /// transports pass on only the [head](Self::head)).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.head.headers()?.get(name).map(|v| v.as_str())
    }

    /// All request headers, for a request that came over NATS with headers.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.request.head.headers()
    }

    /// The request's head, as its transport read it.
    pub fn head(&self) -> &RequestHead {
        &self.request.head
    }
}

/// The service's shared state, as a handler argument: `async fn f(State(shop): State<Shop>, ...)`.
///
/// The state is cloned for each request that asks for it, so share it through an `Arc` (or make it
/// a cheap handle, as a connection pool is).
#[derive(Debug, Clone, Copy, Default)]
pub struct State<S>(pub S);

/// A handler argument that comes from the request's context or the service's state.
pub trait FromContext<S>: Sized {
    /// Takes the argument out of the request context and the service state.
    fn from_context(ctx: &RequestContext, state: &S) -> Self;
}

impl<S: Clone> FromContext<S> for State<S> {
    fn from_context(_: &RequestContext, state: &S) -> Self {
        State(state.clone())
    }
}

impl<S> FromContext<S> for RequestContext {
    fn from_context(ctx: &RequestContext, _: &S) -> Self {
        ctx.clone()
    }
}
