//! The archive on NATS: a service of listeners on the shop's JetStream events. While its database
//! is down, events wait in the stream (each failure a 503, so none is dead-lettered however long
//! it lasts); once it is back, each order is archived once.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use archive::contracts::GetArchivedOrder;
use archive::server::PostgresServer;
use archive::{Archive, ArchivedEvent};
use ecommerce_contracts::events::OrderPlacedEvent;
use natsrpc::events::Publisher;
use natsrpc::testing::NatsServer;

async fn wait_for(archive: &Archive, orders: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let archived = archive.count(ArchivedEvent::Placed).await.unwrap_or(0);
        if archived >= orders {
            return;
        }
        assert!(Instant::now() < deadline, "{archived} of {orders} archived within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn orders_wait_in_the_stream_while_the_database_is_down_and_are_archived_once_after() {
    let nats_server = NatsServer::start().unwrap();
    let mut postgres = PostgresServer::start().unwrap();
    let nats = natsrpc::connect(&nats_server.url()).await.unwrap();
    let archive = Arc::new(Archive::new(&postgres.url()).unwrap());
    let service = archive::service(Arc::clone(&archive)).start(&nats).await.unwrap();
    let publisher = Publisher::new(nats.clone());
    let orders: Vec<String> = (0..40).map(|i| format!("ord_on_nats_{i:03}")).collect();
    let publish = |order_id: &String| {
        let event = OrderPlacedEvent {
            order_id: order_id.clone(),
            customer_id: "cus_nats".into(),
            amount_cents: 990,
            currency: "EUR".into(),
            units: 3,
            placed_at_ms: 1,
        };
        let publisher = publisher.clone();
        async move { publisher.publish(&event).await }
    };
    for order in &orders[..10] {
        publish(order).await.unwrap();
    }
    wait_for(&archive, 10, Duration::from_secs(10)).await;

    postgres.kill();
    for order in &orders[10..] {
        publish(order).await.unwrap();
    }
    // A retried publish: JetStream keeps one.
    publish(&orders[39]).await.unwrap();
    // Long enough for more deliveries than MAX_DELIVER at the shortest pauses.
    tokio::time::sleep(Duration::from_secs(4)).await;
    postgres.restart().unwrap();
    wait_for(&archive, 40, Duration::from_secs(20)).await;

    let mut held = archive.holds(ArchivedEvent::Placed, &orders).await.unwrap();
    held.sort();
    assert_eq!(held, orders, "each order once");
    let js = natsrpc::async_nats::jetstream::new(nats.clone());
    let mut dead = js.get_stream(natsrpc::events::dead_letter_stream("ECOMMERCE_EVENTS")).await.unwrap();
    assert_eq!(dead.info().await.unwrap().state.messages, 0, "no order given up");
    let stats = service.listener_stats();
    let placed = stats.iter().find(|s| s.subject == "events.ecommerce.order_placed").unwrap();
    assert_eq!(placed.handled, 40);
    assert!(placed.failed >= 30, "the deliveries while the database was down failed: {placed:?}");
    assert!(!placed.last_error.contains("ord_"), "no value of an event in the stats: {placed:?}");

    // The record, read back over NATS; an order never archived, and an id that is none.
    let client = natsrpc::Client::new(nats.clone());
    let record = client.call(&GetArchivedOrder { order_id: orders[39].clone() }).await.unwrap();
    assert_eq!(record.events.len(), 1);
    let row = &record.events[0];
    assert_eq!(
        (row.event.as_str(), row.amount_cents, row.units, row.currency.as_deref()),
        ("placed", 990, Some(3), Some("EUR"))
    );
    let unknown = client.call(&GetArchivedOrder { order_id: "ord_never_placed".into() }).await.unwrap_err();
    assert_eq!((unknown.status(), unknown.code()), (Some(404), Some("order_not_archived")));
    let invalid = client.call(&GetArchivedOrder { order_id: "nope\u{0}".into() }).await.unwrap_err();
    assert_eq!(invalid.status(), Some(400));
    postgres.kill();
    let down = client.call(&GetArchivedOrder { order_id: orders[0].clone() }).await.unwrap_err();
    assert_eq!(down.status(), Some(503), "{down}");
    service.stop(Duration::from_secs(2)).await.unwrap();
}
