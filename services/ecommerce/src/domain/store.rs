//! The shop's state behind a small trait: stock, and orders with their idempotency. The in-memory
//! store is here; the Redis store lives with the HTTP+Redis stack.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;

use crate::contracts::{OrderReceipt, StockLevel, StockLine};
use crate::error::ShopError;

/// What a store says when an order is about to be placed.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderSlot {
    /// No such order yet: the caller now holds the claim, with its stock reserved, and must
    /// complete or abandon it before it expires.
    Claimed,
    /// Another request is placing the same order right now.
    InProgress,
    /// Already placed, with the same content: its receipt.
    Placed(Box<OrderReceipt>),
    /// Already placed or being placed with different content.
    Conflict,
}

/// A claim on an order id, with the stock it reserves.
///
/// The claim is how a half-placed order can never keep stock for good: it holds its lines until it
/// is completed (the order is placed), abandoned (the stock goes back) or, when the instance that
/// made it died or stalled, until [`ShopStore::expire_claims`] finds it past `expires_at_ms` and
/// gives the stock back. Its `token` is the request's own, so that no other request completes or
/// abandons it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The order.
    pub order_id: String,
    /// What the order's content hashes to.
    pub fingerprint: String,
    /// Unique to the request that claims.
    pub token: String,
    /// The stock the order takes.
    pub lines: Vec<StockLine>,
    /// When the claim lapses, in milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
}

/// Which event of an order the outbox holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// `order_placed`.
    Placed,
    /// `order_cancelled`.
    Cancelled,
}

impl EventKind {
    /// Its name in a store's keys.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Placed => "placed",
            EventKind::Cancelled => "cancelled",
        }
    }

    /// The kind named `name`.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "placed" => Some(EventKind::Placed),
            "cancelled" => Some(EventKind::Cancelled),
            _ => None,
        }
    }
}

/// An event of the outbox: noted before the change it tells of is made, crossed out once the
/// event is published, published again by the relay while it is not ([`crate::domain::Shop::relay`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsent {
    /// Which event.
    pub kind: EventKind,
    /// Of which order.
    pub order_id: String,
    /// When it happened, milliseconds since the Unix epoch (the event's own time).
    pub at_ms: u64,
}

/// Stock and orders. Every method is atomic on its own, and each one that changes stock changes it
/// together with the order it belongs to: a failure or a crash between two of them never leaves
/// stock taken without a claim that will give it back, or an order cancelled with its stock kept.
pub trait ShopStore: Send + Sync + 'static {
    /// Takes `lines` out of stock, all or none; answers what is left of each.
    fn reserve(&self, lines: &[StockLine])
    -> impl Future<Output = Result<Vec<StockLevel>, ShopError>> + Send;

    /// Adds units of an item, creating it when new; answers the new level.
    fn restock(&self, sku: &str, quantity: u64)
    -> impl Future<Output = Result<StockLevel, ShopError>> + Send;

    /// Units of an item in stock, `None` when the catalog does not have it.
    fn available(&self, sku: &str) -> impl Future<Output = Result<Option<u64>, ShopError>> + Send;

    /// Claims the order and reserves its lines, both or neither: `Err(OutOfStock)` or
    /// `Err(UnknownSku)` when the lines cannot all be had. Claiming again with the same token
    /// answers `Claimed` again, taking nothing more: a claim whose answer was lost can be asked for
    /// again.
    fn claim_order(&self, claim: &Claim) -> impl Future<Output = Result<OrderSlot, ShopError>> + Send;

    /// Records the placed order in place of the claim `token` holds, keeping its stock; answers
    /// `false` when that claim is no more (it expired and its stock went back). Completing again
    /// after a success answers `true`.
    fn complete_order(
        &self,
        receipt: &OrderReceipt,
        token: &str,
    ) -> impl Future<Output = Result<bool, ShopError>> + Send;

    /// Gives up the claim `token` holds and puts its stock back; does nothing when there is no such
    /// claim.
    fn abandon_order(
        &self,
        order_id: &str,
        token: &str,
    ) -> impl Future<Output = Result<(), ShopError>> + Send;

    /// Gives back the stock of every claim that expired before `now_ms`; answers how many.
    fn expire_claims(&self, now_ms: u64) -> impl Future<Output = Result<usize, ShopError>> + Send;

    /// A placed order.
    fn order(&self, order_id: &str) -> impl Future<Output = Result<Option<OrderReceipt>, ShopError>> + Send;

    /// Replaces a placed order's receipt with its cancelled one and puts its stock back, when
    /// `expect` still matches it; answers whether it did. Asking again with the same `token` after
    /// a success answers `true` again.
    fn cancel_order(
        &self,
        expect: &OrderReceipt,
        cancelled: &OrderReceipt,
        token: &str,
    ) -> impl Future<Output = Result<bool, ShopError>> + Send;

    /// Notes `event` in the outbox (keeping the first note of the same event of the same order).
    fn note_unsent(&self, event: &Unsent) -> impl Future<Output = Result<(), ShopError>> + Send;

    /// Crosses `event` out of the outbox: it was published (or is not to be).
    fn sent(&self, event: &Unsent) -> impl Future<Output = Result<(), ShopError>> + Send;

    /// Up to `limit` events of the outbox that happened before `before_ms`, the oldest first.
    fn unsent(
        &self,
        before_ms: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Unsent>, ShopError>> + Send;
}

