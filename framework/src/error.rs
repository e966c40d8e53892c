//! Errors: [`ServiceError`] is what a service answers on the wire; [`RpcError`] is this crate's error,
//! what a caller (or a service being set up) gets back.
//!
//! Handlers return `Result<Response, E>` with any `E: Into<ServiceError>`, so a service's own error
//! enum maps itself to the wire in one `From` impl, as axum's `IntoResponse` does.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::codec::DecodeError;
use crate::validation::Violation;

/// The kind of a failure: what went wrong, independent of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request broke one or more validation rules (400). See [`ServiceError::violations`].
    Validation,
    /// The body could not be decoded (400). See [`ServiceError::path`].
    MalformedPayload,
    /// The `Content-Type` names a codec the service does not speak (415).
    UnsupportedContentType,
    /// The body is larger than the service accepts (413).
    PayloadTooLarge,
    /// No endpoint of that name in the service (404).
    UnknownEndpoint,
    /// A business rule refused the request (409, 422, 404...), with the handler's own code.
    Business,
    /// The endpoint had as many requests in flight as it allows (503); retry later.
    Overloaded,
    /// The handler did not finish within the endpoint's deadline (504).
    Timeout,
    /// Something failed inside the service (500). Details are in the service's log, not the reply.
    Internal,
    /// No instance of the service could take the request (503): none is running, or a gateway in
    /// front of the services cannot reach them. Retry later.
    Unavailable,
    /// The request did not say who sends it, or said it in a way that does not check out (401):
    /// what an authentication layer answers.
    Unauthorized,
    /// The caller is known but may not do this (403).
    Forbidden,
    /// The caller sent more requests than its rate allows (429); retry later.
    RateLimited,
    /// A kind this version does not know: a newer service's. Its status and code still say what
    /// happened; it is not retried.
    #[serde(other)]
    Other,
}

impl ErrorKind {
    /// Whether a request answered with this kind may be sent again and succeed, when it is safe to
    /// repeat (idempotent): the service did not take it on (`overloaded`, `unavailable`: 503;
    /// `rate_limited`: 429) or did not finish it in time (`timeout`: 504). Every other kind is the request's own answer,
    /// which asking again would only repeat (a broken rule, a business refusal), or a failure
    /// inside the service (`internal`) that a retry would load further.
    ///
    /// ```
    /// use natsrpc::ErrorKind;
    /// assert!(ErrorKind::Overloaded.is_retryable());
    /// assert!(!ErrorKind::Business.is_retryable());
    /// ```
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Overloaded | ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::RateLimited
        )
    }

    /// Its name in the envelope, such as `malformed_payload`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Validation => "validation",
            ErrorKind::MalformedPayload => "malformed_payload",
            ErrorKind::UnsupportedContentType => "unsupported_content_type",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::UnknownEndpoint => "unknown_endpoint",
            ErrorKind::Business => "business",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Internal => "internal",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Other => "other",
        }
    }

    /// The machine code used when the error does not carry one of its own.
    pub const fn default_code(self) -> &'static str {
        match self {
            ErrorKind::Validation => "validation_failed",
            ErrorKind::MalformedPayload => "malformed_payload",
            ErrorKind::UnsupportedContentType => "unsupported_content_type",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::UnknownEndpoint => "unknown_endpoint",
            ErrorKind::Business => "business_rule",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Internal => "internal",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Other => "other",
        }
    }
}

