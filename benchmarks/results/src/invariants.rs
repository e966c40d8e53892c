//! What must hold whatever the speed, as measured: a contention scenario's stock books, a
//! convergence scenario's orders followed into analytics, a soak's drift and memory trends.

use serde::{Deserialize, Serialize};

use crate::percentiles::Percentiles;

/// One hot item's books at the end.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ItemBalance {
    /// The item.
    pub sku: String,
    /// Units put in stock before the warm-up.
    pub initial: u64,
    /// Units restocks added (answered with a success).
    pub added: u64,
    /// Units reservations took (answered with a success).
    pub taken: u64,
    /// Units of restocks that got no answer.
    pub added_unknown: u64,
    /// Units of reservations that got no answer.
    pub taken_unknown: u64,
    /// Units the stack says are left; `None` when it could not say.
    pub remaining: Option<u64>,
    /// Why it could not say.
    pub error: Option<String>,
}

impl ItemBalance {
    /// The most units that can be left: nothing unanswered took any, every unanswered restock
    /// added its units.
    fn most(&self) -> i128 {
        i128::from(self.initial) + i128::from(self.added) + i128::from(self.added_unknown)
            - i128::from(self.taken)
    }

    /// The fewest: every unanswered reservation took its units, no unanswered restock added any.
    fn least(&self) -> i128 {
        i128::from(self.initial) + i128::from(self.added)
            - i128::from(self.taken)
            - i128::from(self.taken_unknown)
    }

    /// Units sold beyond what there was: more left than the books allow, so some unit was sold
    /// twice (two reservations answered as taken, one unit gone from stock).
    pub fn oversold(&self) -> u64 {
        self.remaining.map_or(0, |left| (i128::from(left) - self.most()).max(0) as u64)
    }

    /// Units gone without a sale: fewer left than the books allow (a refused reservation that
    /// took part of its lines, say).
    pub fn vanished(&self) -> u64 {
        self.remaining.map_or(0, |left| (self.least() - i128::from(left)).max(0) as u64)
    }

    /// Whether the books balance.
    pub fn balances(&self) -> bool {
        self.remaining.is_some() && self.oversold() == 0 && self.vanished() == 0
    }
}

/// What a contention scenario found on one stack.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContentionResult {
    /// Reservations answered or timed out (warm-up included: the books span both).
    pub reservations: u64,
    /// Reservations refused for want of stock.
    pub conflicts: u64,
    /// `conflicts / reservations`.
    pub conflict_rate: f64,
    /// Units sold beyond the stock there was, all items together: must be 0.
    pub oversold_units: u64,
    /// Units gone from stock without a sale: must be 0.
    pub vanished_units: u64,
    /// Whether every item's books balance (and every item's stock could be read).
    pub balanced: bool,
    /// Per item.
    pub items: Vec<ItemBalance>,
}

/// What following the orders found on one stack.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ConvergenceResult {
    /// Orders acknowledged during the measurement, each followed.
    pub orders: u64,
    /// Orders sent that got no success (not followed: they may or may not exist).
    pub unacknowledged: u64,
    /// Acknowledged orders whose body could not be read back (a bug of the runner's; 0).
    pub unreadable: u64,
    /// Orders the first question already found: in analytics by the time the buyer heard back.
    pub seen_at_once: u64,
    /// Orders analytics counts exactly once.
    pub counted_once: u64,
    /// Orders analytics never counted.
    pub lost: u64,
    /// Orders analytics counts more than once.
    pub counted_twice: u64,
    /// Orders whose recount got no answer.
    pub not_recounted: u64,
    /// Probe questions that got no answer.
    pub failed_questions: u64,
    /// From an order's acknowledgement to its showing in analytics, microseconds.
    pub lag_us: Percentiles,
    /// How long an order could take before it counted as lost, seconds.
    pub settle_s: f64,
    /// The probes' polling period (the lag's resolution), milliseconds.
    pub poll_ms: f64,
}

impl ConvergenceResult {
    /// Whether every order was counted exactly once.
    pub fn exactly_once(&self) -> bool {
        self.orders > 0 && self.counted_once == self.orders && self.unreadable == 0
    }
}
/// A soak's figures on one stack.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SoakResult {
    /// Answers per second the saturation probe reached.
    pub saturation_rps: f64,
    /// The share of it offered.
    pub fraction: f64,
    /// Requests per second offered.
    pub offered_rps: f64,
    /// Latency at the start against the end.
    pub drift: Drift,
    /// Memory of each stack process and broker.
    pub memory: Vec<MemoryTrend>,
}

/// Latency of the first tenth of the soak's intervals against the last tenth (medians of the
/// intervals' percentiles).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Drift {
    /// Intervals in each end.
    pub intervals: usize,
    /// Median latency at the start, µs.
    pub first_p50_us: f64,
    /// At the end.
    pub last_p50_us: f64,
    /// 99th percentile at the start, µs.
    pub first_p99_us: f64,
    /// At the end.
    pub last_p99_us: f64,
}

impl Drift {
    /// The end's p99 over the start's.
    pub fn p99_ratio(&self) -> f64 {
        if self.first_p99_us > 0.0 { self.last_p99_us / self.first_p99_us } else { 1.0 }
    }

    /// The end's p50 over the start's.
    pub fn p50_ratio(&self) -> f64 {
        if self.first_p50_us > 0.0 { self.last_p50_us / self.first_p50_us } else { 1.0 }
    }
}

/// Whether a process's memory keeps growing.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MemoryVerdict {
    /// It levels off, or grows too little to matter.
    Steady,
    /// It grows over the whole soak and still in its second half: a leak, or a cache with no bound.
    Growing,
}

/// One process group's memory over a soak.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemoryTrend {
    /// `stack/services`, `stack/worker-1`, `nats-server`...
    pub name: String,
    /// Resident memory at the first sample, MiB.
    pub start_mib: f64,
    /// At the last.
    pub end_mib: f64,
    /// Least-squares slope over the whole soak, MiB per minute.
    pub slope_mib_per_min: f64,
    /// Over its second half.
    pub late_slope_mib_per_min: f64,
    /// The verdict.
    pub verdict: MemoryVerdict,
    /// Whether the soak was long enough for the verdict to mean much (2 minutes or more).
    pub conclusive: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(remaining: u64) -> ItemBalance {
        ItemBalance {
            sku: "HOT-000".into(),
            initial: 100,
            added: 30,
            taken: 120,
            added_unknown: 5,
            taken_unknown: 2,
            remaining: Some(remaining),
            error: None,
        }
    }

    #[test]
    fn the_books_balance_within_what_unanswered_requests_may_have_done() {
        // 100 + 30 - 120 = 10 left, give or take the unanswered: 8 to 15.
        for left in 8..=15 {
            assert!(item(left).balances(), "{left}");
        }
        assert_eq!(item(18).oversold(), 3, "three units sold twice");
        assert_eq!(item(5).vanished(), 3, "three units gone without a sale");
        assert!(!item(5).balances() && !item(18).balances());
        let unread = ItemBalance { remaining: None, error: Some("timeout".into()), ..item(10) };
        assert!(!unread.balances(), "a stock that could not be read proves nothing");
    }
}
