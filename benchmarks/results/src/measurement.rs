//! One measurement (a scenario on a stack, once) and what is made of several: latency
//! percentiles, per-endpoint, per-interval and per-step figures, CPU cost, validation cost,
//! medians and spreads over repetitions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error_kind::ErrorKind;
use crate::invariants::{ContentionResult, ConvergenceResult, SoakResult};
use crate::percentiles::Percentiles;
use crate::system::Usage;

/// One measurement: a scenario on a stack, once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    /// Which repetition (from 1).
    pub repetition: u32,
    /// Its place among the stacks in that repetition (from 1; the order is shuffled).
    pub position: u32,
    /// `closed loop`, `open loop` or `stepped open loop`.
    pub load_model: String,
    /// Seconds measured.
    pub duration_s: f64,
    /// Planned requests per second (open loop), averaged over the run.
    pub target_rps: Option<f64>,
    /// Requests sent.
    pub sent: u64,
    /// Requests dropped because too many were in flight (open loop).
    pub dropped: u64,
    /// Answers (of any verdict) per second.
    pub achieved_rps: f64,
    /// Answers.
    pub answered: u64,
    /// Successes.
    pub ok: u64,
    /// Errors the scenario asked for, by kind.
    pub expected_errors: BTreeMap<ErrorKind, u64>,
    /// Every other error, by kind.
    pub unexpected_errors: BTreeMap<ErrorKind, u64>,
    /// Unexpected errors per answer.
    pub unexpected_rate: f64,
    /// From planned send to answer (equal to service time in closed loop).
    pub latency_us: Percentiles,
    /// From actual send to answer.
    pub service_time_us: Percentiles,
    /// From planned to actual send.
    pub dispatch_lag_us: Percentiles,
    /// Per mix entry, then per step of each flow (`{flow}/{n} {step}`).
    pub endpoints: Vec<EndpointResult>,
    /// Per flow, each journey as one: from its planned start to its last step's answer (think
    /// times included), a success when every step was one, else the first failed step's error.
    /// `mean_body_bytes` is its steps' together.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<EndpointResult>,
    /// Per interval: percentiles over time.
    pub intervals: Vec<IntervalResult>,
    /// Per step (stepped load): the saturation curve.
    pub steps: Vec<StepResult>,
    /// CPU and memory of the stack, each broker it uses, and the load generator.
    pub resources: Vec<Usage>,
    /// CPU cost, stack and its brokers together.
    pub cpu: CpuCost,
    /// Time spent validating, per endpoint, from the services' own stats (where reachable).
    pub validation: Vec<ValidationResult>,
    /// The interval histogram log, relative to the run folder.
    pub interval_log: String,
    /// A contention scenario's stock books (warm-up included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contention: Option<ContentionResult>,
    /// A convergence scenario's orders followed into analytics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convergence: Option<ConvergenceResult>,
    /// A soak's drift and memory trends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<SoakResult>,
    /// A scenario's outages: each one's recovery, and what was acknowledged and lost or applied
    /// twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<crate::FaultsResult>,
    /// A scenario that archives: every acknowledged order looked for in the stack's archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<crate::ArchiveResult>,
}

impl Measurement {
    /// Answers per second: of the whole run, or, for a stepped load, of the highest step that
    /// was sustained (its achieved rate, errors and p99 within the scenario's thresholds; 0 when
    /// none was). A step answered at a high rate with many errors or seconds of latency is
    /// throughput nobody would run a service at.
    pub fn sustained_rps(&self) -> f64 {
        if self.steps.is_empty() { self.achieved_rps } else { StepResult::highest_sustained(&self.steps) }
    }
}

/// One mix entry's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointResult {
    /// `service.endpoint[/size]`.
    pub name: String,
    /// Mean size of its valid bodies, bytes.
    pub mean_body_bytes: usize,
    /// Answers.
    pub answered: u64,
    /// Successes.
    pub ok: u64,
    /// Expected errors by kind.
    pub expected_errors: BTreeMap<ErrorKind, u64>,
    /// Unexpected errors by kind.
    pub unexpected_errors: BTreeMap<ErrorKind, u64>,
    /// Response time.
    pub latency_us: Percentiles,
    /// Service time.
    pub service_time_us: Percentiles,
}

/// One interval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntervalResult {
    /// Its start, seconds from the measurement's start.
    pub t_s: f64,
    /// Answers in it.
    pub answered: u64,
    /// Answers per second in it.
    pub rps: f64,
    /// Unexpected errors in it.
    pub unexpected: u64,
    /// Response-time median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest.
    pub max_us: u64,
}

/// One step of a stepped load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepResult {
    /// Offered requests per second.
    pub target_rps: f64,
    /// Answers per second of the requests planned in the step.
    pub achieved_rps: f64,
    /// Response-time median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Unexpected errors.
    pub unexpected: u64,
    /// Whether it met the scenario's thresholds ([`crate::Sustained`]); absent in results
    /// written before there were any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sustained: Option<bool>,
}

