//! Every endpoint through the natsrpc pipeline (in-process harness): happy paths, every validation
//! rule with its exact path, and the shop's business rules.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ecommerce::contracts::{OrderStatus, Restock, StockLine};
use ecommerce::domain::{MemoryStore, Shop};
use ecommerce::payloads::{Payloads, Size};
use faults::{FaultSettings, Faults};
use natsrpc::RpcError;
use natsrpc::testing::Harness;

fn shop(units: u64, faults: FaultSettings) -> Arc<Shop<MemoryStore>> {
    Arc::new(Shop::new(MemoryStore::with_catalog(50, units), Arc::new(Faults::new(faults))))
}

fn harness(shop: &Arc<Shop<MemoryStore>>) -> Harness {
    Harness::new(ecommerce::service(Arc::clone(shop))).unwrap()
}

#[tokio::test]
async fn every_endpoint_answers_its_happy_path() {
    let shop = shop(1_000, FaultSettings::default());
    let api = harness(&shop);
    let mut payloads = Payloads::new(1, 50);

    for size in [Size::Small, Size::Medium, Size::Large] {
        let order = payloads.create_order(size);
        let receipt = api.call(&order).await.unwrap();
        assert_eq!(receipt.status, OrderStatus::Placed);
        assert_eq!(receipt.lines.len(), order.items.len());
        assert_eq!(receipt.charged, order.payment.amount);
        assert_eq!(receipt.subtotal_cents - receipt.discount_cents, receipt.charged.amount_cents);
        assert_eq!(receipt.payment.card_last4.as_deref(), Some("4242"));
        let body = serde_json::to_string(&receipt).unwrap();
        assert!(!body.contains("4242424242424242") && !body.contains("\"123\""), "card data never echoed");

        assert_eq!(api.call(&payloads.get_order(&order.order_id)).await.unwrap(), receipt);
    }

    let order = payloads.create_order(Size::Small);
    let receipt = api.call(&order).await.unwrap();
    let units: u64 = order.items.iter().map(|i| u64::from(i.quantity)).sum();
    let cancelled = api.call(&payloads.cancel_order(&order.order_id)).await.unwrap();
    assert_eq!((cancelled.refunded.clone(), cancelled.released_units), (receipt.charged.clone(), units));
    assert_eq!(api.call(&payloads.get_order(&order.order_id)).await.unwrap().status, OrderStatus::Cancelled);
    let again = api.call(&payloads.cancel_order(&order.order_id)).await.unwrap_err();
    assert_eq!(again.code(), Some("already_cancelled"));

    let reserved = api.call(&payloads.reserve_inventory()).await.unwrap();
    assert!(!reserved.remaining.is_empty());
    let restocked = api.call(&Restock { sku: "SKU-00003".into(), quantity: 7 }).await.unwrap();
    assert_eq!(restocked.sku, "SKU-00003");
    assert!(restocked.available >= 7);
}

#[tokio::test]
async fn every_rule_is_reported_with_its_exact_path() {
    let api = harness(&shop(1_000, FaultSettings::default()));
    let mut payloads = Payloads::new(2, 50);
    let cases = payloads.invalid_create_orders();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    for case in cases {
        let error = api.call(&case.request).await.unwrap_err();
        let RpcError::Validation { violations, .. } = error else {
            panic!("{} {}: expected a validation error, got {error:?}", case.path, case.code)
        };
        let found: Vec<(&str, &str)> =
            violations.iter().map(|v| (v.path.as_str(), v.code.as_str())).collect();
        assert!(
            found.contains(&(case.path.as_str(), case.code)),
            "expected {} {}, got {found:?}",
            case.path,
            case.code
        );
    }
}

#[tokio::test]
async fn a_broken_order_reports_every_violation_at_once() {
    let api = harness(&shop(1_000, FaultSettings::default()));
    let mut order = Payloads::new(3, 50).create_order(Size::Medium);
    order.customer.email = "nope".into();
    order.items[1].quantity = 0;
    order.payment.card.as_mut().unwrap().number = "1234".into();
    order.payment.amount.amount_cents = 1;
    let RpcError::Validation { violations, .. } = api.call(&order).await.unwrap_err() else { panic!() };
    let paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
    assert_eq!(
        paths,
        ["customer.email", "items[1].quantity", "payment.amount.amount_cents", "payment.card.number"]
    );
    let amount = &violations[2];
    assert!(amount.params.contains_key("expected"), "{amount:?}");
}

#[tokio::test]
async fn stock_and_order_ids_follow_the_business_rules() {
    let shop = shop(5, FaultSettings::default());
    let api = harness(&shop);
    let mut payloads = Payloads::new(4, 50);

    let mut order = payloads.create_order(Size::Small);
    order.items.truncate(1);
    order.items[0].quantity = 6;
    order.payment.amount.amount_cents = ecommerce::contracts::rules::amount_due_cents(&order);
    let error = api.call(&order).await.unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(409), Some("out_of_stock")));
    assert_eq!(shop.store().available_now(&order.items[0].sku), Some(5), "nothing taken");

    let mut unknown = payloads.reserve_inventory();
    unknown.lines = vec![StockLine { sku: "NOPE-1".into(), quantity: 1 }];
    assert_eq!(api.call(&unknown).await.unwrap_err().code(), Some("unknown_sku"));

    let missing = api.call(&payloads.get_order("ord_doesnotexist")).await.unwrap_err();
    assert_eq!((missing.status(), missing.code()), (Some(404), Some("order_not_found")));

    // The same id with the same content is a retry: same receipt. With other content: refused.
    order.items[0].quantity = 1;
    order.payment.amount.amount_cents = ecommerce::contracts::rules::amount_due_cents(&order);
    let first = api.call(&order).await.unwrap();
    assert_eq!(api.call(&order).await.unwrap(), first);
    assert_eq!(shop.gateway().charges().len(), 1, "charged once");
    let mut other = order.clone();
    other.customer.name = "Someone Else".into();
    assert_eq!(api.call(&other).await.unwrap_err().code(), Some("order_id_reused"));
}

#[tokio::test]
async fn injected_faults_come_back_as_their_kinds() {
    let declines = shop(1_000, FaultSettings { payment_decline_rate: 1.0, ..FaultSettings::default() });
    let order = Payloads::new(5, 50).create_order(Size::Small);
    let error = harness(&declines).call(&order).await.unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(422), Some("payment_declined")));
    let sku = &order.items[0].sku;
    assert_eq!(declines.store().available_now(sku), Some(1_000), "a declined order releases its stock");

    let internal = shop(1_000, FaultSettings { internal_error_rate: 1.0, ..FaultSettings::default() });
    let error = harness(&internal).call(&order).await.unwrap_err();
    assert_eq!(error.status(), Some(500));

    let empty = shop(1_000, FaultSettings { out_of_stock_rate: 1.0, ..FaultSettings::default() });
    assert_eq!(harness(&empty).call(&order).await.unwrap_err().code(), Some("out_of_stock"));
}
