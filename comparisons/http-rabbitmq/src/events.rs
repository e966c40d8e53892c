//! The shop's events on RabbitMQ, the HTTP+RabbitMQ stack's event bus.
//!
//! Published persistent, with publisher confirms, to the durable topic exchange [`EXCHANGE`]
//! with the routing key `{prefix}.{subject}`; each consumer of the stack's (analytics, and the
//! archive when there is one) consumes them from a durable queue of its own,
//! `{prefix}.{consumer}.orders`, with manual acknowledgements, sent only once the consumer has the
//! event. A failed one is returned to the queue (after a short pause) and comes again. Both
//! sides declare the exchange, the queues and their bindings (idempotent), so no event is dropped
//! as unroutable, nor missed by a queue, while a consumer is still starting. A queue outlives a consumer that is down for
//! up to [`QUEUE_EXPIRES_MS`], then goes, so a stopped deployment leaves nothing on the broker.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use ecommerce::domain::{EventSink, Published, ShopEvent};
use futures::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ExchangeKind};
use stack::links::{self, Follower};

use crate::reconnect::{Link, Reconnecting};
use crate::{AmqpError, SUBJECT, text_header};

/// The exchange every deployment's events go through (one, so that deployments leave no
/// exchanges behind; their routing keys and queues are their own).
pub const EXCHANGE: &str = "natsrpc.events";
/// How long a consumer's queue outlives its last consumer: ten minutes of events kept for a
/// consumer that is down.
pub const QUEUE_EXPIRES_MS: u32 = 600_000;

/// The durable queue of `consumer` (`analytics`, `archive`).
pub fn queue(prefix: &str, consumer: &str) -> String {
    format!("{prefix}.{consumer}.orders")
}

