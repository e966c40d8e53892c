//! The gateway: HTTP in, AMQP RPC out.
//!
//! Each of a few channels ("lanes", used in turn) is in confirm mode and consumes RabbitMQ's
//! direct reply-to pseudo-queue, so replies need no queue of their own. A call registers its
//! correlation id on its lane, publishes, waits for the broker's confirm (a request the broker
//! could not route, because no worker declared the service's queue, comes back at once as a
//! 503), then for the reply, all within the timeout; the message expires with the timeout too,
//! so that a worker never works on a request whose caller has given up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use http_api::{Answer, Backend, Call};
use lapin::message::Delivery;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use natsrpc::{ErrorKind, ServiceError};
use tokio::sync::oneshot;

use crate::{AmqpError, CORRELATION_ID, STATUS, SUBJECT, number_header, queue_name, text_header};

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
}

/// Takes a call's correlation id off its lane however the call ends (reply, timeout, or the HTTP
/// client going away), so that nothing is left behind.
struct Registration {
    pending: Pending,
    id: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.pending).remove(&self.id);
    }
}

/// The gateway's [`Backend`]: forwards each call to the workers over AMQP.
pub struct Gateway {
    _connection: Connection,
    lanes: Vec<Lane>,
    next: AtomicUsize,
    timeout: Duration,
    services: Vec<String>,
    queue_prefix: String,
}

impl Gateway {
    /// Connects to the broker at `url` with `lanes` channels; calls to `services` (in the queues
    /// named with `queue_prefix`) give up after `timeout`.
    pub async fn connect(
        url: &str,
        queue_prefix: &str,
        services: Vec<String>,
        lanes: usize,
        timeout: Duration,
    ) -> Result<Self, AmqpError> {
        let connection = crate::connect(url, "http-rabbitmq gateway").await?;
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
                tracing::warn!("reply consumer ended");
            });
            all.push(Lane { channel, pending });
        }
        Ok(Self {
            _connection: connection,
            lanes: all,
            next: AtomicUsize::new(0),
            timeout,
            services,
            queue_prefix: queue_prefix.to_string(),
        })
    }

    async fn forward(&self, call: &Call) -> Result<Delivery, ServiceError> {
        let lane = &self.lanes[self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len()];
        let id = nuid::next().to_string();
        let (reply_sender, reply) = oneshot::channel();
        lock(&lane.pending).insert(id.clone(), reply_sender);
        let _registration = Registration { pending: Arc::clone(&lane.pending), id: id.clone() };

        let mut headers = FieldTable::default();
        headers.insert(SUBJECT.into(), AMQPValue::LongString(call.subject.clone().into()));
        if let Some(correlation_id) = &call.correlation_id {
            headers.insert(CORRELATION_ID.into(), AMQPValue::LongString(correlation_id.clone().into()));
        }
        let mut properties = BasicProperties::default()
            .with_correlation_id(id.into())
            .with_reply_to(REPLY_TO.into())
            .with_expiration(self.timeout.as_millis().to_string().into())
            .with_headers(headers);
        if let Some(content_type) = &call.content_type {
            properties = properties.with_content_type(content_type.clone().into());
        }
        let unreachable =
            |error: lapin::Error| ServiceError::unavailable(format!("the broker failed: {error}"));
        let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
        let queue = queue_name(&self.queue_prefix, &call.service);
        let confirm = lane
            .channel
            .basic_publish("".into(), queue.as_str().into(), options, &call.body, properties)
            .await
            .map_err(unreachable)?
            .await
            .map_err(unreachable)?;
        match confirm {
            Confirmation::Ack(None) | Confirmation::NotRequested => {}
            Confirmation::Ack(Some(_)) => {
                return Err(ServiceError::unavailable(format!(
                    "no worker serves {}: the queue {queue} does not exist",
                    call.service
                )));
            }
            Confirmation::Nack(_) => {
                return Err(ServiceError::unavailable(format!("the broker refused the request to {queue}")));
            }
        }
        reply.await.map_err(|_| ServiceError::unavailable("the gateway's reply consumer stopped"))
    }
}

impl Backend for Gateway {
    fn services(&self) -> Vec<String> {
        self.services.clone()
    }

    async fn call(&self, call: Call) -> Answer {
        let reply = match tokio::time::timeout(self.timeout, self.forward(&call)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(error)) => return with_correlation(Answer::refusal(error), &call),
            Err(_) => {
                let message =
                    format!("no worker answered {} within {} ms", call.subject, self.timeout.as_millis());
                return with_correlation(
                    Answer::refusal(ServiceError::new(504, ErrorKind::Timeout, message)),
                    &call,
                );
            }
        };
        let properties = &reply.properties;
        Answer {
            status: number_header(properties.headers(), STATUS).map_or(500, |status| status as u16),
            content_type: properties
                .content_type()
                .as_ref()
                .map_or_else(|| "application/json".to_string(), |value| value.as_str().to_string()),
            correlation_id: text_header(properties.headers(), CORRELATION_ID).map(str::to_string),
            body: reply.data.into(),
        }
    }
}

fn with_correlation(mut answer: Answer, call: &Call) -> Answer {
    answer.correlation_id = call.correlation_id.clone();
    answer
}
