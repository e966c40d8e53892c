//! A request's head: what the pipeline needs to know besides the body, read once from the
//! transport's own framing at its edge (NATS headers, HTTP headers, AMQP properties). Past the edge
//! the pipeline looks at no transport's headers (a handler may still ask for a NATS header by
//! name), and a reply goes back as a [`Dispatched`] that each edge frames its own way.
//!
//! [`Dispatched`]: super::Dispatched

use std::time::Duration;

use async_nats::{HeaderMap, Subject};

use crate::codec::Codec;
use crate::error::ServiceError;
use crate::headers;

/// The subject, codec, correlation id and deadline of one request.
///
/// ```
/// use std::time::Duration;
/// let head = natsrpc::RequestHead::new("shop.create_order")
///     .with_content_type("application/msgpack; charset=binary")
///     .with_correlation_id("order-42")
///     .with_deadline_ms("1500");
/// assert_eq!(head.subject(), "shop.create_order");
/// assert_eq!(head.codec(b"\x81"), Ok(natsrpc::Codec::MsgPack));
/// assert_eq!(head.correlation_id(), Some("order-42"));
/// assert_eq!(head.budget(), Some(Duration::from_millis(1500)));
/// ```
#[derive(Debug, Clone)]
pub struct RequestHead {
    subject: Subject,
    declared: Declared,
    /// The caller's id as another transport gave it; over NATS it stays in `headers`, read when
    /// asked for (most requests never need it, and copying it cost an allocation each).
    correlation_id: Option<String>,
    /// The caller's `traceparent` as another transport gave it; over NATS it stays in `headers`.
    traceparent: Option<String>,
    /// The time the caller waits, from its arrival.
    budget: Option<Duration>,
    /// The NATS headers the request came with, for handlers that read headers of their own
    /// ([`RequestContext::header`](crate::RequestContext::header)); `None` on other transports.
    headers: Option<HeaderMap>,
}

/// What the request's `Content-Type` said.
#[derive(Debug, Clone)]
enum Declared {
    /// Nothing: the codec is told from the body.
    Nothing,
    Codec(Codec),
    /// A type natsrpc does not speak, kept to say which in the 415.
    Unsupported(Box<str>),
}

impl RequestHead {
    /// A request for `subject` (`{service}.{endpoint}`): its codec told from its body, no
    /// correlation id and no deadline of the caller's.
    pub fn new(subject: &str) -> Self {
        Self::on(Subject::from(subject))
    }

    fn on(subject: Subject) -> Self {
        Self {
            subject,
            declared: Declared::Nothing,
            correlation_id: None,
            traceparent: None,
            budget: None,
            headers: None,
        }
    }

    /// The request's `Content-Type` (parameters such as `; charset=utf-8` ignored). A type other
    /// than JSON or MessagePack is answered 415.
    pub fn with_content_type(mut self, value: &str) -> Self {
        self.declared = match Codec::from_content_type(value) {
            Some(codec) => Declared::Codec(codec),
            None => Declared::Unsupported(value.into()),
        };
        self
    }

    /// The caller's `X-Correlation-Id`, as sent: it is escaped where it is written (see
    /// [`RequestContext::correlation_id`](crate::RequestContext::correlation_id)). An empty one
    /// counts as none.
    pub fn with_correlation_id(mut self, id: &str) -> Self {
        self.correlation_id = (!id.is_empty()).then(|| id.to_string());
        self
    }

    /// The caller's W3C `traceparent`, as sent: read strictly when asked for (see
    /// [`crate::trace::TraceContext::parse`]); one that does not read starts a trace of its own.
    pub fn with_traceparent(mut self, value: &str) -> Self {
        self.traceparent = (!value.is_empty()).then(|| value.to_string());
        self
    }

    /// How long the caller waits, from the request's arrival: the handler is given up on then,
    /// if that is sooner than the endpoint's own timeout.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The caller's `X-Deadline-Ms` as sent, as its budget: a value that is not a whole number of
    /// milliseconds (negative, garbage) is ignored, as if the caller had not said.
    pub fn with_deadline_ms(mut self, millis: &str) -> Self {
        if let Ok(millis) = millis.trim().parse::<u64>() {
            self.budget = Some(Duration::from_millis(millis));
        }
        self
    }

