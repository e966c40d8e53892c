//! The shop's outbox: an event is noted in the store before the change it tells of, crossed out
//! once published, and published again by a relay while it is not. A broker (or a store) that dies
//! between an order's recording and its event's publishing therefore delays the event, and never
//! loses it: the relay finds the note and, once the store says the order was placed (or
//! cancelled), publishes it again. An event may so go out twice; its id comes from its order, and
//! analytics counts each id once.

use std::sync::Arc;
use std::time::Duration;

use super::{Shop, ShopError, ShopEvent, ShopStore, Unsent, now_ms};
use crate::contracts::events::{OrderCancelledEvent, OrderPlacedEvent};
use crate::contracts::{OrderReceipt, OrderStatus};
use crate::domain::store::EventKind;

/// A note older than this is taken as an event whose publishing failed (or whose instance died).
pub const RELAY_AFTER: Duration = Duration::from_secs(5);

/// How often a stack's relay looks at the outbox.
pub const RELAY_EVERY: Duration = Duration::from_secs(1);

/// The most events one look at the outbox publishes.
const RELAY_BATCH: usize = 256;

/// `order_placed` of the order `receipt` records, placed at `at_ms`.
pub(super) fn placed(receipt: &OrderReceipt, at_ms: u64) -> OrderPlacedEvent {
    OrderPlacedEvent {
        order_id: receipt.order_id.clone(),
        customer_id: receipt.customer_id.clone(),
        amount_cents: receipt.charged.amount_cents,
        currency: receipt.charged.currency.clone(),
        units: receipt.lines.iter().map(|line| u64::from(line.quantity)).sum(),
        placed_at_ms: at_ms,
    }
}

/// `order_cancelled` of the order `receipt` records, `refunded_cents` given back at `at_ms`.
pub(super) fn cancelled(receipt: &OrderReceipt, refunded_cents: u64, at_ms: u64) -> OrderCancelledEvent {
    OrderCancelledEvent {
        order_id: receipt.order_id.clone(),
        customer_id: receipt.customer_id.clone(),
        refunded_cents,
        cancelled_at_ms: at_ms,
    }
}

impl<S: ShopStore> Shop<S> {
    /// Notes the `kind` event of `order_id` in the outbox, when the shop publishes events (asking
    /// the store again while it fails, until `until_ms`: a note is the same however often made);
    /// the note to hand to [`Shop::announce`].
    pub(super) async fn note(
        &self,
        kind: EventKind,
        order_id: &str,
        until_ms: u64,
    ) -> Result<Option<Unsent>, ShopError> {
        if self.events.is_none() {
            return Ok(None);
        }
        let unsent = Unsent { kind, order_id: order_id.to_string(), at_ms: now_ms() };
        self.until_answered(order_id, until_ms, || self.store.note_unsent(&unsent)).await?;
        Ok(Some(unsent))
    }

    /// Crosses out a note whose change did not happen (one that stays, the relay drops later).
    pub(super) async fn forget(&self, unsent: Option<Unsent>) {
        if let Some(unsent) = unsent {
            self.cross_out(&unsent).await;
        }
    }

    /// Publishes the event `event` makes of its note's time, and crosses the note out; one that
    /// does not go out stays noted, for the relay. Without events (no note), nothing is made.
    pub(super) async fn announce(&self, unsent: Option<Unsent>, event: impl FnOnce(u64) -> ShopEvent) {
        let (Some(sink), Some(unsent)) = (&self.events, unsent) else { return };
        match sink.publish(event(unsent.at_ms)).await {
            Ok(()) => self.cross_out(&unsent).await,
            Err(error) => {
                tracing::warn!(%error, order_id = %unsent.order_id, "an event did not go out; the relay will send it again");
            }
        }
    }

    /// Publishes again the events noted for longer than [`RELAY_AFTER`] whose change the store
    /// shows, and drops the notes of changes that never happened (noted longer ago than a claim
    /// lasts twice, with no such order); answers how many it published. A publish that fails ends
    /// the round; a note the store fails on is left for the next; the outbox unreadable is the
    /// error.
    pub async fn relay_unsent(&self) -> Result<usize, ShopError> {
        let Some(sink) = &self.events else { return Ok(0) };
        let now = now_ms();
        let due = self.store.unsent(now.saturating_sub(RELAY_AFTER.as_millis() as u64), RELAY_BATCH).await?;
        let mut published = 0;
        for unsent in due {
            // A note that cannot be dealt with now must not hold up the ones after it.
            let receipt = match self.store.order(&unsent.order_id).await {
                Ok(receipt) => receipt,
                Err(error) => {
                    tracing::warn!(%error, order_id = %unsent.order_id, "the relay could not read an order; later");
                    continue;
                }
            };
            let event = match (unsent.kind, &receipt) {
                (EventKind::Placed, Some(receipt)) => ShopEvent::Placed(placed(receipt, unsent.at_ms)),
                (EventKind::Cancelled, Some(receipt)) if receipt.status == OrderStatus::Cancelled => {
                    ShopEvent::Cancelled(cancelled(receipt, receipt.charged.amount_cents, unsent.at_ms))
                }
                _ => {
                    let gave_up_ms = unsent.at_ms.saturating_add(2 * self.claim_ttl.as_millis() as u64);
                    if now > gave_up_ms {
                        self.cross_out(&unsent).await;
                    }
                    continue;
                }
            };
            if let Err(error) = sink.publish(event).await {
                // The broker is likely still away: the next round tries again.
                tracing::warn!(%error, "the relay could not publish; trying again later");
                break;
            }
            self.cross_out(&unsent).await;
            published += 1;
        }
        if published > 0 {
            tracing::info!(published, "the relay published events that had not gone out");
        }
        Ok(published)
    }

    /// Crosses out `unsent`; one that stays comes to the relay again (published once more, and
    /// counted once; or dropped, when its change never happened).
    async fn cross_out(&self, unsent: &Unsent) {
        if let Err(error) = self.store.sent(unsent).await {
            tracing::warn!(%error, order_id = %unsent.order_id, "could not cross out a note of the outbox; the relay comes to it again");
        }
    }

    /// Relays the outbox every `every` ([`Shop::relay_unsent`]), for as long as the shop lives: the
    /// task ends when the last other handle on the shop is dropped.
    pub fn relay(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        self.every(every, "could not relay the outbox; trying again", |shop| async move {
            shop.relay_unsent().await
        })
    }
}
