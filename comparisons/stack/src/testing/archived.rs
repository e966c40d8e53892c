//! For the tests of a stack's archive: orders' events to publish, a follower that only counts,
//! and waiting for the archive to hold so many orders.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use archive::{Archive, ArchivedEvent};
use ecommerce::contracts::events::OrderPlacedEvent;
use ecommerce::domain::ShopEvent;

use crate::links::Follower;

/// `order_id` placed by `customer` (1 unit, 1 EUR).
pub fn placed(order_id: &str, customer: &str) -> ShopEvent {
    ShopEvent::Placed(OrderPlacedEvent {
        order_id: order_id.into(),
        customer_id: customer.into(),
        amount_cents: 100,
        currency: "EUR".into(),
        units: 1,
        placed_at_ms: 1,
    })
}

/// A follower that counts what it is handed (as analytics would, beside the archive), and its count.
pub fn counting() -> (Follower, Arc<AtomicU64>) {
    let counted = Arc::new(AtomicU64::new(0));
    let counting = Arc::clone(&counted);
    let follower: Follower = Arc::new(move |_| {
        counting.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    });
    (follower, counted)
}

/// Waits until `count` reaches `at_least`; `Err` says how far it got within `within`.
pub async fn counted(count: &AtomicU64, at_least: u64, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let now = count.load(Ordering::Relaxed);
        if now >= at_least {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("{now} of {at_least} counted within {within:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `archive` holds `at_least` placed orders; `Err` says how far it got within `within`.
pub async fn archived(archive: &Archive, at_least: u64, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let now = archive.count(ArchivedEvent::Placed).await.unwrap_or(0);
        if now >= at_least {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("{now} of {at_least} archived within {within:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
