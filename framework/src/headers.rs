//! Header names natsrpc reads and writes.
//!
//! `Nats-Service-Error` and `Nats-Service-Error-Code` are the NATS Services API's own (ADR-32): generic
//! NATS tooling reads them without knowing natsrpc's envelope.

use async_nats::header::IntoHeaderName;

/// The codec of a request body, and of its reply: `application/json` or `application/msgpack`.
pub const CONTENT_TYPE: &str = "Content-Type";

/// The id that ties together the logs and traces of one logical request across services.
pub const CORRELATION_ID: &str = "X-Correlation-Id";

/// The caller's remaining patience, in whole milliseconds, when it sent the request: the service
/// gives up on the request by then (answering 504), however long its own deadline. The typed client
/// sends it with every call, so a deadline carries through a chain of calls.
pub const DEADLINE: &str = "X-Deadline-Ms";

/// W3C Trace Context: the caller's span, `00-{trace id}-{span id}-{flags}` (see [`crate::trace`]).
pub const TRACEPARENT: &str = "traceparent";

/// A request's idempotency key: a retry with the same key gets the first reply, on endpoints that
/// keep replies (see [`EndpointOptions::idempotent_replies`](crate::EndpointOptions::idempotent_replies)).
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// Set on a reply sent again for a request whose `Idempotency-Key` had been answered.
pub const REPLAYED: &str = "Natsrpc-Replayed";

/// Set on every error reply: the error's message.
pub const SERVICE_ERROR: &str = "Nats-Service-Error";

/// Set on every error reply: the error's status code, such as `400`.
pub const SERVICE_ERROR_CODE: &str = "Nats-Service-Error-Code";

/// The status a reply stands for: its `Nats-Service-Error-Code`, or 200 when it has none (a
/// success reply carries no headers).
pub fn reply_status(headers: Option<&async_nats::HeaderMap>) -> u16 {
    headers
        .and_then(|h| h.get(names::SERVICE_ERROR_CODE))
        .and_then(|v| v.as_str().parse().ok())
        .unwrap_or(200)
}

/// Sets header `name` to `value` made header-safe by [`crate::escape::header_value`] (control
/// characters escaped, length bounded): the one way natsrpc writes a header whose value it did not
/// choose itself. async-nats panics on a CR or LF in a header value; this never does.
pub fn insert(headers: &mut async_nats::HeaderMap, name: impl IntoHeaderName, value: &str) {
    headers.insert(name, crate::escape::header_value(value).as_ref());
}

/// The names above, made once: a `&str` name is checked, and one outside the standard set copied,
/// on every insert, and the typed client inserts three per call.
pub(crate) mod names {
    use async_nats::HeaderName;

    pub(crate) const CONTENT_TYPE: HeaderName = HeaderName::from_static(super::CONTENT_TYPE);
    pub(crate) const CORRELATION_ID: HeaderName = HeaderName::from_static(super::CORRELATION_ID);
    pub(crate) const DEADLINE: HeaderName = HeaderName::from_static(super::DEADLINE);
    pub(crate) const TRACEPARENT: HeaderName = HeaderName::from_static(super::TRACEPARENT);
    pub(crate) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static(super::IDEMPOTENCY_KEY);
    pub(crate) const SERVICE_ERROR: HeaderName = HeaderName::from_static(super::SERVICE_ERROR);
    pub(crate) const SERVICE_ERROR_CODE: HeaderName = HeaderName::from_static(super::SERVICE_ERROR_CODE);
}

/// The bytes a header block takes on the wire (`NATS/1.0`, one line per value, the blank line):
/// what counts against the server's `max_payload` besides the body.
pub fn wire_len(headers: &async_nats::HeaderMap) -> usize {
    let mut len = b"NATS/1.0\r\n".len() + b"\r\n".len();
    for (name, values) in headers.iter() {
        for value in values {
            len += AsRef::<str>::as_ref(name).len() + b": ".len() + value.as_str().len() + b"\r\n".len();
        }
    }
    len
}
