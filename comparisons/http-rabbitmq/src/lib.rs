//! # http-rabbitmq
//!
//! The HTTP+RabbitMQ stack: the Flask-plus-RabbitMQ/Celery architecture, built as well as we can.
//!
//! - The [`gateway`] is an axum app with the same HTTP surface as every stack (`http_api`); it
//!   forwards each request as an AMQP RPC ([`rpc`]): published (with publisher confirms, `mandatory`) to
//!   the service's queue `rpc.{service}`, with a fresh correlation id, RabbitMQ's direct reply-to
//!   as the reply address and the gateway's timeout as the message's expiration; the reply is
//!   matched by correlation id, or the caller gets a clear 503 or 504.
//! - [`worker`]s run the three services (the same contracts, validation and domain code) and
//!   take requests from the queues with manual acknowledgements: a request is acknowledged once,
//!   after its reply is sent, so that one whose worker died mid-way goes to another worker.
//!   Any number of workers can run; with the Redis store they share the services' state. A
//!   service calls another by AMQP RPC too ([`rpc::AmqpTransport`]), and the shop's events go
//!   through a durable exchange and queue ([`events`]).
//!
//! One request, from the wire and back: HTTP `POST /ecommerce/create_order` → [`gateway::Gateway`]
//! publishes to `rpc.ecommerce` → a [`worker`] consumes it and hands it to the service's
//! `natsrpc::Dispatcher` (decode, validate, handle, encode) → the worker publishes the envelope to
//! the request's `reply_to` and acknowledges the request → the gateway's reply consumer finds the
//! waiting call by correlation id → HTTP response.

pub mod broker;
pub mod events;
pub mod gateway;
pub mod reconnect;
pub mod rpc;
pub mod worker;

use lapin::types::{AMQPValue, FieldTable};

pub use broker::{Broker, DEFAULT_AMQP_URL};

/// Message header with the request's subject (`{service}.{endpoint}`).
pub const SUBJECT: &str = "subject";
/// Message header with a reply's status (200, or the error's).
pub const STATUS: &str = "status";
/// Message header with the caller's correlation id (`X-Correlation-Id`), both ways.
pub const CORRELATION_ID: &str = "x-correlation-id";
/// Message header with how long the caller waits, in milliseconds (`X-Deadline-Ms`).
pub const DEADLINE: &str = "x-deadline-ms";
/// Message header with the caller's W3C `traceparent`, as HTTP and NATS carry it.
pub const TRACEPARENT: &str = "traceparent";

/// What can go wrong on this stack.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    /// The broker refused an operation, or the connection broke.
    #[error("amqp: {0}")]
    Broker(#[from] lapin::Error),
    /// The first connection failed: which broker (its password hidden), and why.
    #[error("cannot connect to {broker}: {reason}")]
    Connect {
        /// The URL, redacted.
        broker: String,
        /// The cause, in words that point at the setting to check.
        reason: String,
    },
    /// A service could not be built.
    #[error(transparent)]
    Stack(#[from] stack::StackError),
    /// A setting has a value that cannot be used.
    #[error("{0}")]
    Config(String),
}

/// The default start of the queues' names.
pub const DEFAULT_QUEUE_PREFIX: &str = "rpc";

/// The queue a service's requests wait in: `{prefix}.{service}`. One prefix per deployment, so
/// that stacks (and tests) sharing a broker never take each other's requests.
pub fn queue_name(prefix: &str, service: &str) -> String {
    format!("{prefix}.{service}")
}

/// How long a service's queue outlives its last consumer: long enough for a worker to restart,
/// short enough that a stopped deployment leaves nothing behind for long.
pub const QUEUE_EXPIRES_MS: u32 = 60_000;

/// Declares a service's queue (idempotent; every declarer must use the same arguments).
/// Not durable: a request outlives neither its caller's timeout nor, so, a broker restart.
pub async fn declare_queue(
    channel: &lapin::Channel,
    prefix: &str,
    service: &str,
) -> Result<String, AmqpError> {
    let name = queue_name(prefix, service);
    let mut arguments = FieldTable::default();
    arguments.insert("x-expires".into(), AMQPValue::LongUInt(QUEUE_EXPIRES_MS));
    channel
        .queue_declare(name.as_str().into(), lapin::options::QueueDeclareOptions::default(), arguments)
        .await?;
    Ok(name)
}

/// Consumes `queue` with manual acknowledgements under a consumer tag of its own (the queue's
/// name and a unique suffix, so the management UI tells the consumers apart); answers the consumer
/// and its tag, for cancelling it.
pub async fn consume(channel: &lapin::Channel, queue: &str) -> Result<(lapin::Consumer, String), AmqpError> {
    let tag = format!("{queue}.{}", nuid::next());
    let consumer = channel
        .basic_consume(
            queue.into(),
            tag.as_str().into(),
            lapin::options::BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((consumer, tag))
}

/// A text header of a message.
fn text_header<'a>(headers: &'a Option<FieldTable>, name: &str) -> Option<&'a str> {
    match headers.as_ref()?.inner().get(name)? {
        AMQPValue::LongString(value) => std::str::from_utf8(value.as_bytes()).ok(),
        AMQPValue::ShortString(value) => Some(value.as_str()),
        _ => None,
    }
}

/// The status a worker's reply carries in its [`STATUS`] header: 500 when it has none that fits
/// (a reply not from a worker of this stack).
fn reply_status(headers: &Option<FieldTable>) -> u16 {
    number_header(headers, STATUS).and_then(|status| u16::try_from(status).ok()).unwrap_or(500)
}

/// A number header of a message.
fn number_header(headers: &Option<FieldTable>, name: &str) -> Option<u32> {
    match headers.as_ref()?.inner().get(name)? {
        AMQPValue::LongUInt(value) => Some(*value),
        AMQPValue::LongInt(value) => u32::try_from(*value).ok(),
        AMQPValue::ShortUInt(value) => Some(u32::from(*value)),
        AMQPValue::ShortInt(value) => u32::try_from(*value).ok(),
        AMQPValue::LongLongInt(value) => u32::try_from(*value).ok(),
        _ => None,
    }
}
