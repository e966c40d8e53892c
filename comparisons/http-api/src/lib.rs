//! # http-api
//!
//! The HTTP surface both HTTP stacks of the comparison serve: `POST /{service}/{endpoint}` with the
//! same body as the NATS request (JSON, or MessagePack by `Content-Type`) and the same envelope back,
//! with the error's status as the HTTP status; `GET /health`; `GET /stats` (each service's
//! `$SRV.STATS` answer, where the services run in the process). Requests run through
//! [`natsrpc::Dispatcher`], the same decode, validate, handle and encode path as on NATS, so that
//! the stacks differ only in transport and state store: in this process ([`app`]), or behind any
//! other [`Backend`] ([`app_over`]), such as the RabbitMQ gateway's workers. [`client`] is the
//! other side: a service calling another over HTTP.
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize, validator::Validate)] struct Ping {}
//! # natsrpc::request!(Ping => u8, service = "pinger", endpoint = "ping");
//! # async fn ping(_: Ping) -> Result<u8, natsrpc::ServiceError> { Ok(1) }
//! let pinger = natsrpc::Dispatcher::new(natsrpc::Service::builder("pinger", "1.0.0").endpoint(ping)).unwrap();
//! let app: axum::Router = http_api::app(vec![pinger]);
//! ```

pub mod client;
pub mod serve;
pub mod tls;

pub use serve::serve;
pub use tls::{ServeError, ServerTls};

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::FutureExt;
use natsrpc::{Codec, Dispatched, Dispatcher, RequestHead, ServiceError};

/// The largest request body: the NATS server's default `max_payload`, so both transports refuse
/// the same requests.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// One request, as the HTTP surface hands it on.
#[derive(Debug, Clone)]
pub struct Call {
    /// The service's name (the first path segment).
    pub service: String,
    /// Its subject (`{service}.{endpoint}`, as it would be on NATS), `Content-Type`,
    /// `X-Correlation-Id` and `X-Deadline-Ms`, read from the HTTP headers once.
    pub head: RequestHead,
    /// The body, at most [`MAX_BODY_BYTES`].
    pub body: Bytes,
}

/// A reply, as the HTTP surface sends it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status: 200, or the error's.
    pub status: u16,
    /// The envelope's `Content-Type`.
    pub content_type: String,
    /// The correlation id to send back, if any.
    pub correlation_id: Option<String>,
    /// The envelope.
    pub body: Bytes,
}

impl Answer {
    /// An error found outside any service (no such service, no worker, no reply in time), in the
    /// framework's envelope (JSON).
    pub fn refusal(error: ServiceError) -> Self {
        let body = serde_json::json!({"ok": false, "error": error});
        Self {
            status: error.status,
            content_type: Codec::Json.content_type().to_string(),
            correlation_id: None,
            body: Bytes::from(body.to_string()),
        }
    }
}

impl From<natsrpc::Dispatched> for Answer {
    fn from(reply: natsrpc::Dispatched) -> Self {
        Self {
            status: reply.status,
            content_type: reply.codec.content_type().to_string(),
            correlation_id: reply.correlation_id,
            body: reply.body,
        }
    }
}

/// What answers the requests: the services in this process ([`app`]), or services elsewhere
/// reached over a broker (the HTTP+RabbitMQ gateway).
pub trait Backend: Send + Sync + 'static {
    /// The services it serves, by name.
    fn services(&self) -> Vec<String>;

    /// Answers one request to a service it serves.
    fn call(&self, call: Call) -> impl Future<Output = Answer> + Send;

    /// Whether it can answer now: a gateway whose broker is gone cannot, and `GET /health` then
    /// says 503, so that a load balancer or an orchestrator stops sending to it.
    fn healthy(&self) -> impl Future<Output = bool> + Send {
        std::future::ready(true)
    }

    /// Each service's `$SRV.STATS` answer, when the services run where the backend can see them.
    fn stats(&self) -> Option<Vec<serde_json::Value>> {
        None
    }
}

/// The services in this process, by name.
struct Local(BTreeMap<String, Dispatcher>);

impl Backend for Local {
    fn services(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    async fn call(&self, call: Call) -> Answer {
        match self.0.get(&call.service) {
            Some(dispatcher) => dispatcher.dispatch(call.head, call.body).await.into(),
            None => {
                let error = ServiceError::unknown_endpoint(call.head.subject());
                Dispatched::refused(call.head, &call.body, error).into()
            }
        }
    }

    fn stats(&self) -> Option<Vec<serde_json::Value>> {
        Some(self.0.values().filter_map(|d| serde_json::from_slice(&d.stats()).ok()).collect())
    }
}

/// The router over `services` running in this process, each reachable under its name.
pub fn app(services: Vec<Dispatcher>) -> axum::Router {
    app_over(Local(services.into_iter().map(|d| (d.service().to_string(), d)).collect()))
}

struct Shared<B> {
    backend: B,
    services: Vec<String>,
}

/// The router over any [`Backend`].
///
/// Every answer is an envelope, even to a request that matches no route or whose handling
/// panicked (a 500 that names a correlation id to find the log line by): a caller never sees a
/// dropped connection or a plain-text error.
pub fn app_over<B: Backend>(backend: B) -> axum::Router {
    let services = backend.services();
    axum::Router::new()
        .route("/health", get(health::<B>))
        .route("/stats", get(stats::<B>))
        .route("/{service}/{endpoint}", post(call::<B>))
        .fallback(no_route)
        .with_state(Arc::new(Shared { backend, services }))
        .layer(axum::middleware::from_fn(catch_panics))
}

/// A panic anywhere below (routing, the backend, building the response) fails that request only:
/// it is answered with a 500 envelope instead of a connection closed without a word.
async fn catch_panics(request: Request, next: axum::middleware::Next) -> Response {
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let correlation_id = nuid::next().to_string();
            let text = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str));
            tracing::error!(%correlation_id, panic = %natsrpc::escape::escape(text.unwrap_or("?"), 1024),
                "an HTTP request panicked");
            let error = ServiceError::internal(format!("internal error (correlation id {correlation_id})"));
            let mut answer = Answer::refusal(error);
            answer.correlation_id = Some(correlation_id);
            response(answer)
        }
    }
}

