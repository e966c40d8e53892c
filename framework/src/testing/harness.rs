//! In-process calls through the same decode, validate, handle, encode path as the wire.

use async_nats::HeaderMap;
use bytes::Bytes;

use crate::codec::Codec;
use crate::contract::Request;
use crate::envelope;
use crate::error::{RpcError, ServiceError};
use crate::server::{Dispatcher, ServiceBuilder};
use crate::testing::Sample;

/// Calls a service's endpoints without NATS.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use validator::Validate;
///
/// #[derive(Serialize, Deserialize, Validate)]
/// struct Add {
///     #[validate(range(max = 1000))]
///     a: u32,
///     b: u32,
/// }
/// natsrpc::request!(Add => u32, service = "calc", endpoint = "add");
///
/// async fn add(req: Add) -> Result<u32, natsrpc::ServiceError> {
///     Ok(req.a + req.b)
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let calc = natsrpc::testing::Harness::new(natsrpc::Service::builder("calc", "1.0.0").endpoint(add))?;
/// assert_eq!(calc.call(&Add { a: 2, b: 3 }).await?, 5);
/// let invalid = calc.call(&Add { a: 2000, b: 3 }).await.unwrap_err();
/// assert_eq!(invalid.status(), Some(400));
/// # Ok::<(), natsrpc::RpcError>(()) }).unwrap();
/// ```
pub struct Harness {
    dispatcher: Dispatcher,
    codec: Codec,
}

/// A reply exactly as it would go on the wire.
#[derive(Debug, Clone)]
pub struct RawReply {
    /// The reply's headers: none for a success reply.
    pub headers: HeaderMap,
    /// The encoded envelope.
    pub payload: Bytes,
    /// The error the envelope carries, if any.
    pub error: Option<ServiceError>,
}

impl Harness {
    /// Builds the service's endpoints, with its state and limits, without starting anything.
    pub fn new<S: Send + Sync + 'static>(service: ServiceBuilder<S>) -> Result<Self, RpcError> {
        Ok(Self { dispatcher: Dispatcher::new(service)?, codec: Codec::Json })
    }

    /// Encodes calls in `codec` from now on (JSON by default).
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Calls the endpoint `R` names and decodes its reply, as [`Client::call`](crate::Client::call)
    /// does with [`CallOptions::unchecked`](crate::CallOptions::unchecked): an invalid request
    /// reaches the service, whose own validation answers it.
    pub async fn call<R: Request>(&self, request: &R) -> Result<R::Response, RpcError> {
        let body = self.codec.encode(request).map_err(RpcError::Encode)?;
        let reply = self.call_raw(R::SUBJECT, Some(self.codec.content_type()), body).await;
        envelope::decode_reply(self.codec, &reply.payload)
    }

    /// Sends raw bytes to a subject, with an optional `Content-Type`: for malformed input and
    /// unknown endpoints.
    pub async fn call_raw(
        &self,
        subject: &str,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
    ) -> RawReply {
        let head = crate::RequestHead::new(subject);
        let head = match content_type {
            Some(value) => head.with_content_type(value),
            None => head,
        };
        let reply = self.dispatcher.dispatch(head, body.into()).await;
        // The headers NATS would carry, framed by the same code as on the wire.
        RawReply {
            headers: reply.nats_headers().unwrap_or_default(),
            payload: reply.body,
            error: reply.error,
        }
    }

    /// Sends each sample to its endpoint (after `prepare`, such as refreshing
    /// timestamps): the valid one must pass validation, the invalid one must come back with its
    /// named violation. Answers what did not hold.
    pub async fn check_samples(
        &self,
        samples: &[Sample],
        prepare: impl Fn(&mut serde_json::Value),
    ) -> Result<(), String> {
        for sample in samples {
            let subject = format!("{}.{}", self.dispatcher.service(), sample.endpoint);
            let (mut valid, mut invalid) = (sample.valid.clone(), sample.invalid.request.clone());
            prepare(&mut valid);
            prepare(&mut invalid);
            let reply = self.call_raw(&subject, Some("application/json"), valid.to_string()).await;
            if let Some(error) = reply.error.filter(|e| e.kind == crate::ErrorKind::Validation) {
                return Err(format!("{}: the valid sample is refused: {}", sample.endpoint, error.message));
            }
            let reply = self.call_raw(&subject, Some("application/json"), invalid.to_string()).await;
            let violations = reply.error.map(|e| e.violations).unwrap_or_default();
            let expected = (sample.invalid.path.as_str(), sample.invalid.code);
            if !violations.iter().any(|v| (v.path.as_str(), v.code.as_str()) == expected) {
                return Err(format!("{}: expected {expected:?}, got {violations:?}", sample.endpoint));
            }
        }
        Ok(())
    }
}
