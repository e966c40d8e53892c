//! What carries a call: NATS request/reply by default, or any other request/reply transport.
//!
//! The typed [`Client`](super::Client) encodes the request, sets the headers, retries and decodes
//! the envelope; a [`Transport`] only moves bytes to the endpoint's subject and the reply back.
//! That split is what lets one service's domain code call another service over NATS on one stack
//! and over HTTP or AMQP on another, with the same types, deadlines and errors.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::client::RequestErrorKind;
use bytes::Bytes;

use crate::codec::Codec;
use crate::error::RpcError;
use crate::headers;

/// One encoded request, ready to go. Made with [`EncodedCall::new`] outside this crate, so that
/// what a call carries can grow without breaking transports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EncodedCall {
    /// `{service}.{endpoint}`.
    pub subject: &'static str,
    /// The body's `Content-Type`.
    pub content_type: &'static str,
    /// `X-Correlation-Id`, when the call has one.
    pub correlation_id: Option<String>,
    /// The W3C `traceparent` of the caller's span, when the call is part of a trace.
    pub traceparent: Option<String>,
    /// `Idempotency-Key`, when the call has one: every attempt sends the same.
    pub idempotency_key: Option<String>,
    /// Headers of the caller's own ([`CallOptions::header`](super::CallOptions::header)), such as
    /// `Authorization`; over NATS, a name that is not a token is left out, and a value escaped.
    pub headers: Vec<(String, String)>,
    /// How long the caller waits; sent as `X-Deadline-Ms` so the callee gives up when the caller does.
    pub timeout: Duration,
    /// The encoded request.
    pub payload: Bytes,
}

impl EncodedCall {
    /// A call of `payload`, in `content_type`, to `subject`, waiting `timeout`: no correlation id
    /// and no trace.
    pub fn new(subject: &'static str, content_type: &'static str, timeout: Duration, payload: Bytes) -> Self {
        Self {
            subject,
            content_type,
            correlation_id: None,
            traceparent: None,
            idempotency_key: None,
            headers: Vec::new(),
            timeout,
            payload,
        }
    }
}

/// A reply as it arrived: its status, the envelope and its `Content-Type`, when it had one.
#[derive(Debug, Clone)]
pub struct EncodedReply {
    /// The status the transport carried beside the envelope: 200, or the error's (NATS's
    /// `Nats-Service-Error-Code`, the HTTP status). The envelope says it too; a caller that
    /// counts answers by status (a load generator) need not decode it to know.
    pub status: u16,
    /// The reply's `Content-Type`.
    pub content_type: Option<String>,
    /// The envelope.
    pub payload: Bytes,
}

/// The future a [`Transport`] answers with.
pub type PendingReply<'a> = Pin<Box<dyn Future<Output = Result<EncodedReply, RpcError>> + Send + 'a>>;

/// The future of a scatter-gather ([`Transport::request_many`]): every reply gathered.
pub type PendingReplies<'a> = Pin<Box<dyn Future<Output = Result<Vec<EncodedReply>, RpcError>> + Send + 'a>>;

/// Moves a request to its endpoint and the reply back.
///
/// Errors: [`RpcError::NoResponders`] when nothing serves the subject (retryable),
/// [`RpcError::Timeout`] when no reply came within `timeout` (retryable), anything else as
/// [`RpcError::Transport`] or [`RpcError::PayloadTooLarge`]. An error reply is a reply.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request` and waits for its reply. The request is lent, not given: a retry sends the
    /// same one again without a copy.
    fn request<'a>(&'a self, request: &'a EncodedCall) -> PendingReply<'a>;

    /// Whether the request's `Idempotency-Key` reaches a service that keeps replies by it. Only
    /// NATS does: a keyed call over another transport is refused rather than sent and retried
    /// as if it were safe.
    fn carries_idempotency_keys(&self) -> bool {
        false
    }

    /// Sends `request` once and gathers the replies of everything that answers it, until `max`
    /// have come, or none has for `stall`, or the request's timeout is over: scatter-gather, for
    /// a subject several responders answer (each outside a queue group). A transport that carries
    /// one reply per request answers with that one, as this default does.
    fn request_many<'a>(
        &'a self,
        request: &'a EncodedCall,
        max: usize,
        stall: Duration,
    ) -> PendingReplies<'a> {
        let _ = (max, stall);
        Box::pin(async move { Ok(vec![self.request(request).await?]) })
    }
}

/// A shared transport is a transport: one connection (or pool) for a typed [`Client`](super::Client)
/// and for code that sends bytes of its own.
impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    fn request<'a>(&'a self, request: &'a EncodedCall) -> PendingReply<'a> {
        (**self).request(request)
    }

    fn carries_idempotency_keys(&self) -> bool {
        (**self).carries_idempotency_keys()
    }

    fn request_many<'a>(
        &'a self,
        request: &'a EncodedCall,
        max: usize,
        stall: Duration,
    ) -> PendingReplies<'a> {
        (**self).request_many(request, max, stall)
    }
}

/// NATS request/reply: the framework's own transport.
#[derive(Debug, Clone)]
pub struct NatsTransport(pub async_nats::Client);

