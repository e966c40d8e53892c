//! # http-api
//!
//! The HTTP surface both HTTP stacks of the comparison serve: `POST /{service}/{endpoint}` with the
//! same body as the NATS request (JSON, or MessagePack by `Content-Type`) and the same envelope back,
//! with the error's status as the HTTP status; `GET /health`. Requests run through
//! [`natsrpc::Dispatcher`], the same decode, validate, handle and encode path as on NATS, so that
//! the stacks differ only in transport and state store.
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize, validator::Validate)] struct Ping {}
//! # natsrpc::request!(Ping => u8, service = "pinger", endpoint = "ping");
//! # async fn ping(_: Ping) -> Result<u8, natsrpc::ServiceError> { Ok(1) }
//! let pinger = natsrpc::Dispatcher::new(natsrpc::Service::builder("pinger", "1.0.0").endpoint(ping)).unwrap();
//! let app: axum::Router = http_api::app(vec![pinger]);
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use natsrpc::{Codec, Dispatched, Dispatcher, ServiceError};

/// The largest request body: the NATS server's default `max_payload`, so both transports refuse
/// the same requests.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

type Services = Arc<BTreeMap<String, Dispatcher>>;

/// The router over `services`, each reachable under its name.
pub fn app(services: Vec<Dispatcher>) -> axum::Router {
    let services: Services = Arc::new(services.into_iter().map(|d| (d.service().to_string(), d)).collect());
    axum::Router::new()
        .route("/health", get(health))
        .route("/{service}/{endpoint}", post(call))
        .with_state(services)
}

async fn health(State(services): State<Services>) -> Response {
    let names: Vec<&String> = services.keys().collect();
    axum::Json(serde_json::json!({"status": "ok", "services": names})).into_response()
}

async fn call(
    State(services): State<Services>,
    Path((service, endpoint)): Path<(String, String)>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let content_type = header(natsrpc::headers::CONTENT_TYPE);
    let correlation_id = header(natsrpc::headers::CORRELATION_ID);
    let subject = format!("{service}.{endpoint}");
    // Our own limit, so that an oversized body gets the envelope rather than axum's plain text.
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => return refusal(ServiceError::payload_too_large(MAX_BODY_BYTES + 1, MAX_BODY_BYTES)),
    };
    let Some(dispatcher) = services.get(&service) else {
        return refusal(ServiceError::unknown_endpoint(&subject));
    };
    let reply = dispatcher.dispatch(&subject, content_type.as_deref(), correlation_id.as_deref(), body).await;
    response(reply)
}

fn response(reply: Dispatched) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(reply.codec.content_type()));
    if let Some(id) = reply.correlation_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        headers.insert(natsrpc::headers::CORRELATION_ID, id);
    }
    (status, headers, Body::from(reply.body)).into_response()
}

/// An error found before any service saw the request, in the framework's envelope (JSON).
fn refusal(error: ServiceError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({"ok": false, "error": error});
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(Codec::Json.content_type()));
    (status, headers, Bytes::from(body.to_string())).into_response()
}
