//! One request through one endpoint: decode, validate, handle, encode. The NATS loop and the test
//! harness both go through [`Endpoint::admit`] and [`Admitted::process`], so tests exercise exactly the
//! path the wire does.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::{HeaderMap, Subject};
use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use tracing::Instrument;

use super::context::RequestContext;
use super::handler::Handler;
use super::stats::EndpointStats;
use crate::codec::Codec;
use crate::contract::Request;
use crate::envelope;
use crate::error::ServiceError;
use crate::headers;

/// Limits of one endpoint.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) metadata: Vec<(String, String)>,
}

impl EndpointOptions {
    /// The service's defaults.
    pub fn new() -> Self {
        Self { max_in_flight: None, timeout: None, metadata: Vec::new() }
    }

    /// At most `n` requests handled at once; request `n + 1` is answered 503 at once.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = Some(n.max(1));
        self
    }

    /// A handler still running after `timeout` is abandoned and the caller answered 504.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
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

/// A request as it arrives: the part of a NATS message the pipeline needs.
pub(crate) struct Incoming {
    pub(crate) subject: Subject,
    pub(crate) headers: Option<HeaderMap>,
    pub(crate) payload: Bytes,
}

/// A reply ready to publish.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    /// The reply's codec (the request's).
    pub(crate) codec: Codec,
    /// `None` for a success reply.
    pub(crate) headers: Option<HeaderMap>,
    pub(crate) payload: Bytes,
    pub(crate) error: Option<ServiceError>,
}

impl Outgoing {
    /// A success reply is the envelope alone, in the request's codec: the caller chose the codec
    /// and knows its own correlation id. (Building and writing a header block was a tenth of the
    /// service's instructions per request under callgrind.) Standard NATS services answer the same
    /// way. Error replies carry headers, see [`Outgoing::failure`].
    pub(crate) fn success(codec: Codec, payload: Vec<u8>) -> Self {
        Self { codec, headers: None, payload: payload.into(), error: None }
    }

    /// An error reply: the envelope, plus `Content-Type`, the correlation id that finds the
    /// service's log line, and the NATS Services API error headers.
    pub(crate) fn failure(codec: Codec, correlation_id: &str, error: ServiceError) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(headers::CONTENT_TYPE, codec.content_type());
        headers.insert(headers::CORRELATION_ID, correlation_id);
        headers.insert(headers::SERVICE_ERROR, error.message.as_str());
        headers.insert(headers::SERVICE_ERROR_CODE, error.status.to_string().as_str());
        let payload = envelope::encode_failure(codec, &error).into();
        Self { codec, headers: Some(headers), payload, error: Some(error) }
    }
}

/// The type-erased pipeline of one endpoint's request type and handler.
type Pipeline = Arc<dyn Fn(Incoming, Admitted) -> BoxFuture<'static, Outgoing> + Send + Sync>;

/// What the pipeline needs besides the request.
#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) service: String,
    pub(crate) name: String,
    pub(crate) timeout: Duration,
    pub(crate) max_payload: Option<usize>,
    pub(crate) max_in_flight: usize,
    pub(crate) stats: EndpointStats,
    pub(crate) in_flight: AtomicUsize,
}

/// One registered endpoint.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) name: String,
    pub(crate) subject: String,
    pub(crate) metadata: Vec<(String, String)>,
    pub(crate) limits: Arc<Limits>,
    pipeline: Pipeline,
}

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
        let pipeline: Pipeline = Arc::new(move |incoming, admitted| {
            let handler = handler.clone();
            let state = Arc::clone(&state);
            Box::pin(process::<H, T, S>(handler, state, incoming, admitted))
        });
        Self {
            name: <H::Request as Request>::ENDPOINT.to_string(),
            subject: <H::Request as Request>::SUBJECT.to_string(),
            metadata,
            limits: Arc::new(limits),
            pipeline,
        }
    }

    /// Takes a request in, or refuses it at once when the endpoint is at its in-flight bound.
    pub(crate) fn admit(&self) -> Result<Admitted, ServiceError> {
        let limits = &self.limits;
        if limits.in_flight.fetch_add(1, Ordering::AcqRel) >= limits.max_in_flight {
            limits.in_flight.fetch_sub(1, Ordering::AcqRel);
            limits.stats.record_overloaded(limits.max_in_flight);
            return Err(ServiceError::overloaded(limits.max_in_flight));
        }
        Ok(Admitted { limits: Arc::clone(limits), pipeline: Arc::clone(&self.pipeline) })
    }
}

