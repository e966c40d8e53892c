//! A layer from a plain function over the call, run before the layers inside it: it may refuse
//! the request with a [`ServiceError`] of its choosing, or keep what it learned with the request
//! ([`RequestContext::insert`](crate::RequestContext::insert)) for the handler. What
//! authentication from headers needs, and what [`RateLimitLayer`](super::RateLimitLayer) is.

use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::Either;

use super::Call;
use crate::error::ServiceError;

/// Something that looks at each call before the services inside it: a function
/// `Fn(&mut Call) -> Result<(), ServiceError>`, or a [`RateLimiter`](super::RateLimiter).
pub trait CallCheck: Clone + Send + Sync + 'static {
    /// Lets the call through (having kept what it wants with it), or refuses it.
    fn check(&self, call: &mut Call) -> Result<(), ServiceError>;
}

impl<F> CallCheck for F
where
    F: Fn(&mut Call) -> Result<(), ServiceError> + Clone + Send + Sync + 'static,
{
    fn check(&self, call: &mut Call) -> Result<(), ServiceError> {
        self(call)
    }
}

/// A layer that runs `check` on each call first (see the module's page):
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, validator::Validate)] struct Drop {}
/// # natsrpc::request!(Drop => (), service = "admin", endpoint = "drop");
/// # async fn drop_all(_: Drop) -> Result<(), natsrpc::ServiceError> { Ok(()) }
/// use natsrpc::server::layers::{Call, check};
/// use natsrpc::{EndpointOptions, ServiceError};
///
/// let admins_only = check(|call: &mut Call| match call.ctx.header("X-Role") {
///     Some("admin") => Ok(()),
///     _ => Err(ServiceError::forbidden("only admins may drop everything")),
/// });
/// let service = natsrpc::Service::builder("admin", "1.0.0")
///     .endpoint_with(drop_all, EndpointOptions::new().layer(admins_only));
/// # let _ = service;
/// ```
pub fn check<C: CallCheck>(check: C) -> CheckLayer<C> {
    CheckLayer { check }
}

/// The layer [`check`] makes.
#[derive(Debug, Clone)]
pub struct CheckLayer<C> {
    pub(super) check: C,
}

impl<S, C: Clone> tower::Layer<S> for CheckLayer<C> {
    type Service = Check<S, C>;

    fn layer(&self, inner: S) -> Check<S, C> {
        Check { inner, check: self.check.clone() }
    }
}

/// The service a [`CheckLayer`] makes.
#[derive(Debug, Clone)]
pub struct Check<S, C> {
    inner: S,
    check: C,
}

impl<S, C> tower::Service<Call> for Check<S, C>
where
    S: tower::Service<Call, Response = Bytes, Error = ServiceError>,
    C: CallCheck,
{
    type Response = Bytes;
    type Error = ServiceError;
    type Future = Either<std::future::Ready<Result<Bytes, ServiceError>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ServiceError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut call: Call) -> Self::Future {
        match self.check.check(&mut call) {
            Ok(()) => Either::Right(self.inner.call(call)),
            Err(refused) => Either::Left(std::future::ready(Err(refused))),
        }
    }
}