/// Any request no route takes: a 404 envelope.
async fn no_route(request: Request) -> Response {
    let path = natsrpc::escape::header_value(request.uri().path()).into_owned();
    response(Answer::refusal(ServiceError::new(
        404,
        natsrpc::ErrorKind::UnknownEndpoint,
        format!("no route for {} {path}: use POST /{{service}}/{{endpoint}}", request.method()),
    )))
}

async fn health<B: Backend>(State(shared): State<Arc<Shared<B>>>) -> Response {
    if shared.backend.healthy().await {
        axum::Json(serde_json::json!({"status": "ok", "services": shared.services})).into_response()
    } else {
        let body = axum::Json(serde_json::json!({"status": "unavailable", "services": shared.services}));
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

/// `GET /stats`: what `$SRV.STATS` says on NATS, one entry per service.
async fn stats<B: Backend>(State(shared): State<Arc<Shared<B>>>) -> Response {
    match shared.backend.stats() {
        Some(all) => axum::Json(all).into_response(),
        None => response(Answer::refusal(ServiceError::unknown_endpoint("stats"))),
    }
}

async fn call<B: Backend>(
    State(shared): State<Arc<Shared<B>>>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    // A path that does not decode (bad percent-encoding, not UTF-8) names no endpoint.
    let Ok(Path((service, endpoint))) = path else {
        return no_route(request).await;
    };
    let (parts, body) = request.into_parts();
    let head = head_of(&parts.headers, &format!("{service}.{endpoint}"));
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(Unread::TooLarge(size)) => {
            let error = ServiceError::payload_too_large(size, MAX_BODY_BYTES);
            return response(Dispatched::refused(head, &[], error).into());
        }
        Err(Unread::Broken) => {
            let error =
                ServiceError::new(400, natsrpc::ErrorKind::MalformedPayload, "the body could not be read");
            return response(Dispatched::refused(head, &[], error).into());
        }
    };
    if !shared.services.contains(&service) {
        let error = ServiceError::unknown_endpoint(head.subject());
        return response(Dispatched::refused(head, &body, error).into());
    }
    let call = Call { service, head, body };
    response(shared.backend.call(call).await)
}

/// The request's head, read from its HTTP headers here, once: past this point no code looks at an
/// HTTP header.
fn head_of(headers: &HeaderMap, subject: &str) -> RequestHead {
    let mut head = RequestHead::new(subject);
    if let Some(value) = headers.get(header::CONTENT_TYPE) {
        // A type that is not text is no type natsrpc speaks: a 415 that quotes it (escaped), not
        // a sniffed body.
        head = head.with_content_type(&String::from_utf8_lossy(value.as_bytes()));
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(id) = text(natsrpc::headers::CORRELATION_ID) {
        head = head.with_correlation_id(id);
    }
    if let Some(millis) = text(natsrpc::headers::DEADLINE) {
        head = head.with_deadline_ms(millis);
    }
    if let Some(traceparent) = text(natsrpc::headers::TRACEPARENT) {
        head = head.with_traceparent(traceparent);
    }
    head
}

/// A body larger than this is not read on to its end: the connection is closed on the sender.
const MAX_DRAINED_BYTES: usize = 16 * MAX_BODY_BYTES;

/// Why a body was not read.
enum Unread {
    /// Over [`MAX_BODY_BYTES`]: this many bytes came (at least).
    TooLarge(usize),
    /// The connection failed mid-body.
    Broken,
}

/// Reads a body of at most [`MAX_BODY_BYTES`] (our own limit, so that an oversized body gets the
/// envelope rather than axum's plain text). A larger one is read on and dropped, up to
/// [`MAX_DRAINED_BYTES`], so that a client still sending it gets its 413 instead of a connection
/// reset under its feet.
///
/// A body that says it is larger than [`MAX_DRAINED_BYTES`] is refused before a byte of it is read
/// (so a client that asked to `Expect: 100-continue` is not told to go on), and a body must arrive
/// within [`BODY_TIMEOUT`]: a trickling sender holds a connection no longer.
async fn read_body(mut body: Body) -> Result<Bytes, Unread> {
    use http_body_util::BodyExt;
    let declared = usize::try_from(axum::body::HttpBody::size_hint(&body).lower()).unwrap_or(usize::MAX);
    if declared > MAX_DRAINED_BYTES {
        return Err(Unread::TooLarge(declared));
    }
    let reading = async {
        let mut kept = bytes::BytesMut::new();
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(|_| Unread::Broken)?.into_data() else { continue };
            seen = seen.saturating_add(data.len());
            if seen <= MAX_BODY_BYTES {
                kept.extend_from_slice(&data);
            } else if seen > MAX_DRAINED_BYTES {
                break;
            }
        }
        if seen > MAX_BODY_BYTES { Err(Unread::TooLarge(seen)) } else { Ok(kept.freeze()) }
    };
    tokio::time::timeout(BODY_TIMEOUT, reading).await.unwrap_or(Err(Unread::Broken))
}

/// How long a request's body may take to arrive.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn response(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&answer.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Some(id) = answer.correlation_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        headers.insert(natsrpc::headers::CORRELATION_ID, id);
    }
    (status, headers, Body::from(answer.body)).into_response()
}