/// A failure as the service answers it: the `error` member of the reply envelope.
///
/// In JSON:
///
/// ```json
/// {"status": 400, "kind": "validation", "code": "validation_failed",
///  "message": "2 validation errors",
///  "violations": [{"path": "items[2].quantity", "code": "range",
///                  "message": "value must be between 1 and 100", "params": {"min": 1, "max": 100}}]}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ServiceError {
    /// HTTP-style status: 400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 502, 503, 504.
    pub status: u16,
    /// What kind of failure.
    pub kind: ErrorKind,
    /// A machine code: the kind's default, or a business rule's own (`out_of_stock`).
    pub code: String,
    /// A sentence for people.
    pub message: String,
    /// Every broken validation rule, for [`ErrorKind::Validation`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
    /// The input field the error is about, such as where decoding failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl ServiceError {
    /// An error of `kind` with that kind's default code.
    pub fn new(status: u16, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            code: kind.default_code().to_string(),
            message: message.into(),
            violations: Vec::new(),
            path: None,
        }
    }

    /// A business rule refused the request: `status` is usually 409 (conflict with current state),
    /// 422 (well-formed but unacceptable) or 404 (no such thing).
    pub fn business(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), ..Self::new(status, ErrorKind::Business, message) }
    }

    /// 409: the request conflicts with the current state (`out_of_stock`, `already_cancelled`).
    pub fn conflict(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::business(409, code, message)
    }

    /// 422: the request is valid in form but not acceptable (`payment_declined`).
    pub fn unprocessable(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::business(422, code, message)
    }

    /// 404 for a thing the request names (`order_not_found`); not for unknown endpoints.
    pub fn not_found(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::business(404, code, message)
    }

    /// 500. The message reaches the caller: keep internals out of it and log them instead.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, ErrorKind::Internal, message)
    }

    /// 400 with every violation.
    pub fn validation(violations: Vec<Violation>) -> Self {
        let message = match violations.as_slice() {
            [one] if one.path.is_empty() => one.message.clone(),
            [one] => format!("{}: {}", one.path, one.message),
            many => format!("{} validation errors", many.len()),
        };
        Self { violations, ..Self::new(400, ErrorKind::Validation, message) }
    }

    /// 503: too many requests in flight.
    pub fn overloaded(limit: usize) -> Self {
        Self::new(503, ErrorKind::Overloaded, format!("overloaded: {limit} requests already in flight"))
    }

    /// 503: no instance of the service to take the request.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, ErrorKind::Unavailable, message)
    }

    /// 401: who sends the request is unknown (no credentials, or ones that do not check out). Say
    /// nothing in `message` that helps a guesser (which part failed).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, ErrorKind::Unauthorized, message)
    }

    /// 403: the caller may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, ErrorKind::Forbidden, message)
    }

    /// 429: the caller's rate is used up; it may try again after `retry_after`.
    pub fn rate_limited(retry_after: Duration) -> Self {
        let millis = retry_after.as_millis().max(1);
        Self::new(429, ErrorKind::RateLimited, format!("too many requests; retry in {millis} ms"))
    }

    /// 504: the handler ran out of time.
    pub fn timeout(after: Duration) -> Self {
        Self::new(504, ErrorKind::Timeout, format!("handler did not finish within {after:?}"))
    }

    /// 404: no such endpoint.
    pub fn unknown_endpoint(subject: &str) -> Self {
        Self::new(404, ErrorKind::UnknownEndpoint, format!("no endpoint serves subject `{subject}`"))
    }

    /// 413: body over the limit.
    pub fn payload_too_large(size: usize, limit: usize) -> Self {
        Self::new(
            413,
            ErrorKind::PayloadTooLarge,
            format!("payload of {size} bytes exceeds the limit of {limit} bytes"),
        )
    }

    /// 415: unknown `Content-Type`.
    pub fn unsupported_content_type(message: impl Into<String>) -> Self {
        Self::new(415, ErrorKind::UnsupportedContentType, message)
    }

    /// Attaches the input field the error is about.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
}

impl From<DecodeError> for ServiceError {
    fn from(error: DecodeError) -> Self {
        Self { path: error.path.clone(), ..Self::new(400, ErrorKind::MalformedPayload, error.to_string()) }
    }
}

impl From<std::convert::Infallible> for ServiceError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

