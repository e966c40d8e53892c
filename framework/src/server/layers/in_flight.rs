//! A bound on the requests handled at once: one more is answered 503 `overloaded` at once rather
//! than queued, so that a caller learns at once to retry elsewhere or later, and a burst never
//! turns into an unbounded queue of work whose callers have long gone.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;

use super::Call;
use crate::error::ServiceError;

/// Bounds the requests in flight through the services it makes. Every endpoint has one (its
/// [`max_in_flight`](crate::EndpointOptions::max_in_flight)); one added with
/// [`ServiceBuilder::layer`](crate::ServiceBuilder::layer) is shared by all its endpoints, a
/// bound on the whole service.
///
/// A request keeps its place until its handler ends, even one that runs on after its caller was
/// answered at the deadline: handlers left running never exceed the bound.
#[derive(Debug, Clone)]
pub struct InFlightLimitLayer {
    bound: Arc<Bound>,
}

#[derive(Debug)]
struct Bound {
    max: usize,
    in_flight: AtomicUsize,
}

impl InFlightLimitLayer {
    /// At most `max` requests (at least 1) at once.
    pub fn new(max: usize) -> Self {
        Self { bound: Arc::new(Bound { max: max.max(1), in_flight: AtomicUsize::new(0) }) }
    }

    /// The requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.bound.in_flight.load(Ordering::Acquire)
    }

    /// The bound.
    pub fn max(&self) -> usize {
        self.bound.max
    }
}

impl<S> tower::Layer<S> for InFlightLimitLayer {
    type Service = InFlightLimit<S>;

    fn layer(&self, inner: S) -> InFlightLimit<S> {
        InFlightLimit { inner, bound: Arc::clone(&self.bound) }
    }
}

/// The service an [`InFlightLimitLayer`] makes.
#[derive(Debug, Clone)]
pub struct InFlightLimit<S> {
    inner: S,
    bound: Arc<Bound>,
}

impl<S> tower::Service<Call> for InFlightLimit<S>
where
    S: tower::Service<Call, Response = Bytes, Error = ServiceError>,
{
    type Response = Bytes;
    type Error = ServiceError;
    type Future = InFlightFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ServiceError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let bound = &self.bound;
        if bound.in_flight.fetch_add(1, Ordering::AcqRel) >= bound.max {
            bound.in_flight.fetch_sub(1, Ordering::AcqRel);
            return InFlightFuture {
                inner: None,
                refused: Some(ServiceError::overloaded(bound.max)),
                place: None,
            };
        }
        let place = Place(Arc::clone(bound));
        InFlightFuture { inner: Some(self.inner.call(call)), refused: None, place: Some(place) }
    }
}

/// One place among the requests in flight, given back when dropped: it goes wherever the
/// request's future goes.
#[derive(Debug)]
struct Place(Arc<Bound>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project_lite::pin_project! {
    /// The future of [`InFlightLimit`]: the inner service's, holding its place, or the refusal.
    pub struct InFlightFuture<F> {
        #[pin]
        inner: Option<F>,
        refused: Option<ServiceError>,
        place: Option<Place>,
    }
}

impl<F: Future<Output = Result<Bytes, ServiceError>>> Future for InFlightFuture<F> {
    type Output = Result<Bytes, ServiceError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.inner.as_pin_mut() {
            Some(inner) => {
                let result = std::task::ready!(inner.poll(cx));
                // Given back as soon as the request ends, not when the future is dropped.
                this.place.take();
                Poll::Ready(result)
            }
            None => Poll::Ready(Err(this
                .refused
                .take()
                .unwrap_or_else(|| ServiceError::internal("a refused request was polled again")))),
        }
    }
}