/// A request that holds one of its endpoint's in-flight places until it is dropped.
pub(crate) struct Admitted {
    limits: Arc<Limits>,
    pipeline: Pipeline,
}

impl Admitted {
    /// The whole pipeline for this request as one future. It is boxed once here so that the
    /// caller can poll it in place and only spawn it when it really has to wait.
    pub(crate) fn process(self, incoming: Incoming) -> BoxFuture<'static, Outgoing> {
        let pipeline = Arc::clone(&self.pipeline);
        pipeline(incoming, self)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.limits.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn process<H, T, S>(handler: H, state: Arc<S>, incoming: Incoming, admitted: Admitted) -> Outgoing
where
    H: Handler<T, S>,
    S: Send + Sync + 'static,
{
    let started = Instant::now();
    let limits = &admitted.limits;
    let Incoming { subject, headers, payload } = incoming;
    let detected = Codec::of_request(headers.as_ref(), &payload);
    // The caller's patience, when it said, bounds the endpoint's own deadline.
    let budget = headers
        .as_ref()
        .and_then(|h| h.get(crate::headers::DEADLINE))
        .and_then(|v| v.as_str().trim().parse::<u64>().ok())
        .map(Duration::from_millis);
    let timeout = budget.map_or(limits.timeout, |budget| budget.min(limits.timeout));
    let ctx = RequestContext::new(subject, headers).with_deadline(started + timeout);
    let span = tracing::info_span!(
        "request",
        service = %limits.service,
        endpoint = %limits.name,
        correlation_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
        duration_us = tracing::field::Empty,
    );
    if !span.is_disabled() {
        span.record("correlation_id", tracing::field::display(ctx.correlation_id()));
    }
    let mut validation = Duration::ZERO;
    let (codec, result) = match detected {
        // The request's codec is unknown, so the error goes back in the default one.
        Err(error) => (Codec::Json, Err(error)),
        Ok(codec) => {
            let result = async {
                if let Some(limit) = limits.max_payload.filter(|limit| payload.len() > *limit) {
                    return Err(ServiceError::payload_too_large(payload.len(), limit));
                }
                let request: H::Request = codec.decode(&payload)?;
                let validating = Instant::now();
                let validated = validator::Validate::validate(&request);
                validation = validating.elapsed();
                if let Err(errors) = validated {
                    return Err(ServiceError::validation(crate::validation::violations(&errors)));
                }
                let response = run_handler(&handler, request, &ctx, &state, timeout).await?;
                envelope::encode_success(codec, &response)
            }
            .instrument(span.clone())
            .await;
            (codec, result)
        }
    };
    let outgoing = match result {
        Ok(payload) => Outgoing::success(codec, payload),
        Err(error) => Outgoing::failure(codec, ctx.correlation_id(), error),
    };
    let elapsed = started.elapsed();
    let error = outgoing.error.as_ref().map(|e| (e.status, e.message.as_str()));
    limits.stats.record(elapsed, validation, error);
    span.record("duration_us", elapsed.as_micros() as u64);
    span.record(
        "outcome",
        tracing::field::display(outgoing.error.as_ref().map_or("ok", |e| e.code.as_str())),
    );
    span.in_scope(|| tracing::debug!("handled"));
    outgoing
}

/// Runs the handler under its deadline; a panic fails this request only.
async fn run_handler<H, T, S>(
    handler: &H,
    request: H::Request,
    ctx: &RequestContext,
    state: &S,
    timeout: Duration,
) -> Result<<H::Request as Request>::Response, ServiceError>
where
    H: Handler<T, S>,
{
    let mut call = std::pin::pin!(AssertUnwindSafe(handler.call(request, ctx, state)).catch_unwind());
    // Most handlers finish on their first poll; only one that has to wait pays for a timer.
    let finished = match futures::poll!(call.as_mut()) {
        std::task::Poll::Ready(finished) => Ok(finished),
        std::task::Poll::Pending => tokio::time::timeout(timeout, call).await,
    };
    match finished {
        Ok(Ok(result)) => result,
        Ok(Err(_panic)) => {
            // The panic's text stays in the log (the panic hook printed it); the caller learns only
            // that the request failed, and the correlation id to find it by.
            let correlation_id = ctx.correlation_id();
            tracing::error!(%correlation_id, "handler panicked");
            Err(ServiceError::internal(format!("internal error (correlation id {correlation_id})")))
        }
        Err(_elapsed) => {
            tracing::warn!(correlation_id = ctx.correlation_id(), ?timeout, "handler timed out");
            Err(ServiceError::timeout(timeout))
        }
    }
}
