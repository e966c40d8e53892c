//! `results.json`: the whole run (environment, settings, every scenario x stack x repetition with
//! its figures), and the CSV exports made from it. The report generator reads only this file, so
//! any old run can be reported again.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::BenchError;
use crate::config::{Expectations, Load, MixEntry, RunSettings};
use crate::contention::ContentionResult;
use crate::convergence::ConvergenceResult;
use crate::environment::Environment;
use crate::resources::Usage;
use crate::soak::SoakResult;

/// The version of this file's layout.
pub const SCHEMA: u32 = 1;

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResults {
    /// Layout version ([`SCHEMA`]).
    pub schema: u32,
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// When it finished.
    pub finished: String,
    /// The profile used, if any.
    pub profile: Option<String>,
    /// The machine and software.
    pub environment: Environment,
    /// The settings the run used (after the profile and the environment).
    pub settings: RunSettings,
    /// Per scenario, per stack.
    pub scenarios: Vec<ScenarioResult>,
    /// Each `performance_expectations` limit, checked.
    pub expectations: Vec<ExpectationCheck>,
    /// What a reader should know before trusting the figures.
    pub warnings: Vec<String>,
}

/// One scenario on every stack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Its name.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// The load, as run (after any duration override).
    pub load: Load,
    /// The mix.
    pub mix: Vec<MixEntry>,
    /// The share of invalid requests.
    pub invalid_share: f64,
    /// The injected faults.
    pub faults: Option<faults::FaultSettings>,
    /// The limits it must meet.
    pub expectations: Option<Expectations>,
    /// Per stack.
    pub stacks: Vec<StackResult>,
}

/// One stack's measurements of a scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StackResult {
    /// Its name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// `nats` or `http`.
    pub transport: String,
    /// One per repetition.
    pub repetitions: Vec<Measurement>,
    /// Medians and spread over the repetitions.
    pub summary: Summary,
    /// Its processes placed on CPUs of their own (`cpus` in the config): (process, CPU list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<(String, String)>,
    /// For a validation-off control: the stack it copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unvalidated_control_of: Option<String>,
    /// For a secured variant (TLS and credentials): the plain stack it copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secured_variant_of: Option<String>,
}

/// Latency percentiles, microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 95th.
    pub p95: u64,
    /// 99th.
    pub p99: u64,
    /// 99.9th.
    pub p999: u64,
    /// 99.99th.
    pub p9999: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// Of a histogram.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p95: h.value_at_quantile(0.95),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }
}

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
    pub expected_errors: BTreeMap<String, u64>,
    /// Every other error, by kind.
    pub unexpected_errors: BTreeMap<String, u64>,
    /// Unexpected errors per answer.
    pub unexpected_rate: f64,
    /// From planned send to answer (equal to service time in closed loop).
    pub latency_us: Percentiles,
    /// From actual send to answer.
    pub service_time_us: Percentiles,
    /// From planned to actual send.
    pub dispatch_lag_us: Percentiles,
    /// Per mix entry.
    pub endpoints: Vec<EndpointResult>,
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
    pub expected_errors: BTreeMap<String, u64>,
    /// Unexpected errors by kind.
    pub unexpected_errors: BTreeMap<String, u64>,
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
    /// Whether it met the scenario's thresholds ([`crate::config::Sustained`]); absent in results
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

/// One limit of `performance_expectations`, checked against a stack's medians.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpectationCheck {
    /// The scenario.
    pub scenario: String,
    /// The stack.
    pub stack: String,
    /// `p50_ms`, `p99_ms`, `min_rps` or `max_unexpected_error_rate`.
    pub metric: String,
    /// The limit.
    pub limit: f64,
    /// The median measured.
    pub value: f64,
    /// Whether it held.
    pub held: bool,
}