    /// The head of a NATS request: its subject and headers.
    pub(crate) fn from_nats(subject: Subject, headers: Option<HeaderMap>) -> Self {
        let mut head = Self::on(subject);
        let Some(map) = headers else { return head };
        if let Some(value) = map.get(headers::names::CONTENT_TYPE) {
            head = head.with_content_type(value.as_str());
        }
        if let Some(value) = map.get(headers::names::DEADLINE) {
            head = head.with_deadline_ms(value.as_str());
        }
        head.headers = Some(map);
        head
    }

    /// The subject the request is for.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The `Content-Type` the request declared: for a codec natsrpc speaks, the codec's own name
    /// for it (parameters dropped); any other as the caller sent it (to forward, not to show: it
    /// is the caller's text).
    pub fn content_type(&self) -> Option<&str> {
        match &self.declared {
            Declared::Nothing => None,
            Declared::Codec(codec) => Some(codec.content_type()),
            Declared::Unsupported(value) => Some(value),
        }
    }

    /// The codec of the request with this `body`: the declared one, or the body's when none was
    /// declared (see [`Codec::detect`]); 415 for a declared type natsrpc does not speak.
    pub fn codec(&self, body: &[u8]) -> Result<Codec, ServiceError> {
        match &self.declared {
            Declared::Nothing => Ok(Codec::sniff(body)),
            Declared::Codec(codec) => Ok(*codec),
            Declared::Unsupported(value) => Codec::detect(Some(value), body),
        }
    }

    /// The caller's correlation id, as sent (an empty one is none).
    pub fn correlation_id(&self) -> Option<&str> {
        match &self.correlation_id {
            Some(id) => Some(id),
            None => {
                let sent = self.headers.as_ref()?.get(headers::names::CORRELATION_ID)?.as_str();
                (!sent.is_empty()).then_some(sent)
            }
        }
    }

    /// The caller's `traceparent`, as sent.
    pub fn traceparent(&self) -> Option<&str> {
        match &self.traceparent {
            Some(value) => Some(value),
            None => Some(self.headers.as_ref()?.get(headers::names::TRACEPARENT)?.as_str()),
        }
    }

    /// How long the caller said it waits, from the request's arrival.
    pub fn budget(&self) -> Option<Duration> {
        self.budget
    }

    /// The NATS headers the request came with (`None` over other transports).
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.headers.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nats_head_is_read_once_from_its_headers() {
        let mut map = HeaderMap::new();
        map.insert(headers::CONTENT_TYPE, "application/x-msgpack");
        map.insert(headers::CORRELATION_ID, "abc");
        map.insert(headers::DEADLINE, " 250 ");
        map.insert("X-Tenant", "blue");
        let head = RequestHead::from_nats(Subject::from("shop.ping"), Some(map));
        assert_eq!(head.codec(b"{}"), Ok(Codec::MsgPack));
        assert_eq!(head.content_type(), Some("application/msgpack"));
        assert_eq!(head.correlation_id(), Some("abc"));
        assert_eq!(head.budget(), Some(Duration::from_millis(250)));
        assert_eq!(head.headers().and_then(|h| h.get("X-Tenant")).map(|v| v.as_str()), Some("blue"));
    }

    #[test]
    fn what_a_head_cannot_use_is_ignored_or_refused_by_name() {
        let head = RequestHead::new("shop.ping")
            .with_deadline_ms("-5")
            .with_deadline_ms("soon")
            .with_correlation_id("");
        assert_eq!((head.budget(), head.correlation_id()), (None, None));
        let mut empty = HeaderMap::new();
        empty.insert(headers::CORRELATION_ID, "");
        assert_eq!(RequestHead::from_nats(Subject::from("shop.ping"), Some(empty)).correlation_id(), None);
        assert_eq!(head.codec(b" [1]"), Ok(Codec::Json));
        assert_eq!(head.codec(b"\x91\x01"), Ok(Codec::MsgPack));
        let error =
            RequestHead::new("shop.ping").with_content_type("text/plain\r\n").codec(b"{}").unwrap_err();
        assert_eq!(error.status, 415);
        assert!(!error.message.contains('\r'), "{}", error.message);
    }
}
