//! Handlers: plain `async fn`s whose last argument is the decoded, validated request and whose other
//! arguments ([`State`](super::State), [`RequestContext`]) are taken only when named.
//!
//! ```text
//! async fn get(req: GetOrder) -> Result<Order, ShopError>
//! async fn get(State(shop): State<Shop>, req: GetOrder) -> Result<Order, ShopError>
//! async fn get(State(shop): State<Shop>, ctx: RequestContext, req: GetOrder) -> Result<Order, ShopError>
//! ```

use std::future::Future;

use super::context::{FromContext, RequestContext};
use crate::contract::Request;
use crate::error::ServiceError;

/// Implemented for every `async fn` (or closure) of the shapes above. The type parameter `T` only
/// tells the shapes apart; users never name it.
pub trait Handler<T, S>: Clone + Send + Sync + 'static {
    /// The request type, whose contract names the endpoint.
    type Request: Request;

    /// Runs the handler on a validated request.
    fn call(
        &self,
        request: Self::Request,
        ctx: &RequestContext,
        state: &S,
    ) -> impl Future<Output = Result<<Self::Request as Request>::Response, ServiceError>> + Send + 'static;
}

macro_rules! impl_handler {
    ($($arg:ident),*) => {
        #[allow(non_snake_case, unused_variables)]
        impl<F, Fut, S, R, E, $($arg,)*> Handler<($($arg,)* R,), S> for F
        where
            F: Fn($($arg,)* R) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = Result<R::Response, E>> + Send + 'static,
            R: Request,
            E: Into<ServiceError>,
            $($arg: FromContext<S>,)*
        {
            type Request = R;

            fn call(
                &self,
                request: R,
                ctx: &RequestContext,
                state: &S,
            ) -> impl Future<Output = Result<R::Response, ServiceError>> + Send + 'static {
                $(let $arg = $arg::from_context(ctx, state);)*
                let fut = (self)($($arg,)* request);
                async move { fut.await.map_err(Into::into) }
            }
        }
    };
}

impl_handler!();
impl_handler!(A1);
impl_handler!(A1, A2);
impl_handler!(A1, A2, A3);
