//! What a scenario's outages did to one stack: a broker or an instance killed, stalled or cut off
//! mid-run, when it came back, how long the stack took to serve again, and whether anything it
//! had acknowledged was lost or applied twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ErrorKind;

/// One outage as it happened, and the stack's recovery from it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutageResult {
    /// What was done: `kill`, `stall` or `cut`.
    pub action: String,
    /// The component it was done to, by its role in the stack (`nats`, `redis`, `worker-1`).
    pub target: String,
    /// When it began, seconds from the start of the measured load.
    pub began_s: f64,
    /// When the runner restored the component (restarted it, let it run, joined it up again).
    pub restored_s: f64,
    /// When the component accepted connections again (a broker's own start time after a
    /// restart); `restored_s` for one that listens on nothing.
    pub back_s: f64,
    /// Requests served per second (successes within a second) in the five seconds before it
    /// began.
    pub pre_fault_rps: f64,
    /// From `back_s` to the first success answered after it, milliseconds; `None` when none came.
    pub first_success_ms: Option<f64>,
    /// From `back_s` to the first second whose requests were served (answered with a success
    /// within a second) at 90% of the pre-fault rate again, by when they were planned,
    /// milliseconds; `None` when none did before the load ended.
    pub recovery_ms: Option<f64>,
    /// Unexpected errors of the requests planned from the outage's start until the stack
    /// recovered (or the load ended), by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// With an archive: the most orders acknowledged and not yet archived at once, from the
    /// outage's start until the backlog drained (they wait in the broker meanwhile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog_peak: Option<u64>,
    /// With an archive: from `back_s` until every order acknowledged by then was archived,
    /// milliseconds (after the load, too); `None` when that never happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_ms: Option<f64>,
}

impl OutageResult {
    /// Whether the stack served at its earlier rate again by itself.
    pub fn recovered(&self) -> bool {
        self.recovery_ms.is_some()
    }
}

/// The orders of record: every order acknowledged in a measurement, looked for in the stack's
/// archive (PostgreSQL, fed by the stack's event path) once the load was over.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ArchiveResult {
    /// Orders acknowledged (answered as placed), the warm-up's included.
    pub orders: u64,
    /// Of them, those the archive held once it had caught up (or `settle` passed).
    pub archived: u64,
    /// Of them, those it did not: acknowledged, and never archived.
    pub missing: u64,
    /// The most orders acknowledged and not yet archived at once, during the load and the wait for
    /// the archive after it.
    pub backlog_peak: u64,
    /// From the end of the load until the last acknowledged order was archived (the archive's
    /// clock), milliseconds, 0 when it already had them all; `None` when it never did within
    /// `settle`.
    pub caught_up_ms: Option<f64>,
    /// The backlog over the load and the wait for the archive after it: `[seconds from the
    /// load's start, orders acknowledged and not yet archived]`, every 100 ms.
    #[serde(default)]
    pub backlog: Vec<(f64, u64)>,
}

/// Every outage of one measurement, and what the stack lost or did twice across them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaultsResult {
    /// Each outage, in the order played.
    pub outages: Vec<OutageResult>,
    /// Requests acknowledged and then lost: orders answered as placed that analytics never
    /// counted (or could not be asked about once the load was over).
    pub acknowledged_lost: u64,
    /// Requests applied twice: orders counted more than once.
    pub duplicated: u64,
    /// The slowest recovery of the outages, milliseconds (`None` when one never recovered).
    pub recovery_ms: Option<f64>,
    /// Whether the stack recovered from every outage by itself.
    pub recovered: bool,
}

impl FaultsResult {
    /// Sums up `outages` with what following the orders found.
    pub fn of(outages: Vec<OutageResult>, acknowledged_lost: u64, duplicated: u64) -> Self {
        let recovered = outages.iter().all(OutageResult::recovered);
        let recovery_ms =
            if recovered { outages.iter().filter_map(|o| o.recovery_ms).reduce(f64::max) } else { None };
        Self { outages, acknowledged_lost, duplicated, recovery_ms, recovered }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outage(recovery_ms: Option<f64>) -> OutageResult {
        OutageResult {
            action: "kill".into(),
            target: "nats".into(),
            began_s: 5.0,
            restored_s: 8.0,
            back_s: 8.1,
            pre_fault_rps: 200.0,
            first_success_ms: recovery_ms,
            recovery_ms,
            errors: BTreeMap::new(),
            backlog_peak: None,
            drain_ms: None,
        }
    }

    #[test]
    fn the_slowest_recovery_counts_and_one_that_never_came_means_not_recovered() {
        let both = FaultsResult::of(vec![outage(Some(300.0)), outage(Some(1200.0))], 0, 0);
        assert!(both.recovered);
        assert_eq!(both.recovery_ms, Some(1200.0));
        let one_missing = FaultsResult::of(vec![outage(Some(300.0)), outage(None)], 2, 1);
        assert!(!one_missing.recovered);
        assert_eq!(one_missing.recovery_ms, None);
        assert_eq!((one_missing.acknowledged_lost, one_missing.duplicated), (2, 1));
    }
}
