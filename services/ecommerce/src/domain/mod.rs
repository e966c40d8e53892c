//! The shop's business logic, free of any transport: every stack calls these methods.
//!
//! Placing an order: claim its id (idempotency), reserve all its stock or none, charge the payment
//! (retrying transient failures with backoff under the order id as idempotency key), record it.
//! A failure after the reservation puts the stock back and frees the id for another try.

mod events;
mod overview;
mod payment;
mod store;

use std::sync::Arc;
use std::time::Duration;

use faults::Faults;
use natsrpc::{CallOptions, Client};
use sha2::{Digest, Sha256};

pub use events::{EventSink, Published, ShopEvent};
pub use overview::ACTIVITY_WINDOW_MS;
pub use payment::{Charge, ChargeFailure, PaymentGateway};
pub use store::{MemoryStore, OrderSlot, ShopStore, catalog_sku};

use crate::contracts::events::{OrderCancelledEvent, OrderPlacedEvent};
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

/// The shop: its store, its payment gateway, its injected faults, and where its events go.
pub struct Shop<S> {
    store: S,
    gateway: PaymentGateway,
    faults: Arc<Faults>,
    retry: PaymentRetry,
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
            events: None,
            peers: None,
        }
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

    async fn publish(&self, event: ShopEvent) {
        if let Some(sink) = &self.events
            && let Err(error) = sink.publish(event).await
        {
            tracing::error!(%error, "an event did not go out");
        }
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
        match self.store.claim_order(&order.order_id, &fingerprint(&order)).await? {
            OrderSlot::Claimed => {}
            OrderSlot::Placed(receipt) => return Ok(*receipt),
            OrderSlot::InProgress => return Err(ShopError::OrderInProgress(order.order_id)),
            OrderSlot::Conflict => return Err(ShopError::OrderIdReused(order.order_id)),
        }
        let placed = self.place(&order).await;
        match &placed {
            Ok(receipt) => {
                let event = OrderPlacedEvent {
                    order_id: receipt.order_id.clone(),
                    customer_id: receipt.customer_id.clone(),
                    amount_cents: receipt.charged.amount_cents,
                    currency: receipt.charged.currency.clone(),
                    units: receipt.lines.iter().map(|line| u64::from(line.quantity)).sum(),
                    placed_at_ms: now_ms(),
                };
                self.publish(ShopEvent::Placed(event)).await;
            }
            Err(_) => self.store.abandon_order(&order.order_id).await?,
        }
        placed
    }

    async fn place(&self, order: &CreateOrder) -> Result<OrderReceipt, ShopError> {
        let lines: Vec<StockLine> = order
            .items
            .iter()
            .map(|item| StockLine { sku: item.sku.clone(), quantity: item.quantity })
            .collect();
        if self.faults.happens(self.faults.settings().out_of_stock_rate) {
            let sku = lines.first().map(|line| line.sku.clone()).unwrap_or_default();
            return Err(ShopError::OutOfStock { sku, requested: 1, available: 0 });
        }
        self.store.reserve(&lines).await?;
        let amount = order.payment.amount.amount_cents;
        let charge = match self.charge(&order.order_id, amount).await {
            Ok(charge) => charge,
            Err(error) => {
                if matches!(error, ShopError::PaymentUnavailable { .. }) {
                    // A lost response may hide a charge that went through: never keep money for an
                    // order that was not placed.
                    if let Some(voided) = self.gateway.void(&order.order_id) {
                        tracing::warn!(order_id = %order.order_id, voided, "voided a charge of an abandoned order");
                    }
                }
                self.store.release(&lines).await?;
                return Err(error);
            }
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
        self.store.complete_order(&receipt).await?;
        Ok(receipt)
    }

    /// Charges with retries on transient failures; the order id is the idempotency key, so a retry
    /// whose first attempt did go through is answered by that charge.
    async fn charge(&self, order_id: &str, amount_cents: u64) -> Result<Charge, ShopError> {
        let mut backoff = self.retry.backoff;
        for attempt in 1..=self.retry.attempts {
            match self.gateway.charge(order_id, amount_cents).await {
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
        // Only the request that flips the status refunds and releases: no double refund.
        if !self.store.update_order(&placed, &cancelled).await? {
            return Err(ShopError::AlreadyCancelled(id));
        }
        let lines: Vec<StockLine> = placed
            .lines
            .iter()
            .map(|line| StockLine { sku: line.sku.clone(), quantity: line.quantity })
            .collect();
        self.store.release(&lines).await?;
        // The simulated gateway lives in each process; where another instance took the payment (any
        // stack with shared state and several instances), the receipt says what was charged.
        let refunded = self.gateway.refund(&id).unwrap_or(placed.charged.amount_cents);
        let event = OrderCancelledEvent {
            order_id: id.clone(),
            customer_id: placed.customer_id.clone(),
            refunded_cents: refunded,
            cancelled_at_ms: now_ms(),
        };
        self.publish(ShopEvent::Cancelled(event)).await;
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

/// The content of an order, for telling a retry (same content) from a reused id (different content).
fn fingerprint(order: &CreateOrder) -> String {
    let bytes = serde_json::to_vec(order).unwrap_or_default();
    format!("{:x}", Sha256::digest(&bytes))
}
