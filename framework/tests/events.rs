//! Typed events on a private nats-server with JetStream: both delivery modes round trip; a
//! JetStream listener that is down while events are published gets every one of them, once, when
//! it comes back; retried publishes are de-duplicated; a failing, panicking or invalid event is
//! counted and the service carries on (a failed JetStream event comes again); a listener whose
//! consumer is deleted under it opens it again; what no listener can take is kept as a dead letter.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use natsrpc::events::Publisher;
use natsrpc::testing::NatsServer;
use natsrpc::{Service, ServiceError, State};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
struct Pinged {
    #[validate(length(min = 1, max = 32))]
    id: String,
}
natsrpc::event!(Pinged, subject = "events.test.pinged", id = id);

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
struct Paid {
    #[validate(length(min = 1, max = 32))]
    id: String,
    #[validate(range(min = 1))]
    cents: u64,
}
natsrpc::event!(Paid, subject = "events.test.paid", id = id, jetstream = "TEST_EVENTS");

/// What the listeners saw, in order.
type Seen = Arc<Mutex<Vec<String>>>;

async fn on_ping(State(seen): State<Seen>, event: Pinged) -> Result<(), ServiceError> {
    if event.id == "panic" {
        panic!("a listener bug");
    }
    if event.id == "fail" {
        return Err(ServiceError::internal("cannot take this one"));
    }
    seen.lock().unwrap().push(event.id);
    Ok(())
}

async fn on_paid(State(seen): State<Seen>, event: Paid) -> Result<(), ServiceError> {
    let mut seen = seen.lock().unwrap();
    // Fails the first time it sees "flaky": JetStream brings it again.
    if event.id == "flaky" && !seen.iter().any(|s| s == "flaky:failed-once") {
        seen.push("flaky:failed-once".into());
        return Err(ServiceError::internal("not yet"));
    }
    seen.push(event.id);
    Ok(())
}

