//! The shop's outbox: an event whose publishing fails is noted and published again by the relay
//! once it can be; an order not placed leaves no event behind.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ecommerce::contracts::CancelOrder;
use ecommerce::domain::{EventSink, MemoryStore, Published, Shop, ShopEvent, ShopStore};
use ecommerce::payloads::{Payloads, Size};
use faults::{FaultSettings, Faults};

/// A broker that can be down, keeping what it takes.
#[derive(Default)]
struct Broker {
    down: AtomicBool,
    taken: Mutex<Vec<ShopEvent>>,
}

impl EventSink for Broker {
    fn publish(&self, event: ShopEvent) -> Published<'_> {
        Box::pin(async move {
            if self.down.load(Ordering::SeqCst) {
                return Err("the broker is down".into());
            }
            self.taken.lock().unwrap().push(event);
            Ok(())
        })
    }
}

fn order_ids(events: &[ShopEvent]) -> Vec<(bool, String)> {
    let mut ids: Vec<(bool, String)> = events
        .iter()
        .map(|event| match event {
            ShopEvent::Placed(placed) => (true, placed.order_id.clone()),
            ShopEvent::Cancelled(cancelled) => (false, cancelled.order_id.clone()),
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn events_that_did_not_go_out_are_published_by_the_relay_and_an_order_not_placed_has_none() {
    let broker = Arc::new(Broker::default());
    let shop = Shop::new(MemoryStore::with_catalog(50, 1_000_000), Arc::new(Faults::none()))
        .with_events(Arc::clone(&broker) as Arc<dyn EventSink>);
    let mut payloads = Payloads::new(3, 50);

    let sent_at_once = shop.create_order(payloads.create_order(Size::Small)).await.unwrap();
    broker.down.store(true, Ordering::SeqCst);
    let placed_while_down = shop.create_order(payloads.create_order(Size::Small)).await.unwrap();
    let cancelled_while_down =
        shop.cancel_order(CancelOrder { order_id: sent_at_once.order_id.clone(), reason: None }).await;
    assert!(cancelled_while_down.is_ok(), "{cancelled_while_down:?}");
    assert_eq!(order_ids(&broker.taken.lock().unwrap()), [(true, sent_at_once.order_id.clone())]);
    let noted = shop.store().unsent(u64::MAX, 10).await.unwrap();
    assert_eq!(noted.len(), 2, "both events that did not go out are noted: {noted:?}");

    // Too recent for the relay: their own requests may still be publishing them.
    assert_eq!(shop.relay_unsent().await.unwrap(), 0);
    // The broker still down: the relay publishes nothing, and keeps the notes.
    broker.down.store(false, Ordering::SeqCst);
    let store = shop.store();
    let late = store.unsent(u64::MAX, 10).await.unwrap();
    for mut event in late {
        // As if noted long enough ago.
        store.sent(&event).await.unwrap();
        event.at_ms -= ecommerce::domain::RELAY_AFTER.as_millis() as u64 + 1;
        store.note_unsent(&event).await.unwrap();
    }
    broker.down.store(true, Ordering::SeqCst);
    assert_eq!(shop.relay_unsent().await.unwrap(), 0);
    assert_eq!(store.unsent(u64::MAX, 10).await.unwrap().len(), 2);

    broker.down.store(false, Ordering::SeqCst);
    assert_eq!(shop.relay_unsent().await.unwrap(), 2);
    let mut expected = vec![
        (true, sent_at_once.order_id.clone()),
        (true, placed_while_down.order_id.clone()),
        (false, sent_at_once.order_id.clone()),
    ];
    expected.sort();
    assert_eq!(order_ids(&broker.taken.lock().unwrap()), expected);
    assert!(store.unsent(u64::MAX, 10).await.unwrap().is_empty(), "crossed out once published");
    let placed = broker.taken.lock().unwrap().iter().find_map(|event| match event {
        ShopEvent::Placed(placed) if placed.order_id == placed_while_down.order_id => Some(placed.clone()),
        _ => None,
    });
    let placed = placed.unwrap();
    assert_eq!(placed.amount_cents, placed_while_down.charged.amount_cents, "rebuilt from the receipt");
    assert_eq!(placed.customer_id, placed_while_down.customer_id);

    // Every payment declined: the order is not placed, and its note goes with it.
    let declining = Shop::new(
        MemoryStore::with_catalog(50, 1_000_000),
        Arc::new(Faults::new(FaultSettings {
            seed: 1,
            payment_decline_rate: 1.0,
            ..FaultSettings::default()
        })),
    )
    .with_events(Arc::clone(&broker) as Arc<dyn EventSink>);
    assert!(declining.create_order(payloads.create_order(Size::Small)).await.is_err());
    assert!(declining.store().unsent(u64::MAX, 10).await.unwrap().is_empty());
}
