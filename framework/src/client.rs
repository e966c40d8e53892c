//! The typed client: `client.call(&request).await` returns the contract's response or an [`RpcError`].

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::client::RequestErrorKind;
use bytes::Bytes;

use crate::codec::Codec;
use crate::contract::Request;
use crate::envelope;
use crate::error::RpcError;
use crate::headers;

/// How long a call waits for its reply unless told otherwise.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Retries with exponential backoff and full jitter, for calls that are safe to repeat.
///
/// Only "no responders" (the service is restarting) and timeouts are retried: any reply, even an
/// error, is an answer. A client-wide policy applies to requests declared `idempotent`; a per-call
/// policy ([`CallOptions::retry`]) applies to that call whatever its type says. Each wait is drawn
/// between zero and the exponential bound, so that clients that failed together do not all come
/// back at the same moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Bound of the wait before the second attempt.
    pub initial_backoff: Duration,
    /// The bound grows by this factor per attempt...
    pub multiplier: f64,
    /// ...up to this.
    pub max_backoff: Duration,
    /// Whether waits are drawn between zero and the bound (true) or are the bound itself.
    pub jitter: bool,
}

impl RetryPolicy {
    /// `max_attempts` attempts; waits bounded by `initial_backoff`, doubling, up to 2 s, jittered.
    pub fn exponential(max_attempts: u32, initial_backoff: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            initial_backoff,
            multiplier: 2.0,
            max_backoff: Duration::from_secs(2),
            jitter: true,
        }
    }

    /// The same policy with waits of exactly the bound.
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// The wait before retry number `retry` (0 for the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = self.multiplier.powi(i32::try_from(retry).unwrap_or(i32::MAX));
        let bound = self.initial_backoff.mul_f64(factor).min(self.max_backoff);
        if self.jitter { bound.mul_f64(rand::random::<f64>()) } else { bound }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_and_jitter_stays_under_the_bound() {
        let exact = RetryPolicy::exponential(10, Duration::from_millis(100)).without_jitter();
        let waits: Vec<u128> = (0..7).map(|retry| exact.backoff(retry).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 2000, 2000]);
        let jittered = RetryPolicy::exponential(10, Duration::from_millis(100));
        let draws: Vec<Duration> = (0..200).map(|_| jittered.backoff(3)).collect();
        assert!(draws.iter().all(|wait| *wait <= Duration::from_millis(800)));
        assert!(draws.iter().any(|wait| *wait != draws[0]), "drawn, not fixed");
    }
}

/// Per-call settings.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    timeout: Option<Duration>,
    codec: Option<Codec>,
    correlation_id: Option<String>,
    retry: Option<RetryPolicy>,
}

impl CallOptions {
    /// The client's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits this long for the reply.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// A call made while handling the request `ctx`: with its correlation id, so the logs of both
    /// join up, and within its remaining time, so the callee gives up when the caller must.
    pub fn within(mut self, ctx: &crate::RequestContext) -> Self {
        self.correlation_id = Some(ctx.correlation_id().to_string());
        if let Some(remaining) = ctx.remaining() {
            self.timeout = Some(remaining);
        }
        self
    }

    /// Encodes the request (and so gets the reply) in this codec.
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = Some(codec);
        self
    }

    /// Sends this correlation id, such as the one of the request being handled, instead of a new one.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Retries this call by `policy`, whether or not its request type is declared idempotent.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }
}

/// A typed client over an `async_nats::Client`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    nats: async_nats::Client,
    timeout: Duration,
    codec: Codec,
    retry: Option<RetryPolicy>,
}

impl Client {
    /// JSON, a 5 s timeout, no retries.
    pub fn new(nats: async_nats::Client) -> Self {
        Self { nats, timeout: DEFAULT_CALL_TIMEOUT, codec: Codec::Json, retry: None }
    }

    /// The default timeout of calls.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The default codec of calls.
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Retries calls of idempotent request types by `policy`.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// The NATS connection underneath.
    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// Calls the endpoint `R` names, with the client's defaults.
    pub async fn call<R: Request>(&self, request: &R) -> Result<R::Response, RpcError> {
        self.call_with(request, CallOptions::new()).await
    }

    /// Calls the endpoint `R` names, with per-call settings.
    pub async fn call_with<R: Request>(
        &self,
        request: &R,
        options: CallOptions,
    ) -> Result<R::Response, RpcError> {
        let codec = options.codec.unwrap_or(self.codec);
        let timeout = options.timeout.unwrap_or(self.timeout);
        let payload: Bytes = codec.encode(request).map_err(RpcError::Encode)?.into();
        let mut headers = HeaderMap::new();
        headers.insert(headers::CONTENT_TYPE, codec.content_type());
        let correlation_id = options.correlation_id.unwrap_or_else(|| nuid::next().to_string());
        headers.insert(headers::CORRELATION_ID, correlation_id.as_str());
        headers.insert(headers::DEADLINE, timeout.as_millis().to_string().as_str());

        let retry = options.retry.or(self.retry.filter(|_| R::IDEMPOTENT));
        let attempts = retry.map_or(1, |policy| policy.max_attempts);
        let mut attempt = 1;
        let reply = loop {
            // The last attempt takes the headers; earlier ones send a copy.
            let headers = if attempt < attempts { headers.clone() } else { std::mem::take(&mut headers) };
            match self.send(R::SUBJECT, headers, payload.clone(), timeout).await {
                Err(error @ (RpcError::NoResponders { .. } | RpcError::Timeout { .. }))
                    if attempt < attempts =>
                {
                    let wait = retry.map_or(Duration::ZERO, |policy| policy.backoff(attempt - 1));
                    tracing::debug!(%error, attempt, ?wait, %correlation_id, "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                result => break result?,
            }
        };
        let codec = reply
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::CONTENT_TYPE))
            .and_then(|v| Codec::from_content_type(v.as_str()))
            .unwrap_or(codec);
        envelope::decode_reply(codec, &reply.payload)
    }

    async fn send(
        &self,
        subject: &'static str,
        headers: HeaderMap,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<async_nats::Message, RpcError> {
        let request = async_nats::Request::new().headers(headers).payload(payload).timeout(Some(timeout));
        self.nats.send_request(subject, request).await.map_err(|error| match error.kind() {
            RequestErrorKind::NoResponders => RpcError::NoResponders { subject: subject.to_string() },
            RequestErrorKind::TimedOut => RpcError::Timeout { subject: subject.to_string(), after: timeout },
            RequestErrorKind::MaxPayloadExceeded => RpcError::PayloadTooLarge(error.to_string()),
            _ => RpcError::transport(error),
        })
    }
}