async fn wait_for(seen: &Seen, count: usize) -> Vec<String> {
    for _ in 0..200 {
        if seen.lock().unwrap().iter().filter(|s| !s.contains(':')).count() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // A moment more, for anything delivered twice to show up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    seen.lock().unwrap().iter().filter(|s| !s.contains(':')).cloned().collect()
}

fn listening(seen: &Seen) -> natsrpc::ServiceBuilder<Seen> {
    Service::builder("listening", "1.0.0").state(Arc::clone(seen)).listener(on_ping).listener(on_paid)
}

#[tokio::test]
async fn core_events_reach_the_listener_and_failures_do_not_stop_it() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let seen: Seen = Arc::default();
    let service = listening(&seen).start(&nats).await.unwrap();
    let publisher = Publisher::new(nats.clone());

    for id in ["a", "fail", "panic", "b"] {
        publisher.publish(&Pinged { id: id.into() }).await.unwrap();
    }
    // Raw bytes that are no event, and an event breaking a rule: counted, never handed over.
    nats.publish("events.test.pinged", "not json".into()).await.unwrap();
    nats.publish("events.test.pinged", r#"{"id": ""}"#.into()).await.unwrap();
    publisher.publish(&Pinged { id: "c".into() }).await.unwrap();

    assert_eq!(wait_for(&seen, 3).await, ["a", "b", "c"]);
    let stats = service.listener_stats().into_iter().find(|s| s.subject == "events.test.pinged").unwrap();
    assert_eq!((stats.received, stats.handled, stats.failed, stats.invalid), (7, 3, 2, 2));
    assert!(stats.last_error.contains("invalid event at id"), "{}", stats.last_error);
    // The same figures in the Services API's stats, beside the endpoints.
    let reply = nats.request("$SRV.STATS.listening", "".into()).await.unwrap();
    let reported: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    let pinged = reported["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["subject"] == "events.test.pinged")
        .unwrap();
    assert_eq!((pinged["received"].as_u64(), pinged["failed"].as_u64()), (Some(7), Some(2)), "{reported}");

    // An invalid event is refused before it is sent.
    let refused = publisher.publish(&Pinged { id: String::new() }).await.unwrap_err();
    assert!(matches!(refused, natsrpc::RpcError::Validation { .. }), "{refused}");

    // MessagePack events read as JSON ones do, by their Content-Type; one that names a codec no
    // endpoint speaks is counted invalid.
    let packed = Publisher::new(nats.clone()).with_codec(natsrpc::Codec::MsgPack);
    packed.publish(&Pinged { id: "d".into() }).await.unwrap();
    let mut headers = natsrpc::async_nats::HeaderMap::new();
    headers.insert("Content-Type", "text/csv");
    nats.publish_with_headers("events.test.pinged", headers, r#"{"id": "e"}"#.into()).await.unwrap();
    assert_eq!(wait_for(&seen, 4).await, ["a", "b", "c", "d"]);
    let stats = service.listener_stats().into_iter().find(|s| s.subject == "events.test.pinged").unwrap();
    assert_eq!((stats.received, stats.handled, stats.invalid), (9, 4, 3));
    service.stop(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn jetstream_events_wait_for_a_listener_that_is_down_and_arrive_once() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let seen: Seen = Arc::default();
    let publisher = Publisher::new(nats.clone());

    // Started once (its durable consumer exists), then down while events are published.
    listening(&seen).start(&nats).await.unwrap().stop(Duration::from_secs(2)).await.unwrap();
    let ids: Vec<String> = (0..20).map(|i| format!("pay-{i:02}")).collect();
    for id in &ids {
        publisher.publish(&Paid { id: id.clone(), cents: 100 }).await.unwrap();
    }
    // A publish retried after a lost acknowledgement: the stream keeps one.
    publisher.publish(&Paid { id: "pay-00".into(), cents: 100 }).await.unwrap();
    publisher.publish(&Paid { id: "flaky".into(), cents: 5 }).await.unwrap();
    assert!(seen.lock().unwrap().is_empty(), "nobody was listening");

    let service = listening(&seen).start(&nats).await.unwrap();
    let mut got = wait_for(&seen, 21).await;
    got.sort();
    let mut expected = ids.clone();
    expected.push("flaky".into());
    expected.sort();
    assert_eq!(got, expected, "every event once, the failed one after its redelivery");
    let stats = service.listener_stats().into_iter().find(|s| s.subject == "events.test.paid").unwrap();
    assert_eq!((stats.handled, stats.failed), (21, 1));
    service.stop(Duration::from_secs(2)).await.unwrap();

    // Acknowledged: a restart brings nothing again.
    let again = listening(&seen).start(&nats).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(again.listener_stats().iter().map(|s| s.received).sum::<u64>(), 0);
    again.stop(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn a_listener_whose_consumer_is_deleted_on_the_server_opens_it_again() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let seen: Seen = Arc::default();
    let service = listening(&seen).start(&nats).await.unwrap();
    let publisher = Publisher::new(nats.clone());
    publisher.publish(&Paid { id: "before".into(), cents: 1 }).await.unwrap();
    assert_eq!(wait_for(&seen, 1).await, ["before"]);

    // An operator deletes the durable consumer under the running listener.
    let stream = natsrpc::async_nats::jetstream::new(nats.clone()).get_stream("TEST_EVENTS").await.unwrap();
    stream.delete_consumer("listening_events_test_paid").await.unwrap();
    publisher.publish(&Paid { id: "after".into(), cents: 1 }).await.unwrap();
    // The consumer is made again; it starts from the stream's beginning, so the listener sees the
    // first event again (listeners de-duplicate by event id, as analytics does).
    let got = wait_for(&seen, 3).await;
    assert!(got.contains(&"after".to_string()), "{got:?}");
    service.stop(Duration::from_secs(2)).await.unwrap();
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
struct Refunded {
    #[validate(length(min = 1, max = 32))]
    id: String,
}
natsrpc::event!(Refunded, subject = "events.test.refunded", id = id, jetstream = "TEST_REFUNDS");

async fn on_refunded(_: Refunded) -> Result<(), ServiceError> {
    Err(ServiceError::internal("refunds are closed"))
}

/// An event no listener can take is kept, with why, instead of vanishing: one that failed on its
/// last delivery, and an invalid one at once. The streams natsrpc makes have limits; one that
/// exists keeps its own.
#[tokio::test]
async fn events_a_listener_cannot_take_are_kept_as_dead_letters_and_streams_have_limits() {
    use natsrpc::async_nats::jetstream;
    use natsrpc::events::{DEAD_CONSUMER, DEAD_DELIVERED, DEAD_REASON, STREAM_MAX_AGE, STREAM_MAX_MESSAGES};

    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let js = jetstream::new(nats.clone());
    // An operator's stream, with limits of its own: kept as they are.
    js.create_stream(jetstream::stream::Config {
        name: "TEST_REFUNDS".into(),
        subjects: vec!["events.test.refunded".into()],
        max_age: Duration::from_secs(3600),
        ..Default::default()
    })
    .await
    .unwrap();
    let service = Service::builder("refunding", "1.0.0").listener(on_refunded).start(&nats).await.unwrap();
    let kept = js.get_stream("TEST_REFUNDS").await.unwrap().info().await.unwrap().config.clone();
    assert_eq!((kept.max_age, kept.max_messages), (Duration::from_secs(3600), -1));
    let dead_stream = natsrpc::events::dead_letter_stream("TEST_REFUNDS");
    let made = js.get_stream(&dead_stream).await.unwrap().info().await.unwrap().config.clone();
    assert_eq!((made.max_age, made.max_messages), (STREAM_MAX_AGE, STREAM_MAX_MESSAGES));

    Publisher::new(nats.clone()).publish(&Refunded { id: "refund-1".into() }).await.unwrap();
    js.publish("events.test.refunded", r#"{"id":""}"#.into()).await.unwrap().await.unwrap();

    let mut dead = js.get_stream(&dead_stream).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while dead.info().await.unwrap().state.messages < 2 {
        assert!(std::time::Instant::now() < deadline, "no dead letters within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut letters = Vec::new();
    for sequence in 1..=2 {
        let letter = dead.get_raw_message(sequence).await.unwrap();
        let header =
            |name: &str| letter.headers.get(name).map(|v| v.as_str().to_string()).unwrap_or_default();
        assert_eq!(letter.subject.as_str(), "dead.events.test.refunded");
        assert_eq!(header(DEAD_CONSUMER), "refunding_events_test_refunded");
        letters.push((header(DEAD_REASON), header(DEAD_DELIVERED), letter.payload.clone()));
    }
    letters.sort();
    let (invalid, failed) = (&letters[0], &letters[1]);
    assert!(invalid.0.starts_with("invalid event at id"), "{invalid:?}");
    assert_eq!((invalid.1.as_str(), &invalid.2[..]), ("1", &br#"{"id":""}"#[..]));
    assert!(
        failed.0.contains("failed on each of 5 deliveries") && failed.0.contains("refunds are closed"),
        "{failed:?}"
    );
    assert_eq!(failed.1, "5");
    let stats = service.listener_stats().into_iter().next().unwrap();
    assert_eq!((stats.failed, stats.invalid), (5, 1));
    service.stop(Duration::from_secs(2)).await.unwrap();
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
struct Shipped {
    #[validate(length(min = 1, max = 32))]
    id: String,
}
natsrpc::event!(Shipped, subject = "events.test.shipped", id = id, jetstream = "TEST_SHIPPING");

/// Deliveries seen, and how many of them to fail with a 503 (what the listener needs is down).
type Outage = Arc<Mutex<(u32, u32)>>;

async fn on_shipped(State(outage): State<Outage>, _: Shipped) -> Result<(), ServiceError> {
    let mut outage = outage.lock().unwrap();
    outage.0 += 1;
    if outage.0 <= outage.1 {
        return Err(ServiceError::unavailable("the warehouse database is down"));
    }
    Ok(())
}

/// A listener that answers 503 (its database down) gets the event again for as long as that
/// lasts, past MAX_DELIVER, and nothing is dead-lettered; a consumer an earlier version made with
/// a server-side bound has it lifted.
#[tokio::test]
async fn events_whose_listener_is_unavailable_come_again_until_it_is_back_and_are_never_dead_letters() {
    use natsrpc::async_nats::jetstream;
    use natsrpc::events::MAX_DELIVER;

    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let js = jetstream::new(nats.clone());
    let stream = js
        .create_stream(jetstream::stream::Config {
            name: "TEST_SHIPPING".into(),
            subjects: vec!["events.test.shipped".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    // As an earlier version made it: the server stops delivering after MAX_DELIVER.
    stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("shipping_events_test_shipped".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            filter_subject: "events.test.shipped".into(),
            max_deliver: MAX_DELIVER,
            ..Default::default()
        })
        .await
        .unwrap();

    let failing = u32::try_from(MAX_DELIVER).unwrap() + 1;
    let outage: Outage = Arc::new(Mutex::new((0, failing)));
    let service = Service::builder("shipping", "1.0.0")
        .state(Arc::clone(&outage))
        .listener(on_shipped)
        .start(&nats)
        .await
        .unwrap();
    let mut consumer: jetstream::consumer::PullConsumer =
        stream.get_consumer("shipping_events_test_shipped").await.unwrap();
    assert_eq!(consumer.info().await.unwrap().config.max_deliver, -1, "the bound is lifted");

    Publisher::new(nats.clone()).publish(&Shipped { id: "ship-1".into() }).await.unwrap();
    // Pauses of 0.5, 1, 2, 4 and 5 s between the failing deliveries.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while outage.lock().unwrap().0 <= failing {
        assert!(std::time::Instant::now() < deadline, "delivered {} times only", outage.lock().unwrap().0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = service.listener_stats().into_iter().next().unwrap();
    assert_eq!((stats.failed, stats.handled), (u64::from(failing), 1));
    let mut dead = js.get_stream(natsrpc::events::dead_letter_stream("TEST_SHIPPING")).await.unwrap();
    assert_eq!(dead.info().await.unwrap().state.messages, 0, "nothing given up");
    service.stop(Duration::from_secs(2)).await.unwrap();
}
