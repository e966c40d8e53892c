//! # natsrpc
//!
//! Typed request/reply microservices on NATS: a request type names its endpoint and its response,
//! requests are decoded (JSON or MessagePack) and validated (every violation, with its path) before
//! the handler runs, errors have one envelope on the wire, and every service answers the NATS
//! Services API so `natsrpc ls|info|stats` (the `natsrpc-cli` crate) and `nats micro` see it.
//!
//! ```no_run
//! use natsrpc::{Client, Service, ServiceError, State};
//! use serde::{Deserialize, Serialize};
//! use validator::Validate;
//!
//! // The contract, shared by the service and its callers.
//! #[derive(Serialize, Deserialize, Validate)]
//! struct Greet {
//!     #[validate(length(min = 1, max = 40))]
//!     name: String,
//! }
//! #[derive(Serialize, Deserialize)]
//! struct Greeting {
//!     text: String,
//! }
//! natsrpc::request!(Greet => Greeting, service = "greeter", endpoint = "greet");
//!
//! // The handler sees only valid requests.
//! async fn greet(State(prefix): State<&'static str>, req: Greet) -> Result<Greeting, ServiceError> {
//!     Ok(Greeting { text: format!("{prefix}, {}!", req.name) })
//! }
//!
//! # async fn run() -> Result<(), natsrpc::RpcError> {
//! let nats = natsrpc::connect("nats://127.0.0.1:4222").await?;
//! let service = Service::builder("greeter", "1.0.0").state("Hello").endpoint(greet).start(&nats).await?;
//!
//! let client = Client::new(nats);
//! let reply = client.call(&Greet { name: "Ada".into() }).await?;
//! assert_eq!(reply.text, "Hello, Ada!");
//! service.stop(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```
//!
//! ## Layout
//! - [`contract`]: the [`Request`] trait and the [`request!`] macro.
//! - [`codec`]: JSON and MessagePack, chosen by `Content-Type`.
//! - [`validation`]: `validator`'s errors flattened into [`Violation`]s with paths.
//! - [`envelope`] and [`headers`]: the reply's shape on the wire; [`escape`]: outside text made
//!   safe for headers, logs and stats.
//! - [`error`]: [`ServiceError`] (the wire error) and [`RpcError`] (this crate's error).
//! - [`server`]: [`Service`], its builder, handlers and their arguments, the Services API,
//!   endpoint groups and queue groups, timers ([`ServiceBuilder::timer`]), idempotent replies
//!   ([`EndpointOptions::idempotent_replies`]) and tower layers around each request
//!   ([`server::layers`]: authentication, a rate per caller, an in-flight bound, your own).
//! - [`client`]: the typed [`Client`], which validates before sending, with timeouts, correlation
//!   ids, idempotency keys and retries of what the error says can be retried, tower layers
//!   ([`client::layers`]: a circuit breaker, also fed by the service's `$SRV.STATS`, a bulkhead, a
//!   fallback, your own), over NATS or any other
//!   [`Transport`].
//! - [`trace`]: W3C `traceparent` across calls and events, and spans exported over OTLP.
//! - [`metrics`]: every service's counters in Prometheus's text format, at `METRICS_ADDR`.
//! - [`compat`]: what a new version of a service breaks for the old one's callers, from their
//!   `$SRV.INFO` schemas.
//! - [`testing`]: an in-process [`testing::Harness`] and a private [`testing::NatsServer`].
//!
//! ## The wire
//! A request is published to `{service}.{endpoint}` (or its group's or its own subject, see
//! [`request!`]) with `Content-Type` (`application/json` or
//! `application/msgpack`; without it a body starting with `{` or `[` is JSON) and an optional
//! `X-Correlation-Id`. The reply, in the request's codec, is `{"ok": true, "data": ...}` with no
//! headers, or `{"ok": false, "error": {"status", "kind", "code", "message", "violations"?, "path"?}}`
//! with `Content-Type`, `X-Correlation-Id` (the caller's, or one made up to find the log line) and the
//! NATS Services API's `Nats-Service-Error` and `Nats-Service-Error-Code` headers.
//!
//! | kind | status | when |
//! |---|---|---|
//! | `validation` | 400 | rules broken; `violations` lists every one with its path |
//! | `malformed_payload` | 400 | the body does not decode; `path` says where |
//! | `unknown_endpoint` | 404 | no endpoint on that subject |
//! | `payload_too_large` | 413 | over the service's `max_payload` |
//! | `unsupported_content_type` | 415 | a `Content-Type` other than JSON or MessagePack |
//! | `business` | 409, 422, 404 | the handler refused, with its own `code` |
//! | `internal` | 500 | the handler failed or panicked (details only in the log) |
//! | `overloaded` | 503 | the endpoint's in-flight bound is reached |
//! | `timeout` | 504 | the handler ran past its deadline |
//! | `unauthorized`, `forbidden` | 401, 403 | a [server layer](server::layers) did not know the caller, or refused it |
//! | `rate_limited` | 429 | the caller is past its rate ([`server::layers::RateLimitLayer`]) |

pub mod client;
pub mod codec;
pub mod compat;
mod connection;
pub mod contract;
pub mod envelope;
pub mod error;
pub mod escape;
pub mod events;
pub mod headers;
pub mod metrics;
pub mod server;
pub mod settings;
pub mod testing;
pub mod trace;
pub mod validation;

pub use client::{CallOptions, Client, RetryPolicy, Transport};
pub use codec::Codec;
pub use connection::{
    DEFAULT_URL, Denial, DeniedAction, NatsAuth, NatsConfig, NatsTls, VARIABLES as NATS_VARIABLES, connect,
    connect_with, init_tracing, permission_denials, redact_url,
};
pub use contract::Request;
pub use error::{ErrorKind, MainError, RpcError, ServiceError};
pub use server::{
    Dispatched, Dispatcher, EndpointOptions, Finishing, Handler, RequestContext, RequestHead, Runs, Service,
    ServiceBuilder, ServiceStats, State, StopReport, Tick, TimerStats, shutdown_signal,
};
pub use validation::Violation;

// Re-exported so contracts can derive with the same versions natsrpc uses.
pub use async_nats;
pub use validator;

#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
