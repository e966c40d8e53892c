//! With `order_events` on, the NATS stack carries the shop's events to analytics over JetStream:
//! every placed order is counted exactly once in analytics' aggregates (replayed orders publish
//! nothing again), and every cancellation too.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use analytics::contracts::{QueryAggregates, Window};
use ecommerce::contracts::CancelOrder;
use natsrpc::Client;
use natsrpc::testing::NatsServer;
use stack::Hosting;

async fn counted(client: &Client, kind: &str) -> (u64, f64) {
    let now = analytics::contracts::now_ms();
    let query = QueryAggregates {
        event_type: Some(kind.into()),
        window: Window { from_ms: now - 600_000, to_ms: now + 1 },
    };
    let types = client.call(&query).await.unwrap().types;
    types.first().map_or((0, 0.0), |t| (t.count, t.sum))
}

async fn wait_for(client: &Client, kind: &str, count: u64) -> (u64, f64) {
    for _ in 0..100 {
        if counted(client, kind).await.0 >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A moment more, for anything counted twice to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    counted(client, kind).await
}

#[tokio::test]
async fn every_order_placed_is_counted_once_in_analytics() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let hosting = Hosting { order_events: true, skus: 50, units: 1_000_000, ..Hosting::default() };
    let services = hosting.start_on(&nats).await.unwrap();
    let client = Client::new(nats.clone());

    let mut payloads = ecommerce::payloads::Payloads::new(3, 50);
    let orders: Vec<_> = (0..30).map(|_| payloads.create_order(ecommerce::payloads::Size::Small)).collect();
    let calls = orders.iter().map(|order| client.call(order));
    let receipts: Vec<_> = futures::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
    // Sent again, as a client that missed the answers would: placed once, so no new event.
    for order in &orders[..10] {
        client.call(order).await.unwrap();
    }
    for receipt in &receipts[..5] {
        client.call(&CancelOrder { order_id: receipt.order_id.clone(), reason: None }).await.unwrap();
    }

    let revenue: f64 = receipts.iter().map(|r| r.charged.amount_cents as f64 / 100.0).sum();
    let (count, sum) = wait_for(&client, "order_placed", 30).await;
    assert_eq!(count, 30, "each order once");
    assert!((sum - revenue).abs() < 1e-6, "revenue {sum} against {revenue}");
    let (cancelled, _) = wait_for(&client, "order_cancelled", 5).await;
    assert_eq!(cancelled, 5, "an order's cancellation is its own event, though it shares the order's id");
    for service in services {
        service.stop(Duration::from_secs(2)).await.unwrap();
    }
}
