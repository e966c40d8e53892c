//! With `order_events` on, the NATS stack carries the shop's events to analytics over JetStream:
//! every placed order is counted exactly once in analytics' aggregates (replayed orders publish
//! nothing again), and every cancellation too.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use natsrpc::Client;
use natsrpc::testing::NatsServer;
use stack::Hosting;
use stack::testing::checks;

#[tokio::test]
async fn every_order_placed_is_counted_once_in_analytics() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let hosting = Hosting { order_events: true, skus: 50, units: 1_000_000, ..Hosting::default() };
    let services = hosting.start_on(&nats).await.unwrap();
    checks::orders_counted_once(&Client::new(nats.clone()), 3).await.unwrap();
    for service in services {
        service.stop(Duration::from_secs(2)).await.unwrap();
    }
}