impl StepResult {
    /// The achieved rate of the highest sustained step below the knee (the first step that was
    /// not: one that passes again above it is luck, not capacity), 0 when the first step was not
    /// sustained. In results from before steps were judged, every step counts.
    pub fn highest_sustained(steps: &[StepResult]) -> f64 {
        steps.iter().take_while(|s| s.sustained != Some(false)).map(|s| s.achieved_rps).fold(0.0, f64::max)
    }
}

/// CPU per request.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct CpuCost {
    /// The stack's processes, CPU seconds.
    pub stack_s: f64,
    /// The brokers it uses, CPU seconds.
    pub brokers_s: f64,
    /// The load generator, CPU seconds.
    pub generator_s: f64,
    /// Stack and brokers, CPU milliseconds per 1,000 answers.
    pub ms_per_1000_requests: f64,
    /// Answers per CPU second of stack and brokers.
    pub requests_per_cpu_second: f64,
}

/// One endpoint's validation cost, from the service's stats.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidationResult {
    /// `service.endpoint`.
    pub endpoint: String,
    /// Requests the service counted (warm-up included).
    pub requests: u64,
    /// Mean time validating, microseconds.
    pub validation_us: f64,
    /// Mean time in the service (decode, validate, handle, encode), microseconds.
    pub processing_us: f64,
    /// Validation's share of that.
    pub share: f64,
}

/// A figure's median and range over repetitions.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// Of some values (all zero when there are none).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Self::default();
        }
        v.sort_by(f64::total_cmp);
        let median =
            if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 };
        Self { median, min: v[0], max: v[v.len() - 1] }
    }

    /// The range as a share of the median (0 for one value).
    pub fn relative_range(&self) -> f64 {
        if self.median == 0.0 { 0.0 } else { (self.max - self.min) / self.median }
    }
}

/// Medians and spread over the repetitions of one stack in one scenario.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Repetitions measured.
    pub repetitions: u32,
    /// Answers per second; for a stepped load, of its highest sustained step, since the whole
    /// run's average mixes every step.
    pub rps: Spread,
    /// Median latency, microseconds.
    pub p50_us: Spread,
    /// 99th percentile latency.
    pub p99_us: Spread,
    /// 99.9th percentile latency.
    pub p999_us: Spread,
    /// Unexpected errors per answer.
    pub unexpected_rate: Spread,
    /// CPU milliseconds per 1,000 answers, stack and brokers.
    pub cpu_ms_per_1000: Spread,
    /// Answers per CPU second, stack and brokers.
    pub requests_per_cpu_second: Spread,
}

impl Summary {
    /// Of the repetitions.
    pub fn of(measurements: &[Measurement]) -> Self {
        let f = |g: fn(&Measurement) -> f64| Spread::of(measurements.iter().map(g));
        Self {
            repetitions: measurements.len() as u32,
            rps: f(Measurement::sustained_rps),
            p50_us: f(|m| m.latency_us.p50 as f64),
            p99_us: f(|m| m.latency_us.p99 as f64),
            p999_us: f(|m| m.latency_us.p999 as f64),
            unexpected_rate: f(|m| m.unexpected_rate),
            cpu_ms_per_1000: f(|m| m.cpu.ms_per_1000_requests),
            requests_per_cpu_second: f(|m| m.cpu.requests_per_cpu_second),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(target_rps: f64, achieved_rps: f64, sustained: Option<bool>) -> StepResult {
        StepResult { target_rps, achieved_rps, p50_us: 0, p99_us: 0, unexpected: 0, sustained }
    }

    #[test]
    fn the_headline_of_a_stepped_load_is_its_highest_sustained_step() {
        // 12,000 answered at a high rate, but with errors or seconds of p99: not sustained.
        let judged = [
            step(4000.0, 3990.0, Some(true)),
            step(8000.0, 7950.0, Some(true)),
            step(12000.0, 11500.0, Some(false)),
        ];
        assert_eq!(StepResult::highest_sustained(&judged), 7950.0);
        assert_eq!(StepResult::highest_sustained(&[step(1000.0, 400.0, Some(false))]), 0.0);
        // A step that passes again above the knee is luck, not capacity.
        let lucky = [
            step(4000.0, 3990.0, Some(true)),
            step(8000.0, 6000.0, Some(false)),
            step(12000.0, 11900.0, Some(true)),
        ];
        assert_eq!(StepResult::highest_sustained(&lucky), 3990.0);
        // Results written before steps were judged: the best step, as then.
        assert_eq!(
            StepResult::highest_sustained(&[step(1000.0, 990.0, None), step(2000.0, 1500.0, None)]),
            1500.0
        );
    }

    #[test]
    fn spreads() {
        let spread = Spread::of([3.0, 1.0, 2.0, 10.0]);
        assert_eq!(spread, Spread { median: 2.5, min: 1.0, max: 10.0 });
        assert_eq!(Spread::of([]), Spread::default());
    }
}