/// The headers of `request` on NATS.
fn nats_headers(request: &EncodedCall) -> HeaderMap {
    let mut headers = HeaderMap::new();
    // The body tells its codec as well as the header would (see `Codec::detect`): the header goes
    // only where it would not, such as MessagePack, saving the callee its parsing.
    if Codec::from_content_type(request.content_type) != Some(Codec::sniff(&request.payload)) {
        headers.insert(headers::names::CONTENT_TYPE, request.content_type);
    }
    if let Some(correlation_id) = &request.correlation_id {
        headers::insert(&mut headers, headers::names::CORRELATION_ID, correlation_id);
    }
    headers.insert(headers::names::DEADLINE, itoa::Buffer::new().format(request.timeout.as_millis()));
    if let Some(traceparent) = &request.traceparent {
        headers::insert(&mut headers, headers::names::TRACEPARENT, traceparent);
    }
    if let Some(key) = &request.idempotency_key {
        headers::insert(&mut headers, headers::names::IDEMPOTENCY_KEY, key);
    }
    for (name, value) in &request.headers {
        // Names were checked when the call was made; one made elsewhere that is not a token is
        // left out rather than sent broken.
        if let Ok(name) = name.parse::<async_nats::HeaderName>() {
            headers.insert(name, crate::escape::escape(value, super::MAX_HEADER_VALUE).as_ref());
        }
    }
    headers
}

/// A NATS reply as the client reads it.
fn encoded(reply: async_nats::Message) -> EncodedReply {
    let content_type = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::names::CONTENT_TYPE))
        .map(|v| v.as_str().to_string());
    let status = headers::reply_status(reply.headers.as_ref());
    EncodedReply { status, content_type, payload: reply.payload }
}

impl Transport for NatsTransport {
    fn carries_idempotency_keys(&self) -> bool {
        true
    }

    fn request_many<'a>(
        &'a self,
        request: &'a EncodedCall,
        max: usize,
        stall: Duration,
    ) -> PendingReplies<'a> {
        Box::pin(async move {
            let asked = (request.subject, nats_headers(request), request.payload.clone());
            let gathered = gather(&self.0, asked, request.timeout, max, stall).await?;
            Ok(gathered.into_iter().map(encoded).collect())
        })
    }

    fn request<'a>(&'a self, request: &'a EncodedCall) -> PendingReply<'a> {
        Box::pin(async move {
            let headers = nats_headers(request);
            let subject = request.subject;
            let sent = async_nats::Request::new()
                .headers(headers)
                .payload(request.payload.clone())
                .timeout(Some(request.timeout));
            let reply = self.0.send_request(subject, sent).await.map_err(|error| match error.kind() {
                RequestErrorKind::NoResponders => RpcError::NoResponders { subject: subject.to_string() },
                RequestErrorKind::TimedOut => {
                    denied(&self.0, subject, request.timeout).unwrap_or_else(|| RpcError::Timeout {
                        subject: subject.to_string(),
                        after: request.timeout,
                    })
                }
                RequestErrorKind::MaxPayloadExceeded => RpcError::PayloadTooLarge(error.to_string()),
                _ => RpcError::transport(error),
            })?;
            Ok(encoded(reply))
        })
    }
}

/// Sends a request (subject, headers, body) once and gathers the replies of everything that
/// answers it, until `max` have come, or none has for `stall`, or `timeout` is over.
pub(crate) async fn gather(
    client: &async_nats::Client,
    (subject, headers, payload): (&str, HeaderMap, Bytes),
    timeout: Duration,
    max: usize,
    stall: Duration,
) -> Result<Vec<async_nats::Message>, RpcError> {
    use futures::StreamExt;
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.map_err(RpcError::transport)?;
    client.publish_with_reply_and_headers(subject.to_string(), inbox, headers, payload).await.map_err(
        |error| match error.kind() {
            async_nats::client::PublishErrorKind::MaxPayloadExceeded => {
                RpcError::PayloadTooLarge(error.to_string())
            }
            _ => RpcError::transport(error),
        },
    )?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut gathered = Vec::new();
    while gathered.len() < max {
        // Until the deadline, and no longer than `stall` after the last reply (or the send).
        let until = deadline.min(tokio::time::Instant::now() + stall);
        match tokio::time::timeout_at(until, replies.next()).await {
            // NATS's own "no responders" status on the inbox: nothing answers at all.
            Ok(Some(reply)) if reply.status == Some(async_nats::StatusCode::NO_RESPONDERS) => break,
            Ok(Some(reply)) => gathered.push(reply),
            _ => break,
        }
    }
    Ok(gathered)
}

/// Why a call found no reply, when the server said it was not allowed: the request's subject
/// refused for publishing during the call, or the client's reply inbox refused for subscribing on
/// this connection (async-nats subscribes it once per connection, so the refusal stands until a
/// reconnect). The server drops such a request and says so only on the connection; natsrpc reads
/// it there once the wait is over, so that a call that succeeds pays nothing for the check.
fn denied(client: &async_nats::Client, subject: &str, waited: std::time::Duration) -> Option<RpcError> {
    let inbox = client.new_inbox();
    let inbox_prefix = inbox.rsplit_once('.').map_or(inbox.as_str(), |(prefix, _)| prefix);
    let inbox_prefix = format!("{inbox_prefix}.");
    let window = waited + std::time::Duration::from_secs(1);
    let denials: Vec<_> = crate::connection::denials::of(client)?
        .since(0)
        .into_iter()
        .filter(|d| match d.action {
            crate::DeniedAction::Publish => d.subject == subject && d.at.elapsed() <= window,
            crate::DeniedAction::Subscribe => {
                d.subject.starts_with(&inbox_prefix)
                    && !d.subject.ends_with(crate::connection::denials::PROBE)
            }
        })
        .collect();
    (!denials.is_empty()).then_some(RpcError::PermissionDenied(denials))
}
