//! Concurrency: no oversell under concurrent reservations, and no double charge under retries.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ecommerce::domain::{MemoryStore, PaymentRetry, Shop};
use ecommerce::payloads::{Payloads, Size};
use faults::{FaultSettings, Faults};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_never_oversell() {
    let shop = Arc::new(Shop::new(MemoryStore::with_catalog(3, 100), Arc::new(Faults::none())));
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let shop = Arc::clone(&shop);
            tokio::spawn(async move { shop.reserve_inventory(ecommerce::payloads::contended_cart(i)).await })
        })
        .collect();
    let mut granted = 0;
    let mut second_units = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(_) => {
                granted += 1;
                if i % 3 == 0 {
                    second_units += 2;
                }
            }
            Err(ecommerce::ShopError::OutOfStock { .. }) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(granted, 100, "exactly the stock there was");
    assert_eq!(shop.store().available_now("SKU-00000"), Some(0));
    assert_eq!(shop.store().available_now("SKU-00001"), Some(100 - second_units), "all or nothing per cart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retried_payments_and_retried_orders_never_charge_twice() {
    // Half of all payment attempts fail transiently, half of those after the charge went through.
    let faults = FaultSettings { seed: 11, payment_transient_rate: 0.5, ..FaultSettings::default() };
    let shop = Arc::new(
        Shop::new(MemoryStore::with_catalog(50, 1_000_000), Arc::new(Faults::new(faults)))
            .with_payment_retry(PaymentRetry { attempts: 3, backoff: std::time::Duration::from_millis(1) }),
    );
    let mut payloads = Payloads::new(12, 50);
    let orders: Vec<_> = (0..150).map(|_| payloads.create_order(Size::Small)).collect();
    // Each order is sent three times at once, as an impatient client would.
    let tasks: Vec<_> = orders
        .iter()
        .flat_map(|order| std::iter::repeat_n(order.clone(), 3))
        .map(|order| {
            let shop = Arc::clone(&shop);
            tokio::spawn(async move { shop.create_order(order).await })
        })
        .collect();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for task in tasks {
        let key = match task.await.unwrap() {
            Ok(_) => "placed".to_string(),
            Err(error) => natsrpc::ServiceError::from(error).code,
        };
        *outcomes.entry(key).or_default() += 1;
    }
    assert!(
        outcomes.get("payment_unavailable").copied().unwrap_or(0) > 0,
        "the faults did bite: {outcomes:?}"
    );

    let mut placed = Vec::new();
    for order in &orders {
        if let Ok(Some(receipt)) = ecommerce::domain::ShopStore::order(shop.store(), &order.order_id).await {
            placed.push(receipt);
        }
    }
    let charges = shop.gateway().charges();
    assert_eq!(
        charges.len(),
        placed.len(),
        "one charge per placed order, none for abandoned ones: {outcomes:?}"
    );
    let charged: u64 = charges.iter().map(|c| c.amount_cents).sum();
    let receipts: u64 = placed.iter().map(|r| r.charged.amount_cents).sum();
    assert_eq!(charged, receipts);
}
