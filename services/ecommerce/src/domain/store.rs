//! The shop's state behind a small trait: stock, and orders with their idempotency. The in-memory
//! store is here; the Redis store lives with the HTTP+Redis stack.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;

use crate::contracts::{OrderReceipt, StockLevel, StockLine};
use crate::error::ShopError;

/// What a store says when an order is about to be placed.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderSlot {
    /// No such order yet: the caller now holds the slot and must complete or abandon it.
    Claimed,
    /// Another request is placing the same order right now.
    InProgress,
    /// Already placed, with the same content: its receipt.
    Placed(Box<OrderReceipt>),
    /// Already placed or being placed with different content.
    Conflict,
}

/// Stock and orders. Every method is atomic on its own; `reserve` takes all lines or none, so
/// concurrent reservations never oversell.
pub trait ShopStore: Send + Sync + 'static {
    /// Takes `lines` out of stock, all or none; answers what is left of each.
    fn reserve(&self, lines: &[StockLine])
    -> impl Future<Output = Result<Vec<StockLevel>, ShopError>> + Send;

    /// Puts `lines` back in stock.
    fn release(&self, lines: &[StockLine]) -> impl Future<Output = Result<(), ShopError>> + Send;

    /// Adds units of an item, creating it when new; answers the new level.
    fn restock(&self, sku: &str, quantity: u64)
    -> impl Future<Output = Result<StockLevel, ShopError>> + Send;

    /// Units of an item in stock, `None` when the catalog does not have it.
    fn available(&self, sku: &str) -> impl Future<Output = Result<Option<u64>, ShopError>> + Send;

    /// Claims the right to place order `order_id` whose content hashes to `fingerprint`.
    fn claim_order(
        &self,
        order_id: &str,
        fingerprint: &str,
    ) -> impl Future<Output = Result<OrderSlot, ShopError>> + Send;

    /// Records a placed order and releases its claim.
    fn complete_order(&self, receipt: &OrderReceipt) -> impl Future<Output = Result<(), ShopError>> + Send;

    /// Gives up a claim, so that the order can be tried again.
    fn abandon_order(&self, order_id: &str) -> impl Future<Output = Result<(), ShopError>> + Send;

    /// A placed order.
    fn order(&self, order_id: &str) -> impl Future<Output = Result<Option<OrderReceipt>, ShopError>> + Send;

    /// Replaces a placed order's receipt (a status change) when `expect` still matches it;
    /// answers whether it did.
    fn update_order(
        &self,
        expect: &OrderReceipt,
        receipt: &OrderReceipt,
    ) -> impl Future<Output = Result<bool, ShopError>> + Send;
}

#[derive(Debug, Clone)]
enum OrderEntry {
    Claimed { fingerprint: String },
    Placed { fingerprint: String, receipt: Box<OrderReceipt> },
}

/// State in this process, behind two mutexes held only for map operations.
#[derive(Debug, Default)]
pub struct MemoryStore {
    stock: Mutex<HashMap<String, u64>>,
    orders: Mutex<HashMap<String, OrderEntry>>,
}

impl MemoryStore {
    /// A store whose catalog has `SKU-00000` to `SKU-{skus - 1}`, `units` of each.
    pub fn with_catalog(skus: u32, units: u64) -> Self {
        let stock = (0..skus).map(|i| (catalog_sku(i), units)).collect();
        Self { stock: Mutex::new(stock), orders: Mutex::default() }
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

impl ShopStore for MemoryStore {
    async fn reserve(&self, lines: &[StockLine]) -> Result<Vec<StockLevel>, ShopError> {
        let mut stock = lock(&self.stock);
        // Check every line (summing repeated skus) before taking anything, in sku order so that
        // every store names the same item when several are short.
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

    async fn release(&self, lines: &[StockLine]) -> Result<(), ShopError> {
        let mut stock = lock(&self.stock);
        for line in lines {
            *stock.entry(line.sku.clone()).or_default() += u64::from(line.quantity);
        }
        Ok(())
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

    async fn claim_order(&self, order_id: &str, fingerprint: &str) -> Result<OrderSlot, ShopError> {
        let mut orders = lock(&self.orders);
        Ok(match orders.get(order_id) {
            None => {
                orders.insert(
                    order_id.to_string(),
                    OrderEntry::Claimed { fingerprint: fingerprint.to_string() },
                );
                OrderSlot::Claimed
            }
            Some(OrderEntry::Claimed { fingerprint: theirs }) if theirs == fingerprint => {
                OrderSlot::InProgress
            }
            Some(OrderEntry::Placed { fingerprint: theirs, receipt }) if theirs == fingerprint => {
                OrderSlot::Placed(receipt.clone())
            }
            Some(_) => OrderSlot::Conflict,
        })
    }

    async fn complete_order(&self, receipt: &OrderReceipt) -> Result<(), ShopError> {
        let mut orders = lock(&self.orders);
        let fingerprint = match orders.get(&receipt.order_id) {
            Some(OrderEntry::Claimed { fingerprint } | OrderEntry::Placed { fingerprint, .. }) => {
                fingerprint.clone()
            }
            None => String::new(),
        };
        orders.insert(
            receipt.order_id.clone(),
            OrderEntry::Placed { fingerprint, receipt: Box::new(receipt.clone()) },
        );
        Ok(())
    }

    async fn abandon_order(&self, order_id: &str) -> Result<(), ShopError> {
        let mut orders = lock(&self.orders);
        if matches!(orders.get(order_id), Some(OrderEntry::Claimed { .. })) {
            orders.remove(order_id);
        }
        Ok(())
    }

    async fn order(&self, order_id: &str) -> Result<Option<OrderReceipt>, ShopError> {
        Ok(match lock(&self.orders).get(order_id) {
            Some(OrderEntry::Placed { receipt, .. }) => Some((**receipt).clone()),
            _ => None,
        })
    }

    async fn update_order(&self, expect: &OrderReceipt, receipt: &OrderReceipt) -> Result<bool, ShopError> {
        let mut orders = lock(&self.orders);
        match orders.get_mut(&receipt.order_id) {
            Some(OrderEntry::Placed { receipt: current, .. }) if **current == *expect => {
                **current = receipt.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