/// This crate's error: what a call, or setting up a service, can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Nobody listens on the subject: the service is not running (or not yet).
    #[error("no responders on `{subject}`")]
    NoResponders {
        /// The subject called.
        subject: String,
    },
    /// No reply came within the call's timeout.
    #[error("no reply on `{subject}` within {after:?}")]
    Timeout {
        /// The subject called.
        subject: String,
        /// The timeout that ran out.
        after: Duration,
    },
    /// The service refused the request as invalid: every violation, with its path.
    #[error("invalid request: {message}")]
    Validation {
        /// The service's summary.
        message: String,
        /// Every broken rule.
        violations: Vec<Violation>,
    },
    /// The service answered with any other error.
    #[error("service error {}", .0)]
    Remote(ServiceError),
    /// The encoded request is larger than the NATS server's `max_payload`; nothing was sent.
    #[error("request too large: {0}")]
    PayloadTooLarge(String),
    /// The request could not be encoded.
    #[error("could not encode the request: {0}")]
    Encode(#[source] crate::codec::EncodeError),
    /// The reply could not be decoded as the contract says.
    #[error("could not decode the reply: {0}")]
    Decode(#[source] crate::codec::DecodeError),
    /// Connecting, subscribing or publishing failed: the transport's error is the source.
    #[error("transport: {0}")]
    Transport(#[source] BoxError),
    /// The client's own layers refused the call before it was sent: a circuit breaker open after
    /// the endpoint kept failing, or a bulkhead full (see [`crate::client::layers`]).
    #[error("not sent to `{subject}`: {why}")]
    Rejected {
        /// The subject called.
        subject: String,
        /// Which layer refused, and until when.
        why: String,
    },
    /// The NATS server refused this connection the right to publish or subscribe (the user's
    /// `permissions` in the server's configuration): a call's subject or its reply inbox, a
    /// service's subjects at start, a listener's JetStream API. See [`crate::permission_denials`].
    #[error("permission denied by the NATS server: {}", denied(.0))]
    PermissionDenied(Vec<crate::Denial>),
    /// A service or a connection was set up wrongly (a bad name, an endpoint registered twice, a
    /// file that cannot be read): what was wrong, and the error behind it when there was one.
    #[error("configuration: {0}")]
    Config(#[source] BoxError),
}

/// Another crate's error, kept as the source of one of ours.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error told in words of its own (which say more than its source's, such as which setting
/// is missing), its source kept behind.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
struct Explained {
    what: String,
    #[source]
    source: BoxError,
}

/// `subscribe to `a`, publish to `b``, each subject escaped (a reply inbox is the caller's choice).
fn denied(denials: &[crate::Denial]) -> String {
    let each = denials.iter().map(|d| format!("{} `{}`", d.action, crate::escape::escape(&d.subject, 256)));
    each.collect::<Vec<_>>().join(", ")
}

impl RpcError {
    /// Whether the call may be made again and succeed, when it is safe to repeat: no responders
    /// (the service is starting or restarting), no reply in time, or a service's answer whose kind
    /// [is retryable](ErrorKind::is_retryable) (503 `overloaded` and `unavailable`, 429
    /// `rate_limited`, 504
    /// `timeout`). What a [`RetryPolicy`](crate::RetryPolicy) retries.
    pub fn is_retryable(&self) -> bool {
        match self {
            RpcError::NoResponders { .. } | RpcError::Timeout { .. } => true,
            RpcError::Remote(error) => error.kind.is_retryable(),
            _ => false,
        }
    }

    /// The service-side error, for [`RpcError::Validation`] and [`RpcError::Remote`].
    pub fn status(&self) -> Option<u16> {
        match self {
            RpcError::Validation { .. } => Some(400),
            RpcError::Remote(error) => Some(error.status),
            _ => None,
        }
    }

    /// The machine code of a service-side error (`validation_failed`, `out_of_stock`...).
    pub fn code(&self) -> Option<&str> {
        match self {
            RpcError::Validation { .. } => Some(ErrorKind::Validation.default_code()),
            RpcError::Remote(error) => Some(&error.code),
            _ => None,
        }
    }

    /// What a handler answers when `part`, a call it made to another service, failed: the part is
    /// named (as the error's `path` and in its message) so the caller knows which dependency let it
    /// down. No reply in time: 504 `part_late`; nobody serves it: 503 `part_unavailable`; any
    /// other failure: 502 `part_failed`, with the part's own code and message.
    pub fn part_failed(&self, part: &str) -> ServiceError {
        let late = |message: String| (504, ErrorKind::Timeout, "part_late", message);
        let (status, kind, code, message) = match self {
            RpcError::Timeout { after, .. } => {
                late(format!("{part} did not answer within {} ms", after.as_millis()))
            }
            // The callee gives up at the same deadline, so a late part may answer its own 504 a
            // moment before the caller's wait runs out: late either way.
            RpcError::Remote(error) if error.kind == ErrorKind::Timeout => {
                late(format!("{part} did not answer in time: {}", error.message))
            }
            RpcError::NoResponders { .. } => {
                (503, ErrorKind::Unavailable, "part_unavailable", format!("no service answers {part}"))
            }
            RpcError::Validation { message, .. } => (
                502,
                ErrorKind::Business,
                "part_failed",
                format!("{part} failed: validation_failed: {message}"),
            ),
            RpcError::Remote(error) => (
                502,
                ErrorKind::Business,
                "part_failed",
                format!("{part} failed: {}: {}", error.code, error.message),
            ),
            // The service's own permissions are its operators' business, not its caller's: the
            // subjects stay in its log.
            RpcError::PermissionDenied(_) => {
                (502, ErrorKind::Business, "part_failed", format!("{part} failed: not permitted"))
            }
            other => (502, ErrorKind::Business, "part_failed", format!("{part} failed: {other}")),
        };
        ServiceError {
            code: code.to_string(),
            path: Some(part.to_string()),
            ..ServiceError::new(status, kind, message)
        }
    }

    /// A transport failure, `error` its source.
    pub fn transport(error: impl Into<BoxError>) -> Self {
        RpcError::Transport(error.into())
    }

    /// A transport failure told in `what`, `error` its source.
    pub fn transport_explained(what: impl Into<String>, error: impl Into<BoxError>) -> Self {
        RpcError::Transport(Box::new(Explained { what: what.into(), source: error.into() }))
    }

    /// A configuration error: `what` was wrong.
    pub fn config(what: impl Into<String>) -> Self {
        RpcError::Config(what.into().into())
    }

    /// A configuration error told in `what`, `error` its source (a file that cannot be read).
    pub fn config_explained(what: impl Into<String>, error: impl Into<BoxError>) -> Self {
        RpcError::Config(Box::new(Explained { what: what.into(), source: error.into() }))
    }
}

impl From<ServiceError> for RpcError {
    fn from(error: ServiceError) -> Self {
        if error.kind == ErrorKind::Validation {
            RpcError::Validation { message: error.message, violations: error.violations }
        } else {
            RpcError::Remote(error)
        }
    }
}

/// What a binary's `main` returns: any error, shown at exit as its message (and the messages of
/// its causes) instead of the `Debug` form Rust's runtime would print for it.
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> Result<(), natsrpc::MainError> {
///     let nats = natsrpc::NatsConfig::from_env()?.with_name("orders").connect().await?;
///     let port: u16 = std::env::var("PORT")?.parse()?;
///     # let _ = (nats, port);
///     Ok(())
/// }
/// ```
pub struct MainError(Box<dyn std::error::Error + Send + Sync>);

impl<E: Into<Box<dyn std::error::Error + Send + Sync>>> From<E> for MainError {
    fn from(error: E) -> Self {
        MainError(error.into())
    }
}

impl std::fmt::Debug for MainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Many errors (async-nats', natsrpc's own) already tell their source's text: a cause is
        // written only when it says something not yet said.
        let mut said = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(error) = cause {
            let text = error.to_string();
            if !said.contains(&text) {
                said = format!("{said}: {text}");
            }
            cause = error.source();
        }
        f.write_str(&said)
    }
}

impl std::fmt::Display for MainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_named_as_the_envelope_names_it() {
        use ErrorKind::*;
        let all = [
            Validation,
            MalformedPayload,
            UnsupportedContentType,
            PayloadTooLarge,
            UnknownEndpoint,
            Business,
            Overloaded,
            Timeout,
            Internal,
            Unavailable,
            Unauthorized,
            Forbidden,
            RateLimited,
            Other,
        ];
        for kind in all {
            assert_eq!(serde_json::to_value(kind).ok(), Some(serde_json::Value::from(kind.as_str())));
        }
    }

    #[test]
    fn a_kind_from_a_newer_service_reads_as_other_with_its_status_and_code() {
        let newer = r#"{"status": 418, "kind": "teapot", "code": "short_and_stout", "message": "no coffee"}"#;
        let error: ServiceError = serde_json::from_str(newer).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (error.status, error.kind, error.code.as_str()),
            (418, ErrorKind::Other, "short_and_stout")
        );
        assert!(!error.kind.is_retryable());
        let packed =
            rmp_serde::to_vec_named(&serde_json::from_str::<serde_json::Value>(newer).unwrap_or_default());
        let error: ServiceError =
            rmp_serde::from_slice(&packed.unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(error.kind, ErrorKind::Other, "MessagePack too");
    }

    #[test]
    fn a_main_error_tells_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let told = RpcError::config_explained("NATS_CREDS: cannot read /x.creds: no such file", io);
        assert_eq!(
            MainError::from(told).to_string(),
            "configuration: NATS_CREDS: cannot read /x.creds: no such file"
        );
        let quiet = RpcError::transport(std::io::Error::other("broken pipe"));
        assert!(std::error::Error::source(&quiet).is_some());
        let inner = std::io::Error::other("inner cause");
        let outer = RpcError::transport_explained("publishing failed", inner);
        assert_eq!(MainError::from(outer).to_string(), "transport: publishing failed: inner cause");
    }

    #[test]
    fn a_failed_part_is_named_and_a_late_one_is_late_however_it_ended() {
        let part = "analytics.user_activity";
        let waited = RpcError::Timeout { subject: part.into(), after: Duration::from_millis(180) };
        let gave_up = RpcError::Remote(ServiceError::timeout(Duration::from_millis(180)));
        for late in [waited, gave_up] {
            let error = late.part_failed(part);
            assert_eq!(
                (error.status, error.kind, error.code.as_str()),
                (504, ErrorKind::Timeout, "part_late")
            );
            assert_eq!(error.path.as_deref(), Some(part));
            assert!(error.message.starts_with("analytics.user_activity did not answer"), "{}", error.message);
        }
        let nobody = RpcError::NoResponders { subject: part.into() }.part_failed(part);
        assert_eq!((nobody.status, nobody.code.as_str()), (503, "part_unavailable"));
        let refused = RpcError::Remote(ServiceError::not_found("upload_not_found", "no upload upl_x"));
        let failed = refused.part_failed(part);
        assert_eq!((failed.status, failed.code.as_str()), (502, "part_failed"));
        assert_eq!(failed.message, "analytics.user_activity failed: upload_not_found: no upload upl_x");
    }
}
