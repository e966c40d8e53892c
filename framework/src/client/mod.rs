//! The typed client: `client.call(&request).await` returns the contract's response or an [`RpcError`].
//!
//! A request is validated before it is sent, by the contract's own rules: an invalid one comes back
//! as the [`RpcError::Validation`] the service would have answered (the same paths, codes and
//! message) without a message on the wire. [`CallOptions::unchecked`] sends it anyway, to see what a
//! service says of a request it must refuse.

use std::time::Duration;

pub mod layers;
mod retry;
mod transport;

use std::sync::Arc;

pub use retry::RetryPolicy;
pub use transport::{EncodedCall, EncodedReply, NatsTransport, PendingReplies, PendingReply, Transport};

use crate::codec::Codec;
use crate::contract::Request;
use crate::envelope;
use crate::error::{RpcError, ServiceError};

/// How long a call waits for its reply unless told otherwise.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The most a handler keeps for itself of its remaining time when it calls on ([`CallOptions::within`]).
pub const DEADLINE_RESERVE: Duration = Duration::from_millis(50);

/// Per-call settings.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    timeout: Option<Duration>,
    codec: Option<Codec>,
    correlation_id: Option<String>,
    trace: Option<crate::trace::TraceContext>,
    idempotency_key: Option<String>,
    retry: Option<RetryPolicy>,
    unchecked: bool,
    headers: Vec<(String, String)>,
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
    /// join up, in its trace (the callee's span a child of the request's, see [`crate::trace`]),
    /// and within its remaining time, so the callee gives up when the caller must.
    ///
    /// The call gets the time left less a tenth (at most [`DEADLINE_RESERVE`]): a call that runs
    /// late then fails while the handler can still answer, and say which call it was, instead of
    /// the handler's own deadline cutting both short with a bare timeout.
    pub fn within(mut self, ctx: &crate::RequestContext) -> Self {
        self.correlation_id = Some(ctx.correlation_id().to_string());
        self.trace = Some(ctx.trace());
        if let Some(remaining) = ctx.remaining() {
            self.timeout = Some(remaining - (remaining / 10).min(DEADLINE_RESERVE));
        }
        self
    }

    /// Encodes the request (and so gets the reply) in this codec.
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = Some(codec);
        self
    }

    /// Sends this correlation id, such as the one of the request being handled (without one, a call
    /// that is not retried sends none, and the service makes one up when it needs one).
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Makes the call part of a trace: the callee's span becomes a child of `parent` (sent as
    /// `traceparent`). [`within`](Self::within) does this with the request being handled.
    pub fn trace(mut self, parent: crate::trace::TraceContext) -> Self {
        self.trace = Some(parent);
        self
    }

    /// Sends `key` as the request's `Idempotency-Key`: an endpoint that keeps replies
    /// ([`EndpointOptions::idempotent_replies`](crate::EndpointOptions::idempotent_replies))
    /// handles the request once, however often it is sent with that key, and answers every
    /// attempt with the first reply. With a key, the client's retry policy applies to any
    /// request type, idempotent or not. A key is 1 to 64 characters of A-Z, a-z, 0-9, `_`, `-`.
    /// Over NATS only: a keyed call over a transport that does not carry the key (HTTP, AMQP
    /// here) is refused with [`RpcError::Config`].
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// [`idempotency_key`](Self::idempotency_key) with a key made up for this call: its retries
    /// are the same request.
    pub fn idempotent(self) -> Self {
        self.idempotency_key(nuid::next().to_string())
    }

    /// Sends the request without validating it first: the service's own answer to an invalid
    /// request (a test of the service, or a caller whose rules are older than the service's).
    pub fn unchecked(mut self) -> Self {
        self.unchecked = true;
        self
    }

    /// Sends the header `name: value` with the call (over NATS), such as the `Authorization` a
    /// service's authentication layer reads (see [`crate::server::layers`]). The call fails with
    /// [`RpcError::Config`], before anything is sent, for a name that is not an HTTP token or is
    /// one natsrpc sets itself (`Content-Type`, `X-Correlation-Id`, `X-Deadline-Ms`,
    /// `traceparent`, `Idempotency-Key`, and `Nats-` or `Natsrpc-` names: use the options that
    /// set them), and for a value that is not printable ASCII or is over [`MAX_HEADER_VALUE`]
    /// bytes. Transports other than NATS carry no headers of the caller's.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Retries this call by `policy`, whether or not its request type is declared idempotent.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }
}

