//! A worker: takes requests from the services' queues, runs them through the services, sends the
//! replies, and acknowledges each request once its reply is on its way.
//!
//! A worker that dies before acknowledging leaves its requests to the broker, which hands them
//! to another worker (the services' idempotency makes the second run safe); one that is told to
//! stop cancels its consumers and finishes what it holds before closing.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicPublishOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use natsrpc::Dispatcher;
use tokio_util::task::TaskTracker;

use crate::{
    AmqpError, CORRELATION_ID, DEADLINE, STATUS, SUBJECT, declare_queue, number_header, text_header,
};

/// Serves `services` from the broker at `url` (queues named with `queue_prefix`) until `shutdown`
/// resolves, holding at most `prefetch` unacknowledged requests per service; then drains for up
/// to `grace`.
pub async fn serve(
    url: &str,
    queue_prefix: &str,
    services: Vec<Dispatcher>,
    prefetch: u16,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AmqpError> {
    let connection = crate::connect(url, "http-rabbitmq worker").await?;
    let channel = connection.create_channel().await?;
    channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
    let mut consumers = Vec::new();
    let mut tags = Vec::new();
    for (index, service) in services.iter().enumerate() {
        let queue = declare_queue(&channel, queue_prefix, service.service()).await?;
        let (consumer, tag) = crate::consume(&channel, &queue).await?;
        consumers.push(consumer.map(move |delivery| (index, delivery)));
        tags.push(tag);
    }
    tracing::info!(services = services.len(), prefetch, "worker consuming");

    let services = Arc::new(services);
    let tracker = TaskTracker::new();
    let mut deliveries = futures::stream::select_all(consumers);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            next = deliveries.next() => match next {
                Some((index, Ok(delivery))) => {
                    let services = Arc::clone(&services);
                    let channel = channel.clone();
                    tracker.spawn(async move { handle(&services[index], &channel, delivery).await });
                }
                Some((_, Err(error))) => return Err(error.into()),
                None => break,
            },
        }
    }
    tracing::info!(?grace, "worker draining");
    for tag in tags {
        channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await?;
    }
    tracker.close();
    let _ = tokio::time::timeout(grace, tracker.wait()).await;
    // Anything not acknowledged by now goes back to the queue as the connection closes.
    connection.close(200, "worker stopped".into()).await?;
    Ok(())
}

async fn handle(service: &Dispatcher, channel: &Channel, delivery: Delivery) {
    let properties = &delivery.properties;
    let subject = text_header(properties.headers(), SUBJECT).unwrap_or_default().to_string();
    let content_type = properties.content_type().as_ref().map(|value| value.as_str().to_string());
    let correlation_id = text_header(properties.headers(), CORRELATION_ID).map(str::to_string);
    let deadline = number_header(properties.headers(), DEADLINE).map(|ms| Duration::from_millis(ms.into()));
    let body = delivery.data.clone().into();
    let reply = service
        .dispatch_within(&subject, content_type.as_deref(), correlation_id.as_deref(), deadline, body)
        .await;

    if let Some(reply_to) = properties.reply_to() {
        let mut headers = FieldTable::default();
        headers.insert(STATUS.into(), AMQPValue::LongUInt(u32::from(reply.status)));
        if let Some(id) = &reply.correlation_id {
            headers.insert(CORRELATION_ID.into(), AMQPValue::LongString(id.clone().into()));
        }
        let mut reply_properties = BasicProperties::default()
            .with_content_type(reply.codec.content_type().into())
            .with_headers(headers);
        if let Some(id) = properties.correlation_id() {
            reply_properties = reply_properties.with_correlation_id(id.clone());
        }
        let published = channel
            .basic_publish(
                "".into(),
                reply_to.clone(),
                BasicPublishOptions::default(),
                &reply.body,
                reply_properties,
            )
            .await;
        if let Err(error) = published {
            tracing::warn!(%error, %subject, "reply not sent");
        }
    }
    // Once, after the reply: a worker that dies before this line leaves the request to another.
    if let Err(error) = delivery.ack(BasicAckOptions::default()).await {
        tracing::warn!(%error, %subject, "request not acknowledged");
    }
}
