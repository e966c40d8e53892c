//! AMQP RPC: a request published to a service's queue, its reply back through RabbitMQ's direct
//! reply-to. The gateway forwards HTTP requests this way, and the workers call other services
//! this way too ([`AmqpTransport`], a `natsrpc::Transport`), so that one service calling another
//! crosses the broker on this stack as it crosses NATS on the NATS stack.
//!
//! Each of a few channels ("lanes", used in turn) is in confirm mode and consumes the direct
//! reply-to pseudo-queue, so replies need no queue of their own. A call registers its correlation
//! id on its lane, publishes, waits for the broker's confirm (a request the broker could not
//! route, because no worker declared the service's queue, comes back at once as a 503), then for
//! the reply, all within the call's time; the message expires with that time too, so that a
//! worker never works on a request whose caller has given up. A connection lost (the broker
//! restarted) is made again by the next call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use natsrpc::client::{EncodedCall, EncodedReply, PendingReply, Transport};
use natsrpc::{ErrorKind, RpcError, ServiceError};
use tokio::sync::oneshot;

use crate::reconnect::{Link, Reconnecting};
use crate::{AmqpError, CORRELATION_ID, DEADLINE, SUBJECT, TRACEPARENT, queue_name};

/// The pseudo-queue of RabbitMQ's direct reply-to.
const REPLY_TO: &str = "amq.rabbitmq.reply-to";

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Delivery>>>>;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere mid-insert or mid-remove: the map is still whole.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Lane {
    channel: Channel,
    pending: Pending,
    /// Whether its reply consumer still runs: a lane without one would answer nothing but 504s.
    replies: Arc<AtomicBool>,
}

/// Takes a call's correlation id off its lane however the call ends (reply, timeout, or the caller
/// going away), so that nothing is left behind.
struct Registration {
    pending: Pending,
    id: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.pending).remove(&self.id);
    }
}

/// One request to send.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The service, whose queue it goes to.
    pub service: &'a str,
    /// `{service}.{endpoint}`.
    pub subject: &'a str,
    /// The body's `Content-Type`.
    pub content_type: Option<&'a str>,
    /// The caller's correlation id.
    pub correlation_id: Option<&'a str>,
    /// The caller's W3C `traceparent`.
    pub traceparent: Option<&'a str>,
    /// How long the caller waits.
    pub timeout: Duration,
    /// The body.
    pub body: &'a [u8],
}

/// Calls services over AMQP, connecting again by itself when the broker went away
/// ([`Reconnecting`]): while it cannot be reached, calls are answered 503 at once.
pub struct AmqpRpc {
    broker: crate::Broker,
    name: String,
    lanes: usize,
    queue_prefix: String,
    link: Reconnecting<Connected>,
}

/// One connection and its lanes.
struct Connected {
    connection: Connection,
    lanes: Vec<Lane>,
    next: AtomicUsize,
}

impl Connected {
    async fn open(broker: &crate::Broker, name: &str, lanes: usize) -> Result<Self, AmqpError> {
        let connection = broker.connect(name).await?;
        let mut all = Vec::new();
        for _ in 0..lanes.max(1) {
            let channel = connection.create_channel().await?;
            channel.confirm_select(ConfirmSelectOptions::default()).await?;
            let pending: Pending = Arc::default();
            // Direct reply-to: consumed without acknowledgements, on the channel that publishes.
            let options = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
            let mut replies =
                channel.basic_consume(REPLY_TO.into(), "".into(), options, FieldTable::default()).await?;
            let waiting = Arc::clone(&pending);
            let replies_run = Arc::new(AtomicBool::new(true));
            let running = Arc::clone(&replies_run);
            tokio::spawn(async move {
                while let Some(delivery) = replies.next().await {
                    let Ok(delivery) = delivery else { break };
                    let id = delivery.properties.correlation_id().as_ref().map(|id| id.as_str().to_string());
                    // A reply nobody waits for any more (its call timed out) is dropped here.
                    let waiter = id.and_then(|id| lock(&waiting).remove(&id));
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(delivery);
                    }
                }
                // The connection or the channel is gone: calls still waiting are answered by
                // their timeout, and the next call connects again.
                running.store(false, Ordering::Release);
                tracing::warn!("reply consumer ended");
            });
            all.push(Lane { channel, pending, replies: replies_run });
        }
        Ok(Self { connection, lanes: all, next: AtomicUsize::new(0) })
    }
}

impl Link for Connected {
    /// The connection, each lane's channel and each lane's reply consumer.
    fn is_open(&self) -> bool {
        self.connection.status().connected()
            && self
                .lanes
                .iter()
                .all(|lane| lane.channel.status().connected() && lane.replies.load(Ordering::Acquire))
    }
}

impl AmqpRpc {
    /// Connects to `broker` (naming the connection `name`) with `lanes` channels; calls
    /// go to the queues named with `queue_prefix`. The first connection must succeed: a
    /// process that cannot reach its broker at start says so and exits.
    pub async fn connect(
        broker: &crate::Broker,
        name: &str,
        queue_prefix: &str,
        lanes: usize,
    ) -> Result<Self, AmqpError> {
        let connected = Connected::open(broker, name, lanes).await?;
        Ok(Self {
            broker: broker.clone(),
            name: name.to_string(),
            lanes,
            queue_prefix: queue_prefix.to_string(),
            link: Reconnecting::new(name, connected),
        })
    }

