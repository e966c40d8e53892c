//! A fallback: a call to one endpoint that fails is answered with a value of the caller's instead
//! (a cached price, an empty recommendation list), when the caller's function offers one for
//! that failure; the typed client then returns it as the endpoint's own answer.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::client::{EncodedCall, EncodedReply};
use crate::codec::Codec;
use crate::contract::Request;
use crate::envelope;
use crate::error::RpcError;

/// Answers failed calls to the endpoint of `R` with the caller's value (see the module's page).
///
/// ```no_run
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, validator::Validate)] struct Price { sku: String }
/// # natsrpc::request!(Price => u64, service = "pricing", endpoint = "price");
/// # async fn run(nats: natsrpc::async_nats::Client) {
/// use natsrpc::client::layers::{CircuitBreakerLayer, FallbackLayer};
/// # use std::time::Duration;
///
/// let client = natsrpc::Client::new(nats)
///     .layer(CircuitBreakerLayer::new(5, Duration::from_secs(10), Duration::from_secs(5)))
///     // Outside the breaker: its refusals get the fallback too. A refusal of the request
///     // itself (a 400, a 404) is the caller's to see, and gets none.
///     .layer(FallbackLayer::new::<Price>(|error| {
///         let failed = error.is_retryable() || matches!(error, natsrpc::RpcError::Rejected { .. });
///         failed.then_some(999)
///     }));
/// # }
/// ```
#[derive(Clone)]
pub struct FallbackLayer {
    subject: &'static str,
    /// The caller's value for a failure, encoded as a success reply in the call's codec.
    fallback: Arc<Fallen>,
}

/// The caller's value for a failure, encoded.
type Fallen = dyn Fn(&RpcError, Codec) -> Option<Bytes> + Send + Sync;

impl std::fmt::Debug for FallbackLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallbackLayer").field("subject", &self.subject).finish_non_exhaustive()
    }
}

impl FallbackLayer {
    /// Falls back for calls of `R` (others go through untouched) to what `fallback` answers for
    /// the call's error: `Some(value)` is returned in the reply's place, `None` lets the error
    /// through. A service's error reply reaches `fallback` as [`RpcError::Remote`].
    pub fn new<R: Request>(
        fallback: impl Fn(&RpcError) -> Option<R::Response> + Send + Sync + 'static,
    ) -> Self {
        let encoded = move |error: &RpcError, codec: Codec| {
            let value = fallback(error)?;
            match envelope::encode_success(codec, &value) {
                Ok(body) => Some(Bytes::from(body)),
                Err(error) => {
                    tracing::warn!(%error, "a fallback value could not be encoded");
                    None
                }
            }
        };
        Self { subject: R::SUBJECT, fallback: Arc::new(encoded) }
    }
}

guarding_layer!(FallbackLayer => Fallback, "The service [`FallbackLayer`] makes.");

impl FallbackLayer {
    fn guard<S>(&self, inner: &mut S, call: EncodedCall) -> BoxFuture<'static, Result<EncodedReply, RpcError>>
    where
        S: tower::Service<EncodedCall, Response = EncodedReply, Error = RpcError>,
        S::Future: Send + 'static,
    {
        if call.subject != self.subject {
            return Box::pin(inner.call(call));
        }
        let codec = Codec::from_content_type(call.content_type).unwrap_or_default();
        let fallback = Arc::clone(&self.fallback);
        let calling = inner.call(call);
        Box::pin(async move {
            let answer = calling.await;
            let error = match &answer {
                Ok(reply) if reply.status == 200 => return answer,
                // The service's error, read from its envelope as the typed client would.
                Ok(reply) => {
                    let codec =
                        reply.content_type.as_deref().and_then(Codec::from_content_type).unwrap_or(codec);
                    match envelope::decode_reply::<serde::de::IgnoredAny>(codec, &reply.payload) {
                        Err(error) => error,
                        Ok(_) => return answer,
                    }
                }
                Err(error) => return fallen_back(&*fallback, error, codec).map_or(answer, Ok),
            };
            fallen_back(&*fallback, &error, codec).map_or(answer, Ok)
        })
    }
}

/// The fallback's reply for `error`, if it offers one.
fn fallen_back(fallback: &Fallen, error: &RpcError, codec: Codec) -> Option<EncodedReply> {
    let payload = fallback(error, codec)?;
    Some(EncodedReply { status: 200, content_type: Some(codec.content_type().to_string()), payload })
}
