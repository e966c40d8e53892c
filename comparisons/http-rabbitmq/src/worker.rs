//! A worker: takes requests from the services' queues, runs them through the services, sends the
//! replies, and acknowledges each request once its reply is on its way.
//!
//! A worker that dies before acknowledging leaves its requests to the broker, which hands them
//! to another worker (the services' idempotency makes the second run safe); one that is told to
//! stop cancels its consumers and finishes what it holds before closing.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicPublishOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use natsrpc::{Codec, Dispatcher, ServiceError};
use tokio_util::task::TaskTracker;

use crate::{
    AmqpError, CORRELATION_ID, DEADLINE, STATUS, SUBJECT, TRACEPARENT, declare_queue, number_header,
    text_header,
};

/// Serves `services` from `broker` (queues named with `queue_prefix`) until `shutdown`
/// resolves, holding at most `prefetch` unacknowledged requests per service; then drains for up
/// to `grace`.
///
/// It returns an error when the broker cannot be reached or a consumer fails (the connection was
/// lost): the caller starts it again ([`serve_until`] does), and the requests it held go back to
/// the queue meanwhile.
pub async fn serve(
    broker: &crate::Broker,
    queue_prefix: &str,
    services: Arc<Vec<Dispatcher>>,
    prefetch: u16,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AmqpError> {
    let connection = broker.connect("http-rabbitmq worker").await?;
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

/// [`serve`] until `stop` is cancelled, starting it again (with a growing pause) whenever it ends
/// for any other reason: a worker outlives a broker restart.
pub async fn serve_until(
    broker: &crate::Broker,
    queue_prefix: &str,
    services: Vec<Dispatcher>,
    prefetch: u16,
    grace: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let services = Arc::new(services);
    let mut backoff = Duration::from_millis(100);
    loop {
        let served = serve(
            broker,
            queue_prefix,
            Arc::clone(&services),
            prefetch,
            grace,
            stop.clone().cancelled_owned(),
        )
        .await;
        if stop.is_cancelled() {
            if let Err(error) = served {
                tracing::warn!(%error, "worker stopped with an error");
            }
            return;
        }
        match served {
            Ok(()) => tracing::error!(?backoff, "the worker's consumers ended; starting again"),
            Err(error) => tracing::error!(%error, ?backoff, "the worker lost its broker; starting again"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Answers one request and acknowledges it, whatever happens on the way: a panic (the pipeline
/// catches its own; this is for the rest) still answers the caller, with a 500 envelope, and still
/// acknowledges, so that the request's prefetch place is freed and no other worker gets it to
/// panic on in turn.
async fn handle(service: &Dispatcher, channel: &Channel, delivery: Delivery) {
    let subject = text_header(delivery.properties.headers(), SUBJECT).unwrap_or_default();
    let subject = natsrpc::escape::header_value(subject).into_owned();
    let answered = AssertUnwindSafe(answer(service, channel, &delivery)).catch_unwind().await;
    if answered.is_err() {
        let correlation_id = nuid::next().to_string();
        tracing::error!(%correlation_id, %subject, "a request panicked in the worker");
        let error = ServiceError::internal(format!("internal error (correlation id {correlation_id})"));
        let body = natsrpc::envelope::encode_failure(Codec::Json, &error);
        let failed =
            Reply { status: 500, codec: Codec::Json, correlation_id: Some(&correlation_id), body: &body };
        send_reply(channel, &delivery, failed, &subject).await;
    }
    // Once, after the reply: a worker that dies before this line leaves the request to another.
    if let Err(error) = delivery.ack(BasicAckOptions::default()).await {
        tracing::warn!(%error, %subject, "request not acknowledged");
    }
}

async fn answer(service: &Dispatcher, channel: &Channel, delivery: &Delivery) {
    let properties = &delivery.properties;
    let subject = text_header(properties.headers(), SUBJECT).unwrap_or_default();
    // The head is read here, once: past this point no code looks at an AMQP property.
    let mut head = natsrpc::RequestHead::new(subject);
    if let Some(value) = properties.content_type() {
        head = head.with_content_type(value.as_str());
    }
    if let Some(id) = text_header(properties.headers(), CORRELATION_ID) {
        head = head.with_correlation_id(id);
    }
    if let Some(traceparent) = text_header(properties.headers(), TRACEPARENT) {
        head = head.with_traceparent(traceparent);
    }
    if let Some(millis) = number_header(properties.headers(), DEADLINE) {
        head = head.with_budget(Duration::from_millis(millis.into()));
    }
    let dispatched = service.dispatch(head, delivery.data.clone().into()).await;
    let reply = Reply {
        status: dispatched.status,
        codec: dispatched.codec,
        correlation_id: dispatched.correlation_id.as_deref(),
        body: &dispatched.body,
    };
    send_reply(channel, delivery, reply, &natsrpc::escape::header_value(subject)).await;
}

/// A reply to send to a request's `reply_to`.
struct Reply<'a> {
    status: u16,
    codec: Codec,
    correlation_id: Option<&'a str>,
    body: &'a [u8],
}

async fn send_reply(channel: &Channel, delivery: &Delivery, reply: Reply<'_>, subject: &str) {
    let properties = &delivery.properties;
    let Some(reply_to) = properties.reply_to() else { return };
    let mut headers = FieldTable::default();
    headers.insert(STATUS.into(), AMQPValue::LongUInt(u32::from(reply.status)));
    if let Some(id) = reply.correlation_id {
        headers.insert(CORRELATION_ID.into(), AMQPValue::LongString(id.into()));
    }
    let mut reply_properties =
        BasicProperties::default().with_content_type(reply.codec.content_type().into()).with_headers(headers);
    if let Some(id) = properties.correlation_id() {
        reply_properties = reply_properties.with_correlation_id(id.clone());
    }
    let published = channel
        .basic_publish(
            "".into(),
            reply_to.clone(),
            BasicPublishOptions::default(),
            reply.body,
            reply_properties,
        )
        .await;
    if let Err(error) = published {
        tracing::warn!(%error, subject, "reply not sent");
    }
}