    /// Whether the broker can be reached now (connecting again if it was lost): what a health
    /// check should say.
    pub async fn is_connected(&self) -> bool {
        self.connected().await.is_ok()
    }

    /// The open connection, or a new one: 503 when the broker cannot be reached.
    async fn connected(&self) -> Result<Arc<Connected>, ServiceError> {
        let open = || Connected::open(&self.broker, &self.name, self.lanes);
        self.link.get(open).await.map_err(|unreachable| ServiceError::unavailable(unreachable.to_string()))
    }

    /// Sends `request` and waits for its reply, within its timeout: 503 when no worker serves the
    /// service or the broker failed, 504 when no reply came in time.
    pub async fn call(&self, request: Request<'_>) -> Result<Delivery, ServiceError> {
        match tokio::time::timeout(request.timeout, self.forward(request)).await {
            Ok(answer) => answer,
            Err(_) => {
                let message = format!(
                    "no worker answered {} within {} ms",
                    request.subject,
                    request.timeout.as_millis()
                );
                Err(ServiceError::new(504, ErrorKind::Timeout, message))
            }
        }
    }

    async fn forward(&self, request: Request<'_>) -> Result<Delivery, ServiceError> {
        let connected = self.connected().await?;
        let lane = &connected.lanes[connected.next.fetch_add(1, Ordering::Relaxed) % connected.lanes.len()];
        let id = nuid::next().to_string();
        let (reply_sender, reply) = oneshot::channel();
        lock(&lane.pending).insert(id.clone(), reply_sender);
        let _registration = Registration { pending: Arc::clone(&lane.pending), id: id.clone() };

        let mut headers = FieldTable::default();
        headers.insert(SUBJECT.into(), AMQPValue::LongString(request.subject.into()));
        if let Some(correlation_id) = request.correlation_id {
            headers.insert(CORRELATION_ID.into(), AMQPValue::LongString(correlation_id.into()));
        }
        if let Some(traceparent) = request.traceparent {
            headers.insert(TRACEPARENT.into(), AMQPValue::LongString(traceparent.into()));
        }
        let timeout_ms = u32::try_from(request.timeout.as_millis()).unwrap_or(u32::MAX);
        headers.insert(DEADLINE.into(), AMQPValue::LongUInt(timeout_ms));
        let mut properties = BasicProperties::default()
            .with_correlation_id(id.into())
            .with_reply_to(REPLY_TO.into())
            .with_expiration(timeout_ms.to_string().into())
            .with_headers(headers);
        if let Some(content_type) = request.content_type {
            // An AMQP short string holds 255 bytes; no codec's name is longer.
            let short = lapin::types::ShortString::try_new(content_type).map_err(|_| {
                ServiceError::unsupported_content_type(format!(
                    "unsupported Content-Type of {} bytes: use application/json or application/msgpack",
                    content_type.len()
                ))
            })?;
            properties = properties.with_content_type(short);
        }
        let unreachable = |error: lapin::Error| {
            self.link.forget(&connected);
            ServiceError::unavailable(format!("the broker failed: {error}"))
        };
        let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
        let queue = queue_name(&self.queue_prefix, request.service);
        let confirm = lane
            .channel
            .basic_publish("".into(), queue.as_str().into(), options, request.body, properties)
            .await
            .map_err(unreachable)?
            .await
            .map_err(unreachable)?;
        match confirm {
            Confirmation::Ack(None) | Confirmation::NotRequested => {}
            Confirmation::Ack(Some(_)) => {
                return Err(ServiceError::unavailable(format!(
                    "no worker serves {}: the queue {queue} does not exist",
                    request.service
                )));
            }
            Confirmation::Nack(_) => {
                return Err(ServiceError::unavailable(format!("the broker refused the request to {queue}")));
            }
        }
        reply.await.map_err(|_| ServiceError::unavailable("the reply consumer stopped"))
    }
}

/// Typed calls between services over AMQP RPC: `natsrpc::Client::over(AmqpTransport(rpc))`.
#[derive(Clone)]
pub struct AmqpTransport(pub Arc<AmqpRpc>);

impl Transport for AmqpTransport {
    fn request<'a>(&'a self, request: &'a EncodedCall) -> PendingReply<'a> {
        Box::pin(async move {
            let subject = request.subject;
            let service = subject.split_once('.').map_or(subject, |(service, _)| service);
            let sent = Request {
                service,
                subject,
                content_type: Some(request.content_type),
                correlation_id: request.correlation_id.as_deref(),
                traceparent: request.traceparent.as_deref(),
                timeout: request.timeout,
                body: &request.payload,
            };
            match self.0.call(sent).await {
                Ok(reply) => Ok(EncodedReply {
                    status: crate::reply_status(reply.properties.headers()),
                    content_type: reply.properties.content_type().as_ref().map(|v| v.as_str().to_string()),
                    payload: reply.data.into(),
                }),
                Err(error) if error.status == 504 => {
                    Err(RpcError::Timeout { subject: subject.to_string(), after: request.timeout })
                }
                // No worker serves it (or the broker failed): as NATS's "no responders".
                Err(_) => Err(RpcError::NoResponders { subject: subject.to_string() }),
            }
        })
    }
}
