//! The shop's business logic, free of any transport: every stack calls these methods.
//!
//! Placing an order: claim its id (idempotency) and reserve all its stock or none, in one step;
//! charge the payment (retrying transient failures with backoff under the order id as idempotency
//! key); record it in place of the claim. A failure after the claim voids any charge, puts the
//! stock back and frees the id for another try.
//!
//! What holds whatever happens to the caller or the store:
//! - A handler runs to its end once started (natsrpc's rule): a caller that gives up gets 504 and
//!   finds the outcome with `get_order`, or by placing the same order again.
//! - An order's stock is only ever taken with a claim that gives it back when it lapses ([`Claim`]),
//!   so an instance that dies mid-order holds no stock for longer than [`DEFAULT_CLAIM_TTL`]: a sweep
//!   ([`Shop::expire_claims`], every few seconds in every stack) puts it back.
//! - A store call that fails (the store unreachable, its answer lost) is asked again until it
//!   answers, for as long as the claim lasts (recording the order: for another claim's time): the
//!   order ends placed with its charge, or not placed with no charge and its stock back. Only a
//!   store silent for all that time leaves an order undecided (logged, its charge kept).
//! - A charge is held by the claim that made or last reused it, so that a request whose claim
//!   lapsed voids its own charge, never that of the retry that placed the order.
//! - An event is noted in the store's outbox before its order is recorded (or cancelled) and
//!   crossed out once published; a relay ([`Shop::relay`], every second in every stack that
//!   publishes) publishes again what a broker that was away did not take. Events go out at least
//!   once; analytics counts each order's once.

mod events;
mod outbox;
mod overview;
mod payment;
mod store;

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use faults::Faults;
use natsrpc::{CallOptions, Client};
use sha2::{Digest, Sha256};

pub use events::{EventSink, Published, ShopEvent};
pub use outbox::{RELAY_AFTER, RELAY_EVERY};
pub use overview::ACTIVITY_WINDOW_MS;
pub use payment::{Charge, ChargeFailure, PaymentGateway};
pub use store::{Claim, EventKind, MemoryStore, OrderSlot, ShopStore, Unsent, catalog_sku, receipt_lines};

use crate::contracts::{
    CancelOrder, CreateOrder, GetOrder, GetOrderOverview, GetStock, InventoryReserved, Money, OrderCancelled,
    OrderOverview, OrderReceipt, OrderStatus, PaymentSummary, ReceiptLine, ReserveInventory, Restock,
    StockLevel, StockLine, rules,
};
use crate::error::ShopError;

/// How transient payment failures are retried.
#[derive(Debug, Clone, Copy)]
pub struct PaymentRetry {
    /// Attempts in all.
    pub attempts: u32,
    /// Wait before the second attempt; doubles each time.
    pub backoff: Duration,
}

impl Default for PaymentRetry {
    fn default() -> Self {
        Self { attempts: 4, backoff: Duration::from_millis(5) }
    }
}

/// How long a claim on an order (and the stock it reserves) lasts unless completed or abandoned:
/// well past any order's time to be placed (payment retries included), short enough that stock
/// held by a dead instance comes back soon.
pub const DEFAULT_CLAIM_TTL: Duration = Duration::from_secs(60);

/// How often a stack sweeps expired claims.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// How placing a claimed order ended.
enum Placing {
    /// Recorded, charged.
    Placed(OrderReceipt),
    /// Not recorded, for sure: any charge is to be voided and the claim given back.
    NotPlaced(ShopError),
    /// The store never said whether it recorded the order.
    Unknown(ShopError),
}

/// The shop: its store, its payment gateway, its injected faults, and where its events go.
pub struct Shop<S> {
    store: S,
    gateway: PaymentGateway,
    faults: Arc<Faults>,
    retry: PaymentRetry,
    claim_ttl: Duration,
    events: Option<Arc<dyn EventSink>>,
    peers: Option<Client>,
}