/// The longest value [`CallOptions::header`] sends (a signed token may take a few kilobytes).
pub const MAX_HEADER_VALUE: usize = 4096;

/// Why a header of the caller's cannot be sent as it is.
fn header_problem(name: &str, value: &str) -> Option<String> {
    let shown = crate::escape::escape(name, 64);
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Some(format!("the header name {shown:?} is not a token"));
    }
    let lower = name.to_ascii_lowercase();
    let own = [
        crate::headers::CONTENT_TYPE,
        crate::headers::CORRELATION_ID,
        crate::headers::DEADLINE,
        crate::headers::TRACEPARENT,
        crate::headers::IDEMPOTENCY_KEY,
    ];
    if own.iter().any(|own| own.eq_ignore_ascii_case(name))
        || lower.starts_with("nats-")
        || lower.starts_with("natsrpc-")
    {
        return Some(format!("the header {shown:?} is natsrpc's own: set it with its call option"));
    }
    if !crate::escape::is_safe(value, MAX_HEADER_VALUE) {
        return Some(format!(
            "the value of header {shown:?} is not printable ASCII, or is over {MAX_HEADER_VALUE} bytes"
        ));
    }
    None
}

/// A typed client: over NATS ([`Client::new`]) or any other [`Transport`] ([`Client::over`]).
/// Cheap to clone.
#[derive(Clone)]
pub struct Client {
    transport: Arc<dyn Transport>,
    timeout: Duration,
    codec: Codec,
    retry: Option<RetryPolicy>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .field("codec", &self.codec)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Over NATS: JSON, a 5 s timeout, no retries.
    pub fn new(nats: async_nats::Client) -> Self {
        Self::over(NatsTransport(nats))
    }