#[derive(Debug, Clone)]
enum OrderEntry {
    Claimed { fingerprint: String, token: String, lines: Vec<StockLine>, expires_at_ms: u64 },
    Placed { fingerprint: String, receipt: Box<OrderReceipt>, cancelled_by: Option<String> },
}

/// State in this process, behind two mutexes held only for map operations.
#[derive(Debug, Default)]
pub struct MemoryStore {
    stock: Mutex<HashMap<String, u64>>,
    orders: Mutex<Orders>,
    outbox: Mutex<BTreeMap<(EventKind, String), u64>>,
}

/// Every order by id, and the ids of those still claimed: the sweep looks at the orders in
/// progress only, not at every order ever placed (a scan of millions, under both locks, every
/// few seconds).
#[derive(Debug, Default)]
struct Orders {
    by_id: HashMap<String, OrderEntry>,
    claimed: HashSet<String>,
}

impl MemoryStore {
    /// A store whose catalog has `SKU-00000` to `SKU-{skus - 1}`, `units` of each.
    pub fn with_catalog(skus: u32, units: u64) -> Self {
        let stock = (0..skus).map(|i| (catalog_sku(i), units)).collect();
        Self { stock: Mutex::new(stock), orders: Mutex::default(), outbox: Mutex::default() }
    }
}

impl MemoryStore {
    /// Units of an item in stock right now, for inspection (tests, benchmarks' end-of-run checks).
    pub fn available_now(&self, sku: &str) -> Option<u64> {
        lock(&self.stock).get(sku).copied()
    }
}

/// The catalog's naming of item `i`: `SKU-00042`.
pub fn catalog_sku(i: u32) -> String {
    format!("SKU-{i:05}")
}

/// A poisoned lock means a panic mid-update elsewhere; the maps are updated in single steps, so
/// the data is still whole.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes `lines` out of `stock`, all or none, checking every line (summing repeated skus) before
/// taking anything, in sku order so that every store names the same item when several are short.
fn take(stock: &mut HashMap<String, u64>, lines: &[StockLine]) -> Result<Vec<StockLevel>, ShopError> {
    let mut wanted: BTreeMap<&str, u64> = BTreeMap::new();
    for line in lines {
        *wanted.entry(line.sku.as_str()).or_default() += u64::from(line.quantity);
    }
    for (sku, requested) in &wanted {
        let available = *stock.get(*sku).ok_or_else(|| ShopError::UnknownSku(sku.to_string()))?;
        if available < *requested {
            return Err(ShopError::OutOfStock { sku: sku.to_string(), requested: *requested, available });
        }
    }
    let mut remaining = Vec::with_capacity(wanted.len());
    for (sku, requested) in wanted {
        if let Some(available) = stock.get_mut(sku) {
            *available -= requested;
            remaining.push(StockLevel { sku: sku.to_string(), available: *available });
        }
    }
    Ok(remaining)
}

fn put_back(stock: &mut HashMap<String, u64>, lines: &[StockLine]) {
    for line in lines {
        let available = stock.entry(line.sku.clone()).or_default();
        *available = available.saturating_add(u64::from(line.quantity));
    }
}

/// The stock lines of a receipt.
pub fn receipt_lines(receipt: &OrderReceipt) -> Vec<StockLine> {
    receipt.lines.iter().map(|line| StockLine { sku: line.sku.clone(), quantity: line.quantity }).collect()
}

// Both locks are always taken stock first, then orders.
impl ShopStore for MemoryStore {
    async fn reserve(&self, lines: &[StockLine]) -> Result<Vec<StockLevel>, ShopError> {
        take(&mut lock(&self.stock), lines)
    }

    async fn restock(&self, sku: &str, quantity: u64) -> Result<StockLevel, ShopError> {
        let mut stock = lock(&self.stock);
        let available = stock.entry(sku.to_string()).or_default();
        *available = available.saturating_add(quantity);
        Ok(StockLevel { sku: sku.to_string(), available: *available })
    }

    async fn available(&self, sku: &str) -> Result<Option<u64>, ShopError> {
        Ok(lock(&self.stock).get(sku).copied())
    }

