//! The stock ledger of a contention scenario: every unit a reservation took and every unit a
//! restock added to the hot items, as the answers said, and at the end the stock each item has
//! left, asked of the stack. Initial plus added must equal taken plus remaining on every item:
//! a unit sold twice (oversell) or a unit gone without a sale shows as a difference.
//!
//! A request that got no answer (a timeout) may or may not have moved stock: its units are
//! counted apart, as the uncertainty the balance allows.

use std::sync::atomic::{AtomicU64, Ordering};

use bench_results::{ContentionResult, ErrorKind, ItemBalance};

use crate::target::check::Verdict;
use crate::target::client::StackClient;
use crate::workload::{StockMove, Workload};

/// One hot item's counters, kept while the load runs.
#[derive(Debug, Default)]
struct Counters {
    taken: AtomicU64,
    added: AtomicU64,
    taken_unknown: AtomicU64,
    added_unknown: AtomicU64,
}

/// Counts what the answers say about the hot items' stock.
#[derive(Debug, Default)]
pub struct Ledger {
    items: Vec<Counters>,
    reservations: AtomicU64,
    conflicts: AtomicU64,
}

/// The error code of a reservation that found too little stock.
pub const CONFLICT: &str = faults::codes::OUT_OF_STOCK;

impl Ledger {
    /// A ledger for `hot` items.
    pub fn new(hot: usize) -> Self {
        Self { items: (0..hot).map(|_| Counters::default()).collect(), ..Self::default() }
    }

    /// Books a request's stock moves by its answer.
    pub fn book(&self, moves: &[StockMove], verdict: &Verdict) {
        if moves.is_empty() {
            return;
        }
        let reservation = moves.iter().any(|m| m.taken);
        if reservation {
            self.reservations.fetch_add(1, Ordering::Relaxed);
        }
        let (known, unknown) = match verdict {
            Verdict::Ok => (true, false),
            Verdict::Expected(ErrorKind::Fault(code)) if code == CONFLICT => {
                self.conflicts.fetch_add(1, Ordering::Relaxed);
                return;
            }
            // No answer: the stack may have done it.
            Verdict::Unexpected(ErrorKind::NoAnswer(_)) => (false, true),
            // A refusal moves nothing.
            _ => return,
        };
        for m in moves {
            let Some(item) = self.items.get(m.sku) else { continue };
            let counter = match (m.taken, known, unknown) {
                (true, true, _) => &item.taken,
                (false, true, _) => &item.added,
                (true, _, true) => &item.taken_unknown,
                (false, _, true) => &item.added_unknown,
                _ => continue,
            };
            counter.fetch_add(m.units, Ordering::Relaxed);
        }
    }

    /// Asks the stack for each hot item's stock and balances the books.
    pub async fn settle(&self, client: &StackClient, workload: &Workload) -> ContentionResult {
        let mut items = Vec::new();
        for ((sku, initial), counters) in workload.hot_skus.iter().zip(&self.items) {
            let request = ecommerce::contracts::GetStock { sku: sku.clone() };
            let remaining = client.ask(&request).await.map(|level| level.available);
            items.push(ItemBalance {
                sku: sku.clone(),
                initial: *initial,
                added: counters.added.load(Ordering::Relaxed),
                taken: counters.taken.load(Ordering::Relaxed),
                added_unknown: counters.added_unknown.load(Ordering::Relaxed),
                taken_unknown: counters.taken_unknown.load(Ordering::Relaxed),
                remaining: remaining.as_ref().ok().copied(),
                error: remaining.err().map(|e| e.to_string()),
            });
        }
        let reservations = self.reservations.load(Ordering::Relaxed);
        let conflicts = self.conflicts.load(Ordering::Relaxed);
        ContentionResult {
            reservations,
            conflicts,
            conflict_rate: if reservations == 0 { 0.0 } else { conflicts as f64 / reservations as f64 },
            oversold_units: items.iter().map(ItemBalance::oversold).sum(),
            vanished_units: items.iter().map(ItemBalance::vanished).sum(),
            balanced: items.iter().all(ItemBalance::balances),
            items,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_booked_by_verdict() {
        let ledger = Ledger::new(2);
        let take = [StockMove { sku: 0, units: 2, taken: true }, StockMove { sku: 1, units: 1, taken: true }];
        let add = [StockMove { sku: 1, units: 7, taken: false }];
        ledger.book(&take, &Verdict::Ok);
        ledger.book(&take, &Verdict::Expected(ErrorKind::Fault(CONFLICT.into())));
        ledger.book(&take, &Verdict::Unexpected("transport:timeout".into()));
        ledger.book(&take, &Verdict::Unexpected("validation:wrong_path".into()));
        ledger.book(&add, &Verdict::Ok);
        ledger.book(&[], &Verdict::Ok);
        assert_eq!(ledger.reservations.load(Ordering::Relaxed), 4);
        assert_eq!(ledger.conflicts.load(Ordering::Relaxed), 1);
        assert_eq!(ledger.items[0].taken.load(Ordering::Relaxed), 2);
        assert_eq!(ledger.items[0].taken_unknown.load(Ordering::Relaxed), 2);
        assert_eq!(ledger.items[1].taken.load(Ordering::Relaxed), 1);
        assert_eq!(ledger.items[1].added.load(Ordering::Relaxed), 7);
    }
}