    /// Over `transport`: JSON, a 5 s timeout, no retries.
    pub fn over(transport: impl Transport) -> Self {
        Self {
            transport: Arc::new(transport),
            timeout: DEFAULT_CALL_TIMEOUT,
            codec: Codec::Json,
            retry: None,
        }
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

    /// Wraps the client's calls in a tower `layer` (see [`layers`]): a circuit breaker, a
    /// bulkhead, a `tower::ServiceBuilder` stack, a layer of your own. Layers added later go
    /// outside those added before.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<layers::TransportService>,
        L::Service: tower::Service<EncodedCall, Response = EncodedReply, Error = RpcError>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower::Service<EncodedCall>>::Future: Send + 'static,
    {
        let inner = Arc::clone(&self.transport);
        let service = layer.layer(layers::TransportService(Arc::clone(&inner)));
        self.transport = Arc::new(layers::Layered { service, inner });
        self
    }

    /// Retries calls of idempotent request types by `policy`.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Calls the endpoint `R` names, with the client's defaults.
    pub async fn call<R: Request>(&self, request: &R) -> Result<R::Response, RpcError> {
        self.call_with(request, CallOptions::new()).await
    }

    /// Scatter-gather: sends `request` once to everything that answers `R`'s subject (responders
    /// outside a queue group, or several services on one subject) and decodes every reply, until
    /// `max` have come, or none has for `stall`, or the client's timeout is over. Each reply is a
    /// success or the error it carries; none at all is an empty list (a scatter-gather does not
    /// know how many should answer). Over a transport of one reply per request, the one.
    ///
    /// ```no_run
    /// # async fn run(client: natsrpc::Client, ping: impl natsrpc::Request) -> Result<(), natsrpc::RpcError> {
    /// let answers = client.request_many(&ping, 10, std::time::Duration::from_millis(200)).await?;
    /// let healthy = answers.iter().filter(|answer| answer.is_ok()).count();
    /// # let _ = healthy; Ok(()) }
    /// ```
    pub async fn request_many<R: Request>(
        &self,
        request: &R,
        max: usize,
        stall: Duration,
    ) -> Result<Vec<Result<R::Response, RpcError>>, RpcError> {
        checked(request)?;
        let call = EncodedCall {
            subject: R::SUBJECT,
            content_type: self.codec.content_type(),
            correlation_id: None,
            traceparent: None,
            idempotency_key: None,
            headers: Vec::new(),
            timeout: self.timeout,
            payload: self.codec.encode(request).map_err(RpcError::Encode)?.into(),
        };
        let replies = self.transport.request_many(&call, max.max(1), stall).await?;
        Ok(replies
            .iter()
            .map(|reply| {
                let codec =
                    reply.content_type.as_deref().and_then(Codec::from_content_type).unwrap_or(self.codec);
                envelope::decode_reply(codec, &reply.payload)
            })
            .collect())
    }

    /// Calls the endpoint `R` names, with per-call settings.
    pub async fn call_with<R: Request>(
        &self,
        request: &R,
        options: CallOptions,
    ) -> Result<R::Response, RpcError> {
        if !options.unchecked {
            checked(request)?;
            // The key is checked as the service checks it, before anything is sent.
            if let Some(problem) = options.idempotency_key.as_deref().and_then(crate::server::key_problem) {
                return Err(problem.into());
            }
        }
        if let Some(problem) = options.headers.iter().find_map(|(name, value)| header_problem(name, value)) {
            return Err(RpcError::config(problem));
        }
        if options.idempotency_key.is_some() && !self.transport.carries_idempotency_keys() {
            return Err(RpcError::config(
                "an Idempotency-Key is kept by services on NATS only; this client's transport does not carry it",
            ));
        }
        let codec = options.codec.unwrap_or(self.codec);
        let keyed = options.idempotency_key.is_some();
        let retry = options.retry.or(self.retry.filter(|_| R::IDEMPOTENT || keyed));
        let attempts = retry.map_or(1, |policy| policy.max_attempts);
        // A correlation id goes along when there is one to carry (the caller's, or that of the
        // request being handled) or several attempts to tie together; otherwise the service makes
        // one up when it needs one (an error reply, a log line). Each header costs the receiving
        // side more than the rest of a small request (async-nats parses it into a map).
        let correlation_id =
            options.correlation_id.or_else(|| (attempts > 1).then(|| nuid::next().to_string()));
        let call = EncodedCall {
            subject: R::SUBJECT,
            content_type: codec.content_type(),
            correlation_id,
            traceparent: options.trace.map(|parent| parent.traceparent()),
            idempotency_key: options.idempotency_key,
            headers: options.headers,
            timeout: options.timeout.unwrap_or(self.timeout),
            payload: codec.encode(request).map_err(RpcError::Encode)?.into(),
        };
        let mut attempt = 1;
        loop {
            let answer = match self.transport.request(&call).await {
                Ok(reply) => {
                    let codec =
                        reply.content_type.as_deref().and_then(Codec::from_content_type).unwrap_or(codec);
                    envelope::decode_reply(codec, &reply.payload)
                }
                Err(error) => Err(error),
            };
            match answer {
                // The error says whether asking again can help (`RpcError::is_retryable`).
                Err(error) if error.is_retryable() && attempt < attempts => {
                    let wait = retry.map_or(Duration::ZERO, |policy| policy.backoff(attempt - 1));
                    tracing::debug!(%error, attempt, ?wait, correlation_id = call.correlation_id.as_deref(), "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                answer => return answer,
            }
        }
    }
}

/// `request` checked by the service's own rules, here: an invalid request costs no round trip
/// and no handler's queue slot, and its error is the one the service would answer.
fn checked<R: Request>(request: &R) -> Result<(), RpcError> {
    request
        .validate()
        .map_err(|errors| ServiceError::validation(crate::validation::violations(&errors)).into())
}