/// Declares the exchange and each of `consumers`' queues, bound to the shop's events.
pub async fn declare(channel: &Channel, prefix: &str, consumers: &[&str]) -> Result<(), AmqpError> {
    let durable = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
    channel.exchange_declare(EXCHANGE.into(), ExchangeKind::Topic, durable, FieldTable::default()).await?;
    for consumer in consumers {
        let queue = queue(prefix, consumer);
        let mut arguments = FieldTable::default();
        arguments.insert("x-expires".into(), AMQPValue::LongUInt(QUEUE_EXPIRES_MS));
        let options = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
        channel.queue_declare(queue.as_str().into(), options, arguments).await?;
        for subject in links::SUBJECTS {
            channel
                .queue_bind(
                    queue.as_str().into(),
                    EXCHANGE.into(),
                    format!("{prefix}.{subject}").as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
    }
    Ok(())
}

/// Publishes the shop's events, connecting again when the broker went away ([`Reconnecting`]).
pub struct AmqpEvents {
    broker: crate::Broker,
    link: Reconnecting<Publishing>,
    prefix: String,
    consumers: Vec<&'static str>,
}

/// A connection and its confirming channel, with the exchange and the queues declared.
struct Publishing {
    connection: Connection,
    channel: Channel,
}

impl Link for Publishing {
    fn is_open(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

impl Publishing {
    async fn open(broker: &crate::Broker, prefix: &str, consumers: &[&str]) -> Result<Self, AmqpError> {
        let connection = broker.connect("http-rabbitmq events").await?;
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        declare(&channel, prefix, consumers).await?;
        Ok(Self { connection, channel })
    }
}

impl AmqpEvents {
    /// Connects to `broker` and declares what the events need, a queue for each of `consumers`
    /// (the first connection must succeed).
    pub async fn connect(
        broker: &crate::Broker,
        prefix: &str,
        consumers: Vec<&'static str>,
    ) -> Result<Self, AmqpError> {
        let first = Publishing::open(broker, prefix, &consumers).await?;
        Ok(Self {
            broker: broker.clone(),
            link: Reconnecting::new("http-rabbitmq events", first),
            prefix: prefix.to_string(),
            consumers,
        })
    }
}

impl EventSink for AmqpEvents {
    fn publish(&self, event: ShopEvent) -> Published<'_> {
        Box::pin(async move {
            let encoded = links::encode(&event)?;
            let mut headers = FieldTable::default();
            headers.insert(SUBJECT.into(), AMQPValue::LongString(encoded.subject.into()));
            let properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(encoded.id.into())
                .with_content_type("application/json".into())
                .with_headers(headers);
            let key = format!("{}.{}", self.prefix, encoded.subject);
            let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
            let link =
                self.link.get(|| Publishing::open(&self.broker, &self.prefix, &self.consumers)).await?;
            let published = async {
                let channel = &link.channel;
                channel
                    .basic_publish(EXCHANGE.into(), key.as_str().into(), options, &encoded.body, properties)
                    .await?
                    .await
            };
            let confirm = published.await.inspect_err(|_| self.link.forget(&link))?;
            match confirm {
                Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
                Confirmation::Ack(Some(_)) => Err(format!("no queue takes {key}").into()),
                Confirmation::Nack(_) => Err(format!("the broker refused {key}").into()),
            }
        })
    }
}

/// Consumes `consumer`'s queue (`analytics`, `archive`), handing each event to `follower`, until
/// the task is aborted. The queue is consumed once before this returns; should the consumer end later (the connection lost),
/// the task consumes it again, with a growing pause between tries.
pub async fn follow(
    broker: &crate::Broker,
    prefix: &str,
    consumer: &'static str,
    follower: Follower,
) -> Result<tokio::task::JoinHandle<()>, AmqpError> {
    let (broker, prefix) = (broker.clone(), prefix.to_string());
    let mut consuming = Some(consume_events(&broker, &prefix, consumer).await?);
    Ok(tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let opened = match consuming.take() {
                Some(opened) => Ok(opened),
                None => consume_events(&broker, &prefix, consumer).await,
            };
            match opened {
                Ok((connection, deliveries)) => {
                    deliver(deliveries, &follower).await;
                    drop(connection);
                }
                Err(error) => tracing::warn!(%error, "could not consume the order events"),
            }
            tracing::error!(?backoff, "the order events' consumer ended; consuming again");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }))
}

async fn consume_events(
    broker: &crate::Broker,
    prefix: &str,
    consumer: &'static str,
) -> Result<(Connection, lapin::Consumer), AmqpError> {
    let connection = broker.connect(&format!("http-rabbitmq {consumer} events")).await?;
    let channel = connection.create_channel().await?;
    channel.basic_qos(64, BasicQosOptions::default()).await?;
    declare(&channel, prefix, &[consumer]).await?;
    let queue = queue(prefix, consumer);
    let (deliveries, _) = crate::consume(&channel, &queue).await?;
    tracing::info!(%queue, "following the order events");
    Ok((connection, deliveries))
}

/// Hands each delivery to `follower` on a task of its own, until the consumer ends. Every
/// delivery is settled, whatever the follower does: acknowledged when handled (or never
/// handleable), returned to the queue when it failed, and dropped when it panicked (it would panic
/// again on every delivery), so that no prefetch place is ever held for good.
async fn deliver(mut deliveries: lapin::Consumer, follower: &Follower) {
    let failures = std::sync::Arc::new(links::Failures::default());
    while let Some(delivery) = deliveries.next().await {
        let delivery = match delivery {
            Ok(delivery) => delivery,
            Err(error) => {
                tracing::error!(%error, "the order events' consumer failed");
                return;
            }
        };
        let subject = text_header(delivery.properties.headers(), SUBJECT).unwrap_or_default().to_string();
        let follower = std::sync::Arc::clone(follower);
        let failures = std::sync::Arc::clone(&failures);
        tokio::spawn(async move {
            let handling = async {
                match links::decode(&subject, &delivery.data) {
                    Ok(event) => follower(event).await,
                    Err(error) => {
                        let error = natsrpc::escape::header_value(&error.to_string()).into_owned();
                        tracing::warn!(%error, "dropped an order event that cannot be handled");
                        Ok(())
                    }
                }
            };
            let settled = match AssertUnwindSafe(handling).catch_unwind().await {
                Ok(Ok(())) => {
                    failures.handled();
                    delivery.ack(BasicAckOptions::default()).await
                }
                Ok(Err(error)) => {
                    failures.failed(&error);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    delivery.nack(BasicNackOptions { requeue: true, ..BasicNackOptions::default() }).await
                }
                Err(_panic) => {
                    tracing::error!("an order event made its follower panic; dropped");
                    delivery.nack(BasicNackOptions { requeue: false, ..BasicNackOptions::default() }).await
                }
            };
            if let Err(error) = settled {
                tracing::warn!(%error, "an order event was not settled; the broker will send it again");
            }
        });
    }
}