impl<S> std::fmt::Debug for Shop<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shop")
            .field("retry", &self.retry)
            .field("events", &self.events.is_some())
            .field("peers", &self.peers.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: ShopStore> Shop<S> {
    /// A shop over `store`, with faults (including the gateway's) drawn from `faults`.
    pub fn new(store: S, faults: Arc<Faults>) -> Self {
        Self {
            store,
            gateway: PaymentGateway::new(Arc::clone(&faults)),
            faults,
            retry: PaymentRetry::default(),
            claim_ttl: DEFAULT_CLAIM_TTL,
            events: None,
            peers: None,
        }
    }

    /// How long a claim lasts (default [`DEFAULT_CLAIM_TTL`]).
    pub fn with_claim_ttl(mut self, ttl: Duration) -> Self {
        self.claim_ttl = ttl;
        self
    }

    /// Gives back the stock of claims past their time; answers how many. Run it every
    /// [`SWEEP_EVERY`] ([`Shop::sweep`] does).
    pub async fn expire_claims(&self) -> Result<usize, ShopError> {
        let expired = self.store.expire_claims(now_ms()).await?;
        if expired > 0 {
            tracing::warn!(expired, "claims on orders expired; their stock is back");
        }
        Ok(expired)
    }

    /// Sweeps expired claims every `every`, for as long as the shop lives: the task ends when the
    /// last other handle on the shop is dropped.
    pub fn sweep(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        self.every(every, "could not sweep expired claims", |shop| async move { shop.expire_claims().await })
    }

    /// Runs `job` every `every` for as long as the shop lives (the task holds it only while the
    /// job runs, and ends once the last other handle is dropped), logging a failure as `failed`.
    fn every<T, F, Job>(
        self: &Arc<Self>,
        every: Duration,
        failed: &'static str,
        job: Job,
    ) -> tokio::task::JoinHandle<()>
    where
        Job: Fn(Arc<Self>) -> F + Send + 'static,
        F: Future<Output = Result<T, ShopError>> + Send,
    {
        let shop = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(shop) = shop.upgrade() else { return };
                if let Err(error) = job(shop).await {
                    tracing::warn!(%error, "{failed}");
                }
            }
        })
    }

    /// Calls other services (and itself) with `peers`, over the stack's transport.
    pub fn with_peers(mut self, peers: Client) -> Self {
        self.peers = Some(peers);
        self
    }

    /// Publishes `order_placed` and `order_cancelled` to `sink`.
    pub fn with_events(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = Some(sink);
        self
    }

    /// Retries transient payment failures by `retry`.
    pub fn with_payment_retry(mut self, retry: PaymentRetry) -> Self {
        self.retry = retry;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The payment gateway.
    pub fn gateway(&self) -> &PaymentGateway {
        &self.gateway
    }

    /// Places an order; see the module documentation.
    pub async fn create_order(&self, order: CreateOrder) -> Result<OrderReceipt, ShopError> {
        self.disturb().await?;
        if self.faults.happens(self.faults.settings().out_of_stock_rate) {
            let sku = order.items.first().map(|item| item.sku.clone()).unwrap_or_default();
            return Err(ShopError::OutOfStock { sku, requested: 1, available: 0 });
        }
        let claim = Claim {
            order_id: order.order_id.clone(),
            fingerprint: fingerprint(&order),
            token: nuid::next().to_string(),
            lines: order
                .items
                .iter()
                .map(|item| StockLine { sku: item.sku.clone(), quantity: item.quantity })
                .collect(),
            expires_at_ms: now_ms().saturating_add(self.claim_ttl.as_millis() as u64),
        };
        // A claim whose answer was lost may have been made: asking again with the same token says.
        let claiming = || self.store.claim_order(&claim);
        match self.until_answered(&claim.order_id, claim.expires_at_ms, claiming).await? {
            OrderSlot::Claimed => {}
            OrderSlot::Placed(receipt) => return Ok(*receipt),
            OrderSlot::InProgress => return Err(ShopError::OrderInProgress(order.order_id)),
            OrderSlot::Conflict => return Err(ShopError::OrderIdReused(order.order_id)),
        }
        // Noted before the order is recorded: whatever happens after, the event goes out.
        let unsent = match self.note(EventKind::Placed, &claim.order_id, claim.expires_at_ms).await {
            Ok(unsent) => unsent,
            Err(error) => {
                self.undo(&claim).await;
                return Err(error);
            }
        };
        match self.place(&order, &claim).await {
            Placing::Placed(receipt) => {
                self.announce(unsent, |at_ms| ShopEvent::Placed(outbox::placed(&receipt, at_ms))).await;
                Ok(receipt)
            }
            Placing::NotPlaced(error) => {
                self.undo(&claim).await;
                self.forget(unsent).await;
                Err(error)
            }
            Placing::Unknown(error) => {
                // The store never said whether the order was recorded: voiding could leave a placed
                // order unpaid, abandoning could give its stock away. The charge and the claim stay
                // as they are; the claim lapses if the order was not recorded (and the relay then
                // drops the event's note, or publishes it if the order was recorded).
                tracing::error!(order_id = %claim.order_id, %error,
                    "the store never answered whether the order was recorded; its charge is kept for reconciliation");
                Err(error)
            }
        }
    }

    /// Charges the order and records it in place of its claim.
    async fn place(&self, order: &CreateOrder, claim: &Claim) -> Placing {
        let amount = order.payment.amount.amount_cents;
        let charge = match self.charge(&order.order_id, &claim.token, amount).await {
            Ok(charge) => charge,
            Err(error) => return Placing::NotPlaced(error),
        };
        let subtotal = rules::subtotal_cents(order);
        let receipt = OrderReceipt {
            order_id: order.order_id.clone(),
            status: OrderStatus::Placed,
            customer_id: order.customer.id.clone(),
            lines: order
                .items
                .iter()
                .map(|item| ReceiptLine {
                    sku: item.sku.clone(),
                    quantity: item.quantity,
                    line_total_cents: item.unit_price.amount_cents * u64::from(item.quantity),
                })
                .collect(),
            subtotal_cents: subtotal,
            discount_cents: subtotal - amount.min(subtotal),
            charged: Money {
                amount_cents: charge.amount_cents,
                currency: order.payment.amount.currency.clone(),
            },
            payment: PaymentSummary {
                method: order.payment.method,
                transaction_id: charge.transaction_id,
                card_brand: order.payment.card.as_ref().map(|card| card.brand().to_string()),
                card_last4: order.payment.card.as_ref().map(|card| card.last4()),
            },
        };
        // Completing answers for sure once the store answers at all (recorded, or the claim swept):
        // it is asked past the claim's time, for another claim's time.
        let completing = || self.store.complete_order(&receipt, &claim.token);
        let until_ms = claim.expires_at_ms.saturating_add(self.claim_ttl.as_millis() as u64);
        match self.until_answered(&claim.order_id, until_ms, completing).await {
            Ok(true) => Placing::Placed(receipt),
            Ok(false) => Placing::NotPlaced(ShopError::OrderExpired {
                order_id: order.order_id.clone(),
                after: self.claim_ttl,
            }),
            Err(error) => Placing::Unknown(error),
        }
    }

    /// Undoes a claimed order that will not be placed: voids any charge (a lost response may hide
    /// one that went through: never keep money for an order that was not placed), then gives the
    /// claim and its stock back. A claim the store cannot give back now lapses by itself.
    async fn undo(&self, claim: &Claim) {
        if let Some(voided) = self.gateway.void(&claim.order_id, &claim.token) {
            tracing::warn!(order_id = %claim.order_id, voided, "voided the charge of an order not placed");
        }
        let abandoning = || self.store.abandon_order(&claim.order_id, &claim.token);
        let abandoned = self.until_answered(&claim.order_id, claim.expires_at_ms, abandoning).await;
        if let Err(error) = abandoned {
            tracing::error!(order_id = %claim.order_id, %error, "could not give a claim back; it lapses by itself");
        }
    }

    /// Asks the store again, with a growing pause, while it fails (unreachable, its answer lost),
    /// until `until_ms`: the call must be one that gives the same answer when repeated.
    async fn until_answered<T, F>(
        &self,
        order_id: &str,
        until_ms: u64,
        call: impl Fn() -> F,
    ) -> Result<T, ShopError>
    where
        F: Future<Output = Result<T, ShopError>>,
    {
        let mut pause = Duration::from_millis(20);
        loop {
            match call().await {
                Err(ShopError::Store(detail)) if now_ms() < until_ms => {
                    tracing::warn!(order_id, %detail, ?pause, "the store failed; asking again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                answered => return answered,
            }
        }
    }

    /// Charges with retries on transient failures; the order id is the idempotency key, so a retry
    /// whose first attempt did go through is answered by that charge, which `claim` then holds.
    async fn charge(&self, order_id: &str, claim: &str, amount_cents: u64) -> Result<Charge, ShopError> {
        let mut backoff = self.retry.backoff;
        for attempt in 1..=self.retry.attempts {
            match self.gateway.charge(order_id, claim, amount_cents).await {
                Ok(charge) => return Ok(charge),
                Err(ChargeFailure::Declined(reason)) => {
                    return Err(ShopError::PaymentDeclined(reason.to_string()));
                }
                Err(ChargeFailure::Transient) if attempt < self.retry.attempts => {
                    tracing::debug!(order_id, attempt, "transient payment failure; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(ChargeFailure::Transient) => {}
            }
        }
        Err(ShopError::PaymentUnavailable { attempts: self.retry.attempts })
    }

    /// A placed (or cancelled) order.
    pub async fn get_order(&self, request: GetOrder) -> Result<OrderReceipt, ShopError> {
        self.disturb().await?;
        self.store.order(&request.order_id).await?.ok_or(ShopError::OrderNotFound(request.order_id))
    }

    /// Cancels a placed order: refunds it and puts its stock back, once.
    pub async fn cancel_order(&self, request: CancelOrder) -> Result<OrderCancelled, ShopError> {
        self.disturb().await?;
        let id = request.order_id;
        let placed = self.store.order(&id).await?.ok_or_else(|| ShopError::OrderNotFound(id.clone()))?;
        if placed.status == OrderStatus::Cancelled {
            return Err(ShopError::AlreadyCancelled(id));
        }
        let cancelled = OrderReceipt { status: OrderStatus::Cancelled, ..placed.clone() };
        // The status and the stock change in one step, and only the request that flips the status
        // refunds: no double refund, and no cancelled order whose stock stayed taken. Its token
        // makes asking again after a lost answer safe.
        let token = nuid::next().to_string();
        let until_ms = now_ms().saturating_add(self.claim_ttl.as_millis() as u64);
        let unsent = self.note(EventKind::Cancelled, &id, until_ms).await?;
        let cancelling = || self.store.cancel_order(&placed, &cancelled, &token);
        // Not cancelled by this request (another one did, or the store never said): the note stays
        // (one per event of an order) for that request to cross out, or for the relay to publish
        // once the store shows the order cancelled.
        if !self.until_answered(&id, until_ms, cancelling).await? {
            return Err(ShopError::AlreadyCancelled(id));
        }
        let lines = receipt_lines(&placed);
        // The simulated gateway lives in each process; where another instance took the payment (any
        // stack with shared state and several instances), the receipt says what was charged.
        let refunded = self.gateway.refund(&id).unwrap_or(placed.charged.amount_cents);
        self.announce(unsent, |at_ms| ShopEvent::Cancelled(outbox::cancelled(&placed, refunded, at_ms)))
            .await;
        Ok(OrderCancelled {
            order_id: id,
            refunded: Money { amount_cents: refunded, currency: placed.charged.currency },
            released_units: lines.iter().map(|line| u64::from(line.quantity)).sum(),
        })
    }

    /// Holds stock for a cart, all lines or none.
    pub async fn reserve_inventory(&self, request: ReserveInventory) -> Result<InventoryReserved, ShopError> {
        self.disturb().await?;
        if self.faults.happens(self.faults.settings().out_of_stock_rate) {
            let sku = request.lines.first().map(|line| line.sku.clone()).unwrap_or_default();
            return Err(ShopError::OutOfStock { sku, requested: 1, available: 0 });
        }
        let remaining = self.store.reserve(&request.lines).await?;
        Ok(InventoryReserved { reservation_id: request.reservation_id, remaining })
    }

    /// Units of an item in stock.
    pub async fn get_stock(&self, request: GetStock) -> Result<StockLevel, ShopError> {
        self.disturb().await?;
        match self.store.available(&request.sku).await? {
            Some(available) => Ok(StockLevel { sku: request.sku, available }),
            None => Err(ShopError::UnknownSku(request.sku)),
        }
    }

    /// An order with its items' stock, its customer's recent activity and its attachments'
    /// status, asked of the services that hold them, at once (`calls`: the caller's correlation
    /// id and deadline).
    pub async fn order_overview(
        &self,
        request: GetOrderOverview,
        calls: CallOptions,
    ) -> Result<OrderOverview, ShopError> {
        self.disturb().await?;
        let peers = self.peers.as_ref().ok_or(ShopError::NoPeers)?;
        let id = request.order_id;
        let order = self.store.order(&id).await?.ok_or(ShopError::OrderNotFound(id))?;
        overview::gather(peers, order, request.attachments, calls).await
    }

    /// Adds stock.
    pub async fn restock(&self, request: Restock) -> Result<StockLevel, ShopError> {
        self.disturb().await?;
        self.store.restock(&request.sku, u64::from(request.quantity)).await
    }

    /// The faults every request may meet: added latency, an internal failure.
    async fn disturb(&self) -> Result<(), ShopError> {
        self.faults.disturb().await.map_err(|_| ShopError::InjectedFault)
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The content of an order, for telling a retry (same content) from a reused id (different content):
/// SHA-256 of its fields as [`Hash`] walks them. Equal orders, however they were encoded on the wire
/// (JSON or MessagePack, any key order or spacing), have the same fingerprint; a different order
/// cannot be made to match one, so a reused id never gets another order's receipt.
///
/// Not the order re-encoded as JSON: that took a fifth of the service's CPU per order (callgrind,
/// `echo-vs-raw --order`). The bytes `Hash` writes are std's, which it does not promise to keep
/// from one Rust release to the next (and lengths are written in the target's byte order): instances
/// sharing a store are built with one toolchain for one target, or a retry that crosses builds is
/// refused as a reused id (409), never wrongly accepted.
fn fingerprint(order: &CreateOrder) -> String {
    let mut fields = Fields(Vec::with_capacity(2048));
    order.hash(&mut fields);
    format!("{:x}", Sha256::digest(&fields.0))
}

/// A [`Hasher`] that keeps what it is fed: with `Hash`, an unambiguous encoding of a value (every
/// string ends in 0xff, which UTF-8 never holds; every sequence starts with its length).
struct Fields(Vec<u8>);

impl Hasher for Fields {
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// Never asked for: the bytes are what counts.
    fn finish(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use natsrpc::Codec;

    use super::*;
    use crate::payloads::{Payloads, Size};

    fn order() -> CreateOrder {
        Payloads::new(7, 100).create_order(Size::Large)
    }

    #[test]
    fn an_order_has_one_fingerprint_whatever_its_encoding() {
        let order = order();
        let from_msgpack: CreateOrder =
            Codec::MsgPack.decode(&Codec::MsgPack.encode(&order).unwrap()).unwrap();
        // The same fields, another key order and spacing.
        let value = serde_json::to_value(&order).unwrap();
        let mut reordered: Vec<(String, serde_json::Value)> =
            value.as_object().unwrap().clone().into_iter().collect();
        reordered.reverse();
        let spaced = format!(
            "{{ {} }}",
            reordered.iter().map(|(k, v)| format!("{k:?} : {v}")).collect::<Vec<_>>().join(" ,\n ")
        );
        let from_json: CreateOrder = serde_json::from_str(&spaced).unwrap();
        assert_eq!(fingerprint(&from_msgpack), fingerprint(&order));
        assert_eq!(fingerprint(&from_json), fingerprint(&order));
        assert_eq!(fingerprint(&order).len(), 64);
    }

    #[test]
    fn any_change_to_an_order_changes_its_fingerprint() {
        let order = order();
        let changes: Vec<fn(&mut CreateOrder)> = vec![
            |o| o.items[0].quantity += 1,
            |o| o.items.push(o.items[0].clone()),
            // An absent field against an empty one.
            |o| {
                let line2 = &mut o.customer.shipping_address.line2;
                *line2 = if line2.is_some() { None } else { Some(String::new()) };
            },
            |o| o.discount_code = Some("SAVE10".into()),
            |o| o.payment.amount.amount_cents += 1,
            // Text moved from one field to the next.
            |o| {
                let moved = o.customer.name.pop().unwrap();
                o.customer.email.insert(0, moved);
            },
            |o| {
                let options = &mut o.items[0].options;
                *options = if options.is_some() { None } else { Some(Default::default()) };
            },
        ];
        let original = fingerprint(&order);
        for (index, change) in changes.into_iter().enumerate() {
            let mut changed = order.clone();
            change(&mut changed);
            assert_ne!(changed, order, "change {index} changes the order");
            assert_ne!(fingerprint(&changed), original, "change {index}");
        }
    }
}