impl ExpectationCheck {
    /// The checks of `limits` against `summary`.
    pub fn all(scenario: &str, stack: &str, limits: &Expectations, summary: &Summary) -> Vec<Self> {
        let check = |metric: &str, limit: Option<f64>, value: f64, at_most: bool| {
            limit.map(|limit| Self {
                scenario: scenario.to_string(),
                stack: stack.to_string(),
                metric: metric.to_string(),
                limit,
                value,
                held: if at_most { value <= limit } else { value >= limit },
            })
        };
        [
            check("p50_ms", limits.p50_ms, summary.p50_us.median / 1000.0, true),
            check("p99_ms", limits.p99_ms, summary.p99_us.median / 1000.0, true),
            check("min_rps", limits.min_rps, summary.rps.median, false),
            check(
                "max_unexpected_error_rate",
                limits.max_unexpected_error_rate,
                summary.unexpected_rate.median,
                true,
            ),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The checks of what must hold whatever the speed: no unit oversold or gone under
    /// contention, every order counted once in analytics (the worst repetition counts).
    pub fn invariants(scenario: &str, stack: &str, repetitions: &[Measurement]) -> Vec<Self> {
        let worst = |pick: &dyn Fn(&Measurement) -> Option<u64>| {
            repetitions.iter().filter_map(pick).max().map(|worst| worst as f64)
        };
        let check = |metric: &str, value: Option<f64>| {
            value.map(|value| Self {
                scenario: scenario.to_string(),
                stack: stack.to_string(),
                metric: metric.to_string(),
                limit: 0.0,
                value,
                held: value <= 0.0,
            })
        };
        [
            check("oversold_units", worst(&|m| m.contention.as_ref().map(|c| c.oversold_units))),
            check("vanished_units", worst(&|m| m.contention.as_ref().map(|c| c.vanished_units))),
            check(
                "unreadable_stock",
                worst(&|m| {
                    m.contention
                        .as_ref()
                        .map(|c| c.items.iter().filter(|i| i.remaining.is_none()).count() as u64)
                }),
            ),
            check("orders_lost", worst(&|m| m.convergence.as_ref().map(|c| c.lost + c.not_recounted))),
            check("orders_counted_twice", worst(&|m| m.convergence.as_ref().map(|c| c.counted_twice))),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// One line saying how it went.
    pub fn describe(&self) -> String {
        let verdict = if self.held { "held" } else { "MISSED" };
        format!(
            "{} on {}: {} {:.3} against a limit of {:.3}: {verdict}",
            self.scenario, self.stack, self.metric, self.value, self.limit
        )
    }
}

impl RunResults {
    /// Writes `results.json` and the CSV exports into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), BenchError> {
        let io = |e: std::io::Error| BenchError::Process(format!("{}: {e}", dir.display()));
        let json = serde_json::to_vec_pretty(self).map_err(|e| BenchError::Process(e.to_string()))?;
        std::fs::write(dir.join("results.json"), json).map_err(io)?;
        let mut summary = std::fs::File::create(dir.join("summary.csv")).map_err(io)?;
        writeln!(summary, "scenario,stack,repetition,position,load_model,duration_s,target_rps,sent,dropped,answered,achieved_rps,ok,expected_errors,unexpected_errors,p50_us,p90_us,p99_us,p999_us,max_us,service_p50_us,service_p99_us,lag_p99_us,stack_cpu_s,brokers_cpu_s,generator_cpu_s,cpu_ms_per_1000,requests_per_cpu_second").map_err(io)?;
        let mut endpoints = std::fs::File::create(dir.join("endpoints.csv")).map_err(io)?;
        writeln!(endpoints, "scenario,stack,repetition,endpoint,mean_body_bytes,answered,ok,expected_errors,unexpected_errors,p50_us,p99_us,p999_us,max_us").map_err(io)?;
        let mut intervals = std::fs::File::create(dir.join("intervals.csv")).map_err(io)?;
        writeln!(intervals, "scenario,stack,repetition,t_s,answered,rps,unexpected,p50_us,p99_us,max_us")
            .map_err(io)?;
        let mut steps = std::fs::File::create(dir.join("steps.csv")).map_err(io)?;
        writeln!(steps, "scenario,stack,repetition,target_rps,achieved_rps,p50_us,p99_us,unexpected")
            .map_err(io)?;
        for scenario in &self.scenarios {
            for stack in &scenario.stacks {
                for m in &stack.repetitions {
                    let (s, k, r) = (&scenario.name, &stack.name, m.repetition);
                    let l = &m.latency_us;
                    writeln!(
                        summary,
                        "{s},{k},{r},{},{},{:.3},{},{},{},{},{:.1},{},{},{},{},{},{},{},{},{},{},{},{:.3},{:.3},{:.3},{:.2},{:.0}",
                        m.position,
                        m.load_model,
                        m.duration_s,
                        m.target_rps.map(|t| format!("{t:.1}")).unwrap_or_default(),
                        m.sent,
                        m.dropped,
                        m.answered,
                        m.achieved_rps,
                        m.ok,
                        m.expected_errors.values().sum::<u64>(),
                        m.unexpected_errors.values().sum::<u64>(),
                        l.p50,
                        l.p90,
                        l.p99,
                        l.p999,
                        l.max,
                        m.service_time_us.p50,
                        m.service_time_us.p99,
                        m.dispatch_lag_us.p99,
                        m.cpu.stack_s,
                        m.cpu.brokers_s,
                        m.cpu.generator_s,
                        m.cpu.ms_per_1000_requests,
                        m.cpu.requests_per_cpu_second
                    )
                    .map_err(io)?;
                    for e in &m.endpoints {
                        writeln!(
                            endpoints,
                            "{s},{k},{r},{},{},{},{},{},{},{},{},{},{}",
                            e.name,
                            e.mean_body_bytes,
                            e.answered,
                            e.ok,
                            e.expected_errors.values().sum::<u64>(),
                            e.unexpected_errors.values().sum::<u64>(),
                            e.latency_us.p50,
                            e.latency_us.p99,
                            e.latency_us.p999,
                            e.latency_us.max
                        )
                        .map_err(io)?;
                    }
                    for i in &m.intervals {
                        writeln!(
                            intervals,
                            "{s},{k},{r},{:.1},{},{:.1},{},{},{},{}",
                            i.t_s, i.answered, i.rps, i.unexpected, i.p50_us, i.p99_us, i.max_us
                        )
                        .map_err(io)?;
                    }
                    for st in &m.steps {
                        writeln!(
                            steps,
                            "{s},{k},{r},{:.1},{:.1},{},{},{}",
                            st.target_rps, st.achieved_rps, st.p50_us, st.p99_us, st.unexpected
                        )
                        .map_err(io)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads a `results.json`.
    pub fn read(path: &Path) -> Result<Self, BenchError> {
        let text =
            std::fs::read(path).map_err(|e| BenchError::Process(format!("{}: {e}", path.display())))?;
        serde_json::from_slice(&text).map_err(|e| BenchError::Process(format!("{}: {e}", path.display())))
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
    fn spreads_and_percentiles() {
        let spread = Spread::of([3.0, 1.0, 2.0, 10.0]);
        assert_eq!(spread, Spread { median: 2.5, min: 1.0, max: 10.0 });
        assert_eq!(Spread::of([]), Spread::default());
        let mut h = crate::recorder::histogram(3);
        for v in 1..=1000 {
            h.record(v).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!((p.count, p.p50, p.max), (1000, 500, 1000));
        assert!((989..=991).contains(&p.p99));
    }
}