    async fn claim_order(&self, claim: &Claim) -> Result<OrderSlot, ShopError> {
        let mut stock = lock(&self.stock);
        let mut orders = lock(&self.orders);
        match orders.by_id.get(&claim.order_id) {
            None => {}
            Some(OrderEntry::Claimed { token, .. }) if *token == claim.token => {
                return Ok(OrderSlot::Claimed);
            }
            Some(OrderEntry::Claimed { fingerprint, .. }) if *fingerprint == claim.fingerprint => {
                return Ok(OrderSlot::InProgress);
            }
            Some(OrderEntry::Placed { fingerprint, receipt, .. }) if *fingerprint == claim.fingerprint => {
                return Ok(OrderSlot::Placed(receipt.clone()));
            }
            Some(_) => return Ok(OrderSlot::Conflict),
        }
        take(&mut stock, &claim.lines)?;
        orders.claimed.insert(claim.order_id.clone());
        orders.by_id.insert(
            claim.order_id.clone(),
            OrderEntry::Claimed {
                fingerprint: claim.fingerprint.clone(),
                token: claim.token.clone(),
                lines: claim.lines.clone(),
                expires_at_ms: claim.expires_at_ms,
            },
        );
        Ok(OrderSlot::Claimed)
    }

    async fn complete_order(&self, receipt: &OrderReceipt, token: &str) -> Result<bool, ShopError> {
        let mut orders = lock(&self.orders);
        let fingerprint = match orders.by_id.get(&receipt.order_id) {
            Some(OrderEntry::Claimed { fingerprint, token: holder, .. }) if holder == token => {
                fingerprint.clone()
            }
            Some(OrderEntry::Placed { receipt: placed, .. }) => return Ok(**placed == *receipt),
            _ => return Ok(false),
        };
        let placed =
            OrderEntry::Placed { fingerprint, receipt: Box::new(receipt.clone()), cancelled_by: None };
        orders.claimed.remove(&receipt.order_id);
        orders.by_id.insert(receipt.order_id.clone(), placed);
        Ok(true)
    }

    async fn abandon_order(&self, order_id: &str, token: &str) -> Result<(), ShopError> {
        let mut stock = lock(&self.stock);
        let mut orders = lock(&self.orders);
        if let Some(OrderEntry::Claimed { token: holder, lines, .. }) = orders.by_id.get(order_id)
            && holder == token
        {
            put_back(&mut stock, lines);
            orders.by_id.remove(order_id);
            orders.claimed.remove(order_id);
        }
        Ok(())
    }

    async fn expire_claims(&self, now_ms: u64) -> Result<usize, ShopError> {
        let mut stock = lock(&self.stock);
        let mut orders = lock(&self.orders);
        let Orders { by_id, claimed } = &mut *orders;
        let mut expired = 0;
        claimed.retain(|order_id| match by_id.get(order_id) {
            Some(OrderEntry::Claimed { lines, expires_at_ms, .. }) if *expires_at_ms < now_ms => {
                put_back(&mut stock, lines);
                by_id.remove(order_id);
                expired += 1;
                false
            }
            Some(OrderEntry::Claimed { .. }) => true,
            _ => false,
        });
        Ok(expired)
    }

    async fn order(&self, order_id: &str) -> Result<Option<OrderReceipt>, ShopError> {
        Ok(match lock(&self.orders).by_id.get(order_id) {
            Some(OrderEntry::Placed { receipt, .. }) => Some((**receipt).clone()),
            _ => None,
        })
    }

    async fn cancel_order(
        &self,
        expect: &OrderReceipt,
        cancelled: &OrderReceipt,
        token: &str,
    ) -> Result<bool, ShopError> {
        let mut stock = lock(&self.stock);
        let mut orders = lock(&self.orders);
        match orders.by_id.get_mut(&expect.order_id) {
            Some(OrderEntry::Placed { receipt, cancelled_by, .. }) if **receipt == *expect => {
                **receipt = cancelled.clone();
                *cancelled_by = Some(token.to_string());
                put_back(&mut stock, &receipt_lines(expect));
                Ok(true)
            }
            Some(OrderEntry::Placed { cancelled_by: Some(by), .. }) => Ok(by == token),
            _ => Ok(false),
        }
    }

    async fn note_unsent(&self, event: &Unsent) -> Result<(), ShopError> {
        lock(&self.outbox).entry((event.kind, event.order_id.clone())).or_insert(event.at_ms);
        Ok(())
    }

    async fn sent(&self, event: &Unsent) -> Result<(), ShopError> {
        lock(&self.outbox).remove(&(event.kind, event.order_id.clone()));
        Ok(())
    }

    async fn unsent(&self, before_ms: u64, limit: usize) -> Result<Vec<Unsent>, ShopError> {
        let outbox = lock(&self.outbox);
        let mut due: Vec<Unsent> = outbox
            .iter()
            .filter(|(_, at_ms)| **at_ms < before_ms)
            .map(|((kind, order_id), at_ms)| Unsent {
                kind: *kind,
                order_id: order_id.clone(),
                at_ms: *at_ms,
            })
            .collect();
        due.sort_by_key(|event| event.at_ms);
        due.truncate(limit);
        Ok(due)
    }
}
